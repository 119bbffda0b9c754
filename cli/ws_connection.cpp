// WsConnection over libwebsockets' client role on a libuv loop: see ws_connection.hpp.
#include "cli/ws_connection.hpp"

// uv.h before libwebsockets.h: lws declares its libuv glue only when UV_ERRNO_MAP is defined.
#include <uv.h>
#include <libwebsockets.h>

#include <unistd.h>

#include <cstring>

namespace ptyhub::cli {

namespace {

constexpr const char* kProtocolName = "ptyhub-cli";
constexpr const char* kSubprotocol = "ptyhub.v1";
constexpr size_t kRxBufferSize = 64 * 1024;
constexpr size_t kMaxMessage = 8 * 1024 * 1024;  // the daemon sends at most 64 KiB of output per message

// lws → the WsConnection that owns the context.
int dispatch(struct lws* wsi, enum lws_callback_reasons reason, void* /*user*/, void* in, size_t len) {
  if (wsi == nullptr) return 0;
  struct lws_context* context = lws_get_context(wsi);
  auto* connection = context != nullptr ? static_cast<WsConnection*>(lws_context_user(context)) : nullptr;
  if (connection == nullptr) return 0;
  return connection->on_callback(wsi, static_cast<int>(reason), in, len);
}

const struct lws_protocols kProtocols[] = {
    {kProtocolName, dispatch, 0, kRxBufferSize, 0, nullptr, 0},
    {nullptr, nullptr, 0, 0, 0, nullptr, 0},
};

// Pings after 20 s of silence and gives a connection up after 40 s without an answer: how a drop that
// sends nothing (a cable, a NAT) is noticed.
const lws_retry_bo_t kKeepAlive = {nullptr, 0, 0, 20, 40, 0};

}  // namespace

std::unique_ptr<WsConnection> WsConnection::create(uv_loop_t* loop, WsSettings settings, WsEvents* events, std::string* why) {
  std::unique_ptr<WsConnection> connection(new WsConnection(std::move(settings), events));
  lws_set_log_level(std::getenv("PTYHUB_LWS_LOG") != nullptr ? std::atoi(std::getenv("PTYHUB_LWS_LOG")) : 0, nullptr);
  struct lws_context_creation_info info;
  std::memset(&info, 0, sizeof info);
  void* foreign_loops[] = {loop};
  info.port = CONTEXT_PORT_NO_LISTEN;
  info.protocols = kProtocols;
  info.gid = static_cast<gid_t>(-1);
  info.uid = static_cast<uid_t>(-1);
  info.user = connection.get();
  info.options = LWS_SERVER_OPTION_LIBUV;
  info.foreign_loops = foreign_loops;
  info.pcontext = &connection->context_;
  info.fd_limit_per_thread = 16;
  if (connection->settings_.endpoint.tls) {
    info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    if (!connection->settings_.ca_file.empty()) info.client_ssl_ca_filepath = connection->settings_.ca_file.c_str();
  }
  connection->context_ = lws_create_context(&info);
  if (connection->context_ == nullptr) {
    if (why != nullptr) *why = "cannot set up libwebsockets on libuv (is libwebsockets-evlib-uv installed?)";
    return nullptr;
  }
  return connection;
}

WsConnection::~WsConnection() {
  if (context_ != nullptr) lws_context_destroy(context_);  // the second destroy frees it (foreign loop)
}

bool WsConnection::connect(std::string* why) {
  if (context_ == nullptr || wsi_ != nullptr || shut_down_) return false;
  const Endpoint& endpoint = settings_.endpoint;
  open_ = false;
  closing_ = false;
  partial_.clear();
  peer_close_code_ = 0;
  peer_close_reason_.clear();
  outbound_.clear();
  queued_bytes_ = 0;
  if (endpoint.kind == Endpoint::Kind::unix_socket) {
    address_ = "+" + endpoint.socket_path;  // lws's spelling of a unix socket address
    host_header_ = "localhost";
  } else {
    address_ = endpoint.host;
    const bool v6 = endpoint.host.find(':') != std::string::npos;
    host_header_ = (v6 ? "[" + endpoint.host + "]" : endpoint.host) + ":" + std::to_string(endpoint.port);
  }
  struct lws_client_connect_info info;
  std::memset(&info, 0, sizeof info);
  info.context = context_;
  info.address = address_.c_str();
  info.port = endpoint.kind == Endpoint::Kind::tcp ? endpoint.port : 0;
  info.path = endpoint.path.c_str();
  info.host = host_header_.c_str();
  info.origin = nullptr;  // a program, not a page: no Origin header
  info.protocol = kSubprotocol;
  info.local_protocol_name = kProtocolName;
  info.ietf_version_or_minus_one = -1;
  info.retry_and_idle_policy = &kKeepAlive;
  info.pwsi = &wsi_;
  if (endpoint.tls) info.ssl_connection = LCCSCF_USE_SSL;
  // A missing socket file is told here: lws 4.1.6 leaks a little when a unix connect fails inside the call.
  if (endpoint.kind == Endpoint::Kind::unix_socket && ::access(endpoint.socket_path.c_str(), F_OK) != 0) {
    if (why != nullptr) *why = "no socket at " + endpoint.socket_path;
    return false;
  }
  // A failure found at once (an unknown host, a refused unix socket) comes through CONNECTION_ERROR inside
  // this call: it is returned here instead of being reported as an event.
  connecting_ = true;
  sync_failure_.clear();
  struct lws* started = lws_client_connect_via_info(&info);
  connecting_ = false;
  if (started == nullptr || !sync_failure_.empty()) {
    wsi_ = nullptr;
    if (why != nullptr) *why = sync_failure_.empty() ? "cannot start a connection" : sync_failure_;
    return false;
  }
  return true;
}

void WsConnection::send(std::string text) {
  if (wsi_ == nullptr || !open_ || closing_) return;
  std::string buffer;
  buffer.reserve(LWS_PRE + text.size());
  buffer.assign(LWS_PRE, '\0');
  buffer.append(text);
  queued_bytes_ += text.size();
  outbound_.push_back(std::move(buffer));
  lws_callback_on_writable(wsi_);
}

void WsConnection::close() {
  if (wsi_ == nullptr || closing_) return;
  closing_ = true;
  lws_callback_on_writable(wsi_);
}

void WsConnection::shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  events_ = nullptr;
  if (context_ != nullptr) lws_context_destroy(context_);  // first call: async teardown on the loop
}

int WsConnection::on_callback(struct lws* wsi, int reason, void* in, size_t len) {
  // Over a unix socket the connection is made, and its request head written, inside
  // lws_client_connect_via_info() before it hands the wsi back: adopt the client wsi it is making.
  if (wsi_ == nullptr && connecting_ && reason == LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER) wsi_ = wsi;
  if (wsi_ == nullptr || wsi != wsi_) return 0;  // lws's own wsis (vhost, protocol init) or an old attempt
  switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
      return on_append_headers(in, len);
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
      open_ = true;
      if (events_ != nullptr) events_->on_open();
      return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
      on_receive(in, len);
      return partial_.size() > kMaxMessage ? -1 : 0;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
      on_peer_close(in, len);
      return 0;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
      return on_writeable();
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
      on_ended(true, in, len);
      return 0;
    case LWS_CALLBACK_CLIENT_CLOSED:
      on_ended(false, in, len);
      return 0;
    default:
      return 0;
  }
}

int WsConnection::on_append_headers(void* in, size_t len) {
  if (settings_.token.empty()) return 0;
  auto** position = static_cast<unsigned char**>(in);
  unsigned char* end = *position + len;
  const std::string value = "Bearer " + settings_.token;
  if (lws_add_http_header_by_token(wsi_, WSI_TOKEN_HTTP_AUTHORIZATION, reinterpret_cast<const unsigned char*>(value.data()),
                                   static_cast<int>(value.size()), position, end) != 0) {
    return -1;  // the token does not fit the request head
  }
  return 0;
}

void WsConnection::on_receive(const void* in, size_t len) {
  if (lws_is_first_fragment(wsi_)) partial_.clear();
  partial_.append(static_cast<const char*>(in), len);
  if (!lws_is_final_fragment(wsi_) || lws_remaining_packet_payload(wsi_) != 0) return;
  std::string message = std::move(partial_);
  partial_.clear();
  if (lws_frame_is_binary(wsi_)) return;  // the daemon sends text only
  if (events_ != nullptr) events_->on_message(message);
}

void WsConnection::on_peer_close(const void* in, size_t len) {
  const auto* bytes = static_cast<const unsigned char*>(in);
  if (bytes == nullptr || len < 2) {
    peer_close_code_ = 1005;
    return;
  }
  peer_close_code_ = (bytes[0] << 8) | bytes[1];
  peer_close_reason_.assign(reinterpret_cast<const char*>(bytes + 2), len - 2);
}

int WsConnection::on_writeable() {
  if (outbound_.empty()) {
    if (!closing_) return 0;
    // lws 4.1.6 on libuv drops the close frame of a connection closed from a callback (LWS-NOTES §5): the
    // frame is written here (write type 4 is lws's internal LWS_WRITE_CLOSE), then the connection ends.
    static constexpr char kReason[] = "client done";
    unsigned char frame[LWS_PRE + 2 + sizeof kReason];
    unsigned char* payload = frame + LWS_PRE;
    payload[0] = static_cast<unsigned char>(LWS_CLOSE_STATUS_NORMAL >> 8);
    payload[1] = static_cast<unsigned char>(LWS_CLOSE_STATUS_NORMAL & 0xff);
    std::memcpy(payload + 2, kReason, sizeof kReason - 1);
    lws_write(wsi_, payload, 2 + sizeof kReason - 1, static_cast<enum lws_write_protocol>(4));
    return -1;
  }
  std::string& buffer = outbound_.front();
  const size_t length = buffer.size() - LWS_PRE;
  auto* payload = reinterpret_cast<unsigned char*>(buffer.data()) + LWS_PRE;
  const int written = lws_write(wsi_, payload, length, LWS_WRITE_TEXT);
  queued_bytes_ -= length;
  outbound_.pop_front();
  if (written < static_cast<int>(length)) return -1;
  if (!outbound_.empty() || closing_) lws_callback_on_writable(wsi_);
  return 0;
}

void WsConnection::on_ended(bool connect_error, const void* in, size_t len) {
  if (wsi_ == nullptr) return;
  const bool was_open = open_ && !connect_error;
  std::string reason;
  if (!was_open) {
    if (in != nullptr) reason = len > 0 ? std::string(static_cast<const char*>(in), strnlen(static_cast<const char*>(in), len))
                                        : std::string(static_cast<const char*>(in));
    const unsigned int status = lws_http_client_http_response(wsi_);
    if (status != 0 && status != 101) reason = "HTTP " + std::to_string(status) + (reason.empty() ? "" : ": " + reason);
    if (reason.empty()) reason = "connection failed";
  } else {
    reason = peer_close_reason_;
  }
  const int code = was_open ? (peer_close_code_ != 0 ? peer_close_code_ : (closing_ ? 1000 : 1006)) : 0;
  wsi_ = nullptr;
  open_ = false;
  outbound_.clear();
  queued_bytes_ = 0;
  if (connecting_) {
    sync_failure_ = reason;
    return;
  }
  if (events_ != nullptr) events_->on_closed(was_open, code, reason);
}

}  // namespace ptyhub::cli
