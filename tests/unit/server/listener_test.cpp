// Listener (src/server/listener.*): accepting while the process is out of file descriptors. Found by
// scripts/soak.sh: with RLIMIT_NOFILE lowered, accept() failed with EMFILE on every loop turn, the
// listening socket stayed readable, and the daemon spun at 70% CPU writing millions of warnings.
#include <doctest/doctest.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <chrono>
#include <string>
#include <vector>

#include "core/unique_fd.hpp"
#include "src/server/listener.hpp"

namespace ptyhub::server {
namespace {

using std::chrono::steady_clock;

// The highest open fd of this process, found without opening one.
int highest_fd() {
  int highest = 2;
  for (int fd = 0; fd < 65536; ++fd) {
    if (fcntl(fd, F_GETFD) != -1) highest = fd;
  }
  return highest;
}

TEST_CASE("listener: out of file descriptors it pauses instead of spinning, then accepts the waiting connection") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  int accepted = -1;
  {
    Listener listener(&loop, [&accepted](int fd, std::string) { accepted = fd; }, false);
    std::string error;
    REQUIRE(listener.listen({false, "127.0.0.1", 0, ""}, &error));
    const std::string bound = listener.address();
    const int port = std::stoi(bound.substr(bound.rfind(':') + 1));

    UniqueFd client(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(client);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    REQUIRE(connect(client.get(), reinterpret_cast<sockaddr*>(&to), sizeof to) == 0);  // completes in the backlog

    // A tick every 50 ms, so that every uv_run below returns within 50 ms whatever the listener does.
    uv_timer_t tick;
    REQUIRE(uv_timer_init(&loop, &tick) == 0);
    uv_timer_start(&tick, [](uv_timer_t*) {}, 50, 50);

    // Out of fds: the limit just above the highest open fd, every free number below it taken.
    rlimit old{};
    REQUIRE(getrlimit(RLIMIT_NOFILE, &old) == 0);
    rlimit low = old;
    low.rlim_cur = static_cast<rlim_t>(highest_fd() + 1);
    REQUIRE(setrlimit(RLIMIT_NOFILE, &low) == 0);
    std::vector<UniqueFd> fillers;
    for (int fd = dup(0); fd >= 0; fd = dup(0)) fillers.emplace_back(fd);
    // Loop turns in 300 ms: a listener still watching a socket it cannot accept from turns again at once
    // (thousands of turns); a paused one adds only its timer to the ticks (about 6 turns).
    int turns = 0;
    const auto until = steady_clock::now() + std::chrono::milliseconds(300);
    while (steady_clock::now() < until) {
      uv_run(&loop, UV_RUN_ONCE);
      ++turns;
    }
    fillers.clear();
    REQUIRE(setrlimit(RLIMIT_NOFILE, &old) == 0);
    CHECK(accepted == -1);
    CHECK(turns < 60);

    const auto deadline = steady_clock::now() + std::chrono::seconds(5);
    while (accepted < 0 && steady_clock::now() < deadline) uv_run(&loop, UV_RUN_ONCE);
    CHECK(accepted >= 0);
    if (accepted >= 0) close(accepted);
    uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
  }
  uv_run(&loop, UV_RUN_DEFAULT);  // the handles' close callbacks
  CHECK(uv_loop_close(&loop) == 0);
}

}  // namespace
}  // namespace ptyhub::server
