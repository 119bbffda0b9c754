// Hub: terminals, lifecycle channel, limits.
#include "src/hub/hub.hpp"

#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>

#include "auth/base64url.hpp"
#include "core/log.hpp"
#include "core/random.hpp"
#include "src/protocol/envelope.hpp"

extern char** environ;

namespace ptyhub::hub {
namespace {

using nlohmann::json;

// Variables of the daemon's own environment that describe the daemon, not the terminal.
bool daemon_only_variable(std::string_view name) {
  static constexpr std::string_view kNames[] = {
      "JOURNAL_STREAM", "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "WATCHDOG_USEC",
      "WATCHDOG_PID", "CREDENTIALS_DIRECTORY", "INVOCATION_ID", "SYSTEMD_EXEC_PID"};
  return std::find(std::begin(kNames), std::end(kNames), name) != std::end(kNames);
}

}  // namespace

std::string new_terminal_id() {
  // Never with a leading '-' (one id in 64 would have one): it would read as an option to a command line
  // such as `ptyhub kill ID` (docs/protocol.md §5).
  for (;;) {
    unsigned char bytes[16];
    random_bytes(bytes, sizeof bytes);
    std::string id = auth::base64url_encode(std::string_view(reinterpret_cast<char*>(bytes), sizeof bytes));
    if (id.front() != '-') return id;
  }
}

Hub::Hub(uv_loop_t* loop, HubLimits limits, Metrics& metrics)
    : loop_(loop), limits_(std::move(limits)), metrics_(metrics) {}

Hub::~Hub() {
  // Timers first (their callbacks point at this), then terminals: a running PtyProcess kills and
  // reaps its session when destroyed.
  hang_ups_.stop();
  removal_timers_.clear();
  terminals_.clear();
}

std::vector<std::string> Hub::child_environment(const std::map<std::string, std::string>& extra) const {
  std::map<std::string, std::string> vars;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string_view text(*entry);
    const size_t eq = text.find('=');
    if (eq == std::string_view::npos || daemon_only_variable(text.substr(0, eq))) continue;
    vars[std::string(text.substr(0, eq))] = std::string(text.substr(eq + 1));
  }
  vars["TERM"] = "xterm-256color";
  vars["COLORTERM"] = "truecolor";
  for (const auto& [name, value] : extra) vars[name] = value;
  std::vector<std::string> env;
  env.reserve(vars.size());
  for (const auto& [name, value] : vars) env.push_back(name + "=" + value);
  return env;
}

size_t Hub::count_owned_by(const std::string& user) const {
  auto it = owned_counts_.find(user);
  return it == owned_counts_.end() ? 0 : it->second;
}

CreateResult Hub::create(const auth::Principal& owner, const CreateOptions& options, Subscriber* subscriber,
                         Encoding encoding) {
  CreateResult result;
  // Only running terminals count: an exited one is history, never a reason to refuse a new terminal.
  if (running_ >= limits_.max_terminals) {
    result.failure = CreateFailure::limit_total;
    result.message = "the daemon has max_terminals (" + std::to_string(limits_.max_terminals) + ") terminals";
    return result;
  }
  if (count_owned_by(owner.user) >= limits_.max_terminals_per_user) {
    result.failure = CreateFailure::limit_user;
    result.message = "you have max_terminals_per_user (" + std::to_string(limits_.max_terminals_per_user) +
                     ") terminals";
    return result;
  }
  TerminalSpec spec;
  spec.id = new_terminal_id();
  spec.owner = owner.user;
  spec.name = options.name;
  spec.command = options.command.empty() ? std::vector<std::string>{limits_.shell} : options.command;
  spec.cwd = options.cwd.empty() ? limits_.home : options.cwd;
  spec.cols = options.cols;
  spec.rows = options.rows;
  spec.pipes = options.pipes;
  spec.kind = options.kind;
  spec.operation = options.operation;
  spec.node = node_;
  auto terminal =
      std::make_unique<Terminal>(std::move(spec), limits_.terminal, metrics_, [this](Terminal& t) { on_terminal_exit(t); });
  if (subscriber != nullptr) terminal->subscribe(subscriber, encoding, 0);
  pty::SpawnError error;
  std::vector<std::string> environment = options.environment ? *options.environment : child_environment(options.env);
  // Descendants inherit it: the daemon attributes processes they leave behind to this terminal.
  const std::string variable = std::string(kTerminalIdVariable) + "=";
  std::erase_if(environment, [&](const std::string& entry) { return entry.starts_with(variable); });
  environment.push_back(variable + terminal->id());
  if (!terminal->start(loop_, std::move(environment), 2000, &error)) {
    result.failure = error.failure == pty::SpawnFailure::cwd       ? CreateFailure::cwd
                     : error.failure == pty::SpawnFailure::command ? CreateFailure::command
                                                                   : CreateFailure::system;
    result.message = error.message;
    return result;
  }
  Terminal* created = terminal.get();
  terminals_.emplace(created->id(), std::move(terminal));
  ++owned_counts_[created->owner()];
  ++running_;
  publish_lifecycle(*created, protocol::event_frame("shell.created", "shell:terminals", {{"terminal", created->to_json()}}));
  on_created_.notify(*created);
  result.terminal = created;
  return result;
}

Terminal* Hub::add_mirror(TerminalSpec spec, int64_t created_at_ms, RemoteOwner* remote) {
  if (terminals_.count(spec.id) != 0) return nullptr;
  auto terminal = std::make_unique<Terminal>(std::move(spec), limits_.terminal, metrics_,
                                             [this](Terminal& t) { on_terminal_exit(t); }, remote, created_at_ms, loop_);
  Terminal* added = terminal.get();
  terminals_.emplace(added->id(), std::move(terminal));
  publish_lifecycle(*added, protocol::event_frame("shell.created", "shell:terminals", {{"terminal", added->to_json()}}));
  return added;
}

void Hub::remove_mirror(const std::string& id) {
  Terminal* terminal = find_any(id);
  if (terminal != nullptr && terminal->mirror()) remove(id);
}

Terminal* Hub::find_readable(const auth::Principal& principal, std::string_view id) {
  auto it = terminals_.find(id);
  if (it == terminals_.end()) return nullptr;
  if (it->second->access_for(principal) == auth::Access::none) return nullptr;
  return it->second.get();
}

std::vector<Terminal::Snapshot> Hub::snapshot(bool with_rings) const {
  std::vector<Terminal::Snapshot> out;
  for (const auto& [id, terminal] : terminals_) {
    if (!terminal->mirror()) out.push_back(terminal->snapshot(with_rings));
  }
  return out;
}

Terminal* Hub::restore(Terminal::Snapshot& snapshot, UniqueFd master, UniqueFd pidfd, std::string* error) {
  if (snapshot.spec.id.empty() || terminals_.count(snapshot.spec.id) != 0) {
    *error = "terminal id " + snapshot.spec.id + " is empty or taken";
    return nullptr;
  }
  TerminalSpec spec = snapshot.spec;
  spec.node = node_;
  auto terminal =
      std::make_unique<Terminal>(std::move(spec), limits_.terminal, metrics_, [this](Terminal& t) { on_terminal_exit(t); });
  if (!terminal->restore(loop_, snapshot, std::move(master), std::move(pidfd), 2000, error)) return nullptr;
  Terminal* restored = terminal.get();
  terminals_.emplace(restored->id(), std::move(terminal));
  if (restored->running()) {
    ++owned_counts_[restored->owner()];
    ++running_;
  } else {
    exited_order_.push_back(restored->id());
    schedule_removal(*restored);
  }
  on_created_.notify(*restored);
  return restored;
}

Terminal* Hub::find_operation(std::string_view operation_id) {
  if (operation_id.empty()) return nullptr;
  for (auto& [id, terminal] : terminals_) {
    if (terminal->spec().operation == operation_id) return terminal.get();
  }
  return nullptr;
}

Terminal* Hub::find_any(std::string_view id) {
  auto it = terminals_.find(id);
  return it == terminals_.end() ? nullptr : it->second.get();
}

std::vector<Terminal*> Hub::list_readable(const auth::Principal& principal) {
  std::vector<Terminal*> out;
  for (auto& [id, terminal] : terminals_) {
    if (terminal->access_for(principal) != auth::Access::none) out.push_back(terminal.get());
  }
  return out;
}

void Hub::subscribe_lifecycle(Subscriber* subscriber) {
  if (std::find(lifecycle_subscribers_.begin(), lifecycle_subscribers_.end(), subscriber) ==
      lifecycle_subscribers_.end()) {
    lifecycle_subscribers_.push_back(subscriber);
  }
}

void Hub::unsubscribe_lifecycle(Subscriber* subscriber) { std::erase(lifecycle_subscribers_, subscriber); }

void Hub::on_room(Subscriber* subscriber) {
  const std::vector<Terminal*> linked(subscriber->linked_terminals().begin(), subscriber->linked_terminals().end());
  for (Terminal* terminal : linked) {
    if (!subscriber->has_room()) return;
    if (terminal->subscribed(subscriber)) terminal->catch_up(subscriber);
  }
}

void Hub::detach(Subscriber* subscriber) {
  unsubscribe_lifecycle(subscriber);
  const std::vector<Terminal*> linked(subscriber->linked_terminals().begin(), subscriber->linked_terminals().end());
  for (Terminal* terminal : linked) {
    terminal->unsubscribe(subscriber);
    terminal->forget_writer(subscriber);
  }
}

void Hub::publish_lifecycle(const Terminal& terminal, const protocol::SharedFrame& frame) {
  for (Subscriber* subscriber : lifecycle_subscribers_) {
    if (terminal.access_for(subscriber->principal()) != auth::Access::none) subscriber->deliver(frame);
  }
}

void Hub::on_terminal_exit(Terminal& terminal) {
  if (!terminal.mirror()) {  // a mirror counts toward nothing here; its owner keeps it listed as long
    --running_;
    auto owned = owned_counts_.find(terminal.owner());
    if (owned != owned_counts_.end() && --owned->second == 0) owned_counts_.erase(owned);
    exited_order_.push_back(terminal.id());
  }
  json data = terminal.to_json();
  json event = {{"terminalId", terminal.id()},
                {"exitCode", data["exitCode"]},
                {"signal", data["signal"]},
                {"outputBytes", data["outputBytes"]}};
  if (!terminal.end_reason().empty()) event["reason"] = terminal.end_reason();
  publish_lifecycle(terminal, protocol::event_frame("shell.exit", "shell:terminals", std::move(event)));
  const std::string owner = terminal.owner();
  const std::string id = terminal.id();
  if (terminal.mirror()) {
    schedule_removal(terminal);  // until its owner removes it, or exited_retention here
    return;
  }
  schedule_removal(terminal);
  on_exited_.notify(id);
  bound_exited(owner, id);
  if (on_all_exited_ && running_count() == 0) {
    auto callback = std::move(on_all_exited_);
    on_all_exited_ = nullptr;
    callback();
  }
}

void Hub::schedule_removal(Terminal& terminal) {
  auto removal = std::make_unique<Removal>();
  removal->hub = this;
  removal->id = terminal.id();
  if (!removal->timer.adopt_init(uv_timer_init(loop_, removal->timer.get()), removal.get())) {
    // Without a timer the terminal stays listed until it is removed otherwise; never a crash.
    log::error("cannot schedule the removal of an exited terminal");
    return;
  }
  uv_unref(removal->timer.as_handle());  // a pending removal never keeps the loop alive
  uv_timer_start(
      removal->timer.get(),
      [](uv_timer_t* handle) {
        const auto* entry = static_cast<const Removal*>(handle->data);
        if (entry != nullptr) entry->hub->remove(std::string(entry->id));  // destroys the entry
      },
      limits_.exited_retention_ms, 0);
  removal_timers_[terminal.id()] = std::move(removal);
}

void Hub::remove(const std::string& id) {
  auto it = terminals_.find(id);
  if (it == terminals_.end()) return;
  publish_lifecycle(*it->second, protocol::event_frame("shell.removed", "shell:terminals", {{"terminalId", id}}));
  if (it->second->mirror()) {
    // counts toward nothing
  } else if (it->second->running()) {
    --running_;
    auto owned = owned_counts_.find(it->second->owner());
    if (owned != owned_counts_.end() && --owned->second == 0) owned_counts_.erase(owned);
  } else {
    std::erase(exited_order_, id);
  }
  terminals_.erase(it);
  removal_timers_.erase(id);
  on_removed_.notify(id);
}

bool Hub::dismiss(const std::string& id) {
  auto it = terminals_.find(id);
  if (it == terminals_.end() || it->second->running()) return false;
  // A mirror goes here at once, and everywhere else once its owner has removed it (docs/cluster.md).
  it->second->dismiss_remote();
  remove(std::string(id));
  return true;
}

void Hub::bound_exited(const std::string& owner, const std::string& keep) {
  // The oldest exited terminal of `owner` (or of anyone), never `keep`: the terminal whose exit is being
  // reported is on the call stack.
  const auto oldest = [&](bool of_owner) -> std::string {
    for (const std::string& id : exited_order_) {
      if (id == keep) continue;
      auto it = terminals_.find(id);
      if (it != terminals_.end() && (!of_owner || it->second->owner() == owner)) return id;
    }
    return {};
  };
  size_t of_owner = 0;
  for (const std::string& id : exited_order_) {
    auto it = terminals_.find(id);
    if (it != terminals_.end() && it->second->owner() == owner) ++of_owner;
  }
  for (; of_owner > limits_.max_terminals_per_user; --of_owner) {
    const std::string id = oldest(true);
    if (id.empty()) break;
    remove(id);
  }
  while (exited_order_.size() > limits_.max_terminals) {
    const std::string id = oldest(false);
    if (id.empty()) break;
    remove(id);
  }
}

void Hub::hang_up_all(std::function<void()> on_all_exited) {
  on_all_exited_ = std::move(on_all_exited);
  hang_up_queue_.clear();
  for (auto& [id, terminal] : terminals_) {
    if (terminal->running() && !terminal->mirror()) hang_up_queue_.push_back(id);  // mirrors are not ours
  }
  std::reverse(hang_up_queue_.begin(), hang_up_queue_.end());
  hang_ups_.run();
  if (on_all_exited_ && running_count() == 0) {
    auto callback = std::move(on_all_exited_);
    on_all_exited_ = nullptr;
    callback();
  }
}

bool Hub::hang_up_batch() {
  for (size_t done = 0; !hang_up_queue_.empty() && done < kHangUpBatch; ++done) {
    const std::string id = std::move(hang_up_queue_.back());
    hang_up_queue_.pop_back();
    Terminal* terminal = find_any(id);
    if (terminal != nullptr && terminal->running()) terminal->kill(SIGHUP, limits_.terminal.kill_grace_ms);
  }
  return !hang_up_queue_.empty();
}

size_t Hub::running_count() const { return running_; }

}  // namespace ptyhub::hub
