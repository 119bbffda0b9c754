// Faults of a running terminal (docs/protocol.md §5 "Faults"): a read, write or resize of its process's I/O
// that fails for another reason than the process's end reaches every subscriber as shell.error {terminalId,
// code, message}; a failed read also ends the terminal, with shell.exit {reason: "read_failed"}.
//
// A PTY master does not fail on purpose, so the process here is adopted (as after a live upgrade) with
// another fd in the master's place: an eventfd answers TIOCSWINSZ with ENOTTY and a write of other than
// 8 bytes with EINVAL; the write end of a pipe whose read end is closed is reported as an error by the poll,
// and reading it gives EBADF. A PTY master gives none of these at the end of its process.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "src/hub/hub.hpp"
#include "tests/unit/hub/fake_sink.hpp"
#include "tests/unit/hub/test_loop.hpp"

namespace ptyhub::hub {
namespace {

using test::Loop;
using test::Message;

class RecordingSubscriber final : public Subscriber {
 public:
  RecordingSubscriber() { principal_.user = "alice"; }
  void deliver(const protocol::SharedFrame& frame) override { received.push_back(test::read_message(frame)); }
  bool has_room() const override { return true; }
  bool stalled(uint64_t) const override { return false; }
  void on_input_drained(std::string_view) override {}
  const auth::Principal& principal() const override { return principal_; }

  std::vector<Message> of_type(const std::string& type) const {
    std::vector<Message> out;
    std::copy_if(received.begin(), received.end(), std::back_inserter(out), [&](const Message& m) { return m.type == type; });
    return out;
  }

  std::vector<Message> received;

 private:
  auth::Principal principal_;
};

// A process in a session of its own (it is signalled session-wide) and its pidfd.
struct Adopted {
  pid_t pid = -1;
  UniqueFd pidfd;
};

Adopted start_process() {
  Adopted out;
  out.pid = ::fork();
  REQUIRE(out.pid >= 0);
  if (out.pid == 0) {
    ::setsid();
    ::execl("/bin/sleep", "sleep", "60", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  out.pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, out.pid, 0)));
  REQUIRE(out.pidfd);
  // Session-wide signals reach it only once it leads its session (bounded wait).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (::getsid(out.pid) != out.pid && std::chrono::steady_clock::now() < deadline) ::usleep(1000);
  REQUIRE(::getsid(out.pid) == out.pid);
  return out;
}

// A terminal adopting that process with `master` in its PTY master's place, and a subscriber.
struct Fixture {
  Loop loop;
  Metrics metrics;
  std::unique_ptr<Hub> hub;
  Adopted process = start_process();
  Terminal* terminal = nullptr;
  RecordingSubscriber subscriber;

  explicit Fixture(UniqueFd master) {
    HubLimits limits;
    limits.shell = "/bin/sh";
    limits.home = "/";
    limits.terminal.kill_grace_ms = 2000;
    hub = std::make_unique<Hub>(loop.get(), limits, metrics);
    Terminal::Snapshot snapshot;
    snapshot.spec.id = "faultyTerminal00000000";
    snapshot.spec.owner = "alice";
    snapshot.spec.command = {"/bin/sleep", "60"};
    snapshot.pid = process.pid;
    std::string error;
    terminal = hub->restore(snapshot, std::move(master), std::move(process.pidfd), &error);
    REQUIRE_MESSAGE(terminal != nullptr, error);
    terminal->subscribe(&subscriber, Encoding::utf8, std::nullopt);
  }
  ~Fixture() {
    if (terminal != nullptr && terminal->running()) terminal->kill(SIGKILL, 0);
    loop.run_until([&] { return terminal == nullptr || !terminal->running(); });
    hub.reset();
  }
};

UniqueFd event_fd() {
  UniqueFd fd(::eventfd(0, EFD_CLOEXEC));
  REQUIRE(fd);
  return fd;
}

TEST_CASE("terminal faults: a failed resize is shell.error resize_failed - the terminal keeps its size and runs on") {
  Fixture f(event_fd());
  f.terminal->resize(100, 40);
  const std::vector<Message> errors = f.subscriber.of_type("shell.error");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].data.value("terminalId", "") == f.terminal->id());
  CHECK(errors[0].data.value("code", "") == "resize_failed");
  CHECK(errors[0].data.value("message", "").find("100x40") != std::string::npos);
  CHECK(f.subscriber.of_type("shell.resized").empty());
  CHECK(f.terminal->spec().cols == 80);
  CHECK(f.terminal->running());
  CHECK(f.metrics.terminal_faults_total == 1);
}

TEST_CASE("terminal faults: a failed write of input is shell.error input_failed, once - the terminal runs on") {
  Fixture f(event_fd());
  f.terminal->write_input("lost\n", nullptr);  // EINVAL: an eventfd takes 8 bytes at a time
  f.terminal->write_input("also lost\n", nullptr);
  const std::vector<Message> errors = f.subscriber.of_type("shell.error");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].data.value("code", "") == "input_failed");
  CHECK(errors[0].data.value("message", "").find("Invalid argument") != std::string::npos);
  CHECK(f.terminal->running());
  CHECK(f.subscriber.of_type("shell.exit").empty());
}

TEST_CASE("terminal faults: a failed read is shell.error read_failed, then the terminal ends with shell.exit reason read_failed") {
  int pipe_fds[2];
  REQUIRE(::pipe2(pipe_fds, O_CLOEXEC) == 0);
  UniqueFd read_end(pipe_fds[0]);
  Fixture f{UniqueFd(pipe_fds[1])};  // the daemon's "master" cannot be read: EBADF once the poll wakes
  read_end.reset();                  // the poll reports an error on the write end
  REQUIRE(f.loop.run_until([&] { return !f.terminal->running(); }));
  const std::vector<Message> errors = f.subscriber.of_type("shell.error");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].data.value("code", "") == "read_failed");
  const std::vector<Message> exits = f.subscriber.of_type("shell.exit");
  REQUIRE(exits.size() == 1);
  CHECK(exits[0].data.value("reason", "") == "read_failed");
  CHECK(exits[0].data.value("signal", "") == "SIGHUP");  // the session was hung up
  // shell.error comes before shell.exit.
  const auto at = [&](const std::string& type) {
    return std::find_if(f.subscriber.received.begin(), f.subscriber.received.end(), [&](const Message& m) { return m.type == type; });
  };
  CHECK(at("shell.error") < at("shell.exit"));
}

TEST_CASE("terminal faults: the end of a PTY's process is no fault") {
  Loop loop;
  Metrics metrics;
  RecordingSubscriber subscriber;  // outlives the hub, which still knows it when it goes
  HubLimits limits;
  limits.shell = "/bin/sh";
  limits.home = "/";
  Hub hub(loop.get(), limits, metrics);
  auth::Principal alice;
  alice.user = "alice";
  CreateOptions options;
  options.command = {"/bin/sh", "-c", "echo done"};
  const CreateResult created = hub.create(alice, options, &subscriber, Encoding::utf8);
  REQUIRE(created.terminal != nullptr);
  Terminal* terminal = created.terminal;
  REQUIRE(loop.run_until([&] { return !terminal->running(); }));
  terminal->write_input("after the end\n", nullptr);
  CHECK(subscriber.of_type("shell.error").empty());
  CHECK(metrics.terminal_faults_total == 0);
}

}  // namespace
}  // namespace ptyhub::hub
