// Tests of src/protocol/output_frame: the hand-built shell.output frame must be the same JSON message as
// the one built through a JSON tree (event_frame), for every kind of byte a PTY can produce. Which bytes
// become U+FFFD is tested in utf8_test.cpp.
#include "src/protocol/output_frame.hpp"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include <random>
#include <string>

#include "src/protocol/envelope.hpp"
#include "src/protocol/utf8.hpp"

namespace ptyhub::protocol {
namespace {

using nlohmann::json;

json parsed(const SharedFrame& frame) {
  json message = json::parse(frame->payload(), nullptr, false);
  REQUIRE_FALSE(message.is_discarded());
  return message;
}

// Reference: the text decoded one sequence at a time, each invalid subpart replaced, without the frame's
// word-at-a-time scan; nlohmann then does the JSON escaping.
std::string reference_text(std::string_view raw) {
  std::string out;
  for (size_t pos = 0; pos < raw.size();) {
    if (static_cast<unsigned char>(raw[pos]) < 0x80) {
      out.push_back(raw[pos++]);
      continue;
    }
    size_t invalid = 0;
    const size_t length = utf8_sequence_at(raw, pos, &invalid);
    out.append(length > 0 ? raw.substr(pos, length) : std::string_view("\xEF\xBF\xBD"));
    pos += length > 0 ? length : invalid;
  }
  return out;
}

json expected_utf8(std::string_view raw, uint64_t offset) {
  return parsed(event_frame(
      "shell.output", "shell:terminal:t1",
      {{"terminalId", "t1"}, {"offset", offset}, {"next", offset + raw.size()}, {"data", reference_text(raw)}}));
}

std::string base64_of(std::string_view raw) {
  std::string out(4 * ((raw.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(raw.data()), static_cast<int>(raw.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

TEST_CASE("shell_output_frame utf8 equals the JSON-tree frame for every byte value and invalid sequences") {
  std::string every_byte;
  for (int c = 0; c < 256; ++c) every_byte.push_back(static_cast<char>(c));
  const std::string cases[] = {
      "",
      "plain ascii text, longer than eight bytes",
      "quote \" backslash \\ slash / tab \t newline \n return \r bell \a escape \x1b[0m del \x7f",
      "\xE2\x82\xAC euro, \xF0\x9F\x98\x80 emoji, \xC3\xA9 e-acute",
      "\xC0\xAF overlong, \xED\xA0\x80 surrogate, \xF4\x90\x80\x80 too large, \xE2\x82 truncated end \xF0\x9F",
      every_byte,
  };
  for (const std::string& raw : cases) {
    CAPTURE(raw);
    const SharedFrame frame = shell_output_frame("shell:terminal:t1", "t1", 1000, raw, OutputEncoding::utf8);
    CHECK(parsed(frame) == expected_utf8(raw, 1000));
    CHECK(utf8_valid(frame->payload()));
  }
}

TEST_CASE("shell_output_frame utf8 on random bytes at every alignment") {
  std::mt19937 random(7);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> kind(0, 3);
  for (int round = 0; round < 300; ++round) {
    std::string raw;
    const int length = round % 97;
    for (int i = 0; i < length; ++i) {
      // Mostly ASCII, so runs of plain bytes meet specials at every position of an 8-byte word.
      raw.push_back(static_cast<char>(kind(random) == 0 ? byte(random) : 0x20 + byte(random) % 0x5f));
    }
    CAPTURE(round);
    CHECK(parsed(shell_output_frame("shell:terminal:t1", "t1", 5, raw, OutputEncoding::utf8)) == expected_utf8(raw, 5));
  }
}

TEST_CASE("shell_output_frame base64 carries the exact bytes and says so") {
  std::string raw;
  for (int c = 0; c < 1000; ++c) raw.push_back(static_cast<char>((c * 37) & 0xff));
  for (size_t length : {size_t{0}, size_t{1}, size_t{2}, size_t{3}, size_t{1000}}) {
    const std::string_view piece = std::string_view(raw).substr(0, length);
    const json message = parsed(shell_output_frame("shell:terminal:t1", "t1", 7, piece, OutputEncoding::base64));
    const json expected = {{"type", "shell.output"},
                           {"channel", "shell:terminal:t1"},
                           {"data",
                            {{"terminalId", "t1"},
                             {"offset", 7},
                             {"next", 7 + length},
                             {"data", base64_of(piece)},
                             {"encoding", "base64"}}}};
    CHECK(message == expected);
  }
}

TEST_CASE("append_json_string quotes and escapes identifiers too") {
  std::string out = "x";
  append_json_string(out, "a\"b\\c\x01");
  CHECK(out == "x\"a\\\"b\\\\c\\u0001\"");
}

}  // namespace
}  // namespace ptyhub::protocol
