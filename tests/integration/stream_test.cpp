// The output stream that loses nothing (docs/protocol.md §4 Requests: subscribe/since/pause; §6 The output
// stream, with flow control): reconnecting with `since`, shell.gap when `since` left the ring, identical
// streams for every subscriber, shell.pause / shell.resume, a client that never reads, the shell:terminals
// snapshot and its deltas, detached_timeout, and a subscriber that arrives after the exit.
//
// Every test runs the real daemon with real PTYs. Large outputs come from files of known content that the
// test writes into the daemon's home, so every received byte can be compared with the byte expected at its
// offset. A terminal that must not start writing before its subscribers are in place prints "R" and waits
// for one line of input (echo off).
#include <doctest/doctest.h>

#include <sys/wait.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <fstream>
#include <map>
#include <set>
#include <string>

#include "tests/support/daemon_process.hpp"
#include "tests/support/test_client.hpp"

namespace ptyhub::test {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::uint64_t kKiB = 1024;
constexpr std::uint64_t kMiB = 1024 * kKiB;

// Prints "R", waits for a line of input, then runs the rest of the script. Echo is off, so the line
// itself never reaches the output.
const std::string kGate = "stty -echo; printf R; read x; ";

Json sh(const std::string& script) { return Json{"/bin/sh", "-c", script}; }

std::string channel_of(const std::string& terminal_id) { return "shell:terminal:" + terminal_id; }

std::chrono::milliseconds left_until(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() > 0 ? left : std::chrono::milliseconds(0);
}

// Deterministic bytes: a 64-bit LCG, one byte per step from its high bits.
class Lcg {
 public:
  explicit Lcg(std::uint64_t seed) : state_(seed * 2862933555777941757ULL + 3037000493ULL) {}
  std::uint64_t next() {
    state_ = state_ * 6364136223846793005ULL + 1442695040888963407ULL;
    return state_ >> 33;
  }

 private:
  std::uint64_t state_;
};

// `size` bytes of every value 0..255.
std::string random_bytes(std::size_t size, std::uint64_t seed) {
  Lcg lcg(seed);
  std::string out(size, '\0');
  for (char& c : out) c = static_cast<char>(lcg.next() & 0xff);
  return out;
}

// `size` printable ASCII characters without newlines: a PTY passes them through unchanged.
std::string random_text(std::size_t size, std::uint64_t seed) {
  static constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.,:+=";
  Lcg lcg(seed);
  std::string out(size, '\0');
  for (char& c : out) c = kAlphabet[lcg.next() % kAlphabet.size()];
  return out;
}

void write_file(const std::filesystem::path& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  REQUIRE(out.good());
}

// Where two byte strings first differ, for failure messages; empty when equal.
std::string difference(const std::string& actual, const std::string& expected) {
  if (actual == expected) return {};
  const auto mismatch = std::mismatch(actual.begin(), actual.end(), expected.begin(), expected.end());
  const auto at = static_cast<std::size_t>(mismatch.first - actual.begin());
  return "sizes " + std::to_string(actual.size()) + " (actual) vs " + std::to_string(expected.size()) +
         " (expected), first difference at byte " + std::to_string(at);
}

std::string data_of(const Json& message, const char* key) {
  if (!message.contains("data") || !message["data"].is_object()) return {};
  return message["data"].value(key, "");
}

bool is_type(const Json& message, std::string_view type) {
  return message.is_object() && message.value("type", "") == type;
}

// True for a shell.output / shell.gap / shell.exit of terminal `id` on its own channel.
bool is_stream_message(const Json& message, const std::string& id) {
  return message.is_object() && message.value("channel", "") == channel_of(id) &&
         data_of(message, "terminalId") == id &&
         (is_type(message, "shell.output") || is_type(message, "shell.gap") || is_type(message, "shell.exit"));
}

// The stream messages of terminal `id` in the client's history from index `from` on.
std::vector<Json> stream_messages(TestClient& client, const std::string& id, std::size_t from) {
  std::vector<Json> found;
  for (std::size_t i = from; i < client.history().size(); ++i) {
    if (is_stream_message(client.history()[i], id)) found.push_back(client.history()[i]);
  }
  return found;
}

// Receives one message (up to `timeout`). False when none arrived.
bool pump_one(TestClient& client, std::chrono::milliseconds timeout) {
  return client.wait_for([](const Json&) { return true; }, timeout, client.mark()).has_value();
}

// Services `clients` in turn, one message each, until `done` holds or the deadline passes.
bool pump_until(const std::vector<TestClient*>& clients, const std::function<bool()>& done,
                std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() >= deadline) return false;
    bool any_open = false;
    for (TestClient* client : clients) {
      if (client->ws().closed() && client->ws().pending() == 0) continue;
      any_open = true;
      pump_one(*client, std::min<std::chrono::milliseconds>(5ms, left_until(deadline)));
    }
    if (!any_open) return done();
  }
  return true;
}

// Subscribes to a terminal channel; returns the `subscribed` reply (fails the test otherwise).
Json subscribe(TestClient& client, const std::string& id, Json extra = Json::object()) {
  extra["channel"] = channel_of(id);
  auto reply = client.request("subscribe", extra, 10s);
  INFO("subscribe ", extra.dump(), " -> ", brief(reply));
  REQUIRE(reply);
  REQUIRE((*reply)["type"] == "subscribed");
  return (*reply)["data"];
}

// Checks, over the messages since the client's latest subscription to the terminal, that each gap starts
// and each chunk begins where the stream stood, that every chunk holds the bytes `expected` has at its
// offsets, and that one shell.exit at most comes last. Also reports the rules the client recorded.
void check_stream(TestClient& client, const std::string& id, const std::string& expected) {
  for (const auto& problem : client.output(id).problems) FAIL_CHECK(problem);
  std::size_t from = 0;
  for (std::size_t i = 0; i < client.history().size(); ++i) {
    const Json& m = client.history()[i];
    if ((is_type(m, "subscribed") && data_of(m, "channel") == channel_of(id)) ||
        (is_type(m, "shell.created") && m.contains("id") && m["data"]["terminal"].value("id", "") == id)) {
      from = i;
    }
  }
  std::optional<std::uint64_t> position;
  std::size_t bad = 0;
  bool exited = false;
  for (const Json& m : stream_messages(client, id, from)) {
    const Json& data = m["data"];
    if (exited && ++bad <= 3) FAIL_CHECK("after shell.exit: " << m.dump().substr(0, 200));
    if (is_type(m, "shell.exit")) {
      exited = true;
      continue;
    }
    const bool gap = is_type(m, "shell.gap");
    const auto start = data.value(gap ? "from" : "offset", std::uint64_t{0});
    const auto end = data.value(gap ? "to" : "next", std::uint64_t{0});
    if (position && start != *position && ++bad <= 3) {
      FAIL_CHECK(m.value("type", "") << " starts at " << start << ", the stream stood at " << *position);
    }
    position = end;
    if (gap) continue;
    const std::string text = data.value("data", "");
    const std::string bytes = data.value("encoding", "utf8") == "base64" ? decode_base64(text) : text;
    if ((end > expected.size() || bytes != expected.substr(start, end - start)) && ++bad <= 3) {
      FAIL_CHECK("chunk [" << start << ", " << end << ") does not hold the expected bytes");
    }
  }
  CHECK(bad == 0);
}

// Reads /proc/<pid>/status VmRSS in bytes; 0 when unavailable.
std::uint64_t resident_bytes(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * kKiB;
  }
  return 0;
}

constexpr bool kSanitized =
#if defined(__SANITIZE_ADDRESS__)
    true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    true;
#else
    false;
#endif
#else
    false;
#endif

// Quarantine of freed memory given to a daemon built with ASan when its memory is measured.
constexpr std::uint64_t kAsanQuarantineMiB = 16;

// Sets an environment variable (inherited by daemons started meanwhile) and restores it when destroyed.
class ScopedEnv {
 public:
  ScopedEnv(std::string name, const std::string& value) : name_(std::move(name)) {
    if (const char* old = std::getenv(name_.c_str())) old_ = old;
    ::setenv(name_.c_str(), value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) ::setenv(name_.c_str(), old_->c_str(), 1);
    else ::unsetenv(name_.c_str());
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

// Stops the daemon with SIGTERM: it must exit 0 without a sanitizer report (leaks show at exit).
void stop_cleanly(DaemonProcess& daemon) {
  auto status = daemon.stop(SIGTERM, 15s);
  REQUIRE(status);
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 0);
  CHECK_MESSAGE(daemon.sanitizer_findings().empty(), daemon.sanitizer_findings());
}

// ---------------------------------------------------------------------------------------------------

TEST_CASE("stream: disconnect mid-stream and resume with since - every byte exactly once") {
  DaemonProcess daemon({"--ring-buffer-bytes", "8MiB", "--client-queue-limit", "256KiB"});
  INFO(daemon.log());
  REQUIRE(daemon.started());
  const std::string content = random_bytes(6 * kMiB, 1);
  write_file(daemon.home() / "payload.bin", content);
  const std::string expected = "R" + content;  // output processing off: the bytes arrive unchanged

  auto creator = connect_user(daemon, "alice");
  const Json terminal =
      creator->create_terminal({{"command", sh("stty -opost; " + kGate + "exec cat payload.bin")}, {"subscribe", false}});
  const std::string id = terminal.value("id", "");
  REQUIRE(!id.empty());

  // A subscriber that pauses at once: while the reader is away nobody takes output live, so the PTY is
  // not read and the process is still writing when the reader comes back.
  auto holder = connect_user(daemon, "alice");
  subscribe(*holder, id, {{"since", 0}, {"encoding", "base64"}});
  auto paused = holder->request("shell.pause", {{"terminalId", id}});
  REQUIRE(paused);
  REQUIRE((*paused)["type"] == "ack");

  std::string assembled;
  std::uint64_t since = 0;
  const std::uint64_t cuts[] = {1 * kMiB, 2500 * kKiB, 4 * kMiB};
  for (std::size_t segment = 0; segment <= std::size(cuts); ++segment) {
    CAPTURE(segment);
    auto reader = connect_user(daemon, "alice");
    const Json subscribed = subscribe(*reader, id, {{"since", since}, {"encoding", "base64"}});
    CHECK(subscribed["replay"]["from"] == since);  // still retained: no gap
    CAPTURE(subscribed["terminal"]["outputBytes"]);
    if (segment < 2) CHECK(subscribed["terminal"]["state"] == "running");  // the writer is still blocked
    if (segment == 0) {
      REQUIRE(reader->wait_output(id, "R", 5s));
      REQUIRE(reader->request("shell.input", {{"terminalId", id}, {"data", "go\n"}}));
    }
    const TerminalOutput& output = reader->output(id);
    if (segment < std::size(cuts)) {
      REQUIRE(pump_until({reader.get()}, [&] { return output.next >= cuts[segment]; }, 20s));
    } else {
      REQUIRE(reader->wait_exit(id, 20s));
      CHECK((*output.exit)["exitCode"] == 0);
      CHECK((*output.exit)["outputBytes"] == expected.size());
    }
    CHECK(output.gaps.empty());
    for (const auto& problem : output.problems) FAIL_CHECK(problem);
    if (!output.chunks.empty()) CHECK(output.first_offset == std::optional<std::uint64_t>(since));
    const std::uint64_t end = output.chunks.empty() ? since : output.next;
    CHECK(output.text.size() == end - since);
    assembled += output.text;
    since = end;
    // Alternately drop the TCP connection without a close frame and close it properly.
    if (segment % 2 == 1) {
      reader->ws().close(1000, "bye");
      reader->ws().wait_closed(5s);
    }
  }
  CHECK(difference(assembled, expected) == "");

  // The paused holder resumes where it stopped: everything, in order, then the exit.
  auto resumed = holder->request("shell.resume", {{"terminalId", id}});
  REQUIRE(resumed);
  CHECK((*resumed)["type"] == "ack");
  REQUIRE(holder->wait_exit(id, 20s));
  CHECK(difference(holder->output(id).text, expected) == "");
  CHECK(holder->output(id).gaps.empty());
  check_stream(*holder, id, expected);
  stop_cleanly(daemon);
}

TEST_CASE("stream: since older than the ring gives an exact shell.gap, then the window to the end") {
  constexpr std::uint64_t kRing = 4 * kKiB;
  DaemonProcess daemon({"--ring-buffer-bytes", "4KiB"});
  INFO(daemon.log());
  REQUIRE(daemon.started());
  const std::string content = random_text(100 * kKiB, 2);
  write_file(daemon.home() / "payload.txt", content);

  auto client = connect_user(daemon, "alice");
  auto lifecycle = client->request("subscribe", {{"channel", "shell:terminals"}});
  REQUIRE(lifecycle);
  const Json terminal =
      client->create_terminal({{"command", sh("exec cat payload.txt")}, {"subscribe", false}});
  const std::string id = terminal.value("id", "");
  REQUIRE(!id.empty());
  auto exited = client->wait_for(
      [&](const Json& m) { return is_type(m, "shell.exit") && m.value("channel", "") == "shell:terminals" &&
                                  data_of(m, "terminalId") == id; },
      10s);
  REQUIRE(exited);
  const auto total = (*exited)["data"].value("outputBytes", std::uint64_t{0});
  REQUIRE(total == content.size());
  const std::uint64_t ring_start = total - kRing;

  SUBCASE("since 0: shell.gap {0, ring start} first, then the window, then shell.exit") {
    const std::size_t from = client->mark();
    const Json subscribed = subscribe(*client, id, {{"since", 0}});
    CHECK(subscribed["replay"]["from"] == ring_start);
    CHECK(subscribed["replay"]["to"] == total);
    REQUIRE(client->wait_exit(id, 10s));
    auto messages = stream_messages(*client, id, from);
    REQUIRE(messages.size() >= 3);
    CHECK(messages.front()["type"] == "shell.gap");
    CHECK(messages.front()["data"]["from"] == 0);
    CHECK(messages.front()["data"]["to"] == ring_start);
    CHECK(messages.back()["type"] == "shell.exit");
    const TerminalOutput& output = client->output(id);
    CHECK(output.gaps.size() == 1);
    CHECK(output.first_offset == std::optional<std::uint64_t>(ring_start));
    CHECK(output.next == total);
    CHECK(difference(output.text, content.substr(ring_start)) == "");
    check_stream(*client, id, content);
  }
  SUBCASE("since inside the gap: shell.gap {since, ring start}") {
    const std::size_t from = client->mark();
    subscribe(*client, id, {{"since", 12345}, {"encoding", "base64"}});
    REQUIRE(client->wait_exit(id, 10s));
    auto messages = stream_messages(*client, id, from);
    REQUIRE(!messages.empty());
    CHECK(messages.front()["type"] == "shell.gap");
    CHECK(messages.front()["data"]["from"] == 12345);
    CHECK(messages.front()["data"]["to"] == ring_start);
    CHECK(difference(client->output(id).text, content.substr(ring_start)) == "");
    check_stream(*client, id, content);
  }
  SUBCASE("without since: no gap, replay.from is the ring start") {
    const std::size_t from = client->mark();
    const Json subscribed = subscribe(*client, id);
    CHECK(subscribed["replay"]["from"] == ring_start);
    CHECK(subscribed["replay"]["to"] == total);
    REQUIRE(client->wait_exit(id, 10s));
    auto messages = stream_messages(*client, id, from);
    REQUIRE(!messages.empty());
    CHECK(messages.front()["type"] == "shell.output");
    CHECK(client->output(id).gaps.empty());
    CHECK(difference(client->output(id).text, content.substr(ring_start)) == "");
    check_stream(*client, id, content);
  }
  SUBCASE("since at the end: only shell.exit - since beyond the end: bad_message data.since") {
    const std::size_t from = client->mark();
    const Json subscribed = subscribe(*client, id, {{"since", total}});
    CHECK(subscribed["replay"]["from"] == total);
    CHECK(subscribed["replay"]["to"] == total);
    REQUIRE(client->wait_exit(id, 10s));
    auto messages = stream_messages(*client, id, from);
    REQUIRE(messages.size() == 1);
    CHECK(messages.front()["type"] == "shell.exit");

    auto beyond = client->request("subscribe", {{"channel", channel_of(id)}, {"since", total + 1}});
    INFO(brief(beyond));
    CHECK(is_error(beyond, "bad_message", "data.since"));
  }
  stop_cleanly(daemon);
}

TEST_CASE("stream: two subscribers on two connections receive identical streams") {
  DaemonProcess daemon;
  INFO(daemon.log());
  REQUIRE(daemon.started());
  const std::string content = random_text(3 * kMiB, 3);
  write_file(daemon.home() / "payload.txt", content);
  const std::string expected = "R" + content;

  auto first = connect_user(daemon, "alice");
  auto second = connect_user(daemon, "alice");
  const Json terminal = first->create_terminal({{"command", sh(kGate + "exec cat payload.txt")}});  // utf8
  const std::string id = terminal.value("id", "");
  REQUIRE(!id.empty());
  const Json subscribed = subscribe(*second, id, {{"encoding", "base64"}});
  CHECK(subscribed["replay"]["from"] == 0);
  REQUIRE(first->wait_output(id, "R", 5s));
  REQUIRE(second->wait_output(id, "R", 5s));
  REQUIRE(first->request("shell.input", {{"terminalId", id}, {"data", "go\n"}}));

  const TerminalOutput& a = first->output(id);
  const TerminalOutput& b = second->output(id);
  REQUIRE(pump_until({first.get(), second.get()}, [&] { return a.exit && b.exit; }, 25s));
  CHECK(*a.exit == *b.exit);
  CHECK((*a.exit)["outputBytes"] == expected.size());
  CHECK(a.first_offset == std::optional<std::uint64_t>(0));
  CHECK(b.first_offset == std::optional<std::uint64_t>(0));
  CHECK(a.next == expected.size());
  CHECK(b.next == expected.size());
  CHECK(a.gaps.empty());
  CHECK(b.gaps.empty());
  CHECK(difference(a.text, expected) == "");
  CHECK(difference(b.text, expected) == "");
  check_stream(*first, id, expected);
  check_stream(*second, id, expected);
  for (const Json& chunk : a.chunks) CHECK_FALSE(chunk.contains("encoding"));
  for (const Json& chunk : b.chunks) CHECK(chunk.value("encoding", "") == "base64");
  stop_cleanly(daemon);
}

// The terminal of the pause tests: `first` creates it (subscribed), `second` subscribes; it writes
// `content` after the gate opens.
struct PauseSetup {
  std::unique_ptr<TestClient> first;
  std::unique_ptr<TestClient> second;
  std::string id;
};

// The content comes in two parts: the second only after another line of input, which
// pause_while_other_reads sends once `first` has paused, so the stream cannot end before the pause.
constexpr std::size_t kFirstPart = 1 * kMiB;

PauseSetup start_paused_stream(DaemonProcess& daemon, const std::string& content) {
  REQUIRE(content.size() > kFirstPart);
  write_file(daemon.home() / "part1.txt", content.substr(0, kFirstPart));
  write_file(daemon.home() / "part2.txt", content.substr(kFirstPart));
  PauseSetup setup;
  setup.first = connect_user(daemon, "alice");
  setup.second = connect_user(daemon, "alice");
  const Json terminal =
      setup.first->create_terminal({{"command", sh(kGate + "cat part1.txt; read y; exec cat part2.txt")}});
  setup.id = terminal.value("id", "");
  REQUIRE(!setup.id.empty());
  subscribe(*setup.second, setup.id);
  REQUIRE(setup.first->wait_output(setup.id, "R", 5s));
  REQUIRE(setup.second->wait_output(setup.id, "R", 5s));
  REQUIRE(setup.first->request("shell.input", {{"terminalId", setup.id}, {"data", "go\n"}}));
  return setup;
}

// `first` reads past `threshold`, pauses, sees nothing of the terminal while `second` reads the whole
// stream to its exit, and resumes. Returns the history index of the resume's ack and the stream position
// at the pause.
std::pair<std::size_t, std::uint64_t> pause_while_other_reads(PauseSetup& setup, std::uint64_t threshold) {
  TestClient& first = *setup.first;
  TestClient& second = *setup.second;
  const std::string& id = setup.id;
  REQUIRE(pump_until({&first, &second}, [&] { return first.output(id).next >= threshold; }, 20s));
  auto paused = first.request("shell.pause", {{"terminalId", id}}, 10s);
  REQUIRE(paused);
  REQUIRE((*paused)["type"] == "ack");
  const std::size_t paused_at = first.mark();
  const std::uint64_t position = first.output(id).next;
  CHECK_FALSE(first.output(id).exit);
  REQUIRE(first.request("shell.input", {{"terminalId", id}, {"data", "go\n"}}));  // the second part

  // While output flows to `second`, `first` gets nothing of the terminal.
  REQUIRE(pump_until({&first, &second}, [&] { return second.output(id).exit.has_value(); }, 25s));
  first.drain(200ms);
  const auto while_paused = stream_messages(first, id, paused_at);
  CHECK(while_paused.empty());
  if (!while_paused.empty()) FAIL_CHECK("while paused: " << while_paused.front().dump().substr(0, 300));
  CHECK(first.output(id).next == position);

  auto resumed = first.request("shell.resume", {{"terminalId", id}}, 10s);
  REQUIRE(resumed);
  REQUIRE((*resumed)["type"] == "ack");
  const std::size_t resumed_at = first.mark() - 1;
  REQUIRE(first.wait_exit(id, 20s));
  return {resumed_at, position};
}

TEST_CASE("stream: shell.pause stops a subscriber's output - shell.resume continues without loss while the ring holds") {
  DaemonProcess daemon({"--ring-buffer-bytes", "12MiB", "--client-queue-limit", "256KiB"});
  INFO(daemon.log());
  REQUIRE(daemon.started());
  const std::string expected = "R" + random_text(8 * kMiB, 4);
  PauseSetup setup = start_paused_stream(daemon, expected.substr(1));
  const auto [resumed_at, position] = pause_while_other_reads(setup, 256 * kKiB);
  CHECK(position < expected.size());

  const auto after = stream_messages(*setup.first, setup.id, resumed_at);
  REQUIRE(!after.empty());
  CHECK(after.front()["type"] == "shell.output");
  CHECK(after.front()["data"]["offset"] == position);
  const TerminalOutput& output = setup.first->output(setup.id);
  CHECK(output.gaps.empty());
  CHECK(difference(output.text, expected) == "");
  CHECK((*output.exit)["outputBytes"] == expected.size());
  check_stream(*setup.first, setup.id, expected);
  CHECK(difference(setup.second->output(setup.id).text, expected) == "");
  stop_cleanly(daemon);
}

TEST_CASE("stream: shell.resume after the ring moved on - an exact shell.gap, then the ring, then the exit") {
  constexpr std::uint64_t kRing = 4 * kKiB;
  DaemonProcess daemon({"--ring-buffer-bytes", "4KiB", "--client-queue-limit", "256KiB"});
  INFO(daemon.log());
  REQUIRE(daemon.started());
  // Small: with a 4 KiB ring the PTY is read 2 KiB per wake-up.
  const std::string expected = "R" + random_text(2 * kMiB, 5);
  PauseSetup setup = start_paused_stream(daemon, expected.substr(1));
  const auto [resumed_at, position] = pause_while_other_reads(setup, 256 * kKiB);

  const TerminalOutput& output = setup.first->output(setup.id);
  const auto total = (*output.exit).value("outputBytes", std::uint64_t{0});
  CHECK(total == expected.size());
  const auto after = stream_messages(*setup.first, setup.id, resumed_at);
  REQUIRE(after.size() >= 3);
  CHECK(after.front()["type"] == "shell.gap");
  CHECK(after.front()["data"]["from"] == position);
  CHECK(after.front()["data"]["to"] == total - kRing);
  CHECK(after[1]["type"] == "shell.output");
  CHECK(after[1]["data"]["offset"] == total - kRing);
  CHECK(after.back()["type"] == "shell.exit");
  CHECK(output.next == total);
  check_stream(*setup.first, setup.id, expected);
  // The other reader may itself have lagged behind the small ring (while only `first` was serviced); its
  // stream is still exact around any gap and reaches the end.
  CHECK(setup.second->output(setup.id).next == total);
  check_stream(*setup.second, setup.id, expected);
  stop_cleanly(daemon);
}

TEST_CASE("stream: shell.pause and shell.resume without a subscription are conflict") {
  DaemonProcess daemon;
  INFO(daemon.log());
  REQUIRE(daemon.started());
  auto owner = connect_user(daemon, "alice");
  auto other = connect_user(daemon, "alice");
  const Json terminal = owner->create_terminal({{"command", sh("exec sleep 30")}});
  const std::string id = terminal.value("id", "");
  REQUIRE(!id.empty());

  for (const char* type : {"shell.pause", "shell.resume"}) {
    CAPTURE(type);
    auto reply = other->request(type, {{"terminalId", id}});
    INFO(brief(reply));
    CHECK(is_error(reply, "conflict", "data.terminalId"));
    auto unknown = other->request(type, {{"terminalId", "AAAAAAAAAAAAAAAAAAAAAA"}});
    INFO(brief(unknown));
    CHECK(is_error(unknown, "not_found"));
  }
  // Subscribed: ack. Unsubscribed again: conflict.
  subscribe(*other, id);
  auto paused = other->request("shell.pause", {{"terminalId", id}});
  CHECK((paused && (*paused)["type"] == "ack"));
  auto unsubscribed = other->request("unsubscribe", {{"channel", channel_of(id)}});
  REQUIRE(unsubscribed);
  CHECK((*unsubscribed)["type"] == "unsubscribed");
  auto resumed = other->request("shell.resume", {{"terminalId", id}});
  INFO(brief(resumed));
  CHECK(is_error(resumed, "conflict", "data.terminalId"));
  REQUIRE(owner->request("shell.kill", {{"terminalId", id}, {"signal", "SIGKILL"}}));
  CHECK(owner->wait_exit(id, 10s));
  stop_cleanly(daemon);
}

// One PTY wake-up's output (up to 256 KiB raw) must not become a frame that alone passes the hard cap of
// the smallest allowed client_queue_limit.
TEST_CASE("stream: the smallest client_queue_limit never closes a reading client") {
  DaemonProcess daemon({"--client-queue-limit", "64KiB"});
  INFO(daemon.log());
  REQUIRE(daemon.started());
  const std::string content = random_text(4 * kMiB, 6);
  write_file(daemon.home() / "payload.txt", content);
  const std::string expected = "R" + content;

  auto utf8 = connect_user(daemon, "alice");
  auto base64 = connect_user(daemon, "alice");
  const Json terminal = utf8->create_terminal({{"command", sh(kGate + "exec cat payload.txt")}});
  const std::string id = terminal.value("id", "");
  REQUIRE(!id.empty());
  subscribe(*base64, id, {{"encoding", "base64"}});
  REQUIRE(utf8->wait_output(id, "R", 5s));
  REQUIRE(base64->wait_output(id, "R", 5s));
  REQUIRE(utf8->request("shell.input", {{"terminalId", id}, {"data", "go\n"}}));

  // Both clients read all the time (one that stops reading would be left behind, with a shell.gap).
  const bool both_exited = pump_until(
      {utf8.get(), base64.get()},
      [&] { return utf8->output(id).exit.has_value() && base64->output(id).exit.has_value(); }, 20s);
  for (TestClient* client : {utf8.get(), base64.get()}) {
    const TerminalOutput& output = client->output(id);
    const bool exited = both_exited || output.exit.has_value();
    std::size_t largest = 0;
    for (const Json& chunk : output.chunks) largest = std::max<std::size_t>(largest, chunk.value("data", "").size());
    INFO("close code ", client->ws().close_code(), " reason '", client->ws().close_reason(), "' after ", output.next,
         " of ", expected.size(), " bytes, largest chunk data ", largest, " characters, ", output.gaps.size(),
         " gaps, ", output.problems.size(), " problems");
    CHECK(output.gaps.empty());
    CHECK(output.problems.empty());
    CHECK(exited);
    CHECK(client->ws().close_code() == 0);
    CHECK(difference(output.text, expected) == "");
  }
  // Whatever happened to those connections, the terminal runs to its end (watched on shell:terminals: a
  // live subscriber would meet the same limit).
  auto watcher = connect_user(daemon, "alice");
  auto snapshot = watcher->request("subscribe", {{"channel", "shell:terminals"}});
  REQUIRE(snapshot);
  std::uint64_t total = 0;
  for (const Json& t : (*snapshot)["data"]["terminals"]) {
    if (t.value("id", "") == id && t.value("state", "") == "exited") total = t.value("outputBytes", std::uint64_t{0});
  }
  if (total == 0) {
    auto exit = watcher->wait_for(
        [&](const Json& m) { return is_type(m, "shell.exit") && data_of(m, "terminalId") == id; }, 20s);
    REQUIRE(exit);
    total = (*exit)["data"].value("outputBytes", std::uint64_t{0});
  }
  CHECK(total == expected.size());
  stop_cleanly(daemon);
}

// The ring (4 KiB) is far smaller than one PTY wake-up's read by default (256 KiB) and than a client's
// queue (64 KiB): a wake-up may only read what the ring can hold beside a reader that is momentarily full,
// or that reader is left a shell.gap.
TEST_CASE("stream: two readers of one terminal both get every byte, even with a ring smaller than a PTY read") {
  DaemonProcess daemon({"--ring-buffer-bytes", "4KiB", "--client-queue-limit", "64KiB"});
  INFO(daemon.log());
  REQUIRE(daemon.started());
  const std::string content = random_text(2 * kMiB, 8);
  write_file(daemon.home() / "payload.txt", content);
  const std::string expected = "R" + content;
  auto first = connect_user(daemon, "alice");
  auto second = connect_user(daemon, "alice");
  const Json terminal = first->create_terminal({{"command", sh(kGate + "exec cat payload.txt")}});
  const std::string id = terminal.value("id", "");
  REQUIRE(!id.empty());
  subscribe(*second, id, {{"encoding", "base64"}});  // the one with more bytes to take
  REQUIRE(first->wait_output(id, "R", 5s));
  REQUIRE(second->wait_output(id, "R", 5s));
  REQUIRE(first->request("shell.input", {{"terminalId", id}, {"data", "go\n"}}));
  REQUIRE(pump_until(
      {first.get(), second.get()},
      [&] { return first->output(id).exit.has_value() && second->output(id).exit.has_value(); }, 30s));
  for (TestClient* client : {first.get(), second.get()}) {
    const TerminalOutput& output = client->output(id);
    CHECK(output.gaps.empty());
    CHECK(output.problems.empty());
    CHECK(difference(output.text, expected) == "");
  }
  stop_cleanly(daemon);
}

TEST_CASE("stream: a client that never reads does not stop a reading one - the daemon's memory stays bounded") {
  constexpr std::uint64_t kQueueLimit = 1 * kMiB;
  constexpr std::uint64_t kRing = 1 * kMiB;  // the default
  constexpr std::uint64_t kLines = 500000;
  constexpr std::uint64_t kLineBytes = 101;  // 99 'a', then "\r\n" from the PTY
  std::optional<ScopedEnv> asan_options;
  if (kSanitized) {
    const char* current = std::getenv("ASAN_OPTIONS");
    asan_options.emplace("ASAN_OPTIONS", std::string(current != nullptr ? current : "") + ":quarantine_size_mb=" +
                                             std::to_string(kAsanQuarantineMiB));
  }
  DaemonProcess daemon({"--client-queue-limit", "1MiB"});
  asan_options.reset();  // only the daemon needed it
  INFO(daemon.log());
  REQUIRE(daemon.started());
  const std::uint64_t expected_total = 1 + kLines * kLineBytes;  // "R" first

  auto reader = connect_user(daemon, "alice");
  auto stalled = connect_user(daemon, "alice");
  const Json terminal = reader->create_terminal(
      {{"command", sh(kGate + "yes " + std::string(99, 'a') + " | head -n " + std::to_string(kLines))}});
  const std::string id = terminal.value("id", "");
  REQUIRE(!id.empty());
  subscribe(*stalled, id);
  REQUIRE(stalled->wait_output(id, "R", 5s));
  REQUIRE(reader->wait_output(id, "R", 5s));
  const std::uint64_t baseline = resident_bytes(daemon.pid());
  REQUIRE(baseline > 0);
  REQUIRE(reader->request("shell.input", {{"terminalId", id}, {"data", "go\n"}}));

  // From here on `stalled` is never serviced. The reader takes the stream from its socket directly (its
  // history would hold the whole stream) and checks offsets and content on the way.
  std::uint64_t next = reader->output(id).next;
  std::optional<Json> exit = reader->output(id).exit;
  std::uint64_t peak = baseline;
  std::uint64_t samples = 0;
  std::vector<std::string> problems;
  auto last_sample = Clock::now();
  // A bound, not a pace: 50 MB take about 2 s here, about 20 s under AddressSanitizer on a busy machine.
  const auto deadline = Clock::now() + 60s;
  while (!exit && Clock::now() < deadline) {
    if (Clock::now() - last_sample >= 10ms) {
      peak = std::max(peak, resident_bytes(daemon.pid()));
      ++samples;
      last_sample = Clock::now();
    }
    auto message = reader->ws().receive(100ms);
    if (!message) {
      if (reader->ws().closed()) break;
      continue;
    }
    const Json parsed = Json::parse(message->payload, nullptr, false);
    if (!is_stream_message(parsed, id)) continue;
    const Json& data = parsed["data"];
    if (is_type(parsed, "shell.exit")) {
      exit = data;
    } else if (is_type(parsed, "shell.gap")) {
      problems.push_back("gap: " + data.dump());
    } else {
      const auto offset = data.value("offset", std::uint64_t{0});
      const std::string text = data.value("data", "");
      if (offset != next && problems.size() < 5) {
        problems.push_back("offset " + std::to_string(offset) + " after " + std::to_string(next));
      }
      if (text.find_first_not_of("a\r\n") != std::string::npos && problems.size() < 5) {
        problems.push_back("unexpected bytes at " + std::to_string(offset));
      }
      next = data.value("next", next);
      if (next - offset != text.size() && problems.size() < 5) problems.push_back("size mismatch at " + std::to_string(offset));
    }
  }
  peak = std::max(peak, resident_bytes(daemon.pid()));
  for (const auto& problem : problems) FAIL_CHECK(problem);
  REQUIRE(exit);
  CHECK((*exit)["exitCode"] == 0);
  CHECK((*exit)["outputBytes"] == expected_total);
  CHECK(next == expected_total);

  // Under ASan the daemon starts larger (shadow memory, allocator metadata) and freed memory waits in the
  // quarantine (limited above) before reuse: there the bound counts from the baseline.
  const std::uint64_t allowance = kSanitized ? baseline + kAsanQuarantineMiB * kMiB : 0;
  const std::uint64_t bound = 2 * kQueueLimit + kRing + 64 * kMiB + allowance;
  INFO("baseline RSS ", baseline / kKiB, " KiB, peak RSS ", peak / kKiB, " KiB over ", samples,
       " samples, bound ", bound / kKiB, " KiB");
  CHECK(samples > 10);
  CHECK(peak < bound);

  // Once it reads again, the stalled client gets what it had, a gap to the ring, the ring and the exit.
  REQUIRE(stalled->wait_exit(id, 20s));
  const TerminalOutput& lagging = stalled->output(id);
  for (const auto& problem : lagging.problems) FAIL_CHECK(problem);
  CHECK(lagging.first_offset == std::optional<std::uint64_t>(0));
  INFO("gaps: ", Json(lagging.gaps).dump(), " first ", lagging.first_offset.value_or(0), " next ", lagging.next);
  REQUIRE(!lagging.gaps.empty());  // more than one when the socket took a little more meanwhile
  CHECK(lagging.gaps.back()["to"] == expected_total - kRing);
  CHECK(lagging.next == expected_total);
  std::string expected = "R";
  for (std::uint64_t i = 0; i < kLines; ++i) expected += std::string(99, 'a') + "\r\n";
  check_stream(*stalled, id, expected);
  stop_cleanly(daemon);
}

TEST_CASE("stream: shell:terminals snapshot plus deltas stay consistent while terminals come and go") {
  DaemonProcess daemon({"--max-terminals-per-user", "500", "--max-terminals", "500"});
  INFO(daemon.log());
  REQUIRE(daemon.started());
  auto churner = connect_user(daemon, "alice");
  auto watcher = connect_user(daemon, "alice");

  // Terminals that exit at once or after a short while, created in batches without waiting for replies.
  constexpr int kBatches = 4;
  constexpr int kPerBatch = 12;
  auto send_batch = [&](int batch) {
    for (int i = 0; i < kPerBatch; ++i) {
      const int n = batch * kPerBatch + i;
      const std::string script = n % 3 == 0 ? "exit 0" : "sleep 0." + std::to_string(n % 4) + "5";
      churner->send({{"type", "shell.create"},
                     {"id", churner->next_id()},
                     {"data", {{"command", sh(script)}, {"subscribe", false}}}});
    }
    churner->ws().flush(5s);
  };
  auto created_ids = [&] {
    std::vector<std::string> ids;
    for (const Json& m : churner->history()) {
      if (is_type(m, "shell.created") && m.contains("id")) ids.push_back(m["data"]["terminal"].value("id", ""));
    }
    return ids;
  };

  send_batch(0);
  send_batch(1);
  watcher->send({{"type", "subscribe"}, {"id", "watch"}, {"data", {{"channel", "shell:terminals"}}}});
  watcher->ws().flush(5s);
  send_batch(2);
  auto reply = watcher->wait_for([](const Json& m) { return m.value("id", Json()) == "watch"; }, 10s);
  INFO(brief(reply));
  REQUIRE(reply);
  REQUIRE((*reply)["type"] == "subscribed");
  const std::size_t reply_at = [&] {
    for (std::size_t i = 0; i < watcher->history().size(); ++i) {
      if (watcher->history()[i].value("id", Json()) == "watch") return i;
    }
    return watcher->history().size();
  }();
  send_batch(3);
  REQUIRE(pump_until({churner.get(), watcher.get()},
                     [&] { return created_ids().size() == kBatches * kPerBatch; }, 20s));
  for (const Json& m : churner->history()) {
    if (is_type(m, "error")) FAIL_CHECK("shell.create failed: " << m.dump());
  }
  const auto ids = created_ids();

  // The watcher's view: the snapshot, then the deltas.
  struct Seen {
    bool running = false;
    bool exited = false;
    int created_events = 0;
    int exit_events = 0;
    bool in_snapshot = false;
  };
  std::map<std::string, Seen> view;
  std::vector<std::string> problems;
  for (const Json& t : (*reply)["data"]["terminals"]) {
    Seen& seen = view[t.value("id", "")];
    seen.in_snapshot = true;
    seen.running = t.value("state", "") == "running";
    seen.exited = t.value("state", "") == "exited";
  }
  std::size_t scanned = reply_at + 1;
  auto fold_events = [&] {
    for (; scanned < watcher->history().size(); ++scanned) {
      const Json& m = watcher->history()[scanned];
      if (m.value("channel", "") != "shell:terminals") continue;
      if (is_type(m, "shell.created")) {
        const std::string id = m["data"]["terminal"].value("id", "");
        Seen& seen = view[id];
        if (seen.in_snapshot) problems.push_back("shell.created for a terminal of the snapshot: " + id);
        if (seen.created_events++ > 0) problems.push_back("second shell.created: " + id);
        seen.running = true;
      } else if (is_type(m, "shell.exit")) {
        const std::string id = data_of(m, "terminalId");
        if (view.count(id) == 0) problems.push_back("shell.exit for an unknown terminal: " + id);
        Seen& seen = view[id];
        if (seen.exited) problems.push_back("shell.exit for an exited terminal: " + id);
        ++seen.exit_events;
        seen.exited = true;
        seen.running = false;
      } else {
        problems.push_back("unexpected event: " + m.dump());
      }
    }
  };
  auto all_exited = [&] {
    fold_events();
    return std::all_of(ids.begin(), ids.end(), [&](const std::string& id) { return view[id].exited; });
  };
  REQUIRE(pump_until({watcher.get()}, all_exited, 20s));
  watcher->drain(100ms);
  fold_events();
  for (const auto& problem : problems) FAIL_CHECK(problem);

  std::size_t from_snapshot = 0;
  for (const std::string& id : ids) {
    CAPTURE(id);
    const Seen& seen = view[id];
    CHECK(seen.in_snapshot + seen.created_events == 1);  // exactly one of the two
    CHECK(seen.exit_events <= 1);
    if (seen.in_snapshot) ++from_snapshot;
  }
  CHECK(view.size() == ids.size());
  CHECK(from_snapshot > 0);  // the subscription really happened amid the churn

  auto listed = watcher->request("shell.list");
  REQUIRE(listed);
  std::set<std::string> listed_ids;
  for (const Json& t : (*listed)["data"]["terminals"]) {
    listed_ids.insert(t.value("id", ""));
    CHECK(t["state"] == "exited");
  }
  CHECK(listed_ids == std::set<std::string>(ids.begin(), ids.end()));
  stop_cleanly(daemon);
}

TEST_CASE("stream: detached_timeout hangs up a terminal nobody subscribes to - not one with a subscriber") {
  DaemonProcess daemon({"--detached-timeout", "0.5", "--kill-grace", "1"});
  INFO(daemon.log());
  REQUIRE(daemon.started());
  auto watcher = connect_user(daemon, "alice");
  auto lifecycle = watcher->request("subscribe", {{"channel", "shell:terminals"}});
  REQUIRE(lifecycle);
  REQUIRE((*lifecycle)["type"] == "subscribed");
  auto owner = connect_user(daemon, "alice");

  const Json command = sh("printf started; exec sleep 30");
  const std::string detached = owner->create_terminal({{"command", command}, {"subscribe", false}}).value("id", "");
  const auto detached_created = Clock::now();
  const std::string attached = owner->create_terminal({{"command", command}}).value("id", "");
  const std::string left = owner->create_terminal({{"command", command}}).value("id", "");
  REQUIRE(!detached.empty());
  REQUIRE(!attached.empty());
  REQUIRE(!left.empty());
  // Unsubscribing starts the clock for `left`; so does closing the only subscribed connection.
  auto unsubscribed = owner->request("unsubscribe", {{"channel", channel_of(left)}});
  REQUIRE(unsubscribed);
  const auto left_at = Clock::now();
  std::string dropped;
  Clock::time_point dropped_at;
  {
    auto gone = connect_user(daemon, "alice");
    dropped = gone->create_terminal({{"command", command}}).value("id", "");
    REQUIRE(!dropped.empty());
    dropped_at = Clock::now();
  }

  std::map<std::string, Clock::time_point> exit_seen;
  std::map<std::string, Json> exits;
  std::size_t scanned = 0;
  auto collect = [&] {
    for (; scanned < watcher->history().size(); ++scanned) {
      const Json& m = watcher->history()[scanned];
      if (!is_type(m, "shell.exit") || m.value("channel", "") != "shell:terminals") continue;
      exit_seen.emplace(data_of(m, "terminalId"), Clock::now());
      exits.emplace(data_of(m, "terminalId"), m["data"]);
    }
  };
  REQUIRE(pump_until({watcher.get(), owner.get()},
                     [&] {
                       collect();
                       return exit_seen.count(detached) && exit_seen.count(left) && exit_seen.count(dropped);
                     },
                     10s));
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  const std::vector<std::pair<std::string, Clock::time_point>> timed = {
      {detached, detached_created}, {left, left_at}, {dropped, dropped_at}};
  for (const auto& [id, since] : timed) {
    CAPTURE(id);
    CHECK(exits[id]["signal"] == "SIGHUP");
    CHECK(exits[id]["exitCode"].is_null());
    const auto after = duration_cast<milliseconds>(exit_seen[id] - since).count();
    CAPTURE(after);
    CHECK(after >= 400);
    CHECK(after < 5000);
  }
  // The subscribed terminal is still running well past the timeout.
  const auto settle = detached_created + 1500ms;
  pump_until({watcher.get(), owner.get()}, [&] { return Clock::now() >= settle; }, 3s);
  collect();
  CHECK(exit_seen.count(attached) == 0);
  CHECK_FALSE(owner->output(attached).exit);

  // A late subscriber gets the retained output and the exit with its signal.
  const Json subscribed = subscribe(*owner, detached);
  CHECK(subscribed["terminal"]["state"] == "exited");
  CHECK(subscribed["terminal"]["signal"] == "SIGHUP");
  auto exit = owner->wait_exit(detached, 5s);
  REQUIRE(exit);
  CHECK((*exit)["signal"] == "SIGHUP");
  CHECK(owner->output(detached).text == "started");

  REQUIRE(owner->request("shell.kill", {{"terminalId", attached}, {"signal", "SIGKILL"}}));
  CHECK(owner->wait_exit(attached, 10s));
  stop_cleanly(daemon);
}

TEST_CASE("stream: a subscriber that arrives after the exit gets the retained output, then shell.exit") {
  DaemonProcess daemon;
  INFO(daemon.log());
  REQUIRE(daemon.started());
  auto client = connect_user(daemon, "alice");
  auto lifecycle = client->request("subscribe", {{"channel", "shell:terminals"}});
  REQUIRE(lifecycle);
  const std::string id =
      client->create_terminal({{"command", sh("seq 1 20000; exit 7")}, {"subscribe", false}}).value("id", "");
  REQUIRE(!id.empty());
  REQUIRE(client->wait_for(
      [&](const Json& m) { return is_type(m, "shell.exit") && data_of(m, "terminalId") == id; }, 10s));
  std::string expected;
  for (int i = 1; i <= 20000; ++i) expected += std::to_string(i) + "\r\n";

  for (const char* encoding : {"utf8", "base64"}) {
    CAPTURE(encoding);
    auto late = connect_user(daemon, "alice");
    const std::size_t from = late->mark();
    const Json subscribed = subscribe(*late, id, {{"encoding", encoding}});
    CHECK(subscribed["terminal"]["state"] == "exited");
    CHECK(subscribed["terminal"]["exitCode"] == 7);
    CHECK(subscribed["replay"]["from"] == 0);
    CHECK(subscribed["replay"]["to"] == expected.size());
    auto exit = late->wait_exit(id, 10s);
    REQUIRE(exit);
    CHECK((*exit)["exitCode"] == 7);
    CHECK((*exit)["signal"].is_null());
    CHECK((*exit)["outputBytes"] == expected.size());
    late->drain(100ms);
    const auto messages = stream_messages(*late, id, from);
    REQUIRE(!messages.empty());
    CHECK(messages.back()["type"] == "shell.exit");  // last, and only once
    CHECK(std::count_if(messages.begin(), messages.end(), [](const Json& m) { return is_type(m, "shell.exit"); }) == 1);
    const TerminalOutput& output = late->output(id);
    CHECK(output.gaps.empty());
    CHECK(difference(output.text, expected) == "");
    check_stream(*late, id, expected);
  }
  stop_cleanly(daemon);
}

// A terminal that writes 20 MB once released, watched only by `watcher`, which never reads from then on.
// The owner follows it on shell:terminals: it must end within seconds, not when keep-alive drops the
// watcher. Then the watcher reads again and gets what it had, an exact gap to the ring, the ring, the exit.
void check_watcher_does_not_freeze(DaemonProcess& daemon, TestClient& owner, TestClient& watcher, const std::string& id) {
  constexpr std::uint64_t kLines = 200000;
  constexpr std::uint64_t kLineBytes = 101;  // 99 'a', then "\r\n" from the PTY
  constexpr std::uint64_t kRing = 1 * kMiB;  // the default
  const std::uint64_t expected_total = 1 + kLines * kLineBytes;
  REQUIRE(watcher.wait_output(id, "R", 5s));
  REQUIRE(owner.request("subscribe", {{"channel", "shell:terminals"}}));
  REQUIRE(owner.request("unsubscribe", {{"channel", channel_of(id)}}));
  REQUIRE(owner.request("shell.input", {{"terminalId", id}, {"data", "go\n"}}));

  // The watcher is not serviced now: its queue fills, then its socket.
  const auto exited = owner.wait_event("shell.exit", id, 20s);
  REQUIRE(exited);
  CHECK((*exited)["data"]["outputBytes"] == expected_total);

  REQUIRE(watcher.wait_exit(id, 20s));
  const TerminalOutput& lagging = watcher.output(id);
  for (const auto& problem : lagging.problems) FAIL_CHECK(problem);
  INFO("gaps: ", Json(lagging.gaps).dump(), " next ", lagging.next);
  REQUIRE(!lagging.gaps.empty());
  CHECK(lagging.gaps.back()["to"] == expected_total - kRing);
  CHECK(lagging.next == expected_total);
  stop_cleanly(daemon);
}

std::string flood_script() {
  return kGate + "yes " + std::string(99, 'a') + " | head -n 200000";
}

TEST_CASE("stream: a read-only viewer that stops reading never slows the terminal - it gets a gap instead") {
  DaemonProcess daemon({"--client-queue-limit", "256KiB"});
  INFO(daemon.log());
  REQUIRE(daemon.started());
  auto alice = connect_user(daemon, "alice");
  auto bob = connect_user(daemon, "bob");
  const Json terminal = alice->create_terminal({{"command", sh(flood_script())}});
  const std::string id = terminal.value("id", "");
  REQUIRE(!id.empty());
  REQUIRE(alice->request("shell.share", {{"terminalId", id}, {"user", "bob"}, {"mode", "read"}}));
  subscribe(*bob, id);
  check_watcher_does_not_freeze(daemon, *alice, *bob, id);
}

TEST_CASE("stream: a writer that stops reading holds the terminal only until it counts as stalled") {
  DaemonProcess daemon({"--client-queue-limit", "256KiB"});
  INFO(daemon.log());
  REQUIRE(daemon.started());
  auto alice = connect_user(daemon, "alice");
  auto alice_elsewhere = connect_user(daemon, "alice");
  const Json terminal = alice->create_terminal({{"command", sh(flood_script())}});
  const std::string id = terminal.value("id", "");
  REQUIRE(!id.empty());
  subscribe(*alice_elsewhere, id);
  check_watcher_does_not_freeze(daemon, *alice, *alice_elsewhere, id);
}

}  // namespace
}  // namespace ptyhub::test
