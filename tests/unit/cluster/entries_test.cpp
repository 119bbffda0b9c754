// The decoders of what cluster mode reads from Redis (src/cluster/entries): each shape the cluster writes
// decodes exactly, and each malformed one is refused with its reason.
#include <doctest/doctest.h>

#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "src/cluster/entries.hpp"

namespace ptyhub::cluster {
namespace {

using Code = EntryError::Code;

RedisValue str(std::string text) {
  RedisValue value;
  value.type = RedisValue::Type::string;
  value.text = std::move(text);
  return value;
}

RedisValue arr(std::vector<RedisValue> elements) {
  RedisValue value;
  value.type = RedisValue::Type::array;
  value.elements = std::move(elements);
  return value;
}

RedisValue integer(long long n) {
  RedisValue value;
  value.type = RedisValue::Type::integer;
  value.integer = n;
  return value;
}

// [field, value, ...] as Redis returns it.
RedisValue flat(std::initializer_list<std::pair<std::string, std::string>> fields) {
  std::vector<RedisValue> elements;
  for (const auto& [key, value] : fields) {
    elements.push_back(str(key));
    elements.push_back(str(value));
  }
  return arr(std::move(elements));
}

RedisValue entry(std::string id, std::initializer_list<std::pair<std::string, std::string>> fields) {
  return arr({str(std::move(id)), flat(fields)});
}

template <typename T>
EntryError error_of(const Decoded<T>& decoded) {
  REQUIRE_FALSE(decoded.ok());
  return decoded.error();
}

EntryError error(Code code, std::string field) { return EntryError{code, std::move(field)}; }

// A terminal stream entry's fields decoded at `id`.
Decoded<TerminalEntry> terminal_entry(const std::string& id, const Fields& fields) {
  const Decoded<StreamId> parsed = parse_stream_id(id);
  REQUIRE(parsed.ok());
  return decode_terminal_entry(*parsed, fields);
}

// An input-stream request for incarnation "b0" about terminal "t1", plus `fields`.
Fields request(std::initializer_list<std::pair<const std::string, std::string>> fields) {
  Fields out = {{"b", "b0"}, {"t", "t1"}};
  for (const auto& [key, value] : fields) out[key] = value;
  return out;
}

template <typename T>
T body_of(const Fields& fields) {
  const Decoded<NodeRequest> decoded = decode_node_request(fields);
  REQUIRE(decoded.ok());
  CHECK(decoded->boot == "b0");
  REQUIRE(std::holds_alternative<T>(decoded->body));
  return std::get<T>(decoded->body);
}

TEST_CASE("entries: stream ids are <ms>-<seq>, two unsigned 64-bit numbers") {
  CHECK(*parse_stream_id("0-0") == StreamId{0, 0});
  CHECK(*parse_stream_id("1234-7") == StreamId{1234, 7});
  CHECK(*parse_stream_id("18446744073709551615-18446744073709551615") ==
        StreamId{18446744073709551615ull, 18446744073709551615ull});
  CHECK(to_string(StreamId{1234, 7}) == "1234-7");
  for (const char* bad : {"", "-", "12", "12-", "-3", "1-2-3", "a-1", "1-b", "+1-0", "1--1", " 1-0", "1-0 ",
                          "18446744073709551616-0", "0x10-0"}) {
    CAPTURE(bad);
    CHECK(error_of(parse_stream_id(bad)) == error(Code::bad_id, "id"));
  }
}

TEST_CASE("entries: field lists are pairs of strings, each field once") {
  const Decoded<Fields> fields = decode_fields(flat({{"s", "0"}, {"d", std::string("a\0b", 3)}}));
  REQUIRE(fields.ok());
  CHECK(*fields == Fields{{"s", "0"}, {"d", std::string("a\0b", 3)}});
  CHECK(decode_fields(arr({}))->empty());

  CHECK(error_of(decode_fields(str("s"))) == error(Code::not_array, "fields"));
  CHECK(error_of(decode_fields(RedisValue{})) == error(Code::not_array, "fields"));
  CHECK(error_of(decode_fields(arr({str("s"), str("0"), str("d")}))) == error(Code::odd_fields, "fields"));
  CHECK(error_of(decode_fields(arr({str("s"), integer(0)}))) == error(Code::not_string, "fields"));
  CHECK(error_of(decode_fields(arr({arr({}), str("0")}))) == error(Code::not_string, "fields"));
  CHECK(error_of(decode_fields(flat({{"s", "0"}, {"s", "1"}}))) == error(Code::duplicate_field, "s"));
  // A long duplicated name is cut in the error.
  const std::string long_name(1000, 'x');
  CHECK(error_of(decode_fields(flat({{long_name, "0"}, {long_name, "1"}}))).field == std::string(64, 'x'));
}

TEST_CASE("entries: XREAD replies decode stream by stream, a malformed entry alone is marked") {
  CHECK(decode_read_reply(RedisValue{})->empty());  // nil: the timeout
  const RedisValue reply = arr({
      arr({str("ptyhub:events"), arr({entry("1-0", {{"e", "created"}, {"t", "x"}, {"n", "a"}})})}),
      arr({str("ptyhub:term:{x}:out"), arr({
                                           entry("5-0", {{"s", "0"}, {"d", "hello"}}),
                                           arr({str("6-0"), RedisValue{}}),           // a deleted entry: nil fields
                                           arr({str("nonsense"), flat({{"s", "5"}})}),  // an unreadable id
                                           str("7-0"),                                // not an entry at all
                                           entry("7-0", {{"s", "5"}, {"d", "!!"}}),
                                       })}),
  });
  const Decoded<std::vector<StreamBatch>> streams = decode_read_reply(reply);
  REQUIRE(streams.ok());
  REQUIRE(streams->size() == 2);
  CHECK((*streams)[0].key == "ptyhub:events");
  REQUIRE((*streams)[0].entries.size() == 1);
  CHECK((*streams)[0].entries[0].ok());
  CHECK((*streams)[0].entries[0].fields == Fields{{"e", "created"}, {"t", "x"}, {"n", "a"}});
  const std::vector<StreamEntry>& out = (*streams)[1].entries;
  REQUIRE(out.size() == 5);
  CHECK(out[0].ok());
  CHECK(*out[0].id == StreamId{5, 0});
  CHECK(out[0].fields == Fields{{"s", "0"}, {"d", "hello"}});
  CHECK_FALSE(out[1].ok());
  CHECK(*out[1].id == StreamId{6, 0});  // still readable: the reader moves past it
  CHECK(*out[1].error == error(Code::not_array, "fields"));
  CHECK_FALSE(out[2].id.has_value());
  CHECK(*out[2].error == error(Code::bad_id, "id"));
  CHECK_FALSE(out[3].id.has_value());
  CHECK(*out[3].error == error(Code::not_array, "entry"));
  CHECK(out[4].ok());

  CHECK(error_of(decode_read_reply(str("OK"))) == error(Code::not_array, "reply"));
  CHECK(error_of(decode_read_reply(integer(3))) == error(Code::not_array, "reply"));
  CHECK(error_of(decode_read_reply(arr({str("ptyhub:events")}))) == error(Code::not_array, "stream"));
  CHECK(error_of(decode_read_reply(arr({arr({str("k")})}))) == error(Code::not_array, "stream"));
  CHECK(error_of(decode_read_reply(arr({arr({str("k"), str("v")})}))) == error(Code::not_array, "stream"));
  CHECK(error_of(decode_read_reply(arr({arr({integer(1), arr({})})}))) == error(Code::not_string, "stream"));
  CHECK(error_of(decode_read_reply(arr({arr({str("k"), arr({}), arr({})})}))) == error(Code::not_array, "stream"));
}

TEST_CASE("entries: XRANGE replies are arrays of entries, each [id, fields]") {
  const Decoded<std::vector<StreamEntry>> entries =
      decode_range_reply(arr({entry("9-3", {{"e", "removed"}, {"t", "x"}})}));
  REQUIRE(entries.ok());
  REQUIRE(entries->size() == 1);
  CHECK(*(*entries)[0].id == StreamId{9, 3});
  CHECK(decode_range_reply(arr({}))->empty());
  CHECK(error_of(decode_range_reply(RedisValue{})) == error(Code::not_array, "reply"));
  CHECK(*decode_stream_entry(arr({integer(1), arr({})})).error == error(Code::not_string, "id"));
  CHECK(*decode_stream_entry(arr({str("1-0"), arr({}), arr({})})).error == error(Code::not_array, "entry"));
  CHECK(*decode_stream_entry(arr({str("1-0"), flat({{"a", "1"}, {"a", "2"}})})).error ==
        error(Code::duplicate_field, "a"));
}

TEST_CASE("entries: output entries give their start and bytes, and must end where their id says") {
  const std::string bytes("\x1b[1mhi\r\n\0\xff", 9);
  const Decoded<TerminalEntry> output = terminal_entry("109-0", {{"s", "100"}, {"d", bytes}});
  REQUIRE(output.ok());
  CHECK(std::get<OutputEntry>(*output) == OutputEntry{100, bytes});
  CHECK(std::get<OutputEntry>(*terminal_entry("0-0", {{"s", "0"}, {"d", ""}})) == OutputEntry{0, ""});
  // An output entry with a `t` too is output (as written, output entries have no `t`).
  CHECK(std::holds_alternative<OutputEntry>(*terminal_entry("1-0", {{"s", "0"}, {"d", "x"}, {"t", "r"}})));

  CHECK(error_of(terminal_entry("5-0", {{"d", "hello"}})) == error(Code::missing_field, "s"));
  CHECK(error_of(terminal_entry("5-0", {{"s", ""}, {"d", "hello"}})) == error(Code::not_a_number, "s"));
  CHECK(error_of(terminal_entry("5-0", {{"s", "-0"}, {"d", "hello"}})) == error(Code::not_a_number, "s"));
  CHECK(error_of(terminal_entry("5-0", {{"s", "0x0"}, {"d", "hello"}})) == error(Code::not_a_number, "s"));
  CHECK(error_of(terminal_entry("5-0", {{"s", "0 "}, {"d", "hello"}})) == error(Code::not_a_number, "s"));
  CHECK(error_of(terminal_entry("5-0", {{"s", "99999999999999999999"}, {"d", "hello"}})) ==
        error(Code::out_of_range, "s"));
  // start + length beyond 2^64 - 1
  CHECK(error_of(terminal_entry("5-0", {{"s", "18446744073709551614"}, {"d", "hello"}})) ==
        error(Code::out_of_range, "s"));
  // The id disagrees with start + length, or is a control entry's.
  CHECK(error_of(terminal_entry("6-0", {{"s", "0"}, {"d", "hello"}})) == error(Code::inconsistent, "s"));
  CHECK(error_of(terminal_entry("4-0", {{"s", "0"}, {"d", "hello"}})) == error(Code::inconsistent, "s"));
  CHECK(error_of(terminal_entry("5-1", {{"s", "0"}, {"d", "hello"}})) == error(Code::inconsistent, "s"));
}

TEST_CASE("entries: resize, exit and event entries of a terminal's stream") {
  CHECK(std::get<ResizeEntry>(*terminal_entry("5-1", {{"t", "r"}, {"c", "100"}, {"r", "30"}})) == ResizeEntry{100, 30});
  CHECK(std::get<ResizeEntry>(*terminal_entry("5-1", {{"t", "r"}, {"c", "1"}, {"r", "1000"}})) == ResizeEntry{1, 1000});
  CHECK(error_of(terminal_entry("5-1", {{"t", "r"}, {"c", "0"}, {"r", "30"}})) == error(Code::out_of_range, "c"));
  CHECK(error_of(terminal_entry("5-1", {{"t", "r"}, {"c", "80"}, {"r", "1001"}})) == error(Code::out_of_range, "r"));
  CHECK(error_of(terminal_entry("5-1", {{"t", "r"}, {"c", "80"}})) == error(Code::missing_field, "r"));
  CHECK(error_of(terminal_entry("5-1", {{"t", "r"}, {"c", "8O"}, {"r", "24"}})) == error(Code::not_a_number, "c"));

  // The exits the owner writes, and the one another node writes for a lost node.
  const std::string trailer = R"({"type":"git.operation.completed","data":{}})";
  const std::string trailers = R"(["{\"type\":\"git.operation.completed\",\"data\":{}}"])";
  ExitEntry coded;
  coded.code = 3;
  coded.duration_ms = 1500;
  coded.trailers = {trailer};
  CHECK(std::get<ExitEntry>(*terminal_entry(
            "7-1", {{"t", "x"}, {"dur", "1500"}, {"code", "3"}, {"tr", trailers}})) == coded);
  ExitEntry signalled;
  signalled.signal = "SIGKILL";
  signalled.duration_ms = 20;
  signalled.reason = "idle_timeout";
  CHECK(std::get<ExitEntry>(*terminal_entry("7-1", {{"t", "x"}, {"dur", "20"}, {"sig", "SIGKILL"}, {"why", "idle_timeout"}})) ==
        signalled);
  ExitEntry lost;
  lost.reason = "node_lost";
  CHECK(std::get<ExitEntry>(*terminal_entry("7-1", {{"t", "x"}, {"why", "node_lost"}})) == lost);
  CHECK(std::get<ExitEntry>(*terminal_entry("7-1", {{"t", "x"}, {"code", "-1"}})).code == -1);

  CHECK(error_of(terminal_entry("7-1", {{"t", "x"}, {"code", "one"}})) == error(Code::not_a_number, "code"));
  CHECK(error_of(terminal_entry("7-1", {{"t", "x"}, {"code", ""}})) == error(Code::empty_field, "code"));
  CHECK(error_of(terminal_entry("7-1", {{"t", "x"}, {"code", "2147483648"}})) == error(Code::out_of_range, "code"));
  CHECK(error_of(terminal_entry("7-1", {{"t", "x"}, {"code", "0"}, {"sig", "SIGHUP"}})) == error(Code::inconsistent, "sig"));
  CHECK(error_of(terminal_entry("7-1", {{"t", "x"}, {"sig", ""}})) == error(Code::empty_field, "sig"));
  CHECK(error_of(terminal_entry("7-1", {{"t", "x"}, {"dur", "-5"}})) == error(Code::not_a_number, "dur"));
  CHECK(error_of(terminal_entry("7-1", {{"t", "x"}, {"tr", "["}})) == error(Code::bad_json, "tr"));
  CHECK(error_of(terminal_entry("7-1", {{"t", "x"}, {"tr", "{}"}})) == error(Code::bad_json, "tr"));
  CHECK(error_of(terminal_entry("7-1", {{"t", "x"}, {"tr", "[1]"}})) == error(Code::bad_json, "tr"));
  CHECK(error_of(terminal_entry("7-1", {{"t", "x"}, {"tr", R"(["not json"])"}})) == error(Code::bad_json, "tr"));
  CHECK(error_of(terminal_entry("7-1", {{"t", "x"}, {"tr", R"(["[1]"])"}})) == error(Code::bad_json, "tr"));

  CHECK(std::get<EventEntry>(*terminal_entry("7-2", {{"t", "e"}, {"f", trailer}})) == EventEntry{trailer});
  CHECK(error_of(terminal_entry("7-2", {{"t", "e"}})) == error(Code::missing_field, "f"));
  CHECK(error_of(terminal_entry("7-2", {{"t", "e"}, {"f", "{\"a\":"}})) == error(Code::bad_json, "f"));
  CHECK(error_of(terminal_entry("7-2", {{"t", "e"}, {"f", "\"text\""}})) == error(Code::bad_json, "f"));

  // Neither output nor a type; a type this version does not know is not an error.
  CHECK(error_of(terminal_entry("7-2", {})) == error(Code::missing_field, "t"));
  CHECK(error_of(terminal_entry("7-2", {{"t", ""}})) == error(Code::empty_field, "t"));
  CHECK(std::get<UnknownEntry>(*terminal_entry("7-2", {{"t", "z"}, {"q", "1"}})) == UnknownEntry{"z"});
}

TEST_CASE("entries: events of the events stream need their event and terminal") {
  CHECK(*decode_directory_event({{"e", "created"}, {"t", "x1"}, {"n", "a"}}) == DirectoryEvent{"created", "x1", "a"});
  CHECK(*decode_directory_event({{"e", "removed"}, {"t", "x1"}}) == DirectoryEvent{"removed", "x1", ""});
  CHECK(error_of(decode_directory_event({{"t", "x1"}})) == error(Code::missing_field, "e"));
  CHECK(error_of(decode_directory_event({{"e", "changed"}})) == error(Code::missing_field, "t"));
  CHECK(error_of(decode_directory_event({{"e", "changed"}, {"t", ""}})) == error(Code::empty_field, "t"));
}

TEST_CASE("entries: a directory entry decodes every field the owner writes") {
  const Fields written = {{"id", "x1"},          {"node", "a"},        {"boot", "0123456789abcdef"},
                          {"owner", "alice"},    {"kind", "shell"},    {"name", "build"},
                          {"command", R"(["/bin/sh","-c","make"])"},  {"cwd", "/home/alice"},
                          {"cols", "100"},       {"rows", "30"},       {"createdAt", "1764165600000"},
                          {"shares", R"({"bob":"read","carol":"write","dan":"none"})"},
                          {"state", "running"},  {"op", "op-1"},       {"top", "12345"}};
  const Decoded<DirectoryEntry> entry = decode_directory_entry(written);
  REQUIRE(entry.ok());
  DirectoryEntry expected;
  expected.node = "a";
  expected.boot = "0123456789abcdef";
  expected.owner = "alice";
  expected.kind = "shell";
  expected.name = "build";
  expected.command = {"/bin/sh", "-c", "make"};
  expected.cwd = "/home/alice";
  expected.operation = "op-1";
  expected.cols = 100;
  expected.rows = 30;
  expected.created_at_ms = 1764165600000;
  expected.shares = {{"bob", ShareAccess::read}, {"carol", ShareAccess::write}, {"dan", ShareAccess::none}};
  expected.state = "running";
  CHECK(*entry == expected);

  // Only node and boot are needed; the rest takes its defaults.
  const Decoded<DirectoryEntry> bare = decode_directory_entry({{"node", "a"}, {"boot", "b"}});
  REQUIRE(bare.ok());
  CHECK(bare->cols == 80);
  CHECK(bare->rows == 24);
  CHECK(bare->owner.empty());
  CHECK(bare->command.empty());
  CHECK(bare->shares.empty());

  auto with = [&](const std::string& key, const std::string& value) {
    Fields fields = written;
    fields[key] = value;
    return decode_directory_entry(fields);
  };
  auto without = [&](const std::string& key) {
    Fields fields = written;
    fields.erase(key);
    return decode_directory_entry(fields);
  };
  CHECK(error_of(without("node")) == error(Code::missing_field, "node"));
  CHECK(error_of(with("node", "")) == error(Code::empty_field, "node"));
  CHECK(error_of(without("boot")) == error(Code::missing_field, "boot"));
  CHECK(error_of(with("cols", "0")) == error(Code::out_of_range, "cols"));
  CHECK(error_of(with("rows", "65536")) == error(Code::out_of_range, "rows"));
  CHECK(error_of(with("cols", "eighty")) == error(Code::not_a_number, "cols"));
  CHECK(error_of(with("createdAt", "9223372036854775808")) == error(Code::out_of_range, "createdAt"));
  CHECK(error_of(with("createdAt", "-1")) == error(Code::not_a_number, "createdAt"));
  CHECK(error_of(with("command", "/bin/sh")) == error(Code::bad_json, "command"));
  CHECK(error_of(with("command", R"(["/bin/sh",1])")) == error(Code::bad_json, "command"));
  CHECK(error_of(with("command", R"({"0":"/bin/sh"})")) == error(Code::bad_json, "command"));
  CHECK(error_of(with("shares", R"(["bob"])")) == error(Code::bad_json, "shares"));
  CHECK(error_of(with("shares", R"({"bob":"admin"})")) == error(Code::bad_json, "shares"));
  CHECK(error_of(with("shares", R"({"bob":true})")) == error(Code::bad_json, "shares"));
  CHECK(error_of(with("shares", "{")) == error(Code::bad_json, "shares"));
}

TEST_CASE("entries: each kind of request of a node's input stream decodes with its typed fields") {
  CHECK(body_of<InputRequest>(request({{"k", "i"}, {"d", std::string("ls\r\0", 4)}})) ==
        InputRequest{"t1", std::string("ls\r\0", 4)});
  CHECK(body_of<InputRequest>(request({{"k", "i"}, {"d", ""}})) == InputRequest{"t1", ""});
  CHECK(body_of<ResizeRequest>(request({{"k", "r"}, {"c", "120"}, {"r", "40"}})) == ResizeRequest{"t1", 120, 40});
  CHECK(body_of<KillRequest>(request({{"k", "k"}, {"s", "15"}})) == KillRequest{"t1", 15});
  CHECK(body_of<KillRequest>(request({{"k", "k"}, {"s", "64"}})) == KillRequest{"t1", 64});
  CHECK(body_of<ShareRequest>(request({{"k", "s"}, {"u", "bob"}, {"a", "read"}})) ==
        ShareRequest{"t1", "bob", ShareAccess::read});
  CHECK(body_of<ShareRequest>(request({{"k", "s"}, {"u", "bob"}, {"a", "none"}})) ==
        ShareRequest{"t1", "bob", ShareAccess::none});
  CHECK(body_of<CancelRequest>(request({{"k", "g"}, {"o", "op-1"}})) == CancelRequest{"t1", "op-1"});
  CHECK(body_of<DismissRequest>(request({{"k", "d"}})) == DismissRequest{"t1"});
  CHECK(body_of<ProgressRequest>(request({{"k", "a"}, {"o", "4096"}, {"n", "b"}})) == ProgressRequest{"t1", "b", 4096});
  CHECK(body_of<ProgressRequest>(request({{"k", "a"}, {"n", "b"}})) == ProgressRequest{"t1", "b", std::nullopt});
  CHECK(body_of<HoldRequest>(request({{"k", "h"}, {"h", "1"}, {"u", "0"}, {"n", "b"}})) == HoldRequest{"t1", "b", true, false});
  CHECK(body_of<HoldRequest>(request({{"k", "h"}, {"h", "0"}, {"u", "1"}, {"n", "b"}})) == HoldRequest{"t1", "b", false, true});
  // A kind this version does not know: nothing else is read.
  CHECK(body_of<UnknownRequest>({{"b", "b0"}, {"k", "zz"}}) == UnknownRequest{"zz"});
}

TEST_CASE("entries: a malformed request of a node's input stream gives its reason") {
  auto refused = [](const Fields& fields) { return error_of(decode_node_request(fields)); };
  CHECK(refused({{"t", "t1"}, {"k", "i"}, {"d", "x"}}) == error(Code::missing_field, "b"));
  CHECK(refused({{"b", ""}, {"t", "t1"}, {"k", "i"}, {"d", "x"}}) == error(Code::empty_field, "b"));
  CHECK(refused({{"b", "b0"}, {"t", "t1"}}) == error(Code::missing_field, "k"));
  CHECK(refused({{"b", "b0"}, {"k", "i"}, {"d", "x"}}) == error(Code::missing_field, "t"));
  CHECK(refused({{"b", "b0"}, {"t", ""}, {"k", "i"}, {"d", "x"}}) == error(Code::empty_field, "t"));
  CHECK(refused(request({{"k", "i"}})) == error(Code::missing_field, "d"));
  CHECK(refused(request({{"k", "r"}, {"c", "0"}, {"r", "40"}})) == error(Code::out_of_range, "c"));
  CHECK(refused(request({{"k", "r"}, {"c", "80"}, {"r", "1001"}})) == error(Code::out_of_range, "r"));
  CHECK(refused(request({{"k", "r"}, {"c", "80"}})) == error(Code::missing_field, "r"));
  CHECK(refused(request({{"k", "r"}, {"c", "80.5"}, {"r", "24"}})) == error(Code::not_a_number, "c"));
  CHECK(refused(request({{"k", "k"}, {"s", "0"}})) == error(Code::out_of_range, "s"));
  CHECK(refused(request({{"k", "k"}, {"s", "65"}})) == error(Code::out_of_range, "s"));
  CHECK(refused(request({{"k", "k"}, {"s", "SIGTERM"}})) == error(Code::not_a_number, "s"));
  CHECK(refused(request({{"k", "k"}, {"s", "99999999999999999999999"}})) == error(Code::out_of_range, "s"));
  CHECK(refused(request({{"k", "s"}, {"a", "read"}})) == error(Code::missing_field, "u"));
  CHECK(refused(request({{"k", "s"}, {"u", ""}, {"a", "read"}})) == error(Code::empty_field, "u"));
  CHECK(refused(request({{"k", "s"}, {"u", "bob"}, {"a", "admin"}})) == error(Code::bad_value, "a"));
  CHECK(refused(request({{"k", "s"}, {"u", "bob"}})) == error(Code::missing_field, "a"));
  CHECK(refused(request({{"k", "g"}})) == error(Code::missing_field, "o"));
  CHECK(refused(request({{"k", "g"}, {"o", ""}})) == error(Code::empty_field, "o"));
  CHECK(refused(request({{"k", "a"}, {"o", "10"}})) == error(Code::missing_field, "n"));
  CHECK(refused(request({{"k", "a"}, {"o", "ten"}, {"n", "b"}})) == error(Code::not_a_number, "o"));
  CHECK(refused(request({{"k", "h"}, {"h", "1"}, {"u", "0"}})) == error(Code::missing_field, "n"));
  CHECK(refused(request({{"k", "h"}, {"h", "yes"}, {"u", "0"}, {"n", "b"}})) == error(Code::bad_value, "h"));
  CHECK(refused(request({{"k", "h"}, {"h", "1"}, {"n", "b"}})) == error(Code::missing_field, "u"));
}

TEST_CASE("entries: create requests and replies of shell.create with a node") {
  const Fields asked = {{"k", "c"},  {"b", "b0"}, {"q", "42"},
                        {"from", "a"}, {"fb", "fa"}, {"u", "alice"},
                        {"o", R"({"command":["/bin/sh"],"cwd":"/tmp","env":{"A":"1"},"cols":100,"rows":30,"name":"n"})"}};
  CreateRequest expected;
  expected.from = "a";
  expected.from_boot = "fa";
  expected.seq = 42;
  expected.user = "alice";
  expected.command = {"/bin/sh"};
  expected.cwd = "/tmp";
  expected.env = {{"A", "1"}};
  expected.cols = 100;
  expected.rows = 30;
  expected.name = "n";
  CHECK(body_of<CreateRequest>(asked) == expected);
  Fields minimal = asked;
  minimal["o"] = "{}";
  const CreateRequest defaults = body_of<CreateRequest>(minimal);
  CHECK(defaults.cols == 80);
  CHECK(defaults.rows == 24);
  CHECK(defaults.command.empty());
  CHECK(*decode_create_reply_address(asked) == CreateReplyAddress{"b0", "a", "fa", 42});

  auto refused = [&](const std::string& key, const std::optional<std::string>& value) {
    Fields fields = asked;
    if (value) fields[key] = *value;
    else fields.erase(key);
    return error_of(decode_node_request(fields));
  };
  CHECK(refused("from", std::nullopt) == error(Code::missing_field, "from"));
  CHECK(refused("fb", "") == error(Code::empty_field, "fb"));
  CHECK(refused("q", "x") == error(Code::not_a_number, "q"));
  CHECK(refused("u", "") == error(Code::empty_field, "u"));
  CHECK(refused("o", std::nullopt) == error(Code::missing_field, "o"));
  CHECK(refused("o", "[]") == error(Code::bad_json, "o"));
  CHECK(refused("o", "{") == error(Code::bad_json, "o"));
  CHECK(refused("o", R"({"command":"/bin/sh"})") == error(Code::bad_json, "o"));
  CHECK(refused("o", R"({"command":[1]})") == error(Code::bad_json, "o"));
  CHECK(refused("o", R"({"cwd":1})") == error(Code::bad_json, "o"));
  CHECK(refused("o", R"({"env":{"A":1}})") == error(Code::bad_json, "o"));
  CHECK(refused("o", R"({"env":["A=1"]})") == error(Code::bad_json, "o"));
  CHECK(refused("o", R"({"name":null})") == error(Code::bad_json, "o"));
  CHECK(refused("o", R"({"cols":0})") == error(Code::out_of_range, "o"));
  CHECK(refused("o", R"({"cols":-80})") == error(Code::out_of_range, "o"));
  CHECK(refused("o", R"({"rows":1001})") == error(Code::out_of_range, "o"));
  CHECK(refused("o", R"({"rows":24.5})") == error(Code::out_of_range, "o"));
  CHECK(refused("o", R"({"rows":"24"})") == error(Code::out_of_range, "o"));
  CHECK(refused("o", R"({"rows":18446744073709551615})") == error(Code::out_of_range, "o"));

  // Its options malformed, a request is still answerable; without where to answer, it is not.
  Fields bad_options = asked;
  bad_options["o"] = "[";
  CHECK(*decode_create_reply_address(bad_options) == CreateReplyAddress{"b0", "a", "fa", 42});
  Fields no_from = asked;
  no_from.erase("from");
  CHECK(error_of(decode_create_reply_address(no_from)) == error(Code::missing_field, "from"));
  CHECK(error_of(decode_create_reply_address(request({{"k", "i"}, {"d", "x"}}))) == error(Code::bad_value, "k"));

  CHECK(body_of<CreateReply>({{"k", "C"}, {"b", "b0"}, {"q", "42"}, {"tid", "x9"}}) == CreateReply{42, "x9", "", "", ""});
  CHECK(body_of<CreateReply>({{"k", "C"}, {"b", "b0"}, {"q", "42"}, {"err", "limit_exceeded"}, {"m", "too many"}, {"f", ""}}) ==
        CreateReply{42, "", "limit_exceeded", "too many", ""});
  CHECK(error_of(decode_node_request({{"k", "C"}, {"b", "b0"}, {"tid", "x9"}})) == error(Code::missing_field, "q"));
  CHECK(error_of(decode_node_request({{"k", "C"}, {"b", "b0"}, {"q", "-1"}, {"tid", "x9"}})) ==
        error(Code::not_a_number, "q"));
  CHECK(error_of(decode_node_request({{"k", "C"}, {"b", "b0"}, {"q", "42"}})) == error(Code::missing_field, "err"));
  CHECK(error_of(decode_node_request({{"k", "C"}, {"b", "b0"}, {"q", "42"}, {"tid", ""}, {"err", ""}})) ==
        error(Code::empty_field, "err"));
}

TEST_CASE("entries: errors describe themselves") {
  CHECK(error(Code::missing_field, "c").describe() == "\"c\": missing");
  CHECK(error(Code::not_array, "reply").describe() == "\"reply\": not an array of the expected size");
  CHECK(EntryError{Code::bad_json, ""}.describe() == "not JSON of the expected shape");
}

}  // namespace
}  // namespace ptyhub::cluster
