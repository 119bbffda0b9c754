// A live upgrade (docs/upgrade.md) of the real daemon: SIGUSR2 re-executes it in the same process, every
// terminal survives with its process, ring and offsets, clients are closed with 1012 and resume with
// `since`, byte-exact.
#include <doctest/doctest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>

#include "src/upgrade/handoff_state.hpp"
#include "tests/support/daemon_process.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_client.hpp"

namespace ptyhub::test {
namespace {

std::unique_ptr<TestClient> connect_alice(DaemonProcess& daemon) {
  auto client = std::make_unique<TestClient>();
  WsOptions options = daemon.ws_options();
  options.authorization = "Bearer " + daemon.token("alice");
  if (!client->connect(options)) return nullptr;
  if (!client->wait_for([](const Json& m) { return m.value("type", "") == "auth.ok"; }, 5s)) return nullptr;
  return client;
}

TEST_CASE("upgrade: SIGUSR2 re-executes the daemon in place - the shell, its offsets and its ring survive, clients resume with since") {
  DaemonProcess daemon;
  INFO(daemon.log());
  REQUIRE(daemon.started());
  auto client = connect_alice(daemon);
  REQUIRE(client);
  const Json terminal = client->create_terminal({{"command", {"/bin/sh"}}, {"name", "kept"}});
  const std::string id = terminal.value("id", "");
  REQUIRE(!id.empty());
  const long long shell_pid = terminal.value("pid", 0LL);
  REQUIRE(client->request("shell.input", {{"terminalId", id}, {"data", "echo before-$((6*7)); echo $$\n"}}));
  REQUIRE(client->wait_output(id, "before-42"));
  REQUIRE(client->wait_output(id, std::to_string(shell_pid)));
  const TerminalOutput& first = client->output(id);
  const uint64_t since = first.next;
  const std::string seen = first.text;

  // A strict client (Python's websockets) sees the close code on the wire: 1012, service restart. (The
  // libwebsockets 4.1 test client answers codes above 1011 with 1002 and reports that instead.)
  const bool have_python =
      access("/usr/bin/python3", X_OK) == 0 && std::system("/usr/bin/python3 -c 'import websockets' 2>/dev/null") == 0;
  if (!have_python) FAIL("needs /usr/bin/python3 with websockets (scripts/install-deps.sh installs python3-websockets)");
  TempDir dir;
  const auto script = dir / "closed.py";
  std::ofstream(script) << "import asyncio, sys, websockets\n"
                           "async def main():\n"
                           "    async with websockets.connect(sys.argv[1], subprotocols=['ptyhub.v1'],\n"
                           "            extra_headers={'Authorization': 'Bearer ' + sys.argv[2]}) as ws:\n"
                           "        await asyncio.wait_for(ws.recv(), 10)\n"
                           "        print('ready', flush=True)\n"
                           "        try:\n"
                           "            await asyncio.wait_for(ws.wait_closed(), 10)\n"
                           "        finally:\n"
                           "            print('closed', ws.close_code, ws.close_reason, flush=True)\n"
                           "asyncio.run(main())\n";
  const std::string command = "/usr/bin/python3 " + script.string() + " ws://127.0.0.1:" +
                              std::to_string(daemon.port()) + "/ws " + daemon.token("alice") + " 2>&1";
  FILE* strict = popen(command.c_str(), "r");
  REQUIRE(strict != nullptr);
  char line[256] = {};
  const bool ready = fgets(line, sizeof line, strict) != nullptr && std::string(line) == "ready\n";

  const pid_t daemon_pid = daemon.pid();
  REQUIRE(daemon.send_signal(SIGUSR2));
  std::string strict_output;
  while (fgets(line, sizeof line, strict) != nullptr) strict_output += line;
  pclose(strict);
  CHECK(ready);
  CHECK(strict_output == "closed 1012 service restart\n");
  REQUIRE(client->ws().wait_closed(5s));
  REQUIRE(daemon.wait_for_log("upgrade: resumed 1 of 1 terminals", 10s));
  CHECK(daemon.pid() == daemon_pid);  // the same process: the shell is still its child

  std::unique_ptr<TestClient> again;
  REQUIRE(eventually([&] { return (again = connect_alice(daemon)) != nullptr; }, 10s));
  const auto listed = again->request("shell.list");
  REQUIRE(listed);
  bool found = false;
  for (const Json& t : (*listed)["data"]["terminals"]) {
    if (t.value("id", "") != id) continue;
    found = true;
    CHECK(t.value("state", "") == "running");
    CHECK(t.value("name", "") == "kept");
    CHECK(t.value("pid", 0LL) == shell_pid);
  }
  CHECK(found);
  // Resumed where it stopped: nothing lost, nothing repeated, offsets continue.
  auto resumed = again->request("subscribe", {{"channel", "shell:terminal:" + id}, {"since", since}});
  REQUIRE(resumed);
  CHECK(resumed->value("type", "") == "subscribed");
  REQUIRE(again->request("shell.input", {{"terminalId", id}, {"data", "echo after-$((6*7))\n"}}));
  REQUIRE(again->wait_output(id, "after-42"));
  const TerminalOutput& second = again->output(id);
  CHECK(second.gaps.empty());
  CHECK(second.problems.empty());
  CHECK(second.first_offset == std::optional<uint64_t>(since));
  // A new subscriber from 0 gets the ring of before the upgrade, then what followed.
  auto late = connect_alice(daemon);
  REQUIRE(late);
  auto from_zero = late->request("subscribe", {{"channel", "shell:terminal:" + id}, {"since", 0}});
  REQUIRE(from_zero);
  REQUIRE(late->wait_output(id, "after-42"));
  CHECK(late->output(id).text.substr(0, seen.size()) == seen);
  CHECK_MESSAGE(daemon.sanitizer_findings().empty(), daemon.sanitizer_findings());
}

// A daemon that runs a copy of ptyhubd at <dir>/ptyhubd, so that the test can replace "the binary at its
// path", with pid_file <dir>/ptyhubd.pid for `ptyhubd upgrade`.
DaemonLaunch copy_launch(const TempDir& dir, std::vector<std::string> extra = {}) {
  const std::string copy = (dir / "ptyhubd").string();
  DaemonLaunch launch;
  launch.wrapper = {"/bin/sh", "-c", "cp \"$0\" '" + copy + "' && exec '" + copy + "' \"$@\""};
  launch.extra_args = {"--pid-file", (dir / "ptyhubd.pid").string()};
  launch.extra_args.insert(launch.extra_args.end(), extra.begin(), extra.end());
  return launch;
}

// Puts `text` at `path` (mode `mode`) in one rename, as a package manager installs a binary.
void install_file(const std::filesystem::path& path, const std::string& text, std::filesystem::perms mode) {
  const std::filesystem::path next = path.string() + ".next";
  std::ofstream(next) << text;
  std::filesystem::permissions(next, mode);
  std::filesystem::rename(next, path);
}

struct CommandResult {
  int status = -1;  // exit status, -1 when it did not exit normally
  std::string output;
};

// `ptyhubd upgrade --pid-file <dir>/ptyhubd.pid`, stdout and stderr together.
CommandResult run_upgrade_command(const TempDir& dir) {
  const std::string command = std::string(PTYHUBD_PATH) + " upgrade --timeout 30 --pid-file '" +
                              (dir / "ptyhubd.pid").string() + "' 2>&1";
  CommandResult result;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[512];
  while (fgets(buffer, sizeof buffer, pipe) != nullptr) result.output += buffer;
  const int status = pclose(pipe);
  if (WIFEXITED(status)) result.status = WEXITSTATUS(status);
  return result;
}

// The fds the process has open.
size_t open_fds(pid_t pid) {
  size_t count = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) ++count;
  return count;
}

// The children of `pid`, and how many of them are zombies.
std::vector<ProcessInfo> children_of(pid_t pid) {
  std::vector<ProcessInfo> out;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    const auto info = read_process(static_cast<pid_t>(std::stol(name)));
    if (info && info->parent == pid) out.push_back(*info);
  }
  return out;
}

// The resident set of `pid` in KiB (VmRSS), 0 when unreadable.
size_t rss_kib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoul(line.substr(6));
  }
  return 0;
}

// A free TCP port on 127.0.0.1 (bound and released), for a daemon that must keep its port across images.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof address;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) == 0) {
    port = ntohs(address.sin_port);
  }
  ::close(fd);
  return port;
}

// The terminal of shell.list with this id (an empty object when not listed).
Json listed(TestClient& client, const std::string& id) {
  const auto list = client.request("shell.list");
  if (!list) return Json::object();
  for (const Json& t : (*list)["data"]["terminals"]) {
    if (t.value("id", "") == id) return t;
  }
  return Json::object();
}

TEST_CASE("upgrade: ptyhubd upgrade - a binary that is not executable, not a program, exits at once or reads another state version is refused and nothing changes") {
  TempDir dir;
  REQUIRE(!dir.path().empty());
  DaemonProcess daemon(copy_launch(dir));
  INFO(daemon.log());
  REQUIRE(daemon.started());
  auto client = connect_alice(daemon);
  REQUIRE(client);
  const std::string id = client->create_terminal({{"command", {"/bin/sh"}}}).value("id", "");
  REQUIRE(!id.empty());
  const auto binary = dir / "ptyhubd";
  const auto rwx = std::filesystem::perms::owner_all;
  struct Case {
    std::string text;
    std::filesystem::perms mode;
    std::string said;  // in the command's output
  };
  const Case cases[] = {
      {"#!/bin/sh\nexit 0\n", std::filesystem::perms::owner_read | std::filesystem::perms::owner_write, "cannot execute"},
      {"not a program\n", rwx, "does not start"},
      {"#!/bin/sh\necho 'on strike'\nexit 3\n", rwx, "exited with status 3 (it said: on strike)"},
      {"#!/bin/sh\necho 'ptyhub-handoff-versions: 99'\n", rwx, "does not read state version " + std::to_string(upgrade::kStateVersion)},
  };
  int n = 0;
  for (const Case& c : cases) {
    INFO("case: ", c.said);
    install_file(binary, c.text, c.mode);
    const CommandResult upgraded = run_upgrade_command(dir);
    CHECK(upgraded.status == 1);
    CHECK_MESSAGE(upgraded.output.find(c.said) != std::string::npos, upgraded.output);
    CHECK(upgraded.output.find("failed") != std::string::npos);
    // Nothing changed: the same connection goes on, the shell answers.
    const std::string word = "still-" + std::to_string(++n);
    REQUIRE(client->request("shell.input", {{"terminalId", id}, {"data", "echo " + word + "-$((6*7))\n"}}));
    CHECK(client->wait_output(id, word + "-42"));
  }
  CHECK_FALSE(client->ws().closed());
  CHECK(daemon.log().find("upgrade: handing") == std::string::npos);
  const auto metrics = http_get(daemon.port(), "/metrics");
  REQUIRE(metrics);
  CHECK(metrics->body.find("ptyhub_upgrades_aborted_total 4") != std::string::npos);
  // No probe left behind: the daemon's only children are the shell's.
  for (const ProcessInfo& child : children_of(daemon.pid())) CHECK(child.state != 'Z');
  CHECK_MESSAGE(daemon.sanitizer_findings().empty(), daemon.sanitizer_findings());
}

TEST_CASE("upgrade: a binary that answers the probe but cannot be executed - the old image takes its terminals back and serves on") {
  TempDir dir;
  REQUIRE(!dir.path().empty());
  DaemonProcess daemon(copy_launch(dir));
  INFO(daemon.log());
  REQUIRE(daemon.started());
  auto client = connect_alice(daemon);
  REQUIRE(client);
  const std::string id = client->create_terminal({{"command", {"/bin/sh"}}}).value("id", "");
  REQUIRE(!id.empty());
  REQUIRE(client->request("shell.input", {{"terminalId", id}, {"data", "echo before-$((6*7))\n"}}));
  REQUIRE(client->wait_output(id, "before-42"));
  const uint64_t since = client->output(id).next;

  // It says yes, then leaves a file at its own path that execve refuses.
  install_file(dir / "ptyhubd",
               "#!/bin/sh\nprintf 'not a program\\n' > \"$0.x\" && chmod 755 \"$0.x\" && mv \"$0.x\" \"$0\"\n"
               "echo 'ptyhub-handoff-versions: " + std::to_string(upgrade::kStateVersion) + "'\n",
               std::filesystem::perms::owner_all);
  const CommandResult upgraded = run_upgrade_command(dir);
  CHECK(upgraded.status == 1);
  CHECK_MESSAGE(upgraded.output.find("failed execve") != std::string::npos, upgraded.output);
  REQUIRE(daemon.wait_for_log("upgrade failed, this image serves on: execve", 10s));
  REQUIRE(client->ws().wait_closed(5s));

  std::unique_ptr<TestClient> again;
  REQUIRE(eventually([&] { return (again = connect_alice(daemon)) != nullptr; }, 10s));
  auto resumed = again->request("subscribe", {{"channel", "shell:terminal:" + id}, {"since", since}});
  REQUIRE(resumed);
  CHECK(resumed->value("type", "") == "subscribed");
  REQUIRE(again->request("shell.input", {{"terminalId", id}, {"data", "echo after-$((6*7))\n"}}));
  REQUIRE(again->wait_output(id, "after-42"));
  CHECK(again->output(id).gaps.empty());
  CHECK(again->output(id).first_offset == std::optional<uint64_t>(since));
  CHECK(daemon.log().find("upgrade: resumed") == std::string::npos);
  CHECK_MESSAGE(daemon.sanitizer_findings().empty(), daemon.sanitizer_findings());
}

TEST_CASE("upgrade: a state the new image cannot read - its terminals end and their processes are reaped, the daemon serves on") {
  TempDir dir;
  REQUIRE(!dir.path().empty());
  const int port = free_port();
  REQUIRE(port > 0);
  DaemonLaunch launch = copy_launch(dir, {"--listen", "127.0.0.1:" + std::to_string(port), "--kill-grace", "1"});
  launch.listen_on_free_port = false;  // the one port, bound again by the new image
  DaemonProcess daemon(launch);
  INFO(daemon.log());
  REQUIRE(daemon.started());
  auto client = connect_alice(daemon);
  REQUIRE(client);
  // A shell that ignores SIGHUP and SIGTERM: only the SIGKILL after kill_grace ends it.
  const Json terminal = client->create_terminal({{"command", {"/bin/sh", "-c", "trap '' HUP TERM; while :; do read x; done"}}});
  const std::string id = terminal.value("id", "");
  const pid_t shell_pid = static_cast<pid_t>(terminal.value("pid", 0));
  REQUIRE(shell_pid > 0);
  std::ofstream(dir / "garbage") << "PTYHUB-HANDOFF? no.";
  // The new "binary" hands the new image a state that is not the one written.
  install_file(dir / "ptyhubd",
               "#!/bin/sh\nif [ \"$1\" = --handoff-probe ]; then exec '" + std::string(PTYHUBD_PATH) + "' \"$@\"; fi\n"
               "exec 9<'" + (dir / "garbage").string() + "'\nexport PTYHUB_HANDOFF_FD=9\nexec '" +
                   std::string(PTYHUBD_PATH) + "' \"$@\"\n",
               std::filesystem::perms::owner_all);
  const CommandResult upgraded = run_upgrade_command(dir);
  CHECK(upgraded.status == 1);
  CHECK_MESSAGE(upgraded.output.find("the state could not be read") != std::string::npos, upgraded.output);
  REQUIRE(daemon.wait_for_log("state cannot be read", 10s));
  // The old terminal's process is ended and reaped; nothing is left of it.
  CHECK(eventually([&] { return !read_process(shell_pid).has_value(); }, 10s));
  std::unique_ptr<TestClient> again;
  REQUIRE(eventually([&] { return (again = connect_alice(daemon)) != nullptr; }, 10s));
  CHECK(listed(*again, id).empty());
  const std::string fresh = again->create_terminal({{"command", {"/bin/sh"}}}).value("id", "");
  REQUIRE(!fresh.empty());
  REQUIRE(again->request("shell.input", {{"terminalId", fresh}, {"data", "echo fresh-$((6*7))\n"}}));
  CHECK(again->wait_output(fresh, "fresh-42"));
  // Only the new shell is a child; no handed fd is left open (PTY masters, pidfds, the state).
  for (const ProcessInfo& child : children_of(daemon.pid())) CHECK(child.state != 'Z');
  CHECK(children_of(daemon.pid()).size() == 1);
  size_t handed_left = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/" + std::to_string(daemon.pid()) + "/fd")) {
    std::error_code ignored;
    const std::string target = std::filesystem::read_symlink(entry.path(), ignored).string();
    if (target.find("pidfd") != std::string::npos || target.find("memfd:ptyhub-handoff") != std::string::npos) ++handed_left;
  }
  CHECK(handed_left == 1);  // the new shell's pidfd
  CHECK_MESSAGE(daemon.sanitizer_findings().empty(), daemon.sanitizer_findings());
}

TEST_CASE("upgrade: a terminal whose process exits while the images change hands is reported with its real exit code") {
  TempDir dir;
  REQUIRE(!dir.path().empty());
  DaemonProcess daemon(copy_launch(dir));
  INFO(daemon.log());
  REQUIRE(daemon.started());
  const std::string fifo = (dir / "gate").string();
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  auto client = connect_alice(daemon);
  REQUIRE(client);
  const std::string id = client->create_terminal({{"command", {"/bin/sh", "-c", "echo waiting; read x < '" + fifo + "'; echo bye; exit 7"}}})
                             .value("id", "");
  REQUIRE(!id.empty());
  REQUIRE(client->wait_output(id, "waiting"));
  const uint64_t since = client->output(id).next;
  // Between the old image's capture and the new image's start: the gate opens, the shell exits 7. (The
  // image in between is Python, which leaves the exited child alone; a shell script may reap it.)
  install_file(dir / "ptyhubd",
               "#!/usr/bin/python3\nimport os, sys\nif sys.argv[1:2] != ['--handoff-probe']:\n"
               "    with open('" + fifo + "', 'w') as gate:\n        gate.write('go\\n')\n"
               "os.execv('" + std::string(PTYHUBD_PATH) + "', ['" + std::string(PTYHUBD_PATH) + "'] + sys.argv[1:])\n",
               std::filesystem::perms::owner_all);
  const CommandResult upgraded = run_upgrade_command(dir);
  CHECK_MESSAGE(upgraded.status == 0, upgraded.output);
  std::unique_ptr<TestClient> again;
  REQUIRE(eventually([&] { return (again = connect_alice(daemon)) != nullptr; }, 10s));
  REQUIRE(again->request("subscribe", {{"channel", "shell:terminal:" + id}, {"since", since}}));
  const auto exit = again->wait_exit(id, 10s);
  REQUIRE(exit);
  CHECK(exit->value("exitCode", -1) == 7);
  CHECK(again->output(id).text.find("bye") != std::string::npos);
  CHECK(again->output(id).gaps.empty());
  CHECK_MESSAGE(daemon.sanitizer_findings().empty(), daemon.sanitizer_findings());
}

TEST_CASE("upgrade: detached_timeout goes on counting across an upgrade") {
  TempDir dir;
  REQUIRE(!dir.path().empty());
  DaemonProcess daemon(copy_launch(dir, {"--detached-timeout", "3"}));
  INFO(daemon.log());
  REQUIRE(daemon.started());
  auto client = connect_alice(daemon);
  REQUIRE(client);
  const std::string id = client->create_terminal({{"command", {"/bin/sh"}}}).value("id", "");
  REQUIRE(!id.empty());
  REQUIRE(client->request("unsubscribe", {{"channel", "shell:terminal:" + id}}));
  const auto detached_at = std::chrono::steady_clock::now();
  // Half the timeout later, an upgrade.
  client->drain(1500ms);
  const CommandResult upgraded = run_upgrade_command(dir);
  REQUIRE_MESSAGE(upgraded.status == 0, upgraded.output);
  std::unique_ptr<TestClient> again;
  REQUIRE(eventually([&] { return (again = connect_alice(daemon)) != nullptr; }, 10s));
  // It ends 3 s after it was detached (not 3 s after the upgrade): shell.list, which does not attach, shows it.
  REQUIRE(eventually([&] { return listed(*again, id).value("state", "") == "exited"; }, 10s));
  const auto ended_after = std::chrono::steady_clock::now() - detached_at;
  CHECK(ended_after < 4200ms);
  CHECK_MESSAGE(daemon.sanitizer_findings().empty(), daemon.sanitizer_findings());
}

TEST_CASE("upgrade: 20 terminals, 5 printing, 3 clients and a git clone in progress - every byte exactly once, pids unchanged, the clone completes") {
  TempDir dir;
  REQUIRE(!dir.path().empty());
  namespace fs = std::filesystem;
  // A clone that waits at a gate the test opens after the upgrade: upload-pack's pack-objects hook
  // (honoured from the daemon's global git configuration, HOME/.gitconfig).
  const fs::path home = dir / "home", root = dir / "root", seed = dir / "seed";
  fs::create_directories(home);
  fs::create_directories(root);
  const fs::path gate = dir / "go", waiting = dir / "hook-waiting";
  install_file(dir / "slow-pack",
               "#!/bin/sh\ntouch '" + waiting.string() + "'\nwhile [ ! -e '" + gate.string() + "' ]; do sleep 0.05; done\nexec \"$@\"\n",
               fs::perms::owner_all);
  std::ofstream(home / ".gitconfig") << "[uploadpack]\n\tpackObjectsHook = " << (dir / "slow-pack").string() << "\n";
  const std::string git = "env GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@t "
                          "GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@t git";
  REQUIRE(std::system(("mkdir -p '" + seed.string() + "' && cd '" + seed.string() + "' && " + git + " init -q -b main && " +
                       "seq 1 2000 > numbers && " + git + " add numbers && " + git + " commit -q -m one && " + git +
                       " clone -q --bare . '" + (root / "origin.git").string() + "'")
                          .c_str()) == 0);
  DaemonLaunch launch = copy_launch(dir, {"--repos-root", root.string()});
  launch.environment["HOME"] = home.string();
  DaemonProcess daemon(launch);
  INFO(daemon.log());
  REQUIRE(daemon.started());
  const std::string scopes = std::string(kUserScopes) + " git:run";
  const auto connect = [&] { return connect_user(daemon, "alice", scopes); };
  std::vector<std::unique_ptr<TestClient>> clients;
  for (int i = 0; i < 3; ++i) clients.push_back(connect());
  for (auto& c : clients) REQUIRE(c);

  std::vector<std::string> printers, idle;
  std::map<std::string, long long> pids;
  for (int i = 0; i < 20; ++i) {
    const bool printing = i < 5;
    const Json command = printing ? Json{"/bin/sh", "-c", "i=0; while :; do i=$((i+1)); echo L$i; sleep 0.02; done"}
                                  : Json{"/bin/sh"};
    const Json t = clients[0]->create_terminal({{"command", command}, {"subscribe", false}});
    const std::string id = t.value("id", "");
    REQUIRE(!id.empty());
    pids[id] = t.value("pid", 0LL);
    (printing ? printers : idle).push_back(id);
  }
  // Every client watches every printer from its start; the first also two idle shells.
  for (auto& c : clients) {
    for (const std::string& id : printers) REQUIRE(c->request("subscribe", {{"channel", "shell:terminal:" + id}, {"since", 0}}));
  }
  for (int i = 0; i < 2; ++i) REQUIRE(clients[0]->request("subscribe", {{"channel", "shell:terminal:" + idle[i]}, {"since", 0}}));
  const auto started = clients[0]->request("git.operation.start",
                                           {{"operation", "clone"}, {"repo", "clone"}, {"url", "file://" + (root / "origin.git").string()}});
  REQUIRE(started);
  REQUIRE_MESSAGE(started->value("type", "") == "git.operation.started", brief(started));
  const std::string git_terminal = (*started)["data"].value("terminalId", "");
  const std::string operation_id = (*started)["data"].value("operationId", "");
  REQUIRE(eventually([&] { return fs::exists(waiting); }, 10s));  // the clone is in progress, held at the gate
  for (auto& c : clients) {
    for (const std::string& id : printers) REQUIRE(c->wait_output(id, "L20\r\n", 10s));
  }

  const CommandResult upgraded = run_upgrade_command(dir);
  REQUIRE_MESSAGE(upgraded.status == 0, upgraded.output);
  CHECK(upgraded.output.find("resumed 21 of 21 terminals") != std::string::npos);

  // Each client comes back and resumes each of its terminals where it stopped.
  std::vector<std::unique_ptr<TestClient>> resumed;
  for (auto& c : clients) {
    REQUIRE(c->ws().wait_closed(5s));
    auto again = connect();
    REQUIRE(again);
    for (const std::string& id : printers) {
      REQUIRE(again->request("subscribe", {{"channel", "shell:terminal:" + id}, {"since", c->output(id).next}}));
    }
    resumed.push_back(std::move(again));
  }
  REQUIRE(resumed[0]->request("subscribe", {{"channel", "shell:terminal:" + git_terminal}, {"since", clients[0]->output(git_terminal).next}}));
  std::ofstream(gate) << "go\n";
  const auto completed = resumed[0]->wait_event("git.operation.completed", git_terminal, 30s);
  REQUIRE(completed);
  CHECK((*completed)["data"].value("status", "") == "succeeded");
  CHECK((*completed)["data"].value("operationId", "") == operation_id);
  CHECK(fs::exists(root / "clone" / "numbers"));

  for (size_t c = 0; c < clients.size(); ++c) {
    for (const std::string& id : printers) {
      const TerminalOutput& before = clients[c]->output(id);
      // Well past the upgrade: 50 lines more than were seen before it.
      size_t last = 0;
      for (size_t at = before.text.rfind("\nL"); at != std::string::npos; at = std::string::npos) last = std::stoul(before.text.substr(at + 2));
      REQUIRE(resumed[c]->wait_output(id, "L" + std::to_string(last + 50) + "\r\n", 15s));
      const TerminalOutput& after = resumed[c]->output(id);
      CHECK(before.first_offset == std::optional<uint64_t>(0));
      CHECK(after.first_offset == std::optional<uint64_t>(before.next));
      CHECK(before.gaps.empty());
      CHECK(after.gaps.empty());
      CHECK(after.problems.empty());
      // Exactly the lines printed: L1, L2, ... with nothing missing and nothing twice.
      const std::string all = before.text + after.text;
      size_t expected = 1, at = 0, bad = 0;
      while ((at = all.find('L', at)) != std::string::npos) {
        const size_t end = all.find("\r\n", at);
        if (end == std::string::npos) break;
        if (all.substr(at + 1, end - at - 1) != std::to_string(expected)) ++bad;
        ++expected;
        at = end;
      }
      CHECK_MESSAGE(bad == 0, "client ", c, " terminal ", id);
      CHECK(expected > last + 50);
    }
  }
  for (const auto& [id, pid] : pids) {
    const Json t = listed(*resumed[0], id);
    CHECK(t.value("state", "") == "running");
    CHECK(t.value("pid", 0LL) == pid);
  }
  CHECK_MESSAGE(daemon.sanitizer_findings().empty(), daemon.sanitizer_findings());
}

TEST_CASE("upgrade: a stdio pipes terminal goes over with its socket - input before and after, then eof, comes back whole") {
  TempDir dir;
  REQUIRE(!dir.path().empty());
  DaemonProcess daemon(copy_launch(dir));
  INFO(daemon.log());
  REQUIRE(daemon.started());
  auto client = connect_alice(daemon);
  REQUIRE(client);
  const auto created = client->create({{"command", {"cat"}}, {"stdio", "pipes"}});
  REQUIRE(created);
  const std::string id = (*created)["data"]["terminal"].value("id", "");
  REQUIRE(!id.empty());
  REQUIRE(client->request("shell.input", {{"terminalId", id}, {"data", "before\n"}}));
  REQUIRE(client->wait_output(id, "before\n"));
  const uint64_t since = client->output(id).next;
  const CommandResult upgraded = run_upgrade_command(dir);
  REQUIRE_MESSAGE(upgraded.status == 0, upgraded.output);
  std::unique_ptr<TestClient> again;
  REQUIRE(eventually([&] { return (again = connect_alice(daemon)) != nullptr; }, 10s));
  REQUIRE(again->request("subscribe", {{"channel", "shell:terminal:" + id}, {"since", since}}));
  REQUIRE(again->request("shell.input", {{"terminalId", id}, {"data", "after\n"}, {"eof", true}}));
  const auto exit = again->wait_exit(id, 10s);
  REQUIRE(exit);
  CHECK(exit->value("exitCode", -1) == 0);
  CHECK(client->output(id).text + again->output(id).text == "before\nafter\n");
  CHECK(listed(*again, id).value("stdio", "") == "pipes");
  CHECK_MESSAGE(daemon.sanitizer_findings().empty(), daemon.sanitizer_findings());
}

TEST_CASE("upgrade: 10 upgrades in a row leak no fd, no process and no memory") {
  TempDir dir;
  REQUIRE(!dir.path().empty());
  DaemonProcess daemon(copy_launch(dir));
  INFO(daemon.log());
  REQUIRE(daemon.started());
  std::vector<std::string> ids;
  {
    auto client = connect_alice(daemon);
    REQUIRE(client);
    for (int i = 0; i < 3; ++i) ids.push_back(client->create_terminal({{"command", {"/bin/sh"}}, {"subscribe", false}}).value("id", ""));
  }
  // The first upgrade settles what an image holds after one; the next nine must hold no more.
  const CommandResult first = run_upgrade_command(dir);
  REQUIRE_MESSAGE(first.status == 0, first.output);
  const size_t fds = open_fds(daemon.pid());
  const size_t children = children_of(daemon.pid()).size();
  const size_t rss = rss_kib(daemon.pid());
  for (int i = 0; i < 9; ++i) {
    const CommandResult upgraded = run_upgrade_command(dir);
    REQUIRE_MESSAGE(upgraded.status == 0, upgraded.output);
    CHECK(upgraded.output.find("resumed 3 of 3 terminals") != std::string::npos);
  }
  CHECK(open_fds(daemon.pid()) == fds);
  // The restored rings are lent from the mapped state at first, then become the terminals' own: the
  // mapping (and the memfd behind it) goes.
  const auto maps_state = [&] {
    std::ifstream maps("/proc/" + std::to_string(daemon.pid()) + "/maps");
    std::string line;
    while (std::getline(maps, line)) {
      if (line.find("ptyhub-handoff") != std::string::npos) return true;
    }
    return false;
  };
  CHECK(eventually([&] { return !maps_state(); }, std::chrono::seconds(10)));
  // Each image starts afresh; what it holds does not grow with the number of upgrades behind it.
  CHECK(rss_kib(daemon.pid()) < rss + 8 * 1024);
  const std::vector<ProcessInfo> after = children_of(daemon.pid());
  CHECK(after.size() == children);
  CHECK(children == 3);
  for (const ProcessInfo& child : after) CHECK(child.state != 'Z');
  auto client = connect_alice(daemon);
  REQUIRE(client);
  for (const std::string& id : ids) CHECK(listed(*client, id).value("state", "") == "running");
  CHECK_MESSAGE(daemon.sanitizer_findings().empty(), daemon.sanitizer_findings());
}

}  // namespace
}  // namespace ptyhub::test
