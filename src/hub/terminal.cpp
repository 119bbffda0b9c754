// Terminal: process, retained output, subscriptions and flow control of one PTY.
#include "src/hub/terminal.hpp"

#include <algorithm>
#include <csignal>

#include "core/time_format.hpp"
#include "src/protocol/envelope.hpp"
#include "src/protocol/output_frame.hpp"
#include "src/protocol/utf8.hpp"

namespace ptyhub::hub {
namespace {

using nlohmann::json;

uint64_t steady_millis() { return uv_hrtime() / 1000000; }

// The length of the next frame's piece of `raw`: at most `limit` bytes, ending on a UTF-8 boundary.
size_t piece_length(std::string_view raw, size_t limit) {
  if (raw.size() <= limit) return raw.size();
  const size_t complete = protocol::utf8_complete_prefix(raw.substr(0, limit));
  return complete > 0 ? complete : limit;
}

}  // namespace

Terminal::Terminal(TerminalSpec spec, TerminalLimits limits, Metrics& metrics, ExitHook on_exit)
    : spec_(std::move(spec)), limits_(limits), channel_("shell:terminal:" + spec_.id), metrics_(metrics),
      exit_hook_(std::move(on_exit)), ring_(limits.ring_bytes), created_at_ms_(unix_millis_now()) {}

Terminal::~Terminal() {
  if (pid_ == 0) return;  // never started
  if (!exited_) --metrics_.terminals_running;
  else --metrics_.terminals_exited;
  metrics_.ring_bytes -= ring_.allocated();
}

bool Terminal::start(uv_loop_t* loop, std::vector<std::string> env, uint64_t drain_grace_ms,
                     pty::SpawnError* error) {
  pty::SpawnOptions options;
  options.argv = spec_.command;
  options.cwd = spec_.cwd;
  options.env = std::move(env);
  options.cols = spec_.cols;
  options.rows = spec_.rows;
  options.drain_grace_ms = drain_grace_ms;
  pty::PtyProcess::Callbacks callbacks;
  callbacks.on_output = [this](std::string_view bytes) { on_output(bytes); };
  callbacks.on_exit = [this](pty::ExitStatus status) { on_exit(status); };
  callbacks.on_input_drained = [this] { on_input_drained(); };
  process_ = pty::PtyProcess::spawn(loop, options, std::move(callbacks), error);
  if (!process_) return false;
  pid_ = process_->pid();
  // One wake-up's read must fit in the ring beside what a held subscriber has still to take.
  read_budget_ = std::min(pty::PtyProcess::kReadBudget, limits_.ring_bytes / 2);
  process_->set_read_budget(read_budget_);
  started_steady_ms_ = steady_millis();
  ++metrics_.terminals_running;
  ++metrics_.terminals_created_total;
  loop_ = loop;
  uv_timer_init(loop, detached_timer_.get());
  detached_timer_.mark_initialised();
  detached_timer_.get()->data = this;
  uv_timer_init(loop, stall_timer_.get());
  stall_timer_.mark_initialised();
  stall_timer_.get()->data = this;
  update_detached_timer();
  return true;
}

auth::Access Terminal::access_for(const auth::Principal& principal) const {
  return auth::terminal_access(principal, spec_.owner, shares_);
}

json Terminal::to_json() const {
  json t = {
      {"id", spec_.id},
      {"channel", channel_},
      {"kind", spec_.kind},
      {"name", spec_.name},
      {"owner", spec_.owner},
      {"command", spec_.command},
      {"cwd", spec_.cwd},
      {"cols", spec_.cols},
      {"rows", spec_.rows},
      {"pid", pid_},
      {"createdAt", iso8601_utc(created_at_ms_)},
      {"state", exited_ ? "exited" : "running"},
      {"exitCode", nullptr},
      {"signal", nullptr},
      {"outputBytes", output_bytes_},
  };
  if (exited_) {
    if (exit_status_.signal != 0) t["signal"] = pty::signal_name(exit_status_.signal);
    else t["exitCode"] = exit_status_.exit_code;
  }
  return t;
}

// --- subscriptions -------------------------------------------------------------------------------

Terminal::Subscription* Terminal::find(const Subscriber* subscriber) {
  for (auto& subscription : subscriptions_) {
    if (subscription.subscriber == subscriber) return &subscription;
  }
  return nullptr;
}

ReplayRange Terminal::subscribe(Subscriber* subscriber, Encoding encoding, std::optional<uint64_t> since) {
  const uint64_t cursor = since.value_or(ring_.start());
  if (Subscription* existing = find(subscriber)) {
    *existing = Subscription{subscriber, encoding, cursor};
  } else {
    subscriptions_.push_back(Subscription{subscriber, encoding, cursor});
  }
  if (cursor < ring_.end()) ++metrics_.replays_total;
  update_detached_timer();
  return {std::max(cursor, ring_.start()), ring_.end()};
}

void Terminal::unsubscribe(Subscriber* subscriber) {
  const size_t before = subscriptions_.size();
  std::erase_if(subscriptions_, [&](const Subscription& s) { return s.subscriber == subscriber; });
  if (subscriptions_.size() == before) return;
  update_reading();
  update_detached_timer();
}

bool Terminal::subscribed(const Subscriber* subscriber) const {
  return std::any_of(subscriptions_.begin(), subscriptions_.end(),
                     [&](const Subscription& s) { return s.subscriber == subscriber; });
}

bool Terminal::set_paused(Subscriber* subscriber, bool paused) {
  Subscription* subscription = find(subscriber);
  if (subscription == nullptr) return false;
  subscription->paused = paused;
  if (!paused) catch_up(*subscription);
  update_reading();
  return true;
}

void Terminal::catch_up(Subscriber* subscriber) {
  if (Subscription* subscription = find(subscriber)) catch_up(*subscription);
  update_reading();
}

bool Terminal::live(const Subscription& s) const {
  return !s.paused && s.cursor == ring_.end() && s.subscriber->has_room();
}

void Terminal::catch_up(Subscription& s) {
  std::string raw;
  while (!s.paused && s.subscriber->has_room() && s.cursor < ring_.end()) {
    if (s.cursor < ring_.start()) {
      ++metrics_.gaps_total;
      s.subscriber->deliver(protocol::event_frame(
          "shell.gap", channel_, {{"terminalId", spec_.id}, {"from", s.cursor}, {"to", ring_.start()}}));
      s.cursor = ring_.start();
      continue;
    }
    ring_.read(s.cursor, kMaxFrameBytes, &raw);
    size_t length = protocol::utf8_complete_prefix(raw);
    if (length == 0) length = raw.size();  // only a fragment is left before the cut: send it as is
    raw.resize(length);
    s.subscriber->deliver(protocol::shell_output_frame(channel_, spec_.id, s.cursor, raw, s.encoding));
    s.cursor += length;
  }
  if (exited_ && !s.exit_sent && !s.paused && s.cursor == ring_.end()) {
    s.exit_sent = true;
    s.subscriber->deliver(exit_frame_);
    if (exit_trailer_frame_) s.subscriber->deliver(exit_trailer_frame_);
  }
}

// True when `s` is behind (or full), not paused, still in the ring, still taking data, and the next PTY
// read (up to read_budget_, plus a carried partial character) could push its next byte out of the ring.
bool Terminal::holds_reading(const Subscription& s, uint64_t now_ms) const {
  if (s.paused || live(s) || s.cursor < ring_.start()) return false;
  const uint64_t next_read = read_budget_ + 4;
  if (s.cursor + ring_.capacity() >= ring_.end() + next_read) return false;
  return !s.subscriber->stalled(now_ms);
}

// Reads the PTY while some subscriber takes output live, or nobody is subscribed, unless that would
// leave behind a subscriber that still takes data.
void Terminal::update_reading() {
  if (!process_ || exited_) return;
  const uint64_t now = uv_now(loop_);
  bool any_live = false;
  bool held = false;
  for (const Subscription& s : subscriptions_) {
    any_live = any_live || live(s);
    held = held || holds_reading(s, now);
  }
  const bool read = (subscriptions_.empty() || any_live) && !held;
  if (held) {
    uv_timer_start(
        stall_timer_.get(),
        [](uv_timer_t* handle) {
          if (auto* self = static_cast<Terminal*>(handle->data)) self->update_reading();
        },
        kStallRecheckMs, 0);
  } else {
    uv_timer_stop(stall_timer_.get());
  }
  if (read == !reading_paused_) return;
  reading_paused_ = !read;
  if (read) {
    process_->resume_output();
  } else {
    ++metrics_.pty_read_pauses_total;
    process_->pause_output();
  }
}

void Terminal::update_detached_timer() {
  if (!detached_timer_.initialised() || limits_.detached_timeout_ms == 0) return;
  if (!subscriptions_.empty() || exited_) {
    uv_timer_stop(detached_timer_.get());
    return;
  }
  if (uv_is_active(detached_timer_.as_handle())) return;
  uv_timer_start(
      detached_timer_.get(),
      [](uv_timer_t* handle) {
        auto* self = static_cast<Terminal*>(handle->data);
        if (self != nullptr) self->kill(SIGHUP, self->limits_.kill_grace_ms);
      },
      limits_.detached_timeout_ms, 0);
}

// --- input, resize, signals ----------------------------------------------------------------------

bool Terminal::write_input(std::string_view bytes, Subscriber* writer) {
  if (exited_ || !process_) return false;
  if (process_->write(bytes) == 0) metrics_.pty_bytes_in += bytes.size();
  if (!process_->input_above_high_water()) return false;
  if (std::find(input_waiters_.begin(), input_waiters_.end(), writer) == input_waiters_.end()) {
    input_waiters_.push_back(writer);
  }
  return true;
}

void Terminal::forget_writer(Subscriber* writer) { std::erase(input_waiters_, writer); }

void Terminal::on_input_drained() {
  std::vector<Subscriber*> waiters;
  waiters.swap(input_waiters_);
  for (Subscriber* waiter : waiters) waiter->on_input_drained(spec_.id);
}

void Terminal::resize(uint16_t cols, uint16_t rows) {
  if (exited_ || !process_) return;
  process_->resize(cols, rows);
  spec_.cols = cols;
  spec_.rows = rows;
  publish_event(
      protocol::event_frame("shell.resized", channel_, {{"terminalId", spec_.id}, {"cols", cols}, {"rows", rows}}));
}

void Terminal::share(const std::string& user, auth::Access access) {
  if (access == auth::Access::none) shares_.erase(user);
  else shares_[user] = access;
  std::vector<Subscriber*> revoked;
  for (const Subscription& s : subscriptions_) {
    if (s.subscriber->principal().user == user && access_for(s.subscriber->principal()) == auth::Access::none) {
      revoked.push_back(s.subscriber);
    }
  }
  if (revoked.empty()) return;
  const auto frame = protocol::reply_frame("unsubscribed", nullptr, {{"channel", channel_}, {"reason", "revoked"}});
  for (Subscriber* subscriber : revoked) {
    subscriber->deliver(frame);
    unsubscribe(subscriber);
  }
}

void Terminal::kill(int signal, uint64_t grace_ms) {
  if (exited_ || !process_) return;
  const bool escalates = signal == SIGHUP || signal == SIGTERM;
  process_->signal_session(signal, escalates ? grace_ms : 0);
}

void Terminal::publish_event(const protocol::SharedFrame& frame) {
  for (const Subscription& s : subscriptions_) s.subscriber->deliver(frame);
}

// --- output --------------------------------------------------------------------------------------

void Terminal::on_output(std::string_view bytes) {
  if (output_tap_) output_tap_(bytes);
  output_bytes_ += bytes.size();
  metrics_.pty_bytes_out += bytes.size();
  if (carry_.empty()) {
    const size_t complete = protocol::utf8_complete_prefix(bytes);
    publish(bytes.substr(0, complete));
    carry_.assign(bytes.substr(complete));
  } else {
    std::string joined = std::move(carry_);
    joined.append(bytes);
    const size_t complete = protocol::utf8_complete_prefix(joined);
    publish(std::string_view(joined).substr(0, complete));
    carry_.assign(joined, complete, std::string::npos);
  }
  update_reading();
}

// Publishes complete characters in frames of at most kMaxFrameBytes raw bytes.
void Terminal::publish(std::string_view complete) {
  while (!complete.empty()) {
    const size_t length = piece_length(complete, kMaxFrameBytes);
    publish_chunk(complete.substr(0, length));
    complete.remove_prefix(length);
  }
}

void Terminal::publish_chunk(std::string_view raw) {
  const uint64_t offset = ring_.end();
  const size_t allocated = ring_.allocated();
  ring_.append(raw);
  metrics_.ring_bytes += ring_.allocated() - allocated;
  protocol::SharedFrame frames[2];  // per encoding, built at most once
  for (Subscription& s : subscriptions_) {
    if (s.cursor != offset || s.paused || !s.subscriber->has_room()) {
      catch_up(s);  // lagging: served from the ring when it has room
      continue;
    }
    auto& frame = frames[static_cast<int>(s.encoding)];
    if (!frame) frame = protocol::shell_output_frame(channel_, spec_.id, offset, raw, s.encoding);
    s.subscriber->deliver(frame);
    s.cursor = ring_.end();
  }
}

void Terminal::on_exit(pty::ExitStatus status) {
  if (!carry_.empty()) {
    std::string rest = std::move(carry_);
    carry_.clear();
    publish_chunk(rest);
  }
  exited_ = true;
  exit_status_ = status;
  if (stall_timer_.initialised()) uv_timer_stop(stall_timer_.get());
  --metrics_.terminals_running;
  ++metrics_.terminals_exited;
  const uint64_t duration_ms = steady_millis() - started_steady_ms_;
  json data = {{"terminalId", spec_.id},
               {"exitCode", nullptr},
               {"signal", nullptr},
               {"durationMs", duration_ms},
               {"outputBytes", output_bytes_}};
  if (status.signal != 0) data["signal"] = pty::signal_name(status.signal);
  else data["exitCode"] = status.exit_code;
  exit_frame_ = protocol::event_frame("shell.exit", channel_, std::move(data));
  if (exit_trailer_) exit_trailer_frame_ = exit_trailer_(status, duration_ms);
  for (Subscription& s : subscriptions_) catch_up(s);
  update_detached_timer();
  on_input_drained();
  if (exit_hook_) exit_hook_(*this);
}

}  // namespace ptyhub::hub
