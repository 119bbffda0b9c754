// WsServer: the server edge — the libwebsockets context on the daemon's libuv loop (a foreign loop),
// one vhost served by the daemon's own Listeners, the HTTP routes, the `ptyhub.v1` WebSocket protocol and its
// Connections. The only code in the daemon that includes libwebsockets.h or touches a socket.
//
// Owns the lws context and every Connection. Shutdown is two-phase because lws must not be destroyed
// from inside its own callbacks and, with a foreign loop, frees the context only on a second destroy
// after the loop drained: destroy_context(), run the loop, then finish(). Loop thread only.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "auth/jwt.hpp"
#include "core/unique_fd.hpp"
#include "core/turn_batches.hpp"
#include "core/uv_handle.hpp"
#include "src/hub/git_operations.hpp"
#include "src/hub/hub.hpp"
#include "src/hub/metrics.hpp"
#include "src/server/forwarded.hpp"
#include "src/server/listener.hpp"
#include "src/session/client_session.hpp"

struct lws;
struct lws_context;
struct lws_vhost;

namespace ptyhub::server {

class Connection;
class Listener;
class PeerLimits;

// The edge's settings (docs/configuration.md), in the units it uses. The listeners, TLS, the ping period and
// the per-address limits are set up by start(); max_message and client_queue_limit go to each new connection,
// `session` to each new session. apply() swaps them in: max_connections and allowed_origin apply to upgrades
// from then on (open connections stay); the rest keeps what start() and open connections got.
struct EdgeSettings {
  std::vector<ListenAddress> listen;
  std::string tls_cert, tls_key, tls_client_ca;  // TLS on TCP listeners when tls_cert is set
  uint64_t ping_interval_ms = 30000;
  uint64_t max_message = 1024 * 1024;
  uint64_t client_queue_limit = 4 * 1024 * 1024;
  uint64_t max_connections = 10000;
  uint64_t max_connections_per_ip = 256;
  uint64_t auth_failures_per_ip = 20;
  std::vector<std::string> allowed_origin;  // besides same-origin
  std::string frame_ancestors = "'self'";  // CSP frame-ancestors of the web page
  std::string base_path;                   // every route under it: "" or "/term"
  TrustedProxies trusted_proxies;          // whose forwarding headers name the client
  bool limit_loopback = false;             // loopback and unix-socket clients count in PeerLimits too
  session::SessionLimits session;
};

class WsServer {
 public:
  WsServer(uv_loop_t* loop, EdgeSettings settings, hub::Hub& hub, hub::GitOperations& git,
           const auth::JwtVerifier& verifier, hub::Metrics& metrics);
  ~WsServer();
  WsServer(const WsServer&) = delete;
  WsServer& operator=(const WsServer&) = delete;

  // New settings (SIGHUP); see EdgeSettings for what they apply to.
  void apply(EdgeSettings settings) { settings_ = std::move(settings); }
  // SIGHUP: the TLS listeners use the certificate and key now in the files they were started with, for
  // new connections (live ones keep theirs). The pair is checked first; a bad one changes nothing and
  // is logged. Does nothing without TLS.
  void reload_tls();

  // Sockets passed by the service manager (socket activation). When any are given before start(), the
  // daemon serves on them and only them: the `listen` setting is not used.
  void use_activated_sockets(std::vector<UniqueFd> sockets) { activated_ = std::move(sockets); }
  // The listening sockets (a live upgrade hands them to the next image).
  std::vector<int> listener_fds() const;
  // Creates the context and binds every listen address (or adopts the activated sockets); logs
  // "listening on HOST:PORT" for each.
  bool start(std::string* error);
  // /readyz answers 503 also while this says no (cluster mode: Redis unreachable).
  void set_ready_check(std::function<bool()> check) { ready_check_ = std::move(check); }
  // New upgrades are refused (503) and /readyz answers 503.
  void stop_accepting();
  // Flushes each connection's queue, then closes it with `code`: kCloseBatch connections per loop turn,
  // so a thousand closes never hold the loop in one poll.
  void close_all(int code, std::string_view reason);
  static constexpr size_t kCloseBatch = 32;
  size_t connection_count() const { return connections_.size(); }
  // Runs `callback` once no connection is left (at once if none is).
  void when_no_connections(std::function<void()> callback);
  // First lws_context_destroy; must not be called from an lws callback.
  void destroy_context();
  // Second lws_context_destroy after the loop drained (frees the context).
  void finish();

  // Called by the lws callbacks.
  int on_http(struct lws* wsi, const char* path);
  int on_confirm_upgrade(struct lws* wsi);
  int on_established(struct lws* wsi, void* user);
  void on_closed(struct lws* wsi, void* user);

 private:
  bool create_vhosts(std::string* error);
  struct lws_vhost* create_vhost(const char* name, bool tls, std::string* error);
  void check_no_connections();
  bool close_batch();  // one batch; whether connections are left
  void log_origin_refusal(const std::string& origin);
  // The client behind this connection (src/server/forwarded.hpp).
  ClientAddress client_of(struct lws* wsi) const;

  uv_loop_t* loop_;
  EdgeSettings settings_;
  hub::Hub& hub_;
  hub::GitOperations& git_;
  const auth::JwtVerifier& verifier_;
  hub::Metrics& metrics_;
  struct lws_context* context_ = nullptr;
  std::string tls_cert_loaded_, tls_key_loaded_;  // the files the TLS vhost was created with
  struct lws_vhost* vhost_ = nullptr;      // plain HTTP/WebSocket
  struct lws_vhost* tls_vhost_ = nullptr;  // TLS, for TCP listeners when tls_cert is set
  std::vector<UniqueFd> activated_;  // until start() hands them to Listeners
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::set<Connection*> connections_;
  std::unique_ptr<PeerLimits> peer_limits_;
  bool accepting_ = false;
  std::function<bool()> ready_check_;
  std::function<void()> on_no_connections_;
  // close_all(): the connections still to close, and with what.
  std::vector<Connection*> close_queue_;
  int close_code_ = 0;
  std::string close_reason_;
  TurnBatches closes_{loop_, [this] { return close_batch(); }};
  uint64_t origin_log_ms_ = 0;             // when a refused Origin was last logged
  uint64_t origin_refusals_unlogged_ = 0;  // refusals since then
};

}  // namespace ptyhub::server
