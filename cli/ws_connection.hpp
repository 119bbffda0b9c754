// WsConnection: the client's one WebSocket to the daemon, a libwebsockets client on the caller's libuv loop.
//
// Ownership: a WsConnection owns one lws_context (created with LWS_SERVER_OPTION_LIBUV on the foreign loop,
// no extensions: permessage-deflate stalls on Debian's lws 4.1.6) and at most one connection (wsi) of it at
// a time; connect() may be called again after the previous connection ended (a resumed session). Everything
// runs on the loop thread. Messages are queued and written one per WRITEABLE callback.
//
// Lifetime: lws_context_destroy() may not run inside an lws callback, and with a foreign loop the context
// is freed only by a second destroy after the loop drained its handles (see LWS-NOTES). So the owner calls
// shutdown() after uv_run() returned, runs the loop again until it is empty, and then destroys this object,
// which makes the second call.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <string_view>

#include <uv.h>

#include "cli/endpoint.hpp"

struct lws;
struct lws_context;

namespace ptyhub::cli {

// What a connection reports; called on the loop thread from inside lws callbacks.
class WsEvents {
 public:
  virtual ~WsEvents() = default;
  // The upgrade succeeded.
  virtual void on_open() = 0;
  // One whole text message.
  virtual void on_message(std::string_view text) = 0;
  // The connection ended. `was_open`: it had been established (then `code` is the peer's close code, 1006
  // when there was no close frame); else the attempt failed and `reason` says why.
  virtual void on_closed(bool was_open, int code, std::string_view reason) = 0;
};

struct WsSettings {
  Endpoint endpoint;
  std::string token;    // sent as Authorization: Bearer <token>
  std::string ca_file;  // wss://: the CA to verify the daemon's certificate with (else the system's)
};

class WsConnection {
 public:
  // nullptr (with `*why`) when the lws context cannot be made.
  static std::unique_ptr<WsConnection> create(uv_loop_t* loop, WsSettings settings, WsEvents* events, std::string* why);
  ~WsConnection();
  WsConnection(const WsConnection&) = delete;
  WsConnection& operator=(const WsConnection&) = delete;

  // Starts a connection attempt; its outcome comes as on_open() or on_closed(false, …). False when lws
  // refused to start it (on_closed is not called then) with `*why` set.
  bool connect(std::string* why);
  // True while a connection is being made or is open.
  bool active() const { return wsi_ != nullptr; }
  // True while the connection is established.
  bool open() const { return wsi_ != nullptr && open_; }
  // Queues one text message (dropped when no connection is open).
  void send(std::string text);
  // Bytes queued and not yet handed to the socket.
  size_t queued_bytes() const { return queued_bytes_; }
  // Closes the open connection with a close frame (1000) once the queue is written.
  void close();
  // Starts tearing the context down (never from inside an lws callback). No event is reported after it.
  void shutdown();

  // Entry point from lws; dispatches to the handlers below.
  int on_callback(struct lws* wsi, int reason, void* in, size_t len);

 private:
  WsConnection(WsSettings settings, WsEvents* events) : settings_(std::move(settings)), events_(events) {}
  // Adds Authorization: Bearer <token> to the upgrade request.
  int on_append_headers(void* in, size_t len);
  // Joins fragments into whole text messages.
  void on_receive(const void* in, size_t len);
  // Keeps the peer's close code and reason.
  void on_peer_close(const void* in, size_t len);
  // Writes one queued message, or the close frame.
  int on_writeable();
  // The attempt failed or the connection ended: reported once.
  void on_ended(bool connect_error, const void* in, size_t len);

  WsSettings settings_;
  WsEvents* events_;
  struct lws_context* context_ = nullptr;
  struct lws* wsi_ = nullptr;
  std::string host_header_;
  std::string address_;
  bool open_ = false;
  bool closing_ = false;
  bool shut_down_ = false;
  bool connecting_ = false;    // inside lws_client_connect_via_info()
  std::string sync_failure_;  // why an attempt failed inside it
  std::deque<std::string> outbound_;  // each with LWS_PRE bytes of headroom before the payload
  size_t queued_bytes_ = 0;
  std::string partial_;
  int peer_close_code_ = 0;
  std::string peer_close_reason_;
};

}  // namespace ptyhub::cli
