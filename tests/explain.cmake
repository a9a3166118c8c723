# `neuromask explain` end to end on the bundled model (no shared data needed).
nm_add_script_test(test_explain_cli sh ${CMAKE_CURRENT_SOURCE_DIR}/test_explain_cli.sh)
# The README's API example runs on the bundled model and image.
add_test(NAME example_explain_one COMMAND nm_example_explain_one ${CMAKE_SOURCE_DIR}/models/fashion_cnn.onnx
         fashion ${CMAKE_SOURCE_DIR}/data/fashion/2_Trouser.png)
set_tests_properties(example_explain_one PROPERTIES ENVIRONMENT "${NM_TEST_OMP}" PASS_REGULAR_EXPRESSION "class 1: p")
# SIGINT / SIGTERM leave only complete files; --resume finishes the set identically.
nm_add_script_test(test_explain_resume sh ${CMAKE_CURRENT_SOURCE_DIR}/test_explain_resume.sh)
# --resume refuses outputs made with another method, options or preprocessing.
nm_add_script_test(test_explain_resume_settings sh ${CMAKE_CURRENT_SOURCE_DIR}/test_explain_resume_settings.sh)
# info --tensors, --gradcam-layer's candidates, the layer used in the JSON.
nm_add_script_test(test_gradcam_layer sh ${CMAKE_CURRENT_SOURCE_DIR}/test_gradcam_layer.sh)
