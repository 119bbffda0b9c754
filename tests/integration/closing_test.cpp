// Closing at scale (docs/protocol.md §4 Requests `shell.kill`, §7 Shutdown): hundreds of terminals killed at
// once, or a SIGTERM with hundreds running, end every process without blocking the daemon's loop; the
// session-wide signal still reaches the processes of a session outside the leader's process group.
#include <doctest/doctest.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/proc_file.hpp"
#include "tests/support/daemon_process.hpp"
#include "tests/support/test_client.hpp"

namespace ptyhub::test {
namespace {

using Clock = std::chrono::steady_clock;

Json sh(const std::string& script) { return Json{"/bin/sh", "-c", script}; }

long long ms_since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

// One pass over /proc: the processes (zombies included) that are children of `parent`, belong to one of
// `sessions`, or carry PTYHUB_TERMINAL_ID=<one of `terminal_ids`> in their environment. Only this test's
// own terminals count: the suite runs other tests' daemons, whose shells carry ids of their own, at the
// same time.
std::vector<ProcessInfo> leftovers(pid_t parent, const std::set<pid_t>& sessions,
                                   const std::set<std::string>& terminal_ids) {
  static const std::string prefix = "PTYHUB_TERMINAL_ID=";
  std::vector<ProcessInfo> found;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return found;
  while (dirent* entry = ::readdir(proc)) {
    const pid_t pid = static_cast<pid_t>(std::atoi(entry->d_name));
    if (pid <= 0 || pid == ::getpid()) continue;
    const std::string dir = "/proc/" + std::string(entry->d_name);
    const std::optional<ProcessInfo> process = read_process(pid);
    if (!process) continue;
    const ProcessInfo& info = *process;
    bool tagged = false;
    const std::string environ = read_proc_file(dir + "/environ");
    for (size_t at = 0; at < environ.size();) {
      size_t end = environ.find('\0', at);
      if (end == std::string::npos) end = environ.size();
      if (environ.compare(at, prefix.size(), prefix) == 0 &&
          terminal_ids.count(environ.substr(at + prefix.size(), end - at - prefix.size())) != 0) {
        tagged = true;
        break;
      }
      at = end + 1;
    }
    if (info.parent == parent || sessions.count(info.session) != 0 || tagged) found.push_back(info);
  }
  ::closedir(proc);
  return found;
}

std::set<std::string> all_ids(const std::vector<std::vector<std::string>>& ids) {
  std::set<std::string> all;
  for (const auto& per_client : ids) all.insert(per_client.begin(), per_client.end());
  return all;
}

// However a test ends (a failed REQUIRE or an exception included), none of its terminals' processes
// outlive it: DaemonProcess stops a daemon still running with SIGKILL, which cannot end them, and a shell
// that ignores SIGHUP would then run on under init, long after the test.
class EndLeftoversOnExit {
 public:
  EndLeftoversOnExit(const DaemonProcess& daemon, const std::set<pid_t>& sessions,
                     const std::vector<std::vector<std::string>>& ids)
      : daemon_(daemon), sessions_(sessions), ids_(ids) {}
  EndLeftoversOnExit(const EndLeftoversOnExit&) = delete;
  EndLeftoversOnExit& operator=(const EndLeftoversOnExit&) = delete;
  ~EndLeftoversOnExit() {
    if (daemon_.pid() <= 0) return;
    std::set<pid_t> sessions = sessions_;
    sessions.erase(0);
    const std::set<std::string> terminal_ids = all_ids(ids_);
    eventually(
        [&] {
          std::vector<ProcessInfo> left = leftovers(daemon_.pid(), sessions, terminal_ids);
          bool alive = false;
          for (const auto& p : left) {
            if (p.state == 'Z' || p.pid <= 1) continue;
            ::kill(p.pid, SIGKILL);
            alive = true;
          }
          reap_adopted_zombies(left);
          return !alive;
        },
        5s, 20ms);
  }

 private:
  const DaemonProcess& daemon_;
  const std::set<pid_t>& sessions_;
  const std::vector<std::vector<std::string>>& ids_;
};

std::string describe(const std::vector<ProcessInfo>& processes) {
  std::string text;
  for (const auto& p : processes) {
    text += std::to_string(p.pid) + "(" + p.command + "," + p.state + ",ppid " + std::to_string(p.parent) + ") ";
  }
  return text;
}

// Nothing of the terminals is left: no process, no zombie (this process reaps what it adopted once the
// daemon is gone, and reports it).
bool nothing_left(pid_t daemon_pid, const std::set<pid_t>& sessions, const std::set<std::string>& terminal_ids,
                  std::vector<ProcessInfo>* last) {
  return eventually(
      [&] {
        *last = leftovers(daemon_pid, sessions, terminal_ids);
        reap_adopted_zombies(*last);
        return last->empty();
      },
      15s, 50ms);
}

// `count` terminals running `command`, created round-robin by `clients`; returns ids per client.
std::vector<std::vector<std::string>> create_many(std::vector<std::unique_ptr<TestClient>>& clients, int count,
                                                  const std::function<Json(int)>& command, std::set<pid_t>* leaders) {
  std::vector<std::vector<std::string>> ids(clients.size());
  for (int i = 0; i < count; ++i) {
    const size_t c = static_cast<size_t>(i) % clients.size();
    Json terminal = clients[c]->create_terminal({{"command", command(i)}});
    ids[c].push_back(terminal.value("id", ""));
    leaders->insert(terminal.value("pid", 0));
  }
  for (size_t c = 0; c < clients.size(); ++c) {
    for (const auto& id : ids[c]) REQUIRE(clients[c]->wait_output(id, "ready", 20s));
  }
  return ids;
}

std::vector<std::string> scale_flags(const std::string& kill_grace) {
  return {"--max-terminals", "2000", "--max-terminals-per-user", "2000", "--max-connections-per-ip", "1000",
          "--kill-grace", kill_grace};
}

TEST_CASE("closing: 300 terminals killed at once leave no process and no zombie, and ping stays answered") {
  become_subreaper();
  DaemonProcess daemon(scale_flags("2"));
  INFO(daemon.log());
  REQUIRE(daemon.started());
  std::vector<std::unique_ptr<TestClient>> clients;
  for (int c = 0; c < 3; ++c) clients.push_back(connect_user(daemon, "alice"));
  auto watcher = connect_user(daemon, "alice");
  std::set<pid_t> leaders;
  std::vector<std::vector<std::string>> ids;
  EndLeftoversOnExit end_leftovers(daemon, leaders, ids);
  // Two processes each: a shell with a background job; every tenth one ignores SIGHUP (SIGKILL ends it).
  ids = create_many(clients, 300, [](int i) {
    return i % 10 == 0 ? sh("trap '' HUP; sleep 1000 & echo ready; wait") : sh("sleep 1000 & echo ready; wait");
  }, &leaders);

  const auto start = Clock::now();
  std::vector<int> last_kill(clients.size());
  for (size_t c = 0; c < clients.size(); ++c) {
    for (const auto& id : ids[c]) {
      last_kill[c] = clients[c]->next_id();
      clients[c]->send({{"type", "shell.kill"}, {"id", last_kill[c]}, {"data", {{"terminalId", id}}}});
    }
  }
  // Pumping each client sends its queued kills; the acks come back in order.
  for (size_t c = 0; c < clients.size(); ++c) {
    const Json last = last_kill[c];
    REQUIRE(clients[c]->wait_for([&](const Json& m) { return m.contains("id") && m["id"] == last; }, 10s));
  }
  // While they are being ended and reaped, the daemon answers at once.
  long long slowest_ping = 0;
  int pings = 0;
  std::vector<ProcessInfo> left;
  do {
    const auto sent = Clock::now();
    auto pong = watcher->request("ping", Json::object(), 5s);
    REQUIRE(pong);
    slowest_ping = std::max(slowest_ping, ms_since(sent));
    ++pings;
    left = leftovers(daemon.pid(), leaders, all_ids(ids));
  } while (!left.empty() && ms_since(start) < 20000);
  MESSAGE("300 terminals gone after " << ms_since(start) << " ms; " << pings << " pings, slowest " << slowest_ping
                                      << " ms");
  CHECK(slowest_ping < 1000);
  if (!left.empty()) MESSAGE("left: " << describe(left));
  CHECK(left.empty());
  for (size_t c = 0; c < clients.size(); ++c) {
    for (const auto& id : ids[c]) CHECK(clients[c]->wait_exit(id, 10s));
  }
  CHECK(daemon.running());
  auto status = daemon.stop(SIGTERM, 10s);
  REQUIRE(status);
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 0);
  CHECK_MESSAGE(nothing_left(daemon.pid(), leaders, all_ids(ids), &left), describe(left));
}

TEST_CASE("closing: SIGTERM with 300 terminals delivers every shell.exit and 1001 within kill_grace + 2 s") {
  become_subreaper();
  DaemonProcess daemon(scale_flags("2"));
  INFO(daemon.log());
  REQUIRE(daemon.started());
  std::vector<std::unique_ptr<TestClient>> clients;
  for (int c = 0; c < 3; ++c) clients.push_back(connect_user(daemon, c == 1 ? "bob" : "alice"));
  std::set<pid_t> leaders;
  std::vector<std::vector<std::string>> ids;
  EndLeftoversOnExit end_leftovers(daemon, leaders, ids);
  // Every fifth ignores SIGHUP and SIGTERM, so only the SIGKILL after kill_grace ends it.
  ids = create_many(clients, 300, [](int i) {
    return i % 5 == 0 ? sh("trap '' HUP TERM; echo ready; exec sleep 1000") : sh("echo ready; exec sleep 1000");
  }, &leaders);

  const auto start = Clock::now();
  REQUIRE(daemon.send_signal(SIGTERM));
  auto status = daemon.wait_exit(20s);
  const long long took = ms_since(start);
  REQUIRE(status);
  MESSAGE("SIGTERM with 300 terminals: exited after " << took << " ms (kill_grace 2 s)");
  CHECK(took < 2000 + 2000);
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 0);
  for (size_t c = 0; c < clients.size(); ++c) {
    CAPTURE(c);
    int exits = 0;
    for (const auto& id : ids[c]) exits += clients[c]->wait_exit(id, 5s) ? 1 : 0;
    CHECK(exits == static_cast<int>(ids[c].size()));
    CHECK(clients[c]->ws().wait_closed(5s));
    CHECK(clients[c]->ws().close_code() == 1001);
  }
  std::vector<ProcessInfo> left;
  CHECK_MESSAGE(nothing_left(daemon.pid(), leaders, all_ids(ids), &left), describe(left));
}

// utime + stime of `pid`, in clock ticks.
long long cpu_ticks(pid_t pid) {
  const std::string text = read_proc_file("/proc/" + std::to_string(pid) + "/stat");
  if (text.rfind(')') == std::string::npos) return 0;
  std::istringstream fields(text.substr(text.rfind(')') + 1));
  std::string skip;
  for (int field = 3; field < 14; ++field) fields >> skip;
  long long utime = 0, stime = 0;
  fields >> utime >> stime;
  return utime + stime;
}

// Daemon CPU (ticks) to kill `count` terminals running `command` and see them all gone.
long long cpu_to_close(int count, const Json& command) {
  DaemonProcess daemon(scale_flags("2"));
  INFO(daemon.log());
  REQUIRE(daemon.started());
  std::vector<std::unique_ptr<TestClient>> clients;
  clients.push_back(connect_user(daemon, "alice"));
  std::set<pid_t> leaders;
  std::vector<std::vector<std::string>> ids;
  EndLeftoversOnExit end_leftovers(daemon, leaders, ids);
  ids = create_many(clients, count, [&](int) { return command; }, &leaders);
  const long long before = cpu_ticks(daemon.pid());
  for (const auto& id : ids[0]) REQUIRE(clients[0]->request("shell.kill", {{"terminalId", id}}, 15s));
  for (const auto& id : ids[0]) REQUIRE(clients[0]->wait_exit(id, 15s));
  std::vector<ProcessInfo> left;
  CHECK_MESSAGE(eventually([&] { return (left = leftovers(daemon.pid(), leaders, all_ids(ids))).empty(); }, 15s, 50ms),
                describe(left));
  return cpu_ticks(daemon.pid()) - before;
}

TEST_CASE("closing: shells that keep leaving short-lived orphans cost no more to close than bare shells") {
  become_subreaper();
  // ( true & ) double-forks: every `true` is re-parented to the daemon, which reaps it (a SIGCHLD each).
  const long long churning = cpu_to_close(50, sh("echo ready; while :; do (true &); sleep 0.1; done"));
  const long long bare = cpu_to_close(50, sh("echo ready; exec sleep 1000"));
  const long long hz = ::sysconf(_SC_CLK_TCK);
  MESSAGE("daemon CPU to close 50 terminals: churning " << churning * 1000 / hz << " ms, bare " << bare * 1000 / hz
                                                          << " ms");
  // Generous: the two runs differ by what the churn itself costs until the kill, not by a sweep per SIGCHLD.
  CHECK(churning <= 3 * bare + hz / 2);
}

TEST_CASE("closing: the session-wide signal reaches a background job and a double-forked process") {
  become_subreaper();
  // A grace far longer than the test waits: what ends here ends by the signal asked for, not by SIGKILL.
  DaemonProcess daemon({"--kill-grace", "60"});
  INFO(daemon.log());
  REQUIRE(daemon.started());
  auto client = connect_user(daemon, "alice");
  const std::string tag = std::to_string(::getpid());
  // set -m: the job gets its own process group; the subshell of ( … & ) is a job of its own too, and it
  // exits at once, so its sleep is re-parented to the daemon, still in the session, in a group that is
  // neither the leader's nor the foreground one.
  Json terminal = client->create_terminal(
      {{"command", sh("set -m; sleep 1001" + tag + " & (sleep 1002" + tag + " &); echo ready; exec sleep 1000")}});
  const std::string id = terminal.value("id", "");
  const pid_t leader = terminal.value("pid", 0);
  REQUIRE(leader > 0);
  REQUIRE(client->wait_output(id, "ready"));
  std::vector<ProcessInfo> members;
  const auto live = [&] {
    members = processes_in_session(leader);
    std::erase_if(members, [](const ProcessInfo& p) { return p.state == 'Z'; });  // the subshell, unreaped
    return members;
  };
  REQUIRE_MESSAGE(eventually([&] { return live().size() == 3; }, 5s), describe(members));
  const auto double_forked = std::find_if(members.begin(), members.end(), [&](const ProcessInfo& p) {
    return p.parent == daemon.pid() && p.pid != leader;
  });
  REQUIRE_MESSAGE(double_forked != members.end(), describe(members));

  REQUIRE(client->request("shell.kill", {{"terminalId", id}, {"signal", "SIGTERM"}}));
  auto exit = client->wait_exit(id, 10s);
  REQUIRE(exit);
  CHECK((*exit)["signal"] == "SIGTERM");
  std::vector<ProcessInfo> left;
  CHECK_MESSAGE(eventually([&] { return (left = live()).empty(); }, 10s), describe(left));
}

}  // namespace
}  // namespace ptyhub::test
