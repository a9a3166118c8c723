# NeuroMask faithfulness against the PyTorch port of the official code (the
# paper's presets) and its PyTorch version of the default preset's smooth
# mask: the shared CIFAR ResNet-20 on a CIFAR image, and a torchvision
# resnet18 (random weights, exported to ONNX) on an ImageNet image.
set(NM_NMREF ${CMAKE_BINARY_DIR}/neuromask_ref)
foreach(net resnet20 resnet18 resnet20_default resnet18_default)
  nm_add_script_test(neuromask_ref_${net} sh ${CMAKE_CURRENT_SOURCE_DIR}/neuromask_ref.sh ${net} ${NM_NMREF}/${net})
  nm_add_c_test(neuromask_faithful_${net} test_neuromask_faithful.c ${NM_NMREF}/${net})
  set_tests_properties(neuromask_ref_${net} PROPERTIES FIXTURES_SETUP nmref_${net})
  set_tests_properties(neuromask_faithful_${net} PROPERTIES FIXTURES_REQUIRED nmref_${net})
endforeach()

# The objective's terms against finite differences; upsampling against its
# adjoint; the Gaussian interpolation has no cell edges at 224 px.
nm_add_c_test(test_mask_terms test_mask_terms.c)
