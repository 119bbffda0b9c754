// The daemon's HTTP endpoints (docs/protocol.md §1 Endpoints) and the envelope rules every request obeys
// (§3 Envelope): errors with `field`, echoed ids, acks, and the close codes for binary and oversized frames.
#include <doctest/doctest.h>

#include <cctype>

#include "tests/support/daemon_process.hpp"
#include "tests/support/test_client.hpp"

namespace ptyhub::test {
namespace {

std::string lowered(std::string text) {
  for (auto& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// Sends one raw text frame and returns the next message that is not shell output.
std::optional<Json> send_raw(TestClient& client, const std::string& text) {
  const std::size_t from = client.mark();
  client.ws().send_text(text);
  return client.wait_for(
      [](const Json& m) { return !(m.is_object() && m.value("type", "").rfind("shell.", 0) == 0); }, 5s, from);
}

TEST_CASE("http: healthz, readyz, metrics, web page and 404") {
  DaemonProcess daemon;
  INFO(daemon.log());
  REQUIRE(daemon.started());

  auto health = http_get(daemon.port(), "/healthz");
  REQUIRE(health);
  CHECK(health->status == 200);
  Json health_body = Json::parse(health->body, nullptr, false);
  CHECK(health_body == Json{{"status", "ok"}});

  auto ready = http_get(daemon.port(), "/readyz");
  REQUIRE(ready);
  CHECK(ready->status == 200);

  // Have one connection and one terminal so the gauges have something to show.
  auto client = connect_user(daemon, "alice");
  client->create_terminal({{"command", {"/bin/sh", "-c", "exec sleep 1000"}}});
  auto metrics = http_get(daemon.port(), "/metrics");
  REQUIRE(metrics);
  CHECK(metrics->status == 200);
  CHECK(metrics->body.find("ptyhub_connections") != std::string::npos);
  CHECK(metrics->body.find("ptyhub_terminals") != std::string::npos);
  CHECK(metrics->body.find("# TYPE ptyhub_") != std::string::npos);

  auto page = http_get(daemon.port(), "/");
  REQUIRE(page);
  CHECK(page->status == 200);
  CHECK(lowered(page->headers["content-type"]).find("text/html") != std::string::npos);
  CHECK(lowered(page->body).find("<html") != std::string::npos);

  auto missing = http_get(daemon.port(), "/nope");
  REQUIRE(missing);
  CHECK(missing->status == 404);

  // Security headers: on every answer; the page also gets its Content-Security-Policy.
  for (const auto* response : {&*health, &*page, &*missing}) {
    CHECK(response->status_line.rfind("HTTP/1.1 ", 0) == 0);
    CHECK(response->headers.at("x-content-type-options") == "nosniff");
    CHECK(response->headers.at("referrer-policy") == "no-referrer");
  }
  const std::string csp = page->headers["content-security-policy"];
  CHECK(csp.find("default-src 'none'") != std::string::npos);
  CHECK(csp.find("script-src 'self'") != std::string::npos);
  CHECK(csp.find("connect-src 'self'") != std::string::npos);
  CHECK(csp.find("frame-ancestors 'self'") != std::string::npos);
  CHECK(health->headers.count("content-security-policy") == 0);
}

TEST_CASE("http: frame_ancestors sets who may embed the page") {
  DaemonProcess daemon({"--frame-ancestors", "https://portal.example"});
  INFO(daemon.log());
  REQUIRE(daemon.started());
  auto page = http_get(daemon.port(), "/");
  REQUIRE(page);
  CHECK(page->headers["content-security-policy"].find("frame-ancestors https://portal.example") != std::string::npos);
}

TEST_CASE("ping answers pong and echoes string and integer ids") {
  DaemonProcess daemon;
  REQUIRE(daemon.started());
  auto client = connect_user(daemon, "alice");

  auto by_string = client->request_with_id("ping", Json::object(), "abc-1");
  REQUIRE(by_string);
  CHECK((*by_string)["type"] == "pong");
  CHECK((*by_string)["id"] == "abc-1");

  auto by_integer = client->request_with_id("ping", Json::object(), 4242);
  REQUIRE(by_integer);
  CHECK((*by_integer)["type"] == "pong");
  CHECK((*by_integer)["id"] == 4242);
  CHECK((*by_integer)["id"].is_number_integer());

  // `data` may be omitted.
  auto without_data = send_raw(*client, R"({"type":"ping","id":9})");
  REQUIRE(without_data);
  CHECK((*without_data)["type"] == "pong");
  CHECK((*without_data)["id"] == 9);

  // Unknown fields anywhere are ignored.
  auto extra = send_raw(*client, R"({"type":"ping","id":10,"extra":[1],"data":{"whatever":true}})");
  REQUIRE(extra);
  CHECK((*extra)["type"] == "pong");
  CHECK((*extra)["id"] == 10);
}

TEST_CASE("envelope errors: bad_json, bad_message with field, unknown_type - the connection stays usable") {
  DaemonProcess daemon;
  REQUIRE(daemon.started());
  auto client = connect_user(daemon, "alice");

  SUBCASE("not JSON") {
    auto reply = send_raw(*client, "{not json");
    CHECK_MESSAGE(is_error(reply, "bad_json"), brief(reply));
    CHECK_FALSE(reply->contains("id"));
  }
  SUBCASE("a JSON array") {
    auto reply = send_raw(*client, "[1,2,3]");
    CHECK_MESSAGE(is_error(reply, "bad_message"), brief(reply));
  }
  SUBCASE("a JSON string") {
    auto reply = send_raw(*client, R"("ping")");
    CHECK_MESSAGE(is_error(reply, "bad_message"), brief(reply));
  }
  SUBCASE("type missing") {
    auto reply = send_raw(*client, R"({"id":1,"data":{}})");
    CHECK_MESSAGE(is_error(reply, "bad_message", "type"), brief(reply));
    CHECK(reply->value("id", Json()) == 1);
  }
  SUBCASE("type not a string") {
    auto reply = send_raw(*client, R"({"type":5,"id":2})");
    CHECK_MESSAGE(is_error(reply, "bad_message", "type"), brief(reply));
    CHECK(reply->value("id", Json()) == 2);
  }
  SUBCASE("id of the wrong type") {
    auto object_id = send_raw(*client, R"({"type":"ping","id":{"a":1}})");
    CHECK_MESSAGE(is_error(object_id, "bad_message", "id"), brief(object_id));
    auto array_id = send_raw(*client, R"({"type":"ping","id":[1]})");
    CHECK_MESSAGE(is_error(array_id, "bad_message", "id"), brief(array_id));
  }
  SUBCASE("data not an object") {
    auto reply = send_raw(*client, R"({"type":"shell.list","id":3,"data":[]})");
    CHECK_MESSAGE(is_error(reply, "bad_message", "data"), brief(reply));
    CHECK(reply->value("id", Json()) == 3);
    auto string_data = send_raw(*client, R"({"type":"ping","id":4,"data":"x"})");
    CHECK_MESSAGE(is_error(string_data, "bad_message", "data"), brief(string_data));
  }
  SUBCASE("unknown type, with and without id") {
    auto reply = client->request_with_id("shell.frobnicate", Json::object(), "u1");
    CHECK_MESSAGE(is_error(reply, "unknown_type"), brief(reply));
    CHECK(reply->value("id", Json()) == "u1");
    auto no_id = send_raw(*client, R"({"type":"nope"})");
    CHECK_MESSAGE(is_error(no_id, "unknown_type"), brief(no_id));
    CHECK_FALSE(no_id->contains("id"));
  }

  auto pong = client->request("ping");
  REQUIRE(pong);
  CHECK((*pong)["type"] == "pong");
  CHECK_FALSE(client->ws().closed());
}

TEST_CASE("a fragmented text message is reassembled") {
  DaemonProcess daemon;
  REQUIRE(daemon.started());
  auto client = connect_user(daemon, "alice");
  const std::size_t from = client->mark();
  client->ws().send_text_fragments({R"({"type":"pi)", R"(ng","id)", R"(":77})"});
  auto pong = client->wait_event("pong", {}, 5s, from);
  REQUIRE(pong);
  CHECK((*pong)["id"] == 77);
}

TEST_CASE("a binary frame closes the connection with 1003") {
  DaemonProcess daemon;
  REQUIRE(daemon.started());
  auto client = connect_user(daemon, "alice");
  client->ws().send_binary(std::string("\x01\x02\x03", 3));
  CHECK(client->ws().wait_closed(5s));
  CHECK(client->ws().close_code() == 1003);
}

TEST_CASE("a message larger than max_message closes with 1009 - one below the limit is served") {
  DaemonProcess daemon({"--max-message", "64KiB"});
  INFO(daemon.log());
  REQUIRE(daemon.started());
  auto client = connect_user(daemon, "alice");

  // 60 KiB of ignored padding: below the limit, answered.
  auto padded = client->request("ping", {{"padding", std::string(60 * 1024, 'p')}});
  REQUIRE(padded);
  CHECK((*padded)["type"] == "pong");

  client->send({{"type", "ping"}, {"id", 1}, {"data", {{"padding", std::string(100 * 1024, 'p')}}}});
  CHECK(client->ws().wait_closed(5s));
  CHECK(client->ws().close_code() == 1009);

  // Before authentication too.
  WsClient anonymous;
  REQUIRE(anonymous.connect(daemon.ws_options()));
  anonymous.send_text(std::string(100 * 1024, ' ') + "{}");
  CHECK(anonymous.wait_closed(5s));
  CHECK(anonymous.close_code() == 1009);
}

TEST_CASE("a request without id gets no ack - with id it gets exactly one") {
  DaemonProcess daemon;
  REQUIRE(daemon.started());
  auto client = connect_user(daemon, "alice");
  Json terminal = client->create_terminal({{"command", {"/bin/sh", "-c", "exec cat >/dev/null"}}});
  REQUIRE(terminal.contains("id"));
  const std::string id = terminal["id"];

  const std::size_t from = client->mark();
  client->notify("shell.input", {{"terminalId", id}, {"data", "no ack please\n"}});
  client->notify("shell.resize", {{"terminalId", id}, {"cols", 90}, {"rows", 20}});
  auto pong = client->request_with_id("ping", Json::object(), "after");
  REQUIRE(pong);
  CHECK((*pong)["type"] == "pong");
  for (std::size_t i = from; i < client->history().size(); ++i) {
    const Json& message = client->history()[i];
    INFO(message.dump());
    CHECK(message["type"] != "ack");
    CHECK(message["type"] != "error");
  }

  auto ack = client->request_with_id("shell.input", {{"terminalId", id}, {"data", "x"}}, "in-1");
  REQUIRE(ack);
  CHECK((*ack)["type"] == "ack");
  CHECK((*ack)["id"] == "in-1");
}

}  // namespace
}  // namespace ptyhub::test
