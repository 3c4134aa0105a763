# Install rules: the libraries, the public headers, the licence, pkg-config
# files (uvq.pc, uvq-quic.pc) and a CMake package (find_package(uvq) gives
# uvq::uvq and, when the QUIC layer was built, uvq::quic). Included from
# the top-level CMakeLists.txt when UVQ_INSTALL is on.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(UVQ_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/uvq)
set(uvq_targets uvq)
if(TARGET uvq_quic)
  list(APPEND uvq_targets uvq_quic)
endif()

# A libuv target of the parent's cannot be exported from here (it belongs
# to no export set of uvq's), so that build installs no CMake package;
# pkg-config files and the libraries are still installed.
if(UVQ_LIBUV_TARGET)
  install(TARGETS ${uvq_targets}
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
          RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
else()
  install(TARGETS ${uvq_targets} EXPORT uvqTargets
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
          RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
          INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  install(EXPORT uvqTargets NAMESPACE uvq:: DESTINATION ${UVQ_CMAKE_DIR})
  if(TARGET uvq_quic)
    set(UVQ_CONFIG_QUIC 1)
  else()
    set(UVQ_CONFIG_QUIC 0)
  endif()
  configure_package_config_file(cmake/uvqConfig.cmake.in
    ${CMAKE_CURRENT_BINARY_DIR}/uvqConfig.cmake
    INSTALL_DESTINATION ${UVQ_CMAKE_DIR})
  # A newer minor release serves a program asking for an older one: the
  # ABI only grows (old layouts are converted, old symbols kept; the
  # abi_program_* tests run such programs), so 0.2 answers find_package(uvq
  # 0.1). A break raises UVQ_ABI_VERSION, the soname, and the major version
  # with it.
  write_basic_package_version_file(
    ${CMAKE_CURRENT_BINARY_DIR}/uvqConfigVersion.cmake
    VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
  install(FILES ${CMAKE_CURRENT_BINARY_DIR}/uvqConfig.cmake
                ${CMAKE_CURRENT_BINARY_DIR}/uvqConfigVersion.cmake
          DESTINATION ${UVQ_CMAKE_DIR})
endif()

install(FILES include/uvq.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES LICENSE DESTINATION ${CMAKE_INSTALL_DOCDIR})

# pkg-config. A static libuvq_quic needs its dependencies at link time:
# pkg-config --static brings them from Requires.private.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(UVQ_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
  set(UVQ_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(UVQ_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(UVQ_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
if(UVQ_LIBUV_TARGET)
  # The parent's own libuv has no pkg-config name to require.
  set(UVQ_PC_REQUIRES "")
else()
  set(UVQ_PC_REQUIRES "libuv >= 1.44")
endif()
configure_file(cmake/uvq.pc.in ${CMAKE_CURRENT_BINARY_DIR}/uvq.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/uvq.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

if(TARGET uvq_quic)
  install(FILES include/uvq/quic.h include/uvq/h3.h
          DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/uvq)
  configure_file(cmake/uvq-quic.pc.in ${CMAKE_CURRENT_BINARY_DIR}/uvq-quic.pc
                 @ONLY)
  install(FILES ${CMAKE_CURRENT_BINARY_DIR}/uvq-quic.pc
          DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endif()

if(UVQ_BUILD_TOOLS)
  install(TARGETS uvq-udp-demo RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  if(TARGET uvq-h3-server)
    install(TARGETS uvq-h3-server uvq-h3-client
            RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  endif()
endif()
