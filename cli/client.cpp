// Client: see client.hpp.
#include "cli/client.hpp"

#include <cstdio>

#include "cli/exit_status.hpp"
#include "cli/json_fields.hpp"

namespace ptyhub::cli {

namespace {

constexpr int kCloseServiceRestart = 1012;  // the daemon's live upgrade: come back at once
constexpr int kCloseProtocolError = 1002;
constexpr int kCloseAuthFailed = 4401;
constexpr std::chrono::milliseconds kMaxBackoff{2000};

}  // namespace

Client::Client(uv_loop_t* loop, ClientSettings settings, Hooks hooks)
    : loop_(loop), settings_(std::move(settings)), hooks_(std::move(hooks)) {
  retry_timer_.adopt_init(uv_timer_init(loop_, retry_timer_.get()), this);
}

Client::~Client() = default;

bool Client::start() {
  if (settings_.ws.token.empty()) {
    finish(exit_status::kUnauthenticated, "no token: set PTYHUB_TOKEN or give --token-file FILE");
    return false;
  }
  std::string why;
  ws_ = WsConnection::create(loop_, settings_.ws, this, &why);
  if (!ws_) {
    finish(exit_status::kCannotConnect, why);
    return false;
  }
  if (!ws_->connect(&why)) {
    finish(exit_status::kCannotConnect, "cannot connect to " + settings_.url + ": " + why);
    return false;
  }
  return true;
}

void Client::request(std::string_view type, json data, ReplyHandler on_reply) {
  const int64_t id = next_id_++;
  pending_.emplace(id, std::move(on_reply));
  ws_->send(json{{"type", type}, {"id", id}, {"data", std::move(data)}}.dump());
}

void Client::send(std::string_view type, json data) {
  ws_->send(json{{"type", type}, {"data", std::move(data)}}.dump());
}

void Client::finish(int status, std::string_view message) {
  if (finished_) return;
  finished_ = true;
  status_ = status;
  if (hooks_.on_finish) hooks_.on_finish();
  if (!message.empty()) std::fprintf(stderr, "ptyhub: %.*s\n", static_cast<int>(message.size()), message.data());
  uv_stop(loop_);
}

void Client::finish_with_error(const json& reply, std::string_view what) {
  const json& data = field(reply, "data");
  const std::string code = text(data, "code", "error");
  const std::string message = text(data, "message", code);
  finish(exit_status_for_error(code), std::string(what) + ": " + message);
}

bool Client::begin_close() {
  if (!ws_ || !ws_->open()) return false;
  closing_ = true;
  ws_->close();
  uv_timer_start(
      retry_timer_.get(), [](uv_timer_t* timer) { uv_stop(timer->loop); }, 500, 0);
  return true;
}

void Client::shutdown() {
  if (retry_timer_.initialised()) retry_timer_.close();
  if (ws_) ws_->shutdown();
}

void Client::on_message(std::string_view payload) {
  if (finished_) return;
  json message = json::parse(payload, nullptr, false);
  if (message.is_discarded() || !message.is_object()) return;
  const std::string type = text(message, "type");
  const bool has_id = message.contains("id") && message["id"].is_number_integer();
  if (!has_id && type == "auth.ok") {
    pending_.clear();  // requests made while the connection was down never went out
    ready_ = true;
    const bool resumed = ever_ready_;
    ever_ready_ = true;
    resuming_ = false;
    backoff_ = std::chrono::milliseconds(0);
    if (hooks_.on_ready) hooks_.on_ready(resumed);
    return;
  }
  if (!has_id && type == "error") {
    const json& data = field(message, "data");
    if (text(data, "code") == "unauthenticated") {
      finish(exit_status::kUnauthenticated, "the daemon rejected the token: " + text(data, "message", "unauthenticated"));
      return;
    }
  }
  if (has_id) {
    auto found = pending_.find(message["id"].get<int64_t>());
    if (found != pending_.end()) {
      ReplyHandler handler = std::move(found->second);
      pending_.erase(found);
      handler(message);
      return;
    }
  }
  if (hooks_.on_event) hooks_.on_event(message);
}

void Client::on_closed(bool was_open, int code, std::string_view reason) {
  ready_ = false;
  pending_.clear();
  if (closing_) uv_stop(loop_);
  if (finished_) return;
  if (!ever_ready_ && !resuming_) {
    if (code == kCloseAuthFailed) {
      finish(exit_status::kUnauthenticated, "the daemon rejected the token");
    } else if (was_open) {
      finish(exit_status::kCannotConnect, "the daemon at " + settings_.url + " closed the connection (" +
                                              std::to_string(code) + (reason.empty() ? "" : " " + std::string(reason)) + ")");
    } else {
      finish(exit_status::kCannotConnect, "cannot connect to " + settings_.url + ": " + std::string(reason));
    }
    return;
  }
  on_dropped(was_open ? code : 0, reason);
}

void Client::on_dropped(int code, std::string_view reason) {
  if (code == kCloseAuthFailed) {
    finish(exit_status::kUnauthenticated, "the daemon ended the session: the token was rejected or expired");
    return;
  }
  if (!resume_) {
    finish(exit_status::kConnectionLost, "the connection to the daemon was lost (" + std::to_string(code) + ")");
    return;
  }
  const uint64_t now = uv_now(loop_);
  if (!resuming_) {
    resuming_ = true;
    resume_deadline_ms_ = now + static_cast<uint64_t>(settings_.resume_timeout.count());
    backoff_ = std::chrono::milliseconds(0);
  }
  if (now >= resume_deadline_ms_) {
    finish(exit_status::kConnectionLost, "the connection to the daemon was lost and could not be resumed" +
                                             (reason.empty() ? std::string() : ": " + std::string(reason)));
    return;
  }
  // libwebsockets 4.1.6 holds 1012 for an invalid close code (it predates RFC 6455's registry additions) and
  // reports it as 1002, keeping the reason: the daemon's "service restart" is the live upgrade all the same.
  const bool upgrade = code == kCloseServiceRestart || (code == kCloseProtocolError && reason == "service restart");
  if (upgrade) {
    backoff_ = std::chrono::milliseconds(0);  // the daemon is back within a moment: no backoff
    attempt();
    return;
  }
  const std::chrono::milliseconds longest = std::max(kMaxBackoff, settings_.resume_delay);
  backoff_ = backoff_.count() == 0 ? settings_.resume_delay : std::min(backoff_ * 2, longest);
  schedule_resume(backoff_);
}

void Client::schedule_resume(std::chrono::milliseconds delay) {
  uv_timer_start(
      retry_timer_.get(),
      [](uv_timer_t* timer) {
        if (auto* self = static_cast<Client*>(timer->data)) self->attempt();
      },
      static_cast<uint64_t>(delay.count()), 0);
}

void Client::attempt() {
  if (finished_) return;
  std::string why;
  if (!ws_->connect(&why)) on_dropped(0, why);  // failed at once: counts as a failed attempt
}

}  // namespace ptyhub::cli
