// Loading the secret and public keys.
#include "src/key_loader.hpp"

#include <fstream>
#include <sstream>

#include "auth/public_key.hpp"

namespace ptyhub {

bool read_secret_file(const std::string& path, std::string* secret, std::string* error) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    *error = "jwt_secret_file: cannot read " + path;
    return false;
  }
  std::ostringstream content;
  content << file.rdbuf();
  *secret = content.str();
  if (!secret->empty() && secret->back() == '\n') secret->pop_back();
  if (!secret->empty() && secret->back() == '\r') secret->pop_back();
  if (secret->empty()) {
    *error = "jwt_secret_file: " + path + " is empty";
    return false;
  }
  return true;
}

bool load_verifier_options(const KeySettings& settings, auth::VerifierOptions* out, std::string* error) {
  if (settings.jwt_secret_file.empty() && settings.jwt_public_key.empty()) {
    *error = "no key to verify tokens: set jwt_secret_file and/or jwt_public_key";
    return false;
  }
  auth::VerifierOptions options;
  if (!settings.jwt_secret_file.empty() && !read_secret_file(settings.jwt_secret_file, &options.hmac_secret, error)) {
    return false;
  }
  if (!settings.jwt_public_key.empty() && !auth::load_public_keys(settings.jwt_public_key, &options.public_keys, error)) {
    *error = "jwt_public_key: " + *error;
    return false;
  }
  options.leeway_seconds = settings.jwt_leeway_seconds;
  if (!settings.jwt_issuer.empty()) options.issuer = settings.jwt_issuer;
  if (!settings.jwt_audience.empty()) options.audience = settings.jwt_audience;
  *out = std::move(options);
  return true;
}

}  // namespace ptyhub
