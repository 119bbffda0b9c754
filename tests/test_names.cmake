# Every test case name must survive ctest: doctest_discover_tests passes a name to ctest as a CMake list
# element, so a ';' cuts it, and the shortened --test-case filter then matches no case at all. Such a
# ctest test runs nothing and passes. This check fails, naming the file and line, for any TEST_CASE name
# with a ';'.
#
#   cmake -DROOT=<source directory> -P tests/test_names.cmake

cmake_minimum_required(VERSION 3.25)

if(NOT ROOT)
  message(FATAL_ERROR "usage: cmake -DROOT=<source directory> -P test_names.cmake")
endif()

file(GLOB_RECURSE sources "${ROOT}/tests/*.cpp")
set(bad "")
foreach(source IN LISTS sources)
  file(STRINGS "${source}" lines REGEX "TEST_CASE\\(\"")
  foreach(line IN LISTS lines)
    # A ';' inside the quoted name; file(STRINGS) may hand the line over whole (escaped) or cut at the
    # ';', in which case the first piece ends without the name's closing quote.
    if(line MATCHES "TEST_CASE\\(\"[^\"]*;" OR line MATCHES "TEST_CASE\\(\"[^\"]*$")
      file(RELATIVE_PATH relative "${ROOT}" "${source}")
      list(APPEND bad "${relative}: ${line}")
    endif()
  endforeach()
endforeach()
if(bad)
  list(JOIN bad "\n  " listed)
  message(FATAL_ERROR "test case names with ';' (ctest would run nothing for them):\n  ${listed}")
endif()
message(STATUS "test case names: ok")
