# NeuroMask faithfulness against the PyTorch port of the official code.
set(NM_NMREF ${CMAKE_BINARY_DIR}/neuromask_ref)
nm_add_c_test(neuromask_faithful_resnet20 test_neuromask_faithful.c ${NM_NMREF}/resnet20)
nm_add_c_test(neuromask_faithful_resnet18 test_neuromask_faithful.c ${NM_NMREF}/resnet18)
# The references: the shared CIFAR ResNet-20 on a CIFAR image, and a
# torchvision resnet18 (random weights, exported to ONNX) on an ImageNet image.
nm_add_script_test(neuromask_ref_resnet20 sh -c "test -n \"$NEUROMASK_SHARED\" || exit 77; \
  ${NM_PYTHON} ${CMAKE_SOURCE_DIR}/tools/neuromask_ref.py --model $NEUROMASK_SHARED/models/cifar10_resnet20.onnx \
  --image $NEUROMASK_SHARED/images/cifar10_test_jpg/cat_0000.jpg --size 32 --preset cifar --steps 200 --outdir ${NM_NMREF}/resnet20")
nm_add_script_test(neuromask_ref_resnet18 sh -c "test -n \"$NEUROMASK_SHARED\" || exit 77; \
  ${NM_PYTHON} ${CMAKE_SOURCE_DIR}/tools/neuromask_ref.py --torchvision resnet18 \
  --image $NEUROMASK_SHARED/images/imagenet_val_227/ILSVRC2012_val_00000347.JPEG --size 224 --preset imagenet --steps 200 --outdir ${NM_NMREF}/resnet18")
set_tests_properties(neuromask_ref_resnet20 PROPERTIES FIXTURES_SETUP nmref20)
set_tests_properties(neuromask_ref_resnet18 PROPERTIES FIXTURES_SETUP nmref18)
set_tests_properties(neuromask_faithful_resnet20 PROPERTIES FIXTURES_REQUIRED nmref20)
set_tests_properties(neuromask_faithful_resnet18 PROPERTIES FIXTURES_REQUIRED nmref18)
