// JWS signatures: HMAC via HMAC(), the others via EVP_DigestSign/EVP_DigestVerify. ES256 signatures are
// translated between the JWS r||s form and the DER ECDSA-Sig-Value OpenSSL speaks with ECDSA_SIG.
#include "auth/signature.hpp"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>

#include <climits>

namespace ptyhub::auth {
namespace {

constexpr int kP256CoordinateBytes = 32;
constexpr size_t kEs256SignatureBytes = 2 * kP256CoordinateBytes;

// OpenSSL wants non-null pointers even for empty inputs.
const unsigned char* bytes_of(std::string_view text) {
  static const unsigned char kEmpty = 0;
  return text.empty() ? &kEmpty : reinterpret_cast<const unsigned char*>(text.data());
}

// The DER ECDSA-Sig-Value of a JWS ES256 signature (r||s, 32 bytes each); empty for any other length.
std::string es256_raw_to_der(std::string_view raw) {
  if (raw.size() != kEs256SignatureBytes) return {};
  const unsigned char* bytes = bytes_of(raw);
  EcdsaSigPtr sig(ECDSA_SIG_new());
  BignumPtr r(BN_bin2bn(bytes, kP256CoordinateBytes, nullptr));
  BignumPtr s(BN_bin2bn(bytes + kP256CoordinateBytes, kP256CoordinateBytes, nullptr));
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) return {};
  (void)r.release();  // both now owned by `sig`
  (void)s.release();
  const int length = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (length <= 0) return {};
  std::string der(static_cast<size_t>(length), '\0');
  auto* out = reinterpret_cast<unsigned char*>(der.data());
  if (i2d_ECDSA_SIG(sig.get(), &out) != length) return {};
  return der;
}

// The JWS r||s form of a DER ECDSA-Sig-Value, each half left-padded to 32 bytes; empty on failure.
std::string es256_der_to_raw(std::string_view der) {
  const unsigned char* in = bytes_of(der);
  const EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &in, static_cast<long>(der.size())));
  if (!sig) return {};
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  std::string raw(kEs256SignatureBytes, '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  if (BN_bn2binpad(r, out, kP256CoordinateBytes) != kP256CoordinateBytes ||
      BN_bn2binpad(s, out + kP256CoordinateBytes, kP256CoordinateBytes) != kP256CoordinateBytes) {
    return {};
  }
  return raw;
}

// Sets up `ctx` for signing or verifying with `key`: the digest of `alg`, and PKCS#1 v1.5 for RSA.
bool init_digest_context(EVP_MD_CTX* ctx, const JwsAlgorithm& alg, EVP_PKEY* key, bool signing) {
  EVP_PKEY_CTX* pkey_ctx = nullptr;  // owned by `ctx`
  const EVP_MD* digest = alg.digest != nullptr ? alg.digest() : nullptr;
  const int init = signing ? EVP_DigestSignInit(ctx, &pkey_ctx, digest, nullptr, key)
                           : EVP_DigestVerifyInit(ctx, &pkey_ctx, digest, nullptr, key);
  if (init != 1) return false;
  return alg.kind != KeyKind::rsa || EVP_PKEY_CTX_set_rsa_padding(pkey_ctx, RSA_PKCS1_PADDING) > 0;
}

std::string digest_sign(const JwsAlgorithm& alg, EVP_PKEY* key, std::string_view data) {
  const MdCtxPtr ctx(EVP_MD_CTX_new());
  size_t length = 0;
  if (!ctx || !init_digest_context(ctx.get(), alg, key, true) ||
      EVP_DigestSign(ctx.get(), nullptr, &length, bytes_of(data), data.size()) != 1) {
    return {};
  }
  std::string signature(length, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &length, bytes_of(data),
                     data.size()) != 1) {
    return {};
  }
  signature.resize(length);
  return signature;
}

}  // namespace

std::string hmac_sign(const JwsAlgorithm& alg, std::string_view secret, std::string_view data) {
  if (alg.kind != KeyKind::hmac || secret.size() > INT_MAX) return {};
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (HMAC(alg.digest(), bytes_of(secret), static_cast<int>(secret.size()), bytes_of(data), data.size(), mac,
           &length) == nullptr) {
    ERR_clear_error();
    return {};
  }
  return std::string(reinterpret_cast<const char*>(mac), length);
}

bool hmac_verify(const JwsAlgorithm& alg, std::string_view secret, std::string_view data, std::string_view mac) {
  const std::string expected = hmac_sign(alg, secret, data);
  return !expected.empty() && mac.size() == expected.size() &&
         CRYPTO_memcmp(mac.data(), expected.data(), expected.size()) == 0;
}

bool verify_signature(const JwsAlgorithm& alg, EVP_PKEY* key, std::string_view data, std::string_view signature) {
  if (alg.kind == KeyKind::hmac || key == nullptr) return false;
  std::string der;
  if (alg.kind == KeyKind::ec_p256) {
    der = es256_raw_to_der(signature);
    if (der.empty()) return false;
    signature = der;
  }
  const MdCtxPtr ctx(EVP_MD_CTX_new());
  const bool ok = ctx && init_digest_context(ctx.get(), alg, key, false) &&
                  EVP_DigestVerify(ctx.get(), bytes_of(signature), signature.size(), bytes_of(data), data.size()) == 1;
  if (!ok) ERR_clear_error();
  return ok;
}

std::string sign_with_key(const JwsAlgorithm& alg, EVP_PKEY* key, std::string_view data) {
  if (alg.kind == KeyKind::hmac || key == nullptr) return {};
  std::string signature = digest_sign(alg, key, data);
  if (!signature.empty() && alg.kind == KeyKind::ec_p256) signature = es256_der_to_raw(signature);
  if (signature.empty()) ERR_clear_error();
  return signature;
}

}  // namespace ptyhub::auth
