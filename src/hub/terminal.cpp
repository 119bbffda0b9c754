// Terminal: process, channel and subscribers of one PTY.
#include "src/hub/terminal.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <csignal>

#include "core/time_format.hpp"
#include "src/protocol/envelope.hpp"
#include "src/protocol/utf8.hpp"

namespace ptyhub::hub {
namespace {

using nlohmann::json;

uint64_t steady_millis() { return uv_hrtime() / 1000000; }

std::string base64(std::string_view raw) {
  std::string out(4 * ((raw.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(raw.data()), static_cast<int>(raw.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

}  // namespace

Terminal::Terminal(TerminalSpec spec, Metrics& metrics, ExitHook on_exit)
    : spec_(std::move(spec)), channel_("shell:terminal:" + spec_.id), metrics_(metrics),
      exit_hook_(std::move(on_exit)), created_at_ms_(unix_millis_now()) {}

Terminal::~Terminal() {
  if (pid_ == 0) return;  // never started
  if (!exited_) --metrics_.terminals_running;
  else --metrics_.terminals_exited;
}

bool Terminal::start(uv_loop_t* loop, std::vector<std::string> env, uint64_t drain_grace_ms,
                     pty::SpawnError* error) {
  pty::SpawnOptions options;
  options.argv = spec_.command;
  options.cwd = spec_.cwd;
  options.env = std::move(env);
  options.cols = spec_.cols;
  options.rows = spec_.rows;
  options.drain_grace_ms = drain_grace_ms;
  pty::PtyProcess::Callbacks callbacks;
  callbacks.on_output = [this](std::string_view bytes) { on_output(bytes); };
  callbacks.on_exit = [this](pty::ExitStatus status) { on_exit(status); };
  callbacks.on_input_drained = [this] { on_input_drained(); };
  process_ = pty::PtyProcess::spawn(loop, options, std::move(callbacks), error);
  if (!process_) return false;
  pid_ = process_->pid();
  started_steady_ms_ = steady_millis();
  ++metrics_.terminals_running;
  ++metrics_.terminals_created_total;
  return true;
}

auth::Access Terminal::access_for(const auth::Principal& principal) const {
  return auth::terminal_access(principal, spec_.owner, shares_);
}

json Terminal::to_json() const {
  json t = {
      {"id", spec_.id},
      {"channel", channel_},
      {"kind", "shell"},
      {"name", spec_.name},
      {"owner", spec_.owner},
      {"command", spec_.command},
      {"cwd", spec_.cwd},
      {"cols", spec_.cols},
      {"rows", spec_.rows},
      {"pid", pid_},
      {"createdAt", iso8601_utc(created_at_ms_)},
      {"state", exited_ ? "exited" : "running"},
      {"exitCode", nullptr},
      {"signal", nullptr},
      {"outputBytes", output_bytes_},
  };
  if (exited_) {
    if (exit_status_.signal != 0) t["signal"] = pty::signal_name(exit_status_.signal);
    else t["exitCode"] = exit_status_.exit_code;
  }
  return t;
}

void Terminal::subscribe(Subscriber* subscriber, Encoding encoding) {
  for (auto& entry : subscribers_) {
    if (entry.first == subscriber) {
      entry.second = encoding;
      return;
    }
  }
  subscribers_.emplace_back(subscriber, encoding);
}

void Terminal::unsubscribe(Subscriber* subscriber) {
  std::erase_if(subscribers_, [&](const auto& entry) { return entry.first == subscriber; });
}

bool Terminal::subscribed(const Subscriber* subscriber) const {
  return std::any_of(subscribers_.begin(), subscribers_.end(),
                     [&](const auto& entry) { return entry.first == subscriber; });
}

bool Terminal::write_input(std::string_view bytes, Subscriber* writer) {
  if (exited_ || !process_) return false;
  if (process_->write(bytes) == 0) metrics_.pty_bytes_in += bytes.size();
  if (!process_->input_above_high_water()) return false;
  if (std::find(input_waiters_.begin(), input_waiters_.end(), writer) == input_waiters_.end()) {
    input_waiters_.push_back(writer);
  }
  return true;
}

void Terminal::forget_writer(Subscriber* writer) { std::erase(input_waiters_, writer); }

void Terminal::on_input_drained() {
  std::vector<Subscriber*> waiters;
  waiters.swap(input_waiters_);
  for (Subscriber* waiter : waiters) waiter->on_input_drained(spec_.id);
}

void Terminal::resize(uint16_t cols, uint16_t rows) {
  if (exited_ || !process_) return;
  process_->resize(cols, rows);
  spec_.cols = cols;
  spec_.rows = rows;
  publish(protocol::event_frame("shell.resized", channel_, {{"terminalId", spec_.id}, {"cols", cols}, {"rows", rows}}));
}

void Terminal::kill(int signal, uint64_t grace_ms) {
  if (exited_ || !process_) return;
  const bool escalates = signal == SIGHUP || signal == SIGTERM;
  process_->signal_session(signal, escalates ? grace_ms : 0);
}

void Terminal::on_output(std::string_view bytes) {
  output_bytes_ += bytes.size();
  metrics_.pty_bytes_out += bytes.size();
  if (carry_.empty()) {
    const size_t complete = protocol::utf8_complete_prefix(bytes);
    if (complete > 0) publish_chunk(bytes.substr(0, complete));
    carry_.assign(bytes.substr(complete));
    return;
  }
  std::string joined = std::move(carry_);
  joined.append(bytes);
  const size_t complete = protocol::utf8_complete_prefix(joined);
  if (complete > 0) publish_chunk(std::string_view(joined).substr(0, complete));
  carry_.assign(joined, complete, std::string::npos);
}

void Terminal::publish_chunk(std::string_view raw) {
  const uint64_t offset = published_offset_;
  published_offset_ += raw.size();
  if (subscribers_.empty()) return;
  const bool any_utf8 = std::any_of(subscribers_.begin(), subscribers_.end(),
                                    [](const auto& e) { return e.second == Encoding::utf8; });
  const bool any_base64 = std::any_of(subscribers_.begin(), subscribers_.end(),
                                      [](const auto& e) { return e.second == Encoding::base64; });
  json data = {{"terminalId", spec_.id}, {"offset", offset}, {"next", published_offset_}};
  protocol::SharedFrame utf8_frame;
  protocol::SharedFrame base64_frame;
  if (any_utf8) {
    data["data"] = protocol::utf8_sanitize(raw);
    utf8_frame = protocol::event_frame("shell.output", channel_, data);
  }
  if (any_base64) {
    data["data"] = base64(raw);
    data["encoding"] = "base64";
    base64_frame = protocol::event_frame("shell.output", channel_, std::move(data));
  }
  publish(utf8_frame, base64_frame);
}

void Terminal::publish(const protocol::SharedFrame& frame, const protocol::SharedFrame& base64_frame) {
  for (const auto& [subscriber, encoding] : subscribers_) {
    const auto& chosen = (encoding == Encoding::base64 && base64_frame) ? base64_frame : frame;
    if (chosen) subscriber->deliver(chosen);
  }
}

void Terminal::on_exit(pty::ExitStatus status) {
  if (!carry_.empty()) {
    std::string rest = std::move(carry_);
    carry_.clear();
    publish_chunk(rest);
  }
  exited_ = true;
  exit_status_ = status;
  --metrics_.terminals_running;
  ++metrics_.terminals_exited;
  json data = {{"terminalId", spec_.id},
               {"exitCode", nullptr},
               {"signal", nullptr},
               {"durationMs", steady_millis() - started_steady_ms_},
               {"outputBytes", output_bytes_}};
  if (status.signal != 0) data["signal"] = pty::signal_name(status.signal);
  else data["exitCode"] = status.exit_code;
  publish(protocol::event_frame("shell.exit", channel_, std::move(data)));
  std::vector<Subscriber*> waiters;
  waiters.swap(input_waiters_);
  for (Subscriber* waiter : waiters) waiter->on_input_drained(spec_.id);
  if (exit_hook_) exit_hook_(*this);
}

}  // namespace ptyhub::hub
