// Tests for auth/public_key: loading PEM files, directories of PEM files and JWKS files built from keys
// the `openssl` command line generated; the errors for bad files, and the JWKS rejection table.
#include "auth/public_key.hpp"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
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

constexpr int64_t kNow = 1'700'000'000;

std::string token(std::string_view alg, const TestKey& key, std::string_view kid) {
  const json header = {{"alg", alg}, {"kid", kid}};
  const json claims = {{"sub", "alice"}, {"exp", kNow + 600}};
  return sign_jwt_with_private_key(alg, key.private_pem, header.dump(), claims.dump());
}

std::string write(const std::string& dir, const std::string& name, std::string_view text) {
  const std::string path = dir + "/" + name;
  REQUIRE(test::write_file(path, text));
  return path;
}

std::vector<std::string> kids_of(const std::vector<PublicKey>& keys) {
  std::vector<std::string> kids;
  for (const PublicKey& key : keys) kids.push_back(key.kid);
  return kids;
}

// Loads `paths` expecting failure; the error, with `*out` checked to be untouched.
std::string load_error(const std::vector<std::string>& paths) {
  std::vector<PublicKey> out = {PublicKey{"sentinel", "", ""}};
  std::string error;
  CHECK_FALSE(load_public_keys(paths, &out, &error));
  CHECK(kids_of(out) == std::vector<std::string>{"sentinel"});
  return error;
}

json jwks_of(std::vector<json> jwks) { return {{"keys", jwks}}; }

std::string flip_last_bit(const std::string& b64) {
  std::string bytes = base64url_decode(b64).value();
  bytes.back() = static_cast<char>(bytes.back() ^ 1);
  return base64url_encode(bytes);
}

json with(json jwk, const char* key, json value) {
  jwk[key] = std::move(value);
  return jwk;
}

json without(json jwk, const char* key) {
  jwk.erase(key);
  return jwk;
}

struct BadJwks {
  const char* name;
  std::string text;
  const char* error;  // a part of the error
};

std::vector<BadJwks> bad_jwks_cases() {
  const json rsa = test::public_jwk(test_key("rsa-a"));
  const json ec = test::public_jwk(test_key("ec-a"));
  const json ed = test::public_jwk(test_key("ed-a"));
  const auto set = [](std::vector<json> keys) { return jwks_of(std::move(keys)).dump(); };
  return {
      {"not JSON", "{keys:", "not valid JSON"},
      {"a JSON array", "[]", "not a JWK Set"},
      {"no keys member", "{}", "not a JWK Set"},
      {"keys not an array", R"({"keys":{}})", "not a JWK Set"},
      {"no key at all", R"({"keys":[]})", "no signing key"},
      {"only an encryption key", set({with(rsa, "use", "enc")}), "no signing key"},
      {"an entry not an object", set({rsa, 5}), "keys[1]: not a JSON object"},
      {"missing kid", set({without(ec, "kid")}), "keys[0]: missing \"kid\""},
      {"empty kid", set({with(ec, "kid", "")}), "missing \"kid\""},
      {"kid a number", set({with(ec, "kid", 3)}), "missing \"kid\""},
      {"missing kty", set({without(rsa, "kty")}), "missing \"kty\""},
      {"kty oct (a shared secret)", set({json{{"kty", "oct"}, {"kid", "s"}, {"k", "c2VjcmV0"}}}), "private key"},
      {"kty unknown", set({with(rsa, "kty", "DSA")}), "unsupported kty \"DSA\""},
      {"RSA without n", set({without(rsa, "n")}), "missing \"n\""},
      {"RSA n padded with '='", set({with(rsa, "n", rsa["n"].get<std::string>() + "=")}), "not unpadded base64url"},
      {"RSA e not a string", set({with(rsa, "e", 65537)}), "missing \"e\""},
      {"RSA of 1024 bits", set({test::public_jwk(test_key("rsa-1024"))}), "at least 2048"},
      {"RSA with a private exponent", set({with(rsa, "d", "AQAB")}), "private key material (\"d\")"},
      {"EC on P-384", set({with(ec, "crv", "P-384")}), "only \"P-256\""},
      {"EC without crv", set({without(ec, "crv")}), "EC curve missing"},
      {"EC x of 31 bytes", set({with(ec, "x", base64url_encode(std::string(31, 'x')))}), "\"x\" is 31 bytes"},
      {"EC without y", set({without(ec, "y")}), "missing \"y\""},
      {"EC point not on the curve", set({with(ec, "y", flip_last_bit(ec["y"]))}), "OpenSSL refuses"},
      {"EC with a private key", set({with(ec, "d", ec["x"])}), "private key material"},
      {"OKP on Ed448", set({with(ed, "crv", "Ed448")}), "only \"Ed25519\""},
      {"OKP x of 33 bytes", set({with(ed, "x", base64url_encode(std::string(33, 'x')))}), "\"x\" is 33 bytes"},
      {"alg of another type", set({with(rsa, "alg", "ES256")}), "\"alg\" \"ES256\" does not suit a RSA key"},
      {"alg HS256 on an EC key", set({with(ec, "alg", "HS256")}), "does not suit"},
      {"alg none", set({with(ed, "alg", "none")}), "does not suit"},
      {"alg a number", set({with(ed, "alg", 1)}), "does not suit"},
      {"duplicate kid", set({ec, with(ed, "kid", "ec-a")}), "keys[1] (kid \"ec-a\"): duplicate kid"},
  };
}

}  // namespace

TEST_CASE("public keys: a directory loads every *.pem, kid from the file name") {
  const std::string dir = test::fresh_dir("keys");
  write(dir, "rsa-a.pem", test_key("rsa-a").public_pem);
  write(dir, "ed-a.pem", test_key("ed-a").public_pem);
  write(dir, "ec-a.pem", test_key("ec-a").public_pem);
  write(dir, "README.txt", "not a key");
  test::fresh_dir("keys/nested.pem");  // a directory, skipped
  std::vector<PublicKey> keys;
  std::string error;
  REQUIRE(load_public_keys({dir}, &keys, &error));
  CHECK(error.empty());
  CHECK(kids_of(keys) == std::vector<std::string>{"ec-a", "ed-a", "rsa-a"});
  CHECK(keys[2].pem == test_key("rsa-a").public_pem);
  CHECK(keys[2].alg.empty());

  VerifierOptions options;
  options.public_keys = keys;
  const JwtVerifier verifier(options);
  REQUIRE(verifier.key_error().empty());
  CHECK(verifier.verify(token("RS256", test_key("rsa-a"), "rsa-a"), kNow).ok);
  CHECK(verifier.verify(token("ES256", test_key("ec-a"), "ec-a"), kNow).ok);
  CHECK(verifier.verify(token("EdDSA", test_key("ed-a"), "ed-a"), kNow).ok);
  CHECK(verifier.verify(token("EdDSA", test_key("ed-b"), "ed-a"), kNow).reason == "bad signature");
}

TEST_CASE("public keys: a PEM file, kid = name without extension, re-encoded") {
  const std::string dir = test::fresh_dir("single");
  const std::string path = write(dir, "issuer-2024.pub", "comment line\n" + test_key("ed-b").public_pem);
  const std::string dotted = write(dir, "rsa.signing.pem", test_key("rsa-b").public_pem);
  std::vector<PublicKey> keys;
  std::string error;
  REQUIRE(load_public_keys({path, dotted}, &keys, &error));
  CHECK(kids_of(keys) == std::vector<std::string>{"issuer-2024", "rsa.signing"});
  CHECK(keys[0].pem == test_key("ed-b").public_pem);  // the comment is gone
  REQUIRE(load_public_keys({}, &keys, &error));
  CHECK(keys.empty());
}

TEST_CASE("public keys: a JWKS file of RSA, EC P-256 and Ed25519 keys") {
  json ed = test::public_jwk(test_key("ed-a"));
  ed["alg"] = "EdDSA";
  ed["use"] = "sig";
  json enc = test::public_jwk(test_key("rsa-b"));
  enc["use"] = "enc";
  const json set = jwks_of({test::public_jwk(test_key("rsa-a")), test::public_jwk(test_key("ec-a")), ed, enc});
  const std::string path = write(test::fresh_dir("jwks"), "idp.json", set.dump(2));
  std::vector<PublicKey> keys;
  std::string error;
  REQUIRE(load_public_keys({path}, &keys, &error));
  REQUIRE(kids_of(keys) == std::vector<std::string>{"rsa-a", "ec-a", "ed-a"});  // the "enc" key skipped
  // The parameters rebuild exactly the keys the command line wrote.
  CHECK(keys[0].pem == test_key("rsa-a").public_pem);
  CHECK(keys[1].pem == test_key("ec-a").public_pem);
  CHECK(keys[2].pem == test_key("ed-a").public_pem);
  CHECK(keys[2].alg == "EdDSA");

  VerifierOptions options;
  options.public_keys = keys;
  const JwtVerifier verifier(options);
  CHECK(verifier.verify(token("RS256", test_key("rsa-a"), "rsa-a"), kNow).ok);
  CHECK(verifier.verify(token("ES256", test_key("ec-a"), "ec-a"), kNow).ok);
  CHECK(verifier.verify(token("EdDSA", test_key("ed-a"), "ed-a"), kNow).ok);
  CHECK(verifier.verify(token("RS256", test_key("rsa-b"), "rsa-b"), kNow).reason == "unknown kid");
}

TEST_CASE("public keys: JWKS rejection table") {
  for (const BadJwks& c : bad_jwks_cases()) {
    INFO("case: " << c.name << "\n" << c.text);
    std::vector<PublicKey> keys = {PublicKey{"sentinel", "", ""}};
    std::string error;
    CHECK_FALSE(parse_jwks(c.text, &keys, &error));
    CHECK(error.find(c.error) != std::string::npos);
    CHECK(keys.size() == 1);
  }
}

TEST_CASE("public keys: errors name the file and the problem") {
  const std::string dir = test::fresh_dir("bad");
  const std::string pem = test_key("rsa-a").public_pem;
  const auto error_for = [&](const std::string& name, std::string_view text) {
    return load_error({write(dir, name, text)});
  };
  CHECK(error_for("garbage.pem", "-----BEGIN PUBLIC KEY-----\nnot base64!\n-----END PUBLIC KEY-----\n") ==
        dir + "/garbage.pem: no PEM public key (-----BEGIN PUBLIC KEY-----) found");
  CHECK(error_for("truncated.pem", pem.substr(0, pem.size() / 2)).starts_with(dir + "/truncated.pem: no PEM"));
  CHECK(error_for("empty.pem", "").starts_with(dir + "/empty.pem: no PEM"));
  CHECK(error_for("private.pem", test_key("ec-a").private_pem).starts_with(dir + "/private.pem: no PEM"));
  CHECK(error_for("p384.pem", test_key("ec-p384").public_pem) ==
        dir + "/p384.pem: EC key on curve secp384r1, only P-256 is supported");
  CHECK(error_for("short.pem", test_key("rsa-1024").public_pem) ==
        dir + "/short.pem: RSA key of 1024 bits, at least 2048 required");
  CHECK(error_for("huge.pem", std::string(kMaxKeyFileBytes + 1, 'A')).find("larger than") != std::string::npos);
  CHECK(error_for("keys.json", R"({"keys":[{"kty":"EC"}]})") == dir + "/keys.json: keys[0]: missing \"kid\"");
  CHECK(load_error({dir + "/missing.pem"}) == dir + "/missing.pem: No such file or directory");
  CHECK(load_error({test::fresh_dir("empty")}).ends_with("/empty: no *.pem file in the directory"));
  CHECK(load_error({""}) == "empty key path");
}

TEST_CASE("public keys: a kid seen twice is an error naming both files") {
  const std::string dir = test::fresh_dir("dup");
  write(dir, "ec-a.pem", test_key("ec-a").public_pem);
  const std::string other = write(test::fresh_dir("dup-other"), "ec-a.pem", test_key("ec-b").public_pem);
  CHECK(load_error({dir, other}) == other + ": duplicate kid \"ec-a\" (also in " + dir + "/ec-a.pem)");
  const std::string jwks = write(test::fresh_dir("dup-jwks"), "set.json",
                                 jwks_of({test::public_jwk(test_key("ec-a"))}).dump());
  CHECK(load_error({dir, jwks}) == jwks + ": duplicate kid \"ec-a\" (also in " + dir + "/ec-a.pem)");
  CHECK(load_error({dir, dir}).find("duplicate kid \"ec-a\"") != std::string::npos);
}

}  // namespace ptyhub::auth
