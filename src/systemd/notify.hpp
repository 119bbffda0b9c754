// Notifier: the service manager's notification protocol (sd_notify). A message is one datagram of
// newline-separated VAR=value assignments ("READY=1\nSTATUS=…") sent to the AF_UNIX datagram socket that
// $NOTIFY_SOCKET names: an absolute path, or "@name" for the abstract namespace.
//
// With libsystemd (PTYHUB_HAVE_LIBSYSTEMD) sd_notify() sends; without it this file does, on a datagram
// socket of its own that the Notifier owns. Without NOTIFY_SOCKET every send is a no-op. Loop thread only.
#pragma once

#include <string>
#include <string_view>

#include "core/unique_fd.hpp"

namespace ptyhub::systemd {

class Notifier {
 public:
  // Disabled: sends nothing.
  Notifier() = default;
  // Reads $NOTIFY_SOCKET (left in the environment: hub/ keeps it from children). A value that is neither an
  // absolute path nor "@name" fails with `error` and gives a disabled notifier.
  static Notifier from_environment(std::string* error);
  Notifier(Notifier&&) = default;
  Notifier& operator=(Notifier&&) = default;

  bool enabled() const { return !address_.empty(); }
  const std::string& address() const { return address_; }
  // Sends one message. True when it was sent (or when disabled); false with `error` otherwise.
  bool send(std::string_view state, std::string* error = nullptr);

 private:
  explicit Notifier(std::string address) : address_(std::move(address)) {}
  bool send_own(std::string_view state, std::string* error);

  std::string address_;  // $NOTIFY_SOCKET
  UniqueFd socket_;      // own implementation only: opened on first use
};

// The text after "STATUS=" made safe for one assignment (newlines become spaces).
std::string status_line(std::string_view text);

}  // namespace ptyhub::systemd
