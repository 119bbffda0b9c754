// Outbox: what a session needs from its connection. Implemented by the server edge, so the session
// never touches a socket. Loop thread only.
#pragma once

#include <cstdint>
#include <string_view>

#include "src/protocol/frame.hpp"

namespace ptyhub::session {

class Outbox {
 public:
  virtual ~Outbox() = default;
  // Queues a frame; ignored once the connection is closing.
  virtual void send(const protocol::SharedFrame& frame) = 0;
  // Sends what is queued, then a close frame with `code`; no more messages are delivered after it.
  virtual void close(int code, std::string_view reason) = 0;
  // Stop / restart reading the client's socket (input flow control).
  virtual void pause_reading() = 0;
  virtual void resume_reading() = 0;
  // True while the connection's outbound queue is below its limit (client_queue_limit): the one place
  // that decides whether a client can take more output.
  virtual bool has_room() const = 0;
  // True when the client took no frame for longer than its recent pace allows (`now_ms`: uv_now).
  virtual bool stalled(uint64_t now_ms) const = 0;
};

}  // namespace ptyhub::session
