// Terminal: one PTY process with its channel `shell:terminal:<id>`, its retained output, its
// subscriptions and its state.
//
// Owns its PtyProcess, an OutputRing of the last `ring_buffer_bytes` of output, and the timer of
// `detached_timeout`. Output is published in chunks that end on UTF-8 boundaries (a split character is
// carried to the next read) and carry raw-byte offsets. Each subscription has a cursor: a subscriber that
// is caught up, not paused and has room receives the chunk's shared frame (encoded once per encoding);
// one that lags is caught up from the ring when it has room again, after a shell.gap if its cursor left
// the ring. When every subscriber lags or is paused, the PTY is not read (the process blocks); with no
// subscriber it is read into the ring. A lagging subscriber that still takes data (not stalled, as its
// connection judges by its own recent pace) is not left behind: the PTY is not read while the next read
// could push its next byte out of the ring. A stalled one no longer holds anyone back.
// shell.exit reaches each subscriber after all its output.
// Owned by the Hub; loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "auth/permissions.hpp"
#include "core/uv_handle.hpp"
#include "pty/pty_process.hpp"
#include "src/hub/metrics.hpp"
#include "src/hub/output_ring.hpp"
#include "src/hub/subscriber.hpp"

namespace ptyhub::hub {

struct TerminalSpec {
  std::string id;
  std::string kind = "shell";  // "shell" or "git"
  std::string owner;
  std::string name;
  std::vector<std::string> command;
  std::string cwd;
  uint16_t cols = 80;
  uint16_t rows = 24;
};

struct TerminalLimits {
  size_t ring_bytes = 1024 * 1024;
  uint64_t detached_timeout_ms = 0;  // 0 = off
  uint64_t kill_grace_ms = 5000;
};

// Where a new subscription starts, for the `subscribed` reply.
struct ReplayRange {
  uint64_t from = 0;
  uint64_t to = 0;
};

class Terminal {
 public:
  // Called once after shell.exit was published.
  using ExitHook = std::function<void(Terminal&)>;
  // Sees every raw byte read from the PTY, in order (git progress parsing).
  using OutputTap = std::function<void(std::string_view raw)>;
  // Builds the event each subscriber receives right after shell.exit (git.operation.completed).
  using ExitTrailer = std::function<protocol::SharedFrame(const pty::ExitStatus& status, uint64_t duration_ms)>;

  // Largest shell.output payload in raw bytes: a PTY wake-up's output (up to 256 KiB) goes out in
  // several frames, so one frame never dwarfs client_queue_limit and terminals interleave fairly.
  static constexpr size_t kMaxFrameBytes = 64 * 1024;
  // While a subscriber holds the PTY, how often it is asked again whether it stalled.
  static constexpr uint64_t kStallRecheckMs = 250;

  Terminal(TerminalSpec spec, TerminalLimits limits, Metrics& metrics, ExitHook on_exit);
  ~Terminal();
  Terminal(const Terminal&) = delete;
  Terminal& operator=(const Terminal&) = delete;

  // Starts the process. Subscribe the creator before calling it so no output is missed.
  bool start(uv_loop_t* loop, std::vector<std::string> env, uint64_t drain_grace_ms, pty::SpawnError* error);

  const std::string& id() const { return spec_.id; }
  const std::string& channel() const { return channel_; }
  const std::string& owner() const { return spec_.owner; }
  const std::string& kind() const { return spec_.kind; }
  void set_output_tap(OutputTap tap) { output_tap_ = std::move(tap); }
  void set_exit_trailer(ExitTrailer trailer) { exit_trailer_ = std::move(trailer); }
  // Sends an event to every subscriber at once (resized, git progress).
  void publish_event(const protocol::SharedFrame& frame);
  bool running() const { return !exited_; }
  // Offset the next published chunk starts at (raw bytes, not counting a carried partial character).
  uint64_t published_offset() const { return ring_.end(); }
  uint64_t retained_from() const { return ring_.start(); }
  auth::Access access_for(const auth::Principal& principal) const;
  nlohmann::json to_json() const;

  // Subscribes (or re-subscribes with new settings). Without `since` the subscriber starts at the
  // oldest retained byte. Returns the replay range; call catch_up() after sending the reply.
  ReplayRange subscribe(Subscriber* subscriber, Encoding encoding, std::optional<uint64_t> since);
  void unsubscribe(Subscriber* subscriber);
  bool subscribed(const Subscriber* subscriber) const;
  // Sends what `subscriber` lags behind while it has room (gap, replay, then exit).
  void catch_up(Subscriber* subscriber);
  // shell.pause / shell.resume; false when `subscriber` is not subscribed.
  bool set_paused(Subscriber* subscriber, bool paused);

  // Writes input; when the PTY's queue is above its high-water mark, `writer` is told on_input_drained()
  // once it drains, and the caller should stop reading that client meanwhile. Returns true when paused.
  bool write_input(std::string_view bytes, Subscriber* writer);
  void forget_writer(Subscriber* writer);
  void resize(uint16_t cols, uint16_t rows);
  // Grants `user` read or write access, or revokes it (Access::none): the user's live subscriptions
  // that lose read access end with `unsubscribed {channel, reason: "revoked"}`.
  void share(const std::string& user, auth::Access access);
  // Signals every process of the session; SIGHUP and SIGTERM escalate to SIGKILL after `grace_ms`.
  void kill(int signal, uint64_t grace_ms);

 private:
  struct Subscription {
    Subscriber* subscriber;
    Encoding encoding;
    uint64_t cursor;  // next offset this subscriber receives
    bool paused = false;
    bool exit_sent = false;
  };

  Subscription* find(const Subscriber* subscriber);
  void on_output(std::string_view bytes);
  void publish(std::string_view complete);
  void publish_chunk(std::string_view raw);
  void on_exit(pty::ExitStatus status);
  void on_input_drained();
  bool live(const Subscription& subscription) const;
  bool holds_reading(const Subscription& subscription, uint64_t now_ms) const;
  void catch_up(Subscription& subscription);
  void update_reading();
  void update_detached_timer();

  TerminalSpec spec_;
  TerminalLimits limits_;
  std::string channel_;
  Metrics& metrics_;
  ExitHook exit_hook_;
  std::unique_ptr<pty::PtyProcess> process_;
  uv_loop_t* loop_ = nullptr;
  size_t read_budget_ = pty::PtyProcess::kReadBudget;  // at most half the ring per PTY wake-up
  UvHandle<uv_timer_t> detached_timer_;
  UvHandle<uv_timer_t> stall_timer_;  // re-checks a hold once its subscriber may have stalled
  OutputRing ring_;
  std::map<std::string, auth::Access, std::less<>> shares_;
  std::vector<Subscription> subscriptions_;
  std::vector<Subscriber*> input_waiters_;
  std::string carry_;            // bytes of a character split across reads
  uint64_t output_bytes_ = 0;    // raw bytes read so far
  int64_t created_at_ms_ = 0;
  uint64_t started_steady_ms_ = 0;
  pid_t pid_ = 0;
  bool exited_ = false;
  bool reading_paused_ = false;
  pty::ExitStatus exit_status_{};
  protocol::SharedFrame exit_frame_;
  protocol::SharedFrame exit_trailer_frame_;
  OutputTap output_tap_;
  ExitTrailer exit_trailer_;
};

}  // namespace ptyhub::hub
