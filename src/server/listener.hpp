// Listener: a listening TCP socket on the loop. Each accepted connection's request head is read by the
// daemon (bounded in size and time), rewritten by move_bearer_subprotocol, and handed over, with any
// bytes that followed it, to `on_ready` — which gives the socket to libwebsockets.
//
// Owns the listening fd, its uv_poll, and every connection still being read (fd, uv_poll, timer).
// The fd passed to on_ready belongs to the callee. A uv handle that cannot be initialised is never used:
// listen() / adopt() fail, a connection being read is dropped. Loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>

#include "core/unique_fd.hpp"
#include "core/uv_handle.hpp"

namespace ptyhub::server {

// One address to listen on, as the `listen` setting names it.
struct ListenAddress {
  bool unix_socket = false;
  std::string host;   // for TCP
  uint16_t port = 0;  // 0 = any free port
  std::string path;   // for unix:/path
};

class Listener {
 public:
  using ReadyCallback = std::function<void(int fd, std::string first_bytes)>;

  static constexpr size_t kMaxHead = 24 * 1024;  // read at most this much before answering 431
  static constexpr uint64_t kHeadTimeoutMs = 10000;
  // Heads still arriving (docs/protocol.md §3 Limits): at most kMaxPendingPerAddress from one TCP
  // address, then its oldest is shed; at most kMaxPending in all, then the oldest of the address with the
  // most is shed. A shed connection gets 429. A flood from one address never keeps another out.
  static constexpr size_t kMaxPending = 1024;
  static constexpr size_t kMaxPendingPerAddress = 64;
  // When accept() fails for want of file descriptors (EMFILE, ENFILE, ENOBUFS, ENOMEM) the listening
  // socket stays readable, so watching it again at once spins the loop: scripts/soak.sh measured 70% CPU
  // and millions of log lines a second under a lowered RLIMIT_NOFILE. The listener stops watching it for
  // this long, then tries again; new connections wait in the kernel's backlog meanwhile.
  static constexpr uint64_t kAcceptPauseMs = 250;

  // With `read_head` false (TLS listeners: the bytes are encrypted) each accepted socket is handed on at
  // once, with no first bytes.
  Listener(uv_loop_t* loop, ReadyCallback on_ready, bool read_head = true);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // socket, bind, listen (TCP, or a unix socket of mode 0660 whose stale file is replaced; a live one is
  // an error). The bound address is then available from address().
  bool listen(const ListenAddress& address, std::string* error);
  // Serves on a socket that is already listening (socket activation): a TCP (IPv4/IPv6) or unix stream
  // socket, told apart with SO_DOMAIN. The listener owns it from here on; a unix socket's file is left in
  // place on stop() (it belongs to whoever created it). False with `error` for anything else.
  bool adopt(UniqueFd fd, std::string* error);
  bool tcp() const { return tcp_; }
  // True for an IPv4/IPv6 socket (SO_DOMAIN), to pick the vhost before adopting it.
  static bool is_tcp_socket(int fd);
  std::string address() const { return bound_; }
  int fd() const { return fd_.get(); }  // -1 once stopped
  // Closes the listening socket: no new connection is accepted. Pending heads are still read.
  void stop();

 private:
  struct Pending {
    Listener* owner = nullptr;
    std::string address;  // the peer's address without its port; "unix" on a unix socket
    UniqueFd fd;          // declared before the handles, so it closes after the poll watching it
    std::string bytes;
    UvHandle<uv_poll_t> poll;
    UvHandle<uv_timer_t> timer;
  };

  // The listening socket's uv_poll callback.
  static void on_listen_poll(uv_poll_t* handle, int status, int events);
  void on_acceptable();
  // accept() failed with `error` for want of fds: log once, stop watching, try again after kAcceptPauseMs.
  void pause_accepting(int error);
  // Watches the listening socket again (the pause is over); nothing once stopped.
  void resume_accepting();
  void start_reading(UniqueFd fd, std::string address);
  // Makes room for one more pending head from `address`, shedding as the limits above say.
  void make_room(const std::string& address);
  void on_pending_readable(Pending* pending);
  void drop(Pending* pending, std::string_view response);
  void forget(Pending* pending);  // removes it from both maps, closing it

  uv_loop_t* loop_;
  ReadyCallback on_ready_;
  bool read_head_;
  bool listen_tcp(const ListenAddress& address, std::string* error);
  bool listen_unix(const std::string& path, std::string* error);
  // Watches the listening socket; false with `error` when its uv_poll cannot be set up (the socket is
  // then closed).
  bool start_polling(std::string* error);

  UniqueFd fd_;
  bool tcp_ = false;       // accepted sockets get TCP_NODELAY
  std::string unix_path_;  // removed again on stop()
  std::string bound_;
  UvHandle<uv_poll_t> poll_;
  UvHandle<uv_timer_t> resume_timer_;  // the pause after accept() ran out of fds
  bool out_of_fds_ = false;            // accept() failed for want of fds and has not succeeded since
  std::map<Pending*, std::unique_ptr<Pending>> pending_;
  std::unordered_map<std::string, std::deque<Pending*>> pending_by_address_;  // oldest first
};

}  // namespace ptyhub::server
