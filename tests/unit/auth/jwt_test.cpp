// Tests for auth/base64url and auth/jwt: a table of good and bad tokens against one verifier, the
// claim details (scopes, iss/aud), minting, and base64url round trips and rejections.
#include "auth/jwt.hpp"

#include <doctest/doctest.h>

#include <cctype>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "auth/base64url.hpp"

namespace ptyhub::auth {
namespace {

using json = nlohmann::json;

constexpr std::string_view kSecret = "ptyhub-test-secret-0123456789abcdef";
constexpr int64_t kNow = 1'700'000'000;
constexpr const char* kAnyReason = "*";

std::string header_for(HmacAlgorithm alg) {
  switch (alg) {
    case HmacAlgorithm::hs256: return R"({"alg":"HS256","typ":"JWT"})";
    case HmacAlgorithm::hs384: return R"({"alg":"HS384","typ":"JWT"})";
    case HmacAlgorithm::hs512: return R"({"alg":"HS512","typ":"JWT"})";
  }
  return {};
}

json base_claims() {
  return {{"sub", "alice"}, {"exp", kNow + 600}, {"iat", kNow}, {"scope", "terminal:read terminal:write"}};
}

json with(json claims, const char* key, json value) {
  claims[key] = std::move(value);
  return claims;
}

json without(json claims, const char* key) {
  claims.erase(key);
  return claims;
}

std::string make(const json& claims, HmacAlgorithm alg = HmacAlgorithm::hs256, std::string_view secret = kSecret) {
  return sign_jwt(alg, secret, header_for(alg), claims.dump());
}

// A token whose header is `header_json`, MAC'd with the test secret by HS256.
std::string with_header(std::string_view header_json, const json& claims = base_claims()) {
  return sign_jwt(HmacAlgorithm::hs256, kSecret, header_json, claims.dump());
}

std::string encoded_header(HmacAlgorithm alg = HmacAlgorithm::hs256) { return base64url_encode(header_for(alg)); }

std::string to_standard_alphabet(std::string text) {
  for (char& c : text) {
    if (c == '-') c = '+';
    if (c == '_') c = '/';
  }
  return text;
}

// A claims set whose base64url text contains '-' or '_', so the standard alphabet differs from it.
json claims_with_url_characters() {
  for (int i = 0;; ++i) {
    json claims = with(base_claims(), "pad", std::string(static_cast<size_t>(i % 7), '?') + std::to_string(i));
    if (base64url_encode(claims.dump()).find_first_of("-_") != std::string::npos) return claims;
  }
}

// A valid HS512 token whose signature contains '-' or '_'.
std::string token_with_url_characters_in_signature() {
  for (int i = 0;; ++i) {
    std::string token = make(with(base_claims(), "n", i), HmacAlgorithm::hs512);
    if (token.find_first_of("-_", token.rfind('.')) != std::string::npos) return token;
  }
}

std::string random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rng() & 0xff);
  return out;
}

std::string tampered_signature(std::string token) {
  char& c = token[token.rfind('.') + 1];  // the first signature character carries 6 full bits
  c = (c == 'A') ? 'B' : 'A';
  return token;
}

std::string nested_arrays(size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

struct Case {
  std::string name;
  std::string token;
  const char* reason;  // nullptr: valid; kAnyReason: rejected for whichever reason
};

std::vector<Case> shape_and_signature_cases() {
  const std::string valid = make(base_claims());
  const std::string payload = base64url_encode(base_claims().dump());
  const std::string none_input = base64url_encode(R"({"alg":"none","typ":"JWT"})") + "." + payload;
  return {
      {"valid HS256", valid, nullptr},
      {"valid HS384", make(base_claims(), HmacAlgorithm::hs384), nullptr},
      {"valid HS512", make(base_claims(), HmacAlgorithm::hs512), nullptr},
      {"bad signature", tampered_signature(valid), "bad signature"},
      {"signature of another secret", make(base_claims(), HmacAlgorithm::hs256, "another-secret"), "bad signature"},
      {"HS256 header on an HS512 MAC",
       sign_encoded(HmacAlgorithm::hs512, kSecret, encoded_header() + "." + payload), "bad signature"},
      {"empty signature", encoded_header() + "." + payload + ".", "bad signature"},
      {"alg none, empty signature", none_input + ".", "alg none rejected"},
      {"alg none, with signature", sign_encoded(HmacAlgorithm::hs256, kSecret, none_input), "alg none rejected"},
      {"alg None", with_header(R"({"alg":"None"})"), "alg none rejected"},
      {"alg RS256 on an HMAC signature", with_header(R"({"alg":"RS256","typ":"JWT"})"), "alg does not match key"},
      {"alg ES256", with_header(R"({"alg":"ES256"})"), "alg does not match key"},
      {"alg EdDSA", with_header(R"({"alg":"EdDSA"})"), "alg does not match key"},
      {"alg lowercase hs256", with_header(R"({"alg":"hs256"})"), "unsupported alg"},
      {"alg not a string", with_header(R"({"alg":256})"), "unsupported alg"},
      {"alg missing", with_header(R"({"typ":"JWT"})"), "missing alg"},
      {"crit header", with_header(R"({"alg":"HS256","crit":["exp"],"exp":1})"), "unsupported crit header"},
      {"truncated in the middle", valid.substr(0, valid.size() / 2), "malformed token"},
      {"truncated by one character", valid.substr(0, valid.size() - 1), kAnyReason},
      {"two parts", valid.substr(0, valid.rfind('.')), "malformed token"},
      {"four parts", valid + ".AAAA", "malformed token"},
      {"trailing dot", valid + ".", "malformed token"},
      {"empty token", "", "malformed token"},
      {"only dots", "..", "header not json"},
  };
}

std::vector<Case> encoding_cases() {
  const std::string payload = base64url_encode(base_claims().dump());
  const std::string valid = make(base_claims());
  const std::string url_signed = token_with_url_characters_in_signature();
  const size_t sig_start = url_signed.rfind('.') + 1;
  const std::string url_payload = base64url_encode(claims_with_url_characters().dump());
  const std::string padded_payload = base64url_encode(base_claims().dump() + "  ");  // length 2 mod 3
  return {
      {"signature in the standard alphabet ('+' '/')",
       url_signed.substr(0, sig_start) + to_standard_alphabet(url_signed.substr(sig_start)), "bad signature encoding"},
      {"payload in the standard alphabet, correctly signed",
       sign_encoded(HmacAlgorithm::hs256, kSecret, encoded_header() + "." + to_standard_alphabet(url_payload)),
       "bad payload encoding"},
      {"payload with '=' padding, correctly signed",
       sign_encoded(HmacAlgorithm::hs256, kSecret, encoded_header() + "." + padded_payload + "="),
       "bad payload encoding"},
      {"header with '=' padding, correctly signed",
       sign_encoded(HmacAlgorithm::hs256, kSecret, encoded_header() + "=." + payload), "bad header encoding"},
      {"header with a space", " " + valid, "bad header encoding"},
      {"signature with '='", valid + "=", "bad signature encoding"},
      {"header not JSON", sign_jwt(HmacAlgorithm::hs256, kSecret, "not json", base_claims().dump()), "header not json"},
      {"header a JSON array", with_header(R"(["HS256"])"), "header not an object"},
      {"payload not JSON", sign_jwt(HmacAlgorithm::hs256, kSecret, header_for(HmacAlgorithm::hs256), "{sub:1}"),
       "payload not json"},
      {"payload invalid UTF-8",
       sign_jwt(HmacAlgorithm::hs256, kSecret, header_for(HmacAlgorithm::hs256), "{\"sub\":\"\xff\"}"),
       "payload not json"},
      {"payload a JSON array", sign_jwt(HmacAlgorithm::hs256, kSecret, header_for(HmacAlgorithm::hs256), "[1,2]"),
       "payload not an object"},
      {"payload deeply nested",
       sign_jwt(HmacAlgorithm::hs256, kSecret, header_for(HmacAlgorithm::hs256), nested_arrays(5000)),
       "payload not an object"},
      {"64 KiB of garbage", random_bytes(64 * 1024, 7), "token too large"},
      {"16 KiB + 1 of dots-free text", std::string(kMaxTokenBytes + 1, 'A'), "token too large"},
      {"16 KiB of dots-free text", std::string(kMaxTokenBytes, 'A'), "malformed token"},
      {"8 KiB of garbage", random_bytes(8 * 1024, 11), kAnyReason},
  };
}

std::vector<Case> claim_cases() {
  const json claims = base_claims();
  return {
      {"expired beyond leeway", make(with(claims, "exp", kNow - 31)), "token expired"},
      {"expired exactly at leeway", make(with(claims, "exp", kNow - 30)), "token expired"},
      {"expired within leeway", make(with(claims, "exp", kNow - 29)), nullptr},
      {"exp as float", make(with(claims, "exp", kNow + 600.5)), nullptr},
      {"exp at int64 max", make(with(claims, "exp", std::numeric_limits<int64_t>::max())), nullptr},
      {"exp beyond int64", make(with(claims, "exp", std::numeric_limits<uint64_t>::max())), "invalid exp"},
      {"exp huge float", make(with(claims, "exp", 1e300)), "invalid exp"},
      {"exp as string", make(with(claims, "exp", std::to_string(kNow + 600))), "invalid exp"},
      {"exp null", make(with(claims, "exp", nullptr)), "invalid exp"},
      {"exp boolean", make(with(claims, "exp", true)), "invalid exp"},
      {"missing exp", make(without(claims, "exp")), "missing exp"},
      {"not yet valid (nbf)", make(with(claims, "nbf", kNow + 31)), "token not yet valid"},
      {"nbf within leeway", make(with(claims, "nbf", kNow + 30)), nullptr},
      {"nbf as float", make(with(claims, "nbf", kNow - 0.25)), nullptr},
      {"nbf as string", make(with(claims, "nbf", "0")), "invalid nbf"},
      {"iat in the future", make(with(claims, "iat", kNow + 31)), "token issued in the future"},
      {"iat within leeway", make(with(claims, "iat", kNow + 30)), nullptr},
      {"iat as string", make(with(claims, "iat", "now")), "invalid iat"},
      {"missing sub", make(without(claims, "sub")), "missing sub"},
      {"empty sub", make(with(claims, "sub", "")), "invalid sub"},
      {"sub a number", make(with(claims, "sub", 42)), "invalid sub"},
      {"scope a number", make(with(claims, "scope", 1)), "invalid scope"},
      {"scp a string", make(with(without(claims, "scope"), "scp", "admin")), "invalid scp"},
      {"scp with a number", make(with(without(claims, "scope"), "scp", json::array({"admin", 1}))), "invalid scp"},
      {"iss not a string (not configured)", make(with(claims, "iss", 1)), "invalid iss"},
      {"aud and iss present (not configured)", make(with(with(claims, "iss", "x"), "aud", "y")), nullptr},
  };
}

bool is_lowercase(std::string_view text) {
  for (char c : text) {
    if (std::isupper(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

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
  if (std::string_view(c.reason) != kAnyReason) CHECK(result.reason == c.reason);
  CHECK_FALSE(result.reason.empty());
  CHECK(result.reason.size() <= 32);
  CHECK(is_lowercase(result.reason));
  CHECK(result.reason.find("alice") == std::string::npos);
  if (!c.token.empty()) CHECK(result.reason.find(c.token) == std::string::npos);
  CHECK(result.claims.sub.empty());  // nothing of a rejected token is handed out
}

void check_table(const JwtVerifier& verifier, const std::vector<Case>& cases) {
  for (const Case& c : cases) check_case(verifier, c);
}

VerifierOptions test_options() {
  VerifierOptions options;
  options.hmac_secret = std::string(kSecret);
  return options;
}

}  // namespace

TEST_CASE("jwt: shape, algorithm and signature table") {
  check_table(JwtVerifier(test_options()), shape_and_signature_cases());
}

TEST_CASE("jwt: base64url and JSON decoding table") {
  check_table(JwtVerifier(test_options()), encoding_cases());
}

TEST_CASE("jwt: claims table") {
  check_table(JwtVerifier(test_options()), claim_cases());
}

TEST_CASE("jwt: issuer and audience when configured") {
  VerifierOptions options = test_options();
  options.issuer = "https://issuer.example";
  options.audience = "ptyhub";
  const json good = with(with(base_claims(), "iss", "https://issuer.example"), "aud", "ptyhub");
  const std::vector<Case> cases = {
      {"iss and aud match", make(good), nullptr},
      {"aud array containing it", make(with(good, "aud", json::array({"other", "ptyhub"}))), nullptr},
      {"aud array without it", make(with(good, "aud", json::array({"other", "more"}))), "audience mismatch"},
      {"aud empty array", make(with(good, "aud", json::array())), "audience mismatch"},
      {"aud mismatch", make(with(good, "aud", "ptyhub2")), "audience mismatch"},
      {"aud missing", make(without(good, "aud")), "missing aud"},
      {"aud a number", make(with(good, "aud", 7)), "invalid aud"},
      {"aud array with a number", make(with(good, "aud", json::array({"ptyhub", 7}))), "invalid aud"},
      {"iss mismatch", make(with(good, "iss", "https://evil.example")), "issuer mismatch"},
      {"iss missing", make(without(good, "iss")), "missing iss"},
      {"iss a number", make(with(good, "iss", 1)), "invalid iss"},
  };
  check_table(JwtVerifier(options), cases);

  const VerifyResult result = JwtVerifier(options).verify(make(with(good, "aud", json::array({"a", "ptyhub"}))), kNow);
  REQUIRE(result.ok);
  CHECK(result.claims.iss == "https://issuer.example");
  CHECK(result.claims.aud == "a");
}

TEST_CASE("jwt: valid claims are handed out") {
  const VerifyResult result = JwtVerifier(test_options()).verify(make(with(base_claims(), "nbf", kNow - 5)), kNow);
  REQUIRE(result.ok);
  CHECK(result.claims.sub == "alice");
  CHECK(result.claims.exp == kNow + 600);
  CHECK(result.claims.iat == kNow);
  CHECK(result.claims.nbf == kNow - 5);
  CHECK_FALSE(result.claims.iss.has_value());
  CHECK_FALSE(result.claims.aud.has_value());
  CHECK(result.claims.scopes == std::vector<std::string>{"terminal:read", "terminal:write"});
}

TEST_CASE("jwt: scope string and scp array") {
  const JwtVerifier verifier(test_options());
  const auto scopes_of = [&](const json& claims) {
    const VerifyResult result = verifier.verify(make(claims), kNow);
    REQUIRE(result.ok);
    return result.claims.scopes;
  };
  using Names = std::vector<std::string>;
  const json plain = without(base_claims(), "scope");
  CHECK(scopes_of(with(plain, "scope", " admin  git:run ")) == Names{"admin", "git:run"});
  CHECK(scopes_of(with(plain, "scope", "")) == Names{});
  CHECK(scopes_of(with(plain, "scp", json::array({"terminal:create", "git:run"}))) ==
        Names{"terminal:create", "git:run"});
  CHECK(scopes_of(with(with(plain, "scope", "admin"), "scp", json::array({"git:run"}))) == Names{"admin"});
  CHECK(scopes_of(with(with(plain, "scope", "admin"), "scp", 5)) == Names{"admin"});  // scp ignored
  CHECK(scopes_of(plain) == Names{});
}

TEST_CASE("jwt: an empty secret accepts nothing") {
  VerifierOptions options = test_options();
  options.hmac_secret.clear();
  const VerifyResult result = JwtVerifier(options).verify(make(base_claims(), HmacAlgorithm::hs256, ""), kNow);
  CHECK_FALSE(result.ok);
  CHECK(result.reason == "no key configured");
}

TEST_CASE("jwt: a negative leeway counts as zero") {
  VerifierOptions options = test_options();
  options.leeway_seconds = -100;
  const JwtVerifier verifier(options);
  CHECK(verifier.verify(make(with(base_claims(), "exp", kNow + 1)), kNow).ok);
  CHECK(verifier.verify(make(with(base_claims(), "exp", kNow)), kNow).reason == "token expired");
}

TEST_CASE("jwt: mint_token round-trips through the verifier") {
  const JwtVerifier verifier(test_options());
  const std::string token = mint_token(kSecret, "bob \"the\" \\builder", "terminal:create admin", kNow, 3600);
  const VerifyResult result = verifier.verify(token, kNow + 10);
  REQUIRE(result.ok);
  CHECK(result.claims.sub == "bob \"the\" \\builder");
  CHECK(result.claims.exp == kNow + 3600);
  CHECK(result.claims.iat == kNow);
  CHECK(result.claims.scopes == std::vector<std::string>{"terminal:create", "admin"});
  CHECK(verifier.verify(token, kNow + 3600 + 30).reason == "token expired");
  const auto header = base64url_decode(token.substr(0, token.find('.')));
  REQUIRE(header.has_value());
  CHECK(json::parse(*header) == json{{"alg", "HS256"}, {"typ", "JWT"}});
}

TEST_CASE("base64url: RFC 4648 vectors and the url alphabet") {
  CHECK(base64url_encode("") == "");
  CHECK(base64url_encode("f") == "Zg");
  CHECK(base64url_encode("fo") == "Zm8");
  CHECK(base64url_encode("foo") == "Zm9v");
  CHECK(base64url_encode("foob") == "Zm9vYg");
  CHECK(base64url_encode("fooba") == "Zm9vYmE");
  CHECK(base64url_encode("foobar") == "Zm9vYmFy");
  CHECK(base64url_encode("\xfb\xff") == "-_8");
  CHECK(base64url_decode("-_8") == std::string("\xfb\xff"));
  CHECK(base64url_decode("Zm9vYmFy") == std::string("foobar"));
  CHECK(base64url_decode("") == std::string());
}

TEST_CASE("base64url: round trips over every length 0..64") {
  for (size_t n = 0; n <= 64; ++n) {
    INFO("length " << n);
    const std::string bytes = random_bytes(n, static_cast<uint32_t>(n + 1));
    const std::string text = base64url_encode(bytes);
    CHECK(text.size() == (4 * n + 2) / 3);
    CHECK(text.find_first_of("+/=") == std::string::npos);
    CHECK(base64url_decode(text) == bytes);
  }
  const std::string big = random_bytes(200'000, 3);  // spans several encoder chunks
  CHECK(base64url_decode(base64url_encode(big)) == big);
}

TEST_CASE("base64url: rejects what is not canonical unpadded base64url") {
  const char* const bad[] = {
      "Zg==", "Zm8=", "Z",     "Zm9vY", "+/8",    "Zm9v+A", "Zm9v/w", "Zm9v!", "Zm 9v", "Zm9v\n",
      "=",    "Zm9v=", "Zh",   "Zm9",   "Zm9vYh", "\xff\xfe", ".",    "Zm9v.",
  };
  for (const char* text : bad) {
    INFO("text: " << text);
    CHECK_FALSE(base64url_decode(text).has_value());
  }
  CHECK_FALSE(base64url_decode(std::string_view("Zm\0v", 4)).has_value());
  CHECK(base64url_decode("Zm8") == std::string("fo"));  // the canonical forms of the rejected "Zm9", "Zh"
  CHECK(base64url_decode("Zg") == std::string("f"));
}

}  // namespace ptyhub::auth
