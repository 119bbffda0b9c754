// Endpoint: where the daemon listens, parsed from PTYHUB_URL / --url. Pure; no I/O.
//
//   ws://HOST[:PORT][/PATH]    plain WebSocket (default port 80; default path /ws)
//   wss://HOST[:PORT][/PATH]   WebSocket over TLS (default port 443)
//   unix:/PATH/TO/SOCKET       the daemon's unix-socket listener (docs/protocol.md §1), path /ws
// IPv6 hosts are written in brackets: ws://[::1]:7700/ws.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace ptyhub::cli {

struct Endpoint {
  enum class Kind { tcp, unix_socket };
  Kind kind = Kind::tcp;
  bool tls = false;
  std::string host;         // tcp: host name or address (no brackets)
  int port = 0;             // tcp only
  std::string socket_path;  // unix only
  std::string path = "/ws";
};

inline constexpr std::string_view kDefaultUrl = "ws://127.0.0.1:7700/ws";

// The endpoint named by `url`, or nullopt with `*why` set to what is wrong with it.
std::optional<Endpoint> parse_endpoint(std::string_view url, std::string* why);

}  // namespace ptyhub::cli
