// Terminal: one PTY process with its channel `shell:terminal:<id>`, its subscribers and its state.
//
// Owns its PtyProcess and the timer that removes it after exit. Publishes shell.output, shell.resized
// and shell.exit to its subscribers; each event is encoded once and the same frame is queued for every
// subscriber. Output chunks end on UTF-8 boundaries (a split character is carried to the next read)
// and carry raw-byte offsets. Owned by the Hub; loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "auth/permissions.hpp"
#include "core/uv_handle.hpp"
#include "pty/pty_process.hpp"
#include "src/hub/metrics.hpp"
#include "src/hub/subscriber.hpp"

namespace ptyhub::hub {

struct TerminalSpec {
  std::string id;
  std::string owner;
  std::string name;
  std::vector<std::string> command;
  std::string cwd;
  uint16_t cols = 80;
  uint16_t rows = 24;
};

class Terminal {
 public:
  // Called once after shell.exit was published.
  using ExitHook = std::function<void(Terminal&)>;

  Terminal(TerminalSpec spec, Metrics& metrics, ExitHook on_exit);
  ~Terminal();
  Terminal(const Terminal&) = delete;
  Terminal& operator=(const Terminal&) = delete;

  // Starts the process. Subscribe the creator before calling it so no output is missed.
  bool start(uv_loop_t* loop, std::vector<std::string> env, uint64_t drain_grace_ms, pty::SpawnError* error);

  const std::string& id() const { return spec_.id; }
  const std::string& channel() const { return channel_; }
  const std::string& owner() const { return spec_.owner; }
  bool running() const { return !exited_; }
  // Offset the next chunk sent to subscribers starts at (raw bytes, excluding a carried partial character).
  uint64_t published_offset() const { return published_offset_; }
  auth::Access access_for(const auth::Principal& principal) const;
  nlohmann::json to_json() const;

  void subscribe(Subscriber* subscriber, Encoding encoding);
  void unsubscribe(Subscriber* subscriber);
  bool subscribed(const Subscriber* subscriber) const;

  // Writes input; when the PTY's queue is above its high-water mark, `writer` is told on_input_drained()
  // once it drains, and the caller should stop reading that client meanwhile. Returns true when paused.
  bool write_input(std::string_view bytes, Subscriber* writer);
  void forget_writer(Subscriber* writer);
  void resize(uint16_t cols, uint16_t rows);
  // Signals every process of the session; SIGHUP and SIGTERM escalate to SIGKILL after `grace_ms`.
  void kill(int signal, uint64_t grace_ms);

 private:
  void on_output(std::string_view bytes);
  void publish_chunk(std::string_view raw);
  void on_exit(pty::ExitStatus status);
  void on_input_drained();
  void publish(const protocol::SharedFrame& frame, const protocol::SharedFrame& base64_frame = nullptr);

  TerminalSpec spec_;
  std::string channel_;
  Metrics& metrics_;
  ExitHook exit_hook_;
  std::unique_ptr<pty::PtyProcess> process_;
  std::map<std::string, auth::Access, std::less<>> shares_;
  std::vector<std::pair<Subscriber*, Encoding>> subscribers_;
  std::vector<Subscriber*> input_waiters_;
  std::string carry_;                // bytes of a character split across reads
  uint64_t output_bytes_ = 0;        // raw bytes read so far
  uint64_t published_offset_ = 0;    // raw bytes published so far
  int64_t created_at_ms_ = 0;
  uint64_t started_steady_ms_ = 0;
  pid_t pid_ = 0;
  bool exited_ = false;
  pty::ExitStatus exit_status_{};
};

}  // namespace ptyhub::hub
