// PtyProcess: one child process on a pseudo-terminal, driven by a libuv loop.
//
// Ownership: the PtyProcess owns the PTY master fd, a uv_poll on it, a pidfd with its uv_poll, and
// the timers it uses (drain grace, kill escalation). All of it is released by the destructor; uv handle
// memory is freed in close callbacks (UvHandle). Thread: the loop thread only.
//
// Lifecycle (like tmux's jobs): running -> reaped (waitpid on our own pid, via pidfd) and drained
// (master read to EOF/EIO, or the drain grace expired after the reap) -> exited. on_exit fires exactly
// once, after both, and no on_output follows it. If the object is destroyed while the child runs, the
// child's session gets SIGKILL and the child is reaped before the destructor returns (never a zombie);
// a kill escalation still pending at destruction is carried out at once.
//
// Knows nothing of WebSockets or JSON.
#pragma once

#include <sys/types.h>
#include <uv.h>

#include <cstddef>
#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/fifo.hpp"
#include "core/unique_fd.hpp"
#include "core/uv_handle.hpp"

namespace ptyhub::pty {

class ExitReportQueue;

// At most this many exits are reported (on_exit) per turn of the loop; the rest wait for the next turns,
// so many children ending at once never hold the loop in one poll.
inline constexpr size_t kExitReportsPerLoopTurn = 32;

struct SpawnOptions {
  std::vector<std::string> argv;  // argv[0] is looked up in PATH from `env` when it has no '/'
  std::string cwd;                // must be an existing directory
  std::vector<std::string> env;   // the complete environment, "KEY=VALUE"
  uint16_t cols = 80;
  uint16_t rows = 24;
  uint64_t drain_grace_ms = 2000;  // after the reap, how long to wait for master EOF before reporting exit
  // No PTY: stdin, stdout and stderr are one end of a socket pair (the "master" is the other end). Bytes
  // pass unchanged both ways (no line discipline, no echo); close_input() is the command's end of input;
  // resize() fails with -ENOTTY.
  bool pipes = false;
};

// Why a spawn failed; the errno is reported beside it.
enum class SpawnFailure { none, cwd, command, system };

struct SpawnError {
  SpawnFailure failure = SpawnFailure::none;
  int error_number = 0;   // errno of the failing step
  std::string message;    // human readable, e.g. "chdir /nope: No such file or directory"
};

// A failure of a running process's I/O that is not its normal end (docs/protocol.md §5 "Faults").
struct PtyFault {
  enum class Kind { read, write };
  Kind kind = Kind::read;
  int error_number = 0;  // errno of the failing read or write
};

struct ExitStatus {
  int exit_code = 0;  // valid when signal == 0
  int signal = 0;     // the terminating signal number, or 0
};

class PtyProcess {
 public:
  struct Callbacks {
    // Bytes read from the master, in order; what one wake-up read, coalesced.
    std::function<void(std::string_view bytes)> on_output;
    // After reap and drain; called once. The PtyProcess may be destroyed inside this callback.
    std::function<void(ExitStatus status)> on_exit;
    // Pending input fell to or below kInputLowWater after having been above kInputHighWater (also
    // when the master closed and the pending input was discarded).
    std::function<void()> on_input_drained;
    // Reading the output failed with an error that is not the end of a PTY (EIO) or of a socket (read
    // then ends as at end of output, the process is left running), or writing input failed with one
    // that is not (input is discarded from then on). At most once per kind; the PtyProcess may not be
    // destroyed inside it.
    std::function<void(PtyFault fault)> on_fault;
  };

  static constexpr size_t kInputHighWater = 256 * 1024;
  static constexpr size_t kInputLowWater = 16 * 1024;
  // Reads per wake-up are bounded so one busy PTY cannot starve the loop; what they return is
  // coalesced and handed to on_output once (a PTY read rarely returns more than 4 KiB).
  static constexpr size_t kReadBudget = 256 * 1024;  // at most this much per wake-up (the default)
  static constexpr int kReadsPerWakeup = 64;         // and at most this many read() calls

  // Starts a child on a new PTY (openpty, vfork; new session, controlling terminal), chdir(cwd), execve.
  // A chdir or exec failure in the child is reported back synchronously (CLOEXEC pipe) as `error`
  // and nullptr is returned; the failed child is reaped before returning.
  static std::unique_ptr<PtyProcess> spawn(uv_loop_t* loop, const SpawnOptions& options, Callbacks callbacks,
                                           SpawnError* error);

  // Live upgrade (docs/upgrade.md): a child this process already has — started by an earlier image of
  // it — with its PTY master and pidfd handed over. A child that exited meanwhile is reaped through the
  // pidfd with its real status, and what the PTY still holds is read before on_exit. nullptr with `error`
  // when the fds are not usable (they are closed; the child is left alone).
  static std::unique_ptr<PtyProcess> adopt(uv_loop_t* loop, pid_t pid, UniqueFd master, UniqueFd pidfd,
                                           uint64_t drain_grace_ms, Callbacks callbacks, std::string* error);

  // Live upgrade: gives up the master and the pidfd without signalling or reaping the child, which
  // stays this process's child; input not yet written comes along. The object is inert afterwards (its
  // destructor leaves the child alone). Only while the child is not reaped: false otherwise.
  struct Released {
    UniqueFd master;
    UniqueFd pidfd;
    std::string pending_input;
    bool end_input = false;  // close_input() was asked for: the next owner asks again after pending_input
  };
  bool release(Released* out);

  ~PtyProcess();
  PtyProcess(const PtyProcess&) = delete;
  PtyProcess& operator=(const PtyProcess&) = delete;

  // Queues bytes for the master and writes what the master takes without blocking. Never drops input.
  // Returns 0, or -EPIPE once the process has exited / master is closed (nothing queued then).
  int write(std::string_view bytes);
  // Bytes queued but not yet written to the master.
  size_t pending_input() const { return pending_input_bytes_; }
  bool input_above_high_water() const { return pending_input_bytes_ > kInputHighWater; }

  // TIOCSWINSZ (the kernel sends SIGWINCH to the foreground process group). Returns 0 or -errno
  // (-ENOTTY without a PTY).
  int resize(uint16_t cols, uint16_t rows);
  // Without a PTY (SpawnOptions::pipes): end of input for the command once the input queued so far is
  // written (shutdown of the socket's write side); later writes fail. -ENOTTY on a PTY, -EPIPE once the
  // master is closed.
  int close_input();
  bool pipes() const { return pipes_; }
  // close_input() was called (its shutdown may still wait for queued input).
  bool input_end_requested() const { return end_input_; }

  // Sends `signal` to every process of the child's session (its session id), not only the child.
  // When escalate_after_ms > 0, SIGKILL follows after that delay if the session still has processes.
  // Returns 0 or -errno (-ESRCH once nothing of the session is left).
  int signal_session(int signal, uint64_t escalate_after_ms);

  // Stop / restart reading the master (flow control). While paused, the child blocks when the PTY
  // buffer fills; nothing is lost. Once the child is reaped and the drain grace expires, what the
  // PTY still holds (bounded by its buffer) is delivered even while paused, then on_exit.
  // Reads at most `bytes` (1..kReadBudget) per wake-up from now on.
  void set_read_budget(size_t bytes) { read_budget_ = std::clamp<size_t>(bytes, 1, kReadBudget); }
  void pause_output();
  void resume_output();
  bool output_paused() const { return output_paused_; }

  pid_t pid() const { return pid_; }
  bool exited() const { return exit_reported_; }
  // The child's status once reaped, even before exit is reported (the master still draining).
  std::optional<ExitStatus> reaped_status() const {
    return reaped_ ? std::optional<ExitStatus>(status_) : std::nullopt;
  }

 private:
  friend class ExitReportQueue;
  PtyProcess(uv_loop_t* loop, pid_t pid, UniqueFd master, UniqueFd pidfd, const SpawnOptions& options,
             Callbacks callbacks);

  // Initialises and starts the handles; 0 or a negative uv error, logged (spawn then destroys the
  // object, which kills and reaps the child). A handle whose init failed is never used.
  int start();
  void update_master_poll();
  void on_master_event(int status, int events);
  void on_pidfd_readable();
  void on_drain_timeout();
  void on_kill_timeout();
  // The helpers below may run user callbacks: each returns false when this object was destroyed
  // meanwhile, and the caller must then return without touching any member.
  bool read_master(int max_reads, bool ignore_pause);
  bool flush_input();
  bool on_master_eof();
  // Whether a failed read or write with `error` is the end of the other side (EIO on a PTY whose slave
  // side is gone; EPIPE or ECONNRESET on the socket of a command that has gone) rather than a fault.
  bool is_end_error(int error) const;
  // Reports a fault once per kind; false when `this` was destroyed meanwhile.
  bool report_fault(PtyFault::Kind kind, int error);
  // Queues the exit report once the child is reaped and the master drained (ExitReportQueue).
  bool maybe_report_exit();
  // Reports the exit now: on_exit.
  bool report_exit();
  bool notify_if_input_drained();
  // Writes what the master takes now: bytes written (0 on EAGAIN), or -errno when input is dead.
  ssize_t write_now(const char* data, size_t size);
  void discard_input();
  void shut_input();
  void close_master();

  uv_loop_t* loop_;
  pid_t pid_;
  UniqueFd master_;  // empty once closed (exit reported, or destruction)
  UniqueFd pidfd_;   // empty once the child is reaped
  uint64_t drain_grace_ms_;
  std::shared_ptr<Callbacks> callbacks_;  // shared so a running callback outlives a delete of this
  UvHandle<uv_poll_t> master_poll_;
  UvHandle<uv_poll_t> pidfd_poll_;
  UvHandle<uv_timer_t> drain_timer_;
  UvHandle<uv_timer_t> kill_timer_;
  size_t read_budget_ = kReadBudget;
  Fifo<std::string> input_queue_;
  size_t input_head_offset_ = 0;  // bytes of input_queue_.front() already written
  size_t pending_input_bytes_ = 0;
  int master_poll_events_ = 0;     // UV_READABLE / UV_WRITABLE currently requested
  bool input_was_high_ = false;
  bool input_closed_ = false;      // the master refused a write (EIO): input can no longer arrive
  bool output_paused_ = false;
  bool reaped_ = false;
  bool master_eof_ = false;
  bool read_fault_reported_ = false;
  bool write_fault_reported_ = false;
  bool exit_reported_ = false;
  bool report_queued_ = false;  // waiting in the ExitReportQueue of its loop
  bool released_ = false;       // handed over (release()): nothing of the child is ours to end
  bool pipes_ = false;          // the master is a socket (SpawnOptions::pipes), not a PTY
  bool end_input_ = false;      // close_input(): shut the write side once the queue is written
  ExitStatus status_{};
  std::shared_ptr<bool> alive_;  // lets callbacks notice destruction during user callbacks
};

// Signal helpers shared with the daemon (session_signal.cpp).
//
// Who a session-wide signal reaches: every live process whose session id is `sid`. A process that left
// the session (setsid) is not part of it any more; the daemon's orphan reaper ends such processes when
// their terminal exits. How they are found: when this process is a child subreaper (the daemon is), by a
// walk down the process tree (/proc/<pid>/task/*/children) from the leader and from this process's own
// children in the session — every process of the session whose parent in it died was re-parented here —
// reading /proc only for the session's processes; otherwise by a scan of every /proc/<pid>/stat. Then the
// members outside the leader's and the foreground group get kill(pid), and the leader's group (pgid ==
// sid) and the PTY's foreground group (tcgetpgrp on `master_fd`, when given) get kill(-pgid), which also
// catches a child forked during the walk. Not reached: a session member re-parented to another subreaper
// that itself left the session (documented in docs/protocol.md §7).
//
// Sends `signal` to the live processes of session `sid`; the group kills only when any was found (an
// empty session's id may be reused). Returns how many were found.
int signal_session_processes(pid_t sid, int signal, int master_fd = -1);
// True while any live (non-zombie) process still has session id `sid`.
bool session_has_processes(pid_t sid);
// The caller reaped `pid`, one of its own children: the pid may be reused from now on.
void forget_child(pid_t pid);
// True while a PtyProcess owns the child `pid` (it will reap it through its pidfd).
bool is_pty_child(pid_t pid);

// "SIGSEGV" for every signal (exit reports); real-time ones as "SIGRTMIN+n". nullptr only outside
// 1..NSIG-1.
const char* signal_name(int signal);
// Only the signals the protocol lets clients send: SIGHUP, SIGINT, SIGTERM, SIGKILL; 0 otherwise.
int signal_from_name(std::string_view name);

}  // namespace ptyhub::pty
