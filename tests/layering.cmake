# The layering check: every #include "..." of the project's sources and headers may only name a file of
# its own component or of one below it. Fails, listing each violation, when one names a component above
# (or beside) its own, or a file whose component is unknown.
#
#   cmake -DROOT=<repository root> -P tests/layering.cmake
#
# Registered in ctest as `layering`; `layering_selfcheck` (tests/layering_selfcheck.cmake) runs it over a
# small generated tree with known violations and expects it to fail on exactly those.
#
# Components, by where a file lives (paths relative to ROOT), and the CMake targets they are built in:
#   core      core/                               ptyhub_core
#   pty       pty/                                ptyhub_pty
#   auth      auth/                               ptyhub_auth
#   protocol  src/protocol/                       ptyhub_protocol
#   git       src/git/                            ptyhub_git
#   config    src/config.hpp, src/config.cpp      ptyhub_config
#   screen    src/screen/                         ptyhub_screen
#   hub       src/hub/                            ptyhub_hub
#   session   src/session/                        ptyhub_session
#   server    src/server/                         ptyhub_edge
#   systemd   src/systemd/                        ptyhub_systemd
#   entries   src/cluster/entries.*, redis_value.hpp  ptyhub_cluster_entries (decoders of what Redis holds)
#   cluster   every other file of src/cluster/    ptyhub_cluster
#   upgrade   src/upgrade/                        ptyhub_upgrade
#   daemon    every other file directly in src/   ptyhubd (main.cpp, daemon, key_loader, orphan_reaper)
#   tests     tests/                              the test executables
#   bench     bench/                              pty_local
#   cli       cli/                                ptyhub_cli_core, ptyhub (the command-line client)
#   fuzz      fuzz/                               the libFuzzer targets (-DPTYHUB_FUZZ=ON)
#
# Which components each may include: itself and what its target links to (src/CMakeLists.txt), so
#   server -> session -> hub -> pty / auth / protocol / git / config -> core
# where pty, auth, protocol, git, config and screen are one layer and do not include one another. systemd sits
# beside that stack on config and core; cluster sits beside session on the hub, and its entries (the pure
# decoders of what Redis holds) on nothing but themselves; upgrade on the hub; the daemon sits on top of everything. Tests may include any
# component (each test sees the headers of the libraries it links, which the compiler enforces). The
# command-line client (cli) is a program of its own beside the daemon: it may include only itself,
# protocol and core — nothing of the server edge, sessions or hub.
# The fuzz targets likewise include the parsers they fuzz.
# A new directory of sources needs a line here and an ptyhub_include_root() in its CMakeLists.txt.

cmake_minimum_required(VERSION 3.25)

set(allowed_core core)
set(allowed_pty pty core)
set(allowed_auth auth core)
set(allowed_protocol protocol core)
set(allowed_git git core)
set(allowed_config config core)
set(allowed_screen screen core)
set(allowed_hub hub pty auth protocol git config screen core)
set(allowed_session session ${allowed_hub})
set(allowed_server server ${allowed_session})
set(allowed_systemd systemd config core)
set(allowed_entries entries)
set(allowed_cluster cluster entries ${allowed_hub})
set(allowed_upgrade upgrade ${allowed_hub})
set(allowed_daemon daemon server systemd cluster upgrade ${allowed_session})
set(allowed_tests tests daemon server systemd cluster entries upgrade cli ${allowed_session})
set(allowed_bench bench core)
set(allowed_cli cli protocol core)
set(allowed_fuzz fuzz server cluster entries upgrade ${allowed_session})

if(NOT ROOT)
  message(FATAL_ERROR "usage: cmake -DROOT=<repository root> -P layering.cmake")
endif()
get_filename_component(ROOT "${ROOT}" ABSOLUTE)

# The component of a path relative to ROOT, or "" when it belongs to none.
function(component_of path out)
  set(result "")
  if(path MATCHES "^core/")
    set(result core)
  elseif(path MATCHES "^pty/")
    set(result pty)
  elseif(path MATCHES "^auth/")
    set(result auth)
  elseif(path MATCHES "^src/protocol/")
    set(result protocol)
  elseif(path MATCHES "^src/git/")
    set(result git)
  elseif(path MATCHES "^src/config\\.(hpp|cpp)$")
    set(result config)
  elseif(path MATCHES "^src/screen/")
    set(result screen)
  elseif(path MATCHES "^src/hub/")
    set(result hub)
  elseif(path MATCHES "^src/session/")
    set(result session)
  elseif(path MATCHES "^src/server/")
    set(result server)
  elseif(path MATCHES "^src/systemd/")
    set(result systemd)
  elseif(path MATCHES "^src/cluster/(entries\\.(hpp|cpp)|redis_value\\.hpp)$")
    set(result entries)
  elseif(path MATCHES "^src/cluster/")
    set(result cluster)
  elseif(path MATCHES "^src/upgrade/")
    set(result upgrade)
  elseif(path MATCHES "^src/[^/]+$")
    set(result daemon)
  elseif(path MATCHES "^tests/")
    set(result tests)
  elseif(path MATCHES "^bench/")
    set(result bench)
  elseif(path MATCHES "^cli/")
    set(result cli)
  elseif(path MATCHES "^fuzz/")
    set(result fuzz)
  endif()
  set(${out} "${result}" PARENT_SCOPE)
endfunction()

# The sources: every C/C++ file under ROOT except build trees (build*/, or any directory holding a
# CMakeCache.txt), node_modules/, the web client (web/) and hidden directories.
set(files "")
file(GLOB top RELATIVE "${ROOT}" "${ROOT}/*")
foreach(entry IN LISTS top)
  if(NOT IS_DIRECTORY "${ROOT}/${entry}")
    continue()
  endif()
  if(entry MATCHES "^(build.*|node_modules|web|\\..*)$" OR EXISTS "${ROOT}/${entry}/CMakeCache.txt")
    continue()
  endif()
  file(GLOB_RECURSE found RELATIVE "${ROOT}"
    "${ROOT}/${entry}/*.hpp" "${ROOT}/${entry}/*.cpp" "${ROOT}/${entry}/*.h" "${ROOT}/${entry}/*.cc")
  list(FILTER found EXCLUDE REGEX "(^|/)node_modules/")
  list(APPEND files ${found})
endforeach()
list(SORT files)

set(violations "")
set(checked 0)
foreach(file IN LISTS files)
  component_of("${file}" from)
  if(from STREQUAL "")
    list(APPEND violations "${file}: not in any component (add it to tests/layering.cmake)")
    continue()
  endif()
  get_filename_component(directory "${file}" DIRECTORY)
  file(STRINGS "${ROOT}/${file}" lines REGEX "^[ \t]*#[ \t]*include[ \t]*\"")
  foreach(line IN LISTS lines)
    if(NOT line MATCHES "^[ \t]*#[ \t]*include[ \t]*\"([^\"]+)\"")
      continue()
    endif()
    set(included "${CMAKE_MATCH_1}")
    math(EXPR checked "${checked} + 1")
    # Spelled from the repository root, as the code does; a name relative to the including file's
    # folder is resolved as the compiler would first try it.
    set(target "${included}")
    if(NOT EXISTS "${ROOT}/${target}" AND EXISTS "${ROOT}/${directory}/${included}")
      file(RELATIVE_PATH target "${ROOT}" "${ROOT}/${directory}/${included}")
    endif()
    component_of("${target}" to)
    if(to STREQUAL "")
      list(APPEND violations "${file}: includes \"${included}\", which is in no component")
    elseif(NOT to IN_LIST allowed_${from})
      string(REPLACE ";" ", " may "${allowed_${from}}")
      list(APPEND violations "${file}: includes \"${included}\" (${to}), but ${from} may include only ${may}")
    endif()
  endforeach()
endforeach()

list(LENGTH files file_count)
if(violations)
  list(LENGTH violations count)
  string(REPLACE ";" "\n  " listed "${violations}")
  message(FATAL_ERROR "layering: ${count} violation(s) in ${file_count} files under ${ROOT}:\n  ${listed}\n")
endif()
if(file_count EQUAL 0 OR checked EQUAL 0)
  message(FATAL_ERROR "layering: no sources or no includes found under ${ROOT}")
endif()
message(STATUS "layering: ${checked} includes in ${file_count} files respect the layers")
