// `ptyhub git …`: start a git operation on the daemon (git.operation.start, docs/protocol.md §4) and, with
// --follow, show its phases and output until it completes; `git watch` follows one started elsewhere by
// its terminal. Loop thread only; returns the exit status (git's own with --follow and watch).
//
// The daemon has no request that lists git operations: `git ls` (requests.hpp) lists the terminals of kind
// `git`, and `git watch` takes such a terminal's id. Progress events are not replayed to a late
// subscriber, so `git watch` shows the phases from the moment it subscribed (and git's output from the
// start); after a live upgrade the daemon sends no more git.operation.* events, so a resumed run ends on
// the terminal's shell.exit.
#pragma once

#include <string>
#include <vector>

#include "cli/client.hpp"
#include "cli/event_loop.hpp"

namespace ptyhub::cli {

struct GitSpec {
  std::string operation;          // clone, fetch, pull, push, status, log, diff; "watch" for git watch
  std::string repo;               // relative to the daemon's repos_root
  std::string url;                // clone only
  std::vector<std::string> args;  // options for git, checked by the daemon
  bool follow = false;
  std::string terminal_id;        // watch
};

int run_git(EventLoop& loop, ClientSettings settings, const GitSpec& spec);

}  // namespace ptyhub::cli
