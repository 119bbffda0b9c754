// Subscriber: what the hub knows of a client (a connection's session). The hub holds raw pointers;
// a Subscriber detaches itself (Hub::detach) before it is destroyed. Loop thread only.
#pragma once

#include <cstdint>
#include <string_view>

#include "auth/permissions.hpp"
#include "src/protocol/frame.hpp"
#include "src/protocol/output_frame.hpp"

namespace ptyhub::hub {

class Subscriber {
 public:
  virtual ~Subscriber() = default;
  // Queues one frame for the client. Must not call back into the hub.
  virtual void deliver(const protocol::SharedFrame& frame) = 0;
  // Terminal `terminal_id`, whose input queue was full when this subscriber wrote to it, has taken its
  // pending input (or exited).
  virtual void on_input_drained(std::string_view terminal_id) = 0;
  virtual const auth::Principal& principal() const = 0;
  // True while the client's outbound queue is below client_queue_limit (it can take more output).
  virtual bool has_room() const = 0;
  // True when the client took nothing off its queue for longer than its own recent pace allows
  // (`now_ms`: uv_now): a client without room that still takes data is slow, not stalled.
  virtual bool stalled(uint64_t now_ms) const = 0;
};

// How a subscription receives shell.output data.
using Encoding = protocol::OutputEncoding;

}  // namespace ptyhub::hub
