// base64url on top of OpenSSL's standard-alphabet codec: the text is validated strictly here (alphabet,
// no padding, possible length, zero trailing bits) and only then translated and handed to OpenSSL.
#include "auth/base64url.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <climits>
#include <cstddef>

namespace ptyhub::auth {
namespace {

// Whole groups of 3 bytes, so every chunk but the last encodes without padding.
constexpr size_t kEncodeChunk = 3 * 16 * 1024;
// EVP_DecodeBlock takes an int length; anything near that is not a JWT part anyway.
constexpr size_t kMaxDecodeText = INT_MAX / 2;

// The 6-bit value of a base64url character, or -1 when it is outside the alphabet.
int sextet(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

// True when `text` is canonical unpadded base64url: alphabet only, a length that is not 1 mod 4, and
// the unused low bits of the last character zero (so each byte string has exactly one encoding).
bool is_canonical(std::string_view text) {
  if (text.size() % 4 == 1 || text.size() > kMaxDecodeText) return false;
  for (char c : text) {
    if (sextet(c) < 0) return false;
  }
  if (text.empty()) return true;
  const int last = sextet(text.back());
  switch (text.size() % 4) {
    case 2: return (last & 0x0f) == 0;  // 12 bits carry 1 byte
    case 3: return (last & 0x03) == 0;  // 18 bits carry 2 bytes
    default: return true;
  }
}

void encode_chunk(std::string_view bytes, std::string& out) {
  const size_t start = out.size();
  out.resize(start + 4 * ((bytes.size() + 2) / 3) + 1);  // EVP_EncodeBlock writes a NUL
  const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data() + start),
                                      reinterpret_cast<const unsigned char*>(bytes.data()),
                                      static_cast<int>(bytes.size()));
  out.resize(start + static_cast<size_t>(written));
}

}  // namespace

std::string base64url_encode(std::string_view bytes) {
  std::string out;
  out.reserve(4 * ((bytes.size() + 2) / 3) + 1);
  for (size_t pos = 0; pos < bytes.size(); pos += kEncodeChunk) {
    encode_chunk(bytes.substr(pos, kEncodeChunk), out);
  }
  while (!out.empty() && out.back() == '=') out.pop_back();
  std::replace(out.begin(), out.end(), '+', '-');
  std::replace(out.begin(), out.end(), '/', '_');
  return out;
}

std::optional<std::string> base64url_decode(std::string_view text) {
  if (!is_canonical(text)) return std::nullopt;
  std::string padded(text);
  std::replace(padded.begin(), padded.end(), '-', '+');
  std::replace(padded.begin(), padded.end(), '_', '/');
  const size_t pad = (4 - text.size() % 4) % 4;
  padded.append(pad, '=');

  std::string out(padded.size() / 4 * 3, '\0');
  const int written = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                      reinterpret_cast<const unsigned char*>(padded.data()),
                                      static_cast<int>(padded.size()));
  if (written < 0 || static_cast<size_t>(written) != out.size()) return std::nullopt;
  out.resize(out.size() - pad);  // EVP_DecodeBlock counts the padding as zero bytes
  return out;
}

}  // namespace ptyhub::auth
