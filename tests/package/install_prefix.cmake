# Installs froster from its build tree into a fresh prefix: cmake -P install_prefix.cmake
#   -DBUILD_DIR=<froster build tree> -DPREFIX=<install prefix> -DBUILD_TYPE=<config>
cmake_minimum_required(VERSION 3.25)
file(REMOVE_RECURSE "${PREFIX}")  # nothing left from an earlier run may satisfy the consumer
execute_process(COMMAND "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${PREFIX}" --config "${BUILD_TYPE}"
                COMMAND_ERROR_IS_FATAL ANY)
foreach(_file include/froster/froster.hpp share/cmake/froster/frosterConfig.cmake
              share/cmake/froster/frosterConfigVersion.cmake share/cmake/froster/frosterTargets.cmake)
  if(NOT EXISTS "${PREFIX}/${_file}")
    message(FATAL_ERROR "the install lacks ${_file}")
  endif()
endforeach()
