// The command line of `ptyhub`: the command, its operands and options, and the settings shared by all
// commands (docs/cli.md). Pure: parse_options() reads only argv; main.cpp adds the environment and files.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ptyhub::cli {

struct Options {
  std::string command;                  // attach, new, run, ls, kill, share, watch, git; "" for none
  std::string git_operation;            // git: clone, fetch, …, ls, watch
  std::vector<std::string> operands;    // what is left after options, before "--"
  std::vector<std::string> after_dashes;// everything after "--" (new, run: the command)
  bool help = false;
  bool version = false;
  bool json = false;                    // ls --json
  bool follow = false;                  // git … --follow
  std::optional<std::string> url;       // --url
  std::optional<std::string> token_file;// --token-file
  std::optional<std::string> ca_file;   // --ca
  std::optional<std::string> detach_keys;
  std::optional<std::string> signal;    // kill --signal
  std::optional<std::string> name;      // new --name
  std::optional<std::string> cwd;       // new/run --cwd
  std::optional<std::string> state;     // ls --state
  std::optional<double> resume_timeout; // --resume-timeout SECONDS
  std::optional<double> resume_delay;   // --resume-delay SECONDS
};

// Parses argv (without argv[0]). nullopt with `*why` set on a usage error.
std::optional<Options> parse_options(const std::vector<std::string>& args, std::string* why);

// The help text of `command` (the general one for ""), ending in a newline.
std::string help_text(std::string_view command);

}  // namespace ptyhub::cli
