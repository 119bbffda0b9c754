// Lifecycle (docs/protocol.md §4 Requests `shell.kill`, §5 Terminals, §7 Shutdown): terminals outlive their
// WebSockets, kills reach every process of a terminal's session, and SIGTERM shuts everything down with
// nothing left behind.
#include <doctest/doctest.h>

#include <sys/wait.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "tests/support/daemon_process.hpp"
#include "tests/support/test_client.hpp"

namespace ptyhub::test {
namespace {

Json sh(const std::string& script) { return Json{"/bin/sh", "-c", script}; }

// A shell whose background job has its own process group and ignores SIGHUP, so only SIGKILL ends it.
const Json kStubbornSession = sh("set -m; (trap '' HUP; exec sleep 1000) & echo ready; exec sleep 1000");

std::size_t live_count(const std::vector<ProcessInfo>& processes) {
  return static_cast<std::size_t>(
      std::count_if(processes.begin(), processes.end(), [](const ProcessInfo& p) { return p.state != 'Z'; }));
}

std::string describe(const std::vector<ProcessInfo>& processes) {
  std::string text;
  for (const auto& p : processes) {
    text += std::to_string(p.pid) + "(" + p.command + "," + p.state + ",ppid " + std::to_string(p.parent) + ") ";
  }
  return text;
}

// Waits until the session of `leader` holds at least `count` live processes.
bool session_has(pid_t leader, std::size_t count) {
  return eventually([&] { return live_count(processes_in_session(leader)) >= count; }, 5s);
}

// Waits until no process of the session of `leader` is left, reaping orphans adopted by this test process.
// Reports a terminal's own process that this process had to reap: the daemon did not reap its child.
bool session_gone(pid_t leader, std::vector<pid_t>& reaped_here) {
  return eventually(
      [&] {
        auto members = processes_in_session(leader);
        for (pid_t pid : reap_adopted_zombies(members)) reaped_here.push_back(pid);
        return processes_in_session(leader).empty() && !process_exists(leader);
      },
      10s);
}

TEST_CASE("closing the WebSocket does not kill a terminal - the same user attaches again") {
  DaemonProcess daemon;
  INFO(daemon.log());
  REQUIRE(daemon.started());
  std::string id;
  {
    auto first = connect_user(daemon, "alice");
    Json terminal = first->create_terminal();
    id = terminal.value("id", "");
    REQUIRE(first->request("shell.input", {{"terminalId", id}, {"data", "echo first-$((1+1))\n"}}));
    REQUIRE(first->wait_output(id, "first-2"));
    first->ws().close(1000, "bye");
    CHECK(first->ws().wait_closed(5s));
  }
  auto second = connect_user(daemon, "alice");
  auto list = second->request("shell.list");
  REQUIRE(list);
  REQUIRE((*list)["type"] == "shell.list");
  bool running = false;
  for (const Json& terminal : (*list)["data"]["terminals"]) {
    if (terminal["id"] == id) running = terminal["state"] == "running";
  }
  CHECK(running);

  auto subscribed = second->request("subscribe", {{"channel", "shell:terminal:" + id}});
  REQUIRE(subscribed);
  REQUIRE((*subscribed)["type"] == "subscribed");
  CHECK(second->wait_output(id, "first-2"));  // the history is replayed
  REQUIRE(second->request("shell.input", {{"terminalId", id}, {"data", "echo second-$((2+1))\n"}}));
  CHECK(second->wait_output(id, "second-3"));

  // A connection dropped without a closing handshake does not kill it either.
  {
    auto third = connect_user(daemon, "alice");
    REQUIRE(third->request("subscribe", {{"channel", "shell:terminal:" + id}}));
  }  // destroyed without a close frame
  REQUIRE(second->request("shell.input", {{"terminalId", id}, {"data", "echo third-$((3+1))\n"}}));
  CHECK(second->wait_output(id, "third-4"));
}

TEST_CASE("an exited terminal stays listed as exited") {
  DaemonProcess daemon;
  REQUIRE(daemon.started());
  auto client = connect_user(daemon, "alice");
  Json terminal = client->create_terminal({{"command", sh("exit 7")}});
  const std::string id = terminal.value("id", "");
  REQUIRE(client->wait_exit(id, 10s));
  auto other = connect_user(daemon, "alice");
  auto list = other->request("shell.list");
  REQUIRE(list);
  bool found = false;
  for (const Json& listed : (*list)["data"]["terminals"]) {
    if (listed["id"] != id) continue;
    found = true;
    CHECK(listed["state"] == "exited");
    CHECK(listed["exitCode"] == 7);
    CHECK(listed["signal"].is_null());
  }
  CHECK(found);
}

// The ids of the terminals `client` lists (with `state` when given).
std::vector<std::string> listed_ids(TestClient& client, const Json& data = Json::object()) {
  std::vector<std::string> ids;
  auto list = client.request("shell.list", data);
  if (!list || (*list)["type"] != "shell.list") return ids;
  for (const Json& terminal : (*list)["data"]["terminals"]) ids.push_back(terminal.value("id", ""));
  return ids;
}

bool contains(const std::vector<std::string>& ids, const std::string& id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

TEST_CASE("exited terminals count toward no limit - the oldest beyond the per-user bound are removed") {
  DaemonProcess daemon({"--max-terminals-per-user", "3", "--max-terminals", "5"});
  INFO(daemon.log());
  REQUIRE(daemon.started());
  auto alice = connect_user(daemon, "alice");
  std::vector<std::string> ran;
  for (int i = 0; i < 8; ++i) {  // more short commands than either limit
    Json terminal = alice->create_terminal({{"command", sh("exit 0")}});
    const std::string id = terminal.value("id", "");
    REQUIRE_MESSAGE(!id.empty(), "terminal ", i, " was refused");
    REQUIRE(alice->wait_exit(id, 10s));
    ran.push_back(id);
  }
  // Still room for three running terminals, the limit.
  for (int i = 0; i < 3; ++i) {
    Json running = alice->create_terminal({{"command", sh("exec sleep 1000")}});
    CHECK_FALSE(running.value("id", "").empty());
  }
  CHECK(is_error(alice->create({{"command", sh("exec sleep 1000")}}), "limit_exceeded"));
  // At most three exited terminals of alice stay listed: the newest.
  const auto exited = listed_ids(*alice, {{"state", "exited"}});
  CHECK(exited.size() == 3);
  for (size_t i = 0; i < ran.size(); ++i) CHECK_MESSAGE(contains(exited, ran[i]) == (i >= ran.size() - 3), "terminal ", i);
  CHECK(listed_ids(*alice, {{"state", "running"}}).size() == 3);
  CHECK(listed_ids(*alice).size() == 6);
  CHECK(is_error(alice->request("shell.list", {{"state", "gone"}}), "bad_message", "data.state"));
}

TEST_CASE("shell.dismiss removes an exited terminal - owner or admin only, never a running one") {
  DaemonProcess daemon;
  INFO(daemon.log());
  REQUIRE(daemon.started());
  auto alice = connect_user(daemon, "alice");
  auto watcher = connect_user(daemon, "alice");
  REQUIRE(watcher->request("subscribe", {{"channel", "shell:terminals"}}));
  Json done = alice->create_terminal({{"command", sh("exit 3")}});
  const std::string done_id = done.value("id", "");
  Json running = alice->create_terminal({{"command", sh("exec sleep 1000")}});
  const std::string running_id = running.value("id", "");
  REQUIRE(alice->wait_exit(done_id, 10s));

  auto bob = connect_user(daemon, "bob");
  REQUIRE(alice->request("shell.share", {{"terminalId", done_id}, {"user", "bob"}, {"mode", "write"}}));
  CHECK(is_error(bob->request("shell.dismiss", {{"terminalId", done_id}}), "forbidden", "data.terminalId"));
  auto reader = connect_user(daemon, "alice", "terminal:read");
  CHECK(is_error(reader->request("shell.dismiss", {{"terminalId", done_id}}), "forbidden"));
  CHECK(is_error(alice->request("shell.dismiss", {{"terminalId", running_id}}), "conflict", "data.terminalId"));
  CHECK(is_error(alice->request("shell.dismiss", {{"terminalId", "no-such-terminal"}}), "not_found", "data.terminalId"));
  CHECK(is_error(alice->request("shell.dismiss", Json::object()), "bad_message", "data.terminalId"));
  CHECK(contains(listed_ids(*alice), done_id));

  auto dismissed = alice->request("shell.dismiss", {{"terminalId", done_id}});
  REQUIRE(dismissed);
  CHECK((*dismissed)["type"] == "shell.dismissed");
  CHECK((*dismissed)["data"]["terminalId"] == done_id);
  CHECK(watcher->wait_event("shell.removed", done_id));
  CHECK_FALSE(contains(listed_ids(*alice), done_id));
  CHECK(contains(listed_ids(*alice), running_id));
  CHECK(is_error(alice->request("shell.dismiss", {{"terminalId", done_id}}), "not_found"));

  // An admin may dismiss another user's exited terminal.
  REQUIRE(alice->request("shell.kill", {{"terminalId", running_id}, {"signal", "SIGKILL"}}));
  REQUIRE(alice->wait_exit(running_id, 10s));
  auto root = connect_user(daemon, "root", "admin");
  auto by_admin = root->request("shell.dismiss", {{"terminalId", running_id}});
  CHECK_MESSAGE((by_admin && (*by_admin)["type"] == "shell.dismissed"), brief(by_admin));
  CHECK(listed_ids(*alice).empty());
}

TEST_CASE("shell.input with encoding base64 delivers every byte value unchanged - bad base64 changes nothing") {
  DaemonProcess daemon;
  INFO(daemon.log());
  REQUIRE(daemon.started());
  auto alice = connect_user(daemon, "alice");
  // Raw mode and no echo: the line discipline passes every byte through; od shows what arrived.
  Json terminal = alice->create_terminal(
      {{"command", sh("stty raw -echo; printf READY; head -c 256 | od -An -v -tx1 | tr -d ' \\n'; printf END")}});
  const std::string id = terminal.value("id", "");
  REQUIRE(alice->wait_output(id, "READY"));

  CHECK(is_error(alice->request("shell.input", {{"terminalId", id}, {"data", "AAE"}, {"encoding", "base64"}}),
                 "bad_message", "data.data"));
  CHECK(is_error(alice->request("shell.input", {{"terminalId", id}, {"data", "AA=="}, {"encoding", "hex"}}),
                 "bad_message", "data.encoding"));
  std::string all;
  std::string hex;
  for (int b = 0; b < 256; ++b) {
    all.push_back(static_cast<char>(b));
    char two[3];
    std::snprintf(two, sizeof two, "%02x", b);
    hex += two;
  }
  // Half as base64, half as base64 again (the refused requests above wrote nothing: exactly 256 bytes).
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const auto encode = [](std::string_view bytes) {
    std::string out;
    for (size_t i = 0; i < bytes.size(); i += 3) {
      uint32_t group = static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
      if (i + 1 < bytes.size()) group |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
      if (i + 2 < bytes.size()) group |= static_cast<unsigned char>(bytes[i + 2]);
      out.push_back(kAlphabet[(group >> 18) & 63]);
      out.push_back(kAlphabet[(group >> 12) & 63]);
      out.push_back(i + 1 < bytes.size() ? kAlphabet[(group >> 6) & 63] : '=');
      out.push_back(i + 2 < bytes.size() ? kAlphabet[group & 63] : '=');
    }
    return out;
  };
  for (std::string_view half : {std::string_view(all).substr(0, 128), std::string_view(all).substr(128)}) {
    auto sent = alice->request("shell.input", {{"terminalId", id}, {"data", encode(half)}, {"encoding", "base64"}});
    CHECK_MESSAGE((sent && (*sent)["type"] == "ack"), brief(sent));
  }
  CHECK(alice->wait_output(id, hex + "END"));
}

TEST_CASE("idle_timeout ends a terminal without input or output - activity keeps one alive - reason in shell.exit") {
  DaemonProcess daemon({"--idle-timeout", "0.6"});
  INFO(daemon.log());
  REQUIRE(daemon.started());
  auto alice = connect_user(daemon, "alice");
  auto watcher = connect_user(daemon, "alice");
  REQUIRE(watcher->request("subscribe", {{"channel", "shell:terminals"}}));
  Json chatty = alice->create_terminal({{"command", sh("while :; do echo tick; sleep 0.1; done")}});
  Json idle = alice->create_terminal({{"command", sh("exec sleep 1000")}});
  const std::string chatty_id = chatty.value("id", "");
  const std::string idle_id = idle.value("id", "");
  auto exit = alice->wait_exit(idle_id, 10s);
  REQUIRE(exit);
  CHECK((*exit)["reason"] == "idle_timeout");
  auto lifecycle = watcher->wait_event("shell.exit", idle_id);
  REQUIRE(lifecycle);
  CHECK((*lifecycle)["data"]["reason"] == "idle_timeout");
  // The chatty one has run as long, with output all the time: still running.
  const auto list = alice->request("shell.list");
  REQUIRE(list);
  bool seen = false;
  for (const Json& t : (*list)["data"]["terminals"]) {
    if (t["id"] != chatty_id) continue;
    seen = true;
    CHECK(t["state"] == "running");
  }
  CHECK(seen);
  REQUIRE(alice->request("shell.kill", {{"terminalId", chatty_id}, {"signal", "SIGKILL"}}));
  auto killed = alice->wait_exit(chatty_id, 10s);
  REQUIRE(killed);
  CHECK_FALSE(killed->contains("reason"));  // ended by a client, not by the daemon's policy
}

TEST_CASE("max_lifetime ends even a busy terminal - lastActivity follows input and output") {
  DaemonProcess daemon({"--max-lifetime", "1.5"});
  INFO(daemon.log());
  REQUIRE(daemon.started());
  auto alice = connect_user(daemon, "alice");
  Json cat = alice->create_terminal({{"command", {"/bin/cat"}}});
  const std::string id = cat.value("id", "");
  const std::string created = cat.value("createdAt", "");
  CHECK(cat.value("lastActivity", "") == created);
  // Type until lastActivity has moved past createdAt (bounded: each round is a request and its echo).
  std::string last = created;
  for (int round = 0; round < 200 && last <= created; ++round) {
    auto typed = alice->request("shell.input", {{"terminalId", id}, {"data", "x"}});
    REQUIRE_MESSAGE((typed && (*typed)["type"] == "ack"), brief(typed));
    const auto list = alice->request("shell.list");
    REQUIRE(list);
    for (const Json& t : (*list)["data"]["terminals"]) {
      if (t["id"] == id) last = t.value("lastActivity", "");
    }
  }
  CHECK(last > created);
  CHECK(is_iso_millis(last));
  auto exit = alice->wait_exit(id, 10s);
  REQUIRE(exit);
  CHECK((*exit)["reason"] == "max_lifetime");
}

TEST_CASE("shell.kill signals the whole session and escalates to SIGKILL after kill_grace") {
  become_subreaper();
  DaemonProcess daemon({"--kill-grace", "0.5"});
  INFO(daemon.log());
  REQUIRE(daemon.started());
  auto client = connect_user(daemon, "alice");

  SUBCASE("background job in its own process group") {
    Json terminal = client->create_terminal({{"command", kStubbornSession}});
    const std::string id = terminal.value("id", "");
    const pid_t leader = terminal.value("pid", 0);
    REQUIRE(leader > 0);
    REQUIRE(client->wait_output(id, "ready"));
    REQUIRE(session_has(leader, 2));
    REQUIRE(client->request("shell.kill", {{"terminalId", id}}));
    auto exit = client->wait_exit(id, 10s);
    REQUIRE(exit);
    CHECK((*exit)["signal"] == "SIGHUP");  // the shell itself ended by SIGHUP
    std::vector<pid_t> reaped_here;
    CHECK_MESSAGE(session_gone(leader, reaped_here), describe(processes_in_session(leader)));
    CHECK(std::find(reaped_here.begin(), reaped_here.end(), leader) == reaped_here.end());
  }
  SUBCASE("a shell that ignores SIGHUP") {
    Json terminal = client->create_terminal({{"command", sh("trap '' HUP; echo ready; exec sleep 1000")}});
    const std::string id = terminal.value("id", "");
    REQUIRE(client->wait_output(id, "ready"));
    REQUIRE(client->request("shell.kill", {{"terminalId", id}, {"signal", "SIGHUP"}}));
    auto exit = client->wait_exit(id, 10s);
    REQUIRE(exit);
    CHECK((*exit)["signal"] == "SIGKILL");
    CHECK((*exit)["exitCode"].is_null());
  }
}

TEST_CASE("SIGTERM: every client sees its terminals exit and a 1001 close - exit 0 - nothing left behind") {
  become_subreaper();
  DaemonProcess daemon({"--kill-grace", "1"});
  INFO(daemon.log());
  REQUIRE(daemon.started());

  constexpr int kClients = 4;
  constexpr int kShellsPerClient = 5;
  std::vector<std::unique_ptr<TestClient>> clients;
  std::vector<std::vector<std::string>> ids(kClients);
  std::vector<pid_t> leaders;
  for (int c = 0; c < kClients; ++c) {
    clients.push_back(connect_user(daemon, c % 2 == 0 ? "alice" : "bob"));
    for (int s = 0; s < kShellsPerClient; ++s) {
      // Half the shells have a SIGHUP-proof background job, the others a plain one.
      Json command = s % 2 == 0 ? kStubbornSession : sh("set -m; sleep 1000 & echo ready; exec sleep 1000");
      Json terminal = clients[c]->create_terminal({{"command", command}});
      ids[c].push_back(terminal.value("id", ""));
      leaders.push_back(terminal.value("pid", 0));
    }
  }
  REQUIRE(leaders.size() == kClients * kShellsPerClient);
  for (int c = 0; c < kClients; ++c) {
    for (const auto& id : ids[c]) REQUIRE(clients[c]->wait_output(id, "ready"));
  }
  for (pid_t leader : leaders) {
    REQUIRE(leader > 0);
    REQUIRE_MESSAGE(session_has(leader, 2), describe(processes_in_session(leader)));
  }

  REQUIRE(daemon.send_signal(SIGTERM));
  for (int c = 0; c < kClients; ++c) {
    CAPTURE(c);
    for (const auto& id : ids[c]) {
      CAPTURE(id);
      CHECK(clients[c]->wait_exit(id, 10s));
    }
    CHECK(clients[c]->ws().wait_closed(10s));
    CHECK(clients[c]->ws().close_code() == 1001);
  }
  auto status = daemon.wait_exit(15s);
  REQUIRE(status);
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 0);
  CHECK_MESSAGE(daemon.sanitizer_findings().empty(), daemon.sanitizer_findings());

  for (pid_t leader : leaders) {
    CAPTURE(leader);
    std::vector<pid_t> reaped_here;
    CHECK_MESSAGE(session_gone(leader, reaped_here), describe(processes_in_session(leader)));
    CHECK_MESSAGE(std::find(reaped_here.begin(), reaped_here.end(), leader) == reaped_here.end(),
                  "the daemon exited without reaping its child");
  }
  CHECK_FALSE(http_get(daemon.port(), "/healthz", 1s).has_value());  // the listener is gone
}

TEST_CASE("SIGTERM with no clients and no terminals exits 0 promptly") {
  DaemonProcess daemon;
  INFO(daemon.log());
  REQUIRE(daemon.started());
  auto status = daemon.stop(SIGTERM, 10s);
  REQUIRE(status);
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 0);
  CHECK_MESSAGE(daemon.sanitizer_findings().empty(), daemon.sanitizer_findings());
}

TEST_CASE("SIGTERM: terminals that end on SIGHUP do not make the daemon wait for kill_grace") {
  DaemonProcess daemon({"--kill-grace", "60"});
  INFO(daemon.log());
  REQUIRE(daemon.started());
  auto client = connect_user(daemon, "alice");
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    Json terminal = client->create_terminal({{"command", sh("echo ready; exec sleep 1000")}});
    ids.push_back(terminal.value("id", ""));
  }
  for (const auto& id : ids) REQUIRE(client->wait_output(id, "ready"));
  REQUIRE(daemon.send_signal(SIGTERM));
  // Well below the 60 s grace: the SIGKILL escalation is dropped once a session has nothing left.
  auto status = daemon.wait_exit(20s);
  REQUIRE(status);
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 0);
  CHECK_MESSAGE(daemon.sanitizer_findings().empty(), daemon.sanitizer_findings());
}

TEST_CASE("shell:terminals: a snapshot, then created and exit deltas, for readable terminals only") {
  DaemonProcess daemon;
  INFO(daemon.log());
  REQUIRE(daemon.started());
  auto alice = connect_user(daemon, "alice");
  auto bob = connect_user(daemon, "bob");
  Json before = alice->create_terminal({{"command", sh("exec sleep 1000")}});

  auto snapshot = alice->request("subscribe", {{"channel", "shell:terminals"}});
  REQUIRE(snapshot);
  INFO(brief(snapshot));
  REQUIRE((*snapshot)["type"] == "subscribed");
  CHECK((*snapshot)["data"]["channel"] == "shell:terminals");
  REQUIRE((*snapshot)["data"]["terminals"].is_array());
  REQUIRE((*snapshot)["data"]["terminals"].size() == 1);
  CHECK((*snapshot)["data"]["terminals"][0]["id"] == before["id"]);
  auto bob_snapshot = bob->request("subscribe", {{"channel", "shell:terminals"}});
  REQUIRE(bob_snapshot);
  REQUIRE((*bob_snapshot)["type"] == "subscribed");
  CHECK((*bob_snapshot)["data"]["terminals"].empty());

  const std::size_t from = alice->mark();
  auto other = connect_user(daemon, "alice");
  Json created = other->create_terminal({{"command", sh("exit 4")}, {"subscribe", false}});
  auto event = alice->wait_for(
      [&](const Json& m) { return m["type"] == "shell.created" && m.value("channel", "") == "shell:terminals"; }, 5s,
      from);
  REQUIRE(event);
  CHECK((*event)["data"]["terminal"]["id"] == created["id"]);
  auto exit = alice->wait_for(
      [&](const Json& m) { return m["type"] == "shell.exit" && m.value("channel", "") == "shell:terminals"; }, 5s,
      from);
  REQUIRE(exit);
  CHECK((*exit)["data"]["terminalId"] == created["id"]);
  CHECK((*exit)["data"]["exitCode"] == 4);

  bob->drain(300ms);
  for (const Json& message : bob->history()) {
    CHECK(message["type"] != "shell.created");
    CHECK(message["type"] != "shell.exit");
  }
}

}  // namespace
}  // namespace ptyhub::test
