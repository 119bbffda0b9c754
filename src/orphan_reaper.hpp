// OrphanReaper: the daemon is a child subreaper (PR_SET_CHILD_SUBREAPER), so what a terminal's processes
// leave behind — a daemonised `setsid cmd &`, a double fork, a job outliving its shell — is re-parented to
// the daemon instead of init. This class reaps those processes and ends them with their terminal.
//
// Attribution: every terminal's environment carries PTYHUB_TERMINAL_ID=<id> (hub/), which its descendants
// inherit; a re-parented process is attributed by reading /proc/<pid>/environ. A process without the
// variable (it cleared its environment, or changed user and is unreadable) is not attributed: it is reaped
// when it exits and killed when the daemon stops, never earlier.
//
// Bookkeeping, so that closing N terminals costs O(N): on SIGCHLD the daemon's children are listed from
// /proc/self/task/*/children — the listing pty/children.hpp shares, taken at most once per 20 ms however
// many signals and exits arrive (a scan of /proc where the kernel does not offer those files) — and only a
// pid not seen before is looked at: its stat (start time) and its environment (attribution) are read once.
// A sweep that used a listing older than itself sweeps again once that listing has expired, so a process
// re-parented or ended just after a listing is still reaped and attributed within milliseconds. A PTY
// process (pty::is_pty_child) is left to pty/, which reaps it through its pidfd; it is never read. The
// attributed processes are kept per terminal id.
// Reaping: the daemon's other children (the orphans it knows) are reaped one by one with
// waitpid(pid, WNOHANG) — never waitpid(-1), which would steal a PTY process's status. The daemon starts
// no other children (no uv_spawn), so nothing else can be stolen from libuv.
//
// Ending: when a terminal has exited (terminal_exited(id)), the processes attributed to that terminal —
// and only those — get SIGTERM, then SIGKILL after kill_grace if they are still there; so does a process
// re-parented later to a terminal that no longer runs. stop() SIGKILLs every remaining child when the
// daemon stops.
//
// Owns a uv_signal and a uv_timer (unreferenced). Loop thread only.
#pragma once

#include <sys/types.h>
#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/uv_handle.hpp"

namespace ptyhub {

class OrphanReaper {
 public:
  // Whether the terminal with this id still runs.
  using IsRunning = std::function<bool(std::string_view terminal_id)>;

  OrphanReaper(uv_loop_t* loop, uint64_t kill_grace_ms, IsRunning is_running);
  ~OrphanReaper();
  OrphanReaper(const OrphanReaper&) = delete;
  OrphanReaper& operator=(const OrphanReaper&) = delete;

  // Becomes a child subreaper and watches SIGCHLD. False with `error` when prctl fails.
  bool start(std::string* error);
  // A terminal exited: end what it left behind (the processes attributed to `terminal_id`).
  void terminal_exited(const std::string& terminal_id);
  // Closes the handles, SIGKILLs every child still there (waiting up to a second for each to die) and
  // reaps it. Called once terminals are gone.
  void stop();

 private:
  struct Known {
    unsigned long long start_time = 0;  // guards against a recycled pid
    std::string terminal;               // empty: not attributed
    bool condemned = false;
    // Its environment read as nothing: a process in the middle of execve() shows none until the new
    // image is set up, so attribution is tried again at every sweep until the variable is found.
    bool environ_empty = false;
  };
  struct Condemned {
    pid_t pid = 0;
    unsigned long long start_time = 0;
    uint64_t kill_at_ms = 0;
  };

  void sweep();
  // Learns a child not seen before: reaps it when it is already a zombie, attributes it otherwise.
  void learn(pid_t pid);
  // Reads the terminal id of a known child from its environment and attributes it when found.
  void attribute(pid_t pid, Known& known);
  void reap_known();
  void forget(pid_t pid);
  void condemn(pid_t pid, Known& known);
  void on_kill_timer();
  void arm_kill_timer();
  // Sweeps again once the listing taken at `taken_ms` has expired (pty/children.hpp).
  void arm_resweep(uint64_t taken_ms);

  uv_loop_t* loop_;
  uint64_t kill_grace_ms_;
  IsRunning is_running_;
  UvHandle<uv_signal_t> sigchld_;
  UvHandle<uv_timer_t> kill_timer_;
  UvHandle<uv_timer_t> resweep_timer_;
  std::unordered_map<pid_t, Known> known_;
  std::unordered_map<std::string, std::unordered_set<pid_t>> by_terminal_;
  std::unordered_set<pid_t> unattributed_;  // known, environment read as nothing: attribution is retried
  std::vector<Condemned> condemned_;
  uint64_t swept_generation_ = 0;  // the listing (pty::own_children) the last sweep looked at
  bool started_ = false;
};

}  // namespace ptyhub
