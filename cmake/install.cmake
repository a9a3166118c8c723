# `cmake --install BUILD [--prefix P]`: the shared and static library, the
# header, the CLI, neuromask.pc and the CMake package neuromask (imported
# targets neuromask::neuromask, the shared library, and
# neuromask::neuromask_static).
include(CMakePackageConfigHelpers)

install(TARGETS neuromask_shared neuromask_lib EXPORT neuromaskTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS neuromask RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${CMAKE_SOURCE_DIR}/include/neuromask.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

set(NM_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/neuromask)
install(EXPORT neuromaskTargets NAMESPACE neuromask:: DESTINATION ${NM_CMAKE_DIR})
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/neuromaskConfig.cmake.in
  ${CMAKE_BINARY_DIR}/neuromaskConfig.cmake INSTALL_DESTINATION ${NM_CMAKE_DIR})
# 0.x: only the same minor version is compatible (the soname says the same).
write_basic_package_version_file(${CMAKE_BINARY_DIR}/neuromaskConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/neuromaskConfig.cmake ${CMAKE_BINARY_DIR}/neuromaskConfigVersion.cmake
  DESTINATION ${NM_CMAKE_DIR})

# The .pc file finds its prefix from its own place (${pcfiledir}), so it is
# right for any --prefix given at install time.
file(RELATIVE_PATH NM_PC_TO_PREFIX /${CMAKE_INSTALL_LIBDIR}/pkgconfig /)
get_filename_component(NM_DNNL_DIR ${DNNL_LIB} DIRECTORY)
configure_file(${CMAKE_SOURCE_DIR}/cmake/neuromask.pc.in ${CMAKE_BINARY_DIR}/neuromask.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/neuromask.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
