// RedisServer: a real redis-server for one test, on a free loopback port, without persistence
// (`--save ""`, no AOF), started as a child and stopped by its PID. Used by the cluster tests.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>

namespace ptyhub::test {

class RedisServer {
 public:
  // Starts one at once; check ok().
  RedisServer();
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  bool ok() const { return pid_ > 0 && ready_; }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_) + "/0"; }
  // Stops it (SIGTERM, SIGKILL after 5 s) and waits for it.
  void stop();
  // Starts it again, empty, on the same port.
  bool restart();
  // Sends one command (inline form, e.g. "CLIENT KILL TYPE normal") and returns the raw reply; empty on error.
  std::string command(const std::string& inline_command, std::chrono::milliseconds timeout = std::chrono::seconds(5)) const;
  // True when redis-server exists on this machine.
  static bool available();

 private:
  bool launch();
  bool wait_ready(std::chrono::milliseconds timeout);

  int port_ = 0;
  pid_t pid_ = 0;
  bool ready_ = false;
  std::string directory_;
};

}  // namespace ptyhub::test
