// ptyhubd: entry point. `ptyhubd [options]` runs the daemon; `ptyhubd token …` mints a development token;
// `ptyhubd upgrade …` asks the running daemon for a live upgrade and waits for the outcome.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "auth/jwt.hpp"
#include "core/log.hpp"
#include "core/time_format.hpp"
#include "src/daemon.hpp"
#include "src/key_loader.hpp"
#include "src/pid_file.hpp"
#include "src/upgrade/binary_probe.hpp"
#include "src/upgrade/handoff_state.hpp"

namespace {

constexpr const char* kDefaultTokenScope = "terminal:create terminal:read terminal:write";

int usage_error(const std::string& message) {
  std::cerr << "ptyhubd: " << message << "\nTry 'ptyhubd --help'.\n";
  return 2;
}

// `ptyhubd token --sub NAME [--scope "a b"] [--ttl SECONDS] [--config FILE | --jwt-secret-file FILE]`
int run_token(const std::vector<std::string>& args) {
  std::string sub;
  std::string scope = kDefaultTokenScope;
  long long ttl = 3600;
  std::vector<std::string> rest;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    auto value = [&](const char* name) -> const std::string* {
      if (i + 1 >= args.size()) return nullptr;
      (void)name;
      return &args[++i];
    };
    if (arg == "--sub" || arg == "--scope" || arg == "--ttl") {
      const std::string* v = value(arg.c_str());
      if (v == nullptr) return usage_error(arg + " needs a value");
      if (arg == "--sub") sub = *v;
      else if (arg == "--scope") scope = *v;
      else {
        char* end = nullptr;
        ttl = std::strtoll(v->c_str(), &end, 10);
        if (end == v->c_str() || *end != '\0' || ttl <= 0) return usage_error("--ttl must be a positive number of seconds");
      }
    } else {
      rest.push_back(arg);
    }
  }
  if (sub.empty()) return usage_error("token needs --sub NAME");
  std::string secret_file;
  std::string error;
  if (!ptyhub::token_secret_file(rest, &secret_file, &error)) return usage_error(error);
  if (secret_file.empty()) return usage_error("token needs --jwt-secret-file or a config naming one");
  std::string secret;
  if (!ptyhub::read_secret_file(secret_file, &secret, &error)) return usage_error(error);
  std::cout << ptyhub::auth::mint_token(secret, sub, scope, ptyhub::unix_millis_now() / 1000, ttl) << "\n";
  return 0;
}

constexpr const char* kUpgradeHelp =
    "Usage: ptyhubd upgrade [--pid-file FILE | --config FILE] [--timeout SECONDS]\n"
    "\n"
    "Live upgrade of the running daemon (docs/upgrade.md): sends SIGUSR2 to the pid in the daemon's pid_file\n"
    "and waits until FILE.upgrade says how it went. The daemon first asks the binary now at its path whether\n"
    "it takes the handoff; if it does, clients are closed with 1012 and come back, every terminal survives.\n"
    "\n"
    "  --pid-file FILE     the daemon's pid_file (default: the one its settings name, e.g. from --config)\n"
    "  --timeout SECONDS   how long to wait for the outcome (default 60)\n"
    "\n"
    "Exit status: 0 upgraded; 1 the upgrade was refused or failed (the old image serves on), or no answer;\n"
    "2 usage error, or no daemon found.\n";

// The identity of a file, to see it replaced (the daemon renames a new one over it).
struct FileMark {
  bool exists = false;
  dev_t device = 0;
  ino_t inode = 0;
  bool operator==(const FileMark&) const = default;
};

FileMark mark_of(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) return {};
  return {true, info.st_dev, info.st_ino};
}

// `ptyhubd upgrade [--pid-file FILE] [--timeout SECONDS] [daemon options]`
int run_upgrade(const std::vector<std::string>& args) {
  std::string pid_file;
  double timeout_s = 60;
  std::vector<std::string> rest;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << kUpgradeHelp;
      return 0;
    }
    if (arg == "--pid-file" || arg == "--timeout") {
      if (i + 1 >= args.size()) return usage_error(arg + " needs a value");
      const std::string& value = args[++i];
      if (arg == "--pid-file") {
        pid_file = value;
      } else {
        char* end = nullptr;
        timeout_s = std::strtod(value.c_str(), &end);
        if (end == value.c_str() || *end != '\0' || !(timeout_s > 0)) return usage_error("--timeout must be a positive number of seconds");
      }
    } else {
      rest.push_back(arg);
    }
  }
  if (pid_file.empty()) {
    std::string error;
    if (!ptyhub::configured_pid_file(rest, &pid_file, &error)) return usage_error(error);
  }
  if (pid_file.empty()) {
    return usage_error("upgrade needs the daemon's pid file: --pid-file FILE, or settings naming pid_file");
  }
  std::string error;
  const pid_t pid = ptyhub::read_pid_file(pid_file, &error);
  if (pid == 0 || ::kill(pid, 0) != 0) {
    std::cerr << "ptyhubd upgrade: no running daemon: " << (pid == 0 ? error : pid_file + " names " + std::to_string(pid) + ", which is not running") << "\n";
    return 2;
  }
  const std::string result_path = ptyhub::upgrade_result_path(pid_file);
  const FileMark before = mark_of(result_path);
  if (::kill(pid, SIGUSR2) != 0) {
    std::cerr << "ptyhubd upgrade: cannot signal " << pid << ": " << std::strerror(errno) << "\n";
    return 2;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    if (mark_of(result_path) != before) {
      std::ifstream in(result_path);
      std::string line;
      std::getline(in, line);
      const bool ok = line.rfind("ok ", 0) == 0;
      std::cout << "ptyhubd upgrade: pid " << pid << ": " << line << "\n";
      return ok ? 0 : 1;
    }
    if (::kill(pid, 0) != 0) {
      std::cerr << "ptyhubd upgrade: the daemon (pid " << pid << ") is gone; its log says why\n";
      return 1;
    }
    ::usleep(20000);
  }
  std::cerr << "ptyhubd upgrade: no outcome within " << timeout_s << " s; the daemon's log says what happened\n";
  return 1;
}

// `ptyhubd --handoff-probe [daemon options]`: asked by a running daemon before a live upgrade.
int run_handoff_probe(const std::vector<std::string>& args) {
  ptyhub::Invocation invocation = ptyhub::read_command_line(args);
  if (invocation.action != ptyhub::Invocation::Action::run) {
    std::cout << "these settings do not load: " << (invocation.text.empty() ? "not a daemon command line" : invocation.text) << "\n";
    return 2;
  }
  std::cout << ptyhub::upgrade::kProbeAnswer << " " << ptyhub::upgrade::kStateVersion << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "token") return run_token({args.begin() + 1, args.end()});
  if (!args.empty() && args[0] == "upgrade") return run_upgrade({args.begin() + 1, args.end()});
  if (!args.empty() && args[0] == "--handoff-probe") return run_handoff_probe({args.begin() + 1, args.end()});

  ptyhub::Invocation invocation = ptyhub::read_command_line(args);
  switch (invocation.action) {
    case ptyhub::Invocation::Action::help:
      std::cout << invocation.text;
      return 0;
    case ptyhub::Invocation::Action::version:
      std::cout << "ptyhubd " << PTYHUB_VERSION << "\n";
      return 0;
    case ptyhub::Invocation::Action::usage_error:
      return usage_error(invocation.text);
    case ptyhub::Invocation::Action::run:
      break;
  }
  ptyhub::log::init_from_environment();
  return invocation.daemon->run();
}
