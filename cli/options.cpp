// parse_options() and help_text(): see options.hpp; docs/cli.md says the same in prose.
#include "cli/options.hpp"

#include <array>
#include <cstdlib>

namespace ptyhub::cli {

namespace {

constexpr std::array<std::string_view, 8> kCommands = {"attach", "new", "run", "ls", "kill", "share", "watch", "git"};
constexpr std::array<std::string_view, 9> kGitOperations = {"clone", "fetch", "pull", "push", "status", "log",
                                                             "diff",  "ls",    "watch"};

// The member an option with a value fills, or nullptr when `name` takes none.
std::optional<std::string>* value_slot(Options& options, std::string_view name) {
  if (name == "--url") return &options.url;
  if (name == "--token-file") return &options.token_file;
  if (name == "--ca") return &options.ca_file;
  if (name == "--detach-keys") return &options.detach_keys;
  if (name == "--signal" || name == "-s") return &options.signal;
  if (name == "--name") return &options.name;
  if (name == "--cwd") return &options.cwd;
  if (name == "--state") return &options.state;
  return nullptr;
}

// Sets a flag option; false when `name` is none.
bool set_flag(Options& options, std::string_view name) {
  if (name == "--help" || name == "-h") options.help = true;
  else if (name == "--version") options.version = true;
  else if (name == "--json") options.json = true;
  else if (name == "--follow" || name == "-f") options.follow = true;
  else return false;
  return true;
}

bool contains(auto list, std::string_view word) {
  for (std::string_view item : list) {
    if (item == word) return true;
  }
  return false;
}

// --resume-timeout's value: seconds, > 0.
bool parse_seconds(const std::string& text, double* out) {
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (text.empty() || end == nullptr || *end != '\0' || !(value > 0) || value > 86400) return false;
  *out = value;
  return true;
}

}  // namespace

std::optional<Options> parse_options(const std::vector<std::string>& args, std::string* why) {
  Options options;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      options.after_dashes.assign(args.begin() + static_cast<long>(i) + 1, args.end());
      break;
    }
    if (arg.size() > 1 && arg[0] == '-') {
      const size_t equals = arg.find('=');
      const std::string name = arg.substr(0, equals);
      if (name == "--resume-timeout" || name == "--resume-delay") {
        std::string value;
        if (equals != std::string::npos) value = arg.substr(equals + 1);
        else if (i + 1 < args.size()) value = args[++i];
        double seconds = 0;
        if (!parse_seconds(value, &seconds)) {
          *why = name + " needs a number of seconds";
          return std::nullopt;
        }
        (name == "--resume-timeout" ? options.resume_timeout : options.resume_delay) = seconds;
        continue;
      }
      if (std::optional<std::string>* slot = value_slot(options, name)) {
        if (equals != std::string::npos) {
          *slot = arg.substr(equals + 1);
        } else if (i + 1 < args.size()) {
          *slot = args[++i];
        } else {
          *why = name + " needs a value";
          return std::nullopt;
        }
        continue;
      }
      if (equals == std::string::npos && set_flag(options, arg)) continue;
      if (options.command == "git" && !options.git_operation.empty()) {
        options.operands.push_back(arg);  // an option for git itself (--ff-only, --depth=1): the daemon checks it
        continue;
      }
      *why = "unknown option " + arg;
      return std::nullopt;
    }
    if (options.command.empty()) {
      if (!contains(kCommands, arg)) {
        *why = "unknown command '" + arg + "'";
        return std::nullopt;
      }
      options.command = arg;
      continue;
    }
    if (options.command == "git" && options.git_operation.empty()) {
      if (!contains(kGitOperations, arg)) {
        *why = "unknown git operation '" + arg + "'";
        return std::nullopt;
      }
      options.git_operation = arg;
      continue;
    }
    options.operands.push_back(arg);
  }
  return options;
}

std::string help_text(std::string_view command) {
  static constexpr std::string_view kSettings =
      "\nSettings (every command):\n"
      "  --url URL            the daemon: ws://HOST:PORT/ws, wss://HOST:PORT/ws or unix:/PATH (env PTYHUB_URL;\n"
      "                       default ws://127.0.0.1:7700/ws)\n"
      "  --token-file FILE    read the token (a JWT) from FILE (else env PTYHUB_TOKEN)\n"
      "  --ca FILE            wss://: verify the daemon's certificate with this CA (PEM)\n"
      "  --resume-timeout S   keep trying to resume a dropped session for S seconds (default 30)\n"
      "  --resume-delay S     wait S seconds before the first new attempt, doubling up to 2 (default 0.1;\n"
      "                       after close 1012, a live upgrade, there is no wait)\n"
      "  -h, --help           this help\n"
      "  --                   ends the options: what follows are operands (new, run: the command)\n"
      "\nExit status: 64 usage, 65 cannot connect, 66 unauthenticated, 67 forbidden, 68 not found,\n"
      "69 refused by the daemon, 70 connection lost; attach/new/run/git --follow end with the terminal's\n"
      "own status (128+N when signal N ended it). See docs/cli.md.\n";
  std::string text;
  if (command == "attach") {
    text = "usage: ptyhub attach [TERMINAL] [--detach-keys KEYS]\n\n"
           "Attach this terminal to a running terminal (the newest running shell when TERMINAL is left out).\n"
           "Detach with Ctrl-\\ then d (--detach-keys, e.g. ctrl-p,ctrl-q). Ends with the terminal's exit status.\n";
  } else if (command == "new") {
    text = "usage: ptyhub new [--name NAME] [--cwd DIR] [--detach-keys KEYS] [-- COMMAND [ARG...]]\n\n"
           "Start a new terminal (the daemon's shell, or COMMAND) and attach to it.\n";
  } else if (command == "run") {
    text = "usage: ptyhub run [--cwd DIR] -- COMMAND [ARG...]\n\n"
           "Run COMMAND in a new terminal and end with its exit status. With a terminal on stdin it is\n"
           "interactive (as `new`, without detaching); otherwise stdin and stdout pass through unchanged,\n"
           "byte for byte, and the end of stdin reaches COMMAND (needs a daemon with stdio pipes).\n";
  } else if (command == "ls") {
    text = "usage: ptyhub ls [--json] [--state running|exited]\n\nList the terminals you may read.\n";
  } else if (command == "kill") {
    text = "usage: ptyhub kill TERMINAL [--signal SIGHUP|SIGINT|SIGTERM|SIGKILL]\n\nSignal a terminal's processes (default SIGHUP).\n";
  } else if (command == "share") {
    text = "usage: ptyhub share TERMINAL USER read|write|none\n\nShare a terminal you own with USER (none revokes).\n";
  } else if (command == "watch") {
    text = "usage: ptyhub watch TERMINAL [--detach-keys KEYS]\n\nShow a terminal read-only: nothing you type is sent.\n";
  } else if (command == "git") {
    text = "usage: ptyhub git clone URL REPO [GIT-OPTION...] [--follow]\n"
           "       ptyhub git fetch|pull|push|status|log|diff REPO [GIT-OPTION...] [--follow]\n"
           "       ptyhub git ls [--json]\n"
           "       ptyhub git watch TERMINAL\n\n"
           "Start a git operation on the daemon (REPO is relative to its repos_root). Without --follow, print\n"
           "the operation and terminal ids; with it, show the phases (progress bars on a terminal, lines\n"
           "otherwise) and git's output, and end with git's exit status. `git ls` lists git terminals;\n"
           "`git watch` follows one started elsewhere.\n";
  } else {
    text = "usage: ptyhub COMMAND [OPTION...]\n\n"
           "Commands:\n"
           "  attach [TERMINAL]        attach to a terminal\n"
           "  new [-- COMMAND...]      start a terminal and attach to it\n"
           "  run -- COMMAND...        run a command, propagate its exit status\n"
           "  ls                       list terminals\n"
           "  kill TERMINAL            signal a terminal\n"
           "  share TERMINAL USER MODE share a terminal (read, write, none)\n"
           "  watch TERMINAL           show a terminal read-only\n"
           "  git OPERATION ...        git clone/fetch/pull/push/status/log/diff, git ls, git watch\n"
           "\n`ptyhub COMMAND --help` describes each.\n";
  }
  return text + std::string(kSettings);
}

}  // namespace ptyhub::cli
