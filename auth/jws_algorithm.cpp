// The algorithm table: one row per accepted `alg`.
#include "auth/jws_algorithm.hpp"

namespace ptyhub::auth {
namespace {

constexpr JwsAlgorithm kAlgorithms[] = {
    {"HS256", KeyKind::hmac, &EVP_sha256},    {"HS384", KeyKind::hmac, &EVP_sha384},
    {"HS512", KeyKind::hmac, &EVP_sha512},    {"RS256", KeyKind::rsa, &EVP_sha256},
    {"RS384", KeyKind::rsa, &EVP_sha384},     {"RS512", KeyKind::rsa, &EVP_sha512},
    {"ES256", KeyKind::ec_p256, &EVP_sha256}, {"EdDSA", KeyKind::ed25519, nullptr},
};

}  // namespace

const JwsAlgorithm* find_jws_algorithm(std::string_view name) {
  for (const JwsAlgorithm& alg : kAlgorithms) {
    if (alg.name == name) return &alg;
  }
  return nullptr;
}

const JwsAlgorithm& hmac_jws_algorithm(HmacAlgorithm alg) {
  switch (alg) {
    case HmacAlgorithm::hs256: return kAlgorithms[0];
    case HmacAlgorithm::hs384: return kAlgorithms[1];
    case HmacAlgorithm::hs512: return kAlgorithms[2];
  }
  return kAlgorithms[0];
}

}  // namespace ptyhub::auth
