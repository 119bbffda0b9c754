// The Origin check: same origin by Host, configured origins, and everything else refused.
#include <doctest/doctest.h>

#include "src/server/origin_policy.hpp"

namespace ptyhub::server {
namespace {

struct Case {
  const char* origin;
  const char* host;
  bool allowed;
};

TEST_CASE("origin_allowed: a table of Origin and Host headers") {
  const std::vector<std::string> configured = {"https://app.example", "http://tools.example:8080/"};
  const Case cases[] = {
      {"", "127.0.0.1:7700", true},                          // no Origin: not a browser
      {"http://127.0.0.1:7700", "127.0.0.1:7700", true},     // same origin
      {"http://127.0.0.1:7700/", "127.0.0.1:7700", true},    // trailing slash
      {"HTTP://LOCALHOST:7700", "localhost:7700", true},     // case
      {"http://127.0.0.1:7701", "127.0.0.1:7700", false},    // other port
      {"http://evil.example", "127.0.0.1:7700", false},      // other host
      {"http://evil.example", "", false},                    // no Host to compare with
      {"null", "127.0.0.1:7700", false},                     // sandboxed page
      {"127.0.0.1:7700", "127.0.0.1:7700", false},           // no scheme
      {"http://user@127.0.0.1:7700", "127.0.0.1:7700", false},
      {"https://example.com", "example.com", true},          // default port left out on both sides
      {"https://example.com:443", "example.com", true},
      {"https://example.com", "example.com:443", true},
      {"http://example.com", "example.com:8080", false},
      {"https://app.example", "127.0.0.1:7700", true},       // configured
      {"https://APP.example/", "127.0.0.1:7700", true},
      {"http://app.example", "127.0.0.1:7700", false},       // configured with another scheme
      {"http://tools.example:8080", "127.0.0.1:7700", true},
      {"http://tools.example", "127.0.0.1:7700", false},
  };
  for (const Case& c : cases) {
    CAPTURE(c.origin);
    CAPTURE(c.host);
    CHECK(origin_allowed(c.origin, c.host, configured) == c.allowed);
  }
}

TEST_CASE("a scheme known from a trusted proxy must match the Origin's") {
  CHECK(origin_allowed("https://example.org", "example.org", {}, "https"));
  CHECK_FALSE(origin_allowed("http://example.org", "example.org", {}, "https"));
  CHECK(origin_allowed("http://example.org", "example.org", {}, ""));
  CHECK(origin_allowed("https://other.example", "example.org", {"https://other.example"}, "https"));
}

}  // namespace
}  // namespace ptyhub::server
