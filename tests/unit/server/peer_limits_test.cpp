// PeerLimits: connections per address, failed authentications per minute, bounded memory.
#include <doctest/doctest.h>

#include "src/server/peer_limits.hpp"

namespace ptyhub::server {
namespace {

TEST_CASE("connections per address are limited and released") {
  PeerLimits limits(2, 5);
  CHECK(limits.admit("10.0.0.1", 0));
  CHECK(limits.admit("10.0.0.1", 0));
  CHECK_FALSE(limits.admit("10.0.0.1", 0));
  CHECK(limits.admit("10.0.0.2", 0));  // another address is not affected
  limits.release("10.0.0.1", 0);
  CHECK(limits.admit("10.0.0.1", 0));
}

TEST_CASE("rejected tokens never refuse an address: beyond the free ones, each attempt waits longer, bounded") {
  PeerLimits limits(100, 3);
  REQUIRE(limits.admit("10.0.0.1", 0));
  for (int i = 0; i < 3; ++i) limits.record_auth_failure("10.0.0.1", 1000);
  CHECK(limits.auth_delay_ms("10.0.0.1", 1000) == 0);  // three free failures a minute
  limits.record_auth_failure("10.0.0.1", 1000);
  CHECK(limits.auth_delay_ms("10.0.0.1", 1000) == PeerLimits::kFirstDelayMs);
  limits.record_auth_failure("10.0.0.1", 1000);
  CHECK(limits.auth_delay_ms("10.0.0.1", 1000) == 2 * PeerLimits::kFirstDelayMs);
  for (int i = 0; i < 200; ++i) limits.record_auth_failure("10.0.0.1", 1000);
  CHECK(limits.auth_delay_ms("10.0.0.1", 1000) == PeerLimits::kMaxDelayMs);
  CHECK(limits.admit("10.0.0.1", 2000));                // the address is never refused for them
  CHECK(limits.auth_delay_ms("10.0.0.2", 1000) == 0);  // another address is never delayed
  CHECK(limits.auth_delay_ms("10.0.0.1", 1000 + PeerLimits::kFailureWindowMs) == 0);  // a minute later
}

TEST_CASE("unix-socket clients (no address) are not limited") {
  PeerLimits limits(1, 1);
  for (int i = 0; i < 10; ++i) CHECK(limits.admit("", 0));
  limits.record_auth_failure("", 0);
  limits.record_auth_failure("", 0);
  CHECK(limits.auth_delay_ms("", 0) == 0);
  CHECK(limits.admit("", 0));
  CHECK(limits.tracked() == 0);
}

TEST_CASE("idle addresses are forgotten") {
  PeerLimits limits(5, 5);
  REQUIRE(limits.admit("10.0.0.1", 0));
  limits.record_auth_failure("10.0.0.1", 0);
  limits.release("10.0.0.1", 0);
  CHECK(limits.tracked() == 1);  // a recent failure is remembered
  limits.release("10.0.0.1", PeerLimits::kFailureWindowMs);
  CHECK(limits.tracked() == 0);
  for (int i = 0; i < 1000; ++i) {
    const std::string peer = "10.1." + std::to_string(i / 256) + "." + std::to_string(i % 256);
    REQUIRE(limits.admit(peer, 0));
    limits.release(peer, 0);
  }
  CHECK(limits.tracked() == 0);
}

}  // namespace
}  // namespace ptyhub::server
