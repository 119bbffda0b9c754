// The child half of a PTY spawn: a plan built before fork, run after it without allocating.
#include "pty/child_exec.hpp"

#include <errno.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <string_view>

namespace ptyhub::pty::detail {
namespace {

constexpr std::string_view kDefaultPath = "/usr/local/bin:/usr/bin:/bin";

// The value of the first PATH= entry of `env`, or the default search path.
std::string_view path_from_env(const std::vector<std::string>& env) {
  for (const std::string& entry : env) {
    if (std::string_view(entry).starts_with("PATH=")) return std::string_view(entry).substr(5);
  }
  return kDefaultPath;
}

// Full paths to try for `name`: itself when it has a '/', else each non-empty PATH directory.
std::vector<std::string> exec_candidates(const std::string& name, std::string_view path) {
  if (name.empty()) return {};
  if (name.find('/') != std::string::npos) return {name};
  std::vector<std::string> out;
  while (true) {
    size_t colon = path.find(':');
    std::string_view dir = path.substr(0, colon);
    if (!dir.empty()) {
      std::string candidate(dir);
      if (candidate.back() != '/') candidate += '/';
      out.push_back(candidate + name);
    }
    if (colon == std::string_view::npos) break;
    path.remove_prefix(colon + 1);
  }
  return out;
}

// Null-terminated char* array into `strings` (execve takes non-const pointers).
std::vector<char*> pointers_into(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Errors after which execvp-style lookup goes on with the next PATH directory.
bool try_next_candidate(int error_number) {
  switch (error_number) {
    case EACCES:
    case ENOENT:
    case ENOTDIR:
    case ESTALE:
    case ENODEV:
    case ETIMEDOUT:
      return true;
    default:
      return false;
  }
}

}  // namespace

ExecPlan::ExecPlan(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                   const std::string& cwd)
    : cwd_(cwd), args_(argv), env_(env) {
  if (!args_.empty()) candidates_ = exec_candidates(args_.front(), path_from_env(env_));
  argv_ptrs_ = pointers_into(args_);
  envp_ptrs_ = pointers_into(env_);
  sigemptyset(&empty_mask_);
}

void ExecPlan::run_in_child(int report_fd) const {
  // All signals are blocked (the parent blocked them around fork). Reset every disposition the
  // daemon or its libraries changed (e.g. SIGPIPE ignored), then unblock.
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    sigaction(sig, &default_action, nullptr);  // fails harmlessly for libc-reserved signals
  }
  sigprocmask(SIG_SETMASK, &empty_mask_, nullptr);
  // No daemon fd reaches the shell, CLOEXEC or not; the report pipe is CLOEXEC already.
  close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);

  if (chdir(cwd_.c_str()) != 0) fail(report_fd, ChildStage::cwd, errno);

  int last_error = ENOENT;
  bool saw_eacces = false;
  for (const std::string& candidate : candidates_) {
    execve(candidate.c_str(), argv_ptrs_.data(), envp_ptrs_.data());
    last_error = errno;
    if (!try_next_candidate(last_error)) fail(report_fd, ChildStage::exec, last_error);
    if (last_error == EACCES) saw_eacces = true;
  }
  fail(report_fd, ChildStage::exec, saw_eacces ? EACCES : last_error);
}

void ExecPlan::run_on_terminal_in_child(int pty_slave, int report_fd) const {
  if (setsid() < 0 || ioctl(pty_slave, TIOCSCTTY, 0) != 0) fail(report_fd, ChildStage::terminal, errno);
  for (int fd = 0; fd <= 2; ++fd) {
    if (pty_slave != fd && dup2(pty_slave, fd) < 0) fail(report_fd, ChildStage::terminal, errno);
  }
  run_in_child(report_fd);  // the slave's own fd (> 2) is closed at exec
}

void ExecPlan::run_on_socket_in_child(int stdio, int report_fd) const {
  if (setsid() < 0) fail(report_fd, ChildStage::terminal, errno);
  for (int fd = 0; fd <= 2; ++fd) {
    if (stdio != fd && dup2(stdio, fd) < 0) fail(report_fd, ChildStage::terminal, errno);
  }
  run_in_child(report_fd);  // the socket's own fd (> 2) is closed at exec
}

void ExecPlan::fail(int report_fd, ChildStage stage, int error_number) const {
  ChildReport report;
  report.stage = static_cast<int>(stage);
  report.error_number = error_number;
  ssize_t ignored = write(report_fd, &report, sizeof report);  // atomic: smaller than PIPE_BUF
  (void)ignored;
  _exit(127);
}

}  // namespace ptyhub::pty::detail
