// Loading what verifies tokens: the HMAC secret file and the public keys named by the configuration.
// Plain file I/O with no loop: called at start, and on a libuv worker thread for a SIGHUP reload.
#pragma once

#include <string>

#include "auth/jwt.hpp"
#include "src/config.hpp"

namespace ptyhub {

// Reads a secret file: the whole file, one trailing newline ignored. False with `error` when unreadable
// or empty.
bool read_secret_file(const std::string& path, std::string* secret, std::string* error);

// The verifier options of `config`: secret (jwt_secret_file), public keys (jwt_public_key), leeway,
// issuer, audience. At least one secret or key is required.
bool load_verifier_options(const Config& config, auth::VerifierOptions* out, std::string* error);

}  // namespace ptyhub
