// Session-wide signals (found by scanning /proc) and signal names.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "core/unique_fd.hpp"
#include "pty/pty_process.hpp"

namespace ptyhub::pty {
namespace {

// The fields of /proc/<pid>/stat we need.
struct ProcStat {
  char state = '?';
  pid_t session = 0;
};

// Parses "pid (comm) state ppid pgrp session ...". comm may hold spaces and ')', so the fields are
// read after the LAST ')'; they are all numeric, so it is comm's closing one.
bool parse_proc_stat(std::string_view text, ProcStat* out) {
  size_t close = text.rfind(')');
  if (close == std::string_view::npos) return false;
  std::string rest(text.substr(close + 1));
  char state = 0;
  long ppid = 0;
  long pgrp = 0;
  long session = 0;
  if (std::sscanf(rest.c_str(), " %c %ld %ld %ld", &state, &ppid, &pgrp, &session) != 4) return false;
  out->state = state;
  out->session = static_cast<pid_t>(session);
  return true;
}

bool read_proc_stat(const char* pid_text, ProcStat* out) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%s/stat", pid_text);
  UniqueFd fd(open(path, O_RDONLY | O_CLOEXEC));
  if (!fd) return false;  // the process is gone
  char buffer[256];  // pid, comm (<= 16 bytes + parens) and the four fields fit well within
  ssize_t n;
  do {
    n = read(fd.get(), buffer, sizeof buffer);
  } while (n < 0 && errno == EINTR);
  fd.reset();
  if (n <= 0) return false;
  return parse_proc_stat(std::string_view(buffer, static_cast<size_t>(n)), out);
}

pid_t parse_pid(const char* name) {
  char* end = nullptr;
  long value = std::strtol(name, &end, 10);
  if (end == name || *end != '\0' || value <= 0) return 0;
  return static_cast<pid_t>(value);
}

// Live (not zombie, not dead) processes whose session id is `sid`.
std::vector<pid_t> session_members(pid_t sid) {
  std::vector<pid_t> members;
  if (sid <= 0) return members;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return members;
  while (dirent* entry = readdir(proc)) {
    pid_t pid = parse_pid(entry->d_name);
    if (pid == 0) continue;
    ProcStat stat;
    if (!read_proc_stat(entry->d_name, &stat) || stat.session != sid) continue;
    if (stat.state == 'Z' || stat.state == 'X' || stat.state == 'x') continue;
    members.push_back(pid);
  }
  closedir(proc);
  return members;
}

struct SignalName {
  int number;
  const char* name;
};

constexpr SignalName kSignalNames[] = {
    {SIGHUP, "SIGHUP"},       {SIGINT, "SIGINT"},       {SIGQUIT, "SIGQUIT"},   {SIGILL, "SIGILL"},
    {SIGTRAP, "SIGTRAP"},     {SIGABRT, "SIGABRT"},     {SIGBUS, "SIGBUS"},     {SIGFPE, "SIGFPE"},
    {SIGKILL, "SIGKILL"},     {SIGUSR1, "SIGUSR1"},     {SIGSEGV, "SIGSEGV"},   {SIGUSR2, "SIGUSR2"},
    {SIGPIPE, "SIGPIPE"},     {SIGALRM, "SIGALRM"},     {SIGTERM, "SIGTERM"},   {SIGSTKFLT, "SIGSTKFLT"},
    {SIGCHLD, "SIGCHLD"},     {SIGCONT, "SIGCONT"},     {SIGSTOP, "SIGSTOP"},   {SIGTSTP, "SIGTSTP"},
    {SIGTTIN, "SIGTTIN"},     {SIGTTOU, "SIGTTOU"},     {SIGURG, "SIGURG"},     {SIGXCPU, "SIGXCPU"},
    {SIGXFSZ, "SIGXFSZ"},     {SIGVTALRM, "SIGVTALRM"}, {SIGPROF, "SIGPROF"},   {SIGWINCH, "SIGWINCH"},
    {SIGIO, "SIGIO"},         {SIGPWR, "SIGPWR"},       {SIGSYS, "SIGSYS"},
};

// The signals a client may send (docs/protocol.md §4 Requests, `shell.kill`).
constexpr int kClientSignals[] = {SIGHUP, SIGINT, SIGTERM, SIGKILL};

}  // namespace

int signal_session_processes(pid_t sid, int signal) {
  int signalled = 0;
  for (pid_t pid : session_members(sid)) {
    if (kill(pid, signal) == 0) ++signalled;
  }
  // The group catches a child forked during the scan. Only when the session still exists: an empty
  // session's id may since have been reused for an unrelated process group.
  if (signalled > 0) kill(-sid, signal);
  return signalled;
}

bool session_has_processes(pid_t sid) { return !session_members(sid).empty(); }

const char* signal_name(int signal) {
  for (const SignalName& entry : kSignalNames) {
    if (entry.number == signal) return entry.name;
  }
  if (signal <= 0 || signal >= NSIG) return nullptr;
  // Real-time and libc-reserved signals: "SIGRTMIN+3", "SIG32". Built once, kept for the process.
  static const std::vector<std::string> kOtherNames = [] {
    std::vector<std::string> names(NSIG);
    for (int n = 1; n < NSIG; ++n) {
      if (n >= SIGRTMIN && n <= SIGRTMAX) {
        names[n] = n == SIGRTMIN ? "SIGRTMIN" : "SIGRTMIN+" + std::to_string(n - SIGRTMIN);
      } else {
        names[n] = "SIG" + std::to_string(n);
      }
    }
    return names;
  }();
  return kOtherNames[static_cast<size_t>(signal)].c_str();
}

int signal_from_name(std::string_view name) {
  for (int signal : kClientSignals) {
    if (name == signal_name(signal)) return signal;
  }
  return 0;
}

}  // namespace ptyhub::pty
