// Tests of src/protocol/fields: DataReader's typed getters, the bad_message error naming the field
// ("data.cols", "data.command.2", "data.env.NAME"), and that the first failure is the one kept.
#include "src/protocol/fields.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ptyhub::protocol {
namespace {

constexpr int64_t kInt64Min = std::numeric_limits<int64_t>::min();
constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();

// Checks that `reader` failed with bad_message on `field`.
void check_failed_on(const DataReader& reader, const std::string& field) {
  CHECK_FALSE(reader.ok());
  CHECK(reader.error().code == code::kBadMessage);
  CHECK(reader.error().field == field);
  CHECK_FALSE(reader.error().message.empty());
}

TEST_CASE("a fresh reader is ok and fail() records a bad_message on data.<key>") {
  const json data = json::object();
  DataReader reader(data);
  CHECK(reader.ok());
  reader.fail("since", "since is beyond outputBytes");
  check_failed_on(reader, "data.since");
  CHECK(reader.error().message == "since is beyond outputBytes");
}

TEST_CASE("string: present, missing, null, wrong type, empty") {
  const json data = json::parse(R"({"name":"bash","empty":"","number":5,"nothing":null,"list":["a"]})");
  SUBCASE("present") {
    DataReader reader(data);
    CHECK(reader.string("name", true) == "bash");
    CHECK(reader.string("name", true, true) == "bash");
    CHECK(reader.ok());
  }
  SUBCASE("missing and optional") {
    DataReader reader(data);
    CHECK_FALSE(reader.string("cwd", false).has_value());
    CHECK(reader.ok());
  }
  SUBCASE("missing and required") {
    DataReader reader(data);
    CHECK_FALSE(reader.string("cwd", true).has_value());
    check_failed_on(reader, "data.cwd");
  }
  SUBCASE("null and optional counts as absent") {
    DataReader reader(data);
    CHECK_FALSE(reader.string("nothing", false).has_value());
    CHECK(reader.ok());
  }
  SUBCASE("null and required counts as missing") {
    DataReader reader(data);
    CHECK_FALSE(reader.string("nothing", true).has_value());
    check_failed_on(reader, "data.nothing");
  }
  SUBCASE("number") {
    DataReader reader(data);
    CHECK_FALSE(reader.string("number", false).has_value());
    check_failed_on(reader, "data.number");
  }
  SUBCASE("array") {
    DataReader reader(data);
    CHECK_FALSE(reader.string("list", false).has_value());
    check_failed_on(reader, "data.list");
  }
  SUBCASE("empty allowed") {
    DataReader reader(data);
    CHECK(reader.string("empty", true) == "");
    CHECK(reader.ok());
  }
  SUBCASE("empty refused when non_empty") {
    DataReader reader(data);
    CHECK_FALSE(reader.string("empty", true, true).has_value());
    check_failed_on(reader, "data.empty");
  }
}

TEST_CASE("integer: range bounds, floats, huge and negative values") {
  struct Case {
    const char* value;  // JSON text of data.n
    int64_t min;
    int64_t max;
    std::optional<int64_t> expected;  // nullopt: must fail on data.n
  };
  const Case cases[] = {
      {"0", 1, 1000, std::nullopt},
      {"1", 1, 1000, 1},
      {"500", 1, 1000, 500},
      {"1000", 1, 1000, 1000},
      {"1001", 1, 1000, std::nullopt},
      {"-1", 1, 1000, std::nullopt},
      {"-1", -1, 1, -1},
      {"1.0", 1, 1000, std::nullopt},
      {"2.5", 1, 1000, std::nullopt},
      {"1e2", 1, 1000, std::nullopt},
      {"\"5\"", 1, 1000, std::nullopt},
      {"true", 0, 1, std::nullopt},
      {"[1]", 1, 1000, std::nullopt},
      {"{}", 1, 1000, std::nullopt},
      {"-11", -10, -5, std::nullopt},
      {"-10", -10, -5, -10},
      {"-5", -10, -5, -5},
      {"-4", -10, -5, std::nullopt},
      // 2^64-1 read as int64 would be -1, inside this range: it must still be refused.
      {"18446744073709551615", -10, 10, std::nullopt},
      {"18446744073709551615", 0, kInt64Max, std::nullopt},
      {"9223372036854775808", kInt64Min, kInt64Max, std::nullopt},
      {"9223372036854775807", kInt64Min, kInt64Max, kInt64Max},
      {"9223372036854775807", 0, kInt64Max - 1, std::nullopt},
      {"-9223372036854775808", kInt64Min, kInt64Max, kInt64Min},
      {"-9223372036854775808", kInt64Min + 1, 0, std::nullopt},
      {"-9223372036854775809", kInt64Min, kInt64Max, std::nullopt},
      {"0", 0, 0, 0},
  };
  for (const Case& c : cases) {
    CAPTURE(c.value);
    CAPTURE(c.min);
    CAPTURE(c.max);
    const json data = json::parse(std::string(R"({"n":)") + c.value + "}");
    DataReader reader(data);
    const std::optional<int64_t> got = reader.integer("n", true, c.min, c.max);
    CHECK(got == c.expected);
    if (c.expected) {
      CHECK(reader.ok());
    } else {
      check_failed_on(reader, "data.n");
    }
  }
}

TEST_CASE("integer: missing or null") {
  const json data = json::parse(R"({"cols":null})");
  SUBCASE("optional") {
    DataReader reader(data);
    CHECK_FALSE(reader.integer("cols", false, 1, 1000).has_value());
    CHECK_FALSE(reader.integer("rows", false, 1, 1000).has_value());
    CHECK(reader.ok());
  }
  SUBCASE("required null") {
    DataReader reader(data);
    CHECK_FALSE(reader.integer("cols", true, 1, 1000).has_value());
    check_failed_on(reader, "data.cols");
  }
  SUBCASE("required missing") {
    DataReader reader(data);
    CHECK_FALSE(reader.integer("rows", true, 1, 1000).has_value());
    check_failed_on(reader, "data.rows");
  }
}

TEST_CASE("boolean: true, false, and lookalikes refused") {
  const json data = json::parse(R"({"yes":true,"no":false,"one":1,"text":"true","nothing":null})");
  DataReader good(data);
  CHECK(good.boolean("yes", true) == true);
  CHECK(good.boolean("no", true) == false);
  CHECK_FALSE(good.boolean("nothing", false).has_value());
  CHECK_FALSE(good.boolean("absent", false).has_value());
  CHECK(good.ok());
  for (const char* key : {"one", "text"}) {
    CAPTURE(key);
    DataReader reader(data);
    CHECK_FALSE(reader.boolean(key, false).has_value());
    check_failed_on(reader, std::string("data.") + key);
  }
  DataReader required(data);
  CHECK_FALSE(required.boolean("absent", true).has_value());
  check_failed_on(required, "data.absent");
}

TEST_CASE("string_array: a non-empty array of strings, item errors name the index") {
  struct Case {
    const char* value;
    std::optional<std::vector<std::string>> expected;
    const char* field;  // when expected is nullopt
  };
  const Case cases[] = {
      {R"(["bash"])", std::vector<std::string>{"bash"}, ""},
      {R"(["git","log","-1"])", std::vector<std::string>{"git", "log", "-1"}, ""},
      {R"([""])", std::vector<std::string>{""}, ""},
      {"[]", std::nullopt, "data.command"},
      {R"(["git","log",3])", std::nullopt, "data.command.2"},
      {R"([null,"x"])", std::nullopt, "data.command.0"},
      {R"(["a",["b"]])", std::nullopt, "data.command.1"},
      {R"("bash")", std::nullopt, "data.command"},
      {R"({"0":"bash"})", std::nullopt, "data.command"},
      {"7", std::nullopt, "data.command"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.value);
    const json data = json::parse(std::string(R"({"command":)") + c.value + "}");
    DataReader reader(data);
    const auto got = reader.string_array("command", true);
    CHECK(got == c.expected);
    if (c.expected) {
      CHECK(reader.ok());
    } else {
      check_failed_on(reader, c.field);
    }
  }
}

TEST_CASE("string_array: missing or null") {
  const json data = json::parse(R"({"command":null})");
  DataReader optional(data);
  CHECK_FALSE(optional.string_array("command", false).has_value());
  CHECK_FALSE(optional.string_array("args", false).has_value());
  CHECK(optional.ok());
  DataReader required(data);
  CHECK_FALSE(required.string_array("command", true).has_value());
  check_failed_on(required, "data.command");
}

TEST_CASE("string_map: an object of strings, value errors name the key") {
  using Map = std::map<std::string, std::string>;
  struct Case {
    const char* value;
    std::optional<Map> expected;
    const char* field;
  };
  const Case cases[] = {
      {"{}", Map{}, ""},
      {R"({"TERM":"xterm-256color","LANG":""})", Map{{"TERM", "xterm-256color"}, {"LANG", ""}}, ""},
      {R"({"NAME":5})", std::nullopt, "data.env.NAME"},
      {R"({"A":"1","NAME":false})", std::nullopt, "data.env.NAME"},
      {R"({"NAME":null})", std::nullopt, "data.env.NAME"},
      {R"({"NAME":["x"]})", std::nullopt, "data.env.NAME"},
      {R"(["A=1"])", std::nullopt, "data.env"},
      {R"("A=1")", std::nullopt, "data.env"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.value);
    const json data = json::parse(std::string(R"({"env":)") + c.value + "}");
    DataReader reader(data);
    const auto got = reader.string_map("env", true);
    CHECK(got == c.expected);
    if (c.expected) {
      CHECK(reader.ok());
    } else {
      check_failed_on(reader, c.field);
    }
  }
}

TEST_CASE("string_map: missing or null") {
  const json data = json::parse(R"({"env":null})");
  DataReader optional(data);
  CHECK_FALSE(optional.string_map("env", false).has_value());
  CHECK_FALSE(optional.string_map("other", false).has_value());
  CHECK(optional.ok());
  DataReader required(data);
  CHECK_FALSE(required.string_map("env", true).has_value());
  check_failed_on(required, "data.env");
}

TEST_CASE("one_of: only the listed strings") {
  struct Case {
    const char* value;
    std::optional<std::string> expected;
  };
  const Case cases[] = {
      {R"("utf8")", "utf8"},
      {R"("base64")", "base64"},
      {R"("UTF8")", std::nullopt},
      {R"("hex")", std::nullopt},
      {R"("")", std::nullopt},
      {"5", std::nullopt},
      {R"(["utf8"])", std::nullopt},
  };
  for (const Case& c : cases) {
    CAPTURE(c.value);
    const json data = json::parse(std::string(R"({"encoding":)") + c.value + "}");
    DataReader reader(data);
    CHECK(reader.one_of("encoding", false, {"utf8", "base64"}) == c.expected);
    if (c.expected) {
      CHECK(reader.ok());
    } else {
      check_failed_on(reader, "data.encoding");
    }
  }
  const json empty = json::parse(R"({"encoding":null})");
  DataReader optional(empty);
  CHECK_FALSE(optional.one_of("encoding", false, {"utf8", "base64"}).has_value());
  CHECK(optional.ok());
  DataReader required(empty);
  CHECK_FALSE(required.one_of("encoding", true, {"utf8", "base64"}).has_value());
  check_failed_on(required, "data.encoding");
}

TEST_CASE("after the first failure every read returns nullopt and the first error stays") {
  const json data = json::parse(
      R"({"cols":0,"rows":24,"name":"x","flag":true,"command":["a"],"env":{"A":"1"},"encoding":"utf8","bad":5})");
  DataReader reader(data);
  CHECK_FALSE(reader.integer("cols", true, 1, 1000).has_value());
  const RequestError first = reader.error();
  CHECK(first.field == "data.cols");
  // Valid members: nothing is read any more.
  CHECK_FALSE(reader.integer("rows", true, 1, 1000).has_value());
  CHECK_FALSE(reader.string("name", true).has_value());
  CHECK_FALSE(reader.boolean("flag", true).has_value());
  CHECK_FALSE(reader.string_array("command", true).has_value());
  CHECK_FALSE(reader.string_map("env", true).has_value());
  CHECK_FALSE(reader.one_of("encoding", true, {"utf8"}).has_value());
  // Members that would fail on their own do not replace the first error.
  CHECK_FALSE(reader.string("bad", true).has_value());
  CHECK_FALSE(reader.integer("missing", true, 0, 1).has_value());
  reader.fail("later", "a later failure");
  CHECK_FALSE(reader.ok());
  CHECK(reader.error().code == first.code);
  CHECK(reader.error().field == "data.cols");
  CHECK(reader.error().message == first.message);
}

TEST_CASE("reads that succeed before a failure keep their values") {
  const json data = json::parse(R"({"cols":80,"rows":0})");
  DataReader reader(data);
  CHECK(reader.integer("cols", true, 1, 1000) == 80);
  CHECK(reader.ok());
  CHECK_FALSE(reader.integer("rows", true, 1, 1000).has_value());
  check_failed_on(reader, "data.rows");
}

}  // namespace
}  // namespace ptyhub::protocol
