# Configures, builds and runs a consumer project in a fresh build directory: cmake -P run_consumer.cmake with
#   -DSOURCE_DIR=... -DBINARY_DIR=... -DGENERATOR=... -DCXX_COMPILER=... -DBUILD_TYPE=...
#   [-DMAKE_PROGRAM=...] [-DCONFIGURE_ARGS=a;b;...] (list separated by '|' to survive the command line)
# Every step's failure fails the script, and so the test.
cmake_minimum_required(VERSION 3.25)

foreach(_var SOURCE_DIR BINARY_DIR GENERATOR CXX_COMPILER BUILD_TYPE)
  if(NOT DEFINED ${_var} OR "${${_var}}" STREQUAL "")
    message(FATAL_ERROR "run_consumer.cmake: -D${_var}=... is required")
  endif()
endforeach()

string(REPLACE "|" ";" _extra "${CONFIGURE_ARGS}")
set(_configure -S "${SOURCE_DIR}" -B "${BINARY_DIR}" -G "${GENERATOR}" --no-warn-unused-cli "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}"
    "-DCMAKE_BUILD_TYPE=${BUILD_TYPE}" ${_extra})
if(MAKE_PROGRAM)
  list(APPEND _configure "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}")
endif()

# A fresh directory each time: a stale cache would hide a broken package.
file(REMOVE_RECURSE "${BINARY_DIR}")

message(STATUS "configure: cmake ${_configure}")
execute_process(COMMAND "${CMAKE_COMMAND}" ${_configure} COMMAND_ERROR_IS_FATAL ANY)

message(STATUS "build")
execute_process(COMMAND "${CMAKE_COMMAND}" --build "${BINARY_DIR}" --config "${BUILD_TYPE}" COMMAND_ERROR_IS_FATAL ANY)

file(READ "${BINARY_DIR}/app-path-${BUILD_TYPE}.txt" _app)
message(STATUS "run: ${_app}")
execute_process(COMMAND "${_app}" RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "the consumer program failed: ${_rc}")
endif()
