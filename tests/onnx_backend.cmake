# ONNX import, graph passes, and the ONNX backend conformance cases.
nm_add_c_test(test_passes test_passes.c)
nm_add_c_test(test_onnx_import test_onnx_import.c)

# One executable, one CTest test per case listed in onnx_backend_cases.txt
# (regenerate with tools/list_onnx_cases.py).
add_executable(test_onnx_backend test_onnx_backend.c)
target_link_libraries(test_onnx_backend PRIVATE nm_testutil)
file(STRINGS ${CMAKE_CURRENT_SOURCE_DIR}/onnx_backend_cases.txt NM_ONNX_CASES REGEX "^[^#]")
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/onnx_backend_cases.txt)
foreach(case ${NM_ONNX_CASES})
  string(REPLACE "/" "_" test_name "onnx_${case}")
  add_test(NAME ${test_name} COMMAND test_onnx_backend ${NM_TESTDATA}/${case})
  set_tests_properties(${test_name} PROPERTIES LABELS onnx SKIP_RETURN_CODE 77
    ENVIRONMENT "NM_TESTDATA=${NM_TESTDATA}")
endforeach()
# The metadata_props rewrite of neuromask annotate, on good and broken bytes.
nm_add_c_test(test_onnx_metadata test_onnx_metadata.c ${CMAKE_SOURCE_DIR}/models/fashion_cnn.onnx)
set_property(TEST test_onnx_metadata test_cli_annotate APPEND PROPERTY LABELS asan)
