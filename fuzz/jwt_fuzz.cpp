// Fuzzes token verification and key loading (auth/): whole tokens against a verifier holding a shared
// secret and one key of each public-key type; headers and payloads that are validly signed (so the
// claim checks are reached, not only the signature check); JWK Sets; PEM public and private keys;
// base64url. Properties: nothing throws or crashes; a token accepted has a non-empty `sub` and an
// unexpired `exp`; an accepted JWKS gives keys a verifier can be built from.
#include <fuzzer/FuzzedDataProvider.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "auth/base64url.hpp"
#include "auth/jwt.hpp"
#include "auth/key_kind.hpp"
#include "auth/public_key.hpp"
#include "fuzz/fuzz_check.hpp"

namespace {

using namespace ptyhub::auth;

constexpr int64_t kNow = 1'800'000'000;
constexpr const char* kSecret = "fuzz-secret";

struct Signer {
  std::string kid;
  std::string alg;
  std::string private_pem;
};

// The private key `key` as PEM (PKCS#8).
std::string private_pem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  const long length = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(length));
  BIO_free(bio);
  return pem;
}

// Keys made once per process: an RSA, an EC P-256 and an Ed25519 key.
struct Keys {
  std::vector<Signer> signers;
  JwtVerifier verifier{VerifierOptions{}};

  Keys() {
    VerifierOptions options;
    options.hmac_secret = kSecret;
    options.leeway_seconds = 30;
    EVP_PKEY* rsa = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048});
    EVP_PKEY* ec = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    EVP_PKEY* ed = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
    for (auto [kid, alg, key] : {std::tuple{"rsa", "RS256", rsa}, {"ec", "ES256", ec}, {"ed", "EdDSA", ed}}) {
      FUZZ_CHECK(key != nullptr);
      signers.push_back({kid, alg, private_pem(key)});
      options.public_keys.push_back({kid, write_public_pem(key), ""});
      EVP_PKEY_free(key);
    }
    verifier = JwtVerifier(options);
    FUZZ_CHECK(verifier.key_error().empty());
  }
};

const Keys& keys() {
  static const Keys instance;
  return instance;
}

// What an accepted token must satisfy.
void check_result(const VerifyResult& result, const JwtVerifier& verifier) {
  if (!result.ok) {
    FUZZ_CHECK(!result.reason.empty());
    return;
  }
  FUZZ_CHECK(!result.claims.sub.empty());
  FUZZ_CHECK(result.claims.exp + verifier.leeway_seconds() > kNow);
}

// A whole token, as a client sends it.
void fuzz_token(std::string_view token) {
  check_result(keys().verifier.verify(token, kNow), keys().verifier);
}

// A header and a payload signed with the secret or one of the keys, then verified.
void fuzz_signed(FuzzedDataProvider& input) {
  const uint8_t signer = input.ConsumeIntegralInRange<uint8_t>(0, 3);
  const std::string header = input.ConsumeRandomLengthString(1024);
  const std::string payload = input.ConsumeRemainingBytesAsString();
  std::string token;
  if (signer == 3) {
    token = sign_jwt(HmacAlgorithm::hs256, kSecret, header, payload);
  } else {
    const Signer& s = keys().signers[signer];
    token = sign_jwt_with_private_key(s.alg, s.private_pem, header, payload);
  }
  if (!token.empty()) fuzz_token(token);
}

// A JWK Set; when accepted, its keys must make a verifier without a key error.
void fuzz_jwks(std::string_view text) {
  std::vector<PublicKey> out;
  std::string error;
  if (!parse_jwks(text, &out, &error)) {
    FUZZ_CHECK(!error.empty());
    return;
  }
  FUZZ_CHECK(!out.empty());
  for (const PublicKey& key : out) FUZZ_CHECK(!key.kid.empty());
  VerifierOptions options;
  options.public_keys = out;
  const JwtVerifier verifier(options);
  FUZZ_CHECK(verifier.key_error().empty());
  check_result(verifier.verify("eyJhbGciOiJFUzI1NiJ9.e30.AAAA", kNow), verifier);
}

// PEM text read as a public and as a private key; a public key read is written and read back.
void fuzz_pem(std::string_view text) {
  KeyKind kind{};
  std::string error;
  if (PkeyPtr key = read_public_pem(text, kind, error)) {
    const std::string pem = write_public_pem(key.get());
    KeyKind again{};
    FUZZ_CHECK(read_public_pem(pem, again, error) != nullptr);
    FUZZ_CHECK(again == kind);
  }
  error.clear();
  (void)read_private_pem(text, kind, error);
}

// base64url: what decodes encodes back to the same text.
void fuzz_base64url(std::string_view text) {
  if (const auto bytes = base64url_decode(text)) {
    const auto again = base64url_decode(base64url_encode(*bytes));
    FUZZ_CHECK(again.has_value() && *again == *bytes);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)keys();
  return 0;
}

// The first byte picks what the rest is.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(bytes) + 1, size - 1);
  switch (bytes[0] % 5) {
    case 0: fuzz_token(rest); break;
    case 1: {
      FuzzedDataProvider input(bytes + 1, size - 1);
      fuzz_signed(input);
      break;
    }
    case 2: fuzz_jwks(rest); break;
    case 3: fuzz_pem(rest); break;
    default: fuzz_base64url(rest); break;
  }
  return 0;
}
