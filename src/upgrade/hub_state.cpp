#include "src/upgrade/hub_state.hpp"

#include <signal.h>
#include <sys/wait.h>

#include <cerrno>

#include "pty/pty_process.hpp"

namespace ptyhub::upgrade {
namespace {

std::string access_text(auth::Access access) { return access == auth::Access::write ? "write" : "read"; }

TerminalState to_state(hub::Terminal::Snapshot&& s) {
  TerminalState t;
  t.id = s.spec.id;
  t.kind = s.spec.kind;
  t.owner = s.spec.owner;
  t.name = s.spec.name;
  t.command = s.spec.command;
  t.cwd = s.spec.cwd;
  t.operation = s.spec.operation;
  t.cols = s.spec.cols;
  t.rows = s.spec.rows;
  for (const auto& [user, access] : s.shares) t.shares[user] = access_text(access);
  t.created_at_ms = s.created_at_ms;
  t.pid = s.pid;
  t.exited = s.exited;
  if (s.exited && s.exit_status.signal == 0) t.exit_code = s.exit_status.exit_code;
  t.exit_signal = s.exited ? s.exit_status.signal : 0;
  t.duration_ms = s.exited ? s.duration_ms : s.running_ms;
  t.end_reason = s.end_reason;
  t.idle_ms = s.idle_ms;
  t.pipes = s.spec.pipes;
  t.detached_ms = s.detached_ms;
  t.ring_start = s.ring_start;
  t.ring = std::move(s.ring);
  t.carry = s.carry;
  return t;
}

hub::Terminal::Snapshot to_snapshot(TerminalState& t) {
  hub::Terminal::Snapshot s;
  s.spec.id = t.id;
  s.spec.kind = t.kind;
  s.spec.owner = t.owner;
  s.spec.name = t.name;
  s.spec.command = t.command;
  s.spec.cwd = t.cwd;
  s.spec.operation = t.operation;
  s.spec.cols = t.cols;
  s.spec.rows = t.rows;
  for (const auto& [user, mode] : t.shares) s.shares[user] = mode == "write" ? auth::Access::write : auth::Access::read;
  s.created_at_ms = t.created_at_ms;
  s.pid = static_cast<pid_t>(t.pid);
  s.exited = t.exited;
  s.exit_status.exit_code = t.exit_code.value_or(0);
  s.exit_status.signal = t.exit_signal;
  if (t.exited) s.duration_ms = t.duration_ms;
  else s.running_ms = t.duration_ms;
  s.end_reason = t.end_reason;
  s.idle_ms = t.idle_ms;
  s.spec.pipes = t.pipes;
  s.detached_ms = t.detached_ms;
  s.ring_start = t.ring_start;
  s.ring = std::move(t.ring);  // the state's copy is not needed after this
  s.carry = t.carry;
  return s;
}

// A child this process cannot adopt: its session ends and it is reaped (it is ours, so its pid is not
// reused before that).
void end_child(pid_t pid) {
  if (pid <= 0) return;
  pty::signal_session_processes(pid, SIGKILL);
  ::kill(pid, SIGKILL);
  while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace

HandoffState capture(hub::Hub& hub, std::string daemon_version, std::vector<UniqueFd>* handed) {
  HandoffState state;
  state.daemon_version = std::move(daemon_version);
  for (hub::Terminal::Snapshot& snapshot : hub.snapshot(false)) {  // rings are copied when written
    const std::string id = snapshot.spec.id;
    const size_t ring_length = snapshot.ring_length;
    TerminalState t = to_state(std::move(snapshot));
    hub::Terminal* terminal = hub.find_any(id);
    if (terminal != nullptr) {
      t.ring_length = ring_length;
      t.ring_pieces = [terminal] { return terminal->ring_pieces(); };
    }
    pty::PtyProcess::Released released;
    if (!t.exited && terminal != nullptr && terminal->release_process(&released)) {
      t.master = static_cast<int>(state.fds.size());
      state.fds.push_back({t.pipes ? FdKind::stdio_socket : FdKind::pty_master, released.master.get(), 0});
      t.pidfd = static_cast<int>(state.fds.size());
      state.fds.push_back({FdKind::pidfd, released.pidfd.get(), t.pid});
      handed->push_back(std::move(released.master));
      handed->push_back(std::move(released.pidfd));
      // Input not yet written goes out in the next image first: it rides along in the state.
      t.pending_input = std::move(released.pending_input);
      t.end_input = released.end_input;
    } else if (!t.exited) {
      // Its process was reaped while the PTY drained: it goes over as exited, with the process's status
      // (what the PTY still held is lost with the master).
      const std::optional<pty::ExitStatus> status = terminal ? terminal->reaped_status() : std::nullopt;
      if (!status) continue;
      t.exited = true;
      if (status->signal == 0) t.exit_code = status->exit_code;
      t.exit_signal = status->signal;
    }
    state.terminals.push_back(std::move(t));
  }
  return state;
}

std::vector<std::string> restore(hub::Hub& hub, HandoffState& state) {
  std::vector<std::string> problems;
  for (TerminalState& t : state.terminals) {
    hub::Terminal::Snapshot snapshot = to_snapshot(t);
    UniqueFd master, pidfd;
    std::string why;
    if (!t.exited) {
      const HandedFd& m = state.fds[static_cast<size_t>(t.master)];
      const HandedFd& p = state.fds[static_cast<size_t>(t.pidfd)];
      why = check_handed_fd(m);
      if (why.empty()) why = check_handed_fd(p);
      if (why.empty()) {
        master = UniqueFd(m.fd);
        pidfd = UniqueFd(p.fd);
      }
    }
    std::string error;
    hub::Terminal* restored = nullptr;
    if (why.empty()) {
      restored = hub.restore(snapshot, std::move(master), std::move(pidfd), &error);
      if (restored == nullptr) why = error;
    }
    if (restored != nullptr) {
      if (!t.pending_input.empty()) restored->write_input(t.pending_input, nullptr);
      if (t.end_input) restored->close_input();
      continue;
    }
    problems.push_back("terminal " + t.id + ": " + why);
    if (!t.exited) end_child(static_cast<pid_t>(t.pid));
    snapshot.exited = true;
    snapshot.exit_status = pty::ExitStatus{0, SIGKILL};  // what ended it here
    snapshot.end_reason = "upgrade_failed";
    hub.restore(snapshot, UniqueFd(), UniqueFd(), &error);  // listed as ended, with its output
  }
  return problems;
}

}  // namespace ptyhub::upgrade
