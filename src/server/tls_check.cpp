#include "src/server/tls_check.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <memory>

namespace ptyhub::server {
namespace {

struct CtxFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};

// The oldest queued OpenSSL error, in words; the queue is emptied.
std::string openssl_error() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown error";
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

}  // namespace

std::string check_tls_pair(const std::string& cert_file, const std::string& key_file) {
  ERR_clear_error();
  std::unique_ptr<SSL_CTX, CtxFree> ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) return "cannot create a TLS context: " + openssl_error();
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert_file.c_str()) != 1) {
    return "cannot read the certificate " + cert_file + ": " + openssl_error();
  }
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return "cannot use the key " + key_file + " with the certificate " + cert_file + ": " + openssl_error();
  }
  if (SSL_CTX_check_private_key(ctx.get()) != 1) {
    return "the key " + key_file + " does not belong to the certificate " + cert_file + ": " + openssl_error();
  }
  return "";
}

}  // namespace ptyhub::server
