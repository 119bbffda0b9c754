// JWT (RFC 7519) verification and minting using OpenSSL: HS256/HS384/HS512 with a shared secret,
// RS256/RS384/RS512, ES256 and EdDSA (Ed25519) with public keys selected by `kid`.
//
// Ownership: a JwtVerifier owns a copy of its options and the OpenSSL keys parsed from them (freed with
// it); it is immutable after construction, so verify() may run on any thread. Rebuilding one from
// VerifierOptions only parses PEM text (no I/O): on reload, load the keys off the loop, build a new
// verifier and swap it in. Pure functions over strings: nothing of WebSockets or libuv, no exceptions
// escape on untrusted input. MACs are compared in constant time (CRYPTO_memcmp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/public_key.hpp"

namespace ptyhub::auth {

class KeyRing;

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
  std::string hmac_secret;               // the shared secret (raw bytes); empty: HS* tokens are refused
  int64_t leeway_seconds = 30;           // allowed skew on exp / nbf / iat (negative counts as 0)
  std::optional<std::string> issuer;     // when set, `iss` must equal it (a token without `iss` fails)
  std::optional<std::string> audience;   // when set, `aud` (string or array) must contain it
  std::vector<PublicKey> public_keys;    // see load_public_keys; each kid unique (last: keeps aggregate order)
};

struct VerifyResult {
  bool ok = false;
  Claims claims;          // valid when ok
  std::string reason;     // when !ok: short, safe to log and to send ("token expired", "bad signature", ...)
};

class JwtVerifier {
 public:
  explicit JwtVerifier(VerifierOptions options);
  // Copies parse the keys again; a moved-from verifier rejects every token.
  JwtVerifier(const JwtVerifier& other);
  JwtVerifier& operator=(const JwtVerifier& other);
  JwtVerifier(JwtVerifier&& other) noexcept;
  JwtVerifier& operator=(JwtVerifier&& other) noexcept;
  ~JwtVerifier();

  // Verifies the signature, then the claims: `sub` (non-empty string) and `exp` (number) required;
  // exp + leeway > now; nbf - leeway <= now; iat - leeway <= now; iss/aud when configured. Tokens larger
  // than 16 KiB are rejected unparsed; `alg: none`, unknown algorithms and a `crit` header are rejected.
  // The key (docs/protocol.md §2 Authentication): a token with `kid` is checked against the public key of
  // that kid only ("unknown kid" when none; "alg does not match key" when the key is of another type, so an
  // HS* token is never checked against a public key's PEM bytes, nor an RS256 token against the secret). The
  // shared secret has no kid: an HS* token that carries a `kid` is never checked against it. A token
  // without `kid` is checked against the one key of its algorithm's type: the secret for HS*, else the
  // only RSA / EC P-256 / Ed25519 key ("kid required" when there are several).
  // With no secret and no public key every token gets "no key configured"; when key_error() is set,
  // every token gets "bad key configuration".
  VerifyResult verify(std::string_view token, int64_t now_seconds) const;

  // Empty when every key of the options could be used; otherwise the first problem, e.g.
  // `key "a": duplicate kid`. The daemon should refuse such options (this verifier accepts nothing).
  const std::string& key_error() const;
  // The allowed clock skew of the options, in seconds (never negative).
  int64_t leeway_seconds() const { return options_.leeway_seconds < 0 ? 0 : options_.leeway_seconds; }

 private:
  VerifierOptions options_;
  std::unique_ptr<const KeyRing> keys_;
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

// Signs with a private key (PEM, unencrypted) for tests and tooling. `alg` is RS256/RS384/RS512 (RSA key),
// ES256 (EC P-256 key; the signature in JWS r||s form) or EdDSA (Ed25519 key); the header text is taken as
// is, so it may name another alg or a kid. Returns an empty string when the key cannot be read or does not
// suit `alg` (HS* included: use sign_jwt).
std::string sign_jwt_with_private_key(std::string_view alg, std::string_view private_key_pem,
                                      std::string_view header_json, std::string_view payload_json);
// As sign_encoded: appends "." and the signature to an already encoded `header.payload`.
std::string sign_encoded_with_private_key(std::string_view alg, std::string_view private_key_pem,
                                          std::string_view signing_input);

}  // namespace ptyhub::auth
