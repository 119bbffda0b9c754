// PtyProcess: a child on a PTY; the master is streamed through uv_poll, the child reaped via a pidfd.
#include "pty/pty_process.hpp"


#include <errno.h>
#include <fcntl.h>
#include <pty.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

// glibc 2.36's <sys/pidfd.h> lacks __BEGIN_DECLS, so C++ would mangle pidfd_open's name.
extern "C" {
#include <sys/pidfd.h>
}

#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "core/log.hpp"
#include "pty/child_exec.hpp"

namespace ptyhub::pty {
namespace {

SpawnError make_error(SpawnFailure failure, int error_number, const std::string& what) {
  return SpawnError{failure, error_number, what + ": " + std::strerror(error_number)};
}

ExitStatus decode_wait_status(int wstatus) {
  ExitStatus status;
  if (WIFSIGNALED(wstatus)) {
    status.signal = WTERMSIG(wstatus);
  } else if (WIFEXITED(wstatus)) {
    status.exit_code = WEXITSTATUS(wstatus);
  }
  return status;
}

// The children started here and not reaped yet (loop thread only).
std::unordered_set<pid_t>& live_children() {
  static std::unordered_set<pid_t> pids;
  return pids;
}

// Bookkeeping once `pid`, one of ours, has been reaped.
void note_reaped(pid_t pid) {
  live_children().erase(pid);
  forget_child(pid);
}

// Blocks until `pid` (ours, exiting or killed) is reaped.
void reap_blocking(pid_t pid) {
  while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
  note_reaped(pid);
}

// Kills and reaps a child that will not be handed out, and closes its master.
void abandon_child(pid_t pid, UniqueFd master) {
  signal_session_processes(pid, SIGKILL, master.get());
  kill(pid, SIGKILL);
  master.reset();
  reap_blocking(pid);
}

// Starts the child on a new PTY with every signal blocked around the fork (so no handler of the
// daemon runs in the child). vfork: the daemon's page tables are not copied and it resumes once the
// child has exec'd or failed, so a spawn costs a fraction of a fork; the child only makes syscalls
// (ExecPlan). Under AddressSanitizer a plain fork is used. Returns the pid, the master in *master;
// or -errno.
pid_t fork_on_pty(const detail::ExecPlan& plan, int report_fd, const SpawnOptions& options, UniqueFd* master) {
  struct winsize size {};
  size.ws_row = options.rows;
  size.ws_col = options.cols;
  int master_fd = -1;
  int slave_fd = -1;
  if (options.pipes) {
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) return -errno;
    master_fd = pair[0];
    slave_fd = pair[1];
  } else if (openpty(&master_fd, &slave_fd, nullptr, nullptr, &size) != 0) {
    return -errno;
  }
  UniqueFd owned_master(master_fd);
  UniqueFd slave(slave_fd);
  sigset_t all;
  sigset_t previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
#if defined(__SANITIZE_ADDRESS__)
  pid_t pid = fork();
#else
  pid_t pid = vfork();
#endif
  // The child never returns from here (it execs or _exits), so no destructor of this frame runs in it.
  if (pid == 0) {
    if (options.pipes) plan.run_on_socket_in_child(slave.get(), report_fd);
    plan.run_on_terminal_in_child(slave.get(), report_fd);
  }
  int fork_errno = errno;
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  slave.reset();
  if (pid < 0) return -fork_errno;  // the master closes with owned_master
  *master = std::move(owned_master);
  return pid;
}

// Reads the child's report pipe until EOF: 0 when exec succeeded (EOF, nothing written), 1 when a
// ChildReport arrived, -errno when the pipe failed.
int read_child_report(int fd, detail::ChildReport* report) {
  auto* out = reinterpret_cast<char*>(report);
  size_t got = 0;
  while (got < sizeof *report) {
    ssize_t n = read(fd, out + got, sizeof *report - got);
    if (n > 0) {
      got += static_cast<size_t>(n);
    } else if (n == 0) {
      return got == 0 ? 0 : -EPROTO;
    } else if (errno != EINTR) {
      return -errno;
    }
  }
  return 1;
}

SpawnError child_report_error(const detail::ChildReport& report, const SpawnOptions& options) {
  if (report.stage == static_cast<int>(detail::ChildStage::cwd)) {
    return make_error(SpawnFailure::cwd, report.error_number, "chdir " + options.cwd);
  }
  if (report.stage == static_cast<int>(detail::ChildStage::terminal)) {
    return make_error(SpawnFailure::system, report.error_number, "controlling terminal");
  }
  return make_error(SpawnFailure::command, report.error_number, "exec " + options.argv.front());
}

// O_NONBLOCK | FD_CLOEXEC on the master; 0 or -errno.
int configure_master(int fd) {
  int status_flags = fcntl(fd, F_GETFL);
  if (status_flags < 0 || fcntl(fd, F_SETFL, status_flags | O_NONBLOCK) < 0) return -errno;
  int fd_flags = fcntl(fd, F_GETFD);
  if (fd_flags < 0 || fcntl(fd, F_SETFD, fd_flags | FD_CLOEXEC) < 0) return -errno;
  return 0;
}

// Forks the child and waits until it has exec'd (EOF on the CLOEXEC report pipe). Returns the pid,
// the PTY master in *master; or -1 with *err filled in and nothing left behind.
pid_t start_child(const SpawnOptions& options, UniqueFd* master, SpawnError* err) {
  detail::ExecPlan plan(options.argv, options.env, options.cwd);
  int report_pipe[2];
  if (pipe2(report_pipe, O_CLOEXEC) != 0) {
    *err = make_error(SpawnFailure::system, errno, "pipe2");
    return -1;
  }
  UniqueFd report_read(report_pipe[0]);
  UniqueFd report_write(report_pipe[1]);
  pid_t pid = fork_on_pty(plan, report_write.get(), options, master);
  report_write.reset();  // the child's copy is the only writer left: EOF once it has exec'd
  if (pid < 0) {
    *err = make_error(SpawnFailure::system, -pid, "openpty or fork");
    return -1;
  }
  live_children().insert(pid);
  detail::ChildReport report;
  int reported = read_child_report(report_read.get(), &report);
  report_read.reset();
  if (reported == 0) return pid;
  abandon_child(pid, std::move(*master));
  *err = reported > 0 ? child_report_error(report, options)
                      : make_error(SpawnFailure::system, -reported, "read exec status");
  return -1;
}

}  // namespace

std::unique_ptr<PtyProcess> PtyProcess::spawn(uv_loop_t* loop, const SpawnOptions& options, Callbacks callbacks,
                                              SpawnError* error) {
  SpawnError unused;
  SpawnError& err = error != nullptr ? *error : unused;
  err = SpawnError{};
  if (options.argv.empty()) {
    err = make_error(SpawnFailure::command, EINVAL, "exec (no command)");
    return nullptr;
  }
  UniqueFd master;
  pid_t pid = start_child(options, &master, &err);
  if (pid < 0) return nullptr;
  if (int rc = configure_master(master.get()); rc < 0) {
    abandon_child(pid, std::move(master));
    err = make_error(SpawnFailure::system, -rc, "fcntl pty master");
    return nullptr;
  }
  UniqueFd pidfd(pidfd_open(pid, 0));
  if (!pidfd) {
    err = make_error(SpawnFailure::system, errno, "pidfd_open");
    abandon_child(pid, std::move(master));
    return nullptr;
  }
  std::unique_ptr<PtyProcess> process(
      new PtyProcess(loop, pid, std::move(master), std::move(pidfd), options, std::move(callbacks)));
  if (int rc = process->start(); rc < 0) {
    err = make_error(SpawnFailure::system, -rc, "uv handle init");
    return nullptr;  // the destructor kills and reaps the child
  }
  return process;
}

// Exit reports wait here for their turn: a loop turn reports at most kExitReportsPerLoopTurn of them. Many children that
// end at once (a shutdown, a mass kill) become readable in one poll of the loop, and reporting each one
// (its last output, shell.exit to every subscriber, the hub's bookkeeping) inside that poll blocked the
// loop for as long as all of them took (130-180 ms for 1,000 shells). One queue per loop; its idle handle exists only while reports
// wait, so a loop without pending reports has no handle of it.
class ExitReportQueue {
 public:

  static ExitReportQueue& of(uv_loop_t* loop) {
    static std::unordered_map<uv_loop_t*, std::unique_ptr<ExitReportQueue>> queues;
    std::unique_ptr<ExitReportQueue>& queue = queues[loop];
    if (!queue) queue = std::make_unique<ExitReportQueue>(loop);
    return *queue;
  }

  explicit ExitReportQueue(uv_loop_t* loop) : loop_(loop) {}

  // False when the handle cannot be set up: the caller reports at once.
  bool push(PtyProcess* process) {
    if (!idle_) {
      auto idle = std::make_unique<UvHandle<uv_idle_t>>();
      if (!idle->adopt_init(uv_idle_init(loop_, idle->get()), this)) return false;
      uv_idle_start(idle->get(), [](uv_idle_t* handle) {
        if (auto* self = static_cast<ExitReportQueue*>(handle->data)) self->run();
      });
      idle_ = std::move(idle);
    }
    pending_.push_back(process);
    return true;
  }

  void drop(PtyProcess* process) { std::erase(pending_, process); }

 private:
  void run() {
    // A report may destroy other queued processes, which drop themselves: take them one at a time.
    for (size_t done = 0; done < kExitReportsPerLoopTurn && !pending_.empty(); ++done) {
      PtyProcess* process = pending_.front();
      pending_.pop_front();
      process->report_queued_ = false;
      process->report_exit();
    }
    if (pending_.empty()) idle_.reset();  // closes the handle (allowed inside its own callback)
  }

  uv_loop_t* loop_;
  std::unique_ptr<UvHandle<uv_idle_t>> idle_;
  std::deque<PtyProcess*> pending_;
};

PtyProcess::PtyProcess(uv_loop_t* loop, pid_t pid, UniqueFd master, UniqueFd pidfd,
                       const SpawnOptions& options, Callbacks callbacks)
    : loop_(loop),
      pid_(pid),
      master_(std::move(master)),
      pidfd_(std::move(pidfd)),
      drain_grace_ms_(options.drain_grace_ms),
      callbacks_(std::make_shared<Callbacks>(std::move(callbacks))),
      alive_(std::make_shared<bool>(true)) {
  struct stat info {};
  pipes_ = master_ && fstat(master_.get(), &info) == 0 && S_ISSOCK(info.st_mode);
}

int PtyProcess::start() {
  const auto failed = [this](const char* what, int rc) {
    log::error("pty: " + std::string(what) + " for child " + std::to_string(pid_) + ": " + uv_strerror(rc));
    return rc;
  };
  int rc = uv_poll_init(loop_, master_poll_.get(), master_.get());
  if (rc < 0) return failed("uv_poll_init on the master", rc);
  master_poll_.mark_initialised();
  master_poll_.get()->data = this;
  rc = uv_poll_init(loop_, pidfd_poll_.get(), pidfd_.get());
  if (rc < 0) return failed("uv_poll_init on the pidfd", rc);
  pidfd_poll_.mark_initialised();
  pidfd_poll_.get()->data = this;
  rc = uv_timer_init(loop_, drain_timer_.get());
  if (rc < 0) return failed("uv_timer_init (drain)", rc);
  drain_timer_.mark_initialised();
  drain_timer_.get()->data = this;
  rc = uv_timer_init(loop_, kill_timer_.get());
  if (rc < 0) return failed("uv_timer_init (kill)", rc);
  kill_timer_.mark_initialised();
  kill_timer_.get()->data = this;
  rc = uv_poll_start(pidfd_poll_.get(), UV_READABLE, [](uv_poll_t* handle, int, int) {
    if (auto* self = static_cast<PtyProcess*>(handle->data)) self->on_pidfd_readable();
  });
  if (rc < 0) return failed("uv_poll_start on the pidfd", rc);
  update_master_poll();
  return 0;
}

std::unique_ptr<PtyProcess> PtyProcess::adopt(uv_loop_t* loop, pid_t pid, UniqueFd master, UniqueFd pidfd,
                                              uint64_t drain_grace_ms, Callbacks callbacks, std::string* error) {
  if (pid <= 0 || !master || !pidfd) {
    *error = "no process, master or pidfd to adopt";
    return nullptr;
  }
  if (int rc = configure_master(master.get()); rc < 0) {
    *error = std::string("fcntl on the adopted master: ") + std::strerror(-rc);
    return nullptr;
  }
  // It crossed an execve without FD_CLOEXEC; the next children must not inherit it.
  if (const int flags = fcntl(pidfd.get(), F_GETFD); flags < 0 || fcntl(pidfd.get(), F_SETFD, flags | FD_CLOEXEC) < 0) {
    *error = std::string("fcntl on the adopted pidfd: ") + std::strerror(errno);
    return nullptr;
  }
  SpawnOptions options;
  options.drain_grace_ms = drain_grace_ms;
  std::unique_ptr<PtyProcess> process(
      new PtyProcess(loop, pid, std::move(master), std::move(pidfd), options, std::move(callbacks)));
  live_children().insert(pid);
  if (int rc = process->start(); rc < 0) {
    *error = std::string("uv handle init: ") + uv_strerror(rc);
    process->released_ = true;  // not ours to kill: the caller decides
    live_children().erase(pid);
    return nullptr;
  }
  return process;
}

bool PtyProcess::release(Released* out) {
  if (released_ || reaped_ || exit_reported_) return false;
  released_ = true;
  if (report_queued_) ExitReportQueue::of(loop_).drop(this);
  report_queued_ = false;
  kill_timer_.close();
  drain_timer_.close();
  pidfd_poll_.close();
  master_poll_.close();  // before the fd changes hands, like close_master()
  master_poll_events_ = 0;
  std::string pending;
  for (size_t i = 0; !input_queue_.empty(); ++i) {
    const std::string& chunk = input_queue_.front();
    pending.append(chunk, i == 0 ? input_head_offset_ : 0, std::string::npos);
    input_queue_.pop_front();
  }
  input_head_offset_ = 0;
  pending_input_bytes_ = 0;
  live_children().erase(pid_);
  out->master = std::move(master_);
  out->pidfd = std::move(pidfd_);
  out->pending_input = std::move(pending);
  out->end_input = end_input_;
  return true;
}

PtyProcess::~PtyProcess() {
  *alive_ = false;
  if (report_queued_) ExitReportQueue::of(loop_).drop(this);
  if (released_) return;  // the child and its fds belong to whoever took them
  bool kill_pending = kill_timer_.initialised() && uv_is_active(kill_timer_.as_handle());
  if (!reaped_) {
    signal_session_processes(pid_, SIGKILL, master_.get());
    kill(pid_, SIGKILL);
    reap_blocking(pid_);
  } else if (kill_pending) {
    signal_session_processes(pid_, SIGKILL, master_.get());
  }
  close_master();
  pidfd_poll_.close();  // before its fd, like the master's
  pidfd_.reset();
}

void PtyProcess::close_master() {
  master_poll_.close();  // uv_close stops the poll (removes the fd from epoll) before the fd closes
  master_.reset();
  master_poll_events_ = 0;
}

// ---- output -------------------------------------------------------------------------------------

void PtyProcess::update_master_poll() {
  if (!master_) return;
  int events = 0;
  if (!output_paused_ && !master_eof_) events |= UV_READABLE;
  if (!input_queue_.empty()) events |= UV_WRITABLE;
  if (events == master_poll_events_) return;
  master_poll_events_ = events;
  if (events == 0) {
    uv_poll_stop(master_poll_.get());
    return;
  }
  int rc = uv_poll_start(master_poll_.get(), events, [](uv_poll_t* handle, int status, int ready) {
    if (auto* self = static_cast<PtyProcess*>(handle->data)) self->on_master_event(status, ready);
  });
  if (rc < 0) log::error(std::string("pty: uv_poll_start on master: ") + uv_strerror(rc));
}

void PtyProcess::on_master_event(int status, int events) {
  if (status < 0) {
    // libuv gave up on the fd (POLLERR) and stopped the poll: take what is left, then end.
    master_poll_events_ = -1;
    if (!read_master(kReadsPerWakeup, true)) return;
    if (!master_eof_) on_master_eof();
    return;
  }
  if ((events & UV_WRITABLE) != 0 && !flush_input()) return;
  if ((events & (UV_READABLE | UV_DISCONNECT)) != 0) read_master(kReadsPerWakeup, false);
}

bool PtyProcess::read_master(int max_reads, bool ignore_pause) {
  // One buffer for every PTY: reads are delivered before this returns, on the loop thread.
  static char buffer[kReadBudget];
  size_t used = 0;
  bool eof = false;
  int fault = 0;
  for (int i = 0; i < max_reads && used < read_budget_; ++i) {
    if (!master_ || master_eof_ || (output_paused_ && !ignore_pause)) break;
    ssize_t n = ::read(master_.get(), buffer + used, read_budget_ - used);
    if (n > 0) {
      used += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0 && !is_end_error(errno)) fault = errno;
    eof = true;  // 0, EIO (slave side gone), a socket's reset, or a fault: end of output
    break;
  }
  if (used > 0) {
    auto alive = alive_;
    auto callbacks = callbacks_;
    if (callbacks->on_output) callbacks->on_output(std::string_view(buffer, used));
    if (!*alive) return false;
  }
  if (fault != 0 && !report_fault(PtyFault::Kind::read, fault)) return false;
  return eof ? on_master_eof() : true;
}

bool PtyProcess::on_master_eof() {
  master_eof_ = true;
  discard_input();
  update_master_poll();
  if (!notify_if_input_drained()) return false;
  return maybe_report_exit();
}

bool PtyProcess::is_end_error(int error) const {
  if (error == EIO) return true;
  return pipes_ && (error == EPIPE || error == ECONNRESET);
}

bool PtyProcess::report_fault(PtyFault::Kind kind, int error) {
  bool& reported = kind == PtyFault::Kind::read ? read_fault_reported_ : write_fault_reported_;
  if (reported) return true;
  reported = true;  // the owner of the callbacks logs it, with what it knows of the process
  auto alive = alive_;
  auto callbacks = callbacks_;
  if (callbacks->on_fault) callbacks->on_fault(PtyFault{kind, error});
  return *alive;
}

void PtyProcess::pause_output() {
  output_paused_ = true;
  update_master_poll();
}

void PtyProcess::resume_output() {
  output_paused_ = false;
  update_master_poll();
}

// ---- input --------------------------------------------------------------------------------------

int PtyProcess::write(std::string_view bytes) {
  if (exit_reported_ || input_closed_ || end_input_ || !master_) return -EPIPE;
  if (bytes.empty()) return 0;
  if (input_queue_.empty()) {
    while (!bytes.empty()) {
      ssize_t n = write_now(bytes.data(), bytes.size());
      if (n < 0) {
        discard_input();
        update_master_poll();
        if (!is_end_error(static_cast<int>(-n))) report_fault(PtyFault::Kind::write, static_cast<int>(-n));
        return -EPIPE;
      }
      if (n == 0) break;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    if (bytes.empty()) return 0;
  }
  input_queue_.emplace_back(bytes);
  pending_input_bytes_ += bytes.size();
  if (pending_input_bytes_ > kInputHighWater) input_was_high_ = true;
  update_master_poll();
  return 0;
}

ssize_t PtyProcess::write_now(const char* data, size_t size) {
  while (true) {
    // A socket's peer may be gone: EPIPE without SIGPIPE.
    ssize_t n = pipes_ ? ::send(master_.get(), data, size, MSG_NOSIGNAL) : ::write(master_.get(), data, size);
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    return -errno;
  }
}

bool PtyProcess::flush_input() {
  while (!input_queue_.empty()) {
    const std::string& head = input_queue_.front();
    ssize_t n = write_now(head.data() + input_head_offset_, head.size() - input_head_offset_);
    if (n < 0) {
      discard_input();  // EIO: the slave side is gone, nothing can be delivered any more
      if (!is_end_error(static_cast<int>(-n)) && !report_fault(PtyFault::Kind::write, static_cast<int>(-n))) return false;
      break;
    }
    if (n == 0) break;
    input_head_offset_ += static_cast<size_t>(n);
    pending_input_bytes_ -= static_cast<size_t>(n);
    if (input_head_offset_ == head.size()) {
      input_queue_.pop_front();
      input_head_offset_ = 0;
    }
  }
  if (end_input_ && input_queue_.empty() && !input_closed_) shut_input();
  update_master_poll();
  return notify_if_input_drained();
}

void PtyProcess::discard_input() {
  input_queue_.clear();
  input_head_offset_ = 0;
  pending_input_bytes_ = 0;
  input_closed_ = true;
}

bool PtyProcess::notify_if_input_drained() {
  if (!input_was_high_ || pending_input_bytes_ > kInputLowWater) return true;
  input_was_high_ = false;
  auto callbacks = callbacks_;
  auto alive = alive_;
  if (callbacks->on_input_drained) callbacks->on_input_drained();
  return *alive;
}

int PtyProcess::close_input() {
  if (!pipes_) return -ENOTTY;
  if (!master_ || exit_reported_) return -EPIPE;
  end_input_ = true;
  if (input_queue_.empty() && !input_closed_) shut_input();
  return 0;
}

void PtyProcess::shut_input() {
  ::shutdown(master_.get(), SHUT_WR);  // the command reads end of file after the last byte
  input_closed_ = true;
}

int PtyProcess::resize(uint16_t cols, uint16_t rows) {
  if (!master_) return -EPIPE;
  if (pipes_) return -ENOTTY;
  struct winsize size {};
  size.ws_col = cols;
  size.ws_row = rows;
  if (ioctl(master_.get(), TIOCSWINSZ, &size) != 0) return -errno;
  return 0;
}

// ---- exit ---------------------------------------------------------------------------------------

void PtyProcess::on_pidfd_readable() {
  int wstatus = 0;
  pid_t reaped;
  do {
    reaped = waitpid(pid_, &wstatus, WNOHANG);
  } while (reaped < 0 && errno == EINTR);
  if (reaped == 0) return;  // not exited yet
  if (reaped < 0) {
    log::warn("pty: child " + std::to_string(pid_) + " was reaped elsewhere; exit status lost");
    status_ = ExitStatus{-1, 0};
  } else {
    status_ = decode_wait_status(wstatus);
  }
  note_reaped(pid_);
  reaped_ = true;
  pidfd_poll_.close();
  pidfd_.reset();
  if (master_eof_) {
    maybe_report_exit();
    return;
  }
  uv_timer_start(drain_timer_.get(), [](uv_timer_t* timer) {
    if (auto* self = static_cast<PtyProcess*>(timer->data)) self->on_drain_timeout();
  }, drain_grace_ms_, 0);
}

void PtyProcess::on_drain_timeout() {
  if (exit_reported_ || master_eof_) return;
  // No EOF within the grace: take what the PTY holds now (even while paused), then report.
  if (!read_master(kReadsPerWakeup, true)) return;
  if (!master_eof_) on_master_eof();
}

bool PtyProcess::maybe_report_exit() {
  if (exit_reported_ || report_queued_ || !reaped_ || !master_eof_) return true;
  if (ExitReportQueue::of(loop_).push(this)) {
    report_queued_ = true;
    return true;
  }
  return report_exit();
}

bool PtyProcess::report_exit() {
  if (exit_reported_) return true;
  exit_reported_ = true;
  uv_timer_stop(drain_timer_.get());
  // A pending SIGKILL escalation is only needed while something of the session is left.
  if (uv_is_active(kill_timer_.as_handle()) && !session_has_processes(pid_)) uv_timer_stop(kill_timer_.get());
  close_master();
  auto callbacks = callbacks_;
  auto alive = alive_;
  if (callbacks->on_exit) callbacks->on_exit(status_);
  return *alive;
}

// ---- signals ------------------------------------------------------------------------------------

int PtyProcess::signal_session(int signal, uint64_t escalate_after_ms) {
  if (signal <= 0 || signal >= NSIG) return -EINVAL;
  if (signal_session_processes(pid_, signal, master_.get()) == 0) return -ESRCH;
  if (escalate_after_ms > 0) {
    uv_timer_start(kill_timer_.get(), [](uv_timer_t* timer) {
      if (auto* self = static_cast<PtyProcess*>(timer->data)) self->on_kill_timeout();
    }, escalate_after_ms, 0);
  }
  return 0;
}

void PtyProcess::on_kill_timeout() {
  signal_session_processes(pid_, SIGKILL, master_.get());
}

bool is_pty_child(pid_t pid) { return live_children().count(pid) != 0; }

}  // namespace ptyhub::pty
