// RedisConnection: one connection to Redis on the daemon's libuv loop (hiredis's async API and its
// libuv adapter), owning its redisAsyncContext. The only code of the daemon that talks to Redis is in
// src/cluster/, and it talks through this type.
//
// Commands are binary-safe argument vectors. Each has a timeout: when the oldest unanswered command is
// older than its timeout, and no byte arrived on the link for that long either (a long reply that is still
// coming in is an answer, however slow the machine), the link is dropped, every pending command fails (its
// callback gets nullptr) and the connection is made again with a growing delay (100 ms doubling to 1 s); so a slow or lost Redis
// never blocks the loop and never leaves a caller waiting for ever. Replies reach callers as RedisValue,
// a copy that owns its data (src/cluster/redis_value.hpp; no hiredis type leaves this file's .cpp).
// Loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/fifo.hpp"
#include "core/uv_handle.hpp"
#include "src/cluster/redis_value.hpp"

struct redisAsyncContext;

namespace ptyhub::cluster {

// Where Redis is: redis://[:password@]host[:port][/db] (port 6379, db 0 by default).
struct RedisAddress {
  std::string host;
  int port = 6379;
  int db = 0;
  std::string password;
};
bool parse_redis_url(std::string_view url, RedisAddress* out, std::string* error);

class RedisConnection {
 public:
  // `reply` is nullptr when the command failed without an answer (link lost, timeout, not connected).
  using Callback = std::function<void(const RedisValue* reply)>;
  // Told each time the link comes up (true) or goes down (false).
  using StateCallback = std::function<void(bool up)>;

  static constexpr uint64_t kDefaultTimeoutMs = 2000;
  static constexpr uint64_t kFirstRetryMs = 100;
  static constexpr uint64_t kMaxRetryMs = 1000;

  RedisConnection(uv_loop_t* loop, RedisAddress address, std::string name, StateCallback on_state);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // Connects, and reconnects whenever the link is lost, until destroyed.
  void start();
  bool up() const { return up_; }
  // Sends a command (pipelined behind those still pending). While the link is down the callback gets
  // nullptr at once (on this call's stack) and false is returned.
  bool command(const std::vector<std::string>& args, Callback callback, uint64_t timeout_ms = kDefaultTimeoutMs);
  // Drops the link now (it is made again after the first retry delay); pending commands fail.
  void reset(std::string_view why);
  // No reconnection from now on. `graceful`: the link closes once the commands sent have their answers
  // (bounded by their timeouts); otherwise at once, failing them.
  void stop(bool graceful);
  uint64_t reconnects() const { return reconnects_; }
  size_t pending() const { return pending_.size(); }

 private:
  struct Pending {
    Callback callback;
    uint64_t deadline_ms;
    uint64_t timeout_ms;
  };
  static void on_connect(const redisAsyncContext* context, int status);
  static void on_disconnect(const redisAsyncContext* context, int status);
  static void on_reply(redisAsyncContext* context, void* reply, void* privdata);
  void connect();
  void lost(std::string_view why);
  void schedule_retry();
  void check_deadlines();
  void fail_pending();

  uv_loop_t* loop_;
  RedisAddress address_;
  std::string name_;
  StateCallback on_state_;
  redisAsyncContext* context_ = nullptr;  // owned: freed by hiredis after on_disconnect, or by us
  bool up_ = false;
  bool connecting_ = false;
  uint64_t connect_started_ms_ = 0;
  bool destroying_ = false;
  bool stopping_ = false;
  uint64_t retry_ms_ = kFirstRetryMs;
  uint64_t reconnects_ = 0;
  bool was_up_ = false;
  std::string last_error_;  // the last failure logged, to log each kind of failure once
  Fifo<Pending> pending_;  // in the order sent: Redis answers in order
  UvHandle<uv_timer_t> retry_timer_;
  UvHandle<uv_timer_t> deadline_timer_;
  UvHandle<uv_timer_t> reset_timer_;
  bool reset_pending_ = false;
  uint64_t reads_seen_ = 0;        // the socket's readable events counted at the last deadline check
  uint64_t last_read_ms_ = 0;      // loop time of the last check that found new ones
};

}  // namespace ptyhub::cluster
