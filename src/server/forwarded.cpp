// Client addresses behind trusted proxies.
#include "src/server/forwarded.hpp"

#include <arpa/inet.h>
#include <strings.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace ptyhub::server {
namespace {

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> items;
  while (true) {
    const size_t at = text.find(separator);
    items.push_back(trim(text.substr(0, at)));
    if (at == std::string_view::npos) break;
    text.remove_prefix(at + 1);
  }
  return items;
}

std::string_view unquote(std::string_view value) {
  if (value.size() >= 2 && value.front() == '"' && value.back() == '"') return value.substr(1, value.size() - 2);
  return value;
}

constexpr std::array<uint8_t, 12> kMappedPrefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool is_host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
         c == ':' || c == '[' || c == ']' || c == '_';
}

// A Host value as a client may send it: host[:port], IPv6 in brackets. Anything else is not used.
bool plausible_host(std::string_view host) {
  return !host.empty() && host.size() <= 255 && std::all_of(host.begin(), host.end(), is_host_char);
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return out;
}

}  // namespace

std::optional<IpAddress> IpAddress::parse_plain(std::string_view text) {
  const std::string host(text);
  if (host.empty() || host.size() > INET6_ADDRSTRLEN) return std::nullopt;
  IpAddress address;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    std::copy(kMappedPrefix.begin(), kMappedPrefix.end(), address.bytes.begin());
    std::memcpy(address.bytes.data() + 12, &v4, 4);
    address.v4 = true;
    return address;
  }
  if (inet_pton(AF_INET6, host.c_str(), address.bytes.data()) != 1) return std::nullopt;
  address.v4 = std::equal(kMappedPrefix.begin(), kMappedPrefix.end(), address.bytes.begin());
  return address;
}

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  text = trim(text);
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    const std::string_view rest = text.substr(close + 1);
    if (!rest.empty() && (rest.front() != ':' || rest.size() == 1)) return std::nullopt;
    return parse_plain(text.substr(1, close - 1));
  }
  if (std::count(text.begin(), text.end(), ':') == 1) return parse_plain(text.substr(0, text.find(':')));  // v4:port
  return parse_plain(text);
}

std::string IpAddress::text() const {
  char buffer[INET6_ADDRSTRLEN] = "";
  if (v4) inet_ntop(AF_INET, bytes.data() + 12, buffer, sizeof buffer);
  else inet_ntop(AF_INET6, bytes.data(), buffer, sizeof buffer);
  return buffer;
}

bool IpAddress::loopback() const {
  if (v4) return bytes[12] == 127;
  static constexpr std::array<uint8_t, 16> kLoopback6 = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return bytes == kLoopback6;
}

bool TrustedProxies::parse(const std::vector<std::string>& entries, std::string* error) {
  std::vector<Range> ranges;
  bool unix_socket = false;
  for (const std::string& entry : entries) {
    const std::string_view text = trim(entry);
    if (strcasecmp(std::string(text).c_str(), "unix") == 0) {
      unix_socket = true;
      continue;
    }
    const size_t slash = text.find('/');
    const std::optional<IpAddress> base = IpAddress::parse_plain(text.substr(0, slash));
    Range range;
    bool ok = base.has_value();
    if (ok) {
      range.base = *base;
      if (slash != std::string_view::npos) {
        const std::string_view digits = text.substr(slash + 1);
        int prefix = -1;
        const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
        ok = ec == std::errc() && end == digits.data() + digits.size() && prefix >= 0 &&
             prefix <= (base->v4 ? 32 : 128);
        range.prefix = base->v4 ? prefix + 96 : prefix;
      }
    }
    if (!ok) {
      *error = "trusted_proxy: not an address, ADDRESS/PREFIX or unix: \"" + std::string(text) + "\"";
      return false;
    }
    ranges.push_back(range);
  }
  ranges_ = std::move(ranges);
  unix_ = unix_socket;
  return true;
}

bool TrustedProxies::contains(const IpAddress& address) const {
  for (const Range& range : ranges_) {
    int bits = range.prefix;
    bool match = true;
    for (size_t i = 0; i < 16 && bits > 0 && match; ++i, bits -= 8) {
      const uint8_t mask = bits >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - bits));
      match = (address.bytes[i] & mask) == (range.base.bytes[i] & mask);
    }
    if (match) return true;
  }
  return false;
}

bool TrustedProxies::trusts(std::string_view peer) const {
  if (peer.empty()) return unix_;
  const std::optional<IpAddress> address = IpAddress::parse(peer);
  return address && contains(*address);
}

bool ClientAddress::local() const {
  if (address.empty()) return true;  // a unix socket
  const std::optional<IpAddress> parsed = IpAddress::parse(address);
  return parsed && parsed->loopback();
}

ClientAddress resolve_client(std::string_view peer, const ForwardingHeaders& headers, const TrustedProxies& trusted) {
  ClientAddress client;
  if (const auto parsed = IpAddress::parse(peer)) client.address = parsed->text();
  else client.address = std::string(peer);
  if (!trusted.trusts(peer)) return client;

  // One hop per entry, nearest last: {for, proto, host}.
  struct Hop {
    std::string_view for_, proto, host;
  };
  std::vector<Hop> hops;
  if (!trim(headers.forwarded).empty()) {
    for (std::string_view element : split(headers.forwarded, ',')) {
      Hop hop;
      for (std::string_view pair : split(element, ';')) {
        const size_t equals = pair.find('=');
        if (equals == std::string_view::npos) continue;
        const std::string name = lower(trim(pair.substr(0, equals)));
        const std::string_view value = unquote(trim(pair.substr(equals + 1)));
        if (name == "for") hop.for_ = value;
        else if (name == "proto") hop.proto = value;
        else if (name == "host") hop.host = value;
      }
      hops.push_back(hop);
    }
  } else if (!trim(headers.x_forwarded_for).empty()) {
    for (std::string_view entry : split(headers.x_forwarded_for, ',')) hops.push_back({entry, {}, {}});
    // X-Forwarded-Proto/Host describe the request as the first proxy received it: one value, or a list
    // of which the nearest proxy's is the last.
    if (!hops.empty()) {
      hops.back().proto = split(headers.x_forwarded_proto, ',').back();
      hops.back().host = split(headers.x_forwarded_host, ',').back();
    }
  } else {
    // No address forwarded: the scheme and host may still be.
    hops.push_back({{}, split(headers.x_forwarded_proto, ',').back(), split(headers.x_forwarded_host, ',').back()});
  }

  // Walk from the nearest hop outwards while the address at hand is a trusted proxy.
  for (auto hop = hops.rbegin(); hop != hops.rend(); ++hop) {
    const std::string proto = lower(hop->proto);
    if (proto == "http" || proto == "https") client.scheme = proto;
    if (plausible_host(hop->host)) client.host = lower(hop->host);
    if (hop->for_.empty()) break;
    const std::optional<IpAddress> address = IpAddress::parse(hop->for_);
    if (!address) break;  // "unknown" or an obfuscated name: the hop before is all that is known
    client.address = address->text();
    client.forwarded = true;
    if (!trusted.trusts(client.address)) break;
  }
  return client;
}

}  // namespace ptyhub::server
