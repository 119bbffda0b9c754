// Turning a `git.operation.start` request (docs/protocol.md §4 Requests,
// `git.operation.start`) into the exact git command to run:
// the operation allow-list, each operation's allowed options, ref and pathspec rules, URL protocols,
// and the confinement of every local path to `repos_root`.
//
// Pure apart from filesystem lookups (realpath, lstat, reading a `.git` file) needed to resolve paths;
// spawns nothing and never throws on untrusted input. The caller owns every struct; build_git_command()
// fills `out` only on success. Runs on whichever thread calls it (the loop thread in ptyhubd).
//
// The command is always `git <operation> …` run with execvp (never a shell); every value taken from the
// request is validated, rewritten to a canonical form (`--depth=N`) and placed after `--end-of-options`
// or `--` where git reads refs or paths, so nothing from the client can be read as an option.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ptyhub::git {

struct GitPolicy {
  std::string repos_root;  // empty: git is disabled
  // URL protocols of `git_allowed_protocols`; "ext" and "fd" are never allowed, whatever is listed.
  std::vector<std::string> allowed_protocols{"https", "ssh", "git", "file"};
};

struct GitCommand {
  std::string operation;
  std::string repo_path;          // resolved absolute path: the repository, or for clone the destination
  std::string cwd;                // the repository; for clone the resolved repos_root
  std::vector<std::string> argv;  // starts with "git"
  std::vector<std::pair<std::string, std::string>> env;  // set on top of compose_git_environment()'s base
};

struct GitRequestError {
  // "bad_message" (schema), "forbidden" (a refused option, URL or path), "not_found" (no repository
  // at `repo`/`url`, or the clone destination's parent is missing), "unavailable" (git disabled).
  std::string code;
  std::string message;
  std::string field;  // "data.operation", "data.repo", "data.url", "data.args", "data.args.N"; may be empty
};

// Validates `data` = {operation, repo, args?, url?} against `policy`. On success fills `*out` and returns
// true; otherwise fills `*error` and returns false. Checks run in the order of docs/protocol.md §3 Envelope
// (schema errors first), git's `unavailable` (§4 Requests, `git.operation.start`) before all of them:
// unavailable, then every bad_message check, then forbidden / not_found.
bool build_git_command(const nlohmann::json& data, const GitPolicy& policy, GitCommand* out, GitRequestError* error);

// The operations of docs/protocol.md §4 Requests (`git.operation.start`), in the order listed there.
const std::vector<std::string>& git_operations();

// A branch, tag or remote name by `git check-ref-format`'s rules, stricter: no leading '-' or '+',
// no "..", "@{", "//", control characters, space, ~ ^ : ? * [ \, no component starting with '.' or
// ending with ".lock", no trailing '/' or '.', not "@", at most 255 bytes.
bool is_valid_ref_name(std::string_view name);

// A revision for log, diff, checkout and branch start points: a ref name (or "@") followed by any
// number of ~N / ^N, or a range A..B / A...B of those with at most one side empty.
bool is_valid_revision(std::string_view revision);

// The complete child environment ("KEY=VALUE") for `command`: `inherited` without any GIT_* variable
// (repository, configuration and program overrides come from git's configuration files only) and
// without the variables the command sets, then the command's `env`.
std::vector<std::string> compose_git_environment(const std::vector<std::string>& inherited, const GitCommand& command);

}  // namespace ptyhub::git
