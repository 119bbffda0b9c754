// Tests for public-key JWTs (RS256/384/512, ES256, EdDSA): tokens signed with keys the `openssl` command
// line generated, against verifiers holding several keys; key selection by kid and by type, algorithm
// confusion, malformed signatures, and keys the verifier must refuse.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "auth/base64url.hpp"
#include "auth/jwt.hpp"
#include "tests/unit/auth/test_keys.hpp"

namespace ptyhub::auth {
namespace {

using json = nlohmann::json;
using test::test_key;
using test::TestKey;

constexpr std::string_view kSecret = "ptyhub-test-secret-0123456789abcdef";
constexpr int64_t kNow = 1'700'000'000;

json base_claims() {
  return {{"sub", "alice"}, {"exp", kNow + 600}, {"iat", kNow}, {"scope", "terminal:read"}};
}

std::string header(std::string_view alg, std::optional<json> kid = std::nullopt) {
  json header = {{"alg", alg}, {"typ", "JWT"}};
  if (kid) header["kid"] = *kid;
  return header.dump();
}

std::string signing_input(std::string_view header_json, const json& claims = base_claims()) {
  return base64url_encode(header_json) + "." + base64url_encode(claims.dump());
}

// A token signed by `key`'s private key through auth's own signer.
std::string sign(std::string_view alg, const TestKey& key, std::optional<json> kid, const json& claims = base_claims()) {
  std::string token = sign_jwt_with_private_key(alg, key.private_pem, header(alg, kid), claims.dump());
  REQUIRE_FALSE(token.empty());
  return token;
}

// The same token signed by the `openssl` command line instead.
std::string cli_sign(std::string_view alg, const TestKey& key, std::optional<json> kid) {
  const std::string input = signing_input(header(alg, kid));
  return input + "." + base64url_encode(test::cli_signature(key, input));
}

std::string with_signature(const std::string& token, std::string_view signature_bytes) {
  return token.substr(0, token.rfind('.') + 1) + base64url_encode(signature_bytes);
}

std::string signature_of(const std::string& token) {
  return base64url_decode(token.substr(token.rfind('.') + 1)).value_or("");
}

// The token with its payload swapped for another one; the signature is kept.
std::string with_payload(const std::string& token, const json& claims) {
  const size_t first = token.find('.');
  const size_t second = token.rfind('.');
  return token.substr(0, first + 1) + base64url_encode(claims.dump()) + token.substr(second);
}

PublicKey public_key(const TestKey& key, std::string alg = {}) { return PublicKey{key.name, key.public_pem, alg}; }

VerifierOptions options_with(const std::vector<std::string>& names, std::string_view secret = kSecret) {
  VerifierOptions options;
  options.hmac_secret = std::string(secret);
  for (const std::string& name : names) options.public_keys.push_back(public_key(test_key(name)));
  return options;
}

struct Case {
  std::string name;
  std::string token;
  const char* reason;  // nullptr: valid
};

void check_case(const JwtVerifier& verifier, const Case& c) {
  INFO("case: " << c.name);
  const VerifyResult result = verifier.verify(c.token, kNow);
  if (c.reason == nullptr) {
    CHECK(result.ok);
    CHECK(result.reason.empty());
    CHECK(result.claims.sub == "alice");
    return;
  }
  CHECK_FALSE(result.ok);
  CHECK(result.reason == c.reason);
  CHECK(result.claims.sub.empty());
}

void check_table(const JwtVerifier& verifier, const std::vector<Case>& cases) {
  REQUIRE(verifier.key_error().empty());
  for (const Case& c : cases) check_case(verifier, c);
}

// Signed with the right key of each type, selected by kid or, where the type has one key, without kid.
std::vector<Case> valid_cases() {
  const TestKey& rsa_a = test_key("rsa-a");
  const TestKey& ec_a = test_key("ec-a");
  const TestKey& ed_a = test_key("ed-a");
  return {
      {"RS256, kid rsa-a", sign("RS256", rsa_a, "rsa-a"), nullptr},
      {"RS256, kid rsa-b selects the other RSA key", sign("RS256", test_key("rsa-b"), "rsa-b"), nullptr},
      {"RS384, kid rsa-a", sign("RS384", rsa_a, "rsa-a"), nullptr},
      {"RS512, kid rsa-b", sign("RS512", test_key("rsa-b"), "rsa-b"), nullptr},
      {"ES256, kid ec-a", sign("ES256", ec_a, "ec-a"), nullptr},
      {"ES256 without kid (one EC key)", sign("ES256", ec_a, std::nullopt), nullptr},
      {"EdDSA, kid ed-a", sign("EdDSA", ed_a, "ed-a"), nullptr},
      {"EdDSA without kid (one Ed25519 key)", sign("EdDSA", ed_a, std::nullopt), nullptr},
      {"HS256 without kid (the secret)", sign_jwt(HmacAlgorithm::hs256, kSecret, header("HS256"),
                                                  base_claims().dump()), nullptr},
      {"RS256 signed by the openssl command line", cli_sign("RS256", rsa_a, "rsa-a"), nullptr},
      {"ES256 signed by the openssl command line", cli_sign("ES256", ec_a, "ec-a"), nullptr},
      {"EdDSA signed by the openssl command line", cli_sign("EdDSA", ed_a, "ed-a"), nullptr},
  };
}

// Wrong keys and altered tokens: each must fail at the signature.
std::vector<Case> signature_cases() {
  const std::string rs256 = sign("RS256", test_key("rsa-a"), "rsa-a");
  const std::string es256 = sign("ES256", test_key("ec-a"), "ec-a");
  const std::string eddsa = sign("EdDSA", test_key("ed-a"), "ed-a");
  const std::string es_raw = signature_of(es256);
  const std::string es_input = signing_input(header("ES256", "ec-a"));
  const std::string der = test::cli_der_signature(test_key("ec-a"), es_input);
  REQUIRE(der.size() != 64);
  const json mallory = {{"sub", "mallory"}, {"exp", kNow + 600}, {"scope", "admin"}};
  return {
      // Reason: signed by rsa-b, but the kid names rsa-a.
      {"RS256 signed by another RSA key", sign("RS256", test_key("rsa-b"), "rsa-a"), "bad signature"},
      {"ES256 signed by another EC key", sign("ES256", test_key("ec-b"), "ec-a"), "bad signature"},
      {"EdDSA signed by another Ed25519 key", sign("EdDSA", test_key("ed-b"), "ed-a"), "bad signature"},
      // Reason: the payload is not the one that was signed.
      {"RS256 with a tampered payload", with_payload(rs256, mallory), "bad signature"},
      {"ES256 with a tampered payload", with_payload(es256, mallory), "bad signature"},
      {"EdDSA with a tampered payload", with_payload(eddsa, mallory), "bad signature"},
      // Reason: JWS ES256 signatures are r||s (64 bytes); DER is another encoding, refused by length.
      {"ES256 with a valid DER signature", es_input + "." + base64url_encode(der), "bad signature"},
      {"ES256 signature of 63 bytes", with_signature(es256, es_raw.substr(0, 63)), "bad signature"},
      {"ES256 signature of 65 bytes", with_signature(es256, es_raw + '\0'), "bad signature"},
      {"ES256 signature r||s swapped", with_signature(es256, es_raw.substr(32) + es_raw.substr(0, 32)),
       "bad signature"},
      {"ES256 signature all zero", with_signature(es256, std::string(64, '\0')), "bad signature"},
      {"EdDSA signature truncated", with_signature(eddsa, signature_of(eddsa).substr(0, 63)), "bad signature"},
      {"RS256 empty signature", with_signature(rs256, ""), "bad signature"},
      // Reason: the header says RS512, the signature is over SHA-256.
      {"RS512 header on an RS256 signature",
       signing_input(header("RS512", "rsa-a")) + "." +
           base64url_encode(signature_of(sign("RS256", test_key("rsa-a"), "rsa-a"))),
       "bad signature"},
      // Reason: RSA verification of a 32-byte HMAC.
      {"RS256 header on a token MAC'd with the secret",
       sign_encoded(HmacAlgorithm::hs256, kSecret, signing_input(header("RS256", "rsa-a"))), "bad signature"},
      {"RS256 header, MAC'd with the RSA public key PEM",
       sign_encoded(HmacAlgorithm::hs256, test_key("rsa-a").public_pem, signing_input(header("RS256", "rsa-a"))),
       "bad signature"},
      // Reason: no kid, so the HMAC secret is used, and the PEM is not the secret.
      {"HS256 MAC'd with the RSA public key PEM, no kid",
       sign_jwt(HmacAlgorithm::hs256, test_key("rsa-a").public_pem, header("HS256"), base_claims().dump()),
       "bad signature"},
  };
}

std::string hs256_with_pem_secret(std::optional<json> kid) {
  return sign_jwt(HmacAlgorithm::hs256, test_key("rsa-a").public_pem, header("HS256", kid), base_claims().dump());
}

// The key cannot be chosen: each fails before any signature is computed.
std::vector<Case> selection_cases() {
  const TestKey& rsa_a = test_key("rsa-a");
  const std::string none_input = signing_input(header("none", "rsa-a"));
  return {
      // Reason: classic confusion — the RSA key's PEM as an HMAC secret; kid rsa-a names an RSA key.
      {"HS256 MAC'd with the RSA public key PEM, kid rsa-a", hs256_with_pem_secret("rsa-a"),
       "alg does not match key"},
      {"ES256 signed by ec-a, kid names the RSA key", sign("ES256", test_key("ec-a"), "rsa-a"),
       "alg does not match key"},
      {"RS256, kid names the EC key", sign("RS256", rsa_a, "ec-a"), "alg does not match key"},
      {"EdDSA, kid names the EC key", sign("EdDSA", test_key("ed-a"), "ec-a"), "alg does not match key"},
      // Reason: the secret has no kid, so an HS* token with a kid looks for a key that is not there.
      {"HS256 with a kid", sign_jwt(HmacAlgorithm::hs256, kSecret, header("HS256", "hmac"), base_claims().dump()),
       "unknown kid"},
      {"RS256, unknown kid", sign("RS256", rsa_a, "nope"), "unknown kid"},
      {"ES256 by a key not configured", sign("ES256", test_key("ec-b"), "ec-b"), "unknown kid"},
      {"RS256, empty kid", sign("RS256", rsa_a, ""), "unknown kid"},
      {"RS256, kid differs in case", sign("RS256", rsa_a, "RSA-A"), "unknown kid"},
      // Reason: two RSA keys are configured, so a token without kid is ambiguous.
      {"RS256 without kid, two RSA keys", sign("RS256", rsa_a, std::nullopt), "kid required"},
      {"RS256 header without kid on an HMAC", sign_encoded(HmacAlgorithm::hs256, kSecret, signing_input(header("RS256"))),
       "kid required"},
      {"kid a number", sign("RS256", rsa_a, 7), "invalid kid"},
      {"kid null", sign("RS256", rsa_a, nullptr), "invalid kid"},
      {"kid an array", sign("RS256", rsa_a, json::array({"rsa-a"})), "invalid kid"},
      {"alg none with kid, empty signature", none_input + ".", "alg none rejected"},
      {"alg none with kid, RSA signature", none_input + "." + base64url_encode(signature_of(sign("RS256", rsa_a, "rsa-a"))),
       "alg none rejected"},
      {"alg NONE", signing_input(header("NONE")) + ".", "alg none rejected"},
      {"alg PS256", signing_input(header("PS256", "rsa-a")) + ".AAAA", "unsupported alg"},
      {"alg ES384", signing_input(header("ES384", "ec-a")) + ".AAAA", "unsupported alg"},
      {"alg ES512", signing_input(header("ES512")) + ".AAAA", "unsupported alg"},
      {"alg Ed25519", signing_input(header("Ed25519", "ed-a")) + ".AAAA", "unsupported alg"},
      {"alg rs256", signing_input(header("rs256", "rsa-a")) + ".AAAA", "unsupported alg"},
  };
}

}  // namespace

TEST_CASE("jwt keys: valid tokens of every algorithm") {
  check_table(JwtVerifier(options_with({"rsa-a", "rsa-b", "ec-a", "ed-a"})), valid_cases());
}

TEST_CASE("jwt keys: wrong keys, tampering and malformed signatures") {
  check_table(JwtVerifier(options_with({"rsa-a", "rsa-b", "ec-a", "ed-a"})), signature_cases());
}

TEST_CASE("jwt keys: key selection, kid and algorithm table") {
  check_table(JwtVerifier(options_with({"rsa-a", "rsa-b", "ec-a", "ed-a"})), selection_cases());
}

TEST_CASE("jwt keys: without kid, the one key of each type") {
  const JwtVerifier verifier(options_with({"rsa-a", "ec-a", "ed-a"}));
  check_table(verifier, {
      {"RS256", sign("RS256", test_key("rsa-a"), std::nullopt), nullptr},
      {"RS512", sign("RS512", test_key("rsa-a"), std::nullopt), nullptr},
      {"ES256", sign("ES256", test_key("ec-a"), std::nullopt), nullptr},
      {"EdDSA", sign("EdDSA", test_key("ed-a"), std::nullopt), nullptr},
      {"HS384", sign_jwt(HmacAlgorithm::hs384, kSecret, header("HS384"), base_claims().dump()), nullptr},
      {"RS256 by an unconfigured RSA key", sign("RS256", test_key("rsa-b"), std::nullopt), "bad signature"},
      {"RS256 header on an HMAC", sign_encoded(HmacAlgorithm::hs256, kSecret, signing_input(header("RS256"))),
       "bad signature"},
      {"expired RS256", sign("RS256", test_key("rsa-a"), std::nullopt, {{"sub", "alice"}, {"exp", kNow - 60}}),
       "token expired"},
  });
}

TEST_CASE("jwt keys: public keys only, no shared secret") {
  const JwtVerifier verifier(options_with({"rsa-a", "ed-a"}, ""));
  check_table(verifier, {
      {"RS256", sign("RS256", test_key("rsa-a"), "rsa-a"), nullptr},
      {"HS256 with the old secret", sign_jwt(HmacAlgorithm::hs256, kSecret, header("HS256"), base_claims().dump()),
       "alg does not match key"},
      {"HS256 MAC'd with the RSA public key PEM, no kid", hs256_with_pem_secret(std::nullopt),
       "alg does not match key"},
      {"HS256 MAC'd with the RSA public key PEM, kid", hs256_with_pem_secret("rsa-a"), "alg does not match key"},
      {"HS256 with an empty MAC key", sign_jwt(HmacAlgorithm::hs256, "", header("HS256"), base_claims().dump()),
       "alg does not match key"},
      {"ES256 with no EC key", sign("ES256", test_key("ec-a"), std::nullopt), "alg does not match key"},
  });
}

TEST_CASE("jwt keys: a key limited to one alg (a JWK's alg)") {
  VerifierOptions options;
  options.public_keys = {public_key(test_key("rsa-a"), "RS256")};
  const JwtVerifier verifier(options);
  check_table(verifier, {
      {"RS256", sign("RS256", test_key("rsa-a"), "rsa-a"), nullptr},
      {"RS256 without kid", sign("RS256", test_key("rsa-a"), std::nullopt), nullptr},
      {"RS512", sign("RS512", test_key("rsa-a"), "rsa-a"), "alg does not match key"},
      {"RS384 without kid", sign("RS384", test_key("rsa-a"), std::nullopt), "alg does not match key"},
  });
}

TEST_CASE("jwt keys: keys a verifier refuses, and then accepts nothing") {
  struct BadKey {
    const char* name;
    PublicKey key;
    const char* error;  // a part of key_error()
  };
  const TestKey& rsa = test_key("rsa-a");
  const std::vector<BadKey> bad = {
      {"not PEM", {"k", "garbage", ""}, "no PEM public key"},
      {"empty kid", {"", rsa.public_pem, ""}, "empty kid"},
      {"private key PEM", {"k", rsa.private_pem, ""}, "no PEM public key"},
      {"EC P-384", {"k", test_key("ec-p384").public_pem, ""}, "only P-256"},
      {"RSA 1024", {"k", test_key("rsa-1024").public_pem, ""}, "at least 2048"},
      {"alg of another type", {"k", rsa.public_pem, "ES256"}, "does not suit"},
      {"alg HS256 on an RSA key", {"k", rsa.public_pem, "HS256"}, "does not suit"},
      {"unknown alg", {"k", rsa.public_pem, "PS256"}, "does not suit"},
  };
  for (const BadKey& b : bad) {
    INFO("key: " << b.name);
    VerifierOptions options = options_with({"ec-a"});
    options.public_keys.push_back(b.key);
    const JwtVerifier verifier(options);
    CHECK(verifier.key_error().find(b.error) != std::string::npos);
    CHECK(verifier.verify(sign("ES256", test_key("ec-a"), "ec-a"), kNow).reason == "bad key configuration");
  }
  VerifierOptions twice = options_with({"ec-a", "ec-a"});
  CHECK(JwtVerifier(twice).key_error() == "key \"ec-a\": duplicate kid");
}

TEST_CASE("jwt keys: copies and moves") {
  const JwtVerifier original(options_with({"rsa-a"}));
  const std::string token = sign("RS256", test_key("rsa-a"), "rsa-a");
  JwtVerifier copy(original);
  CHECK(copy.verify(token, kNow).ok);
  JwtVerifier moved(std::move(copy));
  CHECK(moved.verify(token, kNow).ok);
  CHECK(copy.verify(token, kNow).reason == "no key configured");  // NOLINT: moved-from on purpose
  copy = original;
  CHECK(copy.verify(token, kNow).ok);
  CHECK(original.verify(token, kNow).ok);
}

TEST_CASE("jwt keys: sign_jwt_with_private_key refuses what it cannot do") {
  const std::string payload = base_claims().dump();
  CHECK(sign_jwt_with_private_key("ES256", test_key("rsa-a").private_pem, header("ES256"), payload).empty());
  CHECK(sign_jwt_with_private_key("RS256", test_key("ed-a").private_pem, header("RS256"), payload).empty());
  CHECK(sign_jwt_with_private_key("HS256", test_key("rsa-a").private_pem, header("HS256"), payload).empty());
  CHECK(sign_jwt_with_private_key("PS256", test_key("rsa-a").private_pem, header("PS256"), payload).empty());
  CHECK(sign_jwt_with_private_key("RS256", "not a key", header("RS256"), payload).empty());
  CHECK(sign_jwt_with_private_key("RS256", test_key("rsa-a").public_pem, header("RS256"), payload).empty());
  CHECK(sign_jwt_with_private_key("ES256", test_key("ec-p384").private_pem, header("ES256"), payload).empty());
  const std::string es = sign_jwt_with_private_key("ES256", test_key("ec-a").private_pem, header("ES256"), payload);
  CHECK(signature_of(es).size() == 64);
  const std::string ed = sign_jwt_with_private_key("EdDSA", test_key("ed-a").private_pem, header("EdDSA"), payload);
  CHECK(signature_of(ed).size() == 64);
}

}  // namespace ptyhub::auth
