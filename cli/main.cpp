// ptyhub: the command-line client of ptyhubd (docs/cli.md). Reads the command line and the settings
// (PTYHUB_URL / --url, PTYHUB_TOKEN / --token-file, --ca), checks each command's operands, and runs the
// command on one libuv loop; the process exits with the status the command ends with (exit_status.hpp).
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cli/client.hpp"
#include "cli/detach_keys.hpp"
#include "cli/endpoint.hpp"
#include "cli/event_loop.hpp"
#include "cli/exit_status.hpp"
#include "cli/git_command.hpp"
#include "cli/options.hpp"
#include "cli/requests.hpp"
#include "cli/terminal_session.hpp"

#ifndef PTYHUB_VERSION
#define PTYHUB_VERSION "0"
#endif

namespace ptyhub::cli {
namespace {

// Prints a usage error and returns its status.
int usage_error(const std::string& message, std::string_view command = {}) {
  std::fprintf(stderr, "ptyhub: %s\n", message.c_str());
  std::fprintf(stderr, "Try 'ptyhub %s%s--help'.\n", std::string(command).c_str(), command.empty() ? "" : " ");
  return exit_status::kUsage;
}

// The token: --token-file's first line, else PTYHUB_TOKEN. False (with `*why`) when the file cannot be read.
bool read_token(const Options& options, std::string* token, std::string* why) {
  if (options.token_file) {
    std::ifstream file(*options.token_file);
    if (!file) {
      *why = "cannot read the token file " + *options.token_file;
      return false;
    }
    std::getline(file, *token);
    while (!token->empty() && (token->back() == '\r' || token->back() == ' ' || token->back() == '\t')) token->pop_back();
    if (token->empty()) {
      *why = "the token file " + *options.token_file + " is empty";
      return false;
    }
    return true;
  }
  if (const char* env = std::getenv("PTYHUB_TOKEN")) *token = env;
  return true;
}

// Connection settings from the options and the environment; false (with `*why`) on a usage error.
bool client_settings(const Options& options, ClientSettings* settings, std::string* why) {
  std::string url(kDefaultUrl);
  if (options.url) url = *options.url;
  else if (const char* env = std::getenv("PTYHUB_URL"); env != nullptr && *env != '\0') url = env;
  std::string problem;
  std::optional<Endpoint> endpoint = parse_endpoint(url, &problem);
  if (!endpoint) {
    *why = "bad URL '" + url + "': " + problem;
    return false;
  }
  settings->url = url;
  settings->ws.endpoint = *endpoint;
  if (!read_token(options, &settings->ws.token, why)) return false;
  if (options.ca_file) {
    if (!std::ifstream(*options.ca_file)) {
      *why = "cannot read the CA file " + *options.ca_file;
      return false;
    }
    settings->ws.ca_file = *options.ca_file;
  }
  if (options.resume_delay) settings->resume_delay = std::chrono::milliseconds(static_cast<int64_t>(*options.resume_delay * 1000));
  if (options.resume_timeout) settings->resume_timeout = std::chrono::milliseconds(static_cast<int64_t>(*options.resume_timeout * 1000));
  return true;
}

// `attach`, `new`, `run`, `watch`.
int run_session(const Options& options, ClientSettings settings) {
  SessionSpec spec;
  const std::string& command = options.command;
  const size_t max_operands = command == "attach" || command == "watch" ? 1 : 0;
  if (options.operands.size() > max_operands) return usage_error("too many operands", command);
  if (command == "watch" && options.operands.empty()) return usage_error("watch needs a TERMINAL", command);
  if (command == "run" && options.after_dashes.empty()) return usage_error("run needs a command after --", command);
  if (command == "attach") spec.mode = SessionMode::attach;
  else if (command == "watch") spec.mode = SessionMode::watch;
  else if (command == "new") spec.mode = SessionMode::create;
  else spec.mode = isatty(STDIN_FILENO) ? SessionMode::run_tty : SessionMode::run_pipes;
  if (!options.operands.empty()) spec.terminal_id = options.operands[0];
  spec.command = options.after_dashes;
  spec.name = options.name;
  spec.cwd = options.cwd;
  if (spec.mode != SessionMode::run_tty && spec.mode != SessionMode::run_pipes) {
    std::string why;
    std::optional<std::string> keys = parse_detach_keys(options.detach_keys.value_or(std::string(kDefaultDetachKeys)), &why);
    if (!keys) return usage_error(why, command);
    spec.detach_keys = *keys;
  }
  EventLoop loop;
  TerminalSession session(loop.get(), std::move(settings), std::move(spec));
  session.start();
  return run_command(loop, session.client(), [&session] { session.close_handles(); });
}

// `git …`.
int run_git_command(const Options& options, ClientSettings settings) {
  const std::string& operation = options.git_operation;
  if (operation.empty()) return usage_error("git needs an operation", "git");
  EventLoop loop;
  if (operation == "ls") {
    if (!options.operands.empty()) return usage_error("git ls takes no operands", "git");
    return run_ls(loop, std::move(settings), ListSpec{options.json, true, options.state});
  }
  GitSpec spec;
  spec.operation = operation;
  spec.follow = options.follow;
  std::vector<std::string> rest = options.operands;
  rest.insert(rest.end(), options.after_dashes.begin(), options.after_dashes.end());
  if (operation == "watch") {
    if (rest.size() != 1) return usage_error("git watch needs exactly one TERMINAL", "git");
    spec.terminal_id = rest[0];
    spec.follow = true;
    return run_git(loop, std::move(settings), spec);
  }
  if (operation == "clone") {
    if (rest.size() < 2) return usage_error("git clone needs a URL and a REPO", "git");
    spec.url = rest[0];
    spec.repo = rest[1];
    spec.args.assign(rest.begin() + 2, rest.end());
  } else {
    if (rest.empty()) return usage_error("git " + operation + " needs a REPO", "git");
    spec.repo = rest[0];
    spec.args.assign(rest.begin() + 1, rest.end());
  }
  return run_git(loop, std::move(settings), spec);
}

// Checks the operands of `command` and runs it.
int dispatch(Options options) {
  const std::string& command = options.command;
  // After "--" come operands, except for the commands that take a command there: `kill -- ID` for an id
  // that starts with '-' (docs/cli.md).
  if (command != "new" && command != "run" && command != "git") {
    options.operands.insert(options.operands.end(), options.after_dashes.begin(), options.after_dashes.end());
    options.after_dashes.clear();
  }
  ClientSettings settings;
  std::string why;
  if (!client_settings(options, &settings, &why)) return usage_error(why, command);
  if (command == "attach" || command == "new" || command == "run" || command == "watch") return run_session(options, std::move(settings));
  if (command == "git") return run_git_command(options, std::move(settings));
  EventLoop loop;
  if (command == "ls") {
    if (!options.operands.empty()) return usage_error("ls takes no operands", command);
    if (options.state && *options.state != "running" && *options.state != "exited") return usage_error("--state is running or exited", command);
    return run_ls(loop, std::move(settings), ListSpec{options.json, false, options.state});
  }
  if (command == "kill") {
    if (options.operands.size() != 1) return usage_error("kill needs exactly one TERMINAL", command);
    std::string signal = options.signal.value_or("SIGHUP");
    if (!signal.starts_with("SIG")) signal = "SIG" + signal;  // --signal TERM
    return run_kill(loop, std::move(settings), options.operands[0], signal);
  }
  if (command == "share") {
    if (options.operands.size() != 3) return usage_error("share needs TERMINAL USER read|write|none", command);
    const std::string& mode = options.operands[2];
    if (mode != "read" && mode != "write" && mode != "none") return usage_error("the mode is read, write or none", command);
    return run_share(loop, std::move(settings), options.operands[0], options.operands[1], mode);
  }
  return usage_error("unknown command");
}

}  // namespace
}  // namespace ptyhub::cli

int main(int argc, char** argv) {
  using namespace ptyhub::cli;
  std::signal(SIGPIPE, SIG_IGN);  // a closed socket or stdout is an error return, not a death
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string why;
  std::optional<Options> options = parse_options(args, &why);
  if (!options) return usage_error(why);
  if (options->version) {
    std::printf("ptyhub %s\n", PTYHUB_VERSION);
    return exit_status::kOk;
  }
  if (options->help) {
    std::fputs(help_text(options->command).c_str(), stdout);
    return exit_status::kOk;
  }
  if (options->command.empty()) {
    std::fputs(help_text("").c_str(), stderr);
    return exit_status::kUsage;
  }
  return dispatch(*options);
}
