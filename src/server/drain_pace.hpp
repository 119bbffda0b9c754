// DrainPace: how fast one connection's outbound queue drains, to tell a slow client from a stalled one.
//
// It records how long the frame at the head of the queue has been waiting, and the longest recent such
// wait (forgetting 1 ms of it for every 8 ms that pass). A client is stalled when its head frame has
// waited longer than its allowance: twice that recent wait, at least kMinAllowanceMs and at most
// kMaxAllowanceMs. A client with nothing queued is never stalled. A client that reads in bursts (a busy process serving many sockets) thereby
// keeps its place, while one that stops reading is known as stalled after kMinAllowanceMs.
// Pure: times are passed in (loop milliseconds).
#pragma once

#include <algorithm>
#include <cstdint>

namespace ptyhub::server {

class DrainPace {
 public:
  static constexpr uint64_t kMinAllowanceMs = 250;
  static constexpr uint64_t kMaxAllowanceMs = 2000;

  explicit DrainPace(uint64_t now_ms) : head_since_ms_(now_ms), slowest_at_ms_(now_ms) {}

  // A frame was queued; `queue_was_empty`: it is the new head.
  void on_queued(uint64_t now_ms, bool queue_was_empty);
  // The head frame was handed to the socket; `more_queued`: another frame is now the head.
  void on_sent(uint64_t now_ms, bool more_queued);
  uint64_t allowance_ms(uint64_t now_ms) const;
  bool stalled(uint64_t now_ms) const {
    return waiting_ && now_ms - std::min(head_since_ms_, now_ms) >= allowance_ms(now_ms);
  }

 private:
  uint64_t slowest_wait_ms(uint64_t now_ms) const;

  bool waiting_ = false;     // a frame is queued
  uint64_t head_since_ms_;  // when the current head frame started waiting
  uint64_t slowest_ms_ = 0;
  uint64_t slowest_at_ms_;
};

}  // namespace ptyhub::server
