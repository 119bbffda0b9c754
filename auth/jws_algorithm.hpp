// The JWS `alg` values ptyhub accepts, each tied to one key kind and digest. Internal to auth/.
//
// Ownership: a static table; the pointers handed out live for the whole program. Any thread.
#pragma once

#include <string_view>

#include "auth/jwt.hpp"
#include "auth/key_kind.hpp"

namespace ptyhub::auth {

struct JwsAlgorithm {
  std::string_view name;        // as in the JOSE header: "HS256", "RS256", "ES256", "EdDSA", ...
  KeyKind kind;                 // the only kind of key this algorithm may be verified with
  const EVP_MD* (*digest)();    // nullptr for EdDSA, which hashes internally
};

// HS256/384/512, RS256/384/512, ES256, EdDSA; nullptr for any other name (case-sensitive).
const JwsAlgorithm* find_jws_algorithm(std::string_view name);

const JwsAlgorithm& hmac_jws_algorithm(HmacAlgorithm alg);

}  // namespace ptyhub::auth
