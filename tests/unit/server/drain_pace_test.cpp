// Tests of src/server/drain_pace: when a client that is not taking data counts as stalled.
#include "src/server/drain_pace.hpp"

#include <doctest/doctest.h>

namespace ptyhub::server {
namespace {

TEST_CASE("a client that stops reading is stalled once its head frame waited the minimum allowance") {
  DrainPace pace(1000);
  for (uint64_t t = 1000; t < 1100; t += 2) {  // frames go out within a ms of being queued
    pace.on_queued(t, true);
    pace.on_sent(t + 1, false);
  }
  CHECK_FALSE(pace.stalled(5000));  // nothing queued: never stalled, however long ago the last frame
  pace.on_queued(5000, true);
  pace.on_queued(5000, false);
  CHECK(pace.allowance_ms(5000) == DrainPace::kMinAllowanceMs);
  CHECK_FALSE(pace.stalled(5000 + DrainPace::kMinAllowanceMs - 1));
  CHECK(pace.stalled(5000 + DrainPace::kMinAllowanceMs));
}

TEST_CASE("a client that reads in bursts gets twice its slowest recent wait, which fades") {
  DrainPace pace(0);
  pace.on_queued(0, true);
  pace.on_queued(0, false);
  pace.on_sent(400, true);  // the head frame waited 400 ms; the next one waits from now
  CHECK(pace.allowance_ms(400) == 800);
  // The allowance fades while the next frame waits too: 650 ms at +600, 626 ms at +700.
  CHECK_FALSE(pace.stalled(400 + 600));
  CHECK(pace.stalled(400 + 700));
  // The wait is forgotten at 1 ms per 8 ms: 800 ms later it counts as 300 ms.
  CHECK(pace.allowance_ms(1200) == 600);
  // Long after, the minimum again.
  CHECK(pace.allowance_ms(10000) == DrainPace::kMinAllowanceMs);
}

TEST_CASE("the allowance never passes the maximum, and a frame waits from when it became the head") {
  DrainPace pace(0);
  pace.on_queued(0, true);
  pace.on_queued(10, false);  // behind the head: its wait starts when the head is sent
  pace.on_sent(5000, true);
  CHECK(pace.allowance_ms(5000) == DrainPace::kMaxAllowanceMs);
  pace.on_sent(5010, false);  // the second frame waited 10 ms; the 5 s wait is still remembered
  CHECK(pace.allowance_ms(5010) == DrainPace::kMaxAllowanceMs);
  CHECK_FALSE(pace.stalled(9000));  // nothing queued
  pace.on_queued(9000, true);
  CHECK_FALSE(pace.stalled(9000 + DrainPace::kMinAllowanceMs));  // still allowed more than the minimum
}

}  // namespace
}  // namespace ptyhub::server
