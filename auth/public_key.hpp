// Public keys for JWT signatures (RS256/RS384/RS512, ES256, EdDSA) and loading them from files.
//
// Ownership: a PublicKey is a plain value (a kid and PEM text), copied freely; no OpenSSL object
// outlives a call here. JwtVerifier parses the PEM again when it is built, so a verifier is rebuilt
// from VerifierOptions alone. load_public_keys reads files and blocks: call it at startup or from a
// worker (uv_queue_work) on reload, never on the loop thread. No exceptions escape on bad input
// (std::bad_alloc aside); errors are returned as text naming the file and the problem.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace ptyhub::auth {

struct PublicKey {
  std::string kid;  // non-empty; unique within one verifier
  std::string pem;  // "-----BEGIN PUBLIC KEY-----": RSA of >= 2048 bits, EC on P-256, or Ed25519
  std::string alg;  // empty: every algorithm of the key's type; else the only `alg` accepted (a JWK's "alg")
};

// Larger key files are refused unread.
inline constexpr size_t kMaxKeyFileBytes = 1024 * 1024;

// Loads every key the `paths` name, in order:
// - a directory: every regular file `*.pem` directly inside it, by name; kid = file name without ".pem";
//   a directory holding no `*.pem` is an error;
// - a file ending in ".json": a JWKS, see parse_jwks;
// - any other file: one PEM public key; kid = file name without its extension.
// Stored PEM is re-encoded by OpenSSL, so it holds the public key and nothing else. A kid seen twice
// (across all paths) is an error. On error `*error` is "<path>: <problem>" and `*out` is unchanged;
// on success `*out` is replaced.
bool load_public_keys(const std::vector<std::string>& paths, std::vector<PublicKey>* out, std::string* error);

// Parses a JWK Set (RFC 7517) {"keys":[...]}: kty "RSA" (n, e), "EC" (crv "P-256", x, y) or "OKP"
// (crv "Ed25519", x); `kid` is required; `alg`, when present, must suit the key and becomes
// PublicKey::alg. Keys with `use` other than "sig" are skipped; a set left with no key is an error, and
// so is any private member (d, p, q, dp, dq, qi, oth, k), an unknown kty or curve, or a duplicate kid.
// Appends to `*out` only on success; `*error` is "keys[N] (kid \"...\"): <problem>".
bool parse_jwks(std::string_view text, std::vector<PublicKey>* out, std::string* error);

}  // namespace ptyhub::auth
