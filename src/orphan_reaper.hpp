// OrphanReaper: the daemon is a child subreaper (PR_SET_CHILD_SUBREAPER), so what a terminal's processes
// leave behind — a daemonised `setsid cmd &`, a double fork, a job outliving its shell — is re-parented to
// the daemon instead of init. This class reaps those processes and ends them with their terminal.
//
// Attribution: every terminal's environment carries PTYHUB_TERMINAL_ID=<id> (hub/), which its descendants
// inherit; a re-parented process is attributed by reading /proc/<pid>/environ. A process without the
// variable (it cleared its environment, or changed user and is unreadable) is not attributed: it is reaped
// when it exits and killed when the daemon stops, never earlier.
//
// The daemon's children are listed from /proc/self/task/*/children (a scan of /proc where the kernel does
// not offer those files).
// Reaping: on SIGCHLD (a uv_signal), zombies among the daemon's children are reaped one by one with
// waitpid(pid, WNOHANG) — never waitpid(-1) — except the PTY processes, which pty/ reaps through their
// pidfds: a zombie that a pidfd of this process refers to (/proc/self/fdinfo "Pid:") is left to its owner.
// The daemon starts no other children (no uv_spawn), so nothing else can be stolen from libuv.
//
// Ending: when a terminal has exited (terminal_exited()), and on every SIGCHLD for processes re-parented
// later, each child of the daemon attributed to a terminal that no longer runs gets SIGTERM, then SIGKILL
// after kill_grace if it is still there. stop() SIGKILLs every remaining child when the daemon stops.
//
// Owns a uv_signal and a uv_timer (unreferenced). Loop thread only.
#pragma once

#include <sys/types.h>
#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
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
  // A terminal exited: end what it left behind.
  void terminal_exited() { sweep(); }
  // Closes the handles, SIGKILLs every child still there (waiting up to a second for each to die) and
  // reaps it. Called once terminals are gone.
  void stop();

 private:
  struct Child {
    pid_t pid = 0;
    char state = '?';
    unsigned long long start_time = 0;  // guards against a recycled pid
  };
  struct Condemned {
    pid_t pid = 0;
    unsigned long long start_time = 0;
    uint64_t kill_at_ms = 0;
  };

  void sweep();
  void on_kill_timer();
  void arm_kill_timer();

  uv_loop_t* loop_;
  uint64_t kill_grace_ms_;
  IsRunning is_running_;
  UvHandle<uv_signal_t> sigchld_;
  UvHandle<uv_timer_t> kill_timer_;
  std::vector<Condemned> condemned_;
  bool started_ = false;
};

}  // namespace ptyhub
