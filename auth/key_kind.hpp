// The kinds of key a JWT may be verified with, and reading/writing public keys as PEM. Internal to auth/.
//
// Ownership: returned keys are owned by the caller's PkeyPtr; nothing is cached. Pure functions over
// strings (no file I/O), any thread. On failure the OpenSSL error queue is cleared, so no stale error
// is left for other OpenSSL users of the thread (the TLS edge).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "auth/openssl_ptr.hpp"

namespace ptyhub::auth {

// hmac is the shared secret; the others are the public-key types docs/protocol.md §2 Authentication allows.
enum class KeyKind { hmac, rsa, ec_p256, ed25519 };

inline constexpr int kMinRsaBits = 2048;

std::string_view key_kind_name(KeyKind kind);

// The kind of `key` (public or private): RSA of at least kMinRsaBits, EC on the named curve P-256, or
// Ed25519. Anything else (RSA-PSS, other curves, explicit EC parameters, Ed448, DSA...) sets `error`.
std::optional<KeyKind> classify_key(EVP_PKEY* key, std::string& error);

// The first "BEGIN PUBLIC KEY" (SubjectPublicKeyInfo) block of `pem`, when it is of a supported kind
// and passes OpenSSL's public-key check; otherwise nullptr and `error`.
PkeyPtr read_public_pem(std::string_view pem, KeyKind& kind, std::string& error);

// A private key of a supported kind (PKCS#8 or traditional PEM; encrypted keys are refused, never prompted for).
PkeyPtr read_private_pem(std::string_view pem, KeyKind& kind, std::string& error);

// `key`'s public half as a "BEGIN PUBLIC KEY" PEM; empty when OpenSSL fails.
std::string write_public_pem(EVP_PKEY* key);

// OpenSSL's check of a public key (RSA modulus and exponent sanity, EC point on the curve).
bool public_key_passes_check(EVP_PKEY* key);

}  // namespace ptyhub::auth
