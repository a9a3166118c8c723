# torchvision architectures (random weights) exported to ONNX, compared with
# PyTorch float32/float64 logits and input gradients. A fixture generates the
# references into the build tree (cached by script hash; never committed).
set(NM_TORCH_REFS ${CMAKE_BINARY_DIR}/torch_refs CACHE PATH "Where the PyTorch references are generated (cached by script hash)")
set(NM_TORCH_REF_MODELS resnet18 resnet50 mobilenet_v2 mobilenet_v3_small inception_v3
    squeezenet1_1 densenet121 efficientnet_b0 googlenet)

add_test(NAME torch_refs_make
  COMMAND ${NM_PYTHON} ${CMAKE_SOURCE_DIR}/tools/make_torch_refs.py ${NM_TORCH_REFS})
set_tests_properties(torch_refs_make PROPERTIES FIXTURES_SETUP torch_refs TIMEOUT 1800
  ENVIRONMENT "OPENBLAS_NUM_THREADS=1")

add_executable(test_torch_ref test_torch_ref.c)
target_link_libraries(test_torch_ref PRIVATE neuromask_lib m)
foreach(model ${NM_TORCH_REF_MODELS})
  add_test(NAME torch_ref_${model} COMMAND test_torch_ref ${NM_TORCH_REFS} ${model})
  set_tests_properties(torch_ref_${model} PROPERTIES FIXTURES_REQUIRED torch_refs TIMEOUT 600)
endforeach()
