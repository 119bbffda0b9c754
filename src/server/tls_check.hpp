// The TLS certificate and key files, checked before libwebsockets is told to use them (a SIGHUP reload).
#pragma once

#include <string>

namespace ptyhub::server {

// "" when `cert_file` (a PEM chain) and `key_file` (its PEM private key) load and belong together;
// otherwise why not, in words for the log.
std::string check_tls_pair(const std::string& cert_file, const std::string& key_file);

}  // namespace ptyhub::server
