// Hub: every terminal of the daemon, the `shell:terminals` lifecycle channel, and limits.
//
// Owns the Terminals (by id). Sessions reach terminals only through the hub, which hides those a
// principal may not read (reported as not found). Exited terminals stay listed for
// `exited_retention`, then are removed with `shell.removed`. Knows pty/ and auth/; nothing of sockets.
// Loop thread only.
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/turn_batches.hpp"
#include "core/uv_handle.hpp"
#include "src/hub/metrics.hpp"
#include "src/hub/observers.hpp"
#include "src/hub/subscriber.hpp"
#include "src/hub/terminal.hpp"

namespace ptyhub::hub {

struct CreateOptions {
  std::vector<std::string> command;  // empty = configured shell
  std::string cwd;                   // empty = configured home
  std::map<std::string, std::string> env;
  uint16_t cols = 80;
  uint16_t rows = 24;
  std::string name;
  std::string kind = "shell";
  std::string operation;  // the git operation it runs, if any
  bool pipes = false;     // stdio "pipes": no PTY (TerminalSpec::pipes)
  // The complete environment; when absent, the daemon's own with TERM and `env` on top.
  std::optional<std::vector<std::string>> environment;
};

// The hub's settings (docs/configuration.md), in the units it uses. set_limits() swaps them in: the
// counts, shell and home apply to shell.create from then on, `terminal` to terminals created from then on
// (a Terminal keeps the limits it was created with), exited_retention_ms to terminals that exit from then on.
struct HubLimits {
  uint64_t max_terminals = 1000;
  uint64_t max_terminals_per_user = 50;
  std::string shell = "/bin/sh";  // command of a terminal created without one
  std::string home = "/";         // cwd of a terminal created without one
  uint64_t exited_retention_ms = 300000;
  TerminalLimits terminal;  // ring_bytes, detached_timeout_ms, kill_grace_ms of each new terminal
};

enum class CreateFailure { none, limit_total, limit_user, cwd, command, system };

struct CreateResult {
  Terminal* terminal = nullptr;
  CreateFailure failure = CreateFailure::none;
  std::string message;
};

// Cluster mode: creating a terminal on another node (shell.create {node}). `done` runs once, later, on the
// loop: with the new terminal's mirror, or with a protocol error code, message and field.
struct RemoteCreateResult {
  Terminal* terminal = nullptr;
  std::string code;
  std::string message;
  std::string field;
};
class RemoteCreator {
 public:
  virtual ~RemoteCreator() = default;
  virtual void create_on(const std::string& node, const auth::Principal& owner, const CreateOptions& options,
                         std::function<void(RemoteCreateResult)> done) = 0;
};

class Hub {
 public:
  Hub(uv_loop_t* loop, HubLimits limits, Metrics& metrics);
  ~Hub();
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  // New settings (SIGHUP); see HubLimits for what they apply to.
  void set_limits(HubLimits limits) { limits_ = std::move(limits); }

  // Creates and starts a terminal owned by `owner`. When `subscriber` is given it is subscribed
  // before the process starts.
  CreateResult create(const auth::Principal& owner, const CreateOptions& options, Subscriber* subscriber,
                      Encoding encoding);
  // The terminal when `principal` may read it; nullptr when it does not exist or may not be read.
  Terminal* find_readable(const auth::Principal& principal, std::string_view id);
  std::vector<Terminal*> list_readable(const auth::Principal& principal);
  // Removes an exited terminal from the list at once (shell.dismiss; shell.removed to lifecycle
  // subscribers). False when it still runs or does not exist.
  bool dismiss(const std::string& id);
  // The terminal whatever the access (for the daemon's own bookkeeping); nullptr when gone.
  Terminal* find_any(std::string_view id);

  // `shell:terminals`: lifecycle events for the terminals each subscriber may read.
  void subscribe_lifecycle(Subscriber* subscriber);
  void unsubscribe_lifecycle(Subscriber* subscriber);

  // `subscriber` has room in its outbound queue again: catch it up on every terminal it lags on.
  void on_room(Subscriber* subscriber);

  // Publishes on `shell:terminals` to the subscribers that may read `terminal`.
  void publish_lifecycle(const Terminal& terminal, const protocol::SharedFrame& frame);
  // The daemon's environment as children get it (without systemd's variables).
  std::vector<std::string> inherited_environment() const { return child_environment({}); }
  // Observers called after a terminal was removed (its id), e.g. to forget a git operation.
  ObserverId add_removed_observer(std::function<void(const std::string&)> callback) { return on_removed_.add(std::move(callback)); }
  void remove_removed_observer(ObserverId id) { on_removed_.remove(id); }
  // Observers called after a terminal exited (its id), e.g. to end the processes it left behind.
  ObserverId add_exited_observer(std::function<void(const std::string&)> callback) { return on_exited_.add(std::move(callback)); }
  void remove_exited_observer(ObserverId id) { on_exited_.remove(id); }

  // --- live upgrade (docs/upgrade.md) ---
  // Every local terminal as the next image needs it.
  std::vector<Terminal::Snapshot> snapshot(bool with_rings = true) const;
  // A terminal of an earlier image, running again on its adopted process (or listed as exited), with its
  // id, owner, shares, offsets and ring. nullptr with `error` when its id is taken or the process cannot
  // be adopted (the fds are then closed and the child is not this hub's).
  Terminal* restore(Terminal::Snapshot& snapshot, UniqueFd master, UniqueFd pidfd, std::string* error);  // its ring moves in

  // --- cluster mode (docs/cluster.md) ---
  // The node this daemon is (set before terminals are created): each terminal it creates carries it.
  void set_node(std::string node) { node_ = std::move(node); }
  const std::string& node() const { return node_; }
  void set_remote_creator(RemoteCreator* creator) { remote_creator_ = creator; }
  // The terminal that runs git operation `operation_id` (local or a mirror); nullptr when none does.
  Terminal* find_operation(std::string_view operation_id);
  // Cancels a local git operation for another node (access was checked there): set by GitOperations.
  void set_operation_canceller(std::function<void(const std::string&)> canceller) {
    operation_canceller_ = std::move(canceller);
  }
  void cancel_operation(const std::string& operation_id) {
    if (operation_canceller_) operation_canceller_(operation_id);
  }
  RemoteCreator* remote_creator() const { return remote_creator_; }
  // A terminal another node runs: listed, readable and subscribable like a local one (same rules), its
  // requests going to `remote`. It counts toward no limit of this node. nullptr when the id is taken.
  Terminal* add_mirror(TerminalSpec spec, int64_t created_at_ms, RemoteOwner* remote);
  // Removes a mirror at once (its owner removed it); shell.removed to lifecycle subscribers.
  void remove_mirror(const std::string& id);
  // Observers called after a local terminal was created (cluster mode publishes it).
  ObserverId add_created_observer(std::function<void(Terminal&)> callback) { return on_created_.add(std::move(callback)); }
  void remove_created_observer(ObserverId id) { on_created_.remove(id); }

  // Removes every reference to `subscriber` (before it is destroyed).
  void detach(Subscriber* subscriber);

  // Shutdown: SIGHUP every running terminal's session, SIGKILL after kill_grace. `on_all_exited`
  // runs once no terminal runs any more (at once when none does). The terminals are hung up
  // kHangUpBatch per loop turn (core/turn_batches.hpp), so the loop keeps serving I/O and exits meanwhile.
  void hang_up_all(std::function<void()> on_all_exited);
  static constexpr size_t kHangUpBatch = 32;
  size_t running_count() const;

 private:
  void on_terminal_exit(Terminal& terminal);
  void schedule_removal(Terminal& terminal);
  void remove(const std::string& id);
  // Keeps at most max_terminals exited terminals, and max_terminals_per_user of each user: beyond that
  // the oldest exited one goes at once (exited terminals count toward neither limit, so without this
  // bound a user running short commands would fill memory with retained rings). `keep` is not removed.
  void bound_exited(const std::string& owner, const std::string& keep);
  bool hang_up_batch();  // one batch; whether terminals are left
  std::vector<std::string> child_environment(const std::map<std::string, std::string>& extra) const;
  size_t count_owned_by(const std::string& user) const;

  uv_loop_t* loop_;
  HubLimits limits_;
  Metrics& metrics_;
  std::map<std::string, std::unique_ptr<Terminal>, std::less<>> terminals_;
  // The removal of an exited terminal after exited_retention: the timer's data points at its entry.
  struct Removal {
    Hub* hub = nullptr;
    std::string id;
    UvHandle<uv_timer_t> timer;
  };
  std::map<std::string, std::unique_ptr<Removal>> removal_timers_;
  std::vector<Subscriber*> lifecycle_subscribers_;
  size_t running_ = 0;                                    // terminals started and not exited yet
  std::unordered_map<std::string, size_t> owned_counts_;  // running terminals per owner
  std::vector<std::string> exited_order_;                 // exited terminals still listed, oldest first
  std::function<void()> on_all_exited_;
  std::vector<std::string> hang_up_queue_;  // ids still to hang up, last first
  TurnBatches hang_ups_{loop_, [this] { return hang_up_batch(); }};
  Observers<void(const std::string&)> on_removed_;
  Observers<void(const std::string&)> on_exited_;
  Observers<void(Terminal&)> on_created_;
  std::string node_;
  RemoteCreator* remote_creator_ = nullptr;
  std::function<void(const std::string&)> operation_canceller_;
};

// The environment variable every terminal's processes carry: the terminal's id.
inline constexpr std::string_view kTerminalIdVariable = "PTYHUB_TERMINAL_ID";

// A fresh terminal id: 128 random bits, base64url (22 characters), never starting with '-'.
std::string new_terminal_id();

}  // namespace ptyhub::hub
