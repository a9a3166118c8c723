# Saliency methods (nm_explain) against the PyTorch reference
# tools/saliency_ref.py, which writes x, the maps and their parameters.
# (No ';' inside the sh -c strings: CMake would split the argument there.)
set(NM_SALREF ${CMAKE_BINARY_DIR}/saliency_ref)
nm_add_script_test(saliency_ref_resnet20 sh -c "test -n \"$NEUROMASK_SHARED\" || exit 77 && \
  ${NM_PYTHON} ${CMAKE_SOURCE_DIR}/tools/saliency_ref.py --model $NEUROMASK_SHARED/models/cifar10_resnet20.onnx \
  --image $NEUROMASK_SHARED/images/cifar10_test_jpg/dog_0000.jpg --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225 \
  --ig-steps 32 --occ-patch 4 --occ-stride 2 --rise-masks 512 --rise-cell 7 --outdir ${NM_SALREF}/resnet20")
nm_add_script_test(saliency_ref_fashion ${NM_PYTHON} ${CMAKE_SOURCE_DIR}/tools/saliency_ref.py
  --model ${CMAKE_SOURCE_DIR}/models/fashion_cnn.onnx --image ${CMAKE_SOURCE_DIR}/data/fashion/0_Ankle_boot.png
  --mean 0.2860 --std 0.3530 --ig-steps 32 --occ-patch 4 --occ-stride 2 --rise-masks 512 --rise-cell 7
  --outdir ${NM_SALREF}/fashion)
nm_add_c_test(saliency_resnet20 test_saliency.c ${NM_SALREF}/resnet20 64 shared)
add_test(NAME saliency_fashion COMMAND saliency_resnet20 ${NM_SALREF}/fashion 128)
set_tests_properties(saliency_fashion PROPERTIES SKIP_RETURN_CODE 77
  ENVIRONMENT "NEUROMASK_SHARED=${NEUROMASK_SHARED};NM_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
set_tests_properties(saliency_ref_resnet20 PROPERTIES FIXTURES_SETUP salref20)
set_tests_properties(saliency_ref_fashion PROPERTIES FIXTURES_SETUP salreffashion)
set_tests_properties(saliency_resnet20 PROPERTIES FIXTURES_REQUIRED salref20)
set_tests_properties(saliency_fashion PROPERTIES FIXTURES_REQUIRED salreffashion)

# The ImageNet models, on the first image of ../shared/images/imagenet_val_227,
# against PyTorch only (IG_STEPS 0), for the maps that do not hang on the
# input gradient: on these 224-px piecewise-linear networks a unit within
# float32 rounding of its kink (Clip, LeakyRelu, MaxPool) moves the input
# gradient by more than 1e-3 on many images, PyTorch float32 against its own
# float64 included (tools/gradient_precision.py, README).
set(NM_SALREF_IMAGE "$NEUROMASK_SHARED/images/imagenet_val_227/ILSVRC2012_val_00000347.JPEG")
set(NM_SALREF_IMAGENET_METHODS gradcam,occlusion,rise)
function(nm_saliency_imagenet net model mean std)
  nm_add_script_test(saliency_ref_${net} sh -c "test -n \"$NEUROMASK_SHARED\" || exit 77 && \
    ${NM_PYTHON} ${CMAKE_SOURCE_DIR}/tools/saliency_ref.py --model $NEUROMASK_SHARED/models/${model}.onnx \
    --image ${NM_SALREF_IMAGE} --mean ${mean} --std ${std} --occ-patch 32 --occ-stride 16 --rise-masks 256 \
    --rise-cell 7 --methods ${NM_SALREF_IMAGENET_METHODS} --outdir ${NM_SALREF}/${net}")
  add_test(NAME saliency_${net} COMMAND saliency_resnet20 ${NM_SALREF}/${net} 0 shared ${NM_SALREF_IMAGENET_METHODS})
  set_tests_properties(saliency_ref_${net} PROPERTIES FIXTURES_SETUP salref_${net})
  set_tests_properties(saliency_${net} PROPERTIES FIXTURES_REQUIRED salref_${net} SKIP_RETURN_CODE 77
    ENVIRONMENT "NEUROMASK_SHARED=${NEUROMASK_SHARED};NM_SOURCE_DIR=${CMAKE_SOURCE_DIR};${NM_TEST_OMP}")
endfunction()
nm_saliency_imagenet(darknet imagenet_darknet_tiny 0 1)
nm_saliency_imagenet(mobilenet imagenet_mobilenet_v2_100_224 0.501960784 0.501960784)
