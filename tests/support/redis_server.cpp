// RedisServer: a throw-away redis-server on loopback.
#include "tests/support/redis_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <thread>
#include <vector>

namespace ptyhub::test {
namespace {

constexpr const char* kRedisServer = "/usr/bin/redis-server";

int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  int port = 0;
  if (fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  if (fd >= 0) close(fd);
  return port;
}

}  // namespace

bool RedisServer::available() { return access(kRedisServer, X_OK) == 0; }

RedisServer::RedisServer() {
  char pattern[] = "/tmp/ptyhub-redis-XXXXXX";
  if (mkdtemp(pattern) == nullptr) return;
  directory_ = pattern;
  for (int attempt = 0; attempt < 5 && !ready_; ++attempt) {
    port_ = free_port();
    if (port_ > 0 && launch()) ready_ = wait_ready(std::chrono::seconds(10));
    if (!ready_) stop();
  }
}

RedisServer::~RedisServer() {
  stop();
  if (!directory_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(directory_, ignored);
  }
}

bool RedisServer::launch() {
  const std::string port = std::to_string(port_);
  const std::string log = directory_ + "/redis.log";
  std::vector<std::string> args = {kRedisServer, "--port", port, "--bind", "127.0.0.1", "--save", "",
                                   "--appendonly", "no", "--dir", directory_, "--logfile", log,
                                   "--daemonize", "no", "--protected-mode", "yes", "--enable-debug-command", "local"};
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const pid_t child = fork();
  if (child < 0) return false;
  if (child == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    const int null_fd = open("/dev/null", O_RDWR);
    if (null_fd >= 0) {
      dup2(null_fd, 0);
      dup2(null_fd, 1);
      dup2(null_fd, 2);
    }
    syscall(SYS_close_range, 3U, ~0U, 0U);
    execv(argv[0], argv.data());
    _exit(127);
  }
  pid_ = child;
  return true;
}

bool RedisServer::wait_ready(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = 0;
      return false;
    }
    if (command("PING", std::chrono::milliseconds(200)).starts_with("+PONG")) return true;
    // Not listening yet: wait a little for the child (bounded by the deadline).
    const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
    if (pidfd >= 0) {
      pollfd p{pidfd, POLLIN, 0};
      poll(&p, 1, 20);
      close(pidfd);
    }
  }
  return false;
}

void RedisServer::stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  int status = 0;
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
  while (waitpid(pid_, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() >= deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    if (pidfd >= 0) {
      pollfd p{pidfd, POLLIN, 0};
      poll(&p, 1, 100);
    }
  }
  if (pidfd >= 0) close(pidfd);
  pid_ = 0;
  ready_ = false;
}

bool RedisServer::restart() {
  stop();
  if (!launch()) return false;
  ready_ = wait_ready(std::chrono::seconds(10));
  return ready_;
}

std::string RedisServer::command(const std::string& inline_command, std::chrono::milliseconds timeout) const {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return {};
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port_));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string reply;
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) {
    const std::string line = inline_command + "\r\n";
    if (write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size())) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(timeout.count())) > 0) {
        char buffer[65536];
        const ssize_t n = read(fd, buffer, sizeof buffer);
        if (n > 0) reply.assign(buffer, static_cast<size_t>(n));
      }
    }
  }
  close(fd);
  return reply;
}

}  // namespace ptyhub::test
