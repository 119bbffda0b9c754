# Checks the layering check (tests/layering.cmake): over a small tree written into WORK it must pass
# while every include goes downwards, then fail, naming exactly the bad files, once some go upwards or
# sideways, or name a file of no component.
#
#   cmake -DSCANNER=<tests/layering.cmake> -DWORK=<scratch directory> -P tests/layering_selfcheck.cmake

cmake_minimum_required(VERSION 3.25)

if(NOT SCANNER OR NOT WORK)
  message(FATAL_ERROR "usage: cmake -DSCANNER=<layering.cmake> -DWORK=<directory> -P layering_selfcheck.cmake")
endif()
set(fixture "${WORK}/layering_fixture")
file(REMOVE_RECURSE "${fixture}")

function(write_source path)
  list(JOIN ARGN "\n" body)
  file(WRITE "${fixture}/${path}" "${body}\n")
endfunction()

function(run_scanner out_result out_output)
  execute_process(COMMAND "${CMAKE_COMMAND}" -DROOT=${fixture} -P "${SCANNER}"
    RESULT_VARIABLE result OUTPUT_VARIABLE output ERROR_VARIABLE output)
  set(${out_result} "${result}" PARENT_SCOPE)
  set(${out_output} "${output}" PARENT_SCOPE)
endfunction()

# A tree where every include respects the layers, relative spelling included.
write_source(core/log.hpp "#pragma once")
write_source(pty/pty_process.hpp "#pragma once" "#include \"core/log.hpp\"")
write_source(src/config.hpp "#pragma once" "#include \"core/log.hpp\"")
write_source(src/hub/hub.hpp "#pragma once" "#include \"pty/pty_process.hpp\"" "#include \"src/config.hpp\"")
write_source(src/hub/hub.cpp "#include \"hub.hpp\"" "  #  include \"core/log.hpp\"" "#include <vector>")
write_source(src/session/client_session.hpp "#include \"src/hub/hub.hpp\"")
write_source(src/server/ws_server.cpp "#include \"src/session/client_session.hpp\"")
write_source(src/systemd/notify.cpp "#include \"src/config.hpp\"")
write_source(src/main.cpp "#include \"src/server/ws_server.cpp\"" "#include \"src/systemd/notify.cpp\"")
write_source(tests/hub_test.cpp "#include \"src/hub/hub.hpp\"")
write_source(cli/main.cpp "#include \"src/protocol/envelope.hpp\"" "#include \"core/log.hpp\"")
# Build trees are not scanned.
write_source(build/include/bad.hpp "#include \"src/server/ws_server.cpp\"")

run_scanner(result output)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "layering_selfcheck: the scanner rejected a tree without violations:\n${output}")
endif()
if(NOT output MATCHES "layering: 14 includes in 11 files respect the layers")
  message(FATAL_ERROR "layering_selfcheck: the scanner did not check the expected includes:\n${output}")
endif()

# Now the violations: upwards, sideways within one layer, upwards through a relative name, unknown.
write_source(core/bad_up.hpp "#include \"src/hub/hub.hpp\"")
write_source(pty/bad_sideways.cpp "#include \"src/config.hpp\"")
write_source(src/hub/bad_up.cpp "#include \"../session/client_session.hpp\"")
write_source(src/systemd/bad_up.cpp "#include \"src/server/ws_server.cpp\"")
write_source(src/session/bad_unknown.cpp "#include \"vendor/thing.hpp\"")
write_source(misc/stray.cpp "int x;")
write_source(cli/bad_edge.cpp "#include \"src/session/client_session.hpp\"")

run_scanner(result output)
if(result EQUAL 0)
  message(FATAL_ERROR "layering_selfcheck: the scanner accepted a tree with violations:\n${output}")
endif()
set(expected
  "core/bad_up.hpp: includes \"src/hub/hub.hpp\" \\(hub\\), but core may include only core"
  "pty/bad_sideways.cpp: includes \"src/config.hpp\" \\(config\\), but pty may include only pty, core"
  "src/hub/bad_up.cpp: includes \"../session/client_session.hpp\" \\(session\\)"
  "src/systemd/bad_up.cpp: includes \"src/server/ws_server.cpp\" \\(server\\)"
  "src/session/bad_unknown.cpp: includes \"vendor/thing.hpp\", which is in no component"
  "misc/stray.cpp: not in any component"
  "cli/bad_edge.cpp: includes \"src/session/client_session.hpp\" \\(session\\), but cli may include only cli, protocol, core"
  "layering: 7 violation\\(s\\)"
)
foreach(pattern IN LISTS expected)
  if(NOT output MATCHES "${pattern}")
    message(FATAL_ERROR "layering_selfcheck: expected \"${pattern}\" in the scanner's report:\n${output}")
  endif()
endforeach()

file(REMOVE_RECURSE "${fixture}")
message(STATUS "layering_selfcheck: the scanner passes a clean tree and reports each violation")
