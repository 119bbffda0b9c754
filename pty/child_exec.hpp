// ExecPlan: everything a freshly forked PTY child needs to become the requested command.
//
// Ownership: the plan owns copies of argv, envp, cwd and the PATH candidates; the pointer arrays
// handed to execve point into those copies. It is built in the parent BEFORE fork, so that the
// child only makes async-signal-safe calls (sigaction, sigprocmask, close_range, chdir, execve,
// write, _exit) and never allocates. Thread: the loop thread builds it; the child runs it.
//
// Internal to pty/ (namespace detail).
#pragma once

#include <signal.h>

#include <string>
#include <vector>

namespace ptyhub::pty::detail {

// Which step of the child failed; sent to the parent over the report pipe.
enum class ChildStage : int { cwd = 1, exec = 2, terminal = 3 };

// Fixed-size record the child writes to the CLOEXEC report pipe when it cannot exec.
struct ChildReport {
  int stage = 0;         // a ChildStage
  int error_number = 0;  // errno of the failing call
};

class ExecPlan {
 public:
  // `argv` must not be empty. argv[0] without '/' is looked up in the PATH found in `env`.
  ExecPlan(const std::vector<std::string>& argv, const std::vector<std::string>& env, const std::string& cwd);
  ExecPlan(const ExecPlan&) = delete;
  ExecPlan& operator=(const ExecPlan&) = delete;

  // Runs in the forked child: resets signal dispositions and mask, marks inherited fds CLOEXEC,
  // chdir, then execve each candidate in turn. On failure writes a ChildReport to `report_fd`
  // and _exit(127). Never returns.
  [[noreturn]] void run_in_child(int report_fd) const;
  // As run_in_child, first making `pty_slave` the controlling terminal of a new session and the
  // child's stdin, stdout and stderr (what login_tty does). Safe in a vfork child: syscalls only.
  [[noreturn]] void run_on_terminal_in_child(int pty_slave, int report_fd) const;
  // As run_in_child, in a new session without a controlling terminal, with `stdio` (one end of a socket
  // pair) as stdin, stdout and stderr. Syscalls only.
  [[noreturn]] void run_on_socket_in_child(int stdio, int report_fd) const;

 private:
  [[noreturn]] void fail(int report_fd, ChildStage stage, int error_number) const;

  std::string cwd_;
  std::vector<std::string> args_;
  std::vector<std::string> env_;
  std::vector<std::string> candidates_;  // full paths to try, in order
  std::vector<char*> argv_ptrs_;         // null-terminated, into args_
  std::vector<char*> envp_ptrs_;         // null-terminated, into env_
  sigset_t empty_mask_{};
};

}  // namespace ptyhub::pty::detail
