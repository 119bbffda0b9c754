// PeerLimits: per client address, how many connections are open and how many authentications failed in
// the last minute (docs/protocol.md §3 Limits). The edge refuses a connection (close 4429) over the
// connection cap. Rejected tokens never refuse anyone: beyond `free_failures` a minute, each further
// attempt from that address waits before its token is looked at, twice as long per failure, at most
// kMaxDelayMs; a valid token is then accepted. Memory is bounded: entries are dropped once a peer has no
// connection and no recent failure, and at most kMaxPeers addresses are tracked. The empty address (the
// caller's choice for unix sockets and, unless configured, loopback) is not limited.
// Loop thread only; pure (the caller passes the time).
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>

namespace ptyhub::server {

class PeerLimits {
 public:
  static constexpr size_t kMaxPeers = 100000;
  static constexpr uint64_t kFailureWindowMs = 60000;
  static constexpr uint64_t kFirstDelayMs = 250;
  static constexpr uint64_t kMaxDelayMs = 5000;

  PeerLimits(uint64_t max_connections_per_peer, uint64_t free_failures_per_minute)
      : max_connections_(max_connections_per_peer), free_failures_(free_failures_per_minute) {}

  // Counts a new connection from `peer` and says whether it may stay. A refused one is not counted.
  bool admit(const std::string& peer, uint64_t now_ms);
  // How long the next token from `peer` waits before it is verified: 0 while the address had at most
  // free_failures rejected tokens in the last minute, then 250 ms, 500 ms, ... up to kMaxDelayMs.
  uint64_t auth_delay_ms(const std::string& peer, uint64_t now_ms);
  void release(const std::string& peer, uint64_t now_ms);
  void record_auth_failure(const std::string& peer, uint64_t now_ms);
  size_t tracked() const { return peers_.size(); }

 private:
  struct Entry {
    uint64_t connections = 0;
    std::deque<uint64_t> failures;  // times within the window, oldest first; at most max_remembered()
  };
  void prune(Entry& entry, uint64_t now_ms) const;
  void forget_if_idle(const std::string& peer, uint64_t now_ms);

  // Enough failures to reach kMaxDelayMs; older ones change nothing.
  size_t max_remembered() const { return free_failures_ + 16; }

  uint64_t max_connections_;
  uint64_t free_failures_;
  std::unordered_map<std::string, Entry> peers_;
};

}  // namespace ptyhub::server
