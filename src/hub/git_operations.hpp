// GitOperations: git operations run as terminals of kind "git" (PROTOCOL.md §7).
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

#include <nlohmann/json.hpp>

#include "core/uv_handle.hpp"
#include "src/config.hpp"
#include "src/git/git_progress.hpp"
#include "src/git/git_request.hpp"
#include "src/hub/hub.hpp"

namespace ptyhub::hub {

struct GitStartResult {
  Terminal* terminal = nullptr;
  nlohmann::json started;  // the git.operation.started data, when it started
  std::string error_code;  // when it did not: a protocol error code
  std::string message;
  std::string field;
};

class GitOperations {
 public:
  GitOperations(uv_loop_t* loop, const Config& config, Hub& hub, Metrics& metrics);
  ~GitOperations();
  GitOperations(const GitOperations&) = delete;
  GitOperations& operator=(const GitOperations&) = delete;

  // Validates `data` = {operation, repo, args?, url?}, checks the limits, and starts git with
  // `requester` subscribed from offset 0.
  GitStartResult start(const auth::Principal& principal, const nlohmann::json& data, Subscriber* requester);
  // SIGTERM to the operation's session, SIGKILL after kill_grace; it completes as `cancelled`.
  // Returns "" or an error code (not_found for an operation the principal may not read, conflict when done).
  std::string cancel(const auth::Principal& principal, std::string_view operation_id);
  // Only the request checks of start(); false with the error in `result`.
  bool validate(const nlohmann::json& data, GitStartResult* result) const;
  // Publishes git.operation.started on the operation's channel and on shell:terminals (after the reply).
  void publish_started(const GitStartResult& started);

 private:
  struct Operation;

  void on_progress(Operation& operation, std::string_view raw);
  protocol::SharedFrame on_exit(Operation& operation, const pty::ExitStatus& status, uint64_t duration_ms);
  void on_timeout(Operation& operation);
  size_t running_count(const std::string* user) const;
  void forget_terminal(const std::string& terminal_id);

  uv_loop_t* loop_;
  const Config& config_;
  Hub& hub_;
  Metrics& metrics_;
  git::GitPolicy policy_;
  ObserverId removed_observer_ = 0;
  std::map<std::string, std::unique_ptr<Operation>, std::less<>> operations_;  // by operation id
};

}  // namespace ptyhub::hub
