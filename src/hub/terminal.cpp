// Terminal: one PTY process as the byte source of its fan-out core.
#include "src/hub/terminal.hpp"

#include <algorithm>
#include <csignal>
#include <cstring>

#include "core/log.hpp"
#include "core/time_format.hpp"
#include "src/protocol/envelope.hpp"
#include "src/protocol/output_frame.hpp"
#include "src/protocol/utf8.hpp"

namespace ptyhub::hub {
namespace {

using nlohmann::json;

uint64_t steady_millis() { return uv_hrtime() / 1000000; }

}  // namespace

Terminal::Terminal(TerminalSpec spec, TerminalLimits limits, Metrics& metrics, ExitHook on_exit)
    : spec_(std::move(spec)),
      limits_(limits),
      metrics_(metrics),
      exit_hook_(std::move(on_exit)),
      fanout_(spec_.id, FanoutLimits{limits.ring_bytes, pty::PtyProcess::kReadBudget}, &metrics),
      created_at_ms_(unix_millis_now()) {}

Terminal::Terminal(TerminalSpec spec, TerminalLimits limits, Metrics& metrics, ExitHook on_exit, RemoteOwner* remote,
                   int64_t created_at_ms, uv_loop_t* loop)
    : spec_(std::move(spec)),
      limits_(limits),
      metrics_(metrics),
      exit_hook_(std::move(on_exit)),
      fanout_(spec_.id, FanoutLimits{limits.ring_bytes, pty::PtyProcess::kReadBudget}, &metrics),
      loop_(loop),
      created_at_ms_(created_at_ms),
      remote_(remote) {
  started_steady_ms_ = steady_millis();
  last_activity_steady_ms_ = started_steady_ms_;
  // Flow control (its holds) re-asks the core on this timer as a local terminal does.
  stall_timer_.adopt_init(uv_timer_init(loop_, stall_timer_.get()), this);
}

Terminal::~Terminal() {
  if (model_) {
    --metrics_.screen_models;
    metrics_.screen_model_bytes -= model_bytes_;
  }
  for (Sink* sink : fanout_.sinks()) static_cast<Subscriber*>(sink)->linked_.erase(this);
  for (Subscriber* waiter : input_waiters_) waiter->linked_.erase(this);
  if (pid_ == 0) return;  // never started, or a mirror
  if (!exited_) --metrics_.terminals_running;
  else --metrics_.terminals_exited;
}

bool Terminal::init_timers(uv_loop_t* loop, std::string* error) {
  for (UvHandle<uv_timer_t>* timer : {&detached_timer_, &stall_timer_}) {
    if (const int rc = uv_timer_init(loop, timer->get()); rc != 0) {
      *error = std::string("uv_timer_init: ") + uv_strerror(rc);
      return false;
    }
    timer->mark_initialised();
    timer->get()->data = this;
  }
  return true;
}

pty::PtyProcess::Callbacks Terminal::process_callbacks() {
  pty::PtyProcess::Callbacks callbacks;
  callbacks.on_output = [this](std::string_view bytes) { on_output(bytes); };
  callbacks.on_exit = [this](pty::ExitStatus status) { on_exit(status); };
  callbacks.on_input_drained = [this] { on_input_drained(); };
  callbacks.on_fault = [this](pty::PtyFault fault) {
    if (fault.kind == pty::PtyFault::Kind::read) {
      on_fault("read_failed", std::string("reading the terminal's output failed: ") + std::strerror(fault.error_number) +
                                  "; the terminal ends", true);
    } else {
      on_fault("input_failed", std::string("writing input to the terminal failed: ") + std::strerror(fault.error_number) +
                                   "; its input is discarded from now on", false);
    }
  };
  return callbacks;
}

void Terminal::after_start(uv_loop_t* loop) {
  pid_ = process_->pid();
  // One wake-up's read must fit in the ring beside what a held subscriber has still to take.
  process_->set_read_budget(fanout_.read_budget());
  if ((limits_.idle_timeout_ms > 0 || limits_.max_lifetime_ms > 0) &&
      policy_timer_.adopt_init(uv_timer_init(loop, policy_timer_.get()), this)) {
    schedule_policy();
  }
  ++metrics_.terminals_running;
  loop_ = loop;
  update_detached_timer();
}

bool Terminal::start(uv_loop_t* loop, std::vector<std::string> env, uint64_t drain_grace_ms,
                     pty::SpawnError* error) {
  pty::SpawnOptions options;
  options.argv = spec_.command;
  options.cwd = spec_.cwd;
  options.env = std::move(env);
  options.cols = spec_.cols;
  options.rows = spec_.rows;
  options.pipes = spec_.pipes;
  options.drain_grace_ms = drain_grace_ms;
  // The timers first: a failure leaves no process behind.
  if (std::string why; !init_timers(loop, &why)) {
    error->failure = pty::SpawnFailure::system;
    error->message = why;
    return false;
  }
  process_ = pty::PtyProcess::spawn(loop, options, process_callbacks(), error);
  if (!process_) return false;
  started_steady_ms_ = steady_millis();
  last_activity_steady_ms_ = started_steady_ms_;
  ++metrics_.terminals_created_total;
  after_start(loop);
  return true;
}

Terminal::Snapshot Terminal::snapshot(bool with_ring) const {
  Snapshot out;
  out.spec = spec_;
  out.shares = shares_;
  out.created_at_ms = created_at_ms_;
  out.pid = pid_;
  out.exited = exited_;
  out.exit_status = exit_status_;
  out.duration_ms = exit_duration_ms_;
  const uint64_t now = steady_millis();
  out.running_ms = exited_ ? 0 : now - started_steady_ms_;
  out.idle_ms = exited_ ? 0 : now - std::min(now, last_activity_steady_ms_);
  out.detached_ms = exited_ || detached_since_steady_ms_ == 0 ? 0 : now - std::min(now, detached_since_steady_ms_);
  out.end_reason = end_reason_;
  out.ring_start = fanout_.start();
  if (with_ring) out.ring = fanout_.retained();
  out.ring_length = static_cast<size_t>(fanout_.end() - fanout_.start());
  out.carry = carry_;
  return out;
}

bool Terminal::release_process(pty::PtyProcess::Released* out) {
  if (!process_ || exited_ || !process_->release(out)) return false;
  return true;
}

bool Terminal::take_back_process(pty::PtyProcess::Released released, std::string* error) {
  if (!process_ || exited_ || loop_ == nullptr) return false;
  process_.reset();  // released: its destructor leaves the child alone
  process_ = pty::PtyProcess::adopt(loop_, pid_, std::move(released.master), std::move(released.pidfd), 2000,
                                    process_callbacks(), error);
  if (!process_) return false;
  process_->set_read_budget(fanout_.read_budget());
  if (!released.pending_input.empty()) process_->write(released.pending_input);
  if (released.end_input) process_->close_input();
  update_reading();
  return true;
}

bool Terminal::restore(uv_loop_t* loop, Snapshot& snapshot, UniqueFd master, UniqueFd pidfd,
                       uint64_t drain_grace_ms, std::string* error) {
  shares_ = snapshot.shares;
  created_at_ms_ = snapshot.created_at_ms;
  end_reason_ = snapshot.end_reason;
  const uint64_t ring_end = snapshot.ring_start + snapshot.ring.size();
  // The ring moves in (no copy) once nothing can fail any more: a refused snapshot keeps its output.
  const auto take_ring = [&] {
    if (ring_end > 0) fanout_.adopt(ring_end, std::move(snapshot.ring));
    snapshot.ring.clear();
  };
  output_bytes_ = ring_end + snapshot.carry.size();
  if (snapshot.exited) {
    take_ring();
    // Its end again, after the same bytes, for whoever subscribes from now on.
    if (!snapshot.carry.empty()) fanout_.append(fanout_.end(), snapshot.carry);
    exited_ = true;
    exit_status_ = snapshot.exit_status;
    exit_duration_ms_ = snapshot.duration_ms;
    pid_ = snapshot.pid;
    loop_ = loop;
    fanout_.finish(exit_frame(snapshot.duration_ms), {});
    ++metrics_.terminals_exited;
    return true;
  }
  carry_ = snapshot.carry;
  if (!init_timers(loop, error)) return false;
  process_ = pty::PtyProcess::adopt(loop, snapshot.pid, std::move(master), std::move(pidfd), drain_grace_ms,
                                    process_callbacks(), error);
  if (!process_) return false;
  take_ring();  // before the loop runs again: the PTY's next bytes follow it
  // The policy timers go on counting from where they were (idle_timeout, max_lifetime, detached_timeout).
  const uint64_t now = steady_millis();
  started_steady_ms_ = now - std::min(now, snapshot.running_ms);
  last_activity_steady_ms_ = now - std::min(now, snapshot.idle_ms);
  if (snapshot.detached_ms > 0) detached_since_steady_ms_ = std::max<uint64_t>(1, now - std::min(now, snapshot.detached_ms));
  after_start(loop);
  return true;
}

auth::Access Terminal::access_for(const auth::Principal& principal) const {
  return auth::terminal_access(principal, spec_.owner, shares_);
}

json Terminal::to_json() const {
  json t = {
      {"id", spec_.id},
      {"channel", channel()},
      {"kind", spec_.kind},
      {"name", spec_.name},
      {"owner", spec_.owner},
      {"command", spec_.command},
      {"cwd", spec_.cwd},
      {"cols", spec_.cols},
      {"rows", spec_.rows},
      {"stdio", spec_.pipes ? "pipes" : "pty"},
      {"pid", pid_},
      {"createdAt", iso8601_utc(created_at_ms_)},
      {"state", exited_ ? "exited" : "running"},
      {"exitCode", nullptr},
      {"signal", nullptr},
      {"outputBytes", output_bytes_},
      {"lastActivity", iso8601_utc(created_at_ms_ + static_cast<int64_t>(last_activity_steady_ms_ - started_steady_ms_))},
  };
  if (!spec_.node.empty()) t["node"] = spec_.node;
  if (remote_ != nullptr) {
    t["pid"] = nullptr;  // a process of another machine
    t["outputBytes"] = mirror_offset_;
    if (exited_) {
      if (mirror_exit_.exit_code) t["exitCode"] = *mirror_exit_.exit_code;
      if (!mirror_exit_.signal.empty()) t["signal"] = mirror_exit_.signal;
      if (!mirror_exit_.reason.empty()) t["reason"] = mirror_exit_.reason;
    }
    return t;
  }
  if (exited_) {
    if (exit_status_.signal != 0) t["signal"] = pty::signal_name(exit_status_.signal);
    else t["exitCode"] = exit_status_.exit_code;
  }
  return t;
}

// --- subscriptions -------------------------------------------------------------------------------

bool Terminal::may_hold(const Subscriber* subscriber) const {
  return access_for(subscriber->principal()) == auth::Access::write;
}

void Terminal::relink(Subscriber* subscriber) {
  const bool linked = fanout_.subscribed(subscriber) ||
                      std::find(input_waiters_.begin(), input_waiters_.end(), subscriber) != input_waiters_.end();
  if (linked) {
    subscriber->linked_.insert(this);
  } else {
    subscriber->linked_.erase(this);
  }
}

ReplayRange Terminal::subscribe(Subscriber* subscriber, Encoding encoding, std::optional<uint64_t> since) {
  const ReplayRange range = fanout_.subscribe(subscriber, encoding, since, may_hold(subscriber));
  subscriber->linked_.insert(this);
  if (subscribed_at_.emplace(subscriber, unix_millis_now()).second) viewers_changed();
  update_detached_timer();
  return range;
}

void Terminal::unsubscribe(Subscriber* subscriber) {
  if (subscribed_at_.erase(subscriber) != 0) viewers_changed();
  if (!fanout_.unsubscribe(subscriber)) return;
  relink(subscriber);
  update_reading();
  update_detached_timer();
}

bool Terminal::subscribed(const Subscriber* subscriber) const { return fanout_.subscribed(subscriber); }

bool Terminal::set_paused(Subscriber* subscriber, bool paused) {
  if (!fanout_.set_paused(subscriber, paused)) return false;
  update_reading();
  return true;
}

void Terminal::catch_up(Subscriber* subscriber) {
  fanout_.serve(subscriber);
  update_reading();
}

void Terminal::update_reading() {
  if ((!process_ && remote_ == nullptr) || exited_ || !stall_timer_.initialised()) return;
  const uint64_t now = uv_now(loop_);
  SourceDecision decision = fanout_.decide(now);
  if (!remote_holds_.empty()) {  // cluster mode: subscribers of mirrors on other nodes (docs/cluster.md)
    for (auto it = remote_holds_.begin(); it != remote_holds_.end();) {
      if (it->second.expires_ms <= now) {
        it = remote_holds_.erase(it);
        continue;
      }
      if (it->second.urgent || !fanout_.any_live()) decision.read = false;
      ++it;
    }
    if (!remote_holds_.empty()) decision.recheck = true;  // to let them lapse
  }
  if (!remote_progress_.empty()) {  // nodes with writers: stay within their reach (docs/cluster.md)
    for (auto it = remote_progress_.begin(); it != remote_progress_.end();) {
      if (it->second.expires_ms <= now) {
        it = remote_progress_.erase(it);
        continue;
      }
      if (output_bytes_ > it->second.offset + it->second.window) decision.read = false;
      ++it;
    }
    if (!remote_progress_.empty()) decision.recheck = true;
  }
  if (decision.recheck) {
    uv_timer_start(
        stall_timer_.get(),
        [](uv_timer_t* handle) {
          if (auto* self = static_cast<Terminal*>(handle->data)) self->update_reading();
        },
        Fanout::kStallRecheckMs, 0);
  } else {
    uv_timer_stop(stall_timer_.get());
  }
  if (remote_ != nullptr) {  // a mirror holds its owner's terminal back instead of a PTY
    if (const bool holders = fanout_.any_may_hold(); holders != had_holders_) {
      had_holders_ = holders;
      remote_->progress(spec_.id, holders ? std::optional<uint64_t>(mirror_offset_) : std::nullopt);
    }
    if (decision.read == !reading_paused_ && (decision.read || decision.urgent == hold_urgent_)) return;
    reading_paused_ = !decision.read;
    hold_urgent_ = decision.urgent;
    remote_->hold(spec_.id, reading_paused_, hold_urgent_);
    return;
  }
  if (decision.read == !reading_paused_) return;
  reading_paused_ = !decision.read;
  if (decision.read) {
    process_->resume_output();
  } else {
    ++metrics_.pty_read_pauses_total;
    process_->pause_output();
  }
}

void Terminal::schedule_policy() {
  if (!policy_timer_.initialised() || exited_) return;
  const uint64_t now = steady_millis();
  uint64_t due = UINT64_MAX;
  if (limits_.idle_timeout_ms > 0) due = std::min(due, last_activity_steady_ms_ + limits_.idle_timeout_ms);
  if (limits_.max_lifetime_ms > 0) due = std::min(due, started_steady_ms_ + limits_.max_lifetime_ms);
  uv_timer_start(
      policy_timer_.get(),
      [](uv_timer_t* handle) {
        if (auto* self = static_cast<Terminal*>(handle->data)) self->on_policy_timer();
      },
      due > now ? due - now : 0, 0);
}

void Terminal::on_policy_timer() {
  if (exited_ || !end_reason_.empty()) return;
  const uint64_t now = steady_millis();
  if (limits_.max_lifetime_ms > 0 && now >= started_steady_ms_ + limits_.max_lifetime_ms) {
    end_reason_ = "max_lifetime";
  } else if (limits_.idle_timeout_ms > 0 && now >= last_activity_steady_ms_ + limits_.idle_timeout_ms) {
    end_reason_ = "idle_timeout";
  } else {
    schedule_policy();  // there was activity since the timer was set: look again when it can be due
    return;
  }
  log::info("terminal ended by " + end_reason_, {{"terminal", spec_.id}, {"user", spec_.owner}, {"reason", end_reason_, true}});
  kill(SIGHUP, limits_.kill_grace_ms);
}

void Terminal::update_detached_timer() {
  if (!detached_timer_.initialised() || limits_.detached_timeout_ms == 0) return;
  if (fanout_.subscriber_count() > 0 || exited_) {
    uv_timer_stop(detached_timer_.get());
    detached_since_steady_ms_ = 0;
    return;
  }
  if (uv_is_active(detached_timer_.as_handle())) return;
  // A terminal restored from a live upgrade may have been detached for a while already.
  const uint64_t now = steady_millis();
  if (detached_since_steady_ms_ == 0) detached_since_steady_ms_ = now;
  const uint64_t detached_for = now - std::min(now, detached_since_steady_ms_);
  uv_timer_start(
      detached_timer_.get(),
      [](uv_timer_t* handle) {
        auto* self = static_cast<Terminal*>(handle->data);
        if (self != nullptr) self->kill(SIGHUP, self->limits_.kill_grace_ms);
      },
      limits_.detached_timeout_ms - std::min(limits_.detached_timeout_ms, detached_for), 0);
}

// --- input, resize, signals ----------------------------------------------------------------------

bool Terminal::close_input() {
  if (exited_ || remote_ != nullptr || !process_ || !spec_.pipes) return false;
  last_activity_steady_ms_ = steady_millis();
  return process_->close_input() == 0;
}

bool Terminal::write_input(std::string_view bytes, Subscriber* writer) {
  if (exited_) return false;
  if (remote_ != nullptr) {
    last_activity_steady_ms_ = steady_millis();
    remote_->input(spec_.id, bytes);
    return false;
  }
  if (!process_) return false;
  last_activity_steady_ms_ = steady_millis();
  if (process_->write(bytes) == 0) metrics_.pty_bytes_in += bytes.size();
  if (!process_->input_above_high_water() || writer == nullptr) return false;
  if (std::find(input_waiters_.begin(), input_waiters_.end(), writer) == input_waiters_.end()) {
    input_waiters_.push_back(writer);
    writer->linked_.insert(this);
  }
  return true;
}

void Terminal::forget_writer(Subscriber* writer) {
  if (std::erase(input_waiters_, writer) != 0) relink(writer);
}

void Terminal::on_input_drained() {
  std::vector<Subscriber*> waiters;
  waiters.swap(input_waiters_);
  for (Subscriber* waiter : waiters) relink(waiter);
  for (Subscriber* waiter : waiters) waiter->on_input_drained(spec_.id);
}

void Terminal::resize(uint16_t cols, uint16_t rows) {
  if (exited_) return;
  if (remote_ != nullptr) {
    remote_->resize(spec_.id, cols, rows);  // shell.resized comes back in the stream, at its offset
    return;
  }
  if (!process_ || spec_.pipes) return;
  if (const int rc = process_->resize(cols, rows); rc < 0) {
    on_fault("resize_failed", "resizing the terminal to " + std::to_string(cols) + "x" + std::to_string(rows) +
                                  " failed: " + std::strerror(-rc) + "; it keeps its size", false);
    return;
  }
  spec_.cols = cols;
  spec_.rows = rows;
  if (model_) {  // the output so far was drawn at the old size
    model_pump(true);
    model_->resize(cols, rows);
  }
  fanout_.broadcast(
      protocol::event_frame("shell.resized", channel(), {{"terminalId", spec_.id}, {"cols", cols}, {"rows", rows}}));
  changes_.notify(TerminalChange::resized);
}

void Terminal::share(const std::string& user, auth::Access access) {
  if (remote_ != nullptr) remote_->share(spec_.id, user, access);  // and applied here at once
  if (access == auth::Access::none) shares_.erase(user);
  else shares_[user] = access;
  apply_shares_to_subscribers(user);
  if (remote_ == nullptr) changes_.notify(TerminalChange::shared);
}

void Terminal::set_shares(const std::map<std::string, auth::Access, std::less<>>& shares) {
  if (shares == shares_) return;
  std::vector<std::string> users;
  for (const auto& [user, access] : shares_) users.push_back(user);
  for (const auto& [user, access] : shares) users.push_back(user);
  shares_ = shares;
  std::sort(users.begin(), users.end());
  users.erase(std::unique(users.begin(), users.end()), users.end());
  for (const std::string& user : users) apply_shares_to_subscribers(user);
}

void Terminal::apply_shares_to_subscribers(const std::string& user) {
  std::vector<Subscriber*> revoked;
  for (Sink* sink : fanout_.sinks()) {
    auto* subscriber = static_cast<Subscriber*>(sink);  // every sink of a terminal is a Subscriber
    if (subscriber->principal().user != user) continue;
    if (access_for(subscriber->principal()) == auth::Access::none) revoked.push_back(subscriber);
    else fanout_.set_may_hold(subscriber, may_hold(subscriber));
  }
  if (!revoked.empty()) {
    const auto frame = protocol::reply_frame("unsubscribed", nullptr, {{"channel", channel()}, {"reason", "revoked"}});
    for (Subscriber* subscriber : revoked) {
      subscriber->deliver(frame);
      fanout_.unsubscribe(subscriber);
      subscribed_at_.erase(subscriber);
      relink(subscriber);
    }
    viewers_changed();
    update_detached_timer();
  }
  update_reading();
}

void Terminal::kill(int signal, uint64_t grace_ms) {
  if (exited_) return;
  if (remote_ != nullptr) {
    remote_->kill(spec_.id, signal);  // the owner applies its own kill_grace
    return;
  }
  if (!process_) return;
  const bool escalates = signal == SIGHUP || signal == SIGTERM;
  process_->signal_session(signal, escalates ? grace_ms : 0);
}

void Terminal::end(std::string reason, uint64_t grace_ms) {
  if (exited_ || remote_ != nullptr) return;
  if (end_reason_.empty()) end_reason_ = std::move(reason);
  kill(SIGHUP, grace_ms);
}

void Terminal::on_fault(const char* code, const std::string& message, bool ends) {
  log::warn("terminal " + spec_.id + ": " + message);
  ++metrics_.terminal_faults_total;
  fanout_.broadcast(protocol::event_frame("shell.error", channel(),
                                          {{"terminalId", spec_.id}, {"code", code}, {"message", message}}));
  // Its output can no longer be read: the terminal ends, as on shell.kill (SIGHUP, SIGKILL after the grace).
  if (ends) end(code, limits_.kill_grace_ms);
}

void Terminal::publish_event(const protocol::SharedFrame& frame) {
  fanout_.broadcast(frame);
  if (remote_ == nullptr) event_observers_.notify(frame);
}

// --- output --------------------------------------------------------------------------------------

void Terminal::on_output(std::string_view bytes) {
  last_activity_steady_ms_ = steady_millis();
  output_taps_.notify(bytes);
  output_bytes_ += bytes.size();
  metrics_.pty_bytes_out += bytes.size();
  if (carry_.empty()) {
    const size_t complete = protocol::utf8_complete_prefix(bytes);
    fanout_.append(fanout_.end(), bytes.substr(0, complete));
    carry_.assign(bytes.substr(complete));
  } else {
    std::string joined = std::move(carry_);
    joined.append(bytes);
    const size_t complete = protocol::utf8_complete_prefix(joined);
    fanout_.append(fanout_.end(), std::string_view(joined).substr(0, complete));
    carry_.assign(joined, complete, std::string::npos);
  }
  model_wake();
  update_reading();
}

// --- presence -----------------------------------------------------------------------------------------

json Terminal::viewers_json() const {
  struct Viewer {
    std::string role;
    int64_t since = 0;
    int connections = 0;
  };
  std::map<std::string, Viewer> by_user;
  for (const auto& [subscriber, at] : subscribed_at_) {
    const auth::Principal& principal = subscriber->principal();
    Viewer& viewer = by_user[principal.user];
    if (viewer.connections++ == 0 || at < viewer.since) viewer.since = at;
    viewer.role = principal.user == spec_.owner                          ? "owner"
                  : access_for(principal) == auth::Access::write ? "write"
                                                                         : "read";
  }
  std::vector<std::pair<std::string, Viewer>> ordered(by_user.begin(), by_user.end());
  std::stable_sort(ordered.begin(), ordered.end(), [](const auto& a, const auto& b) { return a.second.since < b.second.since; });
  json out = json::array();
  for (const auto& [user, viewer] : ordered) {
    out.push_back({{"user", user}, {"role", viewer.role}, {"since", iso8601_utc(viewer.since)}, {"connections", viewer.connections}});
  }
  return out;
}

void Terminal::viewers_changed() {
  if (loop_ == nullptr) return;
  if (!viewers_timer_.initialised() && !viewers_timer_.adopt_init(uv_timer_init(loop_, viewers_timer_.get()), this)) return;
  if (uv_is_active(viewers_timer_.as_handle())) return;  // coalesced with the change already waiting
  uv_timer_start(
      viewers_timer_.get(),
      [](uv_timer_t* handle) {
        auto* self = static_cast<Terminal*>(handle->data);
        if (self == nullptr) return;
        json viewers = self->viewers_json();
        if (viewers == self->last_viewers_) return;
        self->last_viewers_ = viewers;
        self->fanout_.broadcast(protocol::event_frame("shell.viewers", self->channel(),
                                                      {{"terminalId", self->spec_.id}, {"viewers", std::move(viewers)}}));
      },
      kViewersCoalesceMs, 0);
}

// --- the screen model (snapshots) -----------------------------------------------------------------------

void Terminal::model_wake() {
  if (!limits_.snapshots || loop_ == nullptr) return;
  if (!model_ && exited_ && !snapshot_wanted_) return;  // made again only when a snapshot asks for it
  if (!model_) {
    model_ = std::make_unique<screen::ScreenModel>(spec_.cols, spec_.rows, limits_.snapshot_scrollback);
    ++metrics_.screen_models;
    model_offset_ = fanout_.start();
    model_tokens_ms_ = steady_millis();
    if (model_offset_ > 0) {  // restored after a live upgrade, or the ring had wrapped already
      model_exact_ = false;
      model_reason_ = "history_before_ring";
    }
  }
  if (!model_timer_.initialised() && !model_timer_.adopt_init(uv_timer_init(loop_, model_timer_.get()), this)) return;
  if (model_offset_ < fanout_.end() && !uv_is_active(model_timer_.as_handle())) {
    uv_timer_start(
        model_timer_.get(),
        [](uv_timer_t* handle) {
          if (auto* self = static_cast<Terminal*>(handle->data)) self->model_pump(false);
        },
        kModelTickMs, 0);
  }
}

void Terminal::model_drop() {
  if (!model_) return;
  if (model_timer_.initialised()) uv_timer_stop(model_timer_.get());
  --metrics_.screen_models;
  metrics_.screen_model_bytes -= model_bytes_;
  model_bytes_ = 0;
  model_.reset();
  model_offset_ = 0;
  model_exact_ = true;
  model_reason_.clear();
}

void Terminal::model_skip_to(uint64_t offset, const char* reason) {
  if (offset <= model_offset_) return;
  model_offset_ = offset;
  if (model_exact_) {
    model_exact_ = false;
    model_reason_ = reason;
  }
}

void Terminal::model_pump(bool all) {
  if (!model_) return;
  const uint64_t end = fanout_.end();
  if (model_offset_ < fanout_.start()) model_skip_to(fanout_.start(), "output_skipped");
  if (end - model_offset_ > kModelLag) model_skip_to(end - kModelLag, "output_skipped");
  const uint64_t now = steady_millis();
  model_tokens_ = std::min<double>(kModelBurst, model_tokens_ + static_cast<double>(now - model_tokens_ms_) * kModelRate / 1000.0);
  model_tokens_ms_ = now;
  size_t allowance = static_cast<size_t>(end - model_offset_);
  if (!all) allowance = std::min({allowance, kModelChunk, static_cast<size_t>(std::max(0.0, model_tokens_))});
  if (allowance > 0) {
    std::string bytes;
    fanout_.read(model_offset_, allowance, &bytes);
    model_->feed(bytes);
    model_offset_ += bytes.size();
    model_tokens_ -= static_cast<double>(bytes.size());
    model_account();
  }
  if (!all && model_offset_ < end) model_wake();
}

void Terminal::model_account() {
  const size_t now = model_->memory_bytes();
  metrics_.screen_model_bytes += now;
  metrics_.screen_model_bytes -= model_bytes_;
  model_bytes_ = now;
}

std::optional<Terminal::ScreenSnapshot> Terminal::screen_snapshot() {
  if (!limits_.snapshots) return std::nullopt;
  if (!model_) {
    snapshot_wanted_ = true;
    model_wake();
    snapshot_wanted_ = false;
    if (!model_) return std::nullopt;
  }
  model_pump(true);  // at most kModelLag bytes behind: caught up now
  ScreenSnapshot out;
  out.offset = model_offset_;
  out.cols = model_->cols();
  out.rows = model_->rows();
  out.data = model_->snapshot();
  out.exact = model_exact_;
  out.reason = model_reason_;
  ++metrics_.snapshots_total;
  if (exited_) model_drop();  // made for this request only
  return out;
}

protocol::SharedFrame Terminal::exit_frame(uint64_t duration_ms) const {
  json data = {{"terminalId", spec_.id},
               {"exitCode", nullptr},
               {"signal", nullptr},
               {"durationMs", duration_ms},
               {"outputBytes", output_bytes_}};
  if (exit_status_.signal != 0) data["signal"] = pty::signal_name(exit_status_.signal);
  else data["exitCode"] = exit_status_.exit_code;
  if (!end_reason_.empty()) data["reason"] = end_reason_;
  return protocol::event_frame("shell.exit", channel(), std::move(data));
}

void Terminal::on_exit(pty::ExitStatus status) {
  if (!carry_.empty()) {  // an incomplete character at the very end goes out as it is
    std::string rest = std::move(carry_);
    carry_.clear();
    fanout_.append(fanout_.end(), rest);
    model_wake();
  }
  exited_ = true;
  exit_status_ = status;
  if (stall_timer_.initialised()) uv_timer_stop(stall_timer_.get());
  --metrics_.terminals_running;
  ++metrics_.terminals_exited;
  const uint64_t duration_ms = steady_millis() - started_steady_ms_;
  exit_duration_ms_ = duration_ms;
  const std::string ending = status.signal != 0 ? pty::signal_name(status.signal) : std::to_string(status.exit_code);
  log::info("terminal exited", {{"terminal", spec_.id},
                                {"user", spec_.owner},
                                {status.signal != 0 ? "signal" : "exit_code", ending, true},
                                {"duration_ms", std::to_string(duration_ms), true}});
  if (policy_timer_.initialised()) uv_timer_stop(policy_timer_.get());
  std::vector<protocol::SharedFrame> trailers = exit_trailers_.collect<protocol::SharedFrame>(status, duration_ms);
  std::erase(trailers, nullptr);
  exit_trailer_frames_ = trailers;
  fanout_.finish(exit_frame(duration_ms), std::move(trailers));
  model_drop();  // an exited terminal keeps no model: a snapshot of it is made again from its ring
  update_detached_timer();
  on_input_drained();
  changes_.notify(TerminalChange::exited);
  if (exit_hook_) exit_hook_(*this);
}

// --- mirrors -------------------------------------------------------------------------------------

void Terminal::append_mirrored(uint64_t offset, std::string_view bytes) {
  if (exited_ || remote_ == nullptr) return;
  if (offset + bytes.size() <= mirror_offset_) return;  // known already
  if (offset < mirror_offset_) {
    bytes.remove_prefix(static_cast<size_t>(mirror_offset_ - offset));
    offset = mirror_offset_;
  }
  if (offset > mirror_offset_) {
    // A hole (trimmed, lost): what was carried of a character before it goes out as it is.
    if (!carry_.empty()) {
      std::string rest = std::move(carry_);
      carry_.clear();
      fanout_.append(mirror_offset_ - rest.size(), rest);
    }
    fanout_.append(offset, {});
    if (model_) model_skip_to(offset, "output_skipped");  // a hole: the model cannot know what was in it
  }
  mirror_offset_ = offset + bytes.size();
  last_activity_steady_ms_ = steady_millis();
  std::string joined = std::move(carry_);
  carry_.clear();
  const uint64_t start = offset - joined.size();
  joined.append(bytes);
  const size_t complete = protocol::utf8_complete_prefix(joined);
  fanout_.append(start, std::string_view(joined).substr(0, complete));
  carry_.assign(joined, complete, std::string::npos);
  model_wake();
  update_reading();
}

void Terminal::set_remote_hold(const std::string& node, bool held, bool urgent) {
  if (remote_ != nullptr || exited_ || loop_ == nullptr) return;
  if (held) {
    remote_holds_[node] = RemoteHold{urgent, uv_now(loop_) + kRemoteHoldMs};
  } else if (remote_holds_.erase(node) == 0) {
    return;
  }
  update_reading();
}

void Terminal::clear_remote_holds() {
  if (remote_holds_.empty() && remote_progress_.empty()) return;
  remote_holds_.clear();
  remote_progress_.clear();
  update_reading();
}

void Terminal::set_remote_progress(const std::string& node, std::optional<uint64_t> offset, uint64_t window) {
  if (remote_ != nullptr || exited_ || loop_ == nullptr) return;
  if (offset) {
    remote_progress_[node] =
        RemoteProgress{*offset, window > 0 ? window : limits_.ring_bytes / 2, uv_now(loop_) + kRemoteHoldMs};
  } else if (remote_progress_.erase(node) == 0) {
    return;
  }
  update_reading();
}

void Terminal::mirror_resized(uint16_t cols, uint16_t rows) {
  if (exited_ || remote_ == nullptr) return;
  spec_.cols = cols;
  spec_.rows = rows;
  if (model_) {
    model_pump(true);
    model_->resize(cols, rows);
  }
  publish_event(
      protocol::event_frame("shell.resized", channel(), {{"terminalId", spec_.id}, {"cols", cols}, {"rows", rows}}));
}

void Terminal::mirror_exited(const MirrorExit& exit, std::vector<protocol::SharedFrame> trailers) {
  if (exited_ || remote_ == nullptr) return;
  if (!carry_.empty()) {
    std::string rest = std::move(carry_);
    carry_.clear();
    fanout_.append(mirror_offset_ - rest.size(), rest);
  }
  exited_ = true;
  mirror_exit_ = exit;
  exit_duration_ms_ = exit.duration_ms;
  end_reason_ = exit.reason;
  json data = {{"terminalId", spec_.id},       {"exitCode", nullptr},         {"signal", nullptr},
               {"durationMs", exit.duration_ms}, {"outputBytes", mirror_offset_}};
  if (exit.exit_code) data["exitCode"] = *exit.exit_code;
  if (!exit.signal.empty()) data["signal"] = exit.signal;
  if (!exit.reason.empty()) data["reason"] = exit.reason;
  exit_trailer_frames_ = trailers;
  fanout_.finish(protocol::event_frame("shell.exit", channel(), std::move(data)), std::move(trailers));
  model_drop();
  changes_.notify(TerminalChange::exited);
  if (exit_hook_) exit_hook_(*this);
}

}  // namespace ptyhub::hub
