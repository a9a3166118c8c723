# The neuromask command-line tool: a table of bad inputs (no shared data
# needed), and classify/info end to end on the shared CIFAR-10 model.
nm_add_script_test(test_cli_bad_input sh ${CMAKE_CURRENT_SOURCE_DIR}/test_cli_bad_input.sh)
nm_add_script_test(test_cli_classify sh ${CMAKE_CURRENT_SOURCE_DIR}/test_cli_classify.sh)
