// RawTerminal: the local terminal in raw mode for an interactive session, restored on every way out.
//
// Ownership: at most one RawTerminal exists; it owns the saved termios state of one tty fd. Its destructor
// restores the state (normal exit, detach, errors). For SIGINT, SIGTERM, SIGHUP and SIGQUIT it installs a
// handler that restores the state with tcsetattr() — async-signal-safe — then lets the signal end the
// process with its default action, so a killed client never leaves the shell in raw mode. The saved
// state lives in static storage the handler can read; nothing else touches it.
#pragma once

#include <memory>
#include <string>

namespace ptyhub::cli {

class RawTerminal {
 public:
  // Puts `fd` (a tty) into raw mode; nullptr with `*why` when it cannot.
  static std::unique_ptr<RawTerminal> enter(int fd, std::string* why);
  ~RawTerminal();
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;

 private:
  RawTerminal() = default;
};

// The size of the tty `fd` as cols × rows; false when it is not a tty.
bool terminal_size(int fd, int* cols, int* rows);

}  // namespace ptyhub::cli
