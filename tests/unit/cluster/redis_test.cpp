// RedisConnection against a real redis-server: binary-safe commands, replies as values, timeouts that
// fail the command instead of blocking, a lost server, reconnection.
#include <doctest/doctest.h>
#include <uv.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "src/cluster/redis.hpp"
#include "tests/support/redis_server.hpp"

namespace ptyhub::cluster {
namespace {

using ptyhub::test::RedisServer;

// Runs the loop until `done` or `timeout_ms` of loop time passed.
bool run_until(uv_loop_t* loop, const std::function<bool()>& done, uint64_t timeout_ms = 5000) {
  uv_timer_t tick;
  uv_timer_init(loop, &tick);
  uv_timer_start(&tick, [](uv_timer_t*) {}, 5, 5);  // wakes the loop so `done` is checked
  const uint64_t deadline = uv_now(loop) + timeout_ms;
  while (!done() && uv_now(loop) < deadline) uv_run(loop, UV_RUN_ONCE);
  uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
  uv_run(loop, UV_RUN_NOWAIT);
  return done();
}

RedisAddress address_of(const RedisServer& server) {
  RedisAddress address;
  std::string error;
  REQUIRE(parse_redis_url(server.url(), &address, &error));
  return address;
}

struct Loop {
  uv_loop_t loop;
  Loop() { uv_loop_init(&loop); }
  ~Loop() {
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_loop_close(&loop);
  }
};

TEST_CASE("redis_url: host, port, database, password - anything else is refused") {
  RedisAddress address;
  std::string error;
  REQUIRE(parse_redis_url("redis://127.0.0.1:6380/3", &address, &error));
  CHECK(address.host == "127.0.0.1");
  CHECK(address.port == 6380);
  CHECK(address.db == 3);
  REQUIRE(parse_redis_url("redis://:secret@redis.internal", &address, &error));
  CHECK(address.host == "redis.internal");
  CHECK(address.port == 6379);
  CHECK(address.password == "secret");
  for (const char* bad : {"http://x", "redis://", "redis://h:0", "redis://h:x", "redis://h/16", "redis://h/a"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_redis_url(bad, &address, &error));
    CHECK(error.starts_with("redis_url: "));
  }
}

TEST_CASE("redis: binary-safe commands and replies as values") {
  RedisServer server;
  REQUIRE(server.ok());
  Loop loop;
  int ups = 0;
  RedisConnection redis(&loop.loop, address_of(server), "test", [&](bool up) { ups += up ? 1 : 0; });
  redis.start();
  REQUIRE(run_until(&loop.loop, [&] { return redis.up(); }));
  CHECK(ups == 1);
  const std::string bytes("a\0b\r\n\xff", 6);
  std::optional<RedisValue> set, get, xadd, bad;
  redis.command({"SET", "k", bytes}, [&](const RedisValue* v) { set = v ? *v : RedisValue{}; });
  redis.command({"GET", "k"}, [&](const RedisValue* v) { get = v ? *v : RedisValue{}; });
  redis.command({"XADD", "s", "100-0", "d", bytes}, [&](const RedisValue* v) { xadd = v ? *v : RedisValue{}; });
  redis.command({"XADD", "s", "50-0", "d", "x"}, [&](const RedisValue* v) { bad = v ? *v : RedisValue{}; });
  REQUIRE(run_until(&loop.loop, [&] { return bad.has_value(); }));
  CHECK(set->type == RedisValue::Type::status);
  CHECK(get->text == bytes);
  CHECK(xadd->text == "100-0");
  CHECK(bad->is_error());  // an ID below the top: the explicit ID refuses stale appends
  std::optional<RedisValue> range;
  redis.command({"XRANGE", "s", "-", "+"}, [&](const RedisValue* v) { range = v ? *v : RedisValue{}; });
  REQUIRE(run_until(&loop.loop, [&] { return range.has_value(); }));
  CHECK(range->type == RedisValue::Type::array);
  CHECK((*range)[0][0].text == "100-0");
  CHECK((*range)[0][1][1].text == bytes);
  CHECK((*range)[5].is_nil());
}

TEST_CASE("redis: a command without an answer in time fails, and the link comes back") {
  RedisServer server;
  REQUIRE(server.ok());
  Loop loop;
  RedisConnection redis(&loop.loop, address_of(server), "test", nullptr);
  redis.start();
  REQUIRE(run_until(&loop.loop, [&] { return redis.up(); }));
  bool failed = false;
  bool answered = false;
  redis.command({"DEBUG", "SLEEP", "2"}, [&](const RedisValue* v) { (v ? answered : failed) = true; }, 300);
  CHECK(run_until(&loop.loop, [&] { return failed; }, 1500));  // well before the 2 s sleep ends
  CHECK_FALSE(answered);
  CHECK(run_until(&loop.loop, [&] { return redis.up(); }, 5000));
  CHECK(redis.reconnects() == 1);
  std::optional<RedisValue> pong;
  redis.command({"PING"}, [&](const RedisValue* v) { pong = v ? *v : RedisValue{}; });
  REQUIRE(run_until(&loop.loop, [&] { return pong.has_value(); }));
  CHECK(pong->text == "PONG");
}

TEST_CASE("redis: a long reply still arriving after the timeout is an answer - only silence fails a command") {
  RedisServer server;
  REQUIRE(server.ok());
  Loop loop;
  RedisConnection redis(&loop.loop, address_of(server), "test", nullptr);
  redis.start();
  REQUIRE(run_until(&loop.loop, [&] { return redis.up(); }));
  const std::string big(4 * 1024 * 1024, 'x');
  bool stored = false;
  redis.command({"SET", "big", big}, [&](const RedisValue* v) { stored = v != nullptr; });
  REQUIRE(run_until(&loop.loop, [&] { return stored; }));
  // A busy loop: every turn does 5 ms of other work, and the reply is read 16 KiB a turn, so its 4 MiB take
  // over a second to come in - far past the command's 300 ms, with bytes arriving all along.
  uv_check_t busy;
  uv_check_init(&loop.loop, &busy);
  uv_check_start(&busy, [](uv_check_t*) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(5);
    while (std::chrono::steady_clock::now() < until) {
    }
  });
  std::optional<RedisValue> got;
  bool failed = false;
  const uint64_t asked = uv_now(&loop.loop);
  redis.command({"GET", "big"}, [&](const RedisValue* v) { v ? (void)(got = *v) : (void)(failed = true); }, 300);
  REQUIRE(run_until(&loop.loop, [&] { return got.has_value() || failed; }, 20000));
  const uint64_t took = uv_now(&loop.loop) - asked;
  uv_close(reinterpret_cast<uv_handle_t*>(&busy), nullptr);
  CHECK_FALSE(failed);
  REQUIRE(got.has_value());
  CHECK(got->text == big);
  CHECK(redis.reconnects() == 0);
  MESSAGE("the 4 MiB reply took " << took << " ms against a 300 ms timeout");
  CHECK(took > 300);  // the case this is about: the reply outlasted the timeout
}

TEST_CASE("redis: a server that goes away fails pending and new commands at once, and is found again") {
  RedisServer server;
  REQUIRE(server.ok());
  Loop loop;
  int downs = 0;
  RedisConnection redis(&loop.loop, address_of(server), "test", [&](bool up) { downs += up ? 0 : 1; });
  redis.start();
  REQUIRE(run_until(&loop.loop, [&] { return redis.up(); }));
  server.stop();
  REQUIRE(run_until(&loop.loop, [&] { return !redis.up(); }));
  CHECK(downs == 1);
  bool failed = false;
  CHECK_FALSE(redis.command({"PING"}, [&](const RedisValue* v) { failed = v == nullptr; }));
  CHECK(failed);
  REQUIRE(server.restart());
  CHECK(run_until(&loop.loop, [&] { return redis.up(); }, 10000));
}

TEST_CASE("redis: nothing listening - the daemon keeps retrying without blocking") {
  Loop loop;
  RedisAddress address;
  address.host = "127.0.0.1";
  address.port = 1;  // nothing listens there
  RedisConnection redis(&loop.loop, address, "test", nullptr);
  redis.start();
  const uint64_t before = uv_now(&loop.loop);
  run_until(&loop.loop, [] { return false; }, 300);
  CHECK_FALSE(redis.up());
  CHECK(uv_now(&loop.loop) - before < 1000);
}

}  // namespace
}  // namespace ptyhub::cluster
