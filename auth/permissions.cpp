// Scope names (docs/protocol.md §2 Authentication) and the terminal access rule.
#include "auth/permissions.hpp"

namespace ptyhub::auth {
namespace {

struct NamedScope {
  std::string_view name;
  Scope scope;
};
// In the order docs/protocol.md §2 Authentication lists them.
constexpr NamedScope kScopeNames[] = {
    {"terminal:create", Scope::terminal_create},
    {"terminal:read", Scope::terminal_read},
    {"terminal:write", Scope::terminal_write},
    {"git:run", Scope::git_run},
    {"admin", Scope::admin},
};

}  // namespace

ScopeSet ScopeSet::from_names(const std::vector<std::string>& names) {
  ScopeSet set;
  for (const std::string& name : names) {
    for (const NamedScope& known : kScopeNames) {
      if (known.name == name) set.add(known.scope);
    }
  }
  return set;
}

bool ScopeSet::allows(Scope scope) const { return has(Scope::admin) || has(scope); }

std::vector<std::string> ScopeSet::names() const {
  std::vector<std::string> out;
  for (const NamedScope& known : kScopeNames) {
    if (has(known.scope)) out.emplace_back(known.name);
  }
  return out;
}

Access terminal_access(const Principal& principal, std::string_view owner,
                       const std::map<std::string, Access, std::less<>>& shares) {
  if (principal.user.empty()) return Access::none;  // never matches an unset owner or share
  if (principal.user == owner) return Access::write;
  if (principal.scopes.has(Scope::admin)) return Access::write;
  const auto share = shares.find(principal.user);
  return share == shares.end() ? Access::none : share->second;
}

}  // namespace ptyhub::auth
