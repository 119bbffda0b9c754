// JWT (RFC 7519) verification and minting for HMAC keys (HS256/HS384/HS512) using OpenSSL.
//
// Pure functions over strings: nothing of WebSockets or libuv, no I/O, no exceptions escape on
// untrusted input. MACs are compared in constant time (CRYPTO_memcmp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ptyhub::auth {

// Tokens longer than this are rejected before any decoding.
inline constexpr size_t kMaxTokenBytes = 16 * 1024;

struct Claims {
  std::string sub;
  std::vector<std::string> scopes;  // from `scope` (space-separated string) or `scp` (array of strings)
  int64_t exp = 0;                  // seconds since the epoch
  std::optional<int64_t> nbf;
  std::optional<int64_t> iat;
  std::optional<std::string> iss;
  std::optional<std::string> aud;  // when `aud` is an array, the verifier checks membership; this is the first
};

struct VerifierOptions {
  std::string hmac_secret;               // the shared secret (raw bytes)
  int64_t leeway_seconds = 30;           // allowed skew on exp / nbf / iat (negative counts as 0)
  std::optional<std::string> issuer;     // when set, `iss` must equal it (a token without `iss` fails)
  std::optional<std::string> audience;   // when set, `aud` (string or array) must contain it
};

struct VerifyResult {
  bool ok = false;
  Claims claims;          // valid when ok
  std::string reason;     // when !ok: short, safe to log and to send ("token expired", "bad signature", ...)
};

class JwtVerifier {
 public:
  explicit JwtVerifier(VerifierOptions options);
  // Verifies signature (alg must be HS256/HS384/HS512; `none` and others rejected), then claims:
  // `sub` (non-empty string) and `exp` (number) required; exp + leeway > now; nbf - leeway <= now;
  // iat - leeway <= now; iss/aud when configured. Tokens larger than 16 KiB are rejected unparsed.
  // An empty secret rejects every token. `kid` and `typ` are not looked at; a `crit` header is rejected.
  VerifyResult verify(std::string_view token, int64_t now_seconds) const;

 private:
  VerifierOptions options_;
};

enum class HmacAlgorithm { hs256, hs384, hs512 };

// Mints a signed token (for `ptyhubd token` and tests). `header_json` / `payload_json` are the
// exact JSON texts to sign, so tests can craft malformed tokens; see mint_token for the usual case.
std::string sign_jwt(HmacAlgorithm alg, std::string_view secret, std::string_view header_json,
                     std::string_view payload_json);
// Appends "." and the base64url MAC to an already encoded `header.payload` text, taken as is (so tests
// can sign texts that are not valid base64url).
std::string sign_encoded(HmacAlgorithm alg, std::string_view secret, std::string_view signing_input);
// {"alg":"HS256","typ":"JWT"} + {"sub","scope","iat","exp"} signed with HS256.
std::string mint_token(std::string_view secret, std::string_view sub, std::string_view scope, int64_t now_seconds,
                       int64_t ttl_seconds);

}  // namespace ptyhub::auth
