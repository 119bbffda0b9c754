// A live upgrade (docs/upgrade.md) of the real daemon: SIGUSR2 re-executes it in the same process, every
// terminal survives with its process, ring and offsets, clients are closed with 1012 and resume with
// `since`, byte-exact.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>

#include <memory>
#include <string>

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

TEST_CASE("upgrade: a new binary that cannot be executed - the old image takes its terminals back and serves on") {
  TempDir dir;
  REQUIRE(!dir.path().empty());
  const std::string copy = (dir / "ptyhubd").string();
  DaemonLaunch launch;
  // Run a copy of ptyhubd, so that the test can replace "the binary at its path" with a broken one.
  launch.wrapper = {"/bin/sh", "-c", "cp \"$0\" '" + copy + "' && exec '" + copy + "' \"$@\""};
  DaemonProcess daemon(launch);
  INFO(daemon.log());
  REQUIRE(daemon.started());
  auto client = connect_alice(daemon);
  REQUIRE(client);
  const std::string id = client->create_terminal({{"command", {"/bin/sh"}}}).value("id", "");
  REQUIRE(!id.empty());
  REQUIRE(client->request("shell.input", {{"terminalId", id}, {"data", "echo before-$((6*7))\n"}}));
  REQUIRE(client->wait_output(id, "before-42"));
  const uint64_t since = client->output(id).next;

  const std::string broken = (dir / "broken").string();
  std::ofstream(broken) << "not a program\n";
  REQUIRE(std::system(("chmod 755 '" + broken + "' && mv '" + broken + "' '" + copy + "'").c_str()) == 0);
  REQUIRE(daemon.send_signal(SIGUSR2));
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
}

}  // namespace
}  // namespace ptyhub::test
