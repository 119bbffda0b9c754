// DrainPace: the recent pace of a connection's outbound queue.
#include "src/server/drain_pace.hpp"

#include <algorithm>

namespace ptyhub::server {

void DrainPace::on_queued(uint64_t now_ms, bool queue_was_empty) {
  if (!queue_was_empty) return;
  waiting_ = true;
  head_since_ms_ = now_ms;
}

void DrainPace::on_sent(uint64_t now_ms, bool more_queued) {
  const uint64_t wait = now_ms - std::min(head_since_ms_, now_ms);
  slowest_ms_ = std::max(slowest_wait_ms(now_ms), wait);
  slowest_at_ms_ = now_ms;
  waiting_ = more_queued;
  head_since_ms_ = now_ms;  // the next frame, if any, starts waiting now
}

uint64_t DrainPace::slowest_wait_ms(uint64_t now_ms) const {
  const uint64_t forgotten = (now_ms - std::min(slowest_at_ms_, now_ms)) / 8;
  return slowest_ms_ > forgotten ? slowest_ms_ - forgotten : 0;
}

uint64_t DrainPace::allowance_ms(uint64_t now_ms) const {
  return std::clamp<uint64_t>(2 * slowest_wait_ms(now_ms), kMinAllowanceMs, kMaxAllowanceMs);
}

}  // namespace ptyhub::server
