// Connection: WebSocket framing and queues for one client.
#include <uv.h>  // before libwebsockets.h (its libuv prototypes need UV_ERRNO_MAP)

#include "src/server/connection.hpp"

#include <libwebsockets.h>

#include <cstring>

#include "core/log.hpp"
#include "src/protocol/envelope.hpp"

namespace ptyhub::server {
namespace {

static_assert(LWS_PRE <= protocol::kFrameHeadroom, "frames must reserve LWS_PRE bytes of headroom");

// lws 4.1.6 loses close frames when a connection is closed from a callback, so the close frame is
// written as a raw frame of this (internal) write type, then the callback returns -1.
constexpr int kWriteTypeClose = 4;
constexpr size_t kMaxCloseReason = 123;

}  // namespace

Connection::Connection(struct lws* wsi, session::SessionContext context, Limits limits, std::string peer)
    : wsi_(wsi),
      loop_(context.loop),
      metrics_(context.metrics),
      limits_(limits),
      pace_(uv_now(context.loop)),
      session_(context, *this, std::move(peer)) {
  ++metrics_.connections_open;
  ++metrics_.connections_total;
}

Connection::~Connection() {
  --metrics_.connections_open;
  metrics_.outbound_queue_bytes -= queued_bytes_;
}

void Connection::start(const std::optional<std::string>& upgrade_token, uint64_t delay_ms) {
  if (delay_ms == 0) {
    session_.start(upgrade_token);
    return;
  }
  delayed_ = std::make_unique<DelayedStart>();
  delayed_->token = upgrade_token;
  if (!delayed_->timer.adopt_init(uv_timer_init(loop_, delayed_->timer.get()), this)) {
    delayed_.reset();
    session_.start(upgrade_token);  // no timer: no delay rather than no service
    return;
  }
  pause_reading();
  uv_timer_start(
      delayed_->timer.get(), [](uv_timer_t* handle) { static_cast<Connection*>(handle->data)->start_now(); }, delay_ms,
      0);
}

void Connection::start_now() {
  std::unique_ptr<DelayedStart> delayed = std::move(delayed_);
  if (closing_) return;
  resume_reading();
  session_.start(delayed->token);
  for (const std::string& message : delayed->held) {
    if (closing_) break;
    session_.on_message(message);
  }
}

void Connection::on_receive(const char* bytes, size_t length) {
  if (closing_) return;
  if (lws_is_first_fragment(wsi_)) {
    inbound_.clear();
    inbound_binary_ = lws_frame_is_binary(wsi_) != 0;
  }
  if (inbound_binary_) {
    close(1003, "binary frames are not accepted");
    return;
  }
  if (inbound_.size() + length > limits_.max_message) {
    close(1009, "message larger than max_message");
    return;
  }
  inbound_.append(bytes, length);
  if (!lws_is_final_fragment(wsi_) || lws_remaining_packet_payload(wsi_) != 0) return;
  std::string message;
  message.swap(inbound_);
  if (delayed_) {  // what arrived before lws saw the pause
    if (delayed_->held_bytes + message.size() > limits_.max_message) {
      close(1009, "too much sent before authentication");
      return;
    }
    delayed_->held_bytes += message.size();
    delayed_->held.push_back(std::move(message));
    return;
  }
  session_.on_message(message);
}

void Connection::send(const protocol::SharedFrame& frame) {
  if (closing_) return;
  if (queued_bytes_ + frame->size() > limits_.max_queued_bytes) {
    log::warn("closing a connection whose outbound queue passed its limit", {{"peer", peer()}, {"user", user()}});
    close(1008, "client too slow");
    return;
  }
  pace_.on_queued(uv_now(loop_), queue_.empty());
  queue_.push_back(frame);
  queued_bytes_ += frame->size();
  if (!has_room()) was_full_ = true;
  metrics_.outbound_queue_bytes += frame->size();
  lws_callback_on_writable(wsi_);
}

void Connection::close(int code, std::string_view reason) {
  if (closing_) return;
  closing_ = true;
  close_code_ = code;
  if (code == protocol::close_code::kAuthFailed && on_auth_failure_) on_auth_failure_();
  close_reason_ = std::string(reason.substr(0, kMaxCloseReason));
  lws_callback_on_writable(wsi_);
}

void Connection::pause_reading() { lws_rx_flow_control(wsi_, 0); }
void Connection::resume_reading() { lws_rx_flow_control(wsi_, 1); }

int Connection::on_writeable() {
  if (!queue_.empty()) {
    protocol::SharedFrame frame = std::move(queue_.front());
    queue_.pop_front();
    queued_bytes_ -= frame->size();
    metrics_.outbound_queue_bytes -= frame->size();
    const int written = lws_write(wsi_, frame->send_pointer(), frame->size(), LWS_WRITE_TEXT);
    if (written < static_cast<int>(frame->size())) return -1;
    metrics_.ws_bytes_out += frame->size();
    pace_.on_sent(uv_now(loop_), !queue_.empty());
    if (was_full_ && has_room() && !closing_) {
      was_full_ = false;
      session_.on_room();  // may queue more frames
    }
    if (!queue_.empty() || closing_) lws_callback_on_writable(wsi_);
    return 0;
  }
  if (closing_) return write_close_frame();
  return 0;
}

int Connection::write_close_frame() {
  unsigned char buffer[LWS_PRE + 2 + kMaxCloseReason];
  unsigned char* payload = buffer + LWS_PRE;
  payload[0] = static_cast<unsigned char>((close_code_ >> 8) & 0xff);
  payload[1] = static_cast<unsigned char>(close_code_ & 0xff);
  std::memcpy(payload + 2, close_reason_.data(), close_reason_.size());
  lws_write(wsi_, payload, 2 + close_reason_.size(), static_cast<enum lws_write_protocol>(kWriteTypeClose));
  return -1;
}

}  // namespace ptyhub::server
