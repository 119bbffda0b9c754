// PeerLimits: per client address, how many connections are open and how many authentications failed in
// the last minute. The edge refuses a connection (close 4429) when either is over its limit. Memory is
// bounded: entries are dropped once a peer has no connection and no recent failure, and at most
// kMaxPeers addresses are tracked. Connections without an address (unix sockets) are not limited.
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

  PeerLimits(uint64_t max_connections_per_peer, uint64_t max_auth_failures_per_minute)
      : max_connections_(max_connections_per_peer), max_failures_(max_auth_failures_per_minute) {}

  // Counts a new connection from `peer` and says whether it may stay. A refused one is not counted.
  bool admit(const std::string& peer, uint64_t now_ms);
  void release(const std::string& peer, uint64_t now_ms);
  void record_auth_failure(const std::string& peer, uint64_t now_ms);
  size_t tracked() const { return peers_.size(); }

 private:
  struct Entry {
    uint64_t connections = 0;
    std::deque<uint64_t> failures;  // times within the window, oldest first; at most max_failures_ + 1
  };
  void prune(Entry& entry, uint64_t now_ms) const;
  void forget_if_idle(const std::string& peer, uint64_t now_ms);

  uint64_t max_connections_;
  uint64_t max_failures_;
  std::unordered_map<std::string, Entry> peers_;
};

}  // namespace ptyhub::server
