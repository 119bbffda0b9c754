// A live upgrade at the hub's level (docs/upgrade.md): a hub's terminals are snapshotted and their
// processes released, the hub goes away without ending them, and a new hub restores them — the same ids,
// owners, shares and offsets, the ring intact, output continuing, and the exit reported once.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "src/hub/hub.hpp"
#include "src/upgrade/hub_state.hpp"
#include "tests/unit/hub/test_loop.hpp"

namespace ptyhub::hub {
namespace {

using test::Loop;

HubLimits limits() {
  HubLimits out;
  out.shell = "/bin/sh";
  out.home = "/";
  return out;
}

TEST_CASE("handoff: a hub's terminals survive it - restored with their ids, shares, ring and offsets, output continuing") {
  Loop loop;
  Metrics metrics;
  auth::Principal alice;
  alice.user = "alice";
  Terminal::Snapshot snapshot;
  pty::PtyProcess::Released released;
  Terminal::Snapshot finished;
  {
    Hub old_hub(loop.get(), limits(), metrics);
    CreateOptions options;
    options.command = {"/bin/sh", "-c", "stty -echo; echo first; read x; echo second-$x; read y; exit 3"};
    options.name = "kept";
    const CreateResult created = old_hub.create(alice, options, nullptr, Encoding::utf8);
    REQUIRE(created.terminal != nullptr);
    Terminal& terminal = *created.terminal;
    terminal.share("bob", auth::Access::read);
    REQUIRE(loop.run_until([&] { return terminal.published_offset() >= 7; }));  // "first\r\n"
    CreateOptions short_lived;
    short_lived.command = {"/bin/sh", "-c", "echo bye"};
    const CreateResult ended = old_hub.create(alice, short_lived, nullptr, Encoding::utf8);
    REQUIRE(ended.terminal != nullptr);
    REQUIRE(loop.run_until([&] { return !ended.terminal->running(); }));

    for (const Terminal::Snapshot& s : old_hub.snapshot()) (s.exited ? finished : snapshot) = s;
    REQUIRE(snapshot.spec.id == terminal.id());
    REQUIRE(terminal.release_process(&released));
    CHECK_FALSE(terminal.release_process(&released));
  }  // the old hub is gone; the shell is not
  REQUIRE(::kill(snapshot.pid, 0) == 0);
  CHECK(snapshot.ring == "first\r\n");
  CHECK(finished.exited);

  Hub hub(loop.get(), limits(), metrics);
  std::string error;
  // restore() moves the rings in.
  const uint64_t finished_end = finished.ring_start + finished.ring.size();
  Terminal* restored = hub.restore(snapshot, std::move(released.master), std::move(released.pidfd), &error);
  REQUIRE_MESSAGE(restored != nullptr, error);
  Terminal* gone = hub.restore(finished, UniqueFd(), UniqueFd(), &error);
  REQUIRE_MESSAGE(gone != nullptr, error);
  CHECK_FALSE(gone->running());
  CHECK(gone->published_offset() == finished_end);
  CHECK(hub.restore(snapshot, UniqueFd(), UniqueFd(), &error) == nullptr);  // its id is taken
  CHECK(restored->id() == snapshot.spec.id);
  CHECK(restored->owner() == "alice");
  CHECK(restored->spec().name == "kept");
  CHECK(restored->shares().at("bob") == auth::Access::read);
  CHECK(restored->created_at_ms() == snapshot.created_at_ms);
  CHECK(restored->published_offset() == 7);
  CHECK(hub.running_count() == 1);

  std::string after;
  uint64_t first_offset = 0;
  restored->add_output_tap([&](std::string_view bytes) {
    if (after.empty()) first_offset = restored->published_offset();
    after.append(bytes);
  });
  restored->write_input("go\n", nullptr);
  REQUIRE(loop.run_until([&] { return after.find("second-go") != std::string::npos; }));
  CHECK(first_offset == 7);  // offsets continue where the old image stopped
  restored->write_input("\n", nullptr);
  REQUIRE(loop.run_until([&] { return !restored->running(); }));
  CHECK(restored->exit_status().exit_code == 3);
  CHECK(restored->published_offset() == 7 + std::string("second-go\r\n").size());
}

TEST_CASE("handoff: through the encoded state - terminals come back whole, one whose fds are not what they claim ends upgrade_failed") {
  Loop loop;
  Metrics metrics;
  auth::Principal alice;
  alice.user = "alice";
  std::string encoded;
  std::vector<UniqueFd> handed;
  pid_t broken_pid = 0;
  std::string kept_id, broken_id;
  {
    Hub old_hub(loop.get(), limits(), metrics);
    CreateOptions options;
    options.command = {"/bin/sh", "-c", "stty -echo; echo hello; read x; echo bye-$x"};
    const CreateResult kept = old_hub.create(alice, options, nullptr, Encoding::utf8);
    const CreateResult broken = old_hub.create(alice, options, nullptr, Encoding::utf8);
    REQUIRE(kept.terminal != nullptr);
    REQUIRE(broken.terminal != nullptr);
    kept_id = kept.terminal->id();
    broken_id = broken.terminal->id();
    broken_pid = broken.terminal->spec().id.empty() ? 0 : broken.terminal->snapshot().pid;
    REQUIRE(loop.run_until([&] { return kept.terminal->published_offset() >= 7 && broken.terminal->published_offset() >= 7; }));
    upgrade::HandoffState state = upgrade::capture(old_hub, "test", &handed);
    REQUIRE(state.terminals.size() == 2);
    REQUIRE(handed.size() == 4);
    encoded = upgrade::encode_state(state);
  }
  std::string error;
  auto state = upgrade::decode_state(encoded, &error);
  REQUIRE_MESSAGE(state, error);
  // The fds pass to the restorer by number (as across execve): release ours without closing them, but
  // close the broken terminal's master so that it is not what the state claims.
  for (UniqueFd& fd : handed) fd.release();
  for (const upgrade::TerminalState& t : state->terminals) {
    if (t.id == broken_id) ::close(state->fds[static_cast<size_t>(t.master)].fd);
  }
  Hub hub(loop.get(), limits(), metrics);
  const std::vector<std::string> problems = upgrade::restore(hub, *state);
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].find(broken_id) != std::string::npos);
  Terminal* kept = hub.find_any(kept_id);
  Terminal* broken = hub.find_any(broken_id);
  REQUIRE(kept != nullptr);
  REQUIRE(broken != nullptr);
  CHECK(kept->running());
  CHECK_FALSE(broken->running());
  CHECK(broken->end_reason() == "upgrade_failed");
  CHECK(broken->published_offset() == 7);  // its output is kept
  CHECK(::kill(broken_pid, 0) != 0);        // its process is gone, and reaped
  // The pidfd of the broken one was checked and left alone: close it.
  for (const upgrade::TerminalState& t : state->terminals) {
    if (t.id == broken_id) ::close(state->fds[static_cast<size_t>(t.pidfd)].fd);
  }
  std::string after;
  kept->add_output_tap([&](std::string_view bytes) { after.append(bytes); });
  kept->write_input("ok\n", nullptr);
  REQUIRE(loop.run_until([&] { return !kept->running(); }));
  CHECK(after == "bye-ok\r\n");
  CHECK(kept->published_offset() == 7 + after.size());
}

TEST_CASE("handoff: a terminal whose process was reaped while its PTY drains goes over as exited, with its status") {
  Loop loop;
  Metrics metrics;
  auth::Principal alice;
  alice.user = "alice";
  Hub hub(loop.get(), limits(), metrics);
  CreateOptions options;
  // The background sleep (deaf to the hang-up of the session leader's exit) keeps the PTY open after the
  // shell exits: the exit report waits for the drain.
  options.command = {"/bin/sh", "-c", "trap '' HUP; sleep 30 & echo bg=$!; exit 4"};
  const CreateResult created = hub.create(alice, options, nullptr, Encoding::utf8);
  REQUIRE(created.terminal != nullptr);
  Terminal& terminal = *created.terminal;
  std::string output;
  terminal.add_output_tap([&](std::string_view bytes) { output.append(bytes); });
  REQUIRE(loop.run_until([&] { return terminal.reaped_status().has_value() && output.find('\n') != std::string::npos; }));
  const pid_t background = static_cast<pid_t>(std::atol(output.c_str() + output.find("bg=") + 3));
  std::vector<UniqueFd> handed;
  const upgrade::HandoffState state = upgrade::capture(hub, "test", &handed);
  ::kill(background, SIGKILL);
  REQUIRE(state.terminals.size() == 1);
  CHECK(state.terminals[0].exited);
  CHECK(state.terminals[0].exit_code == 4);
  CHECK(handed.empty());
}

}  // namespace
}  // namespace ptyhub::hub
