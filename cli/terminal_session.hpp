// TerminalSession: `attach`, `new`, `run` and `watch` — one terminal of the daemon shown on this one.
//
// The session subscribes to the terminal's channel with `encoding: "base64"` (exact bytes) and writes each
// new byte of its output to stdout once, by offset (OutputCursor). Keyboard input goes out as
// `shell.input {encoding: "base64"}` requests; those not yet acknowledged are kept and sent again after a
// resume, and stdin is not read while 256 KiB are unacknowledged (backpressure). With stdin a terminal it is
// put into raw mode (RawTerminal), SIGWINCH sends `shell.resize`, and the detach keys end the session
// without ending the terminal. `run` with stdin not a terminal asks for `stdio: "pipes"` and sends the end
// of stdin as `shell.input {eof: true}`. After a drop the Client resumes and the session subscribes again
// with `since` = the next offset it has not shown. `shell.exit` ends the run with the terminal's status.
//
// Ownership: the session owns its Client, the raw-mode guard and its uv handles (stdin poll or idle,
// SIGWINCH); loop thread only.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/client.hpp"
#include "cli/detach_keys.hpp"
#include "cli/output_cursor.hpp"
#include "cli/raw_terminal.hpp"
#include "core/uv_handle.hpp"

namespace ptyhub::cli {

enum class SessionMode {
  attach,     // an existing terminal, interactive
  create,     // `new`: a new terminal, interactive, detachable
  run_tty,    // `run` with a terminal on stdin: as create, without detaching
  run_pipes,  // `run` with stdin not a terminal: stdio pipes, bytes unchanged, EOF passed on
  watch,      // an existing terminal, read-only
};

struct SessionSpec {
  SessionMode mode = SessionMode::attach;
  std::string terminal_id;            // attach, watch ("" for attach: the newest running shell)
  std::vector<std::string> command;   // create, run: argv ("" for the daemon's shell)
  std::optional<std::string> name;
  std::optional<std::string> cwd;
  std::string detach_keys;            // bytes; empty: no detaching
};

class TerminalSession {
 public:
  TerminalSession(uv_loop_t* loop, ClientSettings settings, SessionSpec spec);
  ~TerminalSession();
  TerminalSession(const TerminalSession&) = delete;
  TerminalSession& operator=(const TerminalSession&) = delete;

  // Enters raw mode when interactive and starts connecting. False when the run already ended.
  bool start();
  Client& client() { return client_; }
  // Closes the session's own handles and restores the terminal (before the loop drains).
  void close_handles();

 private:
  struct Input {
    json data;
    size_t bytes = 0;
  };

  // True when stdin is a terminal used as one (raw mode, resize, detach keys).
  bool interactive() const;
  // Authenticated (again): resend unacknowledged input, then create, pick or subscribe.
  void on_ready(bool resumed);
  // A message that answers no request: output, gaps, the exit, a revoked share.
  void on_event(const json& message);
  // shell.create for `new` and `run` (stdio pipes for `run` without a terminal on stdin).
  void create_terminal();
  // shell.created, or the refusal.
  void on_created(const json& reply);
  // attach without TERMINAL: the newest running shell from shell.list.
  void pick_newest_terminal();
  // subscribe from the cursor, base64.
  void subscribe();
  // subscribed, or the refusal: start reading stdin.
  void on_subscribed(const json& reply);
  // shell.output: the new bytes to stdout.
  void on_output(const json& data);
  // shell.exit: the run ends with the terminal's status.
  void on_exit(const json& data);
  // shell.resize with this terminal's size.
  void send_resize();
  // shell.input, kept until acknowledged.
  void send_input(json data, size_t bytes);
  // An input's ack: forget it, maybe read stdin again.
  void on_input_acked(uint64_t sequence);
  // Starts or stops reading stdin as the connection, the subscription and the backlog allow.
  void update_stdin();
  // One read of stdin: detach keys, then input.
  void read_stdin();
  // The end of stdin: stop reading; with pipes, {eof: true}.
  void on_stdin_eof();
  // Ends the run: this daemon has no stdio pipes.
  void refuse_pipes();
  // Leaves raw mode (idempotent).
  void restore_terminal();

  uv_loop_t* loop_;
  SessionSpec spec_;
  Client client_;
  OutputCursor cursor_;
  DetachMatcher detach_;
  std::unique_ptr<RawTerminal> raw_;
  bool stdin_tty_ = false;
  bool stdout_tty_ = false;
  std::string terminal_id_;
  bool subscribed_ = false;
  bool stdin_eof_ = false;
  bool stdin_broken_ = false;
  UvHandle<uv_poll_t> stdin_poll_;  // stdin is a tty, pipe or socket
  UvHandle<uv_idle_t> stdin_idle_;  // stdin is a file (epoll refuses those): read once per loop turn
  bool stdin_reading_ = false;
  UvHandle<uv_signal_t> winch_;
  std::map<uint64_t, Input> unacked_;  // by sequence, in order
  uint64_t next_sequence_ = 1;
  size_t unacked_bytes_ = 0;
};

// The exit status for a shell.exit's data: its exitCode, or 128 + the signal's number.
int exit_status_of(const json& exit_data);

}  // namespace ptyhub::cli
