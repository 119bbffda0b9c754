// Loading what verifies tokens: the HMAC secret file and the public keys named by the configuration.
// Plain file I/O with no loop: called at start, and on a libuv worker thread for a SIGHUP reload.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "auth/jwt.hpp"

namespace ptyhub {

// Reads a secret file: the whole file, one trailing newline ignored. False with `error` when unreadable,
// empty, shorter than 32 bytes (RFC 7518 §3.2) or larger than 64 KiB, or when others may read it or
// anyone but its owner may write it (mode & 0026: group-readable is fine, for a service group).
bool read_secret_file(const std::string& path, std::string* secret, std::string* error);

// The settings that say how tokens are verified (docs/configuration.md).
struct KeySettings {
  std::string jwt_secret_file;
  std::vector<std::string> jwt_public_key;
  std::string jwt_issuer;    // empty: iss is not checked
  std::string jwt_audience;  // empty: aud is not checked
  int64_t jwt_leeway_seconds = 30;
};

// The verifier options of `settings`: secret (jwt_secret_file), public keys (jwt_public_key), leeway,
// issuer, audience. At least one secret or key is required.
bool load_verifier_options(const KeySettings& settings, auth::VerifierOptions* out, std::string* error);

}  // namespace ptyhub
