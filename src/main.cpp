// ptyhubd: entry point. `ptyhubd [options]` runs the daemon; `ptyhubd token …` mints a development token.
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "auth/jwt.hpp"
#include "core/log.hpp"
#include "core/time_format.hpp"
#include "src/daemon.hpp"
#include "src/key_loader.hpp"

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

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "token") return run_token({args.begin() + 1, args.end()});

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
