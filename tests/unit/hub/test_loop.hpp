// Loop: a libuv loop for tests of the hub, run until a condition holds (bounded: 10 s).
#pragma once

#include <doctest/doctest.h>
#include <uv.h>

#include <functional>

namespace ptyhub::hub::test {

class Loop {
 public:
  Loop() { REQUIRE(uv_loop_init(&loop_) == 0); }
  ~Loop() {
    for (int i = 0; i < 10 && uv_run(&loop_, UV_RUN_NOWAIT) != 0; ++i) {
    }
    uv_loop_close(&loop_);
  }
  uv_loop_t* get() { return &loop_; }
  // Runs the loop until `done` or 10 s.
  bool run_until(const std::function<bool()>& done) {
    bool expired = false;
    uv_timer_t deadline, tick;
    uv_timer_init(&loop_, &deadline);
    uv_timer_init(&loop_, &tick);
    deadline.data = &expired;
    uv_timer_start(&deadline, [](uv_timer_t* t) { *static_cast<bool*>(t->data) = true; }, 10000, 0);
    uv_timer_start(&tick, [](uv_timer_t*) {}, 5, 5);
    while (!done() && !expired) uv_run(&loop_, UV_RUN_ONCE);
    uv_close(reinterpret_cast<uv_handle_t*>(&deadline), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
    uv_run(&loop_, UV_RUN_NOWAIT);
    return done();
  }

 private:
  uv_loop_t loop_{};
};

}  // namespace ptyhub::hub::test
