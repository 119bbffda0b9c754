// Listener: accept, read the request head, hand the socket on.
#include "src/server/listener.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>

#include "core/log.hpp"
#include "src/server/request_head.hpp"

namespace ptyhub::server {
namespace {

constexpr int kAcceptsPerWakeup = 64;

// accept()'s errors that mean "no file descriptor or memory for one more socket": retrying at once cannot help.
bool is_out_of_fds(int error) { return error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM; }

// The address of a peer without its port, as pending heads are counted.
std::string host_of(const sockaddr_storage& address) {
  char host[INET6_ADDRSTRLEN] = "?";
  if (address.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&address)->sin_addr, host, sizeof host);
  } else if (address.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&address)->sin6_addr, host, sizeof host);
  } else {
    return "unix";
  }
  return host;
}

std::string describe(const sockaddr_storage& address) {
  char host[INET6_ADDRSTRLEN] = "?";
  uint16_t port = 0;
  if (address.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&address);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    port = ntohs(in->sin_port);
    return std::string(host) + ":" + std::to_string(port);
  }
  const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&address);
  inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
  port = ntohs(in6->sin6_port);
  return "[" + std::string(host) + "]:" + std::to_string(port);
}

}  // namespace

Listener::Listener(uv_loop_t* loop, ReadyCallback on_ready, bool read_head)
    : loop_(loop), on_ready_(std::move(on_ready)), read_head_(read_head) {}

Listener::~Listener() {
  stop();
  pending_by_address_.clear();
  pending_.clear();  // each closes its poll and timer, then its socket
}

bool Listener::listen(const ListenAddress& address, std::string* error) {
  if (!(address.unix_socket ? listen_unix(address.path, error) : listen_tcp(address, error))) return false;
  return start_polling(error);
}

bool Listener::is_tcp_socket(int fd) {
  int domain = 0;
  socklen_t size = sizeof domain;
  return getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &size) == 0 && (domain == AF_INET || domain == AF_INET6);
}

bool Listener::adopt(UniqueFd fd, std::string* error) {
  const std::string which = "passed socket (fd " + std::to_string(fd.get()) + ")";
  int value = 0;
  socklen_t size = sizeof value;
  if (getsockopt(fd.get(), SOL_SOCKET, SO_TYPE, &value, &size) != 0) {
    *error = which + ": not a socket: " + std::strerror(errno);
    return false;
  }
  if (value != SOCK_STREAM) {
    *error = which + ": not a stream socket (want ListenStream=)";
    return false;
  }
  size = sizeof value;
  if (getsockopt(fd.get(), SOL_SOCKET, SO_ACCEPTCONN, &value, &size) != 0 || value == 0) {
    *error = which + ": not listening (Accept=yes is not supported)";
    return false;
  }
  int domain = 0;
  size = sizeof domain;
  if (getsockopt(fd.get(), SOL_SOCKET, SO_DOMAIN, &domain, &size) != 0 ||
      (domain != AF_UNIX && domain != AF_INET && domain != AF_INET6)) {
    *error = which + ": neither TCP nor a unix socket";
    return false;
  }
  const int flags = fcntl(fd.get(), F_GETFL);
  if (flags < 0 || fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) != 0 || fcntl(fd.get(), F_SETFD, FD_CLOEXEC) != 0) {
    *error = which + ": " + std::strerror(errno);
    return false;
  }
  sockaddr_storage bound{};
  socklen_t length = sizeof bound;
  getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &length);
  if (domain == AF_UNIX) {
    const auto* un = reinterpret_cast<const sockaddr_un*>(&bound);
    const size_t path_bytes = length > offsetof(sockaddr_un, sun_path) ? length - offsetof(sockaddr_un, sun_path) : 0;
    std::string path(un->sun_path, path_bytes);
    if (!path.empty() && path[0] == '\0') path[0] = '@';  // abstract namespace
    while (!path.empty() && path.back() == '\0') path.pop_back();
    bound_ = "unix:" + (path.empty() ? std::string("(unnamed)") : path);
  } else {
    bound_ = describe(bound);
    tcp_ = true;
  }
  fd_ = std::move(fd);
  return start_polling(error);
}

bool Listener::listen_unix(const std::string& path, std::string* error) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof address.sun_path) {
    *error = "listen: unix socket path too long: " + path;
    return false;
  }
  path.copy(address.sun_path, path.size());
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  struct stat info {};
  if (fd && lstat(path.c_str(), &info) == 0) {
    // Replace only a stale socket: one nobody listens on any more.
    const bool live = S_ISSOCK(info.st_mode) &&
                      connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    if (!S_ISSOCK(info.st_mode) || live) {
      *error = "listen: " + path + (live ? " is in use by another process" : " exists and is not a socket");
      return false;
    }
    unlink(path.c_str());
  }
  const mode_t previous = umask(0117);  // 0660
  const bool bound = fd && bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  umask(previous);
  if (!bound || ::listen(fd.get(), SOMAXCONN) != 0) {
    *error = "cannot listen on unix:" + path + ": " + std::strerror(errno);
    return false;
  }
  fd_ = std::move(fd);
  unix_path_ = path;
  bound_ = "unix:" + path;
  return true;
}

bool Listener::listen_tcp(const ListenAddress& address, std::string* error) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(address.port);
  const int rc = getaddrinfo(address.host.c_str(), port.c_str(), &hints, &found);
  if (rc != 0) {
    *error = "listen: cannot resolve " + address.host + ": " + gai_strerror(rc);
    return false;
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owned(found, freeaddrinfo);
  UniqueFd fd(socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  const int one = 1;
  if (!fd || setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      bind(fd.get(), found->ai_addr, found->ai_addrlen) != 0 || ::listen(fd.get(), SOMAXCONN) != 0) {
    *error = "cannot listen on " + address.host + ":" + port + ": " + std::strerror(errno);
    return false;
  }
  fd_ = std::move(fd);
  sockaddr_storage bound{};
  socklen_t length = sizeof bound;
  getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&bound), &length);
  bound_ = describe(bound);
  tcp_ = true;
  return true;
}

bool Listener::start_polling(std::string* error) {
  int rc = uv_poll_init(loop_, poll_.get(), fd_.get());
  if (rc == 0) {
    poll_.mark_initialised();
    poll_.get()->data = this;
    rc = uv_poll_start(poll_.get(), UV_READABLE, &Listener::on_listen_poll);
  }
  if (rc != 0) {
    *error = "cannot watch " + bound_ + ": " + uv_strerror(rc);
    log::error("listener: " + *error);
    stop();
    return false;
  }
  return true;
}

void Listener::on_listen_poll(uv_poll_t* handle, int, int) {
  if (auto* self = static_cast<Listener*>(handle->data)) self->on_acceptable();
}

void Listener::stop() {
  poll_.close();  // before the socket it watches
  resume_timer_.close();
  fd_.reset();
  if (!unix_path_.empty()) unlink(unix_path_.c_str());
  unix_path_.clear();
}

void Listener::on_acceptable() {
  for (int i = 0; i < kAcceptsPerWakeup; ++i) {
    sockaddr_storage peer{};
    socklen_t peer_length = sizeof peer;
    UniqueFd fd(accept4(fd_.get(), reinterpret_cast<sockaddr*>(&peer), &peer_length, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) {
      if (is_out_of_fds(errno)) {
        pause_accepting(errno);
      } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED) {
        log::warn(std::string("accept: ") + std::strerror(errno));
      }
      return;
    }
    if (out_of_fds_) {
      out_of_fds_ = false;
      log::info("accept: file descriptors are available again");
    }
    if (tcp_) {
      // Keystrokes and their echoes are small writes: do not hold them back for delayed ACKs.
      const int one = 1;
      setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    if (!read_head_) {
      on_ready_(fd.release(), {});
      continue;
    }
    std::string address = tcp_ ? host_of(peer) : "unix";
    make_room(address);
    start_reading(std::move(fd), std::move(address));
  }
}

void Listener::pause_accepting(int error) {
  if (!out_of_fds_) {
    out_of_fds_ = true;
    log::warn(std::string("accept: ") + std::strerror(error) + "; trying again every " + std::to_string(kAcceptPauseMs) +
              " ms, new connections wait meanwhile");
  }
  if (!resume_timer_.initialised() && !resume_timer_.adopt_init(uv_timer_init(loop_, resume_timer_.get()), this)) {
    return;  // no timer: keep watching (the old behaviour) rather than never accept again
  }
  uv_poll_stop(poll_.get());
  uv_timer_start(
      resume_timer_.get(),
      [](uv_timer_t* handle) {
        if (auto* self = static_cast<Listener*>(handle->data)) self->resume_accepting();
      },
      kAcceptPauseMs, 0);
}

void Listener::resume_accepting() {
  if (!fd_ || poll_.get() == nullptr) return;
  const int rc = uv_poll_start(poll_.get(), UV_READABLE, &Listener::on_listen_poll);
  if (rc != 0) log::error(std::string("listener: cannot watch ") + bound_ + " again: " + uv_strerror(rc));
}

void Listener::make_room(const std::string& address) {
  static const std::string kShed =
      refusal_response(429, "too many unfinished requests from your address; the oldest was closed");
  auto mine = pending_by_address_.find(address);
  if (tcp_ && mine != pending_by_address_.end() && mine->second.size() >= kMaxPendingPerAddress) {
    drop(mine->second.front(), kShed);
  }
  if (pending_.size() < kMaxPending) return;
  auto busiest = pending_by_address_.end();
  for (auto it = pending_by_address_.begin(); it != pending_by_address_.end(); ++it) {
    if (busiest == pending_by_address_.end() || it->second.size() > busiest->second.size()) busiest = it;
  }
  if (busiest != pending_by_address_.end()) drop(busiest->second.front(), kShed);
}

void Listener::start_reading(UniqueFd fd, std::string address) {
  auto pending = std::make_unique<Pending>();
  Pending* raw = pending.get();
  raw->owner = this;
  raw->address = std::move(address);
  raw->fd = std::move(fd);
  int rc = uv_poll_init(loop_, raw->poll.get(), raw->fd.get());
  if (rc != 0) {
    log::error(std::string("listener: uv_poll_init on an accepted socket: ") + uv_strerror(rc));
    return;  // the connection is dropped: `pending` closes its socket
  }
  raw->poll.mark_initialised();
  rc = uv_timer_init(loop_, raw->timer.get());
  if (rc != 0) {
    log::error(std::string("listener: uv_timer_init for an accepted socket: ") + uv_strerror(rc));
    return;
  }
  raw->timer.mark_initialised();
  raw->poll.get()->data = raw;
  raw->timer.get()->data = raw;
  pending_by_address_[raw->address].push_back(raw);
  pending_.emplace(raw, std::move(pending));
  // The handles' data point at their Pending, which knows its listener.
  uv_poll_start(raw->poll.get(), UV_READABLE, [](uv_poll_t* handle, int, int) {
    auto* pending = static_cast<Pending*>(handle->data);
    pending->owner->on_pending_readable(pending);
  });
  uv_timer_start(
      raw->timer.get(),
      [](uv_timer_t* handle) {
        auto* pending = static_cast<Pending*>(handle->data);
        pending->owner->drop(pending, {});
      },
      kHeadTimeoutMs, 0);
}

void Listener::on_pending_readable(Pending* pending) {
  char buffer[8192];
  for (;;) {
    const ssize_t n = read(pending->fd.get(), buffer, sizeof buffer);
    if (n > 0) {
      pending->bytes.append(buffer, static_cast<size_t>(n));
      if (pending->bytes.size() > kMaxHead + sizeof buffer) break;
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0 && errno == EINTR) continue;
    return drop(pending, {});  // closed or failed before a whole head arrived
  }
  static const std::string kTooLarge = refusal_response(431, "the request head is too large");
  const std::optional<size_t> head = request_head_length(pending->bytes);
  if (!head) {
    if (pending->bytes.size() > kMaxHead) drop(pending, kTooLarge);
    return;
  }
  if (*head > kMaxHead) return drop(pending, kTooLarge);
  PreparedHead prepared = prepare_head(std::string_view(pending->bytes).substr(0, *head));
  if (prepared.status != 0) return drop(pending, refusal_response(prepared.status, prepared.reason));
  std::string bytes = std::move(prepared.head);
  bytes.append(pending->bytes, *head, std::string::npos);
  UniqueFd fd = std::move(pending->fd);
  forget(pending);  // closes the poll (synchronously unregistered) and the timer
  on_ready_(fd.release(), std::move(bytes));
}

void Listener::drop(Pending* pending, std::string_view response) {
  if (!response.empty()) {
    const ssize_t ignored = write(pending->fd.get(), response.data(), response.size());
    (void)ignored;
  }
  forget(pending);  // closes the poll and the timer, then the socket
}

void Listener::forget(Pending* pending) {
  auto by_address = pending_by_address_.find(pending->address);
  if (by_address != pending_by_address_.end()) {
    std::deque<Pending*>& queue = by_address->second;
    queue.erase(std::find(queue.begin(), queue.end(), pending));
    if (queue.empty()) pending_by_address_.erase(by_address);
  }
  pending_.erase(pending);
}

}  // namespace ptyhub::server
