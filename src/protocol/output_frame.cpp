// shell.output frames without a JSON tree: one pass over the raw bytes, one allocation per frame.
#include "src/protocol/output_frame.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>

#include "src/protocol/utf8.hpp"

namespace ptyhub::protocol {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
constexpr char kHex[] = "0123456789abcdef";

// Bytes copied into a JSON string as they are: printable ASCII other than '"' and '\'.
constexpr std::array<bool, 256> kPlain = [] {
  std::array<bool, 256> plain{};
  for (int c = 0x20; c < 0x80; ++c) plain[c] = c != '"' && c != '\\';
  return plain;
}();

// True when none of the 8 bytes of `word` needs work: no byte < 0x20, >= 0x80, '"' or '\'.
bool all_plain(uint64_t word) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = 0x8080808080808080ULL;
  const auto has_zero = [](uint64_t v) { return (v - kOnes) & ~v & kHigh; };
  const uint64_t below_space = (word - kOnes * 0x20) & ~word & kHigh;
  const uint64_t special = has_zero(word ^ (kOnes * '"')) | has_zero(word ^ (kOnes * '\\'));
  return ((word & kHigh) | below_space | special) == 0;
}

// Writes the escaped, sanitised text of `raw` at `out` (room for 6 bytes per input byte); returns the end.
char* write_escaped(char* out, std::string_view raw) {
  const size_t n = raw.size();
  size_t pos = 0;
  while (pos < n) {
    while (pos + 8 <= n) {
      uint64_t word;
      std::memcpy(&word, raw.data() + pos, 8);
      if (!all_plain(word)) break;
      std::memcpy(out, &word, 8);
      out += 8;
      pos += 8;
    }
    if (pos >= n) break;
    const auto c = static_cast<unsigned char>(raw[pos]);
    if (kPlain[c]) {
      *out++ = static_cast<char>(c);
      ++pos;
      continue;
    }
    if (c >= 0x80) {
      size_t invalid = 0;
      const size_t length = utf8_sequence_at(raw, pos, &invalid);
      if (length > 0) {
        std::memcpy(out, raw.data() + pos, length);
        out += length;
        pos += length;
      } else {
        std::memcpy(out, kReplacement.data(), kReplacement.size());
        out += kReplacement.size();
        pos += invalid;
      }
      continue;
    }
    *out++ = '\\';
    switch (c) {
      case '"': *out++ = '"'; break;
      case '\\': *out++ = '\\'; break;
      case '\b': *out++ = 'b'; break;
      case '\f': *out++ = 'f'; break;
      case '\n': *out++ = 'n'; break;
      case '\r': *out++ = 'r'; break;
      case '\t': *out++ = 't'; break;
      default:
        *out++ = 'u';
        *out++ = '0';
        *out++ = '0';
        *out++ = kHex[c >> 4];
        *out++ = kHex[c & 0xF];
    }
    ++pos;
  }
  return out;
}

// A growable scratch buffer reused across frames (loop thread only).
char* scratch(size_t size) {
  static std::unique_ptr<char[]> buffer;
  static size_t capacity = 0;
  if (size > capacity) {
    capacity = std::max(size, 2 * capacity);
    buffer = std::make_unique_for_overwrite<char[]>(capacity);
  }
  return buffer.get();
}

}  // namespace

void append_json_string(std::string& out, std::string_view raw) {
  const size_t start = out.size();
  out.resize(start + 6 * raw.size() + 2);
  char* begin = out.data() + start;
  *begin = '"';
  char* end = write_escaped(begin + 1, raw);
  *end++ = '"';
  out.resize(static_cast<size_t>(end - out.data()));
}

SharedFrame shell_output_frame(std::string_view channel, std::string_view terminal_id, uint64_t offset,
                               std::string_view raw, OutputEncoding encoding) {
  std::string head = R"({"type":"shell.output","channel":)";
  append_json_string(head, channel);
  head += R"(,"data":{"terminalId":)";
  append_json_string(head, terminal_id);
  head += R"(,"offset":)";
  head += std::to_string(offset);
  head += R"(,"next":)";
  head += std::to_string(offset + raw.size());
  head += R"(,"data":")";
  if (encoding == OutputEncoding::base64) {
    char* out = scratch(4 * ((raw.size() + 2) / 3) + 1);  // EVP_EncodeBlock adds a NUL
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out),
                                  reinterpret_cast<const unsigned char*>(raw.data()), static_cast<int>(raw.size()));
    return std::make_shared<Frame>(
        std::initializer_list<std::string_view>{head, {out, static_cast<size_t>(n)}, R"(","encoding":"base64"}})"});
  }
  char* out = scratch(6 * raw.size());
  const char* end = write_escaped(out, raw);
  return std::make_shared<Frame>(
      std::initializer_list<std::string_view>{head, {out, static_cast<size_t>(end - out)}, R"("}})"});
}

}  // namespace ptyhub::protocol
