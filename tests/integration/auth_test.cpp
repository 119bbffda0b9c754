// Authentication (docs/protocol.md §2 Authentication): the three ways to present a token, what happens to bad
// or missing tokens (4401, 4408), what is allowed before authentication, and refresh.
#include <doctest/doctest.h>

#include <algorithm>
#include <ctime>

#include "auth/base64url.hpp"
#include "auth/jwt.hpp"
#include "tests/support/daemon_process.hpp"
#include "tests/support/test_client.hpp"

namespace ptyhub::test {
namespace {

std::int64_t now_seconds() { return static_cast<std::int64_t>(std::time(nullptr)); }

// A well-formed token signed with a secret the daemon does not know.
std::string foreign_token(std::string_view sub) {
  return ptyhub::auth::mint_token("not-the-daemon-secret", sub, kUserScopes, now_seconds(), 3600);
}

// Parses 2026-11-26T14:00:00.000Z into seconds since the epoch.
std::int64_t parse_iso_seconds(const std::string& text) {
  std::tm parts{};
  if (strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &parts) == nullptr) return 0;
  return static_cast<std::int64_t>(timegm(&parts));
}

// True when the client is authenticated as someone allowed to list terminals.
bool can_list(TestClient& client) {
  auto reply = client.request("shell.list");
  INFO("shell.list -> ", brief(reply));
  return reply && (*reply)["type"] == "shell.list";
}

// After a rejected token: an `error` (unauthenticated), then close 4401.
void expect_rejected(TestClient& client) {
  auto error = client.wait_event("error", {}, 5s);
  CHECK_MESSAGE(is_error(error, "unauthenticated"), brief(error));
  CHECK(client.ws().wait_closed(5s));
  CHECK(client.ws().close_code() == 4401);
}

TEST_CASE("auth by Authorization header") {
  DaemonProcess daemon;
  INFO(daemon.log());
  REQUIRE(daemon.started());
  TestClient client;
  WsOptions options = daemon.ws_options();
  options.authorization = "Bearer " + daemon.token("alice");
  REQUIRE(client.connect(options));
  CHECK(client.ws().accepted_subprotocol() == "ptyhub.v1");
  CHECK(can_list(client));
}

TEST_CASE("auth by subprotocol: the answer is ptyhub.v1 only") {
  DaemonProcess daemon;
  REQUIRE(daemon.started());
  TestClient client;
  WsOptions options = daemon.ws_options();
  options.subprotocols = "ptyhub.v1, bearer." + daemon.token("alice");
  REQUIRE(client.connect(options));
  CHECK(client.ws().accepted_subprotocol() == "ptyhub.v1");
  CHECK(can_list(client));
}

TEST_CASE("auth by first message: auth.ok carries user, scopes and expiresAt") {
  DaemonProcess daemon;
  REQUIRE(daemon.started());
  TestClient client;
  REQUIRE(client.connect(daemon.ws_options()));
  const std::int64_t ttl = 1800;
  const std::int64_t before = now_seconds();
  auto ok = client.request_with_id("auth", {{"token", daemon.token("alice", kUserScopes, ttl)}}, "a1");
  REQUIRE(ok);
  INFO(brief(ok));
  CHECK((*ok)["type"] == "auth.ok");
  CHECK((*ok)["id"] == "a1");
  const Json& data = (*ok)["data"];
  CHECK(data["user"] == "alice");
  REQUIRE(data["scopes"].is_array());
  for (const char* scope : {"terminal:create", "terminal:read", "terminal:write"}) {
    CHECK(std::find(data["scopes"].begin(), data["scopes"].end(), Json(scope)) != data["scopes"].end());
  }
  CHECK(is_iso_millis(data["expiresAt"]));
  if (data["expiresAt"].is_string()) {
    const std::int64_t expires = parse_iso_seconds(data["expiresAt"]);
    CHECK(expires >= before + ttl - 2);
    CHECK(expires <= now_seconds() + ttl + 2);
  }
  CHECK(can_list(client));
}

TEST_CASE("scopes from an `scp` array claim") {
  DaemonProcess daemon;
  REQUIRE(daemon.started());
  const std::int64_t now = now_seconds();
  Json payload = {{"sub", "bob"}, {"scp", {"terminal:read"}}, {"iat", now}, {"exp", now + 600}};
  std::string token = ptyhub::auth::sign_jwt(ptyhub::auth::HmacAlgorithm::hs256, daemon.secret(),
                                             R"({"alg":"HS256","typ":"JWT"})", payload.dump());
  TestClient client;
  REQUIRE(client.connect(daemon.ws_options()));
  auto ok = client.request("auth", {{"token", token}});
  REQUIRE(ok);
  INFO(brief(ok));
  CHECK((*ok)["type"] == "auth.ok");
  CHECK((*ok)["data"]["user"] == "bob");
  CHECK((*ok)["data"]["scopes"] == Json{"terminal:read"});
  CHECK(can_list(client));
  auto create = client.create();
  CHECK_MESSAGE(is_error(create, "forbidden"), brief(create));
}

TEST_CASE("a bad token on the upgrade: error unauthenticated, then close 4401") {
  DaemonProcess daemon;
  REQUIRE(daemon.started());
  SUBCASE("in the Authorization header") {
    TestClient client;
    WsOptions options = daemon.ws_options();
    options.authorization = "Bearer " + foreign_token("alice");
    REQUIRE(client.connect(options));  // the upgrade itself is not refused
    expect_rejected(client);
  }
  SUBCASE("in the subprotocol") {
    TestClient client;
    WsOptions options = daemon.ws_options();
    options.subprotocols = "ptyhub.v1, bearer." + foreign_token("alice");
    REQUIRE(client.connect(options));
    CHECK(client.ws().accepted_subprotocol() == "ptyhub.v1");
    expect_rejected(client);
  }
  SUBCASE("an expired token in the header") {
    TestClient client;
    WsOptions options = daemon.ws_options();
    options.authorization = "Bearer " + daemon.token("alice", kUserScopes, -3600);
    REQUIRE(client.connect(options));
    expect_rejected(client);
  }
}

TEST_CASE("a bad auth message: error unauthenticated, then close 4401") {
  DaemonProcess daemon;
  REQUIRE(daemon.started());
  TestClient client;
  REQUIRE(client.connect(daemon.ws_options()));
  std::string token;
  SUBCASE("wrong secret") { token = foreign_token("alice"); }
  SUBCASE("expired") { token = daemon.token("alice", kUserScopes, -3600); }
  SUBCASE("garbage") { token = "not.a.jwt"; }
  SUBCASE("empty, like an empty Authorization: Bearer") { token = ""; }
  SUBCASE("alg none") {
    const std::int64_t now = now_seconds();
    Json payload = {{"sub", "alice"}, {"scope", kUserScopes}, {"iat", now}, {"exp", now + 600}};
    token = ptyhub::auth::base64url_encode(R"({"alg":"none","typ":"JWT"})") + "." +
            ptyhub::auth::base64url_encode(payload.dump()) + ".";
  }
  CAPTURE(token);
  client.send({{"type", "auth"}, {"id", 1}, {"data", {{"token", token}}}});
  expect_rejected(client);
}

TEST_CASE("no token within auth_timeout: close 4408") {
  DaemonProcess daemon({"--auth-timeout", "0.5"});
  INFO(daemon.log());
  REQUIRE(daemon.started());
  TestClient client;
  REQUIRE(client.connect(daemon.ws_options()));
  // ping is answered before authentication but does not extend the timeout.
  auto pong = client.request("ping");
  REQUIRE(pong);
  CHECK((*pong)["type"] == "pong");
  const auto start = std::chrono::steady_clock::now();
  CHECK(client.ws().wait_closed(5s));
  CHECK(client.ws().close_code() == 4408);
  CHECK(std::chrono::steady_clock::now() - start < 3s);
}

TEST_CASE("an authenticated connection outlives auth_timeout") {
  DaemonProcess daemon({"--auth-timeout", "0.5"});
  REQUIRE(daemon.started());
  auto client = connect_user(daemon, "alice");
  client->drain(1200ms);
  CHECK_FALSE(client->ws().closed());
  CHECK(can_list(*client));
}

TEST_CASE("before auth only auth and ping are accepted - the rest has no effect") {
  DaemonProcess daemon;
  REQUIRE(daemon.started());
  TestClient client;
  REQUIRE(client.connect(daemon.ws_options()));

  auto list = client.request_with_id("shell.list", Json::object(), "l1");
  CHECK_MESSAGE(is_error(list, "unauthenticated"), brief(list));
  CHECK(list->value("id", Json()) == "l1");
  auto create = client.request("shell.create", {{"command", {"/bin/sh", "-c", "exec sleep 1000"}}});
  CHECK_MESSAGE(is_error(create, "unauthenticated"), brief(create));
  auto subscribe = client.request("subscribe", {{"channel", "shell:terminals"}});
  CHECK_MESSAGE(is_error(subscribe, "unauthenticated"), brief(subscribe));

  auto pong = client.request("ping");
  REQUIRE(pong);
  CHECK((*pong)["type"] == "pong");
  CHECK_FALSE(client.ws().closed());

  auto ok = client.request("auth", {{"token", daemon.token("alice")}});
  REQUIRE(ok);
  CHECK((*ok)["type"] == "auth.ok");
  auto after = client.request("shell.list");
  REQUIRE(after);
  REQUIRE((*after)["type"] == "shell.list");
  CHECK((*after)["data"]["terminals"].empty());  // the early shell.create created nothing
}

TEST_CASE("a token in the URL query is not accepted") {
  DaemonProcess daemon;
  REQUIRE(daemon.started());
  TestClient client;
  WsOptions options = daemon.ws_options();
  options.path = "/ws?token=" + daemon.token("alice");
  if (!client.connect(options)) return;  // refusing the upgrade is fine too
  auto list = client.request("shell.list");
  CHECK_MESSAGE(is_error(list, "unauthenticated"), brief(list));
}

TEST_CASE("refresh: auth again with the same sub is fine - another sub is forbidden and changes nothing") {
  DaemonProcess daemon;
  REQUIRE(daemon.started());
  auto client = connect_user(daemon, "alice");

  auto refreshed = client->request("auth", {{"token", daemon.token("alice", kUserScopes, 7200)}});
  REQUIRE(refreshed);
  CHECK((*refreshed)["type"] == "auth.ok");
  CHECK((*refreshed)["data"]["user"] == "alice");

  auto other = client->request_with_id("auth", {{"token", daemon.token("mallory")}}, "r2");
  CHECK_MESSAGE(is_error(other, "forbidden"), brief(other));
  CHECK(other->value("id", Json()) == "r2");
  CHECK_FALSE(client->ws().closed());

  Json terminal = client->create_terminal({{"command", {"/bin/sh", "-c", "exec sleep 1000"}}});
  CHECK(terminal.value("owner", "") == "alice");
}

TEST_CASE("a connection whose token expires without refresh is closed with 4401") {
  DaemonProcess daemon({"--jwt-leeway", "0"});
  INFO(daemon.log());
  REQUIRE(daemon.started());
  TestClient client;
  REQUIRE(client.connect(daemon.ws_options()));
  auto ok = client.request("auth", {{"token", daemon.token("alice", kUserScopes, 2)}});
  REQUIRE(ok);
  REQUIRE((*ok)["type"] == "auth.ok");
  CHECK(client.ws().wait_closed(6s));
  CHECK(client.ws().close_code() == 4401);
}

TEST_CASE("origin check: a foreign Origin is refused with 403 - same origin, configured origins and no Origin pass") {
  DaemonProcess daemon({"--allowed-origin", "https://app.example"});
  INFO(daemon.log());
  REQUIRE(daemon.started());
  const std::string token = daemon.token("alice");
  auto attempt = [&](std::optional<std::string> origin) {
    auto client = std::make_unique<WsClient>();
    WsOptions options = daemon.ws_options();
    options.origin = std::move(origin);
    options.authorization = "Bearer " + token;
    client->connect(options);
    return client;
  };

  auto foreign = attempt("http://evil.example");
  CHECK_FALSE(foreign->established());
  CHECK(foreign->http_status_on_failure() == 403);

  auto other_port = attempt("http://127.0.0.1:" + std::to_string(daemon.port() + 1));
  CHECK_FALSE(other_port->established());
  CHECK(other_port->http_status_on_failure() == 403);

  CHECK(attempt("http://127.0.0.1:" + std::to_string(daemon.port()))->established());
  CHECK(attempt("https://app.example")->established());
  CHECK(attempt(std::nullopt)->established());
}

TEST_CASE("refused upgrades are answered HTTP/1.1 with a reason - 403 Origin, 404 path, 400 subprotocol") {
  DaemonProcess daemon({"--allowed-origin", "https://app.example"});
  INFO(daemon.log());
  REQUIRE(daemon.started());
  const auto upgrade = [&](std::string_view path, std::string_view extra) {
    return "GET " + std::string(path) + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(daemon.port()) +
           "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           "Sec-WebSocket-Version: 13\r\n" + std::string(extra) + "\r\n";
  };
  struct Case {
    const char* name;
    std::string request;
    int status;
    const char* status_line;
    const char* error;
  };
  const std::vector<Case> cases = {
      {"foreign Origin", upgrade("/ws", "Sec-WebSocket-Protocol: ptyhub.v1\r\nOrigin: http://evil.example\r\n"), 403,
       "HTTP/1.1 403 Forbidden", "forbidden"},
      {"another path", upgrade("/elsewhere", "Sec-WebSocket-Protocol: ptyhub.v1\r\n"), 404, "HTTP/1.1 404 Not Found",
       "not_found"},
      {"no subprotocol", upgrade("/ws", ""), 400, "HTTP/1.1 400 Bad Request", "bad_request"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    auto response = http_exchange(daemon.port(), c.request);
    REQUIRE(response);
    CHECK(response->status == c.status);
    CHECK(response->status_line == c.status_line);
    CHECK(response->headers["connection"] == "close");
    CHECK(response->headers["content-length"] == std::to_string(response->body.size()));
    const Json body = Json::parse(response->body, nullptr, false);
    CHECK(body.value("error", "") == c.error);
    CHECK_FALSE(body.value("message", "").empty());
  }
  CHECK(daemon.running());
}

TEST_CASE("a refused Origin is logged quoted and at most once a second - plain HTTP with Connection: close logs no warning") {
  DaemonProcess daemon;
  INFO(daemon.log());
  REQUIRE(daemon.started());
  const std::string request = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(daemon.port()) +
                              "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ptyhub.v1\r\n"
                              "Origin: http://ev\"il.example x=1\r\n\r\n";
  constexpr int kAttempts = 30;
  for (int i = 0; i < kAttempts; ++i) {
    auto response = http_exchange(daemon.port(), request);
    REQUIRE(response);
    CHECK(response->status == 403);
  }
  REQUIRE(daemon.wait_for_log("refused a WebSocket upgrade from a foreign Origin", 5s));
  const std::string log = daemon.log();
  CHECK(log.find(R"(origin="http://ev\"il.example x=1")") != std::string::npos);
  size_t lines = 0;
  for (size_t at = log.find("refused a WebSocket upgrade"); at != std::string::npos;
       at = log.find("refused a WebSocket upgrade", at + 1)) {
    ++lines;
  }
  CHECK(lines < static_cast<size_t>(kAttempts));

  for (int i = 0; i < 3; ++i) {
    auto health = http_get(daemon.port(), "/healthz");  // sends Connection: close
    REQUIRE(health);
    CHECK(health->status == 200);
  }
  CHECK(daemon.log().find("could not hand a connection") == std::string::npos);
}

}  // namespace
}  // namespace ptyhub::test
