// Credentials: files the service manager hands the daemon (LoadCredential=, SetCredential=) in the
// read-only directory $CREDENTIALS_DIRECTORY, readable only by the service.
//
// The rule (systemd/README.md): with $CREDENTIALS_DIRECTORY set,
// - an unset jwt_secret_file becomes the credential "jwt-secret" when the service has one;
// - a relative jwt_secret_file, jwt_public_key, tls_cert, tls_key or tls_client_ca names a credential and is
//   looked up in $CREDENTIALS_DIRECTORY (e.g. `tls_key = "tls-key"` with LoadCredential=tls-key:/etc/…).
// Without the variable, paths keep their usual meaning. Pure file-system logic: no loop.
#pragma once

#include <string>
#include <vector>


namespace ptyhub::systemd {

inline constexpr const char* kJwtSecretCredential = "jwt-secret";

// The settings that may name a credential (docs/configuration.md).
struct CredentialPaths {
  std::string jwt_secret_file;
  std::vector<std::string> jwt_public_key;
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;
};

// Applies the rule above to `paths`. Returns one line per path it changed, for the log. False with `error`
// when $CREDENTIALS_DIRECTORY is set but is not an absolute path.
bool apply_credentials(CredentialPaths* paths, std::vector<std::string>* notes, std::string* error);

}  // namespace ptyhub::systemd
