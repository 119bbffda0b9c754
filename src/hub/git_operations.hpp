// GitOperations: git operations run as terminals of kind "git" (docs/protocol.md §4 `git.operation.start`).
//
// Each operation is a Terminal started through the Hub with the command that git/git_request.hpp built,
// plus what makes it an operation: its id, a progress parser fed from the PTY output, a timeout, a
// cancel state, and the events git.operation.started / .progress / .completed. `completed` reaches each
// subscriber right after `shell.exit`. Limits: max_git_operations in total and per user while running.
// Owns its operations and their timers; the terminals belong to the Hub. Loop thread only.
#pragma once

#include <uv.h>

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/uv_handle.hpp"
#include "src/git/git_progress.hpp"
#include "src/git/git_request.hpp"
#include "src/hub/hub.hpp"

namespace ptyhub::hub {

// The git settings (docs/configuration.md), in the units GitOperations uses. set_limits() swaps them in:
// the counts apply to git.start from then on, timeout_ms to operations started from then on.
struct GitLimits {
  std::string repos_root;                       // empty: git is disabled
  std::vector<std::string> allowed_protocols;   // URL protocols of clone/fetch/pull/push
  uint64_t max_operations = 16;                 // running at once
  uint64_t max_operations_per_user = 4;
  uint64_t timeout_ms = 1800000;                // then timed_out; 0 = none
  uint64_t kill_grace_ms = 5000;                // SIGTERM -> SIGKILL on cancel and timeout
};

// Where a git operation is. It runs until its process exits; a cancel or its timeout marks it as being
// stopped (the timeout wins over a cancel still waiting for the exit); the exit makes it done.
enum class GitOperationState { running, cancelling, timing_out, succeeded, failed, cancelled, timed_out };

// The `status` of git.operation.completed for a done state: "succeeded", "failed", "cancelled", "timed_out".
std::string_view to_string(GitOperationState state);

struct GitStartResult {
  Terminal* terminal = nullptr;
  nlohmann::json started;  // the git.operation.started data, when it started
  std::string error_code;  // when it did not: a protocol error code
  std::string message;
  std::string field;
};

class GitOperations {
 public:
  GitOperations(uv_loop_t* loop, GitLimits limits, Hub& hub, Metrics& metrics);
  ~GitOperations();
  GitOperations(const GitOperations&) = delete;
  GitOperations& operator=(const GitOperations&) = delete;

  // New settings (SIGHUP); see GitLimits for what they apply to.
  void set_limits(GitLimits limits);

  // Validates `data` = {operation, repo, args?, url?}, checks the limits, and starts git with
  // `requester` subscribed from offset 0.
  GitStartResult start(const auth::Principal& principal, const nlohmann::json& data, Subscriber* requester);
  // SIGTERM to the operation's session, SIGKILL after kill_grace; it completes as `cancelled`.
  // Returns "" or an error code (not_found for an operation the principal may not read, conflict when done).
  // An operation another node runs is cancelled there (cluster mode).
  std::string cancel(const auth::Principal& principal, std::string_view operation_id);
  // Only the request checks of start(); false with the error in `result`.
  bool validate(const nlohmann::json& data, GitStartResult* result) const;
  // Publishes git.operation.started on the operation's channel and on shell:terminals (after the reply).
  void publish_started(const GitStartResult& started);

  // Live upgrade (docs/upgrade.md): what the next image needs to go on with the operation that terminal
  // `terminal_id` runs (its id, owner, request, state and the time left before its timeout); null when it
  // runs none.
  nlohmann::json export_state(const std::string& terminal_id) const;
  // The next image: the operation of a restored terminal goes on — progress, timeout and
  // git.operation.completed as if nothing happened. False with `error` when `state` does not name a
  // restored terminal of kind "git" or lacks a field; nothing changes then.
  bool adopt(const nlohmann::json& state, std::string* error);

 private:
  struct Operation;

  void on_progress(Operation& operation, std::string_view raw);
  protocol::SharedFrame on_exit(Operation& operation, const pty::ExitStatus& status, uint64_t duration_ms);
  void on_timeout(Operation& operation);
  void start_timeout(Operation& operation, uint64_t ms);
  // Follows the terminal's output (progress) and exit (completed).
  void follow(Operation& operation, Terminal& terminal);
  bool cancel_running(Operation& operation);  // false when it has ended
  size_t running_count(const std::string* user) const;
  void forget_terminal(const std::string& terminal_id);

  uv_loop_t* loop_;
  GitLimits limits_;
  Hub& hub_;
  Metrics& metrics_;
  git::GitPolicy policy_;
  ObserverId removed_observer_ = 0;
  std::map<std::string, std::unique_ptr<Operation>, std::less<>> operations_;  // by operation id
};

}  // namespace ptyhub::hub
