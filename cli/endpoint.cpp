// parse_endpoint(): see endpoint.hpp for the accepted forms.
#include "cli/endpoint.hpp"

#include <charconv>

namespace ptyhub::cli {

namespace {

// Sets `*why` and returns nullopt, for one-line failure returns.
std::optional<Endpoint> fail(std::string* why, std::string message) {
  if (why != nullptr) *why = std::move(message);
  return std::nullopt;
}

// Parses a decimal port 1..65535.
bool parse_port(std::string_view text, int* port) {
  if (text.empty() || text.size() > 5) return false;
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return false;
  if (value < 1 || value > 65535) return false;
  *port = value;
  return true;
}

}  // namespace

std::optional<Endpoint> parse_endpoint(std::string_view url, std::string* why) {
  Endpoint endpoint;
  if (url.starts_with("unix:")) {
    std::string_view path = url.substr(5);
    if (path.starts_with("//")) path.remove_prefix(2);  // unix:///run/x.sock
    if (path.empty() || path.front() != '/') return fail(why, "a unix: URL needs an absolute socket path (unix:/run/ptyhub.sock)");
    endpoint.kind = Endpoint::Kind::unix_socket;
    endpoint.socket_path = std::string(path);
    return endpoint;
  }
  std::string_view rest;
  if (url.starts_with("ws://")) {
    rest = url.substr(5);
    endpoint.port = 80;
  } else if (url.starts_with("wss://")) {
    rest = url.substr(6);
    endpoint.tls = true;
    endpoint.port = 443;
  } else {
    return fail(why, "the URL must start with ws://, wss:// or unix:");
  }
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) endpoint.path = std::string(rest.substr(slash));
  if (authority.empty()) return fail(why, "the URL has no host");
  std::string_view port_text;
  if (authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return fail(why, "unclosed '[' in the URL's host");
    endpoint.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return fail(why, "unexpected text after the URL's host");
      port_text = after.substr(1);
      if (port_text.empty()) return fail(why, "the URL's port is empty");
    }
  } else {
    const size_t colon = authority.rfind(':');
    endpoint.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return fail(why, "the URL's port is empty");
    }
  }
  if (endpoint.host.empty()) return fail(why, "the URL has no host");
  if (!port_text.empty() && !parse_port(port_text, &endpoint.port)) return fail(why, "the URL's port is not a number from 1 to 65535");
  if (endpoint.path.find_first_of(" \r\n") != std::string::npos) return fail(why, "the URL's path holds a space or line break");
  return endpoint;
}

}  // namespace ptyhub::cli
