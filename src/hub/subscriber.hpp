// Subscriber: what the hub knows of a client (a connection's session): a Sink of output frames (the
// fan-out core's view) with the principal it acts for. The hub holds raw pointers; a Subscriber detaches
// itself (Hub::detach) before it is destroyed. Loop thread only.
#pragma once

#include <string_view>

#include "auth/permissions.hpp"
#include "src/hub/fanout.hpp"

namespace ptyhub::hub {

class Subscriber : public Sink {
 public:
  // Terminal `terminal_id`, whose input queue was full when this subscriber wrote to it, has taken its
  // pending input (or exited).
  virtual void on_input_drained(std::string_view terminal_id) = 0;
  virtual const auth::Principal& principal() const = 0;
};

}  // namespace ptyhub::hub
