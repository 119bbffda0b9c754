// WsServer: libwebsockets context, vhosts, protocol callbacks.
#include <uv.h>  // before libwebsockets.h (its libuv prototypes need UV_ERRNO_MAP)

#include "src/server/ws_server.hpp"

#include <libwebsockets.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "core/log.hpp"
#include "src/protocol/envelope.hpp"
#include "src/server/connection.hpp"
#include "src/server/http_routes.hpp"
#include "src/server/listener.hpp"
#include "src/server/origin_policy.hpp"
#include "src/server/peer_limits.hpp"
#include "src/server/request_head.hpp"
#include "src/server/tls_check.hpp"

namespace ptyhub::server {
namespace {

constexpr const char* kSubprotocol = "ptyhub.v1";
constexpr std::string_view kWebSocketPath = "/ws";
// lws 4.1.6 parses heads up to about half of max_http_header_data (12,192 bytes of a single header with
// 25 KiB, measured); the Listener hands on heads of at most kMaxPreparedHead.
constexpr size_t kMaxHeader = 2 * kMaxPreparedHead + 1024;
// Beyond 4 x client_queue_limit, room for what may pass the limit legitimately: one output frame per
// subscribed terminal (at most 64 KiB raw, up to 6 x that escaped), a large list or snapshot.
constexpr uint64_t kQueueSlackBytes = 4 * 1024 * 1024;

WsServer* server_of(struct lws* wsi) {
  return static_cast<WsServer*>(lws_context_user(lws_get_context(wsi)));
}

std::string header(struct lws* wsi, enum lws_token_indexes token) {
  const int length = lws_hdr_total_length(wsi, token);
  if (length <= 0) return {};
  std::string value(static_cast<size_t>(length) + 1, '\0');
  const int copied = lws_hdr_copy(wsi, value.data(), length + 1, token);
  value.resize(copied > 0 ? static_cast<size_t>(copied) : 0);
  return value;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// The entries of a comma-separated header such as Sec-WebSocket-Protocol.
std::vector<std::string_view> comma_list(std::string_view text) {
  std::vector<std::string_view> items;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    items.push_back(trim(text.substr(0, comma)));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return items;
}

// The token of the upgrade request: `Authorization: Bearer` first, else a `bearer.<jwt>` subprotocol.
std::optional<std::string> upgrade_token(struct lws* wsi) {
  const std::string authorization = header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
  if (!authorization.empty()) {
    std::string_view value = trim(authorization);
    if (value.size() >= 7 && strncasecmp(value.data(), "Bearer ", 7) == 0) return std::string(trim(value.substr(7)));
    return std::string();  // present but not a bearer token: fails verification
  }
  const std::string protocols = header(wsi, WSI_TOKEN_PROTOCOL);
  for (std::string_view item : comma_list(protocols)) {
    if (item.starts_with("bearer.")) return std::string(item.substr(7));
  }
  return std::nullopt;
}

// A header lws knows no token for; `name` is lower case with its colon ("x-forwarded-proto:").
std::string custom_header(struct lws* wsi, std::string_view name) {
  const int length = lws_hdr_custom_length(wsi, name.data(), static_cast<int>(name.size()));
  if (length <= 0) return {};
  std::string value(static_cast<size_t>(length) + 1, '\0');
  const int copied = lws_hdr_custom_copy(wsi, value.data(), length + 1, name.data(), static_cast<int>(name.size()));
  value.resize(copied > 0 ? static_cast<size_t>(copied) : 0);
  return value;
}

int http_callback(struct lws* wsi, enum lws_callback_reasons reason, void* user, void* in, size_t len) {
  switch (reason) {
    case LWS_CALLBACK_HTTP:
      return server_of(wsi)->on_http(wsi, static_cast<const char*>(in));
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
      return server_of(wsi)->on_confirm_upgrade(wsi);
    case LWS_CALLBACK_OPENSSL_PERFORM_CLIENT_CERT_VERIFICATION:
      // `len` is OpenSSL's own verdict on the chain (preverify_ok). lws accepts whatever this returns 0
      // for, so a certificate that does not chain to tls_client_ca must be refused here.
      return len == 0 ? 1 : 0;
    default:
      return lws_callback_http_dummy(wsi, reason, user, in, len);
  }
}

int ws_callback(struct lws* wsi, enum lws_callback_reasons reason, void* user, void* in, size_t len) {
  auto** slot = static_cast<Connection**>(user);
  switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
      return server_of(wsi)->on_established(wsi, user);
    case LWS_CALLBACK_RECEIVE:
      if (slot != nullptr && *slot != nullptr) (*slot)->on_receive(static_cast<const char*>(in), len);
      return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
      return (slot != nullptr && *slot != nullptr) ? (*slot)->on_writeable() : 0;
    case LWS_CALLBACK_CLOSED:
      server_of(wsi)->on_closed(wsi, user);
      return 0;
    default:
      return 0;
  }
}

// The WebSocket protocol's buffers. rx 1 KiB: lws allocates it per connection and an idle connection keeps
// it; messages larger than that arrive in several RECEIVE callbacks and are joined in Connection (up to
// max_message). tx 1 MiB: lws cuts each send() to tx_packet_size (rx_buffer_size when 0), and a
// shell.output frame is up to 64 KiB of output, several times that once escaped.
constexpr size_t kRxBufferBytes = 1024;
constexpr size_t kTxPacketBytes = 1024 * 1024;

const struct lws_protocols kProtocols[] = {
    {"http", http_callback, 0, 0, 0, nullptr, 0},
    {kSubprotocol, ws_callback, sizeof(Connection*), kRxBufferBytes, 0, nullptr, kTxPacketBytes},
    {nullptr, nullptr, 0, 0, 0, nullptr, 0},
};

void log_from_lws(int level, const char* line) {
  std::string_view text(line);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  const std::string message = "lws: " + std::string(text);
  // lws 4.1.6 reports every adopted socket with pending bytes at error level; it is routine here.
  if (text.find("adopt_socket_readbuf") != std::string_view::npos) return log::debug(message);
  if (level & LLL_ERR) log::error(message);
  else if (level & LLL_WARN) log::warn(message);
  else log::debug(message);
}

// Refuses a WebSocket upgrade with an HTTP/1.1 answer of our own: lws_return_http_status answers an
// upgrade request with an "HTTP/1.0" status line, which strict clients (Python's websockets) reject as
// invalid, so they never see why. The body says why, as JSON; the connection closes after it.
int refuse_upgrade(struct lws* wsi, int status, const char* phrase, const char* code, const std::string& message) {
  const std::string body = protocol::json{{"error", code}, {"message", message}}.dump();
  const std::string head = "HTTP/1.1 " + std::to_string(status) + " " + phrase +
                           "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                           "\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n";
  std::string buffer(LWS_PRE, '\0');
  buffer += head;
  buffer += body;
  lws_write(wsi, reinterpret_cast<unsigned char*>(buffer.data()) + LWS_PRE, head.size() + body.size(),
            LWS_WRITE_HTTP_HEADERS);
  return 1;
}

}  // namespace

WsServer::WsServer(uv_loop_t* loop, EdgeSettings settings, hub::Hub& hub, hub::GitOperations& git,
                   const auth::JwtVerifier& verifier, hub::Metrics& metrics)
    : loop_(loop), settings_(std::move(settings)), hub_(hub), git_(git), verifier_(verifier), metrics_(metrics),
      peer_limits_(std::make_unique<PeerLimits>(settings_.max_connections_per_ip, settings_.auth_failures_per_ip)) {}

WsServer::~WsServer() {
  // Connections are deleted in LWS_CALLBACK_CLOSED during context destruction; any left are freed here.
  for (Connection* connection : connections_) delete connection;
  connections_.clear();
}

bool WsServer::start(std::string* error) {
  int levels = LLL_ERR | LLL_WARN;
  if (log::level() == log::Level::debug) levels |= LLL_NOTICE;
  lws_set_log_level(levels, log_from_lws);

  lws_context_creation_info info;
  std::memset(&info, 0, sizeof info);
  void* foreign_loops[] = {loop_};
  info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
  if (!settings_.tls_cert.empty()) info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
  info.foreign_loops = foreign_loops;
  info.pcontext = &context_;
  info.user = this;
  info.port = CONTEXT_PORT_NO_LISTEN;
  info.max_http_header_data = kMaxHeader;
  info.max_http_header_pool = 16;
  context_ = lws_create_context(&info);
  if (context_ == nullptr) {
    *error = "cannot create the WebSocket context (is the package libwebsockets-evlib-uv installed?)";
    return false;
  }
  if (!create_vhosts(error)) return false;
  accepting_ = true;
  return true;
}

// One vhost without a listen socket of its own (plus a TLS twin when tls_cert is set): the Listeners
// accept and adopt sockets into it.
struct lws_vhost* WsServer::create_vhost(const char* name, bool tls, std::string* error) {
  static lws_retry_bo_t retry{};
  const auto seconds = [](uint64_t ms, uint64_t at_least) {
    return static_cast<uint16_t>(std::clamp<uint64_t>(ms / 1000, at_least, UINT16_MAX));
  };
  retry.secs_since_valid_ping = seconds(settings_.ping_interval_ms, 1);
  retry.secs_since_valid_hangup = seconds(2 * settings_.ping_interval_ms, 2);
  lws_context_creation_info info;
  std::memset(&info, 0, sizeof info);
  info.vhost_name = name;
  info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
  info.protocols = kProtocols;
  info.retry_and_idle_policy = &retry;
  info.alpn = "http/1.1";
  if (tls) {
    info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;  // lws reads it per vhost to enable TLS there
    tls_cert_loaded_ = settings_.tls_cert;
    tls_key_loaded_ = settings_.tls_key;
    info.ssl_cert_filepath = tls_cert_loaded_.c_str();
    info.ssl_private_key_filepath = tls_key_loaded_.c_str();
    if (!settings_.tls_client_ca.empty()) {
      info.ssl_ca_filepath = settings_.tls_client_ca.c_str();
      info.options |= LWS_SERVER_OPTION_REQUIRE_VALID_OPENSSL_CLIENT_CERT;
    }
  }
  struct lws_vhost* vhost = lws_create_vhost(context_, &info);
  if (vhost == nullptr) {
    *error = tls ? "cannot set up TLS with tls_cert " + settings_.tls_cert + " and tls_key " + settings_.tls_key
                 : "cannot create the WebSocket vhost";
  }
  return vhost;
}

bool WsServer::create_vhosts(std::string* error) {
  vhost_ = create_vhost("ptyhub", false, error);
  if (vhost_ == nullptr) return false;
  const bool tls = !settings_.tls_cert.empty();
  if (tls && (tls_vhost_ = create_vhost("ptyhub-tls", true, error)) == nullptr) return false;
  auto handover = [](struct lws_vhost* vhost) {
    return [vhost](int fd, std::string bytes) {
      // lws closes the fd itself when adoption fails.
      struct lws* wsi = bytes.empty() ? lws_adopt_socket_vhost(vhost, fd)
                                      : lws_adopt_socket_vhost_readbuf(vhost, fd, bytes.data(), bytes.size());
      // With a buffered request, lws serves it during the adoption: a plain request with
      // `Connection: close` is answered and closed before this returns, and that also gives nullptr.
      if (wsi == nullptr && bytes.empty()) log::warn("could not hand a connection to the WebSocket server");
      if (wsi == nullptr && !bytes.empty()) log::debug("a connection was served and closed while handed over, or refused");
    };
  };
  if (!activated_.empty()) {
    // Socket activation: TCP sockets get TLS when tls_cert is set, unix sockets never (as with `listen`).
    std::vector<UniqueFd> sockets = std::move(activated_);
    activated_.clear();
    for (UniqueFd& socket : sockets) {
      const bool use_tls = tls && Listener::is_tcp_socket(socket.get());
      auto listener = std::make_unique<Listener>(loop_, handover(use_tls ? tls_vhost_ : vhost_), !use_tls);
      if (!listener->adopt(std::move(socket), error)) return false;
      log::info("listening on " + std::string(tls && listener->tcp() ? "https://" : "") + listener->address() +
                " (socket activation)");
      listeners_.push_back(std::move(listener));
    }
    return true;
  }
  for (const ListenAddress& address : settings_.listen) {
    struct lws_vhost* vhost = tls && !address.unix_socket ? tls_vhost_ : vhost_;
    auto listener = std::make_unique<Listener>(loop_, handover(vhost), vhost != tls_vhost_);
    if (!listener->listen(address, error)) return false;
    log::info("listening on " + std::string(vhost == tls_vhost_ ? "https://" : "") + listener->address());
    listeners_.push_back(std::move(listener));
  }
  return true;
}

std::vector<int> WsServer::listener_fds() const {
  std::vector<int> fds;
  for (const auto& listener : listeners_) {
    if (listener->fd() >= 0) fds.push_back(listener->fd());
  }
  return fds;
}

void WsServer::reload_tls() {
  if (tls_vhost_ == nullptr || context_ == nullptr) return;
  const std::string problem = check_tls_pair(tls_cert_loaded_, tls_key_loaded_);
  if (!problem.empty()) {
    log::error("SIGHUP: TLS certificate not reloaded, the previous one stays: " + problem);
    return;
  }
  // libwebsockets loads the files again into the TLS vhost's context (it matches the vhost by its paths).
  lws_tls_cert_updated(context_, tls_cert_loaded_.c_str(), tls_key_loaded_.c_str(), nullptr, 0, nullptr, 0);
  log::info("SIGHUP: TLS certificate reloaded from " + tls_cert_loaded_);
}

int WsServer::on_http(struct lws* wsi, const char* path) {
  const HttpResponse response = route_http(path != nullptr ? path : "/",
                                           {accepting_ && (!ready_check_ || ready_check_()), &metrics_, settings_.base_path});
  unsigned char buffer[LWS_PRE + 4096];
  unsigned char* start = buffer + LWS_PRE;
  unsigned char* p = start;
  unsigned char* end = buffer + sizeof buffer - 1;
  if (lws_add_http_common_headers(wsi, response.status, response.content_type.c_str(), response.body.size(), &p,
                                  end) != 0) {
    return 1;
  }
  // Security headers on every answer; the page gets a Content-Security-Policy that allows exactly what it
  // loads: its own script and style (xterm.js adds <style> elements), the WebSocket to its own origin.
  std::vector<std::pair<std::string, std::string>> headers = {{"x-content-type-options:", "nosniff"},
                                                               {"referrer-policy:", "no-referrer"}};
  if (!response.location.empty()) headers.emplace_back("location:", response.location);
  if (response.content_type.starts_with("text/html")) {
    headers.emplace_back("content-security-policy:",
                         "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; "
                         "img-src 'self' data:; font-src 'self' data:; base-uri 'none'; form-action 'none'; "
                         "frame-ancestors " + settings_.frame_ancestors);
  }
  for (const auto& [name, value] : headers) {
    if (lws_add_http_header_by_name(wsi, reinterpret_cast<const unsigned char*>(name.c_str()),
                                    reinterpret_cast<const unsigned char*>(value.data()), static_cast<int>(value.size()),
                                    &p, end) != 0) {
      return 1;
    }
  }
  if (lws_finalize_write_http_header(wsi, start, &p, end) != 0) return 1;
  std::string body(LWS_PRE, '\0');
  body += response.body;
  auto* payload = reinterpret_cast<unsigned char*>(body.data()) + LWS_PRE;
  if (lws_write(wsi, payload, response.body.size(), LWS_WRITE_HTTP_FINAL) < static_cast<int>(response.body.size())) {
    return -1;
  }
  return lws_http_transaction_completed(wsi) != 0 ? -1 : 0;
}

ClientAddress WsServer::client_of(struct lws* wsi) const {
  char peer[128] = "";
  lws_get_peer_simple(wsi, peer, sizeof peer);  // empty on a unix socket
  ForwardingHeaders headers;
  if (settings_.trusted_proxies.trusts(peer)) {  // from anyone else the headers are not even read
    headers.forwarded = custom_header(wsi, "forwarded:");
    headers.x_forwarded_for = header(wsi, WSI_TOKEN_X_FORWARDED_FOR);
    headers.x_forwarded_proto = custom_header(wsi, "x-forwarded-proto:");
    headers.x_forwarded_host = custom_header(wsi, "x-forwarded-host:");
  }
  return resolve_client(peer, headers, settings_.trusted_proxies);
}

int WsServer::on_confirm_upgrade(struct lws* wsi) {
  const std::string path = header(wsi, WSI_TOKEN_GET_URI);
  const std::string ws_path = settings_.base_path + std::string(kWebSocketPath);
  if (std::string_view(path).substr(0, path.find('?')) != ws_path) {
    return refuse_upgrade(wsi, 404, "Not Found", "not_found", "WebSocket upgrades are served at " + ws_path + " only");
  }
  bool offers_subprotocol = false;
  const std::string protocols = header(wsi, WSI_TOKEN_PROTOCOL);
  for (std::string_view item : comma_list(protocols)) {
    if (item == kSubprotocol) offers_subprotocol = true;
  }
  if (!offers_subprotocol) {
    return refuse_upgrade(wsi, 400, "Bad Request", "bad_request", "the subprotocol ptyhub.v1 is required");
  }
  if (!accepting_) {
    return refuse_upgrade(wsi, 503, "Service Unavailable", "unavailable", "the server is shutting down");
  }
  // Behind a trusted proxy the page's host and scheme are the ones the proxy was asked for.
  const ClientAddress client = client_of(wsi);
  const std::string origin = header(wsi, WSI_TOKEN_ORIGIN);
  const std::string host = client.host.empty() ? header(wsi, WSI_TOKEN_HOST) : client.host;
  if (!origin_allowed(origin, host, settings_.allowed_origin, client.scheme)) {
    log_origin_refusal(origin);
    return refuse_upgrade(wsi, 403, "Forbidden", "forbidden", "this Origin may not open a WebSocket here");
  }
  return 0;
}

void WsServer::log_origin_refusal(const std::string& origin) {
  // At most one line a second: a page that keeps retrying from a foreign origin must not flood the log.
  const uint64_t now = uv_now(loop_);
  if (origin_log_ms_ != 0 && now - origin_log_ms_ < 1000) {
    ++origin_refusals_unlogged_;
    return;
  }
  const std::string unlogged = std::to_string(origin_refusals_unlogged_);
  // unlogged: the refusals since the last line that were not logged, when there were any.
  const log::Field fields[] = {{"origin", origin}, {"unlogged", unlogged, true}};
  log::write(log::Level::warn, "refused a WebSocket upgrade from a foreign Origin",
             std::span<const log::Field>(fields, origin_refusals_unlogged_ > 0 ? 2 : 1));
  origin_log_ms_ = now;
  origin_refusals_unlogged_ = 0;
}

int WsServer::on_established(struct lws* wsi, void* user) {
  auto** slot = static_cast<Connection**>(user);
  session::SessionContext context{loop_, hub_, git_, verifier_, settings_.session, metrics_};
  const Connection::Limits limits{settings_.max_message, settings_.client_queue_limit,
                                  4 * settings_.client_queue_limit + kQueueSlackBytes};
  const ClientAddress client = client_of(wsi);
  auto* connection = new Connection(wsi, context, limits, client.address);
  *slot = connection;
  connections_.insert(connection);
  const uint64_t now = uv_now(loop_);
  // Every refusal says why: an error frame (docs/protocol.md §3), then the 4429 close.
  const auto refuse = [&](const std::string& message) {
    log::debug("refused a connection: " + message, {{"peer", client.address}});
    connection->send(protocol::error_frame(nullptr, {protocol::code::kLimitExceeded, message, ""}));
    connection->close(protocol::close_code::kTooManyConnections, "too many connections");
  };
  if (connections_.size() > settings_.max_connections) {
    refuse("the server has max_connections (" + std::to_string(settings_.max_connections) + ") connections");
    return 0;
  }
  // Loopback and unix-socket clients are not limited per address unless limit_loopback says so: they are
  // this machine, or a proxy on it that forwarded no client address (docs/protocol.md §3 Limits).
  const std::string limited = client.local() && !settings_.limit_loopback ? std::string() : client.address;
  if (!peer_limits_->admit(limited, now)) {
    ++metrics_.peer_refusals_total;
    refuse("too many connections from your address (max_connections_per_ip " +
           std::to_string(settings_.max_connections_per_ip) + ")");
    return 0;
  }
  connection->set_on_auth_failure([this, limited] { peer_limits_->record_auth_failure(limited, uv_now(loop_)); });
  connection->set_admitted_peer(limited);
  const uint64_t delay_ms = peer_limits_->auth_delay_ms(limited, now);
  if (delay_ms > 0) ++metrics_.auth_delays_total;
  log::debug("connection opened", {{"peer", client.address}});
  connection->start(upgrade_token(wsi), delay_ms);
  return 0;
}

void WsServer::on_closed(struct lws* /*wsi*/, void* user) {
  auto** slot = static_cast<Connection**>(user);
  if (slot == nullptr || *slot == nullptr) return;
  Connection* connection = *slot;
  *slot = nullptr;
  connections_.erase(connection);
  log::debug("connection closed", {{"peer", connection->peer()}, {"user", connection->user()}});
  if (connection->admitted_peer()) peer_limits_->release(*connection->admitted_peer(), uv_now(loop_));
  delete connection;
  check_no_connections();
}

void WsServer::stop_accepting() {
  accepting_ = false;
  for (auto& listener : listeners_) listener->stop();
}

void WsServer::close_all(int code, std::string_view reason) {
  close_queue_.assign(connections_.begin(), connections_.end());
  close_code_ = code;
  close_reason_ = std::string(reason);
  closes_.run();
}

bool WsServer::close_batch() {
  for (size_t done = 0; !close_queue_.empty() && done < kCloseBatch; ++done) {
    Connection* connection = close_queue_.back();
    close_queue_.pop_back();
    if (connections_.count(connection) != 0) connection->close(close_code_, close_reason_);  // not gone meanwhile
  }
  return !close_queue_.empty();
}

void WsServer::when_no_connections(std::function<void()> callback) {
  on_no_connections_ = std::move(callback);
  check_no_connections();
}

void WsServer::check_no_connections() {
  if (!on_no_connections_ || !connections_.empty()) return;
  auto callback = std::move(on_no_connections_);
  on_no_connections_ = nullptr;
  callback();
}

void WsServer::destroy_context() {
  close_queue_.clear();
  closes_.stop();
  stop_accepting();
  listeners_.clear();
  if (context_ != nullptr) lws_context_destroy(context_);
}

void WsServer::finish() {
  if (context_ != nullptr) lws_context_destroy(context_);
}

}  // namespace ptyhub::server
