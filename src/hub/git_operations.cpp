// GitOperations: git on a PTY, with progress, timeout, cancel and completion events.
#include "src/hub/git_operations.hpp"

#include <csignal>

#include "core/log.hpp"
#include "core/time_format.hpp"
#include "src/protocol/envelope.hpp"

namespace ptyhub::hub {
namespace {

using nlohmann::json;

constexpr uint16_t kGitColumns = 120;  // wide enough that git prints each progress line whole

bool is_running(GitOperationState state) {
  return state == GitOperationState::running || state == GitOperationState::cancelling ||
         state == GitOperationState::timing_out;
}

// The done state of an operation in `state` whose process exited (`clean`: status 0, no signal).
GitOperationState done_state(GitOperationState state, bool clean) {
  if (state == GitOperationState::cancelling) return GitOperationState::cancelled;
  if (state == GitOperationState::timing_out) return GitOperationState::timed_out;
  return clean ? GitOperationState::succeeded : GitOperationState::failed;
}

}  // namespace

std::string_view to_string(GitOperationState state) {
  switch (state) {
    case GitOperationState::running: return "running";
    case GitOperationState::cancelling: return "cancelling";
    case GitOperationState::timing_out: return "timing_out";
    case GitOperationState::succeeded: return "succeeded";
    case GitOperationState::failed: return "failed";
    case GitOperationState::cancelled: return "cancelled";
    case GitOperationState::timed_out: return "timed_out";
  }
  return "failed";
}

struct GitOperations::Operation {
  std::string id;
  std::string terminal_id;
  ObserverId tap = 0;      // the progress parser on the terminal's output
  ObserverId trailer = 0;  // git.operation.completed after shell.exit
  std::string channel;
  std::string owner;
  std::string operation;
  std::string repo;
  json args;
  GitOperationState state = GitOperationState::running;
  GitOperations* owner_of = nullptr;
  git::GitProgressParser parser;
  UvHandle<uv_timer_t> timeout;
};

GitOperations::GitOperations(uv_loop_t* loop, GitLimits limits, Hub& hub, Metrics& metrics)
    : loop_(loop), hub_(hub), metrics_(metrics) {
  set_limits(std::move(limits));
  removed_observer_ = hub_.add_removed_observer([this](const std::string& terminal_id) { forget_terminal(terminal_id); });
  hub_.set_operation_canceller([this](const std::string& operation_id) {
    auto it = operations_.find(operation_id);
    if (it != operations_.end()) cancel_running(*it->second);
  });
}

GitOperations::~GitOperations() {
  hub_.set_operation_canceller(nullptr);
  hub_.remove_removed_observer(removed_observer_);
  for (auto& [id, op] : operations_) {
    if (Terminal* terminal = hub_.find_any(op->terminal_id)) {
      terminal->remove_output_tap(op->tap);
      terminal->remove_exit_trailer(op->trailer);
    }
  }
}

void GitOperations::set_limits(GitLimits limits) {
  limits_ = std::move(limits);
  policy_.repos_root = limits_.repos_root;
  policy_.allowed_protocols = limits_.allowed_protocols;
}

bool GitOperations::validate(const json& data, GitStartResult* result) const {
  git::GitCommand command;
  git::GitRequestError error;
  if (git::build_git_command(data, policy_, &command, &error)) return true;
  result->error_code = error.code;
  result->message = error.message;
  result->field = error.field;
  return false;
}

size_t GitOperations::running_count(const std::string* user) const {
  size_t count = 0;
  for (const auto& [id, op] : operations_) {
    if (is_running(op->state) && (user == nullptr || op->owner == *user)) ++count;
  }
  return count;
}

GitStartResult GitOperations::start(const auth::Principal& principal, const json& data, Subscriber* requester) {
  GitStartResult result;
  git::GitCommand command;
  git::GitRequestError error;
  if (!git::build_git_command(data, policy_, &command, &error)) {
    result.error_code = error.code;
    result.message = error.message;
    result.field = error.field;
    return result;
  }
  if (running_count(nullptr) >= limits_.max_operations ||
      running_count(&principal.user) >= limits_.max_operations_per_user) {
    result.error_code = protocol::code::kLimitExceeded;
    result.message = "too many git operations are running (max_git_operations / max_git_operations_per_user)";
    return result;
  }
  auto op = std::make_unique<Operation>();
  op->id = new_terminal_id();
  op->owner = principal.user;
  op->owner_of = this;
  op->operation = command.operation;
  op->repo = data.value("repo", "");
  op->args = data.contains("args") ? data["args"] : json::array();
  if (!op->timeout.adopt_init(uv_timer_init(loop_, op->timeout.get()), op.get())) {
    result.error_code = protocol::code::kInternal;
    result.message = "cannot set up the operation's timer";
    return result;
  }

  CreateOptions options;
  options.kind = "git";
  options.operation = op->id;
  options.command = command.argv;
  options.cwd = command.cwd;
  options.cols = kGitColumns;
  options.name = "git " + command.operation + " " + op->repo;
  options.environment = git::compose_git_environment(hub_.inherited_environment(), command);
  CreateResult created = hub_.create(principal, options, requester, Encoding::utf8);
  if (created.terminal == nullptr) {
    const bool limit = created.failure == CreateFailure::limit_total || created.failure == CreateFailure::limit_user;
    result.error_code = limit ? protocol::code::kLimitExceeded : protocol::code::kInternal;
    result.message = created.message;
    return result;
  }
  Terminal& terminal = *created.terminal;
  follow(*op, terminal);
  if (limits_.timeout_ms > 0) start_timeout(*op, limits_.timeout_ms);
  result.started = {{"operationId", op->id}, {"terminalId", op->terminal_id}, {"operation", op->operation},
                    {"repo", op->repo},      {"args", op->args},               {"startedAt", iso8601_utc_now()}};
  result.terminal = &terminal;
  ++metrics_.git_started_total;
  operations_.emplace(op->id, std::move(op));
  return result;
}

void GitOperations::follow(Operation& op, Terminal& terminal) {
  Operation* raw = &op;
  op.terminal_id = terminal.id();
  op.channel = terminal.channel();
  op.tap = terminal.add_output_tap([this, raw](std::string_view bytes) { on_progress(*raw, bytes); });
  op.trailer = terminal.add_exit_trailer(
      [this, raw](const pty::ExitStatus& status, uint64_t duration_ms) { return on_exit(*raw, status, duration_ms); });
}

void GitOperations::start_timeout(Operation& op, uint64_t ms) {
  // The loop's time was read before this turn's work (the spawn among it): counted from then, the timeout
  // would end the operation before `ms` of its own duration have passed.
  uv_update_time(op.timeout.get()->loop);
  uv_timer_start(
      op.timeout.get(),
      [](uv_timer_t* handle) {
        auto* operation = static_cast<Operation*>(handle->data);
        if (operation != nullptr) operation->owner_of->on_timeout(*operation);
      },
      ms, 0);
}

json GitOperations::export_state(const std::string& terminal_id) const {
  for (const auto& [id, op] : operations_) {
    if (op->terminal_id != terminal_id) continue;
    json timeout_left = nullptr;
    if (uv_is_active(reinterpret_cast<const uv_handle_t*>(op->timeout.get()))) {
      timeout_left = uv_timer_get_due_in(op->timeout.get());
    }
    return {{"id", op->id},       {"owner", op->owner}, {"operation", op->operation},
            {"repo", op->repo},   {"args", op->args},   {"state", std::string(to_string(op->state))},
            {"timeoutLeftMs", timeout_left}};
  }
  return nullptr;
}

bool GitOperations::adopt(const json& state, std::string* error) {
  const auto text = [&](const char* key) -> std::string {
    auto it = state.find(key);
    return it != state.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  if (!state.is_object()) {
    *error = "the git state is not a map";
    return false;
  }
  auto op = std::make_unique<Operation>();
  op->id = text("id");
  op->owner = text("owner");
  op->operation = text("operation");
  op->repo = text("repo");
  op->args = state.contains("args") && state["args"].is_array() ? state["args"] : json::array();
  const std::string state_name = text("state");
  bool known = false;
  for (GitOperationState candidate : {GitOperationState::running, GitOperationState::cancelling, GitOperationState::timing_out,
                                      GitOperationState::succeeded, GitOperationState::failed, GitOperationState::cancelled,
                                      GitOperationState::timed_out}) {
    if (to_string(candidate) == state_name) {
      op->state = candidate;
      known = true;
    }
  }
  if (op->id.empty() || op->owner.empty() || op->operation.empty() || !known) {
    *error = "the git state lacks its id, owner, operation or a known state";
    return false;
  }
  if (operations_.count(op->id) != 0) {
    *error = "git operation " + op->id + " is there already";
    return false;
  }
  Terminal* terminal = hub_.find_operation(op->id);
  if (terminal == nullptr || terminal->mirror() || terminal->kind() != "git") {
    *error = "git operation " + op->id + " has no restored terminal";
    return false;
  }
  op->owner_of = this;
  if (!op->timeout.adopt_init(uv_timer_init(loop_, op->timeout.get()), op.get())) {
    *error = "cannot set up the operation's timer";
    return false;
  }
  if (!terminal->running()) {
    // It ended while the images changed hands: done with the status its process had.
    const pty::ExitStatus& status = terminal->exit_status();
    if (is_running(op->state)) op->state = done_state(op->state, status.signal == 0 && status.exit_code == 0);
    op->terminal_id = terminal->id();
    op->channel = terminal->channel();
  } else {
    follow(*op, *terminal);
    const json& left = state.contains("timeoutLeftMs") ? state["timeoutLeftMs"] : json();
    if (left.is_number_unsigned()) start_timeout(*op, left.get<uint64_t>());
  }
  operations_.emplace(op->id, std::move(op));
  return true;
}

void GitOperations::publish_started(const GitStartResult& started) {
  Terminal& terminal = *started.terminal;
  terminal.publish_event(protocol::event_frame("git.operation.started", terminal.channel(), started.started));
  hub_.publish_lifecycle(terminal, protocol::event_frame("git.operation.started", "shell:terminals", started.started));
}

void GitOperations::on_progress(Operation& op, std::string_view raw) {
  Terminal* terminal = nullptr;
  for (const git::GitProgress& progress : op.parser.feed(raw)) {
    json data = {{"operationId", op.id}, {"phase", progress.phase}, {"current", progress.current},
                 {"total", nullptr},     {"percent", nullptr}};
    if (progress.total) data["total"] = *progress.total;
    if (progress.percent) data["percent"] = *progress.percent;
    if (terminal == nullptr) terminal = hub_.find_any(op.terminal_id);
    if (terminal != nullptr) terminal->publish_event(protocol::event_frame("git.operation.progress", op.channel, data));
  }
}

protocol::SharedFrame GitOperations::on_exit(Operation& op, const pty::ExitStatus& status, uint64_t duration_ms) {
  op.state = done_state(op.state, status.signal == 0 && status.exit_code == 0);
  uv_timer_stop(op.timeout.get());
  const std::string result(to_string(op.state));
  json data = {{"operationId", op.id}, {"terminalId", op.terminal_id}, {"operation", op.operation},
               {"repo", op.repo},      {"status", result},              {"exitCode", nullptr},
               {"durationMs", duration_ms}};
  if (status.signal == 0) data["exitCode"] = status.exit_code;
  // Why it failed, in git's words (docs/protocol.md §4 git.operation.start).
  if (op.state == GitOperationState::failed && !op.parser.first_error().empty()) data["error"] = op.parser.first_error();
  ++metrics_.git_completed[op.operation + "," + result];
  metrics_.git_duration_ms_total += duration_ms;
  log::info("git operation " + result, {{"terminal", op.terminal_id},
                                        {"user", op.owner},
                                        {"operation", op.operation},
                                        {"repo", op.repo},
                                        {"operation_id", op.id},
                                        {"result", result, true}});
  if (Terminal* terminal = hub_.find_any(op.terminal_id)) {
    hub_.publish_lifecycle(*terminal, protocol::event_frame("git.operation.completed", "shell:terminals", data));
  }
  return protocol::event_frame("git.operation.completed", op.channel, std::move(data));
}

void GitOperations::on_timeout(Operation& op) {
  if (!is_running(op.state)) return;
  op.state = GitOperationState::timing_out;
  if (Terminal* terminal = hub_.find_any(op.terminal_id)) terminal->kill(SIGTERM, limits_.kill_grace_ms);
}

std::string GitOperations::cancel(const auth::Principal& principal, std::string_view operation_id) {
  auto it = operations_.find(operation_id);
  if (it == operations_.end()) {
    // Cluster mode: an operation of another node, through its mirror (docs/cluster.md).
    Terminal* remote = hub_.find_operation(operation_id);
    if (remote == nullptr || !remote->mirror() || remote->access_for(principal) == auth::Access::none) {
      return protocol::code::kNotFound;
    }
    if (remote->access_for(principal) != auth::Access::write) return protocol::code::kForbidden;
    if (!remote->running()) return protocol::code::kConflict;
    remote->cancel_remote_operation();
    return "";
  }
  Terminal* terminal = hub_.find_readable(principal, it->second->terminal_id);
  if (terminal == nullptr) return protocol::code::kNotFound;
  if (terminal->access_for(principal) != auth::Access::write) return protocol::code::kForbidden;
  return cancel_running(*it->second) ? "" : protocol::code::kConflict;
}

bool GitOperations::cancel_running(Operation& op) {
  if (!is_running(op.state)) return false;
  if (op.state == GitOperationState::running) op.state = GitOperationState::cancelling;
  if (Terminal* terminal = hub_.find_any(op.terminal_id)) terminal->kill(SIGTERM, limits_.kill_grace_ms);
  return true;
}

void GitOperations::forget_terminal(const std::string& terminal_id) {
  for (auto it = operations_.begin(); it != operations_.end(); ++it) {
    if (it->second->terminal_id == terminal_id) {
      operations_.erase(it);
      return;
    }
  }
}

}  // namespace ptyhub::hub
