// Loading the secret and public keys.
#include "src/key_loader.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "auth/public_key.hpp"
#include "core/unique_fd.hpp"

namespace ptyhub {
namespace {

constexpr size_t kMinSecretBytes = 32;         // RFC 7518 §3.2: a key of at least the hash's size
constexpr size_t kMaxSecretBytes = 64 * 1024;

}  // namespace

bool read_secret_file(const std::string& path, std::string* secret, std::string* error) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  struct stat status {};
  if (!fd || fstat(fd.get(), &status) != 0) {
    *error = "jwt_secret_file: cannot read " + path + ": " + std::strerror(errno);
    return false;
  }
  // Like OpenSSH with a private key: a secret others may read or change is no secret. Its group may read
  // it (a service group), nobody but its owner may write it.
  if ((status.st_mode & (S_IROTH | S_IWOTH | S_IWGRP)) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(status.st_mode & 07777));
    *error = "jwt_secret_file: " + path + " has mode " + mode +
             ": others may read it or others than its owner may write it; chmod 600 (or 640) it";
    return false;
  }
  std::string content;
  char buffer[4096];
  while (content.size() <= kMaxSecretBytes) {
    const ssize_t n = read(fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *error = "jwt_secret_file: cannot read " + path + ": " + std::strerror(errno);
      return false;
    }
    if (n == 0) break;
    content.append(buffer, static_cast<size_t>(n));
  }
  if (content.size() > kMaxSecretBytes) {
    *error = "jwt_secret_file: " + path + " is larger than 64 KiB";
    return false;
  }
  if (!content.empty() && content.back() == '\n') content.pop_back();
  if (!content.empty() && content.back() == '\r') content.pop_back();
  if (content.empty()) {
    *error = "jwt_secret_file: " + path + " is empty";
    return false;
  }
  if (content.size() < kMinSecretBytes) {
    *error = "jwt_secret_file: " + path + " holds " + std::to_string(content.size()) +
             " bytes; an HS256 secret needs at least 32 (RFC 7518 section 3.2)";
    return false;
  }
  *secret = std::move(content);
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
