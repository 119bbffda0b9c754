// TerminalSession: see terminal_session.hpp.
#include "cli/terminal_session.hpp"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>

#include "cli/base64_encode.hpp"
#include "cli/exit_status.hpp"
#include "cli/json_fields.hpp"
#include "src/protocol/base64.hpp"

namespace ptyhub::cli {

namespace {

constexpr size_t kReadChunk = 48 * 1024;          // one shell.input carries at most this many bytes
constexpr size_t kMaxUnacked = 256 * 1024;        // stdin waits while this much input is unacknowledged
constexpr size_t kMaxQueued = 1024 * 1024;        // … or while this much is queued for the socket

// Writes all of `bytes` to `fd`, waiting when it is non-blocking and full. False on an error.
bool write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n > 0) {
      bytes.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      struct pollfd wait = {fd, POLLOUT, 0};
      ::poll(&wait, 1, -1);
      continue;
    }
    return false;
  }
  return true;
}

// The number of a signal named as the daemon names them ("SIGHUP"), 0 when unknown.
int signal_number(const std::string& name) {
  static const std::pair<const char*, int> kSignals[] = {
      {"SIGHUP", SIGHUP},   {"SIGINT", SIGINT},   {"SIGQUIT", SIGQUIT}, {"SIGILL", SIGILL},   {"SIGTRAP", SIGTRAP},
      {"SIGABRT", SIGABRT}, {"SIGBUS", SIGBUS},   {"SIGFPE", SIGFPE},   {"SIGKILL", SIGKILL}, {"SIGUSR1", SIGUSR1},
      {"SIGSEGV", SIGSEGV}, {"SIGUSR2", SIGUSR2}, {"SIGPIPE", SIGPIPE}, {"SIGALRM", SIGALRM}, {"SIGTERM", SIGTERM},
      {"SIGXCPU", SIGXCPU}, {"SIGXFSZ", SIGXFSZ}, {"SIGSYS", SIGSYS}};
  for (const auto& [text, number] : kSignals) {
    if (name == text) return number;
  }
  return 0;
}

}  // namespace

int exit_status_of(const json& data) {
  if (data.contains("exitCode") && data["exitCode"].is_number_integer()) return data["exitCode"].get<int>();
  if (data.contains("signal") && data["signal"].is_string()) {
    const int number = signal_number(data["signal"].get<std::string>());
    return 128 + (number != 0 ? number : 0);
  }
  return 1;
}

TerminalSession::TerminalSession(uv_loop_t* loop, ClientSettings settings, SessionSpec spec)
    : loop_(loop),
      spec_(std::move(spec)),
      client_(loop, std::move(settings),
              Client::Hooks{[this](bool resumed) { on_ready(resumed); }, [this](const json& m) { on_event(m); },
                            [this] { restore_terminal(); }}),
      detach_(spec_.detach_keys) {
  stdin_tty_ = isatty(STDIN_FILENO) != 0;
  stdout_tty_ = isatty(STDOUT_FILENO) != 0;
  terminal_id_ = spec_.terminal_id;
}

TerminalSession::~TerminalSession() { close_handles(); }

bool TerminalSession::interactive() const { return stdin_tty_ && spec_.mode != SessionMode::run_pipes; }

bool TerminalSession::start() {
  client_.set_resume(true);
  if (interactive()) {
    std::string why;
    raw_ = RawTerminal::enter(STDIN_FILENO, &why);
    if (!raw_) {
      client_.finish(exit_status::kUsage, why);
      return false;
    }
    if (spec_.mode != SessionMode::watch &&
        winch_.adopt_init(uv_signal_init(loop_, winch_.get()), this)) {
      uv_signal_start(
          winch_.get(),
          [](uv_signal_t* handle, int) {
            if (auto* self = static_cast<TerminalSession*>(handle->data)) self->send_resize();
          },
          SIGWINCH);
    }
  }
  // stdin: a poll where epoll accepts the fd, else (a regular file, /dev/null) a read per loop turn.
  const bool wants_stdin = spec_.mode != SessionMode::watch || interactive();
  if (wants_stdin && !stdin_poll_.adopt_init(uv_poll_init(loop_, stdin_poll_.get(), STDIN_FILENO), this)) {
    stdin_idle_.adopt_init(uv_idle_init(loop_, stdin_idle_.get()), this);
  }
  return client_.start();
}

void TerminalSession::close_handles() {
  stdin_poll_.close();
  stdin_idle_.close();
  winch_.close();
  restore_terminal();
}

void TerminalSession::restore_terminal() {
  if (!raw_) return;
  raw_.reset();
  if (stdout_tty_) write_all(STDOUT_FILENO, "\x1b[?25h");  // the cursor visible, whatever the terminal left
}

void TerminalSession::on_ready(bool resumed) {
  subscribed_ = false;
  if (resumed) {
    // Input the daemon did not acknowledge before the drop goes again, in order, before anything new.
    std::map<uint64_t, Input> again = std::move(unacked_);
    unacked_.clear();
    unacked_bytes_ = 0;
    for (auto& [sequence, input] : again) send_input(std::move(input.data), input.bytes);
  }
  if (!terminal_id_.empty()) {
    subscribe();
  } else if (spec_.mode == SessionMode::attach) {
    pick_newest_terminal();
  } else {
    create_terminal();
  }
}

void TerminalSession::create_terminal() {
  json data = json::object();
  if (!spec_.command.empty()) data["command"] = spec_.command;
  if (spec_.cwd) data["cwd"] = *spec_.cwd;
  if (spec_.name) data["name"] = *spec_.name;
  int cols = 0;
  int rows = 0;
  if (terminal_size(STDOUT_FILENO, &cols, &rows) || terminal_size(STDIN_FILENO, &cols, &rows)) {
    data["cols"] = std::min(cols, 1000);
    data["rows"] = std::min(rows, 1000);
  }
  if (spec_.mode == SessionMode::run_pipes) data["stdio"] = "pipes";
  client_.request("shell.create", std::move(data), [this](const json& reply) { on_created(reply); });
}

void TerminalSession::on_created(const json& reply) {
  if (text(reply, "type") == "error") {
    const json& error = field(reply, "data");
    if (spec_.mode == SessionMode::run_pipes &&
        (text(error, "field") == "data.stdio" || text(error, "message").find("stdio") != std::string::npos)) {
      refuse_pipes();
      return;
    }
    client_.finish_with_error(reply, "cannot create the terminal");
    return;
  }
  const json& terminal = field(field(reply, "data"), "terminal");
  terminal_id_ = text(terminal, "id");
  if (spec_.mode == SessionMode::run_pipes && text(terminal, "stdio") != "pipes") {
    // A daemon that does not know `stdio` ignores it (unknown fields are ignored) and made a PTY: end that
    // terminal rather than mangle the bytes.
    client_.request("shell.kill", {{"terminalId", terminal_id_}, {"signal", "SIGKILL"}},
                    [this](const json&) { refuse_pipes(); });
    return;
  }
  subscribe();
}

void TerminalSession::refuse_pipes() {
  client_.finish(exit_status::kRefused,
                 "this daemon does not support stdio pipes (shell.create {stdio: \"pipes\"}), so `run` cannot pass "
                 "stdin and stdout through unchanged; run it with a terminal on stdin, or update the daemon");
}

void TerminalSession::pick_newest_terminal() {
  client_.request("shell.list", {{"state", "running"}}, [this](const json& reply) {
    if (text(reply, "type") == "error") {
      client_.finish_with_error(reply, "cannot list the terminals");
      return;
    }
    std::string newest_time;
    const json& terminals = field(field(reply, "data"), "terminals");
    if (!terminals.is_array()) return client_.finish(exit_status::kRefused, "the daemon's terminal list is not a list");
    for (const json& terminal : terminals) {
      if (text(terminal, "kind") != "shell") continue;
      const std::string created = text(terminal, "createdAt");
      if (terminal_id_.empty() || created > newest_time) {
        terminal_id_ = text(terminal, "id");
        newest_time = created;
      }
    }
    if (terminal_id_.empty()) {
      client_.finish(exit_status::kNotFound, "no running terminal to attach to (ptyhub new starts one)");
      return;
    }
    subscribe();
  });
}

void TerminalSession::subscribe() {
  json data = {{"channel", "shell:terminal:" + terminal_id_}, {"encoding", "base64"}};
  if (cursor_.next() > 0) data["since"] = cursor_.next();
  client_.request("subscribe", std::move(data), [this](const json& reply) { on_subscribed(reply); });
}

void TerminalSession::on_subscribed(const json& reply) {
  if (text(reply, "type") == "error") {
    const std::string code = text(field(reply, "data"), "code");
    if (code == "not_found") {
      client_.finish(exit_status::kNotFound, "no terminal " + terminal_id_ + " (or you may not read it)");
      return;
    }
    client_.finish_with_error(reply, "cannot subscribe to terminal " + terminal_id_);
    return;
  }
  subscribed_ = true;
  if (interactive() && spec_.mode != SessionMode::watch) send_resize();
  update_stdin();
}

void TerminalSession::on_event(const json& message) {
  const std::string type = text(message, "type");
  if (!message.contains("data") || !message["data"].is_object()) return;
  const json& data = message["data"];
  if (text(data, "terminalId") != terminal_id_ && type != "unsubscribed") return;
  if (type == "shell.output") {
    on_output(data);
  } else if (type == "shell.gap") {
    cursor_.gap(count(data, "from"), count(data, "to"));
  } else if (type == "shell.exit") {
    on_exit(data);
  } else if (type == "unsubscribed" && text(data, "channel") == "shell:terminal:" + terminal_id_) {
    client_.finish(exit_status::kForbidden, "your access to terminal " + terminal_id_ + " was revoked");
  }
}

void TerminalSession::on_output(const json& data) {
  if (text(data, "encoding") != "base64") return;  // the creator's utf8 subscription before ours replaced it
  std::optional<std::string> bytes = protocol::base64_decode(text(data, "data"));
  if (!bytes) return;
  const std::string_view fresh = cursor_.accept(count(data, "offset"), count(data, "next"), *bytes);
  if (!fresh.empty() && !write_all(STDOUT_FILENO, fresh)) {
    client_.finish(exit_status::kRefused, std::string("cannot write to stdout: ") + std::strerror(errno));
  }
}

void TerminalSession::on_exit(const json& data) {
  const int status = exit_status_of(data);
  if (spec_.mode == SessionMode::run_pipes || spec_.mode == SessionMode::run_tty) {
    // A run's terminal has done its job: remove it from the list rather than leave it for exited_retention.
    client_.request("shell.dismiss", {{"terminalId", terminal_id_}}, [this, status](const json&) { client_.finish(status); });
    return;
  }
  client_.finish(status);
}

void TerminalSession::send_resize() {
  if (!client_.ready() || terminal_id_.empty()) return;
  int cols = 0;
  int rows = 0;
  if (!terminal_size(STDOUT_FILENO, &cols, &rows) && !terminal_size(STDIN_FILENO, &cols, &rows)) return;
  client_.send("shell.resize", {{"terminalId", terminal_id_}, {"cols", std::min(cols, 1000)}, {"rows", std::min(rows, 1000)}});
}

void TerminalSession::send_input(json data, size_t bytes) {
  const uint64_t sequence = next_sequence_++;
  unacked_bytes_ += bytes;
  client_.request("shell.input", data, [this, sequence](const json&) { on_input_acked(sequence); });
  unacked_.emplace(sequence, Input{std::move(data), bytes});
}

void TerminalSession::on_input_acked(uint64_t sequence) {
  auto found = unacked_.find(sequence);
  if (found == unacked_.end()) return;
  unacked_bytes_ -= found->second.bytes;
  unacked_.erase(found);
  update_stdin();
}

void TerminalSession::update_stdin() {
  const bool want = client_.ready() && subscribed_ && !stdin_eof_ && !stdin_broken_ && unacked_bytes_ < kMaxUnacked &&
                    client_.queued_bytes() < kMaxQueued && !client_.finished();
  if (want == stdin_reading_) return;
  stdin_reading_ = want;
  if (stdin_poll_.initialised()) {
    if (want) {
      uv_poll_start(stdin_poll_.get(), UV_READABLE, [](uv_poll_t* handle, int status, int) {
        auto* self = static_cast<TerminalSession*>(handle->data);
        if (self == nullptr) return;
        if (status < 0) self->on_stdin_eof();
        else self->read_stdin();
      });
    } else {
      uv_poll_stop(stdin_poll_.get());
    }
  } else if (stdin_idle_.initialised()) {
    if (want) {
      uv_idle_start(stdin_idle_.get(), [](uv_idle_t* handle) {
        if (auto* self = static_cast<TerminalSession*>(handle->data)) self->read_stdin();
      });
    } else {
      uv_idle_stop(stdin_idle_.get());
    }
  }
}

void TerminalSession::read_stdin() {
  char buffer[kReadChunk];
  const ssize_t n = ::read(STDIN_FILENO, buffer, sizeof buffer);
  if (n < 0) {
    if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) return;
    on_stdin_eof();
    return;
  }
  if (n == 0) {
    on_stdin_eof();
    return;
  }
  std::string_view typed(buffer, static_cast<size_t>(n));
  std::string forward;
  if (interactive() && !spec_.detach_keys.empty()) {
    DetachMatcher::Result result = detach_.feed(typed);
    if (result.detached) {
      restore_terminal();
      std::fprintf(stderr, "\r\n[detached from %s]\r\n", terminal_id_.c_str());
      client_.finish(exit_status::kOk);
      return;
    }
    forward = std::move(result.forward);
  } else {
    forward.assign(typed);
  }
  if (spec_.mode == SessionMode::watch || forward.empty()) return;  // read-only: nothing is ever sent
  const size_t bytes = forward.size();
  send_input({{"terminalId", terminal_id_}, {"encoding", "base64"}, {"data", base64_encode(forward)}}, bytes);
  update_stdin();
}

void TerminalSession::on_stdin_eof() {
  stdin_eof_ = true;
  update_stdin();
  if (spec_.mode == SessionMode::run_pipes) send_input({{"terminalId", terminal_id_}, {"eof", true}}, 0);
}

}  // namespace ptyhub::cli
