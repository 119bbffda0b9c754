// Client addresses behind trusted proxies: which headers are believed, and from whom.
#include <doctest/doctest.h>

#include "src/server/forwarded.hpp"

namespace ptyhub::server {
namespace {

TrustedProxies trusting(const std::vector<std::string>& entries) {
  TrustedProxies trusted;
  std::string error;
  REQUIRE_MESSAGE(trusted.parse(entries, &error), error);
  return trusted;
}

TEST_CASE("addresses parse in every form a header or a socket gives them") {
  CHECK(IpAddress::parse("192.0.2.1")->text() == "192.0.2.1");
  CHECK(IpAddress::parse(" 192.0.2.1:4711 ")->text() == "192.0.2.1");
  CHECK(IpAddress::parse("2001:DB8::1")->text() == "2001:db8::1");
  CHECK(IpAddress::parse("[2001:db8::1]:4711")->text() == "2001:db8::1");
  CHECK(IpAddress::parse("[2001:db8::1]")->text() == "2001:db8::1");
  CHECK(IpAddress::parse("::ffff:10.1.2.3")->text() == "10.1.2.3");
  CHECK(IpAddress::parse("::ffff:10.1.2.3")->v4);
  CHECK(IpAddress::parse("127.5.0.1")->loopback());
  CHECK(IpAddress::parse("::1")->loopback());
  CHECK_FALSE(IpAddress::parse("10.0.0.1")->loopback());
  for (const char* bad : {"", "unknown", "_hidden", "1.2.3", "[::1", "[::1]x", "[::1]:", "300.1.1.1", "a:b:c:d:e:f:g:h:i"}) {
    CAPTURE(bad);
    CHECK_FALSE(IpAddress::parse(bad).has_value());
  }
}

TEST_CASE("trusted_proxy entries: addresses, ranges and unix - anything else names the bad entry") {
  const TrustedProxies trusted = trusting({"10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "unix"});
  CHECK(trusted.trusts("10.200.3.4"));
  CHECK(trusted.trusts("::ffff:10.200.3.4"));
  CHECK(trusted.trusts("192.0.2.7"));
  CHECK_FALSE(trusted.trusts("192.0.2.8"));
  CHECK(trusted.trusts("2001:db8:ffff::1"));
  CHECK_FALSE(trusted.trusts("2001:db9::1"));
  CHECK(trusted.trusts(""));  // a unix-socket peer
  CHECK_FALSE(trusting({"127.0.0.1"}).trusts(""));
  CHECK(trusting({"0.0.0.0/0"}).trusts("203.0.113.9"));
  CHECK_FALSE(trusting({"0.0.0.0/0"}).trusts("2001:db8::1"));
  for (const char* bad : {"10.0.0.0/33", "10.0.0.1:80", "[::1]", "example.org", "10.0.0.0/", "10.0.0.0/x", "::/129"}) {
    CAPTURE(bad);
    TrustedProxies proxies;
    std::string error;
    CHECK_FALSE(proxies.parse({bad}, &error));
    CHECK(error.find(bad) != std::string::npos);
  }
}

TEST_CASE("headers from an untrusted peer are ignored") {
  const TrustedProxies trusted = trusting({"10.0.0.1"});
  ForwardingHeaders headers;
  headers.x_forwarded_for = "203.0.113.5";
  headers.x_forwarded_proto = "https";
  headers.x_forwarded_host = "example.org";
  headers.forwarded = "for=203.0.113.6";
  const ClientAddress client = resolve_client("198.51.100.2", headers, trusted);
  CHECK(client.address == "198.51.100.2");
  CHECK(client.scheme.empty());
  CHECK(client.host.empty());
  CHECK_FALSE(client.forwarded);
  CHECK(resolve_client("198.51.100.2", headers, TrustedProxies{}).address == "198.51.100.2");
}

TEST_CASE("X-Forwarded-For: the rightmost address that is not a trusted proxy") {
  const TrustedProxies trusted = trusting({"10.0.0.0/8"});
  ForwardingHeaders headers;
  headers.x_forwarded_for = "198.51.100.66, 203.0.113.5, 10.1.1.1";  // forged, client, inner proxy
  headers.x_forwarded_proto = "https";
  headers.x_forwarded_host = "Example.org:8443";
  const ClientAddress client = resolve_client("10.0.0.1", headers, trusted);
  CHECK(client.address == "203.0.113.5");
  CHECK(client.scheme == "https");
  CHECK(client.host == "example.org:8443");
  CHECK(client.forwarded);

  headers.x_forwarded_for = "10.2.2.2, 10.1.1.1";  // every hop trusted: the farthest is the client
  CHECK(resolve_client("10.0.0.1", headers, trusted).address == "10.2.2.2");
  headers.x_forwarded_for = "203.0.113.5, unknown";  // the proxy could not tell: the proxy is all we know
  CHECK(resolve_client("10.0.0.1", headers, trusted).address == "10.0.0.1");
  headers.x_forwarded_for = "";
  const ClientAddress bare = resolve_client("10.0.0.1", headers, trusted);
  CHECK(bare.address == "10.0.0.1");
  CHECK(bare.scheme == "https");  // scheme and host without an address still count
  CHECK_FALSE(bare.forwarded);
}

TEST_CASE("Forwarded (RFC 7239) wins, with the scheme and host of the client's own hop") {
  const TrustedProxies trusted = trusting({"10.0.0.0/8", "unix"});
  ForwardingHeaders headers;
  headers.forwarded = "for=198.51.100.66;proto=http, For=\"[2001:db8::7]:4711\";Proto=HTTPS;host=term.example.org, "
                      "for=10.9.9.9;proto=http;host=inner";
  headers.x_forwarded_for = "192.0.2.200";
  const ClientAddress client = resolve_client("", headers, trusted);
  CHECK(client.address == "2001:db8::7");
  CHECK(client.scheme == "https");
  CHECK(client.host == "term.example.org");
  CHECK(client.forwarded);
  headers.forwarded = "for=unknown";
  CHECK(resolve_client("10.0.0.1", headers, trusted).address == "10.0.0.1");
}

TEST_CASE("junk in the scheme or host is not used") {
  const TrustedProxies trusted = trusting({"127.0.0.1"});
  ForwardingHeaders headers;
  headers.x_forwarded_for = "203.0.113.5";
  headers.x_forwarded_proto = "javascript";
  headers.x_forwarded_host = "evil.example/path";
  const ClientAddress client = resolve_client("127.0.0.1", headers, trusted);
  CHECK(client.address == "203.0.113.5");
  CHECK(client.scheme.empty());
  CHECK(client.host.empty());
}

TEST_CASE("local clients: loopback and unix sockets") {
  CHECK(ClientAddress{"127.0.0.1", "", "", false}.local());
  CHECK(ClientAddress{"::1", "", "", false}.local());
  CHECK(ClientAddress{"", "", "", false}.local());
  CHECK_FALSE(ClientAddress{"203.0.113.5", "", "", true}.local());
}

}  // namespace
}  // namespace ptyhub::server
