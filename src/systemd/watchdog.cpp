// Watchdog: $WATCHDOG_USEC and the WATCHDOG=1 timer.
#include "src/systemd/watchdog.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "core/log.hpp"

#ifdef PTYHUB_HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

namespace ptyhub::systemd {
namespace {

bool parse_unsigned(const char* text, unsigned long long* out) {
  if (text == nullptr || *text < '0' || *text > '9') return false;
  errno = 0;
  char* end = nullptr;
  *out = std::strtoull(text, &end, 10);
  return errno == 0 && *end == '\0';
}

}  // namespace

bool watchdog_interval_from_environment(std::optional<uint64_t>* usec, std::string* error) {
  usec->reset();
  const char* text = std::getenv("WATCHDOG_USEC");
  const char* pid_text = std::getenv("WATCHDOG_PID");
  if (text == nullptr) return true;
  unsigned long long value = 0;
  if (!parse_unsigned(text, &value) || value == 0) {
    *error = std::string("WATCHDOG_USEC: not a positive number of microseconds: \"") + text + "\"";
    return false;
  }
  unsigned long long pid = 0;
  if (pid_text != nullptr && !parse_unsigned(pid_text, &pid)) {
    *error = std::string("WATCHDOG_PID: not a process id: \"") + pid_text + "\"";
    return false;
  }
#ifdef PTYHUB_HAVE_LIBSYSTEMD
  uint64_t from_library = 0;
  const int rc = sd_watchdog_enabled(0, &from_library);
  if (rc < 0) {
    *error = std::string("WATCHDOG_USEC: ") + std::strerror(-rc);
    return false;
  }
  if (rc > 0) *usec = from_library;
#else
  if (pid_text == nullptr || pid == static_cast<unsigned long long>(getpid())) *usec = value;
#endif
  return true;
}

Watchdog::Watchdog(uv_loop_t* loop, Notifier& notifier, uint64_t interval_usec)
    : loop_(loop), notifier_(notifier), period_ms_(std::max<uint64_t>(1, interval_usec / 2000)) {}

bool Watchdog::start() {
  if (timer_.get() == nullptr) return false;  // stopped
  if (!timer_.initialised()) {
    const int rc = uv_timer_init(loop_, timer_.get());
    if (rc != 0) {
      log::error(std::string("watchdog: uv_timer_init: ") + uv_strerror(rc) + "; no WATCHDOG=1 will be sent");
      return false;
    }
    timer_.mark_initialised();
    timer_.get()->data = this;
    uv_unref(timer_.as_handle());
  }
  uv_timer_start(
      timer_.get(),
      [](uv_timer_t* handle) {
        if (auto* self = static_cast<Watchdog*>(handle->data)) self->ping();
      },
      0, period_ms_);
  return true;
}

void Watchdog::ping() {
  std::string error;
  if (!notifier_.send("WATCHDOG=1", &error) && !warned_) {
    warned_ = true;  // once: a broken socket would otherwise fill the log at the ping rate
    log::warn(error);
  }
}

}  // namespace ptyhub::systemd
