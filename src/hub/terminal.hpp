// Terminal: one PTY process with its channel `shell:terminal:<id>`, its shares and its state — a thin
// adapter between its byte source (the PTY) and the fan-out core (Fanout) that owns the retained output,
// the subscriptions and every flow-control decision (docs/protocol.md §6).
//
// It carries a character split across PTY reads to the next read, so the core is fed complete
// characters at their offsets; after every change it asks the core whether the PTY may be read and
// applies the answer (pausing the PTY, re-asking on a timer while a subscriber holds it). It tells the
// core which subscribers may hold the PTY: the owner and those the terminal is shared with for writing.
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
#include "src/hub/observers.hpp"
#include "src/hub/fanout.hpp"
#include "src/screen/screen_model.hpp"
#include "src/hub/subscriber.hpp"

namespace ptyhub::hub {

struct TerminalSpec {
  std::string id;
  std::string node;  // cluster mode: the node that runs it (docs/cluster.md); empty on a single node
  std::string kind = "shell";  // "shell" or "git"
  std::string operation;       // a git terminal's operation id
  std::string owner;
  std::string name;
  std::vector<std::string> command;
  std::string cwd;
  uint16_t cols = 80;
  uint16_t rows = 24;
  // stdio "pipes" (docs/protocol.md §4 shell.create): no PTY; bytes pass unchanged and shell.input
  // {eof: true} ends the command's input.
  bool pipes = false;
};

struct TerminalLimits {
  size_t ring_bytes = 1024 * 1024;
  bool snapshots = true;               // keep a screen model for subscribe {snapshot: true}
  size_t snapshot_scrollback = 1000;   // history lines a snapshot carries at most
  uint64_t detached_timeout_ms = 0;  // 0 = off
  uint64_t kill_grace_ms = 5000;
  uint64_t idle_timeout_ms = 0;      // no input and no output for this long: SIGHUP; 0 = off
  uint64_t max_lifetime_ms = 0;      // this long after the start: SIGHUP; 0 = off
};

// Cluster mode: where a mirror's requests go — the node that runs the terminal (src/cluster/). The
// requester was authorised on this node already, with the same rules as on the owner.
class RemoteOwner {
 public:
  virtual ~RemoteOwner() = default;
  virtual void input(const std::string& terminal_id, std::string_view bytes) = 0;
  virtual void resize(const std::string& terminal_id, uint16_t cols, uint16_t rows) = 0;
  virtual void kill(const std::string& terminal_id, int signal) = 0;
  virtual void share(const std::string& terminal_id, const std::string& user, auth::Access access) = 0;
  // A subscriber of the mirror that may hold the terminal back holds it (`held`), or no longer does;
  // `urgent` when its next byte would otherwise leave the ring (docs/cluster.md, "Flow control").
  virtual void hold(const std::string& terminal_id, bool held, bool urgent) = 0;
  // How far this node has read the terminal's output while subscribers here may hold it back (the owner
  // keeps its PTY within reach of that: docs/cluster.md, "Flow control"); nullopt when none may any more.
  virtual void progress(const std::string& terminal_id, std::optional<uint64_t> offset) = 0;
  // git.operation.cancel for the git operation the terminal runs.
  virtual void cancel_operation(const std::string& terminal_id, const std::string& operation_id) = 0;
  // shell.dismiss of the (exited) terminal: the owner removes it, and with it every node's mirror.
  virtual void dismiss(const std::string& terminal_id) = 0;
};

// What a change observer is told about (cluster mode publishes each).
enum class TerminalChange { resized, shared, exited };

// The end of a mirrored terminal, as its owner reported it (or as the cluster found it: node_lost).
struct MirrorExit {
  std::optional<int> exit_code;
  std::string signal;  // its name when a signal ended it
  uint64_t duration_ms = 0;
  std::string reason;  // idle_timeout, max_lifetime, node_lost, ...
};

class Terminal {
 public:
  // Called once after shell.exit was published.
  using ExitHook = std::function<void(Terminal&)>;
  // Sees every raw byte read from the PTY, in order (git progress parsing).
  using OutputTap = std::function<void(std::string_view raw)>;
  // Builds an event each subscriber receives right after shell.exit (git.operation.completed).
  using ExitTrailer = std::function<protocol::SharedFrame(const pty::ExitStatus& status, uint64_t duration_ms)>;

  Terminal(TerminalSpec spec, TerminalLimits limits, Metrics& metrics, ExitHook on_exit);
  // A mirror (cluster mode): a terminal another node runs. Its output arrives with its offsets
  // (append_mirrored), its requests go to `remote`; it has no process. `created_at_ms` is the owner's.
  Terminal(TerminalSpec spec, TerminalLimits limits, Metrics& metrics, ExitHook on_exit, RemoteOwner* remote,
           int64_t created_at_ms, uv_loop_t* loop);
  ~Terminal();
  Terminal(const Terminal&) = delete;
  Terminal& operator=(const Terminal&) = delete;

  // Starts the process. Subscribe the creator before calling it so no output is missed.
  bool start(uv_loop_t* loop, std::vector<std::string> env, uint64_t drain_grace_ms, pty::SpawnError* error);

  // --- live upgrade (docs/upgrade.md) ---
  // What the next image needs of a local terminal besides its process.
  struct Snapshot {
    TerminalSpec spec;
    std::map<std::string, auth::Access, std::less<>> shares;
    int64_t created_at_ms = 0;
    pid_t pid = 0;
    bool exited = false;
    pty::ExitStatus exit_status{};
    uint64_t duration_ms = 0;
    uint64_t running_ms = 0;  // how long it has run so far (running terminals)
    uint64_t idle_ms = 0;     // since the last input or output (running terminals)
    uint64_t detached_ms = 0; // since its last subscriber left; 0 while it has one (running terminals)
    std::string end_reason;
    uint64_t ring_start = 0;
    SharedBytes ring;   // retained output [ring_start, ring_start + size) (empty: snapshot(false))
    size_t ring_length = 0;  // its size, also when it was not copied
    std::string carry;  // a character split across reads, after the ring
  };
  Snapshot snapshot(bool with_ring = true) const;
  // The retained output (ring_length bytes of a snapshot), oldest first, in two pieces, without a copy.
  std::pair<std::string_view, std::string_view> ring_pieces() const { return fanout_.retained_pieces(); }
  // A restored ring may still be borrowed from the mapped handoff state; own_ring() copies it into memory
  // of its own (the daemon does so in the background after the handoff).
  void own_ring() { fanout_.own_retained(); }
  // Gives up the running process without ending it (the handoff); false when there is none.
  bool release_process(pty::PtyProcess::Released* out);
  // A running terminal whose process was reaped while its output still drains: the process's status.
  std::optional<pty::ExitStatus> reaped_status() const {
    return process_ && !exited_ ? process_->reaped_status() : std::nullopt;
  }
  // Takes a released process back (a handoff that did not happen); false with `error` when it cannot.
  bool take_back_process(pty::PtyProcess::Released released, std::string* error);
  // Makes this (new) terminal the one of `snapshot`: output continues at its offsets; a running one
  // adopts its process from `master` and `pidfd`. False with `error` when the process cannot be adopted.
  bool restore(uv_loop_t* loop, Snapshot& snapshot, UniqueFd master, UniqueFd pidfd, uint64_t drain_grace_ms,
               std::string* error);

  // --- mirrors (cluster mode) ---
  bool mirror() const { return remote_ != nullptr; }
  // A mirror: asks its owner to remove the terminal everywhere (shell.dismiss).
  void dismiss_remote() {
    if (remote_ != nullptr) remote_->dismiss(spec_.id);
  }
  const std::string& node() const { return spec_.node; }
  // Raw output bytes at `offset` as the owner read them; earlier bytes are dropped, a jump is a gap.
  void append_mirrored(uint64_t offset, std::string_view bytes);
  void mirror_resized(uint16_t cols, uint16_t rows);
  // The end, then `trailers` (events such as git.operation.completed, as the owner sent them).
  void mirror_exited(const MirrorExit& exit, std::vector<protocol::SharedFrame> trailers = {});
  // The shares as the owner holds them (revocations end subscriptions here at once).
  void set_shares(const std::map<std::string, auth::Access, std::less<>>& shares);
  void set_name(std::string name) { spec_.name = std::move(name); }
  // A mirror takes more output while none of its subscribers holds it back (else it said hold()).
  bool accepting() const { return !reading_paused_; }
  // A mirror's git operation: cancelled by its owner.
  void cancel_remote_operation() {
    if (remote_ != nullptr) remote_->cancel_operation(spec_.id, spec_.operation);
  }
  // A local terminal held back by subscribers of its mirror on `node` (cluster mode): the PTY is not read
  // while an urgent hold stands, or any hold while no local subscriber takes output live. A hold lapses
  // kRemoteHoldMs after it was last said, so a node that is gone holds nothing for long.
  void set_remote_hold(const std::string& node, bool held, bool urgent);
  // A node with possible holders has read the output up to `offset` (nullopt: it has none any more): the PTY
  // is not read while it is more than `window` bytes (0: half the ring) ahead of that. Lapses as a hold does.
  void set_remote_progress(const std::string& node, std::optional<uint64_t> offset, uint64_t window);
  // Forgets every hold and progress of other nodes (this node lost its link to them).
  void clear_remote_holds();
  // A mirror: subscribers here may hold it back; how far it has been read.
  bool has_holders() const { return fanout_.any_may_hold(); }
  uint64_t mirror_offset() const { return mirror_offset_; }
  static constexpr uint64_t kRemoteHoldMs = 3000;
  // Told after a resize, a change of shares and the exit (of a local terminal or a mirror).
  ObserverId add_change_observer(std::function<void(TerminalChange)> observer) { return changes_.add(std::move(observer)); }
  void remove_change_observer(ObserverId id) { changes_.remove(id); }
  // Told of every event published on a local terminal's channel with publish_event (git progress).
  ObserverId add_event_observer(std::function<void(const protocol::SharedFrame&)> observer) {
    return event_observers_.add(std::move(observer));
  }
  void remove_event_observer(ObserverId id) { event_observers_.remove(id); }
  // The events that followed shell.exit (exit trailers), once exited.
  const std::vector<protocol::SharedFrame>& exit_trailers() const { return exit_trailer_frames_; }
  uint16_t cols() const { return spec_.cols; }
  uint16_t rows() const { return spec_.rows; }
  const std::map<std::string, auth::Access, std::less<>>& shares() const { return shares_; }
  const pty::ExitStatus& exit_status() const { return exit_status_; }
  uint64_t duration_ms() const { return exit_duration_ms_; }
  int64_t created_at_ms() const { return created_at_ms_; }
  const TerminalSpec& spec() const { return spec_; }

  const std::string& id() const { return spec_.id; }
  const std::string& channel() const { return fanout_.channel(); }
  const std::string& owner() const { return spec_.owner; }
  const std::string& kind() const { return spec_.kind; }
  // Observers: each is added to a list (none replaces another) and removed by its id.
  ObserverId add_output_tap(OutputTap tap) { return output_taps_.add(std::move(tap)); }
  void remove_output_tap(ObserverId id) { output_taps_.remove(id); }
  ObserverId add_exit_trailer(ExitTrailer trailer) { return exit_trailers_.add(std::move(trailer)); }
  void remove_exit_trailer(ObserverId id) { exit_trailers_.remove(id); }
  // Sends an event to every subscriber at once (resized, git progress).
  void publish_event(const protocol::SharedFrame& frame);
  bool running() const { return !exited_; }
  // Why the daemon ended the terminal ("idle_timeout", "max_lifetime"); empty when it did not.
  const std::string& end_reason() const { return end_reason_; }
  // Offset the next published chunk starts at (raw bytes, not counting a carried partial character).
  uint64_t published_offset() const { return fanout_.end(); }
  uint64_t retained_from() const { return fanout_.start(); }
  auth::Access access_for(const auth::Principal& principal) const;
  nlohmann::json to_json() const;

  // Subscribes (or re-subscribes with new settings). Without `since` the subscriber starts at the
  // oldest retained byte. Returns the replay range; call catch_up() after sending the reply.
  ReplayRange subscribe(Subscriber* subscriber, Encoding encoding, std::optional<uint64_t> since);
  void unsubscribe(Subscriber* subscriber);
  bool subscribed(const Subscriber* subscriber) const;
  size_t subscriber_count() const { return fanout_.subscriber_count(); }
  // Sends what `subscriber` lags behind while it has room (gap, replay, then exit).
  void catch_up(Subscriber* subscriber);
  // shell.pause / shell.resume; false when `subscriber` is not subscribed.
  bool set_paused(Subscriber* subscriber, bool paused);

  // Writes input; when the PTY's queue is above its high-water mark, `writer` (when given) is told
  // on_input_drained() once it drains, and the caller should stop reading that client meanwhile. Returns
  // true when paused. A mirror sends the bytes to its owner.
  bool write_input(std::string_view bytes, Subscriber* writer);
  // stdio "pipes": the command reads end of file after the input written so far. False when this
  // terminal cannot (a PTY, a mirror, exited).
  bool close_input();

  // --- snapshots (docs/protocol.md §6, docs/snapshots.md) ---
  // The screen as bytes at the current end of the output: written to a fresh terminal of cols x rows it
  // shows what a subscriber from the start sees; live output continues at `offset`. nullopt when
  // snapshots are off.
  struct ScreenSnapshot {
    uint64_t offset = 0;
    uint16_t cols = 0;
    uint16_t rows = 0;
    std::string data;
    bool exact = true;
    std::string reason;  // when not exact: "history_before_ring" or "output_skipped"
  };
  std::optional<ScreenSnapshot> screen_snapshot();

  // --- presence (docs/protocol.md §6, Presence) ---
  // Who is subscribed here, one entry per user: [{user, role, since, connections}], role "owner",
  // "write" or "read", since the user's first current subscription; ordered by since, then user.
  nlohmann::json viewers_json() const;
  static constexpr uint64_t kViewersCoalesceMs = 250;  // shell.viewers at most this often
  // The model follows the output at a bounded rate (kModelRate, kModelBurst) so that a stream nobody
  // joins costs next to nothing; behind by more than kModelLag it skips ahead and is no longer exact.
  static constexpr size_t kModelBurst = 256 * 1024;
  static constexpr size_t kModelRate = 64 * 1024;  // bytes per second
  static constexpr size_t kModelLag = 256 * 1024;
  static constexpr size_t kModelChunk = 32 * 1024;  // fed per turn
  static constexpr uint64_t kModelTickMs = 20;
  // close_input() was called: no more input is taken.
  bool input_ended() const { return process_ != nullptr && process_->input_end_requested(); }
  void forget_writer(Subscriber* writer);
  void resize(uint16_t cols, uint16_t rows);
  // Grants `user` read or write access, or revokes it (Access::none): the user's live subscriptions
  // that lose read access end with `unsubscribed {channel, reason: "revoked"}`; those that lose write
  // access no longer hold the PTY.
  void share(const std::string& user, auth::Access access);
  // Signals every process of the session; SIGHUP and SIGTERM escalate to SIGKILL after `grace_ms`.
  void kill(int signal, uint64_t grace_ms);
  // Ends the terminal for the daemon's own `reason` (shell.exit carries it): SIGHUP, SIGKILL after grace.
  void end(std::string reason, uint64_t grace_ms);

 private:
  // idle_timeout and max_lifetime (docs/protocol.md §5): arms the policy timer for the nearer of the two.
  void schedule_policy();
  void on_policy_timer();
  // Timers and bookkeeping of a running terminal once its process exists (start(), restore()).
  bool init_timers(uv_loop_t* loop, std::string* error);
  void after_start(uv_loop_t* loop);
  pty::PtyProcess::Callbacks process_callbacks();
  // Keeps subscriber->linked_terminals() true: linked while subscribed or waiting on input.
  void relink(Subscriber* subscriber);
  void on_output(std::string_view bytes);
  void on_exit(pty::ExitStatus status);
  // shell.exit of this terminal as it ended (exit_status_, end_reason_, output_bytes_).
  protocol::SharedFrame exit_frame(uint64_t duration_ms) const;
  void on_input_drained();
  // A fault of the running process's I/O or of a resize: shell.error to every subscriber (docs/protocol.md
  // §5 "Faults"); `ends`: the terminal ends too, with `code` as its reason (a failed read).
  void on_fault(const char* code, const std::string& message, bool ends);
  // Applies the core's decision to the PTY: read or not, and a re-check while a subscriber holds it.
  void update_reading();
  void update_detached_timer();
  bool may_hold(const Subscriber* subscriber) const;
  // After `user`'s share changed: ends the subscriptions that lost read access, updates who may hold.
  void apply_shares_to_subscribers(const std::string& user);

  TerminalSpec spec_;
  TerminalLimits limits_;
  Metrics& metrics_;
  ExitHook exit_hook_;
  Fanout fanout_;
  std::unique_ptr<pty::PtyProcess> process_;
  uv_loop_t* loop_ = nullptr;
  UvHandle<uv_timer_t> detached_timer_;
  UvHandle<uv_timer_t> stall_timer_;  // re-asks the core once a holding subscriber may have stalled
  UvHandle<uv_timer_t> policy_timer_;  // idle_timeout / max_lifetime; initialised only when one is set
  uint64_t last_activity_steady_ms_ = 0;  // the last input written or output read
  uint64_t detached_since_steady_ms_ = 0; // when its last subscriber left (detached_timeout); 0: attached
  // The screen model (snapshots): fed from the ring up to model_offset_.
  void model_wake();
  void model_pump(bool all);
  void model_skip_to(uint64_t offset, const char* reason);
  void model_drop();
  bool snapshot_wanted_ = false;  // screen_snapshot() makes a model for an exited terminal
  void model_account();
  std::unique_ptr<screen::ScreenModel> model_;
  uint64_t model_offset_ = 0;
  bool model_exact_ = true;
  std::string model_reason_;
  double model_tokens_ = kModelBurst;
  uint64_t model_tokens_ms_ = 0;
  size_t model_bytes_ = 0;  // what model_ holds, as counted in the metrics
  UvHandle<uv_timer_t> model_timer_;
  // Presence: when each subscriber subscribed (Unix ms); shell.viewers goes out on the timer.
  void viewers_changed();
  std::map<const Subscriber*, int64_t> subscribed_at_;
  UvHandle<uv_timer_t> viewers_timer_;
  nlohmann::json last_viewers_;
  std::string end_reason_;
  std::map<std::string, auth::Access, std::less<>> shares_;
  std::vector<Subscriber*> input_waiters_;
  std::string carry_;            // bytes of a character split across reads
  uint64_t output_bytes_ = 0;    // raw bytes read so far
  int64_t created_at_ms_ = 0;
  uint64_t started_steady_ms_ = 0;
  pid_t pid_ = 0;
  bool exited_ = false;
  bool reading_paused_ = false;
  pty::ExitStatus exit_status_{};
  uint64_t exit_duration_ms_ = 0;
  RemoteOwner* remote_ = nullptr;  // a mirror's owner
  bool hold_urgent_ = false;       // a mirror's last hold was urgent
  struct RemoteHold {
    bool urgent = false;
    uint64_t expires_ms = 0;  // loop time
  };
  std::map<std::string, RemoteHold> remote_holds_;  // a local terminal's holds by node
  struct RemoteProgress {
    uint64_t offset = 0;
    uint64_t window = 0;
    uint64_t expires_ms = 0;
  };
  std::map<std::string, RemoteProgress> remote_progress_;  // a local terminal's pacing nodes
  bool had_holders_ = false;                                // a mirror's subscribers could hold it, last time
  MirrorExit mirror_exit_;         // a mirror's end
  uint64_t mirror_offset_ = 0;     // the raw offset the next mirrored byte would have
  Observers<void(TerminalChange)> changes_;
  Observers<void(const protocol::SharedFrame&)> event_observers_;
  std::vector<protocol::SharedFrame> exit_trailer_frames_;
  Observers<void(std::string_view)> output_taps_;
  Observers<protocol::SharedFrame(const pty::ExitStatus&, uint64_t)> exit_trailers_;
};

}  // namespace ptyhub::hub
