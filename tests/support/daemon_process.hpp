// DaemonProcess: one ptyhubd child process for an integration test, plus small HTTP and /proc helpers.
//
// Ownership: a DaemonProcess owns a temporary directory (the JWT secret file and the daemon's --home),
// the child process and a reader thread that drains the child's stdout and stderr into an in-memory log
// (so the pipe never fills). The reader thread touches only the log, under a mutex; every other member is
// used from the test thread alone. The destructor SIGKILLs a child that is still running, reaps it,
// stops the reader and removes the directory. Waits are bounded: they block on the pipe, on a pidfd or on
// a condition variable until the condition holds or the deadline passes.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tests/support/ws_client.hpp"

namespace ptyhub::test {

// Scopes of an ordinary interactive user.
inline constexpr std::string_view kUserScopes = "terminal:create terminal:read terminal:write";

// How to start the daemon when the defaults do not fit (systemd tests).
struct DaemonLaunch {
  std::vector<std::string> extra_args;
  // Set in the daemon's environment on top of this process's own. HOME is the daemon's temporary home
  // (home()) unless set here.
  std::map<std::string, std::string> environment;
  // argv put in front of ptyhubd's (e.g. systemd-socket-activate -l ADDR); it must exec ptyhubd in place.
  std::vector<std::string> wrapper;
  bool listen_on_free_port = true;  // --listen 127.0.0.1:0
  // The secret as the credential "jwt-secret" in <tmp>/credentials (CREDENTIALS_DIRECTORY) instead of
  // --jwt-secret-file.
  bool secret_as_credential = false;
  bool wait_for_port = true;        // else the constructor returns once the process is started
};

class DaemonProcess {
 public:
  explicit DaemonProcess(const DaemonLaunch& launch, std::chrono::milliseconds start_timeout = std::chrono::seconds(10));
  // Starts ptyhubd on 127.0.0.1:0 with a fresh secret, --shell /bin/sh, --home <tmp> (also its HOME),
  // --log-level debug and `extra_args`, and waits until it logs the port it listens on.
  explicit DaemonProcess(std::vector<std::string> extra_args = {},
                         std::chrono::milliseconds start_timeout = std::chrono::seconds(10));
  ~DaemonProcess();
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;

  // True when the daemon announced its port before the start deadline.
  bool started() const { return port_ > 0; }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  const std::filesystem::path& home() const { return home_; }
  const std::filesystem::path& secret_file() const { return secret_file_; }
  const std::string& secret() const { return secret_; }

  // A token signed with this daemon's secret (HS256; iat now, exp now + ttl).
  std::string token(std::string_view sub, std::string_view scope = kUserScopes, std::int64_t ttl_seconds = 3600) const;
  // Connection options for this daemon: 127.0.0.1:<port>/ws, subprotocol ptyhub.v1, no credentials.
  WsOptions ws_options() const;

  // Sends `signal` to the daemon without waiting. False when it is no longer running.
  bool send_signal(int signal);
  // Sends `signal` and waits for the exit. Returns the wait status (see WIFEXITED), nullopt on deadline.
  std::optional<int> stop(int signal = SIGTERM, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Waits for the exit without signalling. Returns the wait status, nullopt on deadline.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);
  // True while the child has not been reaped and has not exited.
  bool running();

  // Everything the daemon wrote to stdout and stderr so far.
  std::string log() const;
  // The log lines in which a sanitizer (ASan, LSan, UBSan) reported a problem; empty when none.
  std::string sanitizer_findings() const;
  // Waits until the log contains `needle`.
  bool wait_for_log(std::string_view needle, std::chrono::milliseconds timeout) const;

 private:
  void spawn(const std::vector<std::string>& argv, const std::map<std::string, std::string>& environment = {});
  void read_output();
  void wait_for_port(std::chrono::milliseconds timeout);

  std::filesystem::path directory_;
  std::filesystem::path home_;
  std::filesystem::path secret_file_;
  std::string secret_;
  pid_t pid_ = -1;
  std::optional<int> exit_status_;
  int port_ = 0;

  int output_fd_ = -1;       // read end of the child's stdout/stderr pipe
  int stop_reader_fd_ = -1;  // write end of a pipe that wakes the reader to stop
  int stop_reader_read_fd_ = -1;
  std::thread reader_;
  mutable std::mutex log_mutex_;
  mutable std::condition_variable log_changed_;
  std::string log_;
  bool output_closed_ = false;
};

struct HttpResponse {
  int status = 0;
  std::string status_line;                      // "HTTP/1.1 200 OK"
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

// GET http://127.0.0.1:<port><path> over a plain socket (Connection: close). nullopt on a network
// error, a malformed response or the deadline.
std::optional<HttpResponse> http_get(int port, std::string_view path,
                                     std::chrono::milliseconds timeout = std::chrono::seconds(5),
                                     const std::vector<std::pair<std::string, std::string>>& extra_headers = {});

// Sends `request` (a whole request head, and body if any) to 127.0.0.1:<port> and reads the response.
std::optional<HttpResponse> http_exchange(int port, const std::string& request,
                                          std::chrono::milliseconds timeout = std::chrono::seconds(5));

// A process seen in /proc.
struct ProcessInfo {
  pid_t pid = 0;
  pid_t parent = 0;
  pid_t session = 0;
  char state = '?';  // 'Z' for a zombie
  std::string command;
};

// The process `pid` as /proc/<pid>/stat shows it; nullopt when it is gone.
std::optional<ProcessInfo> read_process(pid_t pid);
// Every process whose session id is `session`.
std::vector<ProcessInfo> processes_in_session(pid_t session);
// True while /proc/<pid> exists (a zombie counts).
bool process_exists(pid_t pid);
// Makes this test process adopt orphaned descendants, so that processes left behind by a stopped daemon
// can be observed and reaped here instead of by init.
void become_subreaper();
// Reaps zombies that are children of this process among `candidates` (never waits for live ones).
// Returns the pids it reaped.
std::vector<pid_t> reap_adopted_zombies(const std::vector<ProcessInfo>& candidates);

// Polls `condition` until it holds or `timeout` passes (for state outside any event loop, such as /proc).
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
                std::chrono::milliseconds interval = std::chrono::milliseconds(10));

}  // namespace ptyhub::test
