# Hostile models and images (tools/make_hostile_inputs.py) through the CLI:
# each refused with one clear line and nothing written, or, when valid but
# unusual, explained. Also run under ASan + UBSan (`make test-asan`).
nm_add_script_test(test_hostile_inputs sh ${CMAKE_CURRENT_SOURCE_DIR}/test_hostile_inputs.sh)
set_property(TEST test_hostile_inputs APPEND PROPERTY LABELS asan)
