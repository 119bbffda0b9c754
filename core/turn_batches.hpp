// TurnBatches: spreads work over turns of the loop. run() calls `batch` once now and then once per loop
// turn, on an idle handle (the poll does not block while it is active, and I/O is served between two
// batches), until `batch` returns false. A uv timer cannot do this on libuv 1.44: a 0 ms timer restarted
// from its own callback runs again in the same turn. Without a handle (its init failed) every batch runs
// at once. Owns one uv_idle, closed with the object. Loop thread only.
#pragma once

#include <uv.h>

#include <functional>

#include "core/uv_handle.hpp"

namespace ptyhub {

class TurnBatches {
 public:
  // `batch` does one batch of work and returns whether any is left.
  TurnBatches(uv_loop_t* loop, std::function<bool()> batch) : loop_(loop), batch_(std::move(batch)) {}

  void run();
  void stop();

 private:
  uv_loop_t* loop_;
  std::function<bool()> batch_;
  UvHandle<uv_idle_t> idle_;
};

}  // namespace ptyhub
