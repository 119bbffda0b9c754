// Tests of src/protocol/envelope: parsing requests (docs/protocol.md §3 Envelope) and the shape of the frames
// the server builds (reply, ack, error, event), read back as JSON.
#include "src/protocol/envelope.hpp"

#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "src/protocol/frame.hpp"
#include "src/protocol/utf8.hpp"

namespace ptyhub::protocol {
namespace {

// The payload of a frame as JSON; fails the test when it is not JSON.
json payload_json(const SharedFrame& frame) {
  REQUIRE(frame != nullptr);
  const std::string_view payload = frame->payload();
  json parsed = json::parse(payload.begin(), payload.end(), nullptr, false);
  REQUIRE_FALSE(parsed.is_discarded());
  return parsed;
}

struct BadCase {
  std::string text;
  const char* code;
  std::string field;
  json id;  // the id ParsedRequest must still report
};

TEST_CASE("malformed requests are rejected with the code and field of the first failing check") {
  const std::vector<BadCase> cases = {
      {"{bad", code::kBadJson, "", nullptr},
      {"", code::kBadJson, "", nullptr},
      {"{\"type\":\"ping\"} trailing", code::kBadJson, "", nullptr},
      {"{}{}", code::kBadJson, "", nullptr},
      {"[1,2]", code::kBadMessage, "", nullptr},
      {"42", code::kBadMessage, "", nullptr},
      {"\"str\"", code::kBadMessage, "", nullptr},
      {"null", code::kBadMessage, "", nullptr},
      {"true", code::kBadMessage, "", nullptr},
      {"{}", code::kBadMessage, "type", nullptr},
      {R"({"type":5})", code::kBadMessage, "type", nullptr},
      {R"({"type":""})", code::kBadMessage, "type", nullptr},
      {R"({"type":null})", code::kBadMessage, "type", nullptr},
      {R"({"type":["ping"]})", code::kBadMessage, "type", nullptr},
      {R"({"id":3})", code::kBadMessage, "type", 3},
      {R"({"id":"q","type":7})", code::kBadMessage, "type", "q"},
      {R"({"type":"ping","id":{}})", code::kBadMessage, "id", nullptr},
      {R"({"type":"ping","id":1.5})", code::kBadMessage, "id", nullptr},
      {R"({"type":"ping","id":true})", code::kBadMessage, "id", nullptr},
      {R"({"type":"ping","id":[1]})", code::kBadMessage, "id", nullptr},
      {R"({"type":"ping","data":[]})", code::kBadMessage, "data", nullptr},
      {R"({"type":"ping","data":"x"})", code::kBadMessage, "data", nullptr},
      {R"({"type":"ping","data":5})", code::kBadMessage, "data", nullptr},
      {R"({"type":"ping","id":7,"data":[]})", code::kBadMessage, "data", 7},
      {R"({"type":"ping","id":"r-1","data":"x"})", code::kBadMessage, "data", "r-1"},
  };
  for (const BadCase& c : cases) {
    CAPTURE(c.text);
    const ParsedRequest parsed = parse_request(c.text);
    CHECK_FALSE(parsed.ok);
    CHECK(parsed.error.code == c.code);
    CHECK(parsed.error.field == c.field);
    CHECK_FALSE(parsed.error.message.empty());
    CHECK(parsed.id == c.id);
  }
}

TEST_CASE("invalid UTF-8 inside a JSON string is bad_json") {
  const std::string texts[] = {
      "{\"type\":\"ping\",\"note\":\"\xFF\"}",
      "{\"type\":\"pi\xC3\"}",
      "{\"type\":\"ping\",\"data\":{\"k\":\"\xED\xA0\x80\"}}",
  };
  for (const std::string& text : texts) {
    CAPTURE(text);
    const ParsedRequest parsed = parse_request(text);
    CHECK_FALSE(parsed.ok);
    CHECK(parsed.error.code == code::kBadJson);
  }
}

TEST_CASE("a valid request keeps its type, echoes its id and defaults data to {}") {
  struct GoodCase {
    std::string text;
    std::string type;
    json id;
    json data;
  };
  const std::vector<GoodCase> cases = {
      {R"({"type":"ping"})", "ping", nullptr, json::object()},
      {R"({"type":"ping","id":"abc"})", "ping", "abc", json::object()},
      {R"({"type":"ping","id":""})", "ping", "", json::object()},
      {R"({"type":"ping","id":42})", "ping", 42, json::object()},
      {R"({"type":"ping","id":-7})", "ping", -7, json::object()},
      {R"({"type":"ping","id":0})", "ping", 0, json::object()},
      {R"({"type":"ping","id":18446744073709551615})", "ping", 18446744073709551615ULL, json::object()},
      {R"({"type":"shell.resize","id":9,"data":{"cols":80,"rows":24}})", "shell.resize", 9,
       json{{"cols", 80}, {"rows", 24}}},
      {R"({"type":"shell.list","data":{}})", "shell.list", nullptr, json::object()},
      {R"({"type":"shell.list","channel":"shell:terminals","extra":[1,{"x":null}],"data":{"u":1}})",
       "shell.list", nullptr, json{{"u", 1}}},
      {" \n{\"type\" : \"ping\" , \"id\" : 1}\n ", "ping", 1, json::object()},
  };
  for (const GoodCase& c : cases) {
    CAPTURE(c.text);
    const ParsedRequest parsed = parse_request(c.text);
    REQUIRE(parsed.ok);
    CHECK(parsed.request.type == c.type);
    CHECK(parsed.request.id == c.id);
    CHECK(parsed.id == c.id);
    CHECK(parsed.request.data.is_object());
    CHECK(parsed.request.data == c.data);
  }
}

TEST_CASE("an id keeps its JSON type: the string \"1\" and the integer 1 differ") {
  const ParsedRequest as_string = parse_request(R"({"type":"ping","id":"1"})");
  const ParsedRequest as_integer = parse_request(R"({"type":"ping","id":1})");
  REQUIRE(as_string.ok);
  REQUIRE(as_integer.ok);
  CHECK(as_string.request.id.is_string());
  CHECK(as_integer.request.id.is_number_integer());
  CHECK(as_string.request.id != as_integer.request.id);
}

TEST_CASE("deeply nested input neither crashes nor throws") {
  const size_t depth = 200000;
  SUBCASE("unterminated arrays") {
    const ParsedRequest parsed = parse_request(std::string(depth, '['));
    CHECK_FALSE(parsed.ok);
    CHECK(parsed.error.code == code::kBadJson);
  }
  SUBCASE("terminated arrays: JSON but not an object") {
    const ParsedRequest parsed = parse_request(std::string(depth, '[') + std::string(depth, ']'));
    CHECK_FALSE(parsed.ok);
    CHECK((parsed.error.code == code::kBadJson || parsed.error.code == code::kBadMessage));
  }
  SUBCASE("nesting inside data") {
    const std::string text =
        R"({"type":"ping","data":{"x":)" + std::string(depth, '[') + std::string(depth, ']') + "}}";
    const ParsedRequest parsed = parse_request(text);
    if (!parsed.ok) {
      CHECK((parsed.error.code == code::kBadJson || parsed.error.code == code::kBadMessage));
    }
  }
}

TEST_CASE("reply_frame: type, id when there is one, and data") {
  SUBCASE("string id") {
    const json message = payload_json(reply_frame("shell.created", "r1", json{{"terminalId", "k3x9"}}));
    CHECK(message == json{{"type", "shell.created"}, {"id", "r1"}, {"data", {{"terminalId", "k3x9"}}}});
  }
  SUBCASE("integer id") {
    const json message = payload_json(reply_frame("pong", 7, json::object()));
    CHECK(message == json{{"type", "pong"}, {"id", 7}, {"data", json::object()}});
  }
  SUBCASE("null id: no id member at all") {
    const json message = payload_json(reply_frame("pong", nullptr, json{{"a", 1}}));
    CHECK_FALSE(message.contains("id"));
    CHECK(message == json{{"type", "pong"}, {"data", {{"a", 1}}}});
  }
}

TEST_CASE("ack_frame carries exactly the type and the id") {
  CHECK(payload_json(ack_frame(5)) == json{{"type", "ack"}, {"id", 5}});
  CHECK(payload_json(ack_frame("x")) == json{{"type", "ack"}, {"id", "x"}});
}

// envelope.hpp: "`id` null means 'no id member'" for every outbound builder.
TEST_CASE("ack_frame with a null id has no id member") {
  const json message = payload_json(ack_frame(nullptr));
  CHECK_FALSE(message.contains("id"));
  CHECK(message == json{{"type", "ack"}});
}

TEST_CASE("error_frame: code and message always, field only when set, id only when set") {
  SUBCASE("with id and field") {
    const json message = payload_json(error_frame("r2", {code::kBadMessage, "cols out of range", "data.cols"}));
    CHECK(message == json{{"type", "error"},
                          {"id", "r2"},
                          {"data", {{"code", "bad_message"}, {"message", "cols out of range"}, {"field", "data.cols"}}}});
  }
  SUBCASE("integer id, no field") {
    const json message = payload_json(error_frame(3, {code::kNotFound, "no such terminal", ""}));
    CHECK(message == json{{"type", "error"}, {"id", 3}, {"data", {{"code", "not_found"}, {"message", "no such terminal"}}}});
    CHECK_FALSE(message["data"].contains("field"));
  }
  SUBCASE("no id") {
    const json message = payload_json(error_frame(nullptr, {code::kBadJson, "message is not valid JSON", ""}));
    CHECK_FALSE(message.contains("id"));
    CHECK(message == json{{"type", "error"}, {"data", {{"code", "bad_json"}, {"message", "message is not valid JSON"}}}});
  }
  SUBCASE("the error of a parsed request carries its id") {
    const ParsedRequest parsed = parse_request(R"({"type":"ping","id":11,"data":"x"})");
    REQUIRE_FALSE(parsed.ok);
    const json message = payload_json(error_frame(parsed.id, parsed.error));
    CHECK(message["id"] == 11);
    CHECK(message["data"]["code"] == "bad_message");
    CHECK(message["data"]["field"] == "data");
  }
}

TEST_CASE("error_frame with invalid UTF-8 in its text still yields valid JSON") {
  const RequestError error{code::kBadMessage, "bad value \xFF\xC3", "data.\xE2\x82"};
  const SharedFrame frame = error_frame("id\xF0\x9F", error);
  CHECK(utf8_valid(frame->payload()));
  const json message = payload_json(frame);
  CHECK(message["type"] == "error");
  CHECK(message["data"]["code"] == "bad_message");
  const std::string text = message["data"]["message"].get<std::string>();
  CHECK(text.starts_with("bad value "));
  CHECK(text.find("\xEF\xBF\xBD") != std::string::npos);
}

TEST_CASE("event_frame: type, channel and data, never an id") {
  const json data = {{"terminalId", "k3x9"}, {"offset", 0}, {"next", 3}, {"data", "abc"}};
  const json message = payload_json(event_frame("shell.output", "shell:terminal:k3x9", data));
  CHECK(message == json{{"type", "shell.output"}, {"channel", "shell:terminal:k3x9"}, {"data", data}});
  CHECK_FALSE(message.contains("id"));
}

TEST_CASE("a frame's payload is the JSON text and its headroom lies just before it") {
  const SharedFrame frame = reply_frame("pong", 1, json{{"n", "value"}});
  const json expected = {{"type", "pong"}, {"id", 1}, {"data", {{"n", "value"}}}};
  CHECK(frame->payload() == expected.dump());
  CHECK(frame->size() == frame->payload().size());
  unsigned char* start = frame->send_pointer();
  CHECK(reinterpret_cast<const char*>(start) == frame->payload().data());
  // The headroom is scratch space owned by the frame: writing it leaves the payload as it was.
  std::memset(start - kFrameHeadroom, 0xAB, kFrameHeadroom);
  CHECK(frame->payload() == expected.dump());
}

TEST_CASE("make_frame keeps arbitrary payloads, empty included") {
  const std::string text = std::string("a\0b", 3) + std::string(1000, 'z');
  const SharedFrame frame = make_frame(text);
  CHECK(frame->payload() == text);
  CHECK(frame->size() == text.size());
  const SharedFrame empty = make_frame("");
  CHECK(empty->payload().empty());
  CHECK(empty->size() == 0);
  std::memset(empty->send_pointer() - kFrameHeadroom, 0, kFrameHeadroom);
  CHECK(empty->payload().empty());
}

}  // namespace
}  // namespace ptyhub::protocol
