// The keys of one JwtVerifier, parsed once, and the choice of key for a token. Internal to auth/.
//
// Ownership: a KeyRing owns its parsed EVP_PKEYs (PkeyPtr) and a copy of the shared secret; the
// KeyRef it hands out borrows from it and is valid while the ring lives. Immutable after
// construction, so one ring may serve concurrent verifications.
//
// Selection (docs/protocol.md §2 Authentication):
// - a token with `kid` uses the public key of that kid: none → "unknown kid"; a key whose kind or JWK
//   `alg` does not fit the token's alg → "alg does not match key". The shared secret has no kid, so an
//   HS* token that carries a kid is never checked against the secret (unknown kid, or a mismatch).
// - a token without `kid` uses the one key of its algorithm's kind: the secret for HS*, the single
//   RSA / EC P-256 / Ed25519 key otherwise; none → "alg does not match key"; several → "kid required".
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/jws_algorithm.hpp"
#include "auth/public_key.hpp"

namespace ptyhub::auth {

// The key a token is checked with: `secret` for HS*, `key` for the others.
struct KeyRef {
  std::string_view secret;
  EVP_PKEY* key = nullptr;
};

class KeyRing {
 public:
  // Keys that cannot be used (bad PEM, unsupported kind, empty or duplicate kid, unsuitable alg) are left
  // out and the first problem is kept in error().
  KeyRing(std::string hmac_secret, const std::vector<PublicKey>& keys);

  // Empty when every configured key is usable.
  const std::string& error() const { return error_; }
  bool empty() const { return secret_.empty() && entries_.empty(); }

  // The key for a token of `alg` with `kid` (nullptr: no kid), or the reason to reject it.
  std::optional<std::string_view> select(const JwsAlgorithm& alg, const std::string* kid, KeyRef& out) const;

 private:
  struct Entry {
    std::string kid;
    std::string alg;  // empty: any algorithm of `kind`
    KeyKind kind;
    PkeyPtr key;
  };

  void add(const PublicKey& key);
  std::optional<std::string_view> select_by_kid(const JwsAlgorithm& alg, const std::string& kid, KeyRef& out) const;
  std::optional<std::string_view> select_by_kind(const JwsAlgorithm& alg, KeyRef& out) const;

  std::string secret_;
  std::vector<Entry> entries_;
  std::string error_;
};

}  // namespace ptyhub::auth
