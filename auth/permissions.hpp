// The permission model: scopes from a token, and what a principal may do to a terminal.
// Pure data and functions; nothing of WebSockets or libuv.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace ptyhub::auth {

enum class Scope : uint8_t {
  terminal_create = 1 << 0,
  terminal_read = 1 << 1,
  terminal_write = 1 << 2,
  git_run = 1 << 3,
  admin = 1 << 4,
};

class ScopeSet {
 public:
  ScopeSet() = default;
  // Unknown scope names are ignored (and not kept).
  static ScopeSet from_names(const std::vector<std::string>& names);
  // `admin` allows everything.
  bool allows(Scope scope) const;
  bool has(Scope scope) const { return (bits_ & static_cast<uint8_t>(scope)) != 0; }
  void add(Scope scope) { bits_ |= static_cast<uint8_t>(scope); }
  // The known names held, in the order docs/protocol.md §2 Authentication lists them.
  std::vector<std::string> names() const;

 private:
  uint8_t bits_ = 0;
};

// The authenticated user of a connection.
struct Principal {
  std::string user;  // the token's `sub`
  ScopeSet scopes;
};

enum class Access { none, read, write };

// What `principal` may do with a terminal owned by `owner`, given the modes it was shared with
// (user -> read/write). Owner: write. admin scope: write. A share: its mode. Otherwise none.
// A principal with an empty `user` (never produced by a verified token) gets none.
Access terminal_access(const Principal& principal, std::string_view owner,
                       const std::map<std::string, Access, std::less<>>& shares);

}  // namespace ptyhub::auth
