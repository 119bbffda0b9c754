// DaemonProcess, http_get and the /proc helpers: see daemon_process.hpp for ownership and threading.
#include "tests/support/daemon_process.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

#include "auth/jwt.hpp"

#ifndef PTYHUBD_PATH
#error "PTYHUBD_PATH must name the ptyhubd binary"
#endif

namespace ptyhub::test {

namespace {

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1000 * 60));
}

std::string random_hex(std::size_t bytes) {
  std::string raw(bytes, '\0');
  std::ifstream urandom("/dev/urandom", std::ios::binary);
  urandom.read(raw.data(), static_cast<std::streamsize>(raw.size()));
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char c : raw) {
    hex.push_back(kDigits[c >> 4]);
    hex.push_back(kDigits[c & 15]);
  }
  return hex;
}

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

}  // namespace

DaemonProcess::DaemonProcess(std::vector<std::string> extra_args, std::chrono::milliseconds start_timeout)
    : DaemonProcess(
          [&] {
            DaemonLaunch launch;
            launch.extra_args = std::move(extra_args);
            return launch;
          }(),
          start_timeout) {}

DaemonProcess::DaemonProcess(const DaemonLaunch& launch, std::chrono::milliseconds start_timeout) {
  std::string pattern = (std::filesystem::temp_directory_path() / "ptyhub-it-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) return;
  directory_ = pattern;
  home_ = directory_ / "home";
  std::filesystem::create_directory(home_);
  secret_file_ = directory_ / "jwt.secret";
  secret_ = random_hex(32);
  {
    std::ofstream out(secret_file_, std::ios::binary);
    out << secret_;
  }
  std::filesystem::permissions(secret_file_, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);

  std::map<std::string, std::string> environment = launch.environment;
  // Hermetic shells: HOME is the daemon's temporary home unless the launch names one, so no shell (nor git)
  // reads the start-up files of the user running the tests (a version manager in ~/.bashrc whose lock file,
  // left by a shell killed during start-up, makes every later shell wait).
  environment.emplace("HOME", home_.string());
  std::vector<std::string> argv = launch.wrapper;
  argv.push_back(PTYHUBD_PATH);
  if (launch.listen_on_free_port) argv.insert(argv.end(), {"--listen", "127.0.0.1:0"});
  if (launch.secret_as_credential) {
    const std::filesystem::path credentials = directory_ / "credentials";
    std::filesystem::create_directory(credentials);
    std::filesystem::copy_file(secret_file_, credentials / "jwt-secret");
    environment["CREDENTIALS_DIRECTORY"] = credentials.string();
  } else {
    argv.insert(argv.end(), {"--jwt-secret-file", secret_file_.string()});
  }
  argv.insert(argv.end(), {"--shell", "/bin/sh", "--home", home_.string(), "--log-level", "debug"});
  argv.insert(argv.end(), launch.extra_args.begin(), launch.extra_args.end());
  spawn(argv, environment);
  if (pid_ > 0 && launch.wait_for_port) wait_for_port(start_timeout);
}

DaemonProcess::~DaemonProcess() {
  if (pid_ > 0 && !exit_status_) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    exit_status_ = status;
  }
  if (stop_reader_fd_ >= 0) {
    char byte = 0;
    [[maybe_unused]] auto written = ::write(stop_reader_fd_, &byte, 1);
  }
  if (reader_.joinable()) reader_.join();
  close_fd(output_fd_);
  close_fd(stop_reader_fd_);
  close_fd(stop_reader_read_fd_);
  if (!directory_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(directory_, ignored);
  }
}

void DaemonProcess::spawn(const std::vector<std::string>& argv, const std::map<std::string, std::string>& environment) {
  // The environment is built before fork: only async-signal-safe calls may follow it.
  std::vector<std::string> env_strings;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    if (environment.count(std::string(text.substr(0, text.find('=')))) == 0) env_strings.emplace_back(text);
  }
  for (const auto& [name, value] : environment) env_strings.push_back(name + "=" + value);
  std::vector<char*> envp;
  for (auto& entry : env_strings) envp.push_back(entry.data());
  envp.push_back(nullptr);
  int output[2];
  int stopper[2];
  if (::pipe2(output, O_CLOEXEC) != 0) return;
  if (::pipe2(stopper, O_CLOEXEC) != 0) {
    ::close(output[0]);
    ::close(output[1]);
    return;
  }
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);

  std::vector<char*> args;
  for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);

  pid_t child = ::fork();
  if (child == 0) {
    // Only async-signal-safe calls between fork and exec.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
    ::dup2(output[1], STDOUT_FILENO);
    ::dup2(output[1], STDERR_FILENO);
    ::syscall(SYS_close_range, 3U, ~0U, 0U);
    ::execve(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  ::close(output[1]);
  if (null_fd >= 0) ::close(null_fd);
  if (child < 0) {
    ::close(output[0]);
    ::close(stopper[0]);
    ::close(stopper[1]);
    return;
  }
  pid_ = child;
  output_fd_ = output[0];
  stop_reader_read_fd_ = stopper[0];
  stop_reader_fd_ = stopper[1];
  reader_ = std::thread([this] { read_output(); });
}

// Reader thread: appends whatever the child writes to log_ until EOF or until asked to stop.
void DaemonProcess::read_output() {
  char buffer[8192];
  for (;;) {
    struct pollfd fds[2] = {{output_fd_, POLLIN, 0}, {stop_reader_read_fd_, POLLIN, 0}};
    int ready = ::poll(fds, 2, -1);
    if (ready < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[0].revents != 0) {
      ssize_t n = ::read(output_fd_, buffer, sizeof buffer);
      if (n > 0) {
        std::lock_guard lock(log_mutex_);
        log_.append(buffer, static_cast<std::size_t>(n));
        log_changed_.notify_all();
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      break;  // EOF or error
    }
    if (fds[1].revents != 0) {
      // Asked to stop: take what is immediately available, then leave.
      for (;;) {
        struct pollfd last = {output_fd_, POLLIN, 0};
        if (::poll(&last, 1, 0) <= 0) break;
        ssize_t n = ::read(output_fd_, buffer, sizeof buffer);
        if (n <= 0) break;
        std::lock_guard lock(log_mutex_);
        log_.append(buffer, static_cast<std::size_t>(n));
      }
      break;
    }
  }
  std::lock_guard lock(log_mutex_);
  output_closed_ = true;
  log_changed_.notify_all();
}

void DaemonProcess::wait_for_port(std::chrono::milliseconds timeout) {
  // A TLS listener is announced as "listening on https://127.0.0.1:<port>".
  static constexpr std::string_view kMarkers[] = {"listening on 127.0.0.1:", "listening on https://127.0.0.1:"};
  std::unique_lock lock(log_mutex_);
  int port = 0;
  auto found = [&] {
    for (std::string_view marker : kMarkers) {
      for (std::size_t at = log_.find(marker); at != std::string::npos; at = log_.find(marker, at + 1)) {
        std::size_t digits = at + marker.size();
        std::size_t end = digits;
        while (end < log_.size() && log_[end] >= '0' && log_[end] <= '9') ++end;
        if (end == digits || end == log_.size()) continue;  // the line is not complete yet
        port = std::atoi(log_.substr(digits, end - digits).c_str());
        if (port > 0) return true;
      }
    }
    return output_closed_;
  };
  log_changed_.wait_for(lock, timeout, found);
  port_ = port;
}

std::string DaemonProcess::token(std::string_view sub, std::string_view scope, std::int64_t ttl_seconds) const {
  return ptyhub::auth::mint_token(secret_, sub, scope, static_cast<std::int64_t>(std::time(nullptr)), ttl_seconds);
}

WsOptions DaemonProcess::ws_options() const {
  WsOptions options;
  options.port = port_;
  return options;
}

bool DaemonProcess::send_signal(int signal) {
  if (exit_status_ || pid_ <= 0) return false;
  return ::kill(pid_, signal) == 0;
}

std::optional<int> DaemonProcess::stop(int signal, std::chrono::milliseconds timeout) {
  if (exit_status_) return exit_status_;
  if (pid_ <= 0) return std::nullopt;
  ::kill(pid_, signal);
  return wait_exit(timeout);
}

std::optional<int> DaemonProcess::wait_exit(std::chrono::milliseconds timeout) {
  if (exit_status_) return exit_status_;
  if (pid_ <= 0) return std::nullopt;
  const auto deadline = Clock::now() + timeout;
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
  for (;;) {
    int status = 0;
    pid_t reaped = ::waitpid(pid_, &status, WNOHANG);
    if (reaped == pid_) {
      exit_status_ = status;
      break;
    }
    if (reaped < 0 && errno != EINTR) break;
    int wait_ms = remaining_ms(deadline);
    if (wait_ms == 0) break;
    if (pidfd >= 0) {
      struct pollfd fd = {pidfd, POLLIN, 0};
      ::poll(&fd, 1, wait_ms);
    } else {
      struct timespec nap = {0, 10 * 1000 * 1000};  // no pidfd: poll the child every 10 ms
      ::nanosleep(&nap, nullptr);
    }
  }
  if (pidfd >= 0) ::close(pidfd);
  if (exit_status_) {
    // The child is gone, but the reader may not have drained what it wrote last: wait (bounded) for the
    // pipe's end, so log() holds every line the daemon printed before it exited.
    std::unique_lock lock(log_mutex_);
    log_changed_.wait_for(lock, std::chrono::milliseconds(2000),
                          [&] { return output_closed_; });
  }
  return exit_status_;
}

bool DaemonProcess::running() {
  if (exit_status_ || pid_ <= 0) return false;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) {
    exit_status_ = status;
    return false;
  }
  return true;
}

std::string DaemonProcess::log() const {
  std::lock_guard lock(log_mutex_);
  return log_;
}

bool DaemonProcess::wait_for_log(std::string_view needle, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(log_mutex_);
  return log_changed_.wait_for(lock, timeout, [&] { return log_.find(needle) != std::string::npos; });
}

std::string DaemonProcess::sanitizer_findings() const {
  std::string findings;
  std::istringstream lines(log());
  for (std::string line; std::getline(lines, line);) {
    if (line.find("Sanitizer") != std::string::npos || line.find("runtime error:") != std::string::npos) {
      findings += line + "\n";
    }
  }
  return findings;
}

// ---- HTTP ----

namespace {

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

// Decodes a chunked body; nullopt while it is incomplete.
std::optional<std::string> dechunk(std::string_view raw) {
  std::string body;
  std::size_t at = 0;
  for (;;) {
    std::size_t line_end = raw.find("\r\n", at);
    if (line_end == std::string_view::npos) return std::nullopt;
    std::size_t size = std::strtoul(std::string(raw.substr(at, line_end - at)).c_str(), nullptr, 16);
    at = line_end + 2;
    if (size == 0) return body;
    if (raw.size() < at + size + 2) return std::nullopt;
    body.append(raw.substr(at, size));
    at += size + 2;
  }
}

// Parses `raw` into `response`; true once the response is complete (`eof`: the peer closed).
bool parse_response(const std::string& raw, bool eof, HttpResponse& response) {
  std::size_t header_end = raw.find("\r\n\r\n");
  if (header_end == std::string::npos) return false;
  std::istringstream head(raw.substr(0, header_end));
  std::string line;
  std::getline(head, line);
  if (line.rfind("HTTP/1.", 0) != 0 || line.size() < 12) return false;
  response.status = std::atoi(line.c_str() + 9);
  response.status_line = line.substr(0, line.find('\r'));
  response.headers.clear();
  while (std::getline(head, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::size_t value_at = line.find_first_not_of(' ', colon + 1);
    response.headers[lower(line.substr(0, colon))] = value_at == std::string::npos ? "" : line.substr(value_at);
  }
  std::string_view rest = std::string_view(raw).substr(header_end + 4);
  if (auto te = response.headers.find("transfer-encoding");
      te != response.headers.end() && lower(te->second).find("chunked") != std::string::npos) {
    auto body = dechunk(rest);
    if (!body) return false;
    response.body = std::move(*body);
    return true;
  }
  if (auto cl = response.headers.find("content-length"); cl != response.headers.end()) {
    std::size_t length = std::strtoul(cl->second.c_str(), nullptr, 10);
    if (rest.size() < length) return false;
    response.body = std::string(rest.substr(0, length));
    return true;
  }
  response.body = std::string(rest);
  return eof;
}

}  // namespace

std::optional<HttpResponse> http_get(int port, std::string_view path, std::chrono::milliseconds timeout,
                                     const std::vector<std::pair<std::string, std::string>>& extra_headers) {
  std::string request = "GET " + std::string(path) + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                        "\r\nConnection: close\r\n";
  for (const auto& [name, value] : extra_headers) request += name + ": " + value + "\r\n";
  request += "\r\n";
  return http_exchange(port, request, timeout);
}

std::optional<HttpResponse> http_exchange(int port, const std::string& request, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::nullopt;
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};

  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 && errno != EINPROGRESS) {
    return std::nullopt;
  }
  struct pollfd writable = {fd, POLLOUT, 0};
  if (::poll(&writable, 1, remaining_ms(deadline)) != 1) return std::nullopt;
  int error = 0;
  socklen_t error_size = sizeof error;
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &error_size);
  if (error != 0) return std::nullopt;
  std::size_t sent = 0;
  while (sent < request.size()) {
    ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) return std::nullopt;
    struct pollfd out = {fd, POLLOUT, 0};
    if (::poll(&out, 1, remaining_ms(deadline)) != 1) return std::nullopt;
  }

  std::string raw;
  HttpResponse response;
  char buffer[16384];
  for (;;) {
    struct pollfd in = {fd, POLLIN, 0};
    int ready = ::poll(&in, 1, remaining_ms(deadline));
    if (ready <= 0) return std::nullopt;
    ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      // A reset after a complete response still counts as the response.
      if (parse_response(raw, true, response)) return response;
      return std::nullopt;
    }
    if (n == 0) {
      if (parse_response(raw, true, response)) return response;
      return std::nullopt;
    }
    raw.append(buffer, static_cast<std::size_t>(n));
    if (parse_response(raw, false, response)) return response;
  }
}

// ---- /proc ----

std::optional<ProcessInfo> read_process(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!in || !std::getline(in, stat)) return std::nullopt;
  std::size_t open = stat.find('(');
  std::size_t close = stat.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close + 2 >= stat.size()) return std::nullopt;
  ProcessInfo info;
  info.pid = pid;
  info.command = stat.substr(open + 1, close - open - 1);
  std::istringstream fields(stat.substr(close + 2));
  long parent = 0, group = 0, session = 0;
  fields >> info.state >> parent >> group >> session;
  info.parent = static_cast<pid_t>(parent);
  info.session = static_cast<pid_t>(session);
  return info;
}


std::vector<ProcessInfo> processes_in_session(pid_t session) {
  std::vector<ProcessInfo> found;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return found;
  while (struct dirent* entry = ::readdir(proc)) {
    char* end = nullptr;
    long pid = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || pid <= 0) continue;
    auto info = read_process(static_cast<pid_t>(pid));
    if (info && info->session == session) found.push_back(*info);
  }
  ::closedir(proc);
  return found;
}

bool process_exists(pid_t pid) { return ::access(("/proc/" + std::to_string(pid)).c_str(), F_OK) == 0; }

void become_subreaper() { ::prctl(PR_SET_CHILD_SUBREAPER, 1); }

std::vector<pid_t> reap_adopted_zombies(const std::vector<ProcessInfo>& candidates) {
  std::vector<pid_t> reaped;
  for (const auto& process : candidates) {
    if (process.state != 'Z' || process.parent != ::getpid()) continue;
    int status = 0;
    if (::waitpid(process.pid, &status, WNOHANG) == process.pid) reaped.push_back(process.pid);
  }
  return reaped;
}

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
                std::chrono::milliseconds interval) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (condition()) return true;
    if (Clock::now() >= deadline) return false;
    struct timespec nap = {0, static_cast<long>(std::chrono::nanoseconds(interval).count())};
    ::nanosleep(&nap, nullptr);
  }
}

}  // namespace ptyhub::test
