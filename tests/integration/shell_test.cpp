// Terminals (docs/protocol.md §4 Requests, §5 Terminals, §6 The output stream): shell.create, input,
// resize, kill and list, channels and subscriptions, scopes and ownership, request errors with `field`,
// and the UTF-8 output stream.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "tests/support/daemon_process.hpp"
#include "tests/support/test_client.hpp"

namespace ptyhub::test {
namespace {

Json sh(const std::string& script) { return Json{"/bin/sh", "-c", script}; }

std::string channel_of(const std::string& terminal_id) { return "shell:terminal:" + terminal_id; }

// The terminals of this client's shell.list, by id.
std::map<std::string, Json> list_terminals(TestClient& client) {
  std::map<std::string, Json> terminals;
  auto reply = client.request("shell.list");
  INFO("shell.list -> ", brief(reply));
  REQUIRE(reply);
  REQUIRE((*reply)["type"] == "shell.list");
  REQUIRE((*reply)["data"]["terminals"].is_array());
  for (const Json& terminal : (*reply)["data"]["terminals"]) terminals[terminal.value("id", "")] = terminal;
  return terminals;
}

void check_stream_ok(TestClient& client, const std::string& id) {
  const TerminalOutput& output = client.output(id);
  for (const auto& problem : output.problems) FAIL_CHECK(problem);
}

TEST_CASE("shell.create: shell.created before output, then output, exit code and contiguous offsets") {
  DaemonProcess daemon;
  INFO(daemon.log());
  REQUIRE(daemon.started());
  auto client = connect_user(daemon, "alice");

  const std::size_t from = client->mark();
  const Json command = sh("printf hello; exit 3");
  auto reply = client->create({{"command", command}});
  REQUIRE(reply);
  INFO(brief(reply));
  REQUIRE((*reply)["type"] == "shell.created");
  const Json terminal = (*reply)["data"]["terminal"];
  const std::string id = terminal.value("id", "");
  CHECK(std::regex_match(id, std::regex("^[A-Za-z0-9_-]{1,64}$")));
  CHECK(terminal["channel"] == channel_of(id));
  CHECK(terminal["kind"] == "shell");
  CHECK(terminal["owner"] == "alice");
  CHECK(terminal["command"] == command);
  CHECK(terminal["cwd"] == daemon.home().string());
  CHECK(terminal["cols"] == 80);
  CHECK(terminal["rows"] == 24);
  CHECK(terminal["pid"].is_number_integer());
  CHECK(terminal.value("pid", 0) > 0);
  CHECK(is_iso_millis(terminal["createdAt"]));
  CHECK(terminal["state"] == "running");
  CHECK(terminal["outputBytes"] == 0);
  CHECK(terminal.contains("name"));
  CHECK(terminal.contains("exitCode"));
  CHECK(terminal.contains("signal"));

  auto exit = client->wait_exit(id, 10s);
  REQUIRE(exit);
  INFO(exit->dump());
  CHECK((*exit)["terminalId"] == id);
  CHECK((*exit)["exitCode"] == 3);
  CHECK((*exit)["signal"].is_null());
  CHECK((*exit)["outputBytes"] == 5);
  CHECK((*exit)["durationMs"].is_number());

  const TerminalOutput& output = client->output(id);
  CHECK(output.text == "hello");
  CHECK(output.first_offset == std::optional<std::uint64_t>(0));
  CHECK(output.next == 5);
  check_stream_ok(*client, id);

  // Order on the wire: the reply, then the output, then the exit; every event names its channel.
  std::optional<std::size_t> created_at, first_output_at, exit_at;
  for (std::size_t i = from; i < client->history().size(); ++i) {
    const Json& message = client->history()[i];
    const std::string type = message.value("type", "");
    if (type == "shell.created" && !created_at) created_at = i;
    if (type == "shell.output" || type == "shell.exit") CHECK(message["channel"] == channel_of(id));
    if (type == "shell.output" && !first_output_at) first_output_at = i;
    if (type == "shell.exit") exit_at = i;
  }
  REQUIRE(created_at);
  REQUIRE(first_output_at);
  REQUIRE(exit_at);
  CHECK(*created_at < *first_output_at);
  CHECK(*first_output_at < *exit_at);

  auto listed = list_terminals(*client);
  REQUIRE(listed.count(id) == 1);
  CHECK(listed[id]["state"] == "exited");
  CHECK(listed[id]["exitCode"] == 3);
  CHECK(listed[id]["outputBytes"] == 5);
}

TEST_CASE("shell.create: a command that prints a lot and exits at once loses nothing") {
  DaemonProcess daemon;
  REQUIRE(daemon.started());
  auto client = connect_user(daemon, "alice");
  // 20000 lines "line N" (with \r\n from the PTY).
  Json terminal = client->create_terminal({{"command", sh("i=0; while [ $i -lt 20000 ]; do echo line $i; i=$((i+1)); done")}});
  const std::string id = terminal.value("id", "");
  auto exit = client->wait_exit(id, 30s);
  REQUIRE(exit);
  CHECK((*exit)["exitCode"] == 0);
  const TerminalOutput& output = client->output(id);
  CHECK(output.first_offset == std::optional<std::uint64_t>(0));
  CHECK(output.next == (*exit)["outputBytes"].get<std::uint64_t>());
  CHECK(output.text.size() == output.next);
  CHECK(output.text.find("line 0\r\n") == 0);
  CHECK(output.text.find("line 19999\r\n") != std::string::npos);
  check_stream_ok(*client, id);
}

TEST_CASE("shell.create: env, TERM, cwd, cols and rows reach the process") {
  DaemonProcess daemon;
  REQUIRE(daemon.started());
  auto client = connect_user(daemon, "alice");
  std::filesystem::create_directory(daemon.home() / "work");

  Json terminal = client->create_terminal({{"command", sh("printf '%s|%s|%s|' \"$FOO\" \"$TERM\" \"$(pwd)\"; stty size")},
                                           {"env", {{"FOO", "bar baz"}}},
                                           {"cwd", (daemon.home() / "work").string()},
                                           {"cols", 120},
                                           {"rows", 40},
                                           {"name", "build"}});
  const std::string id = terminal.value("id", "");
  CHECK(terminal["cols"] == 120);
  CHECK(terminal["rows"] == 40);
  CHECK(terminal["name"] == "build");
  CHECK(terminal["cwd"] == (daemon.home() / "work").string());
  REQUIRE(client->wait_exit(id, 10s));
  CHECK(client->output(id).text ==
        "bar baz|xterm-256color|" + (daemon.home() / "work").string() + "|40 120\r\n");
}

TEST_CASE("shell.input is written to the PTY and echoed through /bin/sh") {
  DaemonProcess daemon;
  REQUIRE(daemon.started());
  auto client = connect_user(daemon, "alice");
  Json terminal = client->create_terminal();  // the configured shell
  const std::string id = terminal.value("id", "");
  CHECK(terminal["command"] == Json{"/bin/sh"});

  auto ack = client->request_with_id("shell.input", {{"terminalId", id}, {"data", "echo hi-$((6*7))\n"}}, 11);
  REQUIRE(ack);
  CHECK((*ack)["type"] == "ack");
  CHECK((*ack)["id"] == 11);
  CHECK(client->wait_output(id, "hi-42", 5s));

  // UTF-8 input arrives as is.
  client->notify("shell.input", {{"terminalId", id}, {"data", "printf '%s\\n' \"caf\xc3\xa9-\xe2\x82\xac\" | od -An -tx1\n"}});
  CHECK(client->wait_output(id, "63 61 66 c3 a9 2d e2 82 ac", 5s));
  check_stream_ok(*client, id);
}

TEST_CASE("shell.input: a large paste arrives whole") {
  DaemonProcess daemon;
  REQUIRE(daemon.started());
  auto client = connect_user(daemon, "alice");
  Json terminal = client->create_terminal({{"command", sh("stty raw -echo; echo ready; head -c 300000 | wc -c")}});
  const std::string id = terminal.value("id", "");
  REQUIRE(client->wait_output(id, "ready", 5s));
  std::string paste;
  for (int i = 0; paste.size() < 300000; ++i) paste += "chunk-" + std::to_string(i) + " ";
  paste.resize(300000);
  auto ack = client->request("shell.input", {{"terminalId", id}, {"data", paste}}, 10s);
  REQUIRE(ack);
  CHECK((*ack)["type"] == "ack");
  CHECK(client->wait_output(id, "300000", 10s));
  auto exit = client->wait_exit(id, 5s);
  REQUIRE(exit);
  CHECK((*exit)["exitCode"] == 0);
}

TEST_CASE("shell.resize: ack, shell.resized on the channel, and the PTY has the new size") {
  DaemonProcess daemon;
  REQUIRE(daemon.started());
  auto client = connect_user(daemon, "alice");
  Json terminal = client->create_terminal();
  const std::string id = terminal.value("id", "");

  const std::size_t from = client->mark();
  auto ack = client->request("shell.resize", {{"terminalId", id}, {"cols", 100}, {"rows", 30}});
  REQUIRE(ack);
  CHECK((*ack)["type"] == "ack");
  auto resized = client->wait_event("shell.resized", id, 5s, from);
  REQUIRE(resized);
  CHECK((*resized)["channel"] == channel_of(id));
  CHECK((*resized)["data"] == Json{{"terminalId", id}, {"cols", 100}, {"rows", 30}});

  client->notify("shell.input", {{"terminalId", id}, {"data", "stty size\n"}});
  CHECK(client->wait_output(id, "30 100", 5s));
  auto listed = list_terminals(*client);
  CHECK(listed[id]["cols"] == 100);
  CHECK(listed[id]["rows"] == 30);

  // A second subscriber sees shell.resized too; last writer wins.
  auto other = connect_user(daemon, "alice");
  auto subscribed = other->request("subscribe", {{"channel", channel_of(id)}});
  REQUIRE(subscribed);
  REQUIRE((*subscribed)["type"] == "subscribed");
  const std::size_t other_from = other->mark();
  REQUIRE(client->request("shell.resize", {{"terminalId", id}, {"cols", 132}, {"rows", 43}}));
  auto seen = other->wait_event("shell.resized", id, 5s, other_from);
  REQUIRE(seen);
  CHECK((*seen)["data"]["cols"] == 132);
  CHECK((*seen)["data"]["rows"] == 43);
}

TEST_CASE("shell.kill: SIGHUP by default, named signals, and SIGINT to a process that ignores it") {
  DaemonProcess daemon;
  REQUIRE(daemon.started());
  auto client = connect_user(daemon, "alice");

  SUBCASE("default SIGHUP") {
    Json terminal = client->create_terminal({{"command", sh("echo ready; exec sleep 1000")}});
    const std::string id = terminal.value("id", "");
    REQUIRE(client->wait_output(id, "ready"));
    auto ack = client->request("shell.kill", {{"terminalId", id}});
    REQUIRE(ack);
    CHECK((*ack)["type"] == "ack");
    auto exit = client->wait_exit(id, 10s);
    REQUIRE(exit);
    CHECK((*exit)["signal"] == "SIGHUP");
    CHECK((*exit)["exitCode"].is_null());
    check_stream_ok(*client, id);
  }
  SUBCASE("SIGTERM and SIGKILL") {
    for (const char* signal : {"SIGTERM", "SIGKILL", "SIGINT"}) {
      CAPTURE(signal);
      Json terminal = client->create_terminal({{"command", sh("echo ready; exec sleep 1000")}});
      const std::string id = terminal.value("id", "");
      REQUIRE(client->wait_output(id, "ready"));
      auto ack = client->request("shell.kill", {{"terminalId", id}, {"signal", signal}});
      REQUIRE(ack);
      CHECK((*ack)["type"] == "ack");
      auto exit = client->wait_exit(id, 10s);
      REQUIRE(exit);
      CHECK((*exit)["signal"] == signal);
      CHECK((*exit)["exitCode"].is_null());
    }
  }
  SUBCASE("SIGINT that is ignored does not end the terminal and does not escalate") {
    Json terminal = client->create_terminal({{"command", sh("trap '' INT; echo ready; exec sleep 1000")}});
    const std::string id = terminal.value("id", "");
    REQUIRE(client->wait_output(id, "ready"));
    auto ack = client->request("shell.kill", {{"terminalId", id}, {"signal", "SIGINT"}});
    REQUIRE(ack);
    CHECK((*ack)["type"] == "ack");
    client->drain(700ms);
    CHECK_FALSE(client->output(id).exit);
    auto listed = list_terminals(*client);
    CHECK(listed[id]["state"] == "running");

    REQUIRE(client->request("shell.kill", {{"terminalId", id}, {"signal", "SIGKILL"}}));
    auto exit = client->wait_exit(id, 10s);
    REQUIRE(exit);
    CHECK((*exit)["signal"] == "SIGKILL");
  }
  SUBCASE("a signal outside the list") {
    Json terminal = client->create_terminal({{"command", sh("exec sleep 1000")}});
    const std::string id = terminal.value("id", "");
    for (const Json& signal : {Json("SIGSTOP"), Json("KILL"), Json(9)}) {
      CAPTURE(signal.dump());
      auto reply = client->request("shell.kill", {{"terminalId", id}, {"signal", signal}});
      CHECK_MESSAGE(is_error(reply, "bad_message", "data.signal"), brief(reply));
    }
    client->drain(200ms);
    CHECK_FALSE(client->output(id).exit);
  }
}

TEST_CASE("shell.list shows a user's own terminals only - another user's terminal is not_found") {
  DaemonProcess daemon;
  REQUIRE(daemon.started());
  auto alice = connect_user(daemon, "alice");
  auto bob = connect_user(daemon, "bob");

  Json terminal = alice->create_terminal({{"command", sh("exec sleep 1000")}});
  const std::string id = terminal.value("id", "");
  auto alice_list = list_terminals(*alice);
  CHECK(alice_list.size() == 1);
  CHECK(alice_list.count(id) == 1);
  CHECK(alice_list[id]["state"] == "running");
  CHECK(alice_list[id]["owner"] == "alice");
  CHECK(list_terminals(*bob).empty());

  Json bobs = bob->create_terminal({{"command", sh("exec sleep 1000")}});
  auto bob_list = list_terminals(*bob);
  CHECK(bob_list.size() == 1);
  CHECK(bob_list.count(bobs.value("id", "")) == 1);
  CHECK(list_terminals(*alice).size() == 1);

  const std::size_t from = bob->mark();
  auto input = bob->request("shell.input", {{"terminalId", id}, {"data", "x"}});
  CHECK_MESSAGE(is_error(input, "not_found"), brief(input));
  auto resize = bob->request("shell.resize", {{"terminalId", id}, {"cols", 100}, {"rows", 30}});
  CHECK_MESSAGE(is_error(resize, "not_found"), brief(resize));
  auto kill = bob->request("shell.kill", {{"terminalId", id}});
  CHECK_MESSAGE(is_error(kill, "not_found"), brief(kill));
  auto subscribe = bob->request("subscribe", {{"channel", channel_of(id)}});
  CHECK_MESSAGE(is_error(subscribe, "not_found"), brief(subscribe));
  for (std::size_t i = from; i < bob->history().size(); ++i) CHECK(bob->history()[i]["type"] != "shell.output");

  // Indistinguishable from a terminal that does not exist.
  auto unknown = alice->request("shell.input", {{"terminalId", "doesnotexist"}, {"data", "x"}});
  CHECK_MESSAGE(is_error(unknown, "not_found"), brief(unknown));

  // Nothing happened to alice's terminal.
  auto listed = list_terminals(*alice);
  CHECK(listed[id]["state"] == "running");
  CHECK(listed[id]["cols"] == 80);
}

TEST_CASE("scopes: terminal:create, terminal:read and terminal:write are enforced") {
  DaemonProcess daemon;
  REQUIRE(daemon.started());

  SUBCASE("shell.create without terminal:create") {
    auto client = connect_user(daemon, "alice", "terminal:read terminal:write");
    auto reply = client->create({{"command", sh("exec sleep 1000")}});
    CHECK_MESSAGE(is_error(reply, "forbidden"), brief(reply));
    CHECK(list_terminals(*client).empty());
    // Schema errors come before scope errors.
    auto bad = client->create({{"cols", 0}});
    CHECK_MESSAGE(is_error(bad, "bad_message", "data.cols"), brief(bad));
  }
  SUBCASE("shell.create subscribe:true without terminal:read creates nothing") {
    auto creator = connect_user(daemon, "alice", "terminal:create");
    auto implicit = creator->create({{"command", sh("exec sleep 1000")}});
    CHECK_MESSAGE(is_error(implicit, "forbidden"), brief(implicit));
    auto explicit_subscribe = creator->create({{"command", sh("exec sleep 1000")}, {"subscribe", true}});
    CHECK_MESSAGE(is_error(explicit_subscribe, "forbidden"), brief(explicit_subscribe));
    auto unsubscribed = creator->create({{"command", sh("exec sleep 1000")}, {"subscribe", false}});
    REQUIRE(unsubscribed);
    CHECK((*unsubscribed)["type"] == "shell.created");

    auto reader = connect_user(daemon, "alice", "terminal:read");
    CHECK(list_terminals(*reader).size() == 1);
    auto list = creator->request("shell.list");
    CHECK_MESSAGE(is_error(list, "forbidden"), brief(list));
  }
  SUBCASE("input, resize and kill need terminal:write") {
    auto owner = connect_user(daemon, "alice");
    Json terminal = owner->create_terminal({{"command", sh("exec sleep 1000")}});
    const std::string id = terminal.value("id", "");
    auto reader = connect_user(daemon, "alice", "terminal:read");
    auto input = reader->request("shell.input", {{"terminalId", id}, {"data", "x"}});
    CHECK_MESSAGE(is_error(input, "forbidden"), brief(input));
    auto resize = reader->request("shell.resize", {{"terminalId", id}, {"cols", 100}, {"rows", 30}});
    CHECK_MESSAGE(is_error(resize, "forbidden"), brief(resize));
    auto kill = reader->request("shell.kill", {{"terminalId", id}});
    CHECK_MESSAGE(is_error(kill, "forbidden"), brief(kill));
    CHECK(list_terminals(*owner)[id]["state"] == "running");
  }
  SUBCASE("subscribe needs terminal:read") {
    auto owner = connect_user(daemon, "alice");
    Json terminal = owner->create_terminal({{"command", sh("exec sleep 1000")}});
    auto writer = connect_user(daemon, "alice", "terminal:write");
    auto subscribe = writer->request("subscribe", {{"channel", channel_of(terminal.value("id", ""))}});
    CHECK_MESSAGE(is_error(subscribe, "forbidden"), brief(subscribe));
  }
}

// Waits (by asking shell.list) until the terminal's outputBytes reaches `bytes`.
bool wait_output_bytes(TestClient& client, const std::string& id, std::uint64_t bytes) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    auto listed = list_terminals(client);
    if (listed[id].value("outputBytes", std::uint64_t{0}) >= bytes) return true;
    client.drain(50ms);
  }
  return false;
}

TEST_CASE("subscribe replays the retained output - since: N replays from N") {
  DaemonProcess daemon;
  REQUIRE(daemon.started());
  auto client = connect_user(daemon, "alice");
  auto created = client->create({{"command", sh("printf abc; exec cat")}, {"subscribe", false}});
  REQUIRE(created);
  REQUIRE((*created)["type"] == "shell.created");
  const std::string id = (*created)["data"]["terminal"]["id"];
  const std::string channel = channel_of(id);
  REQUIRE(wait_output_bytes(*client, id, 3));
  for (std::size_t i = 0; i < client->history().size(); ++i) CHECK(client->history()[i]["type"] != "shell.output");

  SUBCASE("without since: the whole ring") {
    auto subscribed = client->request("subscribe", {{"channel", channel}});
    REQUIRE(subscribed);
    INFO(brief(subscribed));
    REQUIRE((*subscribed)["type"] == "subscribed");
    CHECK((*subscribed)["data"]["replay"] == Json{{"from", 0}, {"to", 3}});
    CHECK(client->wait_output(id, "abc", 5s));
    CHECK(client->output(id).first_offset == std::optional<std::uint64_t>(0));
    CHECK(client->output(id).gaps.empty());
  }
  SUBCASE("since: 1") {
    auto subscribed = client->request("subscribe", {{"channel", channel}, {"since", 1}});
    REQUIRE(subscribed);
    INFO(brief(subscribed));
    REQUIRE((*subscribed)["type"] == "subscribed");
    CHECK((*subscribed)["data"]["replay"] == Json{{"from", 1}, {"to", 3}});
    CHECK(client->wait_output(id, "bc", 5s));
    CHECK(client->output(id).first_offset == std::optional<std::uint64_t>(1));
    CHECK(client->output(id).gaps.empty());
  }
  SUBCASE("since: outputBytes replays nothing, then live output") {
    auto subscribed = client->request("subscribe", {{"channel", channel}, {"since", 3}});
    REQUIRE(subscribed);
    REQUIRE((*subscribed)["type"] == "subscribed");
    CHECK((*subscribed)["data"]["replay"] == Json{{"from", 3}, {"to", 3}});
    REQUIRE(client->request("shell.input", {{"terminalId", id}, {"data", "live\n"}}));
    CHECK(client->wait_output(id, "live", 5s));
    CHECK(client->output(id).first_offset == std::optional<std::uint64_t>(3));
  }
  check_stream_ok(*client, id);
}

TEST_CASE("subscribe and unsubscribe a terminal channel - encoding - errors") {
  DaemonProcess daemon;
  REQUIRE(daemon.started());
  auto client = connect_user(daemon, "alice");
  auto created = client->create({{"command", sh("exec cat")}, {"subscribe", false}});
  REQUIRE(created);
  REQUIRE((*created)["type"] == "shell.created");
  const std::string id = (*created)["data"]["terminal"]["id"];
  const std::string channel = channel_of(id);

  auto subscribed = client->request("subscribe", {{"channel", channel}});
  REQUIRE(subscribed);
  INFO(brief(subscribed));
  REQUIRE((*subscribed)["type"] == "subscribed");
  const Json& data = (*subscribed)["data"];
  CHECK(data["channel"] == channel);
  CHECK(data["terminal"]["id"] == id);
  CHECK(data["terminal"]["channel"] == channel);
  REQUIRE(data["replay"]["from"].is_number_unsigned());
  REQUIRE(data["replay"]["to"].is_number_unsigned());
  CHECK(data["replay"]["from"].get<std::uint64_t>() <= data["replay"]["to"].get<std::uint64_t>());
  REQUIRE(client->request("shell.input", {{"terminalId", id}, {"data", "abc\n"}}));
  REQUIRE(client->wait_output(id, "abc\r\nabc\r\n", 5s));  // the tty's echo, then cat's copy
  check_stream_ok(*client, id);

  auto unsubscribed = client->request("unsubscribe", {{"channel", channel}});
  REQUIRE(unsubscribed);
  CHECK((*unsubscribed)["type"] == "unsubscribed");
  CHECK((*unsubscribed)["data"]["channel"] == channel);
  const std::size_t after_unsubscribe = client->mark();
  REQUIRE(client->request("shell.input", {{"terminalId", id}, {"data", "zzz\n"}}));
  // The terminal produced its echo meanwhile, but this client sees none of it.
  CHECK(wait_output_bytes(*client, id, 20));
  REQUIRE(client->request("ping"));
  for (std::size_t i = after_unsubscribe; i < client->history().size(); ++i) {
    CHECK(client->history()[i]["type"] != "shell.output");
  }

  SUBCASE("encoding base64") {
    auto again = client->request("subscribe", {{"channel", channel}, {"encoding", "base64"}, {"since", 20}});
    REQUIRE(again);
    INFO(brief(again));
    REQUIRE((*again)["type"] == "subscribed");
    REQUIRE(client->request("shell.input", {{"terminalId", id}, {"data", "q\xc3\xa9\n"}}));
    CHECK(client->wait_output(id, "q\xc3\xa9\r\n", 5s));
    CHECK_FALSE(client->output(id).chunks.empty());
    for (const Json& chunk : client->output(id).chunks) CHECK(chunk["encoding"] == "base64");
    check_stream_ok(*client, id);
  }
  SUBCASE("subscribing twice replaces the subscription") {
    REQUIRE(client->request("subscribe", {{"channel", channel}, {"since", 20}}));
    auto second = client->request("subscribe", {{"channel", channel}, {"since", 20}});
    REQUIRE(second);
    CHECK((*second)["type"] == "subscribed");
    const std::size_t from = client->mark();
    REQUIRE(client->request("shell.input", {{"terminalId", id}, {"data", "yy\n"}}));
    REQUIRE(client->wait_output(id, "yy\r\nyy\r\n", 5s));
    client->request("ping");
    // One subscription: the live bytes arrive once.
    std::string live;
    for (std::size_t i = from; i < client->history().size(); ++i) {
      const Json& message = client->history()[i];
      if (message["type"] == "shell.output") live += message["data"]["data"].get<std::string>();
    }
    CHECK(live == "yy\r\nyy\r\n");
    check_stream_ok(*client, id);
  }
  SUBCASE("bad since and encoding") {
    auto beyond = client->request("subscribe", {{"channel", channel}, {"since", 1000000}});
    CHECK_MESSAGE(is_error(beyond, "bad_message", "data.since"), brief(beyond));
    auto negative = client->request("subscribe", {{"channel", channel}, {"since", -1}});
    CHECK_MESSAGE(is_error(negative, "bad_message", "data.since"), brief(negative));
    auto encoding = client->request("subscribe", {{"channel", channel}, {"encoding", "hex"}});
    CHECK_MESSAGE(is_error(encoding, "bad_message", "data.encoding"), brief(encoding));
  }
  SUBCASE("unknown channels") {
    auto unknown = client->request("subscribe", {{"channel", "shell:terminal:doesnotexist"}});
    CHECK_MESSAGE(is_error(unknown, "not_found"), brief(unknown));
    auto missing = client->request("subscribe", Json::object());
    CHECK_MESSAGE(is_error(missing, "bad_message", "data.channel"), brief(missing));
    auto gone = client->request("unsubscribe", {{"channel", "shell:terminal:doesnotexist"}});
    REQUIRE(gone);
    CHECK((*gone)["type"] == "unsubscribed");
    CHECK((*gone)["data"]["channel"] == "shell:terminal:doesnotexist");
  }
}

TEST_CASE("request errors name the field and have no effect") {
  DaemonProcess daemon;
  REQUIRE(daemon.started());
  auto client = connect_user(daemon, "alice");
  Json terminal = client->create_terminal({{"command", sh("exec sleep 1000")}});
  const std::string id = terminal.value("id", "");
  const std::size_t from = client->mark();

  struct Case {
    const char* type;
    Json data;
    const char* field;
  };
  const std::vector<Case> cases = {
      {"shell.resize", {{"terminalId", id}, {"cols", 0}, {"rows", 24}}, "data.cols"},
      {"shell.resize", {{"terminalId", id}, {"cols", 1001}, {"rows", 24}}, "data.cols"},
      {"shell.resize", {{"terminalId", id}, {"cols", "80"}, {"rows", 24}}, "data.cols"},
      {"shell.resize", {{"terminalId", id}, {"cols", 80.5}, {"rows", 24}}, "data.cols"},
      {"shell.resize", {{"terminalId", id}, {"cols", 80}, {"rows", 0}}, "data.rows"},
      {"shell.resize", {{"terminalId", id}, {"cols", 80}, {"rows", 1001}}, "data.rows"},
      {"shell.resize", {{"terminalId", id}, {"cols", 80}}, "data.rows"},
      {"shell.resize", {{"cols", 80}, {"rows", 24}}, "data.terminalId"},
      {"shell.resize", {{"terminalId", 5}, {"cols", 80}, {"rows", 24}}, "data.terminalId"},
      {"shell.input", {{"data", "x"}}, "data.terminalId"},
      {"shell.input", {{"terminalId", id}}, "data.data"},
      {"shell.input", {{"terminalId", id}, {"data", 5}}, "data.data"},
      {"shell.kill", Json::object(), "data.terminalId"},
      {"shell.create", {{"cols", 0}}, "data.cols"},
      {"shell.create", {{"rows", 1001}}, "data.rows"},
      {"shell.create", {{"command", "/bin/sh"}}, "data.command"},
      {"shell.create", {{"command", {"/bin/sh", 5}}}, "data.command.1"},
      {"shell.create", {{"cwd", 5}}, "data.cwd"},
      {"shell.create", {{"subscribe", "yes"}}, "data.subscribe"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.type);
    CAPTURE(c.data.dump());
    auto reply = client->request(c.type, c.data);
    CHECK_MESSAGE(is_error(reply, "bad_message", c.field), brief(reply));
  }

  // Nothing was resized, created or killed.
  auto listed = list_terminals(*client);
  CHECK(listed.size() == 1);
  CHECK(listed[id]["cols"] == 80);
  CHECK(listed[id]["rows"] == 24);
  CHECK(listed[id]["state"] == "running");
  for (std::size_t i = from; i < client->history().size(); ++i) {
    CHECK(client->history()[i]["type"] != "shell.resized");
    CHECK(client->history()[i]["type"] != "shell.exit");
  }
  // The boundaries themselves are accepted.
  auto edge = client->request("shell.resize", {{"terminalId", id}, {"cols", 1000}, {"rows", 1}});
  REQUIRE(edge);
  CHECK((*edge)["type"] == "ack");
}

TEST_CASE("input, resize and kill to an exited terminal: conflict") {
  DaemonProcess daemon;
  REQUIRE(daemon.started());
  auto client = connect_user(daemon, "alice");
  Json terminal = client->create_terminal({{"command", sh("exit 0")}});
  const std::string id = terminal.value("id", "");
  auto exit = client->wait_exit(id, 10s);
  REQUIRE(exit);
  CHECK((*exit)["exitCode"] == 0);

  auto input = client->request_with_id("shell.input", {{"terminalId", id}, {"data", "x"}}, "c1");
  CHECK_MESSAGE(is_error(input, "conflict"), brief(input));
  CHECK(input->value("id", Json()) == "c1");
  auto resize = client->request("shell.resize", {{"terminalId", id}, {"cols", 100}, {"rows", 30}});
  CHECK_MESSAGE(is_error(resize, "conflict"), brief(resize));
  auto kill = client->request("shell.kill", {{"terminalId", id}});
  CHECK_MESSAGE(is_error(kill, "conflict"), brief(kill));
  // Schema still comes first.
  auto bad = client->request("shell.resize", {{"terminalId", id}, {"cols", 0}, {"rows", 30}});
  CHECK_MESSAGE(is_error(bad, "bad_message", "data.cols"), brief(bad));
}

TEST_CASE("a process that cannot start: bad_message with data.cwd or data.command, nothing created") {
  DaemonProcess daemon;
  REQUIRE(daemon.started());
  auto client = connect_user(daemon, "alice");

  auto cwd = client->create({{"cwd", (daemon.home() / "missing").string()}});
  CHECK_MESSAGE(is_error(cwd, "bad_message", "data.cwd"), brief(cwd));

  auto command = client->create({{"command", {"/nonexistent/program", "arg"}}});
  CHECK_MESSAGE(is_error(command, "bad_message", "data.command"), brief(command));

  auto not_in_path = client->create({{"command", {"ptyhub-no-such-command-xyz"}}});
  CHECK_MESSAGE(is_error(not_in_path, "bad_message", "data.command"), brief(not_in_path));

  const auto script = daemon.home() / "not-executable.sh";
  std::ofstream(script) << "#!/bin/sh\necho hi\n";
  ::chmod(script.c_str(), 0644);
  auto not_executable = client->create({{"command", {script.string()}}});
  CHECK_MESSAGE(is_error(not_executable, "bad_message", "data.command"), brief(not_executable));

  CHECK(list_terminals(*client).empty());
  // Relative commands are looked up in PATH.
  Json terminal = client->create_terminal({{"command", {"sh", "-c", "printf ok"}}});
  REQUIRE(client->wait_exit(terminal.value("id", ""), 10s));
  CHECK(client->output(terminal.value("id", "")).text == "ok");
}

TEST_CASE("utf8 output: a character split across writes arrives whole - invalid bytes become U+FFFD") {
  DaemonProcess daemon;
  REQUIRE(daemon.started());
  auto client = connect_user(daemon, "alice");

  SUBCASE("split character") {
    // The euro sign E2 82 AC, written as E2 82 then (later) AC.
    Json terminal = client->create_terminal({{"command", sh("printf '\\342\\202'; sleep 0.3; printf '\\254|'")}});
    const std::string id = terminal.value("id", "");
    auto exit = client->wait_exit(id, 10s);
    REQUIRE(exit);
    const TerminalOutput& output = client->output(id);
    CHECK(output.text == "\xe2\x82\xac|");
    CHECK(output.next == 4);
    CHECK((*exit)["outputBytes"] == 4);
    for (const Json& chunk : output.chunks) {
      CHECK(chunk["data"].get<std::string>().find("\xef\xbf\xbd") == std::string::npos);
    }
    check_stream_ok(*client, id);
  }
  SUBCASE("invalid byte") {
    Json terminal = client->create_terminal({{"command", sh("printf 'a\\377b'")}});
    const std::string id = terminal.value("id", "");
    auto exit = client->wait_exit(id, 10s);
    REQUIRE(exit);
    const TerminalOutput& output = client->output(id);
    CHECK(output.text == "a\xef\xbf\xbd" "b");
    CHECK(output.next == 3);  // raw bytes, not the replacement's three
    CHECK((*exit)["outputBytes"] == 3);
    check_stream_ok(*client, id);
  }
  SUBCASE("base64 keeps the raw bytes") {
    auto created = client->create({{"command", sh("read x; printf 'a\\377b'")}, {"subscribe", false}});
    REQUIRE(created);
    REQUIRE((*created)["type"] == "shell.created");
    const std::string id = (*created)["data"]["terminal"]["id"];
    auto subscribed = client->request("subscribe", {{"channel", channel_of(id)}, {"encoding", "base64"}});
    REQUIRE(subscribed);
    REQUIRE((*subscribed)["type"] == "subscribed");
    client->notify("shell.input", {{"terminalId", id}, {"data", "\n"}});
    auto exit = client->wait_exit(id, 10s);
    REQUIRE(exit);
    CHECK(client->output(id).text.find("a\xff" "b") != std::string::npos);
    CHECK(client->output(id).next == (*exit)["outputBytes"].get<std::uint64_t>());
  }
}

}  // namespace
}  // namespace ptyhub::test
