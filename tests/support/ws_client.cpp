// WsClient over libwebsockets' client role: see ws_client.hpp for ownership and threading.
#include "tests/support/ws_client.hpp"

#include <libwebsockets.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace ptyhub::test {

namespace {

constexpr const char* kProtocolName = "ptyhub-test-client";
constexpr std::size_t kRxBufferSize = 64 * 1024;

int dispatch_callback(struct lws* wsi, enum lws_callback_reasons reason, void* /*user*/, void* in, std::size_t len) {
  if (wsi == nullptr) return 0;
  struct lws_context* context = lws_get_context(wsi);
  if (context == nullptr) return 0;
  auto* client = static_cast<WsClient*>(lws_context_user(context));
  if (client == nullptr) return 0;
  return client->on_callback(wsi, static_cast<int>(reason), in, len);
}

const struct lws_protocols kProtocols[] = {
    {kProtocolName, dispatch_callback, 0, kRxBufferSize, 0, nullptr, 0},
    {nullptr, nullptr, 0, 0, 0, nullptr, 0},
};

// lws logs only errors unless PTYHUB_TEST_LWS_LOG holds a level mask (e.g. 15).
void configure_lws_logging_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    int levels = LLL_ERR;
    if (const char* env = std::getenv("PTYHUB_TEST_LWS_LOG")) levels = std::atoi(env);
    lws_set_log_level(levels, nullptr);
  });
}

void on_tick(lws_sorted_usec_list_t* /*sul*/) {}

}  // namespace

struct WsClient::Tick {
  lws_sorted_usec_list_t sul;
};

WsClient::WsClient() : tick_(std::make_unique<Tick>()) {
  std::memset(&tick_->sul, 0, sizeof tick_->sul);
  configure_lws_logging_once();
}

WsClient::~WsClient() {
  if (context_ == nullptr) return;
  lws_sul_cancel(&tick_->sul);
  lws_context_destroy(context_);
  context_ = nullptr;
}

bool WsClient::connect(const WsOptions& options, std::chrono::milliseconds timeout) {
  if (context_ != nullptr) return false;  // one connection per client
  options_ = options;

  struct lws_context_creation_info info;
  std::memset(&info, 0, sizeof info);
  info.port = CONTEXT_PORT_NO_LISTEN;
  info.protocols = kProtocols;
  info.gid = static_cast<gid_t>(-1);
  info.uid = static_cast<uid_t>(-1);
  info.user = this;
  info.fd_limit_per_thread = 64;
  info.options = LWS_SERVER_OPTION_JUST_USE_RAW_ORIGIN;  // send Origin exactly as given
  if (options_.tls) info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
  context_ = lws_create_context(&info);
  if (context_ == nullptr) {
    connect_failed_ = true;
    connect_error_ = "lws_create_context failed";
    return false;
  }

  host_header_ = options_.host + ":" + std::to_string(options_.port);
  std::string address = options_.host;
  if (!options_.unix_path.empty()) {
    address = "+" + options_.unix_path;  // lws's spelling of a unix socket address
    host_header_ = "localhost";
  }
  struct lws_client_connect_info connect_info;
  std::memset(&connect_info, 0, sizeof connect_info);
  connect_info.context = context_;
  connect_info.address = address.c_str();
  connect_info.port = options_.port;
  connect_info.path = options_.path.c_str();
  connect_info.host = host_header_.c_str();
  connect_info.origin = options_.origin ? options_.origin->c_str() : nullptr;
  connect_info.protocol = options_.subprotocols.empty() ? nullptr : options_.subprotocols.c_str();
  connect_info.local_protocol_name = kProtocolName;
  connect_info.ietf_version_or_minus_one = -1;
  connect_info.pwsi = &wsi_;
  if (!options_.source_address.empty()) connect_info.iface = options_.source_address.c_str();
  if (options_.tls) {
    connect_info.ssl_connection =
        LCCSCF_USE_SSL | LCCSCF_ALLOW_SELFSIGNED | LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK;
  }
  if (lws_client_connect_via_info(&connect_info) == nullptr && !connect_failed_) {
    connect_failed_ = true;
    if (connect_error_.empty()) connect_error_ = "lws_client_connect_via_info failed";
  }
  service_until([this] { return established_ || connect_failed_ || closed_; }, timeout);
  return established_ && !closed_;
}

void WsClient::service(std::chrono::milliseconds slice) {
  if (context_ == nullptr) return;
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(slice).count();
  lws_sul_schedule(context_, 0, &tick_->sul, on_tick, std::max<lws_usec_t>(us, 1000));
  lws_service(context_, 0);
}

bool WsClient::service_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline || context_ == nullptr) return false;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    service(std::clamp(left, std::chrono::milliseconds(1), std::chrono::milliseconds(20)));
  }
  return true;
}

void WsClient::enqueue(std::string payload, int write_protocol) {
  Outbound message;
  message.buffer.reserve(LWS_PRE + payload.size());
  message.buffer.assign(LWS_PRE, '\0');
  message.buffer.append(payload);
  message.write_protocol = write_protocol;
  outbound_.push_back(std::move(message));
  if (wsi_ != nullptr && established_ && !closed_) lws_callback_on_writable(wsi_);
}

void WsClient::send_text(std::string text) { enqueue(std::move(text), LWS_WRITE_TEXT); }

void WsClient::send_binary(std::string bytes) { enqueue(std::move(bytes), LWS_WRITE_BINARY); }

void WsClient::send_json(const nlohmann::json& message) { send_text(message.dump()); }

void WsClient::send_text_fragments(std::vector<std::string> fragments) {
  for (std::size_t i = 0; i < fragments.size(); ++i) {
    int protocol = i == 0 ? LWS_WRITE_TEXT : LWS_WRITE_CONTINUATION;
    if (i + 1 < fragments.size()) protocol |= LWS_WRITE_NO_FIN;
    enqueue(std::move(fragments[i]), protocol);
  }
}

bool WsClient::flush(std::chrono::milliseconds timeout) {
  return service_until(
      [this] { return closed() || (outbound_.empty() && (wsi_ == nullptr || !lws_partial_buffered(wsi_))); },
      timeout) &&
         !closed();
}

std::optional<WsMessage> WsClient::receive(std::chrono::milliseconds timeout) {
  service_until([this] { return !inbox_.empty() || closed(); }, timeout);
  if (inbox_.empty()) return std::nullopt;
  WsMessage message = std::move(inbox_.front());
  inbox_.pop_front();
  return message;
}

namespace {

nlohmann::json parse_message(const WsMessage& message) {
  if (message.binary) return {{"type", "<not-json>"}, {"binary", true}, {"size", message.payload.size()}};
  nlohmann::json parsed = nlohmann::json::parse(message.payload, nullptr, false);
  if (parsed.is_discarded()) return {{"type", "<not-json>"}, {"size", message.payload.size()}};
  return parsed;
}

}  // namespace

std::optional<nlohmann::json> WsClient::receive_json(std::chrono::milliseconds timeout) {
  auto message = receive(timeout);
  if (!message) return std::nullopt;
  return parse_message(*message);
}

std::optional<nlohmann::json> WsClient::receive_until(const std::function<bool(const nlohmann::json&)>& predicate,
                                                      std::chrono::milliseconds timeout,
                                                      std::vector<nlohmann::json>* skipped) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    while (!inbox_.empty()) {
      nlohmann::json parsed = parse_message(inbox_.front());
      inbox_.pop_front();
      if (predicate(parsed)) return parsed;
      if (skipped != nullptr) skipped->push_back(std::move(parsed));
    }
    const auto now = std::chrono::steady_clock::now();
    if (closed() || now >= deadline) return std::nullopt;
    service_until([this] { return !inbox_.empty() || closed(); },
                  std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now));
  }
}

void WsClient::close(int code, std::string reason) {
  if (wsi_ == nullptr || closed_ || close_request_) return;
  if (reason.size() > 123) reason.resize(123);
  close_request_ = std::make_pair(code, std::move(reason));
  lws_callback_on_writable(wsi_);
}

bool WsClient::wait_closed(std::chrono::milliseconds timeout) {
  return service_until([this] { return closed(); }, timeout);
}

int WsClient::on_callback(struct lws* wsi, int reason, void* in, std::size_t len) {
  switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
      // Over a unix socket lws may write the handshake inside lws_client_connect_via_info(), before
      // it has stored the wsi through pwsi.
      if (wsi_ == nullptr) wsi_ = wsi;
      return on_append_headers(in, len);
    case LWS_CALLBACK_CLIENT_FILTER_PRE_ESTABLISH:
      on_filter_pre_establish();
      return 0;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
      established_ = true;
      if (!outbound_.empty() || close_request_) lws_callback_on_writable(wsi);
      return 0;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
      on_connection_error(in, len);
      return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
      on_receive(in, len);
      return 0;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
      on_peer_close(in, len);
      return 0;  // lws answers with a close frame and ends the connection
    case LWS_CALLBACK_CLIENT_WRITEABLE:
      return on_writeable();
    case LWS_CALLBACK_CLIENT_CLOSED:
      on_closed();
      return 0;
    case LWS_CALLBACK_WSI_DESTROY:
      if (wsi == wsi_) {
        if (established_) on_closed();
        else if (!connect_failed_) connect_failed_ = true;
        wsi_ = nullptr;
      }
      return 0;
    default:
      return 0;
  }
}

int WsClient::on_append_headers(void* in, std::size_t len) {
  auto** cursor = static_cast<unsigned char**>(in);
  unsigned char* end = *cursor + len;
  for (const auto& [name, value] : options_.headers) {
    if (lws_add_http_header_by_name(wsi_, reinterpret_cast<const unsigned char*>(name.c_str()),
                                    reinterpret_cast<const unsigned char*>(value.data()), static_cast<int>(value.size()),
                                    cursor, end) != 0) {
      return -1;
    }
  }
  if (!options_.authorization) return 0;
  const std::string& value = *options_.authorization;
  if (lws_add_http_header_by_token(wsi_, WSI_TOKEN_HTTP_AUTHORIZATION,
                                   reinterpret_cast<const unsigned char*>(value.data()), static_cast<int>(value.size()),
                                   cursor, end) != 0) {
    return -1;
  }
  return 0;
}

void WsClient::on_filter_pre_establish() {
  int length = lws_hdr_total_length(wsi_, WSI_TOKEN_PROTOCOL);
  if (length <= 0) return;
  std::string protocol(static_cast<std::size_t>(length) + 1, '\0');
  int copied = lws_hdr_copy(wsi_, protocol.data(), length + 1, WSI_TOKEN_PROTOCOL);
  protocol.resize(copied > 0 ? static_cast<std::size_t>(copied) : 0);
  accepted_subprotocol_ = std::move(protocol);
}

void WsClient::on_connection_error(void* in, std::size_t len) {
  connect_failed_ = true;
  if (in != nullptr && len > 0) connect_error_.assign(static_cast<const char*>(in), len);
  else if (in != nullptr) connect_error_ = static_cast<const char*>(in);
  if (wsi_ != nullptr) http_status_on_failure_ = static_cast<int>(lws_http_client_http_response(wsi_));
}

void WsClient::on_receive(void* in, std::size_t len) {
  if (!in_message_) {
    in_message_ = true;
    partial_.clear();
    partial_binary_ = lws_frame_is_binary(wsi_) != 0;
  }
  partial_.append(static_cast<const char*>(in), len);
  if (lws_is_final_fragment(wsi_) && lws_remaining_packet_payload(wsi_) == 0) {
    inbox_.push_back(WsMessage{partial_binary_, std::move(partial_)});
    partial_.clear();
    in_message_ = false;
  }
}

void WsClient::on_peer_close(void* in, std::size_t len) {
  peer_close_seen_ = true;
  const auto* bytes = static_cast<const unsigned char*>(in);
  if (bytes == nullptr || len < 2) {
    close_code_ = kCloseNoStatus;
    return;
  }
  close_code_ = (bytes[0] << 8) | bytes[1];
  close_reason_.assign(reinterpret_cast<const char*>(bytes + 2), len - 2);
}

int WsClient::on_writeable() {
  if (wsi_ == nullptr) return 0;
  if (outbound_.empty()) {
    if (!close_request_) return 0;
    auto& [code, reason] = *close_request_;
    lws_close_reason(wsi_, static_cast<enum lws_close_status>(code),
                     reinterpret_cast<unsigned char*>(reason.data()), reason.size());
    return -1;
  }
  Outbound& message = outbound_.front();
  const std::size_t length = message.buffer.size() - LWS_PRE;
  auto* payload = reinterpret_cast<unsigned char*>(message.buffer.data()) + LWS_PRE;
  int written = lws_write(wsi_, payload, length, static_cast<enum lws_write_protocol>(message.write_protocol));
  outbound_.pop_front();
  if (written < static_cast<int>(length)) return -1;
  if (!outbound_.empty() || close_request_) lws_callback_on_writable(wsi_);
  return 0;
}

void WsClient::on_closed() {
  if (closed_) return;
  closed_ = true;
  if (peer_close_seen_) return;
  close_code_ = close_request_ ? close_request_->first : kCloseAbnormal;
}

}  // namespace ptyhub::test
