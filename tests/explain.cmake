# `neuromask explain` end to end on the bundled model (no shared data needed).
nm_add_script_test(test_explain_cli sh ${CMAKE_CURRENT_SOURCE_DIR}/test_explain_cli.sh)
