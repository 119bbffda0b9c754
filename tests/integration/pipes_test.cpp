// stdio "pipes" (docs/protocol.md §4 `shell.create`, `shell.input`): a command without a PTY. Bytes pass
// unchanged both ways, `shell.input {eof: true}` is the command's end of input, offsets, resume and the
// exit after the last byte are those of any terminal; a PTY refuses eof, a pipes terminal refuses a size.
#include <doctest/doctest.h>

#include <string>

#include "src/protocol/base64.hpp"
#include "tests/support/daemon_process.hpp"
#include "tests/support/test_client.hpp"

namespace ptyhub::test {
namespace {

// A pipes terminal running `command`, not subscribed; its id.
std::string create_pipes(TestClient& client, const Json& command) {
  const auto created = client.create({{"command", command}, {"stdio", "pipes"}, {"subscribe", false}});
  if (!created || created->value("type", "") != "shell.created") return "";
  return (*created)["data"]["terminal"].value("id", "");
}

TEST_CASE("stdio pipes: lines counted exactly, no echo, no CR - end of input reaches the command") {
  DaemonProcess daemon;
  INFO(daemon.log());
  REQUIRE(daemon.started());
  auto client = connect_user(daemon, "alice");
  const auto created = client->create({{"command", {"wc", "-l"}}, {"stdio", "pipes"}});
  REQUIRE(created);
  REQUIRE_MESSAGE(created->value("type", "") == "shell.created", brief(created));
  const Json terminal = (*created)["data"]["terminal"];
  CHECK(terminal.value("stdio", "") == "pipes");
  const std::string id = terminal.value("id", "");
  std::string lines;
  for (int i = 1; i <= 100000; ++i) lines += std::to_string(i) + "\n";
  for (size_t at = 0; at < lines.size(); at += 60000) {
    REQUIRE(client->request("shell.input", {{"terminalId", id}, {"data", lines.substr(at, 60000)}}));
  }
  // Until the end of input, wc waits; then it prints its count and exits.
  const auto ended = client->request("shell.input", {{"terminalId", id}, {"eof", true}});
  REQUIRE(ended);
  CHECK(ended->value("type", "") == "ack");
  const auto exit = client->wait_exit(id, 10s);
  REQUIRE(exit);
  CHECK(exit->value("exitCode", -1) == 0);
  CHECK(client->output(id).text == "100000\n");
  CHECK(client->output(id).problems.empty());
  // Nothing more is accepted after the end of input (here: after the exit).
  CHECK(is_error(client->request("shell.input", {{"terminalId", id}, {"data", "late\n"}}), "conflict"));
  CHECK_MESSAGE(daemon.sanitizer_findings().empty(), daemon.sanitizer_findings());
}

TEST_CASE("stdio pipes: 1 MiB of every byte value through cat comes back identical, with resume by offset") {
  DaemonProcess daemon;
  INFO(daemon.log());
  REQUIRE(daemon.started());
  auto client = connect_user(daemon, "alice");
  const std::string id = create_pipes(*client, {"cat"});
  REQUIRE(!id.empty());
  REQUIRE(client->request("subscribe", {{"channel", "shell:terminal:" + id}, {"since", 0}, {"encoding", "base64"}}));
  std::string sent;
  for (size_t i = 0; sent.size() < (1u << 20); ++i) sent.push_back(static_cast<char>((i * 7 + i / 256) & 0xff));
  for (size_t at = 0; at < sent.size(); at += 48 * 1024) {
    const std::string piece = sent.substr(at, 48 * 1024);
    const auto ack = client->request("shell.input", {{"terminalId", id}, {"data", protocol::base64_encode(piece)}, {"encoding", "base64"}}, 10s);
    REQUIRE(ack);
    REQUIRE_MESSAGE(ack->value("type", "") == "ack", brief(ack));
  }
  REQUIRE(client->request("shell.input", {{"terminalId", id}, {"eof", true}}));
  const auto exit = client->wait_exit(id, 20s);
  REQUIRE(exit);
  CHECK(exit->value("exitCode", -1) == 0);
  const TerminalOutput& out = client->output(id);
  CHECK(out.text.size() == sent.size());
  CHECK(out.text == sent);
  CHECK(out.gaps.empty());
  CHECK(out.next == sent.size());
  // A second client resumes in the middle and gets exactly the rest.
  auto late = connect_user(daemon, "alice");
  REQUIRE(late->request("subscribe", {{"channel", "shell:terminal:" + id}, {"since", 700000}, {"encoding", "base64"}}));
  REQUIRE(late->wait_exit(id, 10s));
  CHECK(late->output(id).first_offset == std::optional<uint64_t>(700000));
  CHECK(late->output(id).text == sent.substr(700000));
  CHECK_MESSAGE(daemon.sanitizer_findings().empty(), daemon.sanitizer_findings());
}

TEST_CASE("stdio pipes: eof on a PTY, a size for pipes, a resize of pipes and an unknown stdio are refused and change nothing") {
  DaemonProcess daemon;
  INFO(daemon.log());
  REQUIRE(daemon.started());
  auto client = connect_user(daemon, "alice");
  const std::string pty = client->create_terminal({{"command", {"/bin/sh"}}}).value("id", "");
  REQUIRE(!pty.empty());
  CHECK(is_error(client->request("shell.input", {{"terminalId", pty}, {"data", "echo no\n"}, {"eof", true}}), "bad_message", "data.eof"));
  CHECK(is_error(client->request("shell.input", {{"terminalId", pty}}), "bad_message", "data.data"));
  REQUIRE(client->request("shell.input", {{"terminalId", pty}, {"data", "echo still-$((6*7))\n"}}));
  CHECK(client->wait_output(pty, "still-42"));
  CHECK(client->output(pty).text.find("no\r\n") == std::string::npos);  // the refused input was not written

  CHECK(is_error(client->create({{"command", {"cat"}}, {"stdio", "pipes"}, {"cols", 100}}), "bad_message", "data.cols"));
  CHECK(is_error(client->create({{"command", {"cat"}}, {"stdio", "socket"}}), "bad_message", "data.stdio"));
  const std::string pipes = create_pipes(*client, {"cat"});
  REQUIRE(!pipes.empty());
  CHECK(is_error(client->request("shell.resize", {{"terminalId", pipes}, {"cols", 100}, {"rows", 30}}), "conflict", "data.terminalId"));
  REQUIRE(client->request("subscribe", {{"channel", "shell:terminal:" + pipes}, {"since", 0}}));
  // `sh -c` reads nothing before the gate: the input ended while it still runs refuses more.
  const std::string gated = create_pipes(*client, {"/bin/sh", "-c", "read line; echo got-$line; sleep 60"});
  REQUIRE(!gated.empty());
  REQUIRE(client->request("subscribe", {{"channel", "shell:terminal:" + gated}, {"since", 0}}));
  REQUIRE(client->request("shell.input", {{"terminalId", gated}, {"data", "one\n"}, {"eof", true}}));
  REQUIRE(client->wait_output(gated, "got-one\n"));
  CHECK(is_error(client->request("shell.input", {{"terminalId", gated}, {"data", "two\n"}}), "conflict", "data.terminalId"));
  CHECK(is_error(client->request("shell.input", {{"terminalId", gated}, {"eof", true}}), "conflict", "data.terminalId"));
  REQUIRE(client->request("shell.kill", {{"terminalId", gated}, {"signal", "SIGKILL"}}));
  REQUIRE(client->wait_exit(gated, 10s));
  REQUIRE(client->request("shell.input", {{"terminalId", pipes}, {"data", "tail\n"}, {"eof", true}}));
  const auto exit = client->wait_exit(pipes, 10s);
  REQUIRE(exit);
  CHECK(exit->value("exitCode", -1) == 0);
  CHECK(client->output(pipes).text == "tail\n");
  CHECK_MESSAGE(daemon.sanitizer_findings().empty(), daemon.sanitizer_findings());
}

}  // namespace
}  // namespace ptyhub::test
