// Tests of src/protocol/utf8: where an output chunk may end (utf8_complete_prefix), how invalid bytes are
// replaced in shell.output (Unicode §3.9 maximal subparts; through shell_output_frame) and validation
// (utf8_valid).
// The chunker below frames bytes the way docs/protocol.md §6 The output stream requires for shell.output
// with encoding "utf8".
#include "src/protocol/utf8.hpp"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "src/protocol/output_frame.hpp"

namespace ptyhub::protocol {
namespace {

// The text a utf8 subscriber receives for `raw`: the data of the shell.output frame the daemon builds.
std::string sanitized(std::string_view raw) {
  const auto frame = shell_output_frame("shell:terminal:t", "t", 0, raw, OutputEncoding::utf8);
  return nlohmann::json::parse(frame->payload())["data"]["data"].get<std::string>();
}

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

// Bytes as "e2 82 ac" for failure messages.
std::string hex(std::string_view bytes) {
  std::string out;
  for (unsigned char b : bytes) {
    char buffer[4];
    std::snprintf(buffer, sizeof buffer, "%02x", b);
    if (!out.empty()) out += ' ';
    out += buffer;
  }
  return out;
}

std::string replacements(size_t count) {
  std::string out;
  for (size_t i = 0; i < count; ++i) out += kReplacement;
  return out;
}

// Frames reads into chunks: each read is appended to the bytes carried from the previous one, the
// complete prefix is emitted as a chunk and the rest is carried. finish() emits what is left.
class Chunker {
 public:
  void feed(std::string_view read) {
    carry_ += read;
    const size_t complete = utf8_complete_prefix(carry_);
    REQUIRE(complete <= carry_.size());
    CHECK(carry_.size() - complete <= 3);
    if (complete > 0) chunks_.push_back(carry_.substr(0, complete));
    carry_.erase(0, complete);
  }

  void finish() {
    if (!carry_.empty()) chunks_.push_back(carry_);
    carry_.clear();
  }

  const std::vector<std::string>& chunks() const { return chunks_; }

  // Sum of the chunks' raw lengths: what `next - offset` adds up to over the stream.
  size_t raw_bytes() const {
    size_t total = 0;
    for (const std::string& chunk : chunks_) total += chunk.size();
    return total;
  }

  std::string joined() const {
    std::string out;
    for (const std::string& chunk : chunks_) out += chunk;
    return out;
  }

  // What a client receives: every chunk sanitized on its own.
  std::string sanitized() const {
    std::string out;
    for (const std::string& chunk : chunks_) out += protocol::sanitized(chunk);
    return out;
  }

 private:
  std::string carry_;
  std::vector<std::string> chunks_;
};

struct Character {
  const char* name;
  std::string_view bytes;
};

// One or more characters of every encoded length, including the edges of each lead byte's range.
const std::vector<Character>& characters() {
  static const std::vector<Character> table = {
      {"U+0041 'A'", "A"},
      {"U+0000", std::string_view("\0", 1)},
      {"U+007F", "\x7F"},
      {"U+0080", "\xC2\x80"},
      {"U+00E9", "\xC3\xA9"},
      {"U+07FF", "\xDF\xBF"},
      {"U+0800", "\xE0\xA0\x80"},
      {"U+20AC", "\xE2\x82\xAC"},
      {"U+D7FF", "\xED\x9F\xBF"},
      {"U+E000", "\xEE\x80\x80"},
      {"U+FFFD", "\xEF\xBF\xBD"},
      {"U+FFFF", "\xEF\xBF\xBF"},
      {"U+10000", "\xF0\x90\x80\x80"},
      {"U+1F600", "\xF0\x9F\x98\x80"},
      {"U+40000", "\xF1\x80\x80\x80"},
      {"U+10FFFF", "\xF4\x8F\xBF\xBF"},
  };
  return table;
}

// Texts made of several characters: each class repeated, and the classes mixed.
std::vector<std::string> sample_texts() {
  std::vector<std::string> texts;
  std::string all;
  for (const Character& c : characters()) {
    texts.push_back(std::string(c.bytes) + std::string(c.bytes) + std::string(c.bytes));
    texts.push_back("x" + std::string(c.bytes) + "y" + std::string(c.bytes));
    all += c.bytes;
  }
  texts.push_back(all);
  return texts;
}

TEST_CASE("every sample character is valid UTF-8 and survives sanitize unchanged") {
  for (const Character& c : characters()) {
    CAPTURE(c.name);
    CHECK(utf8_valid(c.bytes));
    CHECK(sanitized(c.bytes) == c.bytes);
    CHECK(utf8_complete_prefix(c.bytes) == c.bytes.size());
  }
}

TEST_CASE("a text split in two at every position is re-framed on character boundaries") {
  for (const std::string& text : sample_texts()) {
    for (size_t split = 0; split <= text.size(); ++split) {
      CAPTURE(hex(text));
      CAPTURE(split);
      Chunker chunker;
      chunker.feed(std::string_view(text).substr(0, split));
      chunker.feed(std::string_view(text).substr(split));
      chunker.finish();
      CHECK(chunker.joined() == text);
      CHECK(chunker.raw_bytes() == text.size());
      for (const std::string& chunk : chunker.chunks()) {
        CAPTURE(hex(chunk));
        CHECK(utf8_valid(chunk));
      }
      CHECK(chunker.sanitized() == text);
    }
  }
}

TEST_CASE("a text fed one byte at a time comes out one whole character per chunk") {
  std::string text;
  for (const Character& c : characters()) text += c.bytes;
  Chunker chunker;
  for (char byte : text) chunker.feed(std::string_view(&byte, 1));
  chunker.finish();
  CHECK(chunker.joined() == text);
  CHECK(chunker.raw_bytes() == text.size());
  REQUIRE(chunker.chunks().size() == characters().size());
  for (size_t i = 0; i < characters().size(); ++i) {
    CAPTURE(characters()[i].name);
    CHECK(chunker.chunks()[i] == characters()[i].bytes);
    CHECK(utf8_valid(chunker.chunks()[i]));
  }
}

struct SanitizeCase {
  const char* name;
  std::string_view input;
  std::string expected;
};

std::vector<SanitizeCase> invalid_cases() {
  const std::string r = std::string(kReplacement);
  return {
      {"lone continuation byte", "\x80", r},
      {"lone continuation byte 0xBF", "\xBF", r},
      {"two continuation bytes", "\x80\x80", replacements(2)},
      {"overlong 2-byte 0xC0 0xAF", "\xC0\xAF", replacements(2)},
      {"overlong 2-byte 0xC1 0xBF", "\xC1\xBF", replacements(2)},
      {"overlong 3-byte 0xE0 0x80 0x80", "\xE0\x80\x80", replacements(3)},
      {"overlong 3-byte 0xE0 0x9F 0xBF", "\xE0\x9F\xBF", replacements(3)},
      {"surrogate 0xED 0xA0 0x80", "\xED\xA0\x80", replacements(3)},
      {"surrogate 0xED 0xBF 0xBF", "\xED\xBF\xBF", replacements(3)},
      {"overlong 4-byte 0xF0 0x8F 0xBF 0xBF", "\xF0\x8F\xBF\xBF", replacements(4)},
      {"above U+10FFFF 0xF4 0x90 0x80 0x80", "\xF4\x90\x80\x80", replacements(4)},
      {"truncated 3-byte then ASCII", "\xE2\x82" "A", r + "A"},
      {"truncated 2-byte then ASCII", "\xC3" "A", r + "A"},
      {"truncated 4-byte at end of input", "\xF0\x9F\x98", r},
      {"truncated 4-byte then ASCII", "\xF0\x9F\x98" "A", r + "A"},
      {"truncated 2-byte at end of input", "\xC3", r},
      {"lead byte then a whole character", "\xE2" "\xE2\x82\xAC", r + "\xE2\x82\xAC"},
      {"truncated 3-byte then a 4-byte character", "\xE2\x82" "\xF0\x9F\x98\x80", r + "\xF0\x9F\x98\x80"},
      {"mixed valid and invalid", "a\x80" "b\xC3\xA9\xFF" "c", "a" + r + "b\xC3\xA9" + r + "c"},
      // The example of Unicode §3.9, Table 3-8: 61 F1 80 80 E1 80 C2 62 80 63 80 BF 64.
      {"Unicode table 3-8",
       "\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64",
       "a" + replacements(3) + "b" + r + "c" + replacements(2) + "d"},
  };
}

TEST_CASE("invalid sequences become one U+FFFD per maximal subpart") {
  for (const SanitizeCase& c : invalid_cases()) {
    CAPTURE(c.name);
    CAPTURE(hex(c.input));
    const std::string out = sanitized(c.input);
    CAPTURE(hex(out));
    CHECK(out == c.expected);
    CHECK(utf8_valid(out));
    CHECK_FALSE(utf8_valid(c.input));
  }
}

TEST_CASE("bytes 0xF5 to 0xFF are each replaced, alone and among text") {
  for (unsigned value = 0xF5; value <= 0xFF; ++value) {
    const char byte = static_cast<char>(value);
    CAPTURE(value);
    const std::string alone(1, byte);
    CHECK(sanitized(alone) == kReplacement);
    CHECK_FALSE(utf8_valid(alone));
    CHECK(utf8_complete_prefix(alone) == 1);
    const std::string followed = std::string(1, byte) + "\x80\x80\x80";
    CHECK(sanitized(followed) == replacements(4));
    const std::string surrounded = "a" + std::string(1, byte) + "b";
    CHECK(sanitized(surrounded) == "a" + std::string(kReplacement) + "b");
  }
}

TEST_CASE("a chunked stream with invalid bytes reads exactly like the whole stream") {
  for (const SanitizeCase& c : invalid_cases()) {
    // Surround the case with characters so that splits land before, inside and after it.
    const std::string text = "\xC3\xA9" + std::string(c.input) + "\xF0\x9F\x98\x80" + "z";
    const std::string whole = sanitized(text);
    for (size_t split = 0; split <= text.size(); ++split) {
      CAPTURE(c.name);
      CAPTURE(split);
      Chunker chunker;
      chunker.feed(std::string_view(text).substr(0, split));
      chunker.feed(std::string_view(text).substr(split));
      chunker.finish();
      CHECK(chunker.raw_bytes() == text.size());
      CHECK(chunker.joined() == text);
      CHECK(chunker.sanitized() == whole);
    }
    Chunker bytewise;
    for (char byte : text) bytewise.feed(std::string_view(&byte, 1));
    bytewise.finish();
    CAPTURE(c.name);
    CHECK(bytewise.raw_bytes() == text.size());
    CHECK(bytewise.sanitized() == whole);
  }
}

TEST_CASE("utf8_complete_prefix waits only for sequences that can still complete") {
  struct Case {
    std::string_view input;
    size_t expected;
  };
  const Case cases[] = {
      {"", 0},
      {"A", 1},
      {"\xFF", 1},
      {"\x80", 1},
      {"\xC0", 1},                        // never a lead byte
      {"\xC3", 0},                        // 2-byte lead
      {"a\xE2\x82", 1},
      {"\xE2\x82\xAC", 3},
      {"\xF0\x9F", 0},
      {"\xF0\x9F\x98", 0},
      {"abc\xF0\x9F\x98", 3},
      {"\xF0\x9F\x98\x80", 4},
      {"\xED\x9F", 0},                    // may still become U+D7FF
      {"\xED\xA0", 2},                    // a surrogate can never complete
      {"\xE0\x80", 2},                    // overlong can never complete
      {"\xF0\x8F", 2},                    // overlong can never complete
      {"\xF4\x90", 2},                    // above U+10FFFF can never complete
      {"\xF4\x8F\xBF", 0},                // may still become U+10FFFF
      {"\xE2\x82" "A", 3},
      {"\xE2\x82\xF0\x9F", 2},            // E2 82 is broken by F0, which may still complete
      {"\xE2\xF0", 1},
      {"\xC3\xA9\xC3", 2},
      {"xyz\xE2\x82\xAC\xC3", 6},
  };
  for (const Case& c : cases) {
    CAPTURE(hex(c.input));
    CHECK(utf8_complete_prefix(c.input) == c.expected);
  }
}

TEST_CASE("utf8_valid accepts well-formed text and rejects anything else") {
  CHECK(utf8_valid(""));
  CHECK(utf8_valid("plain ASCII"));
  CHECK(utf8_valid("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"));
  CHECK_FALSE(utf8_valid("caf\xC3"));
  CHECK_FALSE(utf8_valid("\xF0\x9F\x98"));
  CHECK_FALSE(utf8_valid("ok\xFF"));
  CHECK_FALSE(utf8_valid("\xED\xA0\x80"));
}

TEST_CASE("sanitising a long ASCII run next to replacements keeps every byte") {
  const std::string run(10000, 'q');
  const std::string text = run + "\xFF" + run + "\xE2\x82";
  CHECK(sanitized(text) == run + std::string(kReplacement) + run + std::string(kReplacement));
}

}  // namespace
}  // namespace ptyhub::protocol
