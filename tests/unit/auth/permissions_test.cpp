// Tests for auth/permissions: scope names, admin, and the owner/share/none access matrix.
#include "auth/permissions.hpp"

#include <doctest/doctest.h>

namespace ptyhub::auth {
namespace {

using Shares = std::map<std::string, Access, std::less<>>;
using Names = std::vector<std::string>;

Principal principal(std::string user, const Names& scopes) {
  return Principal{std::move(user), ScopeSet::from_names(scopes)};
}

}  // namespace

TEST_CASE("permissions: scope names, unknown ones ignored") {
  const ScopeSet set = ScopeSet::from_names({"git:run", "terminal:read", "terminal:delete", "", "ADMIN", "admin "});
  CHECK(set.has(Scope::git_run));
  CHECK(set.has(Scope::terminal_read));
  CHECK_FALSE(set.has(Scope::terminal_write));
  CHECK_FALSE(set.has(Scope::terminal_create));
  CHECK_FALSE(set.has(Scope::admin));
  CHECK(set.names() == Names{"terminal:read", "git:run"});  // table order, unknown names dropped
}

TEST_CASE("permissions: every known name round-trips, in table order") {
  const Names all = {"admin", "git:run", "terminal:write", "terminal:read", "terminal:create"};
  CHECK(ScopeSet::from_names(all).names() ==
        Names{"terminal:create", "terminal:read", "terminal:write", "git:run", "admin"});
  CHECK(ScopeSet{}.names().empty());
  CHECK(ScopeSet::from_names({"terminal:read", "terminal:read"}).names() == Names{"terminal:read"});
}

TEST_CASE("permissions: allows follows the scopes held") {
  const ScopeSet set = ScopeSet::from_names({"terminal:create", "terminal:read"});
  CHECK(set.allows(Scope::terminal_create));
  CHECK(set.allows(Scope::terminal_read));
  CHECK_FALSE(set.allows(Scope::terminal_write));
  CHECK_FALSE(set.allows(Scope::git_run));
  CHECK_FALSE(set.allows(Scope::admin));
  CHECK_FALSE(ScopeSet{}.allows(Scope::terminal_read));
}

TEST_CASE("permissions: admin allows everything but holds only admin") {
  const ScopeSet set = ScopeSet::from_names({"admin"});
  for (Scope scope : {Scope::terminal_create, Scope::terminal_read, Scope::terminal_write, Scope::git_run,
                      Scope::admin}) {
    CHECK(set.allows(scope));
  }
  CHECK_FALSE(set.has(Scope::terminal_write));
  CHECK(set.names() == Names{"admin"});
}

TEST_CASE("permissions: add") {
  ScopeSet set;
  set.add(Scope::terminal_write);
  CHECK(set.has(Scope::terminal_write));
  CHECK(set.names() == Names{"terminal:write"});
}

TEST_CASE("permissions: terminal access matrix") {
  const Shares shares = {{"reader", Access::read}, {"writer", Access::write}, {"revoked", Access::none}};
  struct Row {
    const char* name;
    Principal who;
    Access expected;
  };
  const Row rows[] = {
      {"owner", principal("alice", {}), Access::write},
      {"owner with read scope only", principal("alice", {"terminal:read"}), Access::write},
      {"admin, not owner", principal("root", {"admin"}), Access::write},
      {"shared read", principal("reader", {"terminal:read", "terminal:write"}), Access::read},
      {"shared write", principal("writer", {"terminal:read"}), Access::write},
      {"share revoked", principal("revoked", {"terminal:read"}), Access::none},
      {"stranger", principal("mallory", {"terminal:read", "terminal:write", "git:run"}), Access::none},
      {"owner name differs in case", principal("Alice", {}), Access::none},
      {"owner name as prefix", principal("alic", {}), Access::none},
  };
  for (const Row& row : rows) {
    INFO("row: " << row.name);
    CHECK(terminal_access(row.who, "alice", shares) == row.expected);
  }
}

TEST_CASE("permissions: admin wins over a lower share") {
  const Shares shares = {{"root", Access::read}};
  CHECK(terminal_access(principal("root", {"admin"}), "alice", shares) == Access::write);
}

TEST_CASE("permissions: an empty user matches no owner and no share") {
  const Shares shares = {{"", Access::write}};
  CHECK(terminal_access(principal("", {}), "", shares) == Access::none);
  CHECK(terminal_access(principal("", {}), "alice", shares) == Access::none);
  CHECK(terminal_access(principal("alice", {}), "", {}) == Access::none);
}

}  // namespace ptyhub::auth
