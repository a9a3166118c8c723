# `neuromask classify` on the nine shared pretrained models against an
# independent PyTorch reference (tools/ref_classify.py). Needs NEUROMASK_SHARED.
set(NM_SHARED_MODELS cifar10_resnet20 cifar10_resnet32 cifar10_resnet44 cifar10_resnet56
    imagenet_darknet_tiny imagenet_mobilenet_v1_025_128 imagenet_mobilenet_v1_050_160
    imagenet_mobilenet_v1_075_192 imagenet_mobilenet_v2_100_224)
foreach(model ${NM_SHARED_MODELS})
  nm_add_script_test(shared_model_${model} ${NM_PYTHON}
    ${CMAKE_CURRENT_SOURCE_DIR}/test_shared_models.py ${model})
  set_tests_properties(shared_model_${model} PROPERTIES TIMEOUT 900)
endforeach()
