// Session-wide signals (a walk of the terminal's process tree, a /proc scan as the fallback) and signal names.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/unique_fd.hpp"
#include "pty/children.hpp"
#include "pty/pty_process.hpp"

namespace ptyhub::pty {
namespace {

// The fields of /proc/<pid>/stat we need.
struct ProcStat {
  char state = '?';
  pid_t group = 0;
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
  out->group = static_cast<pid_t>(pgrp);
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

bool read_proc_stat(pid_t pid, ProcStat* out) { return read_proc_stat(std::to_string(pid).c_str(), out); }

bool is_dead(char state) { return state == 'Z' || state == 'X' || state == 'x'; }

pid_t parse_pid(const char* name) {
  char* end = nullptr;
  long value = std::strtol(name, &end, 10);
  if (end == name || *end != '\0' || value <= 0) return 0;
  return static_cast<pid_t>(value);
}

// What this process knows of its own children: the session each one had when it was first listed.
// A process can leave a session (setsid) but never join an existing one, so a child first seen in
// another session can never be in the session asked for; one seen in it is checked again (stat) before
// it is used. A pid leaves the table when it is no longer listed or when it is reaped (forget_child):
// every child is reaped by this process, so a pid in the table cannot have been recycled meanwhile.
// The index by session is rebuilt once per listing (pty/children.hpp), not once per signal.
struct ChildSessions {
  uint64_t generation = 0;
  std::unordered_map<pid_t, pid_t> session_of;
  std::unordered_map<pid_t, std::vector<pid_t>> by_session;
};

ChildSessions& child_sessions() {
  static ChildSessions table;
  return table;
}

// The children of this process that were in session `sid` when first seen. False when the children
// cannot be listed.
bool own_children_in_session(pid_t sid, std::vector<pid_t>* out) {
  const ChildListing& listing = own_children();
  if (!listing.listed) return false;
  ChildSessions& table = child_sessions();
  if (table.generation != listing.generation) {
    std::unordered_map<pid_t, pid_t> fresh;
    fresh.reserve(listing.pids.size());
    table.by_session.clear();
    for (pid_t pid : listing.pids) {
      auto known = table.session_of.find(pid);
      pid_t session = 0;
      if (known != table.session_of.end()) {
        session = known->second;
      } else {
        ProcStat stat;
        if (!read_proc_stat(pid, &stat)) continue;
        session = stat.session;
      }
      fresh.emplace(pid, session);
      table.by_session[session].push_back(pid);
    }
    table.session_of.swap(fresh);
    table.generation = listing.generation;
  }
  auto members = table.by_session.find(sid);
  if (members != table.by_session.end()) out->insert(out->end(), members->second.begin(), members->second.end());
  return true;
}

// Whether processes that lose their parent come to this process (PR_SET_CHILD_SUBREAPER).
bool is_subreaper() {
  int flag = 0;
  return prctl(PR_GET_CHILD_SUBREAPER, &flag, 0, 0, 0) == 0 && flag != 0;
}

struct Member {
  pid_t pid;
  pid_t group;
};

// Live (not zombie, not dead) processes whose session id is `sid`, by scanning every /proc/<pid>/stat.
std::vector<Member> scan_all(pid_t sid) {
  std::vector<Member> members;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return members;
  while (dirent* entry = readdir(proc)) {
    pid_t pid = parse_pid(entry->d_name);
    if (pid == 0) continue;
    ProcStat stat;
    if (!read_proc_stat(entry->d_name, &stat) || stat.session != sid || is_dead(stat.state)) continue;
    members.push_back({pid, stat.group});
  }
  closedir(proc);
  return members;
}

// Live processes of session `sid` without scanning the host. Every process of a session descends from
// its leader; the ones whose parent chain inside the session broke (a double fork, a job outliving its
// shell) were re-parented to the nearest child subreaper. When this process is one (the daemon is), they
// are its own children, so the session is exactly what a walk down the process tree reaches from the
// leader and from this process's children in the session. The walk stops at a process of another session
// (setsid): nothing below it can be in `sid` again. So it reads /proc only for the terminal's own
// processes, plus one listing of this process's children. Returns false when that cannot be relied on
// (not a subreaper, or no children files): the caller then scans.
bool walk_session(pid_t sid, std::vector<Member>* members) {
  if (!is_subreaper()) return false;
  std::vector<pid_t> pending{sid};
  if (!own_children_in_session(sid, &pending)) return false;
  std::unordered_set<pid_t> seen;
  while (!pending.empty()) {
    const pid_t pid = pending.back();
    pending.pop_back();
    if (!seen.insert(pid).second) continue;
    ProcStat stat;
    if (!read_proc_stat(pid, &stat) || stat.session != sid) continue;
    if (!is_dead(stat.state)) members->push_back({pid, stat.group});
    list_children_of(pid, &pending);  // a zombie has none left: they were re-parented
  }
  return true;
}

std::vector<Member> session_members(pid_t sid) {
  std::vector<Member> members;
  if (sid <= 0) return members;
  if (!walk_session(sid, &members)) members = scan_all(sid);
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

int signal_session_processes(pid_t sid, int signal, int master_fd) {
  if (sid <= 0) return 0;
  const std::vector<Member> members = session_members(sid);
  if (members.empty()) return 0;
  // The terminal's foreground group, while the terminal still belongs to the session.
  pid_t foreground = 0;
  if (master_fd >= 0 && tcgetsid(master_fd) == sid) foreground = tcgetpgrp(master_fd);
  // The leader's group first: a shell waiting for a job must get the signal before the job's end can
  // make it exit on its own with a status. The groups also catch a child forked during the walk. Only
  // while the session still exists (members were found): an empty session's id may since have been
  // reused for an unrelated process group.
  kill(-sid, signal);
  if (foreground > 0 && foreground != sid) kill(-foreground, signal);
  for (const Member& member : members) {
    if (member.group == sid || member.group == foreground) continue;  // the group signals above reached it
    kill(member.pid, signal);
  }
  return static_cast<int>(members.size());
}

bool session_has_processes(pid_t sid) { return !session_members(sid).empty(); }

void forget_child(pid_t pid) {
  ChildSessions& table = child_sessions();
  auto known = table.session_of.find(pid);
  if (known != table.session_of.end()) {
    auto group = table.by_session.find(known->second);
    if (group != table.by_session.end()) std::erase(group->second, pid);
    table.session_of.erase(known);
  }
  forget_listed_child(pid);
}

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
