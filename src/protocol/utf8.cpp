// UTF-8 validation by the well-formed byte sequences of Unicode Table 3-7.
#include "src/protocol/utf8.hpp"

#include <cstdint>

namespace ptyhub::protocol {
namespace {

enum class StepKind { valid, invalid, truncated };

struct Step {
  StepKind kind;
  size_t length;  // bytes consumed: the sequence, the maximal invalid subpart, or what is left
};

// Sequence length for a lead byte and the allowed range of its second byte; 0 length = invalid lead.
struct Lead {
  size_t length;
  uint8_t second_min;
  uint8_t second_max;
};

Lead classify_lead(uint8_t b) {
  if (b < 0x80) return {1, 0, 0};
  if (b >= 0xC2 && b <= 0xDF) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) return {3, 0x80, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};
  if (b == 0xF0) return {4, 0x90, 0xBF};
  if (b >= 0xF1 && b <= 0xF3) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

// Decodes the sequence starting at `pos`.
Step next_step(std::string_view bytes, size_t pos) {
  const auto byte_at = [&](size_t i) { return static_cast<uint8_t>(bytes[i]); };
  const Lead lead = classify_lead(byte_at(pos));
  if (lead.length == 0) return {StepKind::invalid, 1};
  for (size_t k = 1; k < lead.length; ++k) {
    if (pos + k >= bytes.size()) return {StepKind::truncated, k};
    const uint8_t b = byte_at(pos + k);
    const uint8_t lo = k == 1 ? lead.second_min : 0x80;
    const uint8_t hi = k == 1 ? lead.second_max : 0xBF;
    if (b < lo || b > hi) return {StepKind::invalid, k};
  }
  return {StepKind::valid, lead.length};
}

}  // namespace

size_t utf8_complete_prefix(std::string_view bytes) {
  // Only the last three bytes can start an incomplete sequence; scan from the earliest candidate lead.
  const size_t start = bytes.size() > 3 ? bytes.size() - 3 : 0;
  for (size_t pos = start; pos < bytes.size(); ++pos) {
    const uint8_t b = static_cast<uint8_t>(bytes[pos]);
    if (b < 0xC2 || b > 0xF4) continue;  // not a multi-byte lead
    const Step step = next_step(bytes, pos);
    if (step.kind == StepKind::truncated) return pos;
  }
  return bytes.size();
}

size_t utf8_sequence_at(std::string_view bytes, size_t pos, size_t* invalid_length) {
  const Step step = next_step(bytes, pos);
  if (step.kind == StepKind::valid) return step.length;
  *invalid_length = step.length;
  return 0;
}

bool utf8_valid(std::string_view bytes) {
  size_t pos = 0;
  while (pos < bytes.size()) {
    const Step step = next_step(bytes, pos);
    if (step.kind != StepKind::valid) return false;
    pos += step.length;
  }
  return true;
}

}  // namespace ptyhub::protocol
