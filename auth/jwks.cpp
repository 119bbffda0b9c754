// JWK Set parsing: each JWK's parameters become an EVP_PKEY through OSSL_PARAM_BLD and
// EVP_PKEY_fromdata, are checked like a PEM key, and are stored re-encoded as PEM.
#include <openssl/core_names.h>
#include <openssl/err.h>

#include <nlohmann/json.hpp>

#include "auth/base64url.hpp"
#include "auth/jws_algorithm.hpp"
#include "auth/public_key.hpp"

namespace ptyhub::auth {
namespace {

using json = nlohmann::json;

constexpr size_t kP256CoordinateBytes = 32;
constexpr size_t kEd25519KeyBytes = 32;
constexpr const char* kPrivateMembers[] = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"};

std::string in_quotes(std::string_view text) { return "\"" + std::string(text) + "\""; }

// A string member, or nullptr when absent or not a string.
const std::string* string_member(const json& jwk, const char* name) {
  const auto it = jwk.find(name);
  if (it == jwk.end() || !it->is_string()) return nullptr;
  return &it->get_ref<const std::string&>();
}

// The bytes of a base64url member; false with `problem` when missing, not base64url, or empty.
bool member_bytes(const json& jwk, const char* name, std::string& out, std::string& problem) {
  const std::string* text = string_member(jwk, name);
  if (text == nullptr) {
    problem = "missing " + in_quotes(name);
    return false;
  }
  std::optional<std::string> bytes = base64url_decode(*text);
  if (!bytes || bytes->empty()) {
    problem = in_quotes(name) + " is not unpadded base64url";
    return false;
  }
  out = std::move(*bytes);
  return true;
}

bool member_bytes_of_size(const json& jwk, const char* name, size_t size, std::string& out, std::string& problem) {
  if (!member_bytes(jwk, name, out, problem)) return false;
  if (out.size() == size) return true;
  problem = in_quotes(name) + " is " + std::to_string(out.size()) + " bytes, " + std::to_string(size) + " expected";
  return false;
}

const unsigned char* bytes_of(const std::string& text) { return reinterpret_cast<const unsigned char*>(text.data()); }

PkeyPtr pkey_from_params(const char* type, OSSL_PARAM_BLD* build, std::string& problem) {
  const ParamsPtr params(OSSL_PARAM_BLD_to_param(build));
  const PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* key = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    ERR_clear_error();
    problem = "OpenSSL refuses the key parameters";
    return nullptr;
  }
  return PkeyPtr(key);
}

PkeyPtr rsa_from_jwk(const json& jwk, std::string& problem) {
  std::string n, e;
  if (!member_bytes(jwk, "n", n, problem) || !member_bytes(jwk, "e", e, problem)) return nullptr;
  // OSSL_PARAM_BLD keeps pointers to the BIGNUMs until to_param, inside pkey_from_params.
  const BignumPtr modulus(BN_bin2bn(bytes_of(n), static_cast<int>(n.size()), nullptr));
  const BignumPtr exponent(BN_bin2bn(bytes_of(e), static_cast<int>(e.size()), nullptr));
  const ParamBuildPtr build(OSSL_PARAM_BLD_new());
  if (!modulus || !exponent || !build || OSSL_PARAM_BLD_push_BN(build.get(), OSSL_PKEY_PARAM_RSA_N, modulus.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(build.get(), OSSL_PKEY_PARAM_RSA_E, exponent.get()) != 1) {
    problem = "cannot build RSA parameters";
    return nullptr;
  }
  return pkey_from_params("RSA", build.get(), problem);
}

PkeyPtr ec_from_jwk(const json& jwk, std::string& problem) {
  const std::string* crv = string_member(jwk, "crv");
  if (crv == nullptr || *crv != "P-256") {
    problem = "EC curve " + (crv ? in_quotes(*crv) : std::string("missing")) + ", only \"P-256\" is supported";
    return nullptr;
  }
  std::string x, y;
  if (!member_bytes_of_size(jwk, "x", kP256CoordinateBytes, x, problem) ||
      !member_bytes_of_size(jwk, "y", kP256CoordinateBytes, y, problem)) {
    return nullptr;
  }
  const std::string point = '\x04' + x + y;  // uncompressed SEC1 point
  const ParamBuildPtr build(OSSL_PARAM_BLD_new());
  if (!build || OSSL_PARAM_BLD_push_utf8_string(build.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(build.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) != 1) {
    problem = "cannot build EC parameters";
    return nullptr;
  }
  return pkey_from_params("EC", build.get(), problem);
}

PkeyPtr okp_from_jwk(const json& jwk, std::string& problem) {
  const std::string* crv = string_member(jwk, "crv");
  if (crv == nullptr || *crv != "Ed25519") {
    problem = "OKP curve " + (crv ? in_quotes(*crv) : std::string("missing")) + ", only \"Ed25519\" is supported";
    return nullptr;
  }
  std::string x;
  if (!member_bytes_of_size(jwk, "x", kEd25519KeyBytes, x, problem)) return nullptr;
  const ParamBuildPtr build(OSSL_PARAM_BLD_new());
  if (!build || OSSL_PARAM_BLD_push_octet_string(build.get(), OSSL_PKEY_PARAM_PUB_KEY, x.data(), x.size()) != 1) {
    problem = "cannot build Ed25519 parameters";
    return nullptr;
  }
  return pkey_from_params("ED25519", build.get(), problem);
}

PkeyPtr pkey_from_jwk(const json& jwk, std::string& problem) {
  const std::string* kty = string_member(jwk, "kty");
  if (kty == nullptr) {
    problem = "missing \"kty\"";
    return nullptr;
  }
  if (*kty == "RSA") return rsa_from_jwk(jwk, problem);
  if (*kty == "EC") return ec_from_jwk(jwk, problem);
  if (*kty == "OKP") return okp_from_jwk(jwk, problem);
  problem = "unsupported kty " + in_quotes(*kty) + " (RSA, EC or OKP expected)";
  return nullptr;
}

// The optional "alg" member, which must name an algorithm of `kind`.
bool read_jwk_alg(const json& jwk, KeyKind kind, std::string& alg, std::string& problem) {
  const auto it = jwk.find("alg");
  if (it == jwk.end()) return true;
  const JwsAlgorithm* found = it->is_string() ? find_jws_algorithm(it->get_ref<const std::string&>()) : nullptr;
  if (found == nullptr || found->kind != kind) {
    problem = "\"alg\" " + it->dump() + " does not suit a " + std::string(key_kind_name(kind)) + " key";
    return false;
  }
  alg = std::string(found->name);
  return true;
}

bool jwk_to_public_key(const json& jwk, PublicKey& key, std::string& problem) {
  for (const char* name : kPrivateMembers) {
    if (jwk.contains(name)) {
      problem = "holds private key material (" + in_quotes(name) + "); publish only the public key";
      return false;
    }
  }
  PkeyPtr pkey = pkey_from_jwk(jwk, problem);
  if (!pkey) return false;
  const std::optional<KeyKind> kind = classify_key(pkey.get(), problem);
  if (!kind) return false;
  if (!public_key_passes_check(pkey.get())) {
    problem = "public key fails OpenSSL's key check";
    return false;
  }
  if (!read_jwk_alg(jwk, *kind, key.alg, problem)) return false;
  key.pem = write_public_pem(pkey.get());
  if (key.pem.empty()) problem = "cannot encode the key as PEM";
  return !key.pem.empty();
}

// A "use" other than "sig" (encryption keys published alongside) is skipped, not refused.
bool is_signing_key(const json& jwk) {
  const auto use = jwk.find("use");
  return use == jwk.end() || *use == "sig";
}

// Why the signing key `jwk` cannot be used (empty when it can); fills `key` when it can.
std::string entry_problem(const json& jwk, const std::vector<PublicKey>& keys, PublicKey& key) {
  const std::string* kid = string_member(jwk, "kid");
  if (kid == nullptr || kid->empty()) return "missing \"kid\"";
  for (const PublicKey& seen : keys) {
    if (seen.kid == *kid) return "duplicate kid";
  }
  std::string problem;
  if (!jwk_to_public_key(jwk, key, problem)) return problem;
  key.kid = *kid;
  return {};
}

// Appends keys[index] to `keys` unless it is not a signing key; false with `error` naming the entry.
bool read_entry(const json& jwk, size_t index, std::vector<PublicKey>& keys, std::string& error) {
  std::string where = "keys[" + std::to_string(index) + "]";
  if (!jwk.is_object()) {
    error = where + ": not a JSON object";
    return false;
  }
  if (!is_signing_key(jwk)) return true;
  PublicKey key;
  const std::string problem = entry_problem(jwk, keys, key);
  if (problem.empty()) {
    keys.push_back(std::move(key));
    return true;
  }
  if (const std::string* kid = string_member(jwk, "kid")) where += " (kid " + in_quotes(*kid) + ")";
  error = where + ": " + problem;
  return false;
}

}  // namespace

bool parse_jwks(std::string_view text, std::vector<PublicKey>* out, std::string* error) {
  const json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded()) {
    *error = "not valid JSON";
    return false;
  }
  const auto keys = doc.is_object() ? doc.find("keys") : doc.end();
  if (!doc.is_object() || keys == doc.end() || !keys->is_array()) {
    *error = "not a JWK Set (an object with a \"keys\" array)";
    return false;
  }
  std::vector<PublicKey> parsed;
  for (size_t i = 0; i < keys->size(); ++i) {
    if (!read_entry((*keys)[i], i, parsed, *error)) return false;
  }
  if (parsed.empty()) {
    *error = "no signing key in the JWK Set";
    return false;
  }
  out->insert(out->end(), std::make_move_iterator(parsed.begin()), std::make_move_iterator(parsed.end()));
  return true;
}

}  // namespace ptyhub::auth
