// ClientSession: one WebSocket client's protocol state — authentication, subscriptions — and the
// handling of its requests (docs/protocol.md §2 Authentication, §3 Envelope, §4 Requests).
//
// Owned by the edge's connection object, which outlives none of its callbacks: the destructor detaches
// the session from the hub and closes its timers. Talks to the client only through its Outbox.
// Loop thread only.
#pragma once

#include <uv.h>

#include <optional>
#include <set>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "auth/jwt.hpp"
#include "core/log.hpp"
#include "core/uv_handle.hpp"
#include "src/hub/git_operations.hpp"
#include "src/hub/hub.hpp"
#include "src/protocol/envelope.hpp"
#include "src/protocol/fields.hpp"
#include "src/session/outbox.hpp"

namespace ptyhub::session {

// A session's settings (docs/configuration.md), fixed for its life.
struct SessionLimits {
  uint64_t auth_timeout_ms = 10000;                // to present a token when the upgrade carried none
  uint64_t kill_grace_ms = 5000;                   // shell.kill: SIGHUP/SIGTERM -> SIGKILL
};

struct SessionContext {
  uv_loop_t* loop;
  hub::Hub& hub;
  hub::GitOperations& git;
  const auth::JwtVerifier& verifier;  // also the leeway on a token's exp
  SessionLimits limits;
  hub::Metrics& metrics;
};

class ClientSession final : public hub::Subscriber {
 public:
  // `peer` is the client's address, for the audit log.
  ClientSession(SessionContext context, Outbox& outbox, std::string peer);
  ~ClientSession() override;
  ClientSession(const ClientSession&) = delete;
  ClientSession& operator=(const ClientSession&) = delete;

  // Called once the WebSocket is open, with the token the upgrade carried (header or subprotocol).
  void start(const std::optional<std::string>& upgrade_token);
  // One complete inbound text message.
  void on_message(std::string_view text);
  const std::string& peer() const { return peer_; }

  // hub::Subscriber
  void deliver(const protocol::SharedFrame& frame) override;
  void on_input_drained(std::string_view terminal_id) override;
  const auth::Principal& principal() const override { return principal_; }
  bool has_room() const override { return outbox_.has_room(); }
  bool stalled(uint64_t now_ms) const override { return outbox_.stalled(now_ms); }
  // The outbox fell below client_queue_limit again.
  void on_room();

 private:
  using Request = protocol::Request;
  using Handler = void (ClientSession::*)(const Request&);

  static Handler handler_for(std::string_view type);
  void authenticate(const std::string& token, const Request* request);
  void fail_authentication(const std::string& reason, const nlohmann::json& id);
  void arm_expiry_timer(int64_t exp_seconds);
  void close(int code, std::string_view reason);
  // One structured line per security-relevant act: `audit event=… user=… peer=… key=value… request=…`
  // (request: the id of the request being handled, when it has one). Never a token.
  void audit(std::string_view event, std::initializer_list<log::Field> fields);

  void reply_error(const Request& request, std::string code, std::string message, std::string field = "");
  // shell.create {node} for another node of the cluster: the reply comes once that node answered.
  void create_on_node(const Request& request, const std::string& node, const hub::CreateOptions& options,
                      bool subscribe_creator);
  void reply(const Request& request, std::string_view type, nlohmann::json data);
  void ack(const Request& request);
  // Replies the reader's bad_message error when it has one.
  bool rejected(const Request& request, const protocol::DataReader& reader);
  bool require_scope(const Request& request, auth::Scope scope);
  // The terminal named by data.terminalId when readable; else replies not_found and returns nullptr.
  hub::Terminal* readable_terminal(const Request& request, const std::string& id);
  // The terminal when the caller may read it and owns it or is an admin; otherwise answers not_found or
  // forbidden ("only the owner or an admin may <action> a terminal") and returns nullptr.
  hub::Terminal* owned_terminal(const Request& request, const std::string& id, std::string_view action);
  // Checks write access and a running process; replies forbidden / conflict and returns false otherwise.
  bool writable_and_running(const Request& request, hub::Terminal& terminal);

  void handle_auth(const Request& request);
  void handle_ping(const Request& request);
  void handle_subscribe(const Request& request);
  void handle_unsubscribe(const Request& request);
  void handle_shell_create(const Request& request);
  void handle_shell_input(const Request& request);
  void handle_shell_resize(const Request& request);
  void handle_shell_kill(const Request& request);
  void handle_shell_list(const Request& request);
  void handle_shell_dismiss(const Request& request);
  void handle_shell_share(const Request& request);
  void handle_shell_pause(const Request& request);
  void handle_shell_resume(const Request& request);
  void set_paused(const Request& request, bool paused);
  void handle_git_start(const Request& request);
  void handle_git_cancel(const Request& request);

  SessionContext context_;
  Outbox& outbox_;
  std::string peer_;
  // Callbacks that may run after this session is gone (a terminal created on another node) hold a
  // weak reference to this.
  std::shared_ptr<int> life_ = std::make_shared<int>(0);
  std::string request_id_;  // of the request being handled, for audit lines; "" when it has none
  auth::Principal principal_;
  bool authenticated_ = false;
  bool closing_ = false;
  bool timers_ready_ = false;
  UvHandle<uv_timer_t> auth_timer_;
  UvHandle<uv_timer_t> expiry_timer_;
  std::set<std::string, std::less<>> input_blocked_on_;  // terminals whose input queue paused our reading
};

}  // namespace ptyhub::session
