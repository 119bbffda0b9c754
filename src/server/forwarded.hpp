// Who the client is behind a reverse proxy (docs/protocol.md §1 Endpoints, "Behind a reverse proxy").
//
// `trusted_proxy` names the peers whose forwarding headers are believed: addresses, CIDR ranges, and
// `unix` for connections on a unix socket. From those peers only, `Forwarded` (RFC 7239) or else
// `X-Forwarded-For`, `X-Forwarded-Proto` and `X-Forwarded-Host` give the client's address, the scheme and
// the host it used. The address is the rightmost entry that is not itself a trusted proxy. From any
// other peer the headers are ignored. Pure; no I/O.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ptyhub::server {

// An IPv4 or IPv6 address, IPv4 kept as IPv4-mapped IPv6 so both compare in one form.
struct IpAddress {
  std::array<uint8_t, 16> bytes{};
  bool v4 = false;

  // "192.0.2.1", "2001:db8::1", "::ffff:192.0.2.1" (becomes IPv4), "[2001:db8::1]"; a port after the
  // address (`192.0.2.1:4711`, `[2001:db8::1]:4711`) is dropped. nullopt for anything else.
  static std::optional<IpAddress> parse(std::string_view text);
  // Only an address: no brackets, no port.
  static std::optional<IpAddress> parse_plain(std::string_view text);
  std::string text() const;  // canonical: "192.0.2.1", "2001:db8::1"
  bool loopback() const;     // 127.0.0.0/8 or ::1
};

class TrustedProxies {
 public:
  // Each entry: an address, ADDRESS/PREFIX, or `unix`. False with `error` naming the bad entry.
  bool parse(const std::vector<std::string>& entries, std::string* error);
  bool empty() const { return ranges_.empty() && !unix_; }
  // `peer` as the socket gives it: an address, or empty for a unix socket.
  bool trusts(std::string_view peer) const;

 private:
  bool contains(const IpAddress& address) const;
  struct Range {
    IpAddress base;
    int prefix = 128;  // in IPv6 bits (an IPv4 /24 is stored as /120)
  };
  std::vector<Range> ranges_;
  bool unix_ = false;
};

// The forwarding headers of one request, as received (empty when absent).
struct ForwardingHeaders {
  std::string forwarded;  // RFC 7239
  std::string x_forwarded_for, x_forwarded_proto, x_forwarded_host;
};

struct ClientAddress {
  std::string address;  // the client's address; empty for a unix-socket peer with nothing forwarded
  std::string scheme;   // "http"/"https" as the client used it, when a trusted proxy said so
  std::string host;     // the Host the client used, when a trusted proxy said so
  bool forwarded = false;  // the address came from a trusted proxy's header
  // Loopback or a unix socket: the per-address limits skip it unless configured otherwise.
  bool local() const;
};

// The client behind `peer`. Without trust in `peer`, or without headers, that is `peer` itself.
// `Forwarded` wins over the X-Forwarded-* headers when both are present. Entries that are not addresses
// (`unknown`, obfuscated identifiers) end the walk: the hop that wrote them is the client.
ClientAddress resolve_client(std::string_view peer, const ForwardingHeaders& headers, const TrustedProxies& trusted);

}  // namespace ptyhub::server
