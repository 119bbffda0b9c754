// LoopDelayProbe: how long the loop kept a timer waiting past its due time, the usual measure of how long
// the loop was blocked. A repeating timer is due every interval; each time it fires, how late it is
// (monotonic clock, not the loop's cached time) is a blocking delay of the loop. Only while started:
// an idle daemon is not woken for it. Owns one uv_timer (unreferenced). Loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>

#include "core/uv_handle.hpp"

namespace ptyhub {

class LoopDelayProbe {
 public:
  explicit LoopDelayProbe(uv_loop_t* loop, uint64_t interval_ms = 10) : loop_(loop), interval_ms_(interval_ms) {}

  // Starts (again) with the maximum reset. False when the timer cannot be set up.
  bool start();
  void stop();
  // The longest delay seen since start(), in milliseconds (fractional).
  double max_delay_ms() const { return static_cast<double>(max_delay_ns_) / 1e6; }
  bool running() const { return running_; }

 private:
  void on_tick();

  uv_loop_t* loop_;
  uint64_t interval_ms_;
  UvHandle<uv_timer_t> timer_;
  uint64_t due_ns_ = 0;
  uint64_t max_delay_ns_ = 0;
  bool running_ = false;
};

}  // namespace ptyhub
