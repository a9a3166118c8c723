# The neuromask command-line tool: a table of bad inputs (no shared data
# needed), and classify/info end to end on the shared CIFAR-10 model.
nm_add_script_test(test_cli_bad_input sh ${CMAKE_CURRENT_SOURCE_DIR}/test_cli_bad_input.sh)
nm_add_script_test(test_cli_classify sh ${CMAKE_CURRENT_SOURCE_DIR}/test_cli_classify.sh)
# Image lists, output names, --recursive, one meaning per flag (bundled model).
nm_add_script_test(test_cli_inputs sh ${CMAKE_CURRENT_SOURCE_DIR}/test_cli_inputs.sh)
# Progress lines with ETA on stderr without a terminal; --quiet.
nm_add_script_test(test_cli_progress sh ${CMAKE_CURRENT_SOURCE_DIR}/test_cli_progress.sh)
# annotate: recipe and class names in the model's metadata_props.
nm_add_script_test(test_cli_annotate sh ${CMAKE_CURRENT_SOURCE_DIR}/test_cli_annotate.sh)
# The CLI's defaults are the library's (nm_saliency_defaults).
add_executable(print_saliency_defaults print_saliency_defaults.c)
target_link_libraries(print_saliency_defaults PRIVATE neuromask_lib)
nm_add_script_test(test_cli_defaults sh ${CMAKE_CURRENT_SOURCE_DIR}/test_cli_defaults.sh $<TARGET_FILE:print_saliency_defaults>)
