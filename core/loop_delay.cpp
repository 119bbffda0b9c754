#include "core/loop_delay.hpp"

namespace ptyhub {

bool LoopDelayProbe::start() {
  if (!timer_.initialised() && !timer_.adopt_init(uv_timer_init(loop_, timer_.get()), this)) return false;
  uv_unref(timer_.as_handle());
  max_delay_ns_ = 0;
  // The loop's cached time may be behind the clock; the first due time is taken from the clock itself.
  due_ns_ = uv_hrtime() + interval_ms_ * 1000000;
  uv_update_time(loop_);
  uv_timer_start(
      timer_.get(),
      [](uv_timer_t* handle) {
        if (auto* self = static_cast<LoopDelayProbe*>(handle->data)) self->on_tick();
      },
      interval_ms_, interval_ms_);
  running_ = true;
  return true;
}

void LoopDelayProbe::stop() {
  if (timer_.initialised()) uv_timer_stop(timer_.get());
  running_ = false;
}

void LoopDelayProbe::on_tick() {
  const uint64_t now = uv_hrtime();
  // libuv timers have millisecond resolution: up to a millisecond late is the timer, not the loop.
  const uint64_t slack = 1000000;
  if (now > due_ns_ + slack && now - due_ns_ - slack > max_delay_ns_) max_delay_ns_ = now - due_ns_ - slack;
  // A repeating uv timer is rescheduled from the time it fired, not from its due time.
  due_ns_ = now + interval_ms_ * 1000000;
}

}  // namespace ptyhub
