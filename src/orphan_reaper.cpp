// OrphanReaper: subreaper, SIGCHLD bookkeeping of new children, attribution by environment, SIGTERM → SIGKILL.
#include "src/orphan_reaper.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/log.hpp"
#include "core/unique_fd.hpp"
#include "pty/children.hpp"
#include "pty/pty_process.hpp"
#include "src/hub/hub.hpp"

namespace ptyhub {
namespace {

constexpr size_t kMaxEnvironBytes = 1024 * 1024;
constexpr int kStopWaitMs = 1000;

uint64_t now_ms() { return uv_hrtime() / 1000000; }

pid_t parse_pid(const char* name) {
  char* end = nullptr;
  const long value = std::strtol(name, &end, 10);
  if (end == name || *end != '\0' || value <= 0) return 0;
  return static_cast<pid_t>(value);
}

// Reads up to `limit` bytes of a /proc file; empty when it cannot be read (the process is gone).
std::string read_proc_file(const std::string& path, size_t limit) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  std::string content;
  if (!fd) return content;
  char buffer[4096];
  while (content.size() < limit) {
    const ssize_t n = read(fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    content.append(buffer, static_cast<size_t>(n));
  }
  return content;
}

// "pid (comm) state ppid … starttime(22) …": comm may hold spaces and ')', so fields are read after the
// last ')'.
bool parse_stat(const std::string& text, char* state, pid_t* parent, unsigned long long* start_time) {
  const size_t close = text.rfind(')');
  if (close == std::string::npos || close + 3 >= text.size()) return false;
  const char* cursor = text.c_str() + close + 2;  // ") S 1 …"
  *state = *cursor++;
  char* end = nullptr;
  const long ppid = std::strtol(cursor, &end, 10);  // field 4
  if (end == cursor) return false;
  cursor = end;
  for (int field = 5; field < 22; ++field) {  // pgrp … itrealvalue: skipped
    while (*cursor == ' ') ++cursor;
    while (*cursor != ' ' && *cursor != '\0') ++cursor;
    if (*cursor == '\0') return false;
  }
  const unsigned long long start = std::strtoull(cursor, &end, 10);  // field 22
  if (end == cursor) return false;
  *start_time = start;
  *parent = static_cast<pid_t>(ppid);
  return true;
}

struct ChildInfo {
  pid_t pid;
  char state;
  unsigned long long start_time;
};

// Every pid on the host, for kernels without the children files.
std::vector<pid_t> all_pids(pid_t self) {
  std::vector<pid_t> pids;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return pids;
  while (dirent* entry = readdir(proc)) {
    const pid_t pid = parse_pid(entry->d_name);
    if (pid != 0 && pid != self) pids.push_back(pid);
  }
  closedir(proc);
  return pids;
}

std::vector<ChildInfo> children_of(pid_t self) {
  std::vector<pid_t> candidates;
  if (!pty::list_children_of(0, &candidates)) candidates = all_pids(self);
  std::vector<ChildInfo> children;
  for (pid_t pid : candidates) {
    char state = '?';
    pid_t parent = 0;
    unsigned long long start_time = 0;
    const std::string stat = read_proc_file("/proc/" + std::to_string(pid) + "/stat", 1024);
    if (!parse_stat(stat, &state, &parent, &start_time) || parent != self) continue;
    children.push_back({pid, state, start_time});
  }
  return children;
}

// hub::kTerminalIdVariable of a live process; empty when absent or unreadable. `empty_environ` tells that
// nothing at all could be read (a process inside execve() shows no environment for a moment).
std::string terminal_id_of(pid_t pid, bool* empty_environ) {
  const std::string environ = read_proc_file("/proc/" + std::to_string(pid) + "/environ", kMaxEnvironBytes);
  *empty_environ = environ.empty();
  const std::string prefix = std::string(hub::kTerminalIdVariable) + "=";
  size_t start = 0;
  while (start < environ.size()) {
    size_t end = environ.find('\0', start);
    if (end == std::string::npos) end = environ.size();
    if (environ.compare(start, prefix.size(), prefix) == 0) {
      return environ.substr(start + prefix.size(), end - start - prefix.size());
    }
    start = end + 1;
  }
  return {};
}

bool is_zombie(char state) { return state == 'Z' || state == 'X' || state == 'x'; }

}  // namespace

OrphanReaper::OrphanReaper(uv_loop_t* loop, uint64_t kill_grace_ms, IsRunning is_running)
    : loop_(loop), kill_grace_ms_(kill_grace_ms), is_running_(std::move(is_running)) {}

OrphanReaper::~OrphanReaper() { stop(); }

bool OrphanReaper::start(std::string* error) {
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
    *error = std::string("PR_SET_CHILD_SUBREAPER: ") + std::strerror(errno);
    return false;
  }
  const auto failed = [this, error](const char* what, int rc) {
    *error = std::string("orphan reaper: ") + what + ": " + uv_strerror(rc);
    log::error(*error);
    sigchld_.close();
    kill_timer_.close();
    resweep_timer_.close();
    return false;
  };
  int rc = uv_signal_init(loop_, sigchld_.get());
  if (rc != 0) return failed("uv_signal_init", rc);
  sigchld_.mark_initialised();
  sigchld_.get()->data = this;
  uv_unref(sigchld_.as_handle());
  rc = uv_timer_init(loop_, kill_timer_.get());
  if (rc != 0) return failed("uv_timer_init", rc);
  kill_timer_.mark_initialised();
  kill_timer_.get()->data = this;
  uv_unref(kill_timer_.as_handle());
  rc = uv_timer_init(loop_, resweep_timer_.get());
  if (rc != 0) return failed("uv_timer_init", rc);
  resweep_timer_.mark_initialised();
  resweep_timer_.get()->data = this;
  uv_unref(resweep_timer_.as_handle());
  rc = uv_signal_start(
      sigchld_.get(),
      [](uv_signal_t* handle, int) {
        if (auto* self = static_cast<OrphanReaper*>(handle->data)) self->sweep();
      },
      SIGCHLD);
  if (rc != 0) return failed("uv_signal_start SIGCHLD", rc);
  started_ = true;
  sweep();  // children inherited across an exec, if any
  return true;
}

void OrphanReaper::sweep() {
  if (!started_) return;
  const uint64_t generation_before = pty::listing_generation();
  const pty::ChildListing& listing = pty::own_children();
  if (!listing.listed) {  // no children files: every sweep scans /proc
    for (const ChildInfo& child : children_of(getpid())) {
      if (known_.count(child.pid) == 0) learn(child.pid);
    }
  } else if (listing.generation != swept_generation_) {
    swept_generation_ = listing.generation;
    const std::vector<pid_t> listed = listing.pids;  // a copy: reaping edits the shared listing
    for (pid_t pid : listed) {
      if (known_.count(pid) == 0) learn(pid);
    }
  }
  // Attribution again for the processes that showed no environment (inside execve()) last time.
  std::vector<pid_t> retry(unattributed_.begin(), unattributed_.end());
  for (pid_t pid : retry) {
    auto it = known_.find(pid);
    if (it == known_.end()) {
      unattributed_.erase(pid);
    } else {
      attribute(pid, it->second);
    }
  }
  reap_known();
  // A listing taken before this sweep (shared, younger than kChildListingMaxAgeMs) may predate a process
  // re-parented or ended since, even within the same millisecond: look again once it has expired.
  if (listing.listed && listing.generation == generation_before) arm_resweep(listing.taken_ms);
}

void OrphanReaper::arm_resweep(uint64_t taken_ms) {
  if (!resweep_timer_.initialised() || uv_is_active(resweep_timer_.as_handle())) return;
  const uint64_t now = pty::monotonic_ms();
  const uint64_t due = taken_ms + pty::kChildListingMaxAgeMs;
  uv_timer_start(
      resweep_timer_.get(),
      [](uv_timer_t* handle) {
        if (auto* self = static_cast<OrphanReaper*>(handle->data)) self->sweep();
      },
      due > now ? due - now : 1, 0);
}

void OrphanReaper::learn(pid_t pid) {
  if (pty::is_pty_child(pid)) return;  // pty/ reaps it through its pidfd
  char state = '?';
  pid_t parent = 0;
  unsigned long long start_time = 0;
  const std::string stat = read_proc_file("/proc/" + std::to_string(pid) + "/stat", 1024);
  if (!parse_stat(stat, &state, &parent, &start_time)) return;  // gone (and reaped) already
  if (parent != getpid()) return;  // not (or no longer) a child of this process
  Known& known = known_[pid];
  known.start_time = start_time;
  if (is_zombie(state)) return;  // reap_known() reaps it
  attribute(pid, known);
}

void OrphanReaper::attribute(pid_t pid, Known& known) {
  known.terminal = terminal_id_of(pid, &known.environ_empty);
  if (known.terminal.empty()) {
    if (known.environ_empty) {
      unattributed_.insert(pid);
    } else {
      unattributed_.erase(pid);
    }
    return;
  }
  unattributed_.erase(pid);
  known.environ_empty = false;
  by_terminal_[known.terminal].insert(pid);
  if (!is_running_(known.terminal)) condemn(pid, known);
}

void OrphanReaper::reap_known() {
  std::vector<pid_t> reaped;
  for (const auto& [pid, known] : known_) {
    int status = 0;
    pid_t rc;
    do {
      rc = waitpid(pid, &status, WNOHANG);
    } while (rc < 0 && errno == EINTR);
    if (rc == pid || (rc < 0 && errno == ECHILD)) reaped.push_back(pid);
  }
  for (pid_t pid : reaped) {
    log::debug("reaped orphan " + std::to_string(pid));
    forget(pid);
    pty::forget_child(pid);
  }
}

void OrphanReaper::forget(pid_t pid) {
  unattributed_.erase(pid);
  auto it = known_.find(pid);
  if (it == known_.end()) return;
  if (!it->second.terminal.empty()) {
    auto group = by_terminal_.find(it->second.terminal);
    if (group != by_terminal_.end()) {
      group->second.erase(pid);
      if (group->second.empty()) by_terminal_.erase(group);
    }
  }
  known_.erase(it);
}

void OrphanReaper::terminal_exited(const std::string& terminal_id) {
  if (!started_) return;
  sweep();  // what was re-parented to the daemon since the last SIGCHLD (no SIGCHLD announces that)
  auto group = by_terminal_.find(terminal_id);
  if (group == by_terminal_.end()) return;
  for (pid_t pid : group->second) {
    Known& known = known_[pid];
    if (!known.condemned) condemn(pid, known);
  }
}

void OrphanReaper::condemn(pid_t pid, Known& known) {
  log::info("terminal ended: SIGTERM to a process it left behind",
            {{"terminal", known.terminal}, {"pid", std::to_string(pid), true}});
  kill(pid, SIGTERM);
  known.condemned = true;
  condemned_.push_back({pid, known.start_time, now_ms() + kill_grace_ms_});
  arm_kill_timer();
}

void OrphanReaper::arm_kill_timer() {
  if (condemned_.empty() || !kill_timer_.initialised() || kill_timer_.get() == nullptr) return;
  uint64_t next = condemned_.front().kill_at_ms;
  for (const Condemned& c : condemned_) next = std::min(next, c.kill_at_ms);
  const uint64_t now = now_ms();
  uv_timer_start(
      kill_timer_.get(),
      [](uv_timer_t* handle) {
        if (auto* self = static_cast<OrphanReaper*>(handle->data)) self->on_kill_timer();
      },
      next > now ? next - now : 0, 0);
}

void OrphanReaper::on_kill_timer() {
  reap_known();
  const uint64_t now = now_ms();
  std::erase_if(condemned_, [&](const Condemned& c) {
    if (c.kill_at_ms > now) return false;
    // Still known means not reaped yet (every orphan is reaped here, and forgotten then): the pid is
    // still that process, so the signal cannot reach a recycled pid.
    auto it = known_.find(c.pid);
    if (it != known_.end() && it->second.start_time == c.start_time) {
      log::info("SIGKILL to a left-behind process after kill_grace",
                {{"terminal", it->second.terminal}, {"pid", std::to_string(c.pid), true}});
      kill(c.pid, SIGKILL);
    }
    return true;
  });
  arm_kill_timer();
}

void OrphanReaper::stop() {
  if (!started_) return;
  started_ = false;
  sigchld_.close();
  kill_timer_.close();
  resweep_timer_.close();
  condemned_.clear();
  known_.clear();
  unattributed_.clear();
  by_terminal_.clear();
  const pid_t self = getpid();
  for (const ChildInfo& child : children_of(self)) {
    if (pty::is_pty_child(child.pid)) continue;
    UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, child.pid, 0)));
    if (!is_zombie(child.state)) {
      log::info("stopping: SIGKILL to a left-behind process", {{"pid", std::to_string(child.pid), true}});
      kill(child.pid, SIGKILL);
      if (pidfd) {
        pollfd wait{pidfd.get(), POLLIN, 0};
        while (poll(&wait, 1, kStopWaitMs) < 0 && errno == EINTR) {
        }
      }
    }
    int status = 0;
    if (waitpid(child.pid, &status, WNOHANG) == child.pid) pty::forget_child(child.pid);
  }
}

}  // namespace ptyhub
