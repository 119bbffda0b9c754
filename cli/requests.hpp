// The one-request commands: `ls`, `kill`, `share` and `git ls` — connect, ask, print the answer, end.
// Each runs on the given loop and returns the exit status (exit_status.hpp). Loop thread only.
#pragma once

#include <string>

#include "cli/client.hpp"
#include "cli/event_loop.hpp"

namespace ptyhub::cli {

struct ListSpec {
  bool json = false;
  bool git_only = false;            // git ls: terminals of kind git
  std::optional<std::string> state; // running | exited
};

int run_ls(EventLoop& loop, ClientSettings settings, const ListSpec& spec);
int run_kill(EventLoop& loop, ClientSettings settings, const std::string& terminal, const std::string& signal);
int run_share(EventLoop& loop, ClientSettings settings, const std::string& terminal, const std::string& user,
              const std::string& mode);

// The `ls` table of `terminals` (a shell.list answer's array), one line per terminal after a header.
std::string terminal_table(const json& terminals, bool git_only);

}  // namespace ptyhub::cli
