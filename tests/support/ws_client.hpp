// WsClient: a blocking WebSocket client for integration tests, built on libwebsockets' client API.
//
// Ownership: each WsClient owns its own lws_context (lws's default poll loop, no extensions, so no
// permessage-deflate) and at most one connection. Nothing runs in the background: every method that
// waits services the context on the calling thread until its condition holds or its deadline passes.
// A WsClient must be used from one thread only. Sends are queued and written one message per
// WRITEABLE callback; lws keeps the unsent tail of a large frame itself and asks again once it is out.
// The destructor destroys the context, which drops the connection if it is still open.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

struct lws;
struct lws_context;

namespace ptyhub::test {

using namespace std::chrono_literals;

struct WsOptions {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string path = "/ws";
  // Sent as Sec-WebSocket-Protocol; empty sends no header at all.
  std::string subprotocols = "ptyhub.v1";
  // Full value of the Authorization header, e.g. "Bearer <jwt>".
  std::optional<std::string> authorization;
  std::optional<std::string> origin;
  // wss://: TLS that accepts a self-signed server certificate and skips the host name check.
  bool tls = false;
  // When non-empty, connect to this unix socket instead of host:port (Host: localhost).
  std::string unix_path;
  // When non-empty, the local address to connect from (e.g. 127.0.0.2: another client address).
  std::string source_address;
  // More request headers, as name (with its colon, lower case) and value: "x-forwarded-for:", "1.2.3.4".
  std::vector<std::pair<std::string, std::string>> headers;
};

// One complete WebSocket message as received (fragments already joined).
struct WsMessage {
  bool binary = false;
  std::string payload;
};

// Close code reported when the connection ended without a close frame from the peer.
inline constexpr int kCloseAbnormal = 1006;
// Close code reported when the peer's close frame carried no status.
inline constexpr int kCloseNoStatus = 1005;

class WsClient {
 public:
  WsClient();
  ~WsClient();
  WsClient(const WsClient&) = delete;
  WsClient& operator=(const WsClient&) = delete;

  // Opens the connection and waits for the upgrade. True when the WebSocket is established.
  // May be called once per WsClient.
  bool connect(const WsOptions& options, std::chrono::milliseconds timeout = 5s);

  bool established() const { return established_; }
  // True once the connection is gone (closed after being established, or failed to connect).
  bool closed() const { return closed_ || connect_failed_; }
  // The Sec-WebSocket-Protocol the server answered with ("" when none).
  const std::string& accepted_subprotocol() const { return accepted_subprotocol_; }
  // HTTP status of a refused upgrade (0 when unknown or when the upgrade succeeded).
  int http_status_on_failure() const { return http_status_on_failure_; }
  // lws's description of why the connection attempt failed.
  const std::string& connect_error() const { return connect_error_; }

  // Queue a message; it is written while the client is serviced (any wait below, or flush()).
  void send_text(std::string text);
  void send_binary(std::string bytes);
  void send_json(const nlohmann::json& message);
  // One text message sent as several frames (the first text, the rest continuations).
  void send_text_fragments(std::vector<std::string> fragments);
  // Services until every queued message is handed to the socket. False on deadline or close.
  bool flush(std::chrono::milliseconds timeout = 5s);

  // Next message of any kind, in arrival order.
  std::optional<WsMessage> receive(std::chrono::milliseconds timeout = 5s);
  // Next message, parsed as JSON. A binary message or text that is not JSON comes back as
  // {"type": "<not-json>", "raw": ...} so the test sees the mismatch.
  std::optional<nlohmann::json> receive_json(std::chrono::milliseconds timeout = 5s);
  // Receives until a message satisfies `predicate` and returns it; the messages before it are consumed
  // and appended to `skipped` when given.
  std::optional<nlohmann::json> receive_until(const std::function<bool(const nlohmann::json&)>& predicate,
                                              std::chrono::milliseconds timeout = 5s,
                                              std::vector<nlohmann::json>* skipped = nullptr);
  // Messages received but not yet taken.
  std::size_t pending() const { return inbox_.size(); }

  // Starts the closing handshake with `code` and `reason`.
  void close(int code = 1000, std::string reason = {});
  // Services until the connection is gone. True when it closed before the deadline.
  bool wait_closed(std::chrono::milliseconds timeout = 5s);
  // The peer's close code (1005 without status, 1006 without a close frame); 0 while open.
  int close_code() const { return close_code_; }
  const std::string& close_reason() const { return close_reason_; }

  // One turn of the lws loop, returning after at most `slice`.
  void service(std::chrono::milliseconds slice = 20ms);

  // Entry point from lws; dispatches to the on_* handlers below.
  int on_callback(struct lws* wsi, int reason, void* in, std::size_t len);

 private:
  struct Outbound {
    std::string buffer;  // LWS_PRE bytes of headroom, then the payload
    int write_protocol = 0;
  };

  bool service_until(const std::function<bool()>& done, std::chrono::milliseconds timeout);
  void enqueue(std::string payload, int write_protocol);
  int on_append_headers(void* in, std::size_t len);
  void on_filter_pre_establish();
  void on_connection_error(void* in, std::size_t len);
  void on_receive(void* in, std::size_t len);
  void on_peer_close(void* in, std::size_t len);
  int on_writeable();
  void on_closed();

  struct lws_context* context_ = nullptr;
  struct lws* wsi_ = nullptr;
  WsOptions options_;
  std::string host_header_;
  bool established_ = false;
  bool connect_failed_ = false;
  bool closed_ = false;
  std::string accepted_subprotocol_;
  int http_status_on_failure_ = 0;
  std::string connect_error_;

  std::deque<Outbound> outbound_;
  std::optional<std::pair<int, std::string>> close_request_;

  std::string partial_;  // the message being reassembled
  bool partial_binary_ = false;
  bool in_message_ = false;
  std::deque<WsMessage> inbox_;

  int close_code_ = 0;
  std::string close_reason_;
  bool peer_close_seen_ = false;

  // Timer that bounds each lws_service() call; opaque storage for lws_sorted_usec_list_t.
  struct Tick;
  std::unique_ptr<Tick> tick_;
};

}  // namespace ptyhub::test
