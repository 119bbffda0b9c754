// Notifier: sd_notify, or a datagram of our own to $NOTIFY_SOCKET.
#include "src/systemd/notify.hpp"

#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>

#ifdef PTYHUB_HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

namespace ptyhub::systemd {

Notifier Notifier::from_environment(std::string* error) {
  const char* value = std::getenv("NOTIFY_SOCKET");
  if (value == nullptr || *value == '\0') return Notifier();
  const std::string address(value);
  if (address[0] != '/' && address[0] != '@') {
    *error = "NOTIFY_SOCKET: want an absolute path or @abstract-name, not \"" + address + "\"";
    return Notifier();
  }
  if (address.size() >= sizeof(sockaddr_un::sun_path)) {
    *error = "NOTIFY_SOCKET: socket address too long";
    return Notifier();
  }
  return Notifier(address);
}

bool Notifier::send(std::string_view state, std::string* error) {
  if (!enabled()) return true;
  if (state.find('\0') != std::string_view::npos) {
    if (error != nullptr) *error = "notify: message holds a NUL byte";
    return false;
  }
#ifdef PTYHUB_HAVE_LIBSYSTEMD
  const int rc = sd_notify(0, std::string(state).c_str());
  if (rc < 0) {
    if (error != nullptr) *error = std::string("notify: ") + std::strerror(-rc);
    return false;
  }
  return true;
#else
  return send_own(state, error);
#endif
}

// The datagram itself; compiled in both builds so that it stays built and tested.
bool Notifier::send_own(std::string_view state, std::string* error) {
  if (!socket_) {
    socket_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!socket_) {
      if (error != nullptr) *error = std::string("notify: socket: ") + std::strerror(errno);
      return false;
    }
  }
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  address_.copy(address.sun_path, address_.size());
  if (address_[0] == '@') address.sun_path[0] = '\0';  // abstract namespace: no terminating NUL counted
  const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address_.size() +
                                             (address_[0] == '@' ? 0 : 1));
  ssize_t sent;
  do {
    sent = ::sendto(socket_.get(), state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&address),
                    length);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) {
    if (error != nullptr) *error = "notify: " + address_ + ": " + std::strerror(errno);
    return false;
  }
  return true;
}

std::string status_line(std::string_view text) {
  std::string line(text);
  for (char& c : line) {
    if (c == '\n' || c == '\r' || c == '\0') c = ' ';
  }
  return line;
}

}  // namespace ptyhub::systemd
