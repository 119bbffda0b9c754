// Tests of src/server/request_head: finding the end of a request head, and moving a `bearer.<jwt>`
// subprotocol entry into an `Authorization: Bearer` header (docs/protocol.md §2 Authentication: the header
// wins).
#include "src/server/request_head.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ptyhub::server {
namespace {

constexpr std::string_view kRequestLine = "GET /ws?view=compact HTTP/1.1";

// Headers every upgrade request in these tests carries, besides the ones a case adds.
const std::vector<std::string>& common_headers() {
  static const std::vector<std::string> headers = {
      "Host: 127.0.0.1:7700",
      "Upgrade: websocket",
      "Connection: Upgrade",
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
      "Sec-WebSocket-Version: 13",
      "Origin: http://127.0.0.1:7700",
      "User-Agent: test/1.0 (X11; Linux x86_64)",
  };
  return headers;
}

// A request head: the request line, the common headers with `extra` mixed in, and the blank line.
std::string make_head(const std::vector<std::string>& extra) {
  std::string head(kRequestLine);
  head += "\r\n";
  const std::vector<std::string>& common = common_headers();
  // Put the extra headers in the middle so that they are neither first nor last.
  for (size_t i = 0; i < common.size(); ++i) {
    if (i == 3) {
      for (const std::string& line : extra) head += line + "\r\n";
    }
    head += common[i] + "\r\n";
  }
  head += "\r\n";
  return head;
}

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

struct ParsedHead {
  std::string request_line;
  std::vector<std::string> lines;                            // header lines as written
  std::vector<std::pair<std::string, std::string>> fields;   // lower-case name, trimmed value
};

// Splits a head that must end with exactly one blank line.
ParsedHead parse_head(std::string_view head) {
  ParsedHead parsed;
  REQUIRE(head.ends_with("\r\n\r\n"));
  CHECK(head.find("\r\n\r\n") == head.size() - 4);
  std::string_view rest = head.substr(0, head.size() - 2);
  bool first = true;
  while (!rest.empty()) {
    const size_t end = rest.find("\r\n");
    REQUIRE(end != std::string_view::npos);
    const std::string_view line = rest.substr(0, end);
    rest.remove_prefix(end + 2);
    if (first) {
      parsed.request_line = line;
      first = false;
      continue;
    }
    const size_t colon = line.find(':');
    REQUIRE(colon != std::string_view::npos);
    parsed.lines.emplace_back(line);
    parsed.fields.emplace_back(lower(trim(line.substr(0, colon))), std::string(trim(line.substr(colon + 1))));
  }
  return parsed;
}

std::vector<std::string> values_of(const ParsedHead& head, std::string_view name) {
  std::vector<std::string> out;
  for (const auto& [field, value] : head.fields) {
    if (field == name) out.push_back(value);
  }
  return out;
}

struct RewriteCase {
  const char* name;
  std::vector<std::string> extra;                // headers added to the common ones
  std::optional<std::string> protocol;           // Sec-WebSocket-Protocol afterwards; nullopt: no header
  std::string authorization;                     // the one Authorization value afterwards
};

TEST_CASE("a bearer subprotocol entry moves into an Authorization header") {
  const std::string jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln-_x";
  const std::vector<RewriteCase> cases = {
      {"token after ptyhub.v1", {"Sec-WebSocket-Protocol: ptyhub.v1, bearer.TOKEN"}, "ptyhub.v1", "Bearer TOKEN"},
      {"token before ptyhub.v1", {"Sec-WebSocket-Protocol: bearer.T, ptyhub.v1"}, "ptyhub.v1", "Bearer T"},
      {"lower-case header name", {"sec-websocket-protocol: ptyhub.v1, bearer.T"}, "ptyhub.v1", "Bearer T"},
      {"upper-case name, no spaces", {"SEC-WEBSOCKET-PROTOCOL:ptyhub.v1,bearer.T"}, "ptyhub.v1", "Bearer T"},
      {"extra whitespace", {"Sec-WebSocket-Protocol:   bearer.T  ,\tptyhub.v1  "}, "ptyhub.v1", "Bearer T"},
      {"other protocols kept in order",
       {"Sec-WebSocket-Protocol: ptyhub.v1, bearer.T, chat"},
       "ptyhub.v1, chat",
       "Bearer T"},
      {"only the bearer entry", {"Sec-WebSocket-Protocol: bearer.T"}, std::nullopt, "Bearer T"},
      {"a real JWT", {"Sec-WebSocket-Protocol: ptyhub.v1, bearer." + jwt}, "ptyhub.v1", "Bearer " + jwt},
      {"existing Authorization before",
       {"Authorization: Bearer HEADER", "Sec-WebSocket-Protocol: ptyhub.v1, bearer.SUBPROTOCOL"},
       "ptyhub.v1",
       "Bearer HEADER"},
      {"existing authorization after, lower case",
       {"Sec-WebSocket-Protocol: ptyhub.v1, bearer.SUBPROTOCOL", "authorization: Bearer HEADER"},
       "ptyhub.v1",
       "Bearer HEADER"},
      {"existing Basic authorization, only bearer entry",
       {"AUTHORIZATION: Basic dXNlcjpwdw==", "Sec-WebSocket-Protocol: bearer.SUBPROTOCOL"},
       std::nullopt,
       "Basic dXNlcjpwdw=="},
  };
  for (const RewriteCase& c : cases) {
    CAPTURE(c.name);
    const std::string head = make_head(c.extra);
    const std::string out = server::move_bearer_subprotocol(head);
    CAPTURE(out);
    const ParsedHead parsed = parse_head(out);
    CHECK(parsed.request_line == kRequestLine);
    // The common headers are all there, byte for byte and in their order.
    std::vector<std::string> common_seen;
    for (const std::string& line : parsed.lines) {
      if (std::find(common_headers().begin(), common_headers().end(), line) != common_headers().end()) {
        common_seen.push_back(line);
      }
    }
    CHECK(common_seen == common_headers());
    const std::vector<std::string> protocols = values_of(parsed, "sec-websocket-protocol");
    if (c.protocol) {
      CHECK(protocols == std::vector<std::string>{*c.protocol});
    } else {
      CHECK(protocols.empty());
    }
    CHECK(values_of(parsed, "authorization") == std::vector<std::string>{c.authorization});
    CHECK(out.find("bearer.") == std::string::npos);
    CHECK(out.find("SUBPROTOCOL") == std::string::npos);
    // Nothing else appears: common headers, at most one protocol header and one Authorization.
    CHECK(parsed.lines.size() == common_headers().size() + protocols.size() + 1);
  }
}

TEST_CASE("a head without a bearer entry is returned byte for byte") {
  const std::vector<std::vector<std::string>> cases = {
      {},
      {"Sec-WebSocket-Protocol: ptyhub.v1"},
      {"sec-websocket-protocol:ptyhub.v1 ,  chat"},
      {"Authorization: Bearer HEADER", "Sec-WebSocket-Protocol: ptyhub.v1"},
      {"X-Note: bearer.not-a-subprotocol"},
      {"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"},
  };
  for (const std::vector<std::string>& extra : cases) {
    const std::string head = make_head(extra);
    CAPTURE(head);
    CHECK(server::move_bearer_subprotocol(head) == head);
  }
}

TEST_CASE("a 10 KiB token is moved whole") {
  std::string token;
  const std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";
  for (size_t i = 0; i < 10 * 1024; ++i) token += alphabet[i % alphabet.size()];
  const std::string head = make_head({"Sec-WebSocket-Protocol: ptyhub.v1, bearer." + token});
  const std::string out = server::move_bearer_subprotocol(head);
  const ParsedHead parsed = parse_head(out);
  CHECK(parsed.request_line == kRequestLine);
  CHECK(values_of(parsed, "sec-websocket-protocol") == std::vector<std::string>{"ptyhub.v1"});
  const std::vector<std::string> authorization = values_of(parsed, "authorization");
  REQUIRE(authorization.size() == 1);
  CHECK(authorization[0].size() == token.size() + 7);
  CHECK(authorization[0] == "Bearer " + token);
}

TEST_CASE("the rewritten head is found complete by request_head_length") {
  const std::string head = make_head({"Sec-WebSocket-Protocol: bearer.T, ptyhub.v1"});
  const std::string out = server::move_bearer_subprotocol(head);
  CHECK(request_head_length(out) == out.size());
}

TEST_CASE("request_head_length: nullopt until the blank line, then the head's length only") {
  const std::string head = make_head({"Sec-WebSocket-Protocol: ptyhub.v1"});
  struct Case {
    std::string bytes;
    std::optional<size_t> expected;
  };
  const std::vector<Case> cases = {
      {"", std::nullopt},
      {"GET", std::nullopt},
      {"GET /ws HTTP/1.1\r\n", std::nullopt},
      {"GET /ws HTTP/1.1\r\nHost: a\r\n", std::nullopt},
      {"GET /ws HTTP/1.1\r\nHost: a\r\n\r", std::nullopt},
      {head.substr(0, head.size() - 1), std::nullopt},
      {"\r\n\r\n", 4},
      {"GET /ws HTTP/1.1\r\nHost: a\r\n\r\n", 29},
      {head, head.size()},
      {head + "body bytes", head.size()},
      {head + "\r\n\r\n", head.size()},
      {head + head, head.size()},
  };
  for (const Case& c : cases) {
    CAPTURE(c.bytes);
    CHECK(request_head_length(c.bytes) == c.expected);
  }
}

TEST_CASE("request_head_length at every split of a head") {
  const std::string head = make_head({"Sec-WebSocket-Protocol: ptyhub.v1, bearer.T"});
  for (size_t n = 0; n < head.size(); ++n) {
    CAPTURE(n);
    CHECK_FALSE(request_head_length(std::string_view(head).substr(0, n)).has_value());
  }
  CHECK(request_head_length(head) == head.size());
}

TEST_CASE("prepare_head: Host goes last, so no header name lws half-knows ends the head") {
  const PreparedHead prepared = prepare_head(make_head({"X-A: b"}));
  REQUIRE(prepared.status == 0);
  CHECK(prepared.head.ends_with("\r\nHost: 127.0.0.1:7700\r\n\r\n"));
  CHECK(prepared.head.find("X-A: b\r\n") != std::string::npos);
  CHECK(prepared.head.starts_with(std::string(kRequestLine) + "\r\n"));
}

TEST_CASE("prepare_head: the bearer subprotocol still moves into Authorization") {
  const PreparedHead prepared = prepare_head(make_head({"Sec-WebSocket-Protocol: ptyhub.v1, bearer.abc.def.ghi"}));
  REQUIRE(prepared.status == 0);
  CHECK(prepared.head.find("Authorization: Bearer abc.def.ghi\r\n") != std::string::npos);
  CHECK(prepared.head.find("bearer.") == std::string::npos);
}

TEST_CASE("prepare_head: malformed or oversized heads are answered at once") {
  struct Case {
    std::string head;
    int status;
  };
  const std::string big(kMaxHeaderLine, 'a');
  std::vector<std::string> many;
  for (int i = 0; i < 10; ++i) many.push_back("X-Filler-" + std::to_string(i) + ": " + std::string(1500, 'b'));
  const std::vector<Case> cases = {
      {make_head({"X-Big: " + big}), 431},
      {make_head(many), 431},
      {make_head({"no colon here"}), 400},
      {make_head({": no name"}), 400},
      {make_head({"Bad Name: x"}), 400},
      {make_head({" folded"}), 400},
      {make_head({"Host: second.example"}), 400},
      {"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", 400},
      {"GARBAGE\r\nHost: x\r\n\r\n", 400},
      {"GET / SPDY/3\r\nHost: x\r\n\r\n", 400},
  };
  for (const Case& c : cases) {
    CAPTURE(c.head.substr(0, 120));
    const PreparedHead prepared = prepare_head(c.head);
    CHECK(prepared.status == c.status);
    CHECK_FALSE(prepared.reason.empty());
  }
  CHECK(prepare_head(make_head({"X-Ok: " + std::string(kMaxHeaderLine - 8, 'c')})).status == 0);
}

TEST_CASE("refusal_response: HTTP/1.1, a JSON body and its exact length, then close") {
  const std::string response = refusal_response(431, "the \"head\" is too large");
  CHECK(response.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
  const size_t body_at = response.find("\r\n\r\n") + 4;
  const std::string body = response.substr(body_at);
  CHECK(response.find("Content-Length: " + std::to_string(body.size()) + "\r\n") != std::string::npos);
  CHECK(response.find("Connection: close\r\n") != std::string::npos);
  CHECK(body == R"({"error":"too_large","message":"the \"head\" is too large"})");
  CHECK(refusal_response(429, "x").starts_with("HTTP/1.1 429 Too Many Requests\r\n"));
}

// Found by fuzz/request_head_fuzz: the request line was matched as a header like any other line, so a
// request line such as "HOST :/ws HTTP/1.1" was taken for the Host header and dropped from the prepared
// head (libwebsockets then got a head without a request line), and "Authorization :/ws HTTP/1.1" counted
// as an Authorization header.
TEST_CASE("prepare_head and move_bearer_subprotocol never read the request line as a header") {
  const PreparedHead prepared =
      prepare_head("HOST :/ws HTTP/1.1\r\nHost: 127.0.0.1:7700\r\nUpgrade: websocket\r\n\r\n");
  REQUIRE(prepared.status == 0);
  CHECK(prepared.head == "HOST :/ws HTTP/1.1\r\nUpgrade: websocket\r\nHost: 127.0.0.1:7700\r\n\r\n");
  CHECK(prepare_head(prepared.head).head == prepared.head);

  const std::string moved = move_bearer_subprotocol(
      "Authorization :/ws HTTP/1.1\r\nHost: h\r\nSec-WebSocket-Protocol: ptyhub.v1, bearer.abc\r\n\r\n");
  CHECK(moved ==
        "Authorization :/ws HTTP/1.1\r\nHost: h\r\nSec-WebSocket-Protocol: ptyhub.v1\r\nAuthorization: Bearer abc\r\n\r\n");
}

}  // namespace
}  // namespace ptyhub::server
