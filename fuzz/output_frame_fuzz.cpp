// Fuzzes the shell.output encoder (raw PTY bytes -> JSON frame) against reference decoders written here,
// independently of src/protocol: the frame parses as JSON, its offsets are right, its base64 data decodes
// to exactly the input bytes, and its utf8 data equals the input with each maximal invalid subpart
// replaced by U+FFFD (so valid UTF-8 comes back unchanged). Also checks utf8_valid, utf8_complete_prefix
// and the strict base64 decoder of shell.input against the same references.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "fuzz/fuzz_check.hpp"
#include "src/protocol/base64.hpp"
#include "src/protocol/output_frame.hpp"
#include "src/protocol/utf8.hpp"

namespace {

using nlohmann::json;
using namespace ptyhub::protocol;

constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

// RFC 4648 §4 encoding with padding.
std::string reference_base64(std::string_view bytes) {
  std::string out;
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    for (int shift : {18, 12, 6, 0}) out.push_back(kAlphabet[(v >> shift) & 63]);
  }
  if (bytes.size() - i == 1) {
    const uint32_t v = uint8_t(bytes[i]) << 16;
    out += {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], '=', '='};
  } else if (bytes.size() - i == 2) {
    const uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8);
    out += {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], kAlphabet[(v >> 6) & 63], '='};
  }
  return out;
}

// Decoding by brute force: the canonical text of some bytes, or nullopt.
std::optional<std::string> reference_unbase64(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  size_t data_chars = text.size();
  while (data_chars > 0 && text[data_chars - 1] == '=') --data_chars;
  if (text.size() - data_chars > 2) return std::nullopt;
  for (size_t i = 0; i < data_chars; ++i) {
    const size_t v = kAlphabet.find(text[i]);
    if (v == std::string_view::npos) return std::nullopt;
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(char((acc >> bits) & 0xFF));
    }
  }
  if (reference_base64(out) != text) return std::nullopt;  // non-canonical (unused bits, padding)
  return out;
}

// The bounds of the second byte of a sequence led by `lead` (Unicode Table 3-7), or false for no lead.
bool second_byte_range(uint8_t lead, size_t* length, uint8_t* low, uint8_t* high) {
  *low = 0x80;
  *high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) *length = 2;
  else if (lead == 0xE0) *length = 3, *low = 0xA0;
  else if (lead == 0xED) *length = 3, *high = 0x9F;
  else if (lead >= 0xE1 && lead <= 0xEF) *length = 3;
  else if (lead == 0xF0) *length = 4, *low = 0x90;
  else if (lead == 0xF4) *length = 4, *high = 0x8F;
  else if (lead >= 0xF1 && lead <= 0xF3) *length = 4;
  else return false;
  return true;
}

// `bytes` with each maximal invalid subpart (or incomplete tail) replaced by U+FFFD.
std::string reference_sanitise(std::string_view bytes) {
  std::string out;
  size_t i = 0;
  while (i < bytes.size()) {
    const uint8_t lead = uint8_t(bytes[i]);
    if (lead < 0x80) {
      out.push_back(char(lead));
      ++i;
      continue;
    }
    size_t length = 0;
    uint8_t low = 0, high = 0;
    if (!second_byte_range(lead, &length, &low, &high)) {
      out += kReplacement;
      ++i;
      continue;
    }
    size_t good = 1;
    while (good < length && i + good < bytes.size()) {
      const uint8_t b = uint8_t(bytes[i + good]);
      const bool ok = good == 1 ? (b >= low && b <= high) : (b >= 0x80 && b <= 0xBF);
      if (!ok) break;
      ++good;
    }
    if (good == length) out.append(bytes.substr(i, length));
    else out += kReplacement;
    i += good;
  }
  return out;
}

// The data member of a shell.output frame, after checking the frame around it.
json frame_data(const SharedFrame& frame, uint64_t offset, size_t raw_size) {
  const json parsed = json::parse(frame->payload(), nullptr, false);
  FUZZ_CHECK(!parsed.is_discarded());
  FUZZ_CHECK(parsed.value("type", "") == "shell.output");
  const json& data = parsed.at("data");
  FUZZ_CHECK(data.at("terminalId") == "t-1");
  FUZZ_CHECK(data.at("offset").get<uint64_t>() == offset);
  FUZZ_CHECK(data.at("next").get<uint64_t>() == offset + raw_size);
  return data;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  const std::string_view raw(reinterpret_cast<const char*>(bytes), size);
  const uint64_t offset = size > 0 ? uint64_t(bytes[0]) << 32 : 0;

  const json b64 = frame_data(shell_output_frame("term:t-1", "t-1", offset, raw, OutputEncoding::base64), offset, size);
  FUZZ_CHECK(b64.at("encoding") == "base64");
  const auto decoded = reference_unbase64(b64.at("data").get<std::string>());
  FUZZ_CHECK(decoded.has_value() && *decoded == raw);

  const json text = frame_data(shell_output_frame("term:t-1", "t-1", offset, raw, OutputEncoding::utf8), offset, size);
  FUZZ_CHECK(!text.contains("encoding") || text.at("encoding") == "utf8");
  const std::string sanitised = reference_sanitise(raw);
  FUZZ_CHECK(text.at("data").get<std::string>() == sanitised);

  FUZZ_CHECK(utf8_valid(raw) == (sanitised == raw));
  const size_t prefix = utf8_complete_prefix(raw);
  FUZZ_CHECK(prefix <= size && size - prefix <= 3);
  if (utf8_valid(raw)) FUZZ_CHECK(prefix == size);

  // shell.input's decoder: exactly the canonical texts decode, to the reference's bytes.
  const auto mine = base64_decode(raw);
  const auto reference = reference_unbase64(raw);
  FUZZ_CHECK(mine.has_value() == reference.has_value());
  if (mine) FUZZ_CHECK(*mine == *reference);
  const auto round = base64_decode(reference_base64(raw));
  FUZZ_CHECK(round.has_value() && *round == raw);
  return 0;
}
