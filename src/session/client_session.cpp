// ClientSession: authentication and request handling for one client.
#include "src/session/client_session.hpp"

#include <algorithm>
#include <cmath>

#include "core/log.hpp"
#include "core/time_format.hpp"
#include "src/protocol/base64.hpp"
#include "src/protocol/fields.hpp"
#include "src/protocol/output_frame.hpp"

namespace ptyhub::session {
namespace {

using nlohmann::json;
using protocol::DataReader;
namespace code = protocol::code;

constexpr std::string_view kTerminalChannelPrefix = "shell:terminal:";
constexpr std::string_view kLifecycleChannel = "shell:terminals";
constexpr int64_t kMaxOffset = (int64_t{1} << 53);  // largest integer a JSON client reads exactly

bool has_nul(std::string_view text) { return text.find('\0') != std::string_view::npos; }

}  // namespace

ClientSession::ClientSession(SessionContext context, Outbox& outbox, std::string peer)
    : context_(context), outbox_(outbox), peer_(std::move(peer)) {
  timers_ready_ = auth_timer_.adopt_init(uv_timer_init(context_.loop, auth_timer_.get()), this) &&
                 expiry_timer_.adopt_init(uv_timer_init(context_.loop, expiry_timer_.get()), this);
}

ClientSession::~ClientSession() { context_.hub.detach(this); }

void ClientSession::start(const std::optional<std::string>& upgrade_token) {
  if (!timers_ready_) {  // without its timers a session could neither time out nor expire
    log::error("cannot set up a connection's timers; closing it");
    close(protocol::close_code::kInternalError, "internal error");
    return;
  }
  if (upgrade_token) {
    authenticate(*upgrade_token, nullptr);
    return;
  }
  uv_timer_start(
      auth_timer_.get(),
      [](uv_timer_t* handle) {
        auto* self = static_cast<ClientSession*>(handle->data);
        if (self != nullptr && !self->authenticated_) self->close(protocol::close_code::kAuthTimeout, "authentication timeout");
      },
      context_.limits.auth_timeout_ms, 0);
}

void ClientSession::audit(std::string_view event, std::initializer_list<log::Field> fields) {
  // Text lines quote the values, so that a user name with spaces cannot forge a field.
  std::vector<log::Field> all{{"event", event, true}, {"user", principal_.user}, {"peer", peer_}};
  all.insert(all.end(), fields.begin(), fields.end());
  if (!request_id_.empty()) all.push_back({"request", request_id_});
  log::write(log::Level::info, "audit", all);
}

void ClientSession::close(int code, std::string_view reason) {
  if (closing_) return;
  closing_ = true;
  uv_timer_stop(auth_timer_.get());
  uv_timer_stop(expiry_timer_.get());
  context_.hub.detach(this);
  outbox_.close(code, reason);
}

ClientSession::Handler ClientSession::handler_for(std::string_view type) {
  static constexpr std::pair<std::string_view, Handler> kRoutes[] = {
      {"auth", &ClientSession::handle_auth},
      {"ping", &ClientSession::handle_ping},
      {"subscribe", &ClientSession::handle_subscribe},
      {"unsubscribe", &ClientSession::handle_unsubscribe},
      {"shell.create", &ClientSession::handle_shell_create},
      {"shell.input", &ClientSession::handle_shell_input},
      {"shell.resize", &ClientSession::handle_shell_resize},
      {"shell.kill", &ClientSession::handle_shell_kill},
      {"shell.list", &ClientSession::handle_shell_list},
      {"shell.dismiss", &ClientSession::handle_shell_dismiss},
      {"shell.pause", &ClientSession::handle_shell_pause},
      {"shell.resume", &ClientSession::handle_shell_resume},
      {"shell.share", &ClientSession::handle_shell_share},
      {"git.operation.start", &ClientSession::handle_git_start},
      {"git.operation.cancel", &ClientSession::handle_git_cancel},
  };
  for (const auto& [name, handler] : kRoutes) {
    if (name == type) return handler;
  }
  return nullptr;
}

void ClientSession::on_message(std::string_view text) {
  if (closing_) return;
  ++context_.metrics.ws_messages_in;
  protocol::ParsedRequest parsed = protocol::parse_request(text);
  request_id_ = !parsed.ok || parsed.request.id.is_null() ? ""
                : parsed.request.id.is_string()           ? parsed.request.id.get<std::string>()
                                                          : parsed.request.id.dump();
  if (!parsed.ok) {
    ++context_.metrics.request_errors_total;
    outbox_.send(protocol::error_frame(parsed.id, parsed.error));
    return;
  }
  const Request& request = parsed.request;
  const Handler handler = handler_for(request.type);
  if (handler == nullptr) {
    reply_error(request, code::kUnknownType, "unknown message type \"" + request.type + "\"", "type");
    return;
  }
  if (!authenticated_ && handler != &ClientSession::handle_auth && handler != &ClientSession::handle_ping) {
    reply_error(request, code::kUnauthenticated, "authenticate first: only auth and ping are accepted");
    return;
  }
  (this->*handler)(request);
}

void ClientSession::deliver(const protocol::SharedFrame& frame) {
  if (!closing_) outbox_.send(frame);
}

void ClientSession::on_input_drained(std::string_view terminal_id) {
  auto it = input_blocked_on_.find(terminal_id);
  if (it == input_blocked_on_.end()) return;
  input_blocked_on_.erase(it);
  if (input_blocked_on_.empty()) outbox_.resume_reading();
}

// --- replies -------------------------------------------------------------------------------------

void ClientSession::reply_error(const Request& request, std::string error_code, std::string message, std::string field) {
  ++context_.metrics.request_errors_total;
  outbox_.send(protocol::error_frame(request.id, {std::move(error_code), std::move(message), std::move(field)}));
}

void ClientSession::reply(const Request& request, std::string_view type, json data) {
  outbox_.send(protocol::reply_frame(type, request.id, std::move(data)));
}

void ClientSession::ack(const Request& request) {
  if (!request.id.is_null()) outbox_.send(protocol::ack_frame(request.id));
}

bool ClientSession::rejected(const Request& request, const protocol::DataReader& reader) {
  if (reader.ok()) return false;
  ++context_.metrics.request_errors_total;
  outbox_.send(protocol::error_frame(request.id, reader.error()));
  return true;
}

bool ClientSession::require_scope(const Request& request, auth::Scope scope) {
  if (principal_.scopes.allows(scope)) return true;
  static constexpr std::pair<auth::Scope, std::string_view> kNames[] = {
      {auth::Scope::terminal_create, "terminal:create"}, {auth::Scope::terminal_read, "terminal:read"},
      {auth::Scope::terminal_write, "terminal:write"},   {auth::Scope::git_run, "git:run"}};
  std::string name = "admin";
  for (const auto& [s, n] : kNames) {
    if (s == scope) name = n;
  }
  reply_error(request, code::kForbidden, request.type + " needs the scope " + name);
  return false;
}

hub::Terminal* ClientSession::readable_terminal(const Request& request, const std::string& id) {
  hub::Terminal* terminal = context_.hub.find_readable(principal_, id);
  if (terminal == nullptr) reply_error(request, code::kNotFound, "no such terminal", "data.terminalId");
  return terminal;
}

hub::Terminal* ClientSession::owned_terminal(const Request& request, const std::string& id, std::string_view action) {
  hub::Terminal* terminal = readable_terminal(request, id);
  if (terminal == nullptr) return nullptr;
  if (terminal->owner() != principal_.user && !principal_.scopes.has(auth::Scope::admin)) {
    reply_error(request, code::kForbidden, "only the owner or an admin may " + std::string(action) + " a terminal",
                "data.terminalId");
    return nullptr;
  }
  return terminal;
}

bool ClientSession::writable_and_running(const Request& request, hub::Terminal& terminal) {
  if (terminal.access_for(principal_) != auth::Access::write) {
    reply_error(request, code::kForbidden, "this terminal is shared with you read-only", "data.terminalId");
    return false;
  }
  if (!terminal.running()) {
    reply_error(request, code::kConflict, "the terminal has exited", "data.terminalId");
    return false;
  }
  return true;
}

// --- authentication ------------------------------------------------------------------------------

void ClientSession::handle_auth(const Request& request) {
  DataReader reader(request.data);
  auto token = reader.string("token", true);
  if (rejected(request, reader)) return;
  // An empty token is a failed authentication like any other bad token (unauthenticated, then 4401), as
  // an empty `Authorization: Bearer` is; only a missing or non-string `token` is a malformed request.
  if (token->empty()) {
    fail_authentication("empty token", request.id);
    return;
  }
  authenticate(*token, &request);
}

void ClientSession::fail_authentication(const std::string& reason, const json& id) {
  ++context_.metrics.auth_failures_total;
  audit("auth.failed", {{"reason", reason}});
  ++context_.metrics.request_errors_total;
  outbox_.send(protocol::error_frame(id, {code::kUnauthenticated, "authentication failed: " + reason, ""}));
  close(protocol::close_code::kAuthFailed, "authentication failed");
}

void ClientSession::authenticate(const std::string& token, const Request* request) {
  const json id = request != nullptr ? request->id : json();
  const int64_t now = unix_millis_now() / 1000;
  auth::VerifyResult result = context_.verifier.verify(token, now);
  if (!result.ok) {
    fail_authentication(result.reason, id);
    return;
  }
  if (authenticated_ && result.claims.sub != principal_.user) {
    reply_error(*request, code::kForbidden, "a refreshed token must be for the same user", "data.token");
    return;
  }
  const bool first = !authenticated_;
  authenticated_ = true;
  principal_.user = result.claims.sub;
  principal_.scopes = auth::ScopeSet::from_names(result.claims.scopes);
  uv_timer_stop(auth_timer_.get());
  arm_expiry_timer(result.claims.exp);
  std::string scopes;
  for (const std::string& name : principal_.scopes.names()) scopes += (scopes.empty() ? "" : " ") + name;
  audit(first ? "auth.ok" : "auth.refresh", {{"scopes", scopes}});
  const int64_t exp_ms = result.claims.exp * 1000;
  outbox_.send(protocol::reply_frame(
      "auth.ok", id,
      {{"user", principal_.user}, {"scopes", principal_.scopes.names()}, {"expiresAt", iso8601_utc(exp_ms)}}));
}

void ClientSession::arm_expiry_timer(int64_t exp_seconds) {
  const int64_t deadline_ms = (exp_seconds + context_.verifier.leeway_seconds()) * 1000;
  const int64_t delay = std::max<int64_t>(0, deadline_ms - unix_millis_now());
  uv_timer_start(
      expiry_timer_.get(),
      [](uv_timer_t* handle) {
        auto* self = static_cast<ClientSession*>(handle->data);
        if (self == nullptr) return;
        ++self->context_.metrics.auth_failures_total;
        self->outbox_.send(protocol::error_frame(json(), {code::kUnauthenticated, "token expired", ""}));
        self->close(protocol::close_code::kAuthFailed, "token expired");
      },
      static_cast<uint64_t>(delay), 0);
}

void ClientSession::handle_ping(const Request& request) { reply(request, "pong", json::object()); }

// --- channels ------------------------------------------------------------------------------------

void ClientSession::handle_subscribe(const Request& request) {
  DataReader reader(request.data);
  auto channel = reader.string("channel", true, true);
  auto since = reader.integer("since", false, 0, kMaxOffset);
  auto encoding = reader.one_of("encoding", false, {"utf8", "base64"});
  auto snapshot = reader.boolean("snapshot", false);
  const bool want_snapshot = snapshot.value_or(false);
  if (want_snapshot && since) reader.fail("snapshot", "snapshot and since exclude each other (since resumes a stream)");
  if (rejected(request, reader)) return;
  if (!require_scope(request, auth::Scope::terminal_read)) return;
  if (*channel == kLifecycleChannel) {
    if (want_snapshot) return reply_error(request, code::kBadMessage, "snapshot is for terminal channels", "data.snapshot");
    json terminals = json::array();
    for (hub::Terminal* t : context_.hub.list_readable(principal_)) terminals.push_back(t->to_json());
    context_.hub.subscribe_lifecycle(this);
    reply(request, "subscribed", {{"channel", *channel}, {"terminals", std::move(terminals)}});
    return;
  }
  hub::Terminal* terminal = nullptr;
  if (channel->starts_with(kTerminalChannelPrefix)) {
    terminal = context_.hub.find_readable(principal_, channel->substr(kTerminalChannelPrefix.size()));
  }
  if (terminal == nullptr) {
    reply_error(request, code::kNotFound, "no such channel", "data.channel");
    return;
  }
  // A mirror (cluster mode) may be a moment behind its owner: a `since` seen there is waited for.
  if (since && !terminal->mirror() && static_cast<uint64_t>(*since) > terminal->published_offset()) {
    reply_error(request, code::kBadMessage,
                "since is beyond the terminal's output (" + std::to_string(terminal->published_offset()) + ")",
                "data.since");
    return;
  }
  const auto chosen = encoding && *encoding == "base64" ? hub::Encoding::base64 : hub::Encoding::utf8;
  std::optional<uint64_t> start = since ? std::optional<uint64_t>(*since) : std::nullopt;
  // docs/protocol.md §6, Snapshots: the screen at the end of the output, then live output from there.
  std::optional<hub::Terminal::ScreenSnapshot> screen;
  if (want_snapshot) {
    screen = terminal->screen_snapshot();
    if (!screen) {
      return reply_error(request, code::kUnavailable, "snapshots are off on this daemon (snapshots = off)", "data.snapshot");
    }
    start = screen->offset;
  }
  const hub::ReplayRange replay = terminal->subscribe(this, chosen, start);
  reply(request, "subscribed",
        {{"channel", *channel},
         {"terminal", terminal->to_json()},
         {"replay", {{"from", replay.from}, {"to", replay.to}}},
         {"viewers", terminal->viewers_json()}});
  if (screen) {
    json data = {{"terminalId", terminal->id()}, {"offset", screen->offset}, {"cols", screen->cols},
                 {"rows", screen->rows},         {"exact", screen->exact}};
    if (!screen->exact) data["reason"] = screen->reason;
    if (chosen == hub::Encoding::base64) {
      data["encoding"] = "base64";
      data["data"] = protocol::base64_encode(screen->data);
    } else {
      // Cells are code points, so this is UTF-8; a title or an unfinished sequence of invalid bytes
      // becomes U+FFFD, as in shell.output.
      std::string literal;
      protocol::append_json_string(literal, screen->data);
      json text = json::parse(literal, nullptr, false);
      data["data"] = text.is_string() ? std::move(text) : json("");
    }
    outbox_.send(protocol::event_frame("shell.snapshot", *channel, std::move(data)));
  }
  terminal->catch_up(this);  // shell.gap if since left the ring, then the replay, then live output
}

void ClientSession::handle_unsubscribe(const Request& request) {
  DataReader reader(request.data);
  auto channel = reader.string("channel", true, true);
  if (rejected(request, reader)) return;
  if (*channel == kLifecycleChannel) {
    context_.hub.unsubscribe_lifecycle(this);
  } else if (channel->starts_with(kTerminalChannelPrefix)) {
    if (hub::Terminal* t = context_.hub.find_readable(principal_, channel->substr(kTerminalChannelPrefix.size()))) {
      t->unsubscribe(this);
    }
  }
  reply(request, "unsubscribed", {{"channel", *channel}});
}

// --- shells --------------------------------------------------------------------------------------

void ClientSession::handle_shell_create(const Request& request) {
  DataReader reader(request.data);
  auto command = reader.string_array("command", false);
  auto cwd = reader.string("cwd", false, true);
  auto env = reader.string_map("env", false);
  auto cols = reader.integer("cols", false, 1, 1000);
  auto rows = reader.integer("rows", false, 1, 1000);
  auto name = reader.string("name", false);
  auto subscribe = reader.boolean("subscribe", false);
  auto node = reader.string("node", false, true);
  auto stdio = reader.one_of("stdio", false, {"pty", "pipes"});
  const bool pipes = stdio && *stdio == "pipes";
  if (pipes && (cols || rows)) reader.fail(cols ? "cols" : "rows", "a terminal with stdio \"pipes\" has no size");
  if (command) {
    for (size_t i = 0; i < command->size(); ++i) {
      if (has_nul((*command)[i])) reader.fail("command." + std::to_string(i), "command must not contain NUL");
    }
  }
  if (cwd && has_nul(*cwd)) reader.fail("cwd", "cwd must not contain NUL");
  if (env) {
    for (const auto& [key, value] : *env) {
      if (key.empty() || key.find('=') != std::string::npos || has_nul(key) || has_nul(value)) {
        reader.fail("env." + key, "environment names must be non-empty without '=' or NUL; values without NUL");
      }
    }
  }
  if (name && name->size() > 256) reader.fail("name", "name is longer than 256 bytes");
  if (rejected(request, reader)) return;
  if (!require_scope(request, auth::Scope::terminal_create)) return;
  const bool subscribe_creator = subscribe.value_or(true);
  if (subscribe_creator && !require_scope(request, auth::Scope::terminal_read)) return;

  hub::CreateOptions options;
  if (command) options.command = std::move(*command);
  if (cwd) options.cwd = std::move(*cwd);
  if (env) options.env = std::move(*env);
  options.cols = static_cast<uint16_t>(cols.value_or(80));
  options.rows = static_cast<uint16_t>(rows.value_or(24));
  if (name) options.name = std::move(*name);
  options.pipes = pipes;
  if (node && *node != context_.hub.node()) {
    if (pipes) return reply_error(request, code::kBadMessage, "stdio \"pipes\" runs on this node only", "data.stdio");  // cluster mode: on another node (docs/cluster.md)
    create_on_node(request, *node, options, subscribe_creator);
    return;
  }
  hub::CreateResult created =
      context_.hub.create(principal_, options, subscribe_creator ? this : nullptr, hub::Encoding::utf8);
  switch (created.failure) {
    case hub::CreateFailure::none:
      break;
    case hub::CreateFailure::limit_total:
    case hub::CreateFailure::limit_user:
      return reply_error(request, code::kLimitExceeded, created.message);
    case hub::CreateFailure::cwd:
      return reply_error(request, code::kBadMessage, created.message, "data.cwd");
    case hub::CreateFailure::command:
      return reply_error(request, code::kBadMessage, created.message, "data.command");
    case hub::CreateFailure::system:
      return reply_error(request, code::kInternal, created.message);
  }
  audit("terminal.created", {{"terminal", created.terminal->id()}});
  reply(request, "shell.created", {{"terminal", created.terminal->to_json()}});
}

void ClientSession::create_on_node(const Request& request, const std::string& node, const hub::CreateOptions& options,
                                   bool subscribe_creator) {
  hub::RemoteCreator* creator = context_.hub.remote_creator();
  if (creator == nullptr) {
    reply_error(request, code::kNotFound, "no such node: this daemon is not part of a cluster", "data.node");
    return;
  }
  std::weak_ptr<int> alive = life_;
  creator->create_on(node, principal_, options,
                     [this, alive, request, subscribe_creator](hub::RemoteCreateResult result) {
                       if (alive.expired()) return;
                       if (result.terminal == nullptr) {
                         reply_error(request, result.code, result.message, result.field);
                         return;
                       }
                       audit("terminal.created", {{"terminal", result.terminal->id()}, {"node", result.terminal->node()}});
                       reply(request, "shell.created", {{"terminal", result.terminal->to_json()}});
                       if (subscribe_creator) {  // from its first byte, as a creator on the node itself
                         result.terminal->subscribe(this, hub::Encoding::utf8, 0);
                         result.terminal->catch_up(this);
                       }
                     });
}

void ClientSession::handle_shell_input(const Request& request) {
  DataReader reader(request.data);
  auto id = reader.string("terminalId", true, true);
  auto eof = reader.boolean("eof", false);
  const bool end_input = eof.value_or(false);
  auto data = reader.string("data", !end_input);  // {eof: true} alone ends the input
  auto encoding = reader.one_of("encoding", false, {"utf8", "base64"});
  if (data && encoding == "base64") {  // any bytes (docs/protocol.md §4, `shell.input`)
    if (auto bytes = protocol::base64_decode(*data)) {
      data = std::move(bytes);
    } else {
      reader.fail("data", "not canonical base64 (RFC 4648, with padding)");
    }
  }
  if (rejected(request, reader)) return;
  if (!require_scope(request, auth::Scope::terminal_write)) return;
  hub::Terminal* terminal = readable_terminal(request, *id);
  if (terminal == nullptr || !writable_and_running(request, *terminal)) return;
  if (end_input && (!terminal->spec().pipes || terminal->mirror())) {
    return reply_error(request, code::kBadMessage,
                       "eof needs a terminal created with stdio \"pipes\" on this node (on a PTY, send Ctrl-D as data)",
                       "data.eof");
  }
  if (terminal->input_ended()) {
    return reply_error(request, code::kConflict, "the terminal's input has ended (eof)", "data.terminalId");
  }
  if (data && !data->empty() && terminal->write_input(*data, this) && input_blocked_on_.insert(terminal->id()).second &&
      input_blocked_on_.size() == 1) {
    outbox_.pause_reading();
  }
  if (end_input) terminal->close_input();
  ack(request);
}

void ClientSession::handle_shell_resize(const Request& request) {
  DataReader reader(request.data);
  auto id = reader.string("terminalId", true, true);
  auto cols = reader.integer("cols", true, 1, 1000);
  auto rows = reader.integer("rows", true, 1, 1000);
  if (rejected(request, reader)) return;
  if (!require_scope(request, auth::Scope::terminal_write)) return;
  hub::Terminal* terminal = readable_terminal(request, *id);
  if (terminal == nullptr || !writable_and_running(request, *terminal)) return;
  if (terminal->spec().pipes) {
    return reply_error(request, code::kConflict, "a terminal with stdio \"pipes\" has no size", "data.terminalId");
  }
  ack(request);
  terminal->resize(static_cast<uint16_t>(*cols), static_cast<uint16_t>(*rows));
}

void ClientSession::handle_shell_kill(const Request& request) {
  DataReader reader(request.data);
  auto id = reader.string("terminalId", true, true);
  auto signal = reader.one_of("signal", false, {"SIGHUP", "SIGINT", "SIGTERM", "SIGKILL"});
  if (rejected(request, reader)) return;
  if (!require_scope(request, auth::Scope::terminal_write)) return;
  hub::Terminal* terminal = readable_terminal(request, *id);
  if (terminal == nullptr || !writable_and_running(request, *terminal)) return;
  ack(request);
  audit("terminal.killed", {{"terminal", terminal->id()}, {"signal", signal.value_or("SIGHUP")}});
  terminal->kill(pty::signal_from_name(signal.value_or("SIGHUP")), context_.limits.kill_grace_ms);
}

void ClientSession::handle_shell_list(const Request& request) {
  DataReader reader(request.data);
  auto state = reader.one_of("state", false, {"running", "exited"});
  if (rejected(request, reader)) return;
  if (!require_scope(request, auth::Scope::terminal_read)) return;
  json terminals = json::array();
  for (hub::Terminal* t : context_.hub.list_readable(principal_)) {
    if (state && (*state == "running") != t->running()) continue;
    terminals.push_back(t->to_json());
  }
  reply(request, "shell.list", {{"terminals", std::move(terminals)}});
}

// docs/protocol.md §4, `shell.dismiss`.
void ClientSession::handle_shell_dismiss(const Request& request) {
  DataReader reader(request.data);
  auto id = reader.string("terminalId", true, true);
  if (rejected(request, reader)) return;
  if (!require_scope(request, auth::Scope::terminal_write)) return;
  hub::Terminal* terminal = owned_terminal(request, *id, "dismiss");
  if (terminal == nullptr) return;
  if (terminal->running()) {
    reply_error(request, code::kConflict, "the terminal is still running: kill it first", "data.terminalId");
    return;
  }
  const std::string terminal_id = terminal->id();
  audit("terminal.dismissed", {{"terminal", terminal_id}});
  reply(request, "shell.dismissed", {{"terminalId", terminal_id}});
  context_.hub.dismiss(terminal_id);
}

void ClientSession::handle_shell_share(const Request& request) {
  DataReader reader(request.data);
  auto id = reader.string("terminalId", true, true);
  auto user = reader.string("user", true, true);
  auto mode = reader.one_of("mode", true, {"read", "write", "none"});
  if (rejected(request, reader)) return;
  // A token that may not write cannot let anyone else write (or read): sharing needs terminal:write
  // (docs/protocol.md §4, `shell.share`). Either grant is then at most what the token itself may do.
  if (!require_scope(request, auth::Scope::terminal_write)) return;
  hub::Terminal* terminal = owned_terminal(request, *id, "share");
  if (terminal == nullptr) return;
  if (*user == terminal->owner()) {
    reply_error(request, code::kBadMessage, "the owner always has write access", "data.user");
    return;
  }
  const auth::Access access = *mode == "write" ? auth::Access::write
                              : *mode == "read" ? auth::Access::read
                                                : auth::Access::none;
  audit("terminal.shared", {{"terminal", terminal->id()}, {"with", *user}, {"mode", *mode}});
  reply(request, "shell.shared", {{"terminalId", terminal->id()}, {"user", *user}, {"mode", *mode}});
  terminal->share(*user, access);
}

void ClientSession::handle_shell_pause(const Request& request) { set_paused(request, true); }
void ClientSession::handle_shell_resume(const Request& request) { set_paused(request, false); }

void ClientSession::set_paused(const Request& request, bool paused) {
  DataReader reader(request.data);
  auto id = reader.string("terminalId", true, true);
  if (rejected(request, reader)) return;
  if (!require_scope(request, auth::Scope::terminal_read)) return;
  hub::Terminal* terminal = readable_terminal(request, *id);
  if (terminal == nullptr) return;
  // Acknowledge first: a resume may send replayed output at once.
  if (!terminal->subscribed(this)) {
    reply_error(request, code::kConflict, "not subscribed to this terminal", "data.terminalId");
    return;
  }
  ack(request);
  terminal->set_paused(this, paused);
}

void ClientSession::on_room() {
  if (!closing_) context_.hub.on_room(this);
}

void ClientSession::handle_git_start(const Request& request) {
  hub::GitStartResult result;
  if (!principal_.scopes.allows(auth::Scope::git_run)) {
    // Schema errors come before the scope check (docs/protocol.md §3 Envelope).
    if (!context_.git.validate(request.data, &result) && result.error_code == code::kBadMessage) {
      return reply_error(request, result.error_code, result.message, result.field);
    }
    require_scope(request, auth::Scope::git_run);
    return;
  }
  result = context_.git.start(principal_, request.data, this);
  if (result.terminal == nullptr) return reply_error(request, result.error_code, result.message, result.field);
  audit("git.started", {{"terminal", result.terminal->id()}, {"operation", request.data.value("operation", "")}});
  reply(request, "git.operation.started", result.started);
  context_.git.publish_started(result);
}

void ClientSession::handle_git_cancel(const Request& request) {
  DataReader reader(request.data);
  auto id = reader.string("operationId", true, true);
  if (rejected(request, reader)) return;
  if (!require_scope(request, auth::Scope::git_run)) return;
  const std::string error = context_.git.cancel(principal_, *id);
  if (error == code::kNotFound) return reply_error(request, error, "no such git operation", "data.operationId");
  if (error == code::kForbidden) return reply_error(request, error, "read-only access", "data.operationId");
  if (error == code::kConflict) return reply_error(request, error, "the operation has ended", "data.operationId");
  audit("git.cancelled", {{"operation", *id}});
  ack(request);
}

}  // namespace ptyhub::session
