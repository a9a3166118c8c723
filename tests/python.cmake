# The Python package (python/neuromask) under pytest, against this build's
# libneuromask.so and CLI; and `pip install` of it into a virtual environment.
set(NM_PY_ENV "PYTHONPATH=${CMAKE_SOURCE_DIR}/python" "NEUROMASK_LIBRARY=$<TARGET_FILE:neuromask_shared>"
    "PYTHONDONTWRITEBYTECODE=1")
if(NM_SANITIZE)
  # Python itself is not built with ASan: the sanitizer runtime the library
  # needs must be loaded first, and the interpreter's own allocations that
  # live until exit are not the library's leaks (the C tests check those).
  execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=libasan.so
                  OUTPUT_VARIABLE NM_LIBASAN OUTPUT_STRIP_TRAILING_WHITESPACE)
  list(APPEND NM_PY_ENV "LD_PRELOAD=${NM_LIBASAN}" "ASAN_OPTIONS=detect_leaks=0")
endif()
# -p no:cacheprovider: nothing written into the source tree.
nm_add_script_test(test_python ${NM_PYTHON} -m pytest -q -p no:cacheprovider ${CMAKE_SOURCE_DIR}/python/tests)
set_property(TEST test_python APPEND PROPERTY ENVIRONMENT ${NM_PY_ENV})
nm_add_script_test(test_python_pip sh ${CMAKE_CURRENT_SOURCE_DIR}/test_python_pip.sh $<TARGET_FILE:neuromask_shared>)
if(NM_SANITIZE)
  set_property(TEST test_python_pip APPEND PROPERTY ENVIRONMENT "LD_PRELOAD=${NM_LIBASAN}" "ASAN_OPTIONS=detect_leaks=0")
endif()
