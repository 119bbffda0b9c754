// The daemon's log as a machine reads it (docs/configuration.md, log_format): with --log-format json every
// line is one JSON object with time, level and message, audit lines carry their fields (event, user, peer,
// terminal, request), and no line holds a token, good or bad, whichever way it was presented.
#include <doctest/doctest.h>

#include <algorithm>
#include <csignal>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "auth/jwt.hpp"
#include "tests/support/daemon_process.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_client.hpp"

namespace ptyhub::test {
namespace {

std::int64_t now_seconds() { return static_cast<std::int64_t>(std::time(nullptr)); }

// Authenticates with an auth message; returns the reply (auth.ok or error).
std::optional<Json> auth_message(TestClient& client, const DaemonProcess& daemon, const std::string& token) {
  if (!client.connect(daemon.ws_options())) return std::nullopt;
  return client.request("auth", {{"token", token}});
}

// Connects with the token in the upgrade request (Authorization header or bearer.<jwt> subprotocol) and
// returns the first message: auth.ok or an error.
std::optional<Json> auth_upgrade(TestClient& client, const DaemonProcess& daemon, const std::string& token,
                                 bool in_header) {
  WsOptions options = daemon.ws_options();
  if (in_header) options.authorization = "Bearer " + token;
  else options.subprotocols = "ptyhub.v1, bearer." + token;
  if (!client.connect(options)) return std::nullopt;
  return client.wait_for([](const Json&) { return true; }, 5s);
}

bool is_type(const std::optional<Json>& message, std::string_view type) {
  return message && message->is_object() && message->value("type", "") == type;
}

// The JSON objects of a log, one a line; fails the test for each line that is not one.
std::vector<Json> parse_lines(const std::string& log) {
  std::vector<Json> objects;
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    const Json object = Json::parse(line, nullptr, false);
    CHECK_MESSAGE(!object.is_discarded(), "not JSON: ", line);
    CHECK_MESSAGE(object.is_object(), "not an object: ", line);
    if (!object.is_object()) continue;
    CHECK_MESSAGE(object.contains("time"), line);
    CHECK_MESSAGE(object.contains("level"), line);
    CHECK_MESSAGE(object.contains("message"), line);
    for (const auto& [key, value] : object.items()) CHECK_MESSAGE(value.is_string(), key, " in ", line);
    const std::string level = object.value("level", "");
    CHECK_MESSAGE((level == "error" || level == "warn" || level == "info" || level == "debug"), line);
    CHECK_MESSAGE(object.value("time", "").ends_with("Z"), line);
    objects.push_back(object);
  }
  return objects;
}

// The audit objects of `event`.
std::vector<Json> audits(const std::vector<Json>& objects, std::string_view event) {
  std::vector<Json> found;
  for (const Json& object : objects) {
    if (object.value("message", "") == "audit" && object.value("event", "") == event) found.push_back(object);
  }
  return found;
}

TEST_CASE("logs: log_format json - every line parses as JSON, no line holds a token") {
  DaemonProcess daemon({"--log-format", "json"});
  INFO(daemon.log());
  REQUIRE(daemon.started());

  const std::string good = daemon.token("alice");
  const std::string refreshed = daemon.token("alice", kUserScopes, 7200);
  const std::string in_header = daemon.token("carol");
  const std::string in_subprotocol = daemon.token("dave");
  const std::string nasty_user = "eve\" }{\"level\":\"error\n\t\\";
  const std::string nasty = daemon.token(nasty_user);
  const std::string expired = ptyhub::auth::mint_token(daemon.secret(), "alice", kUserScopes, now_seconds() - 7200, 3600);
  const std::string foreign = ptyhub::auth::mint_token("not-the-secret-of-this-daemon-at-all", "mallory", kUserScopes,
                                                       now_seconds(), 600);
  const std::string garbage = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJnYXJiYWdlLXVzZXIifQ.Z2FyYmFnZS1zaWduYXR1cmUtNDI";
  const std::string not_a_jwt = "opaque-secret-value-0123456789abcdef";

  TestClient alice;
  REQUIRE(is_type(auth_message(alice, daemon, good), "auth.ok"));
  {
    TestClient carol, dave, eve;
    CHECK(is_type(auth_upgrade(carol, daemon, in_header, true), "auth.ok"));
    CHECK(is_type(auth_upgrade(dave, daemon, in_subprotocol, false), "auth.ok"));
    CHECK(is_type(auth_message(eve, daemon, nasty), "auth.ok"));
  }
  for (const std::string* bad : {&expired, &foreign, &garbage, &not_a_jwt}) {
    TestClient by_message, by_header, by_subprotocol;
    CHECK(is_error(auth_message(by_message, daemon, *bad), "unauthenticated"));
    CHECK(is_error(auth_upgrade(by_header, daemon, *bad, true), "unauthenticated"));
    CHECK(is_error(auth_upgrade(by_subprotocol, daemon, *bad, false), "unauthenticated"));
  }
  CHECK(is_type(alice.request("auth", {{"token", refreshed}}), "auth.ok"));

  const Json terminal = alice.create_terminal();
  const std::string id = terminal.value("id", "");
  REQUIRE_FALSE(id.empty());
  CHECK(is_type(alice.request("shell.kill", {{"terminalId", id}, {"signal", "SIGKILL"}}), "ack"));
  REQUIRE(daemon.wait_for_log("\"message\":\"terminal exited\"", 5s));

  const auto status = daemon.stop(SIGTERM);
  REQUIRE(status);
  CHECK(WIFEXITED(*status));

  const std::string log = daemon.log();
  const std::vector<Json> objects = parse_lines(log);
  CHECK(objects.size() > 20);

  // The audit lines, with their fields.
  const std::vector<Json> ok = audits(objects, "auth.ok");
  CHECK(ok.size() == 4);
  for (const Json& line : ok) {
    CHECK(line.value("peer", "").starts_with("127.0.0.1"));
    CHECK_FALSE(line.value("scopes", "").empty());
  }
  const auto has_user = [](const std::vector<Json>& lines, const std::string& user) {
    return std::any_of(lines.begin(), lines.end(), [&](const Json& line) { return line.value("user", "") == user; });
  };
  CHECK(has_user(ok, "alice"));
  CHECK(has_user(ok, "carol"));
  CHECK(has_user(ok, "dave"));
  CHECK(has_user(ok, nasty_user));  // whole, as one field: the quotes and the newline forged nothing
  const std::vector<Json> failed = audits(objects, "auth.failed");
  CHECK(failed.size() == 12);
  for (const Json& line : failed) {
    CHECK(line.value("peer", "").starts_with("127.0.0.1"));
    CHECK(line.value("user", "x").empty());
    CHECK_FALSE(line.value("reason", "").empty());
  }
  const auto has_reason = [&](std::string_view reason) {
    return std::any_of(failed.begin(), failed.end(), [&](const Json& line) { return line.value("reason", "") == reason; });
  };
  CHECK(has_reason("token expired"));
  CHECK(has_reason("bad signature"));
  CHECK(has_reason("malformed token"));
  const std::vector<Json> refresh = audits(objects, "auth.refresh");
  REQUIRE(refresh.size() == 1);
  CHECK(refresh[0].value("user", "") == "alice");
  CHECK_FALSE(refresh[0].value("request", "").empty());
  const std::vector<Json> created = audits(objects, "terminal.created");
  REQUIRE(created.size() == 1);
  CHECK(created[0].value("terminal", "") == id);
  CHECK(created[0].value("user", "") == "alice");
  CHECK(created[0].value("peer", "").starts_with("127.0.0.1"));
  CHECK_FALSE(created[0].value("request", "").empty());
  const std::vector<Json> killed = audits(objects, "terminal.killed");
  REQUIRE(killed.size() == 1);
  CHECK(killed[0].value("terminal", "") == id);
  CHECK(killed[0].value("signal", "") == "SIGKILL");

  // The terminal's exit, and the connections' opening and closing.
  const auto with_message = [&](std::string_view message) {
    std::vector<Json> found;
    for (const Json& object : objects) {
      if (object.value("message", "") == message) found.push_back(object);
    }
    return found;
  };
  const std::vector<Json> exited = with_message("terminal exited");
  REQUIRE(exited.size() == 1);
  CHECK(exited[0].value("terminal", "") == id);
  CHECK(exited[0].value("user", "") == "alice");
  CHECK(exited[0].value("signal", "") == "SIGKILL");
  CHECK(with_message("connection opened").size() >= 4);
  CHECK_FALSE(with_message("connection closed").empty());
  CHECK_FALSE(with_message("ptyhubd stopped").empty());

  // No token, nor a piece of one, anywhere in the log.
  for (const std::string* token : {&good, &refreshed, &in_header, &in_subprotocol, &nasty, &expired, &foreign, &garbage}) {
    CHECK_MESSAGE(log.find(*token) == std::string::npos, *token);
    CHECK_MESSAGE(log.find(token->substr(token->rfind('.') + 1)) == std::string::npos, "the signature of ", *token);
    CHECK_MESSAGE(log.find(token->substr(token->find('.') + 1, 20)) == std::string::npos, "the claims of ", *token);
  }
  CHECK(log.find(not_a_jwt) == std::string::npos);
  CHECK_MESSAGE(daemon.sanitizer_findings().empty(), daemon.sanitizer_findings());
}

TEST_CASE("logs: SIGHUP applies a new log_format at once") {
  TempDir dir;
  REQUIRE_FALSE(dir.path().empty());
  const std::filesystem::path config = dir / "ptyhub.toml";
  std::ofstream(config) << "log_format = \"text\"\n";
  DaemonProcess daemon({"--config", config.string()});
  INFO(daemon.log());
  REQUIRE(daemon.started());
  CHECK(daemon.wait_for_log(" info ptyhubd ready\n", 5s));

  std::ofstream(config, std::ios::trunc) << "log_format = \"json\"\n";
  REQUIRE(daemon.send_signal(SIGHUP));
  REQUIRE(daemon.wait_for_log("\"level\":\"info\",\"message\":\"SIGHUP: settings reloaded: log_format\"}\n", 10s));
  TestClient alice;
  REQUIRE(alice.connect_as(daemon, "alice"));
  REQUIRE(daemon.wait_for_log("\"message\":\"audit\",\"event\":\"auth.ok\",\"user\":\"alice\"", 5s));
  CHECK_MESSAGE(daemon.sanitizer_findings().empty(), daemon.sanitizer_findings());
}

}  // namespace
}  // namespace ptyhub::test
