// Tmux, TcpProxy and run_cli: see cli_harness.hpp.
#include "tests/support/cli_harness.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

extern char** environ;

namespace ptyhub::test {

namespace {

struct Spawned {
  int status = -1;
  std::string out;
  std::string err;
};

// Runs argv with extra environment, stdin from `input`, collecting stdout and stderr until it exits or the
// deadline passes (then SIGKILL).
Spawned spawn_and_collect(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
                          const std::filesystem::path& input, std::chrono::milliseconds timeout) {
  Spawned result;
  int out_pipe[2];
  int err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) return result;
  std::vector<std::string> environment;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry(*e);
    const std::string name = entry.substr(0, entry.find('='));
    if (!env.contains(name)) environment.push_back(entry);
  }
  for (const auto& [name, value] : env) environment.push_back(name + "=" + value);
  std::vector<char*> c_argv;
  for (const auto& a : argv) c_argv.push_back(const_cast<char*>(a.c_str()));
  c_argv.push_back(nullptr);
  std::vector<char*> c_env;
  for (auto& e : environment) c_env.push_back(e.data());
  c_env.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, input.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, c_argv[0], &actions, nullptr, c_argv.data(), c_env.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (rc != 0) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    return result;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool out_open = true;
  bool err_open = true;
  bool overran = false;
  while (out_open || err_open) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) {
      overran = true;
      ::kill(pid, SIGKILL);
      break;
    }
    pollfd fds[2] = {{out_open ? out_pipe[0] : -1, POLLIN, 0}, {err_open ? err_pipe[0] : -1, POLLIN, 0}};
    if (::poll(fds, 2, static_cast<int>(left)) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buffer[65536];
      const ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        (i == 0 ? out_open : err_open) = false;
        continue;
      }
      (i == 0 ? result.out : result.err).append(buffer, static_cast<size_t>(n));
    }
  }
  ::close(out_pipe[0]);
  ::close(err_pipe[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (overran) result.status = -1;
  else if (WIFEXITED(status)) result.status = WEXITSTATUS(status);
  else if (WIFSIGNALED(status)) result.status = 128 + WTERMSIG(status);
  return result;
}

// The whole of a small file such as one in /proc ("" when it cannot be read).
std::string read_small_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

}  // namespace

std::string shell_quote(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

// --- Tmux ---------------------------------------------------------------------------------------------

Tmux::Tmux(const std::string& command, int cols, int rows) {
  if (dir_.path().empty()) return;
  socket_ = (dir_.path() / "tmux.sock").string();
  int status = -1;
  tmux({"new-session", "-d", "-s", "t", "-x", std::to_string(cols), "-y", std::to_string(rows), command}, &status);
  if (status != 0) return;
  tmux({"set-option", "-g", "history-limit", "20000"});
  started_ = true;
}

Tmux::~Tmux() {
  if (!socket_.empty()) tmux({"kill-server"});
}

std::string Tmux::tmux(const std::vector<std::string>& args, int* status) {
  std::vector<std::string> argv = {"/usr/bin/tmux", "-S", socket_, "-f", "/dev/null"};
  argv.insert(argv.end(), args.begin(), args.end());
  Spawned result = spawn_and_collect(argv, {{"TERM", "xterm-256color"}}, "/dev/null", std::chrono::seconds(10));
  if (status != nullptr) *status = result.status;
  return result.out;
}

void Tmux::type(std::string_view text) { tmux({"send-keys", "-t", "t", "-l", std::string(text)}); }

void Tmux::keys(const std::vector<std::string>& names) {
  std::vector<std::string> args = {"send-keys", "-t", "t"};
  args.insert(args.end(), names.begin(), names.end());
  tmux(args);
}

void Tmux::line(std::string_view text) {
  type(text);
  keys({"Enter"});
}

std::string Tmux::capture() { return tmux({"capture-pane", "-p", "-J", "-t", "t", "-S", "-", "-E", "-"}); }

bool Tmux::wait_for(std::string_view needle, std::chrono::milliseconds timeout) { return wait_for_count(needle, 1, timeout); }

bool Tmux::wait_for_count(std::string_view needle, size_t count, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    const std::string screen = capture();
    size_t found = 0;
    for (size_t at = screen.find(needle); at != std::string::npos; at = screen.find(needle, at + needle.size())) ++found;
    if (found >= count) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    // Bounded poll of the screen: capture-pane costs a process, so ask about 50 times a second.
    pollfd none{-1, 0, 0};
    ::poll(&none, 0, 20);
  }
}

void Tmux::resize(int cols, int rows) {
  tmux({"resize-window", "-t", "t", "-x", std::to_string(cols), "-y", std::to_string(rows)});
}

pid_t Tmux::child_of_pane(const std::string& name) {
  const std::string pane = tmux({"display-message", "-p", "-t", "t", "#{pane_pid}"});
  const int shell = std::atoi(pane.c_str());
  if (shell <= 0) return 0;
  std::istringstream children(read_small_file("/proc/" + std::to_string(shell) + "/task/" + std::to_string(shell) + "/children"));
  int child = 0;
  while (children >> child) {
    std::string comm = read_small_file("/proc/" + std::to_string(child) + "/comm");
    while (!comm.empty() && comm.back() == '\n') comm.pop_back();
    if (comm == name) return child;
  }
  return 0;
}

// --- TcpProxy -----------------------------------------------------------------------------------------

TcpProxy::TcpProxy(int target_port) : target_port_(target_port) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(listen_fd_, 16) != 0 || ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0 ||
      ::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) {
    return;
  }
  port_ = ntohs(address.sin_port);
  thread_ = std::thread([this] { run(); });
}

TcpProxy::~TcpProxy() {
  stop_ = true;
  if (wake_[1] >= 0) (void)!::write(wake_[1], "x", 1);
  if (thread_.joinable()) thread_.join();
  for (int fd : {listen_fd_, wake_[0], wake_[1]}) {
    if (fd >= 0) ::close(fd);
  }
}

void TcpProxy::cut() {
  ++cut_requests_;
  (void)!::write(wake_[1], "x", 1);
}

void TcpProxy::run() {
  struct Pair {
    int client;
    int server;
  };
  std::vector<Pair> pairs;
  int cuts_done = 0;
  auto close_all = [&] {
    for (const Pair& pair : pairs) {
      ::close(pair.client);
      ::close(pair.server);
    }
    pairs.clear();
  };
  while (!stop_) {
    std::vector<pollfd> fds = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    for (const Pair& pair : pairs) {
      fds.push_back({pair.client, POLLIN, 0});
      fds.push_back({pair.server, POLLIN, 0});
    }
    if (::poll(fds.data(), fds.size(), 1000) < 0 && errno != EINTR) break;
    if (fds[1].revents != 0) {
      char drain[64];
      while (::read(wake_[0], drain, sizeof drain) > 0) {
      }
    }
    if (cut_requests_.load() != cuts_done) {
      cuts_done = cut_requests_.load();
      close_all();
      continue;
    }
    const size_t polled = pairs.size();  // fds covers these; a pair accepted now is polled next turn
    if (fds[0].revents & POLLIN) {
      const int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client >= 0) {
        const int server = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in target{};
        target.sin_family = AF_INET;
        target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        target.sin_port = htons(static_cast<uint16_t>(target_port_));
        if (server >= 0 && ::connect(server, reinterpret_cast<sockaddr*>(&target), sizeof target) == 0) {
          const int one = 1;
          ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          ::setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          pairs.push_back({client, server});
          ++accepted_;
        } else {
          ::close(client);
          if (server >= 0) ::close(server);
        }
      }
    }
    // Relay: a blocking write of what one read returned (the peers read promptly); EOF or an error on
    // either side ends the pair.
    std::vector<Pair> kept;
    for (size_t i = 0; i < pairs.size(); ++i) {
      const Pair pair = pairs[i];
      bool alive = true;
      if (i >= polled) {
        kept.push_back(pair);
        continue;
      }
      for (int side = 0; side < 2 && alive; ++side) {
        const pollfd& entry = fds[2 + 2 * i + static_cast<size_t>(side)];
        if (entry.revents == 0) continue;
        const int from = side == 0 ? pair.client : pair.server;
        const int to = side == 0 ? pair.server : pair.client;
        char buffer[65536];
        const ssize_t n = ::read(from, buffer, sizeof buffer);
        if (n <= 0) {
          alive = false;
          break;
        }
        for (ssize_t done = 0; done < n;) {
          const ssize_t w = ::send(to, buffer + done, static_cast<size_t>(n - done), MSG_NOSIGNAL);
          if (w <= 0) {
            alive = false;
            break;
          }
          done += w;
        }
      }
      if (alive) {
        kept.push_back(pair);
      } else {
        ::close(pair.client);
        ::close(pair.server);
      }
    }
    pairs = std::move(kept);
  }
  close_all();
}

// --- run_cli ------------------------------------------------------------------------------------------

CliResult run_cli(const std::vector<std::string>& args, const std::map<std::string, std::string>& env,
                  const std::filesystem::path& stdin_file, std::chrono::milliseconds timeout) {
  std::vector<std::string> argv = {PTYHUB_CLI_PATH};
  argv.insert(argv.end(), args.begin(), args.end());
  Spawned spawned = spawn_and_collect(argv, env, stdin_file, timeout);
  return CliResult{spawned.status, std::move(spawned.out), std::move(spawned.err)};
}

CliResult run_sh(const std::string& command, const std::map<std::string, std::string>& env,
                 std::chrono::milliseconds timeout) {
  Spawned spawned = spawn_and_collect({"/bin/sh", "-c", command}, env, "/dev/null", timeout);
  return CliResult{spawned.status, std::move(spawned.out), std::move(spawned.err)};
}

}  // namespace ptyhub::test
