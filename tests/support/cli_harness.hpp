// Helpers for the command-line client's end-to-end tests (tests/integration/cli_*_test.cpp).
//
//   Tmux      a tmux server of its own (-S <socket in a temp dir>, -f /dev/null) with one session whose
//             pane runs a shell; keys typed with send-keys, the screen read with capture-pane. The
//             destructor kills that server by its socket.
//   TcpProxy  a TCP relay on 127.0.0.1:0 to the daemon's port, in a thread of its own, whose current
//             connections the test can cut (both sockets closed) to drop the client's connection for real.
//   run_cli   runs `ptyhub` with arguments, environment and stdin, bounded by a deadline, and returns its
//             exit status, stdout and stderr.
// Waits poll a condition until a deadline; nothing sleeps to synchronise.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tests/support/temp_dir.hpp"

namespace ptyhub::test {

class Tmux {
 public:
  // Starts the server and a session of cols × rows running `command` (through /bin/sh -c).
  Tmux(const std::string& command, int cols, int rows);
  ~Tmux();
  Tmux(const Tmux&) = delete;
  Tmux& operator=(const Tmux&) = delete;

  bool started() const { return started_; }
  // Types `text` literally.
  void type(std::string_view text);
  // Sends tmux key names ("Enter", "C-\\", "d").
  void keys(const std::vector<std::string>& names);
  // Types `line` and Enter.
  void line(std::string_view text);
  // The pane's visible screen plus its history, one line per row (joined wrapped lines).
  std::string capture();
  // Waits until capture() contains `needle`; true when it did before the deadline.
  bool wait_for(std::string_view needle, std::chrono::milliseconds timeout = std::chrono::seconds(15));
  // Waits until capture() contains `needle` at least `count` times.
  bool wait_for_count(std::string_view needle, size_t count, std::chrono::milliseconds timeout = std::chrono::seconds(15));
  // Resizes the window (and so the pane) to cols × rows.
  void resize(int cols, int rows);
  // The pid of the pane shell's child process named `name` (its /proc comm), 0 when there is none.
  pid_t child_of_pane(const std::string& name);
  const std::filesystem::path& dir() const { return dir_.path(); }

 private:
  // Runs tmux with `args` against this server; returns its stdout.
  std::string tmux(const std::vector<std::string>& args, int* status = nullptr);

  TempDir dir_{"ptyhub-cli-tmux"};
  std::string socket_;
  bool started_ = false;
};

class TcpProxy {
 public:
  explicit TcpProxy(int target_port);
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  int port() const { return port_; }
  // Closes every connection relayed now; new ones are accepted as before.
  void cut();
  // Connections accepted so far.
  int accepted() const { return accepted_.load(); }

 private:
  void run();

  int target_port_;
  int port_ = 0;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  std::atomic<bool> stop_{false};
  std::atomic<int> cut_requests_{0};
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

struct CliResult {
  int status = -1;  // exit status; 128 + N for signal N; -1 when it overran the deadline (then killed)
  std::string out;
  std::string err;
};

// Runs PTYHUB_CLI_PATH with `args`; `env` is added to this process's environment; stdin from `stdin_file`.
CliResult run_cli(const std::vector<std::string>& args, const std::map<std::string, std::string>& env,
                  const std::filesystem::path& stdin_file = "/dev/null",
                  std::chrono::milliseconds timeout = std::chrono::seconds(60));

// Runs `/bin/sh -c command` the same way (for pipelines such as `seq 100000 | ptyhub run -- wc -l`).
CliResult run_sh(const std::string& command, const std::map<std::string, std::string>& env,
                 std::chrono::milliseconds timeout = std::chrono::seconds(60));

// A shell word: `text` in single quotes.
std::string shell_quote(std::string_view text);

}  // namespace ptyhub::test
