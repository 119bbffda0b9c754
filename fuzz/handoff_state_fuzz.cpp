// Fuzzes the live-upgrade state decoder (src/upgrade/handoff_state): the state a new image reads from the
// old one. Inputs are taken three ways, so that the fuzzer gets past the header and its SHA-256 digest: the
// whole state as bytes; a CBOR body wrapped in a valid header; a JSON text turned into that CBOR body
// (its ring, carry and input strings made byte strings).
// Properties: decode_state never crashes and refuses with a reason; a state it accepts encodes to bytes
// that decode to a state encoding to the very same bytes.
#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "fuzz/fuzz_check.hpp"
#include "src/upgrade/handoff_state.hpp"

namespace {

using namespace ptyhub::upgrade;

// Appends `value` as `bytes` little-endian bytes.
void put_le(std::string& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
}

// The header of the format (magic, version, length, SHA-256 of the body) followed by `body`.
std::string wrap(std::string_view body) {
  static constexpr char kMagic[16] = {'P', 'T', 'Y', 'H', 'U', 'B', '-', 'H', 'A', 'N', 'D', 'O', 'F', 'F', '\n', '\0'};
  std::string out(kMagic, sizeof kMagic);
  put_le(out, kStateVersion, 4);
  put_le(out, body.size(), 8);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  FUZZ_CHECK(EVP_Digest(body.data(), body.size(), digest, &length, EVP_sha256(), nullptr) == 1);
  out.append(reinterpret_cast<const char*>(digest), length);
  out.append(body);
  return out;
}

// Decodes `state`; when accepted, checks that encoding is stable across a round trip.
void check(std::string_view state) {
  std::string error;
  const auto decoded = decode_state(state, &error);
  if (!decoded) {
    FUZZ_CHECK(!error.empty());
    return;
  }
  const std::string encoded = encode_state(*decoded);
  const auto again = decode_state(encoded, &error);
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(encode_state(*again) == encoded);
}

// JSON cannot hold CBOR byte strings: the string members a terminal keeps as bytes become bytes.
void make_binary(nlohmann::json& body) {
  if (!body.is_object() || !body.contains("terminals") || !body["terminals"].is_array()) return;
  for (nlohmann::json& terminal : body["terminals"]) {
    if (!terminal.is_object()) continue;
    for (const char* key : {"ring", "carry", "input"}) {
      if (!terminal.contains(key) || !terminal[key].is_string()) continue;
      const std::string text = terminal[key].get<std::string>();
      terminal[key] = nlohmann::json::binary(std::vector<uint8_t>(text.begin(), text.end()));
    }
  }
}

}  // namespace

// The first byte picks how the rest is read.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(bytes) + 1, size - 1);
  switch (bytes[0] % 3) {
    case 0: check(rest); break;
    case 1: check(wrap(rest)); break;
    default: {
      nlohmann::json body = nlohmann::json::parse(rest, nullptr, false);
      if (body.is_discarded()) break;
      make_binary(body);
      const std::vector<uint8_t> cbor = nlohmann::json::to_cbor(body);
      check(wrap({reinterpret_cast<const char*>(cbor.data()), cbor.size()}));
      break;
    }
  }
  return 0;
}
