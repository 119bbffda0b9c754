// Watchdog: WATCHDOG=1 at half of the interval systemd asks for (WatchdogSec= → $WATCHDOG_USEC), sent from
// a timer on the daemon's loop — a loop that stops turning stops the pings, and systemd restarts the service.
//
// Owns its uv timer (unreferenced: it never keeps the loop alive), set up by start(). Sends through a
// Notifier it does not own, which must outlive it. Loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <optional>
#include <string>

#include "core/uv_handle.hpp"
#include "src/systemd/notify.hpp"

namespace ptyhub::systemd {

// The watchdog interval in microseconds from $WATCHDOG_USEC (and $WATCHDOG_PID, which must name this
// process when set). nullopt when no watchdog is asked for. False with `error` when a variable is malformed.
bool watchdog_interval_from_environment(std::optional<uint64_t>* usec, std::string* error);

class Watchdog {
 public:
  Watchdog(uv_loop_t* loop, Notifier& notifier, uint64_t interval_usec);
  ~Watchdog() = default;
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Pings at once, then every interval / 2. False, logged, when the timer cannot be set up: no ping is
  // sent then (and systemd restarts the service once the interval passes).
  bool start();
  void stop() { timer_.close(); }
  uint64_t period_ms() const { return period_ms_; }

 private:
  void ping();

  uv_loop_t* loop_;
  Notifier& notifier_;
  uint64_t period_ms_;
  UvHandle<uv_timer_t> timer_;
  bool warned_ = false;
};

}  // namespace ptyhub::systemd
