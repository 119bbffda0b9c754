// Origin check.
#include "src/server/origin_policy.hpp"

#include <algorithm>
#include <cctype>

namespace ptyhub::server {
namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view without_trailing_slash(std::string_view text) {
  while (!text.empty() && text.back() == '/') text.remove_suffix(1);
  return text;
}

// "scheme://host[:port]" -> "host[:port]" with the scheme's default port dropped; empty when malformed.
std::string authority_of(std::string_view origin) {
  const size_t sep = origin.find("://");
  if (sep == std::string_view::npos || sep == 0) return {};
  const std::string scheme = lower(origin.substr(0, sep));
  std::string authority = lower(without_trailing_slash(origin.substr(sep + 3)));
  if (authority.empty() || authority.find_first_of("/?#@ ") != std::string::npos) return {};
  const std::string default_port = scheme == "https" ? ":443" : scheme == "http" ? ":80" : "";
  if (!default_port.empty() && authority.size() > default_port.size() &&
      authority.ends_with(default_port)) {
    authority.resize(authority.size() - default_port.size());
  }
  return authority;
}

}  // namespace

bool origin_allowed(std::string_view origin, std::string_view host, const std::vector<std::string>& allowed,
                    std::string_view scheme) {
  if (origin.empty()) return true;
  const std::string normalised = lower(without_trailing_slash(origin));
  for (const std::string& entry : allowed) {
    if (lower(without_trailing_slash(entry)) == normalised) return true;
  }
  const std::string authority = authority_of(origin);
  if (authority.empty() || host.empty()) return false;
  if (!scheme.empty() && !lower(origin).starts_with(std::string(scheme) + "://")) return false;
  std::string host_authority = lower(host);
  for (const char* port : {":80", ":443"}) {
    // A Host header may carry the default port the Origin leaves out.
    if (host_authority.ends_with(port) && authority.find(':') == std::string::npos &&
        host_authority.substr(0, host_authority.size() - std::string_view(port).size()) == authority) {
      return true;
    }
  }
  return authority == host_authority;
}

}  // namespace ptyhub::server
