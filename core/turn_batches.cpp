#include "core/turn_batches.hpp"

namespace ptyhub {

void TurnBatches::run() {
  if (!idle_.initialised() && !idle_.adopt_init(uv_idle_init(loop_, idle_.get()), this)) {
    while (batch_()) {
    }
    return;
  }
  if (!batch_()) {
    uv_idle_stop(idle_.get());
    return;
  }
  uv_idle_start(idle_.get(), [](uv_idle_t* handle) {
    auto* self = static_cast<TurnBatches*>(handle->data);
    if (self != nullptr && !self->batch_()) uv_idle_stop(handle);
  });
}

void TurnBatches::stop() {
  if (idle_.initialised()) uv_idle_stop(idle_.get());
}

}  // namespace ptyhub
