// Connection: one upgraded WebSocket (`ptyhub.v1`) — its outbound queue, inbound message assembly and
// close handshake — and the ClientSession that speaks the protocol over it.
//
// Created by the WsServer at LWS_CALLBACK_ESTABLISHED and deleted at LWS_CALLBACK_CLOSED; the lws wsi
// outlives it. Frames are shared with other connections and sent without copying (Frame headroom).
// Loop thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/fifo.hpp"
#include "core/uv_handle.hpp"
#include "src/protocol/frame.hpp"
#include "src/server/drain_pace.hpp"
#include "src/session/client_session.hpp"
#include "src/session/outbox.hpp"

struct lws;

namespace ptyhub::server {

class Connection final : public session::Outbox {
 public:
  struct Limits {
    uint64_t max_message;       // inbound; larger closes with 1009
    uint64_t room_bytes;        // outbound; at or above it the client has no room (client_queue_limit)
    uint64_t max_queued_bytes;  // outbound; beyond it the client is too slow and is closed with 1008
  };

  Connection(struct lws* wsi, session::SessionContext context, Limits limits, std::string peer);
  ~Connection() override;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Starts the session, after `delay_ms` when that is not 0 (an address whose tokens were rejected:
  // docs/protocol.md §3 Limits). Until then the client's messages are held, unread, in order.
  void start(const std::optional<std::string>& upgrade_token, uint64_t delay_ms = 0);
  // For log lines: the client's address, and the authenticated user ("" before authentication).
  const std::string& peer() const { return session_.peer(); }
  const std::string& user() const { return session_.principal().user; }
  // Called when the session closes the connection with 4401 (a rejected or expired token).
  void set_on_auth_failure(std::function<void()> callback) { on_auth_failure_ = std::move(callback); }
  // The peer address counted in PeerLimits for this connection, released when it closes.
  void set_admitted_peer(std::string peer) { admitted_peer_ = std::move(peer); }
  const std::optional<std::string>& admitted_peer() const { return admitted_peer_; }
  // LWS_CALLBACK_RECEIVE.
  void on_receive(const char* bytes, size_t length);
  // LWS_CALLBACK_SERVER_WRITEABLE; returns -1 when lws should close the connection.
  int on_writeable();

  // session::Outbox
  void send(const protocol::SharedFrame& frame) override;
  void close(int code, std::string_view reason) override;
  void pause_reading() override;
  void resume_reading() override;
  bool has_room() const override { return queued_bytes_ < limits_.room_bytes; }
  bool stalled(uint64_t now_ms) const override { return pace_.stalled(now_ms); }

 private:
  int write_close_frame();
  void start_now();

  struct lws* wsi_;
  uv_loop_t* loop_;
  hub::Metrics& metrics_;
  Limits limits_;
  Fifo<protocol::SharedFrame> queue_;
  uint64_t queued_bytes_ = 0;
  DrainPace pace_;
  std::string inbound_;
  bool inbound_binary_ = false;
  bool was_full_ = false;  // queue reached room_bytes; the session is told when it drains below
  bool closing_ = false;
  int close_code_ = 1000;
  std::string close_reason_;
  std::function<void()> on_auth_failure_;
  std::optional<std::string> admitted_peer_;
  // A delayed start: its timer, the upgrade's token, the messages that arrived meanwhile.
  struct DelayedStart {
    UvHandle<uv_timer_t> timer;
    std::optional<std::string> token;
    std::vector<std::string> held;
    size_t held_bytes = 0;
  };
  std::unique_ptr<DelayedStart> delayed_;
  session::ClientSession session_;  // last: destroyed first, while the outbox is still whole
};

}  // namespace ptyhub::server
