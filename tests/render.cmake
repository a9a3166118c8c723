# Output writers of `explain`: colour maps, panels, font, atomic files, .npy.
nm_add_c_test(test_render test_render.c)

add_executable(npy_writer npy_writer.c)
target_link_libraries(npy_writer PRIVATE nm_testutil)
nm_add_script_test(test_npy ${NM_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/test_npy.py
                   $<TARGET_FILE:npy_writer> ${CMAKE_CURRENT_BINARY_DIR}/npy_out)
# Output names by kind of map (NAME.mask.* / NAME.map.*), signed colours, --resume.
nm_add_script_test(test_explain_naming sh ${CMAKE_CURRENT_SOURCE_DIR}/test_explain_naming.sh)
