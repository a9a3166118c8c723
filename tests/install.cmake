# Installation: the shared library exports exactly the public header's
# functions, and an installed tree serves pkg-config and find_package users.
if(NM_SANITIZE)
  set(NM_CONSUMER_FLAGS "-fsanitize=address,undefined")
endif()
nm_add_script_test(test_install sh ${CMAKE_CURRENT_SOURCE_DIR}/test_install.sh)
set_property(TEST test_install APPEND PROPERTY ENVIRONMENT "NM_CONSUMER_FLAGS=${NM_CONSUMER_FLAGS}")
nm_add_script_test(test_exports sh ${CMAKE_CURRENT_SOURCE_DIR}/test_exports.sh
  $<TARGET_FILE:neuromask_shared> ${CMAKE_SOURCE_DIR}/include/neuromask.h)
