// RawTerminal: see raw_terminal.hpp.
#include "cli/raw_terminal.hpp"

#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

namespace ptyhub::cli {

namespace {

constexpr int kRestoreSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

// Read by the signal handler: written before the handlers are installed and after they are removed.
struct termios g_saved;
int g_fd = -1;
volatile sig_atomic_t g_active = 0;
struct sigaction g_previous[sizeof kRestoreSignals / sizeof kRestoreSignals[0]];

// Restores the terminal, then ends the process with the signal's default action.
void on_fatal_signal(int signal) {
  if (g_active) {
    const int saved_errno = errno;
    tcsetattr(g_fd, TCSANOW, &g_saved);
    g_active = 0;
    errno = saved_errno;
  }
  struct sigaction fallback;
  std::memset(&fallback, 0, sizeof fallback);
  fallback.sa_handler = SIG_DFL;
  sigemptyset(&fallback.sa_mask);
  sigaction(signal, &fallback, nullptr);
  raise(signal);  // delivered when the handler returns (the signal is blocked while it runs)
}

}  // namespace

std::unique_ptr<RawTerminal> RawTerminal::enter(int fd, std::string* why) {
  if (g_fd >= 0) {
    if (why != nullptr) *why = "the terminal is already in raw mode";
    return nullptr;
  }
  struct termios saved;
  if (tcgetattr(fd, &saved) != 0) {
    if (why != nullptr) *why = std::string("cannot read the terminal's settings: ") + std::strerror(errno);
    return nullptr;
  }
  g_saved = saved;
  g_fd = fd;
  struct sigaction action;
  std::memset(&action, 0, sizeof action);
  action.sa_handler = on_fatal_signal;
  sigemptyset(&action.sa_mask);
  for (int signal : kRestoreSignals) sigaddset(&action.sa_mask, signal);  // one restore at a time
  for (size_t i = 0; i < std::size(kRestoreSignals); ++i) sigaction(kRestoreSignals[i], &action, &g_previous[i]);
  g_active = 1;
  struct termios raw = saved;
  cfmakeraw(&raw);
  raw.c_cc[VMIN] = 1;
  raw.c_cc[VTIME] = 0;
  if (tcsetattr(fd, TCSANOW, &raw) != 0) {
    if (why != nullptr) *why = std::string("cannot put the terminal into raw mode: ") + std::strerror(errno);
    std::unique_ptr<RawTerminal> undo(new RawTerminal());  // its destructor restores what was set
    return nullptr;
  }
  return std::unique_ptr<RawTerminal>(new RawTerminal());
}

RawTerminal::~RawTerminal() {
  tcsetattr(g_fd, TCSANOW, &g_saved);  // before g_active drops: a signal in between restores it again
  g_active = 0;
  for (size_t i = 0; i < std::size(kRestoreSignals); ++i) sigaction(kRestoreSignals[i], &g_previous[i], nullptr);
  g_fd = -1;
}

bool terminal_size(int fd, int* cols, int* rows) {
  struct winsize size;
  std::memset(&size, 0, sizeof size);
  if (ioctl(fd, TIOCGWINSZ, &size) != 0 || size.ws_col == 0 || size.ws_row == 0) return false;
  *cols = size.ws_col;
  *rows = size.ws_row;
  return true;
}

}  // namespace ptyhub::cli
