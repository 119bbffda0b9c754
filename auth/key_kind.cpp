// Key classification and PEM reading/writing through OpenSSL's PEM and EVP_PKEY interfaces.
#include "auth/key_kind.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>

#include <climits>

namespace ptyhub::auth {
namespace {

// Refuses encrypted PEM instead of letting OpenSSL prompt on the terminal.
int no_passphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*userdata*/) { return -1; }

BioPtr memory_bio(std::string_view text) {
  if (text.empty() || text.size() > INT_MAX) return nullptr;
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

std::optional<KeyKind> classify_ec(EVP_PKEY* key, std::string& error) {
  char name[80] = {};
  size_t length = 0;
  if (EVP_PKEY_get_group_name(key, name, sizeof name, &length) != 1) {
    ERR_clear_error();
    error = "EC key without a named curve (P-256 expected)";
    return std::nullopt;
  }
  if (std::string_view(name, length) != "prime256v1") {
    error = "EC key on curve " + std::string(name, length) + ", only P-256 is supported";
    return std::nullopt;
  }
  return KeyKind::ec_p256;
}

}  // namespace

std::string_view key_kind_name(KeyKind kind) {
  switch (kind) {
    case KeyKind::hmac: return "HMAC secret";
    case KeyKind::rsa: return "RSA";
    case KeyKind::ec_p256: return "EC P-256";
    case KeyKind::ed25519: return "Ed25519";
  }
  return "unknown";
}

std::optional<KeyKind> classify_key(EVP_PKEY* key, std::string& error) {
  if (EVP_PKEY_is_a(key, "RSA")) {
    if (EVP_PKEY_get_bits(key) < kMinRsaBits) {
      error = "RSA key of " + std::to_string(EVP_PKEY_get_bits(key)) + " bits, at least 2048 required";
      return std::nullopt;
    }
    return KeyKind::rsa;
  }
  if (EVP_PKEY_is_a(key, "EC")) return classify_ec(key, error);
  if (EVP_PKEY_is_a(key, "ED25519")) return KeyKind::ed25519;
  error = std::string("unsupported key type ") + EVP_PKEY_get0_type_name(key) +
          " (RSA, EC P-256 or Ed25519 expected)";
  return std::nullopt;
}

bool public_key_passes_check(EVP_PKEY* key) {
  const PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
  const bool ok = ctx && EVP_PKEY_public_check(ctx.get()) == 1;
  if (!ok) ERR_clear_error();
  return ok;
}

PkeyPtr read_public_pem(std::string_view pem, KeyKind& kind, std::string& error) {
  const BioPtr bio = memory_bio(pem);
  PkeyPtr key(bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, no_passphrase, nullptr) : nullptr);
  if (!key) {
    ERR_clear_error();
    error = "no PEM public key (-----BEGIN PUBLIC KEY-----) found";
    return nullptr;
  }
  const std::optional<KeyKind> found = classify_key(key.get(), error);
  if (!found) return nullptr;
  if (!public_key_passes_check(key.get())) {
    error = "public key fails OpenSSL's key check";
    return nullptr;
  }
  kind = *found;
  return key;
}

PkeyPtr read_private_pem(std::string_view pem, KeyKind& kind, std::string& error) {
  const BioPtr bio = memory_bio(pem);
  PkeyPtr key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr) : nullptr);
  if (!key) {
    ERR_clear_error();
    error = "no unencrypted PEM private key found";
    return nullptr;
  }
  const std::optional<KeyKind> found = classify_key(key.get(), error);
  if (!found) return nullptr;
  kind = *found;
  return key;
}

std::string write_public_pem(EVP_PKEY* key) {
  const BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key) != 1) {
    ERR_clear_error();
    return {};
  }
  char* data = nullptr;
  const long length = BIO_get_mem_data(bio.get(), &data);
  if (length <= 0 || data == nullptr) return {};
  return std::string(data, static_cast<size_t>(length));
}

}  // namespace ptyhub::auth
