# Fuzz regressions (fuzz/README.md): each fuzz target's replay program over
# the inputs fuzz/run.sh saved (fuzz/regressions/<target>/) and its seeds.
# Labelled asan: `make test-asan` reruns them under ASan + UBSan.
set(NM_FUZZ_DIR ${CMAKE_SOURCE_DIR}/fuzz)
set(NM_FUZZ_INPUTS_onnx ${CMAKE_SOURCE_DIR}/models/fashion_cnn.onnx ${NM_FUZZ_DIR}/seeds/onnx)
set(NM_FUZZ_INPUTS_png ${CMAKE_SOURCE_DIR}/data/fashion ${NM_FUZZ_DIR}/seeds/png)
set(NM_FUZZ_INPUTS_jpeg ${NM_FUZZ_DIR}/seeds/jpeg)
set(NM_FUZZ_INPUTS_args ${NM_FUZZ_DIR}/seeds/args)
foreach(t onnx png jpeg args)
  nm_add_script_test(test_fuzz_${t} $<TARGET_FILE:nm_replay_${t}> ${NM_FUZZ_DIR}/regressions/${t}
                     ${NM_FUZZ_INPUTS_${t}})
  set_property(TEST test_fuzz_${t} APPEND PROPERTY LABELS asan)
  # Under ASan an allocation above fuzz/run.sh's 2 GiB limit fails the test,
  # so that the out-of-memory regressions stay fixed there too.
  set_property(TEST test_fuzz_${t} APPEND PROPERTY ENVIRONMENT "ASAN_OPTIONS=max_allocation_size_mb=2048")
endforeach()
