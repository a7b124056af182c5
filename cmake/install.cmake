# `make install` (cmake --install): what a user of backflow needs outside the build tree.
#   PREFIX/bin                        backflow-server, backflow (the CLI), backflow-load
#   PREFIX/lib/backflow               libbackflow_mpi.so, for backflow-server --data-parallel
#   PREFIX/share/backflow/proto       the .proto files of the API, for clients in any language
#   PREFIX/share/backflow/models      the example graphs (docs and the examples use them)
#   PREFIX/share/backflow/examples    the Python examples
#   PREFIX/share/doc/backflow         README.md and docs/
#   PREFIX/lib/python3.X/dist-packages/backflow   the Python package with its generated stubs
# Debian's python3 has PREFIX=/usr/local's dist-packages on sys.path; for another prefix, put
# that directory on PYTHONPATH (docs/install.md). The binaries link only Debian's shared libraries.
include(GNUInstallDirs)

install(TARGETS backflow-server backflow backflow-load RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# Opened by backflow-server --data-parallel only (from ../lib/backflow beside its bin/).
install(TARGETS backflow_mpi LIBRARY DESTINATION lib/backflow)
install(DIRECTORY "${PROJECT_SOURCE_DIR}/proto/"
        DESTINATION "${CMAKE_INSTALL_DATADIR}/backflow/proto"
        FILES_MATCHING PATTERN "*.proto")
install(DIRECTORY "${PROJECT_SOURCE_DIR}/models/"
        DESTINATION "${CMAKE_INSTALL_DATADIR}/backflow/models")
install(DIRECTORY "${PROJECT_SOURCE_DIR}/clients/python/examples/"
        DESTINATION "${CMAKE_INSTALL_DATADIR}/backflow/examples"
        FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                         WORLD_READ WORLD_EXECUTE
        PATTERN "__pycache__" EXCLUDE)
install(FILES "${PROJECT_SOURCE_DIR}/README.md" DESTINATION "${CMAKE_INSTALL_DOCDIR}")
# The Docker build context leaves docs/ out (.dockerignore): the image ships without them.
if(IS_DIRECTORY "${PROJECT_SOURCE_DIR}/docs")
  install(DIRECTORY "${PROJECT_SOURCE_DIR}/docs/" DESTINATION "${CMAKE_INSTALL_DOCDIR}/docs")
endif()

# The Python package as clients/python/CMakeLists.txt assembles it (target backflow_python).
if(TARGET backflow_python)
  execute_process(
    COMMAND "${BACKFLOW_PYTHON}" -c
            "import sys; print('%d.%d' % sys.version_info[:2])"
    OUTPUT_VARIABLE BACKFLOW_PYTHON_VERSION OUTPUT_STRIP_TRAILING_WHITESPACE)
  set(BACKFLOW_PYTHON_INSTALL_DIR
      "lib/python${BACKFLOW_PYTHON_VERSION}/dist-packages"
      CACHE STRING "Where make install puts the Python package (relative to PREFIX)")
  install(DIRECTORY "${CMAKE_BINARY_DIR}/python/backflow"
          DESTINATION "${BACKFLOW_PYTHON_INSTALL_DIR}"
          PATTERN "__pycache__" EXCLUDE)
endif()
