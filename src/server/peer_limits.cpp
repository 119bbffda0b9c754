// PeerLimits: connection and authentication-failure limits per client address.
#include "src/server/peer_limits.hpp"

#include <algorithm>

namespace ptyhub::server {

void PeerLimits::prune(Entry& entry, uint64_t now_ms) const {
  while (!entry.failures.empty() && entry.failures.front() + kFailureWindowMs <= now_ms) entry.failures.pop_front();
}

void PeerLimits::forget_if_idle(const std::string& peer, uint64_t now_ms) {
  auto it = peers_.find(peer);
  if (it == peers_.end()) return;
  prune(it->second, now_ms);
  if (it->second.connections == 0 && it->second.failures.empty()) peers_.erase(it);
}

bool PeerLimits::admit(const std::string& peer, uint64_t now_ms) {
  if (peer.empty()) return true;
  auto it = peers_.find(peer);
  if (it == peers_.end()) {
    if (peers_.size() >= kMaxPeers) return false;
    it = peers_.emplace(peer, Entry{}).first;
  }
  Entry& entry = it->second;
  prune(entry, now_ms);
  if (entry.connections >= max_connections_) {
    forget_if_idle(peer, now_ms);
    return false;
  }
  ++entry.connections;
  return true;
}

void PeerLimits::release(const std::string& peer, uint64_t now_ms) {
  auto it = peers_.find(peer);
  if (it == peers_.end()) return;
  if (it->second.connections > 0) --it->second.connections;
  forget_if_idle(peer, now_ms);
}

void PeerLimits::record_auth_failure(const std::string& peer, uint64_t now_ms) {
  auto it = peers_.find(peer);
  if (peer.empty() || it == peers_.end()) return;  // only admitted peers are tracked
  Entry& entry = it->second;
  prune(entry, now_ms);
  entry.failures.push_back(now_ms);
  while (entry.failures.size() > max_remembered()) entry.failures.pop_front();
}

uint64_t PeerLimits::auth_delay_ms(const std::string& peer, uint64_t now_ms) {
  auto it = peers_.find(peer);
  if (peer.empty() || it == peers_.end()) return 0;
  prune(it->second, now_ms);
  const size_t failures = it->second.failures.size();
  if (failures <= free_failures_) return 0;
  const size_t doublings = failures - free_failures_ - 1;
  if (doublings >= 5) return kMaxDelayMs;  // 250 ms << 5 is past the bound already
  return std::min(kMaxDelayMs, kFirstDelayMs << doublings);
}

}  // namespace ptyhub::server
