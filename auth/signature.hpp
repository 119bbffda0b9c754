// Computing and checking JWS signatures (RFC 7515/7518, RFC 8037) over OpenSSL EVP. Internal to auth/.
//
// Ownership: keys are borrowed for the duration of a call; every OpenSSL object made here is freed
// before returning. Pure functions, any thread (an EVP_PKEY may be shared by concurrent verifications).
// Signatures are in their JWS form: HMAC and RSA bytes as is, ES256 as the 64-byte r||s (never DER),
// Ed25519 as its 64 bytes. Failures clear the OpenSSL error queue.
#pragma once

#include <string>
#include <string_view>

#include "auth/jws_algorithm.hpp"

namespace ptyhub::auth {

// The raw MAC of `data` with `alg`'s digest; empty if OpenSSL fails.
std::string hmac_sign(const JwsAlgorithm& alg, std::string_view secret, std::string_view data);
// Recomputes the MAC and compares it in constant time (CRYPTO_memcmp).
bool hmac_verify(const JwsAlgorithm& alg, std::string_view secret, std::string_view data, std::string_view mac);

// Verifies a public-key signature; `key` must be of `alg.kind` (the caller has checked).
// An ES256 signature other than exactly 64 bytes is refused before OpenSSL sees it.
bool verify_signature(const JwsAlgorithm& alg, EVP_PKEY* key, std::string_view data, std::string_view signature);
// Signs with a private key of `alg.kind`; empty on failure.
std::string sign_with_key(const JwsAlgorithm& alg, EVP_PKEY* key, std::string_view data);

}  // namespace ptyhub::auth
