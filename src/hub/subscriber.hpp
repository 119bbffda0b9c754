// Subscriber: what the hub knows of a client (a connection's session): a Sink of output frames (the
// fan-out core's view) with the principal it acts for. The hub holds raw pointers; a Subscriber detaches
// itself (Hub::detach) before it is destroyed. Loop thread only.
#pragma once

#include <string_view>
#include <unordered_set>

#include "auth/permissions.hpp"
#include "src/hub/fanout.hpp"

namespace ptyhub::hub {

class Terminal;

class Subscriber : public Sink {
 public:
  // Terminal `terminal_id`, whose input queue was full when this subscriber wrote to it, has taken its
  // pending input (or exited).
  virtual void on_input_drained(std::string_view terminal_id) = 0;
  virtual const auth::Principal& principal() const = 0;

  // The terminals that hold a pointer to this subscriber (it is subscribed, or waits for their input to
  // drain), kept by Terminal: detaching a subscriber or catching it up costs its own terminals, not every
  // terminal of the daemon.
  const std::unordered_set<Terminal*>& linked_terminals() const { return linked_; }

 private:
  friend class Terminal;
  std::unordered_set<Terminal*> linked_;
};

}  // namespace ptyhub::hub
