// Client: one ptyhub.v1 conversation with the daemon (docs/protocol.md), over a WsConnection on the
// caller's loop: authentication, requests matched to their replies by id, events, and resuming after a drop.
//
// Ownership: the command that runs owns a Client; the Client owns its WsConnection and a reconnect timer.
// Everything runs on the loop thread. The Client ends the run with finish(), which records the exit status,
// prints the message (if any) on stderr and stops the loop; the caller then calls shutdown() and drains
// the loop (run_to_completion in main.cpp).
//
// Resuming: when resume is on, a connection that drops after authentication is made again — at once after
// close 1012 (the daemon's live upgrade, docs/protocol.md §7), else after `resume_delay` (100 ms)
// doubling to 2 s — until
// `resume_timeout` passes; every new authentication calls on_ready(true), where the command subscribes
// again from where it stopped. Requests in flight when the connection dropped get no reply.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>
#include <uv.h>

#include "cli/ws_connection.hpp"
#include "core/uv_handle.hpp"

namespace ptyhub::cli {

using json = nlohmann::json;

struct ClientSettings {
  WsSettings ws;
  std::string url;  // as the user wrote it, for messages
  std::chrono::milliseconds resume_timeout{30000};
  std::chrono::milliseconds resume_delay{100};  // before the first new attempt; doubles up to 2 s (or this)
};

class Client : public WsEvents {
 public:
  struct Hooks {
    std::function<void(bool resumed)> on_ready;           // authenticated (again)
    std::function<void(const json& message)> on_event;    // a message that answers no request
    std::function<void()> on_finish;                      // first thing finish() does (restore the tty)
  };
  // A reply: the message with the request's id (type "error" when it failed).
  using ReplyHandler = std::function<void(const json& message)>;

  Client(uv_loop_t* loop, ClientSettings settings, Hooks hooks);
  ~Client() override;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Starts the first connection. False (after finish()) when it cannot even begin.
  bool start();
  // Turns resuming after a drop on or off (off: a drop ends the run with kConnectionLost).
  void set_resume(bool on) { resume_ = on; }

  // Sends {type, id, data} and calls `on_reply` with the message that carries the id.
  void request(std::string_view type, json data, ReplyHandler on_reply);
  // Sends {type, data} without an id.
  void send(std::string_view type, json data);
  // Bytes queued for the socket and not yet written.
  size_t queued_bytes() const { return ws_ ? ws_->queued_bytes() : 0; }
  // True while authenticated on an open connection.
  bool ready() const { return ready_; }

  // Ends the run with `status`; `message` (without a newline) goes to stderr as "ptyhub: <message>".
  void finish(int status, std::string_view message = {});
  // finish() for an error reply: its code chosen status and "<what>: <daemon's message>".
  void finish_with_error(const json& reply, std::string_view what);
  bool finished() const { return finished_; }
  int status() const { return status_; }
  // After finish(): starts the closing handshake when a connection is open and arms a 500 ms deadline;
  // the loop stops when the connection ended or the deadline passed. False when there is nothing to close.
  bool begin_close();
  // Tears the context down; call after the loop stopped.
  void shutdown();

  // WsEvents.
  void on_open() override {}
  void on_message(std::string_view text) override;
  void on_closed(bool was_open, int code, std::string_view reason) override;

 private:
  // A connection that had been authenticated ended: resume (at once after 1012) or end the run.
  void on_dropped(int code, std::string_view reason);
  // The next attempt after `delay`.
  void schedule_resume(std::chrono::milliseconds delay);
  // One connection attempt of a resume.
  void attempt();

  uv_loop_t* loop_;
  ClientSettings settings_;
  Hooks hooks_;
  std::unique_ptr<WsConnection> ws_;
  UvHandle<uv_timer_t> retry_timer_;
  std::map<int64_t, ReplyHandler> pending_;
  int64_t next_id_ = 1;
  bool ever_ready_ = false;
  bool ready_ = false;
  bool resume_ = false;
  bool resuming_ = false;
  uint64_t resume_deadline_ms_ = 0;
  std::chrono::milliseconds backoff_{0};
  bool finished_ = false;
  bool closing_ = false;  // begin_close() waits for the close handshake
  int status_ = 0;
};

}  // namespace ptyhub::cli
