// Credentials: config paths resolved in $CREDENTIALS_DIRECTORY.
#include "src/systemd/credentials.hpp"

#include <unistd.h>

#include <cstdlib>

namespace ptyhub::systemd {
namespace {

void resolve(const std::string& directory, const char* setting, std::string* path, std::vector<std::string>* notes) {
  if (path->empty() || (*path)[0] == '/') return;
  *path = directory + "/" + *path;
  notes->push_back(std::string(setting) + ": credential " + *path);
}

}  // namespace

bool apply_credentials(CredentialPaths* paths, std::vector<std::string>* notes, std::string* error) {
  const char* value = std::getenv("CREDENTIALS_DIRECTORY");
  if (value == nullptr || *value == '\0') return true;
  std::string directory(value);
  if (directory[0] != '/') {
    *error = "CREDENTIALS_DIRECTORY: not an absolute path: \"" + directory + "\"";
    return false;
  }
  while (directory.size() > 1 && directory.back() == '/') directory.pop_back();
  if (paths->jwt_secret_file.empty()) {
    const std::string candidate = directory + "/" + kJwtSecretCredential;
    if (access(candidate.c_str(), F_OK) == 0) {
      paths->jwt_secret_file = candidate;
      notes->push_back("jwt_secret_file: credential " + candidate);
    }
  } else {
    resolve(directory, "jwt_secret_file", &paths->jwt_secret_file, notes);
  }
  for (std::string& key : paths->jwt_public_key) resolve(directory, "jwt_public_key", &key, notes);
  resolve(directory, "tls_cert", &paths->tls_cert, notes);
  resolve(directory, "tls_key", &paths->tls_key, notes);
  resolve(directory, "tls_client_ca", &paths->tls_client_ca, notes);
  return true;
}

}  // namespace ptyhub::systemd
