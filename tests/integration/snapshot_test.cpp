// subscribe {snapshot: true} (docs/protocol.md §6, Snapshots; docs/snapshots.md): a late joiner gets the
// screen of real programs (a coloured shell, less, vi) as bytes, then live output from exactly its offset.
// Two screen models — one fed a subscriber's whole stream from 0, one fed the joiner's snapshot and what
// followed — must show the same cells, cursor and modes. A snapshot holds no query; bad requests are
// refused as for subscribe.
#include <doctest/doctest.h>

#include <string>

#include "src/screen/screen_model.hpp"
#include "tests/support/daemon_process.hpp"
#include "tests/support/test_client.hpp"

namespace ptyhub::test {
namespace {

using screen::ScreenModel;

// Why two models differ ("" when they show the same).
std::string difference(const ScreenModel& a, const ScreenModel& b) {
  for (int row = 0; row < a.rows(); ++row) {
    for (int col = 0; col < a.cols(); ++col) {
      if (!(a.cell(row, col) == b.cell(row, col))) return "cell " + std::to_string(row) + "," + std::to_string(col);
    }
  }
  if (a.cursor_row() != b.cursor_row() || a.cursor_col() != b.cursor_col()) return "cursor";
  if (a.alt_screen() != b.alt_screen()) return "alternate screen";
  if (a.cursor_visible() != b.cursor_visible()) return "cursor visibility";
  if (a.modes() != b.modes()) return "modes";
  return "";
}

// The text of a row of a model (for readable checks).
std::string row_text(const ScreenModel& model, int row) {
  std::string out;
  for (int col = 0; col < model.cols(); ++col) {
    const std::u32string chars = model.cell(row, col).chars;
    if (chars.empty()) out += ' ';
    for (char32_t c : chars) out += c < 0x80 ? static_cast<char>(c) : '?';
  }
  return out;
}

struct Joiner {
  std::unique_ptr<TestClient> client;
  Json snapshot;
};

// A second client of alice that subscribes to `id` with a snapshot.
Joiner join(const DaemonProcess& daemon, const std::string& id) {
  Joiner j;
  j.client = connect_user(daemon, "alice");
  const size_t from = j.client->mark();
  const auto reply = j.client->request("subscribe", {{"channel", "shell:terminal:" + id}, {"snapshot", true}});
  REQUIRE(reply);
  REQUIRE_MESSAGE(reply->value("type", "") == "subscribed", brief(reply));
  const auto snapshot = j.client->wait_event("shell.snapshot", id, 5s, from);
  REQUIRE(snapshot);
  j.snapshot = (*snapshot)["data"];
  return j;
}

// Waits until both clients have the terminal's output up to the same offset, at least `at_least`.
bool same_end(TestClient& a, TestClient& b, const std::string& id, uint64_t at_least) {
  return eventually([&] {
    a.drain(20ms);
    b.drain(20ms);
    return a.output(id).next >= at_least && a.output(id).next == b.output(id).next;
  }, 10s);
}

TEST_CASE("snapshot: a joiner at each step of a coloured shell, less, vi and top sees the same screen as a subscriber from the start") {
  DaemonProcess daemon;
  INFO(daemon.log());
  REQUIRE(daemon.started());
  auto first = connect_user(daemon, "alice");
  const std::string id = first->create_terminal({{"command", {"/bin/sh"}}, {"cols", 80}, {"rows", 24}, {"env", {{"LESS", ""}, {"PS1", "$ "}}}}).value("id", "");
  REQUIRE(!id.empty());
  struct Step {
    std::string input;
    std::string marker;  // in the output once the step has drawn
    std::string more;    // typed after the joiner came: both must then show the same
  };
  // less shows "@@ <line>" as its prompt, so each of its pages is seen to be drawn.
  const Step steps[] = {
      {"printf '\\033[1;31mred\\033[0m \\033[42mgreen bg\\033[0m \\344\\270\\255\\346\\226\\207\\n'; seq 1 60; echo step-one\n",
       "step-one\r\n$ ", "\n"},
      {"less -P'@@ %lb' /etc/services\n", "@@ ", "\x0c"},
      {" ", "@@ ", "\x0c"},
      {"/tcp\n", "@@ ", "\x0c"},
      {"q", "$ ", "\n"},
      {"vi -u NONE -n /etc/services\n", "services", "\x0c"},
      {"jjjjwwi\xe4\xb8\xad\x1b", "\xe4\xb8\xad", "\x0c"},
      {":q!\n", "$ ", "\n"},
      {"top -d 0.3\n", "Tasks:", "\x0c"},
      {"q", "$ ", "\n"},
  };
  int step_number = 0;
  for (const Step& step : steps) {
    ++step_number;
    CAPTURE(step_number);
    const size_t before = first->output(id).text.size();
    const auto typed = first->request("shell.input", {{"terminalId", id}, {"data", step.input}});
    REQUIRE(typed);
    REQUIRE_MESSAGE(typed->value("type", "") == "ack", brief(typed));
    const bool drawn = eventually([&] { first->drain(20ms); return first->output(id).text.find(step.marker, before) != std::string::npos; }, 10s);
    INFO("output of the step: ", first->output(id).text.substr(before));
    REQUIRE(drawn);
    Joiner joiner = join(daemon, id);
    CHECK(joiner.snapshot.value("exact", false));
    CHECK(joiner.snapshot.value("cols", 0) == 80);
    const std::string data = joiner.snapshot.value("data", "");
    for (const char* query : {"\x1b[c", "\x1b[>c", "\x1b[6n", "\x1b[5n", "]10;?", "]11;?", "$p"}) {
      CHECK_MESSAGE(data.find(query) == std::string::npos, "a query in the snapshot");
    }
    // Something more happens; then both have the same bytes and must show the same screen.
    REQUIRE(first->request("shell.input", {{"terminalId", id}, {"data", step.more}}));
    const uint64_t offset = joiner.snapshot.value("offset", uint64_t{0});
    REQUIRE(same_end(*first, *joiner.client, id, offset));
    CHECK(joiner.client->output(id).first_offset.value_or(offset) == offset);
    CHECK(joiner.client->output(id).gaps.empty());
    ScreenModel reference(80, 24, 1000);
    reference.feed(first->output(id).text);
    ScreenModel joined(80, 24, 1000);
    joined.feed(data);
    joined.feed(joiner.client->output(id).text);
    CHECK_MESSAGE(difference(reference, joined) == "", "row 0: ", row_text(reference, 0), " / ", row_text(joined, 0));
  }
  CHECK_MESSAGE(daemon.sanitizer_findings().empty(), daemon.sanitizer_findings());
}

TEST_CASE("snapshot: after 50 MB of output a joiner sees vi's screen at once, marked not exact") {
  DaemonProcess daemon;
  INFO(daemon.log());
  REQUIRE(daemon.started());
  auto client = connect_user(daemon, "alice");
  const std::string id = client->create_terminal({{"command", {"/bin/sh"}}, {"subscribe", false}, {"env", {{"PS1", "$ "}}}}).value("id", "");
  REQUIRE(!id.empty());
  REQUIRE(client->request("shell.input", {{"terminalId", id}, {"data", "head -c 50000000 /dev/zero | tr '\\0' x | fold -w 79; vi -u NONE -n /etc/services\n"}}));
  // vi is up once its file name shows on the joiner's screen.
  std::unique_ptr<ScreenModel> screen;
  Json snapshot;
  REQUIRE(eventually([&] {
    Joiner joiner = join(daemon, id);
    snapshot = joiner.snapshot;
    screen = std::make_unique<ScreenModel>(80, 24, 1000);
    screen->feed(joiner.snapshot.value("data", ""));
    return screen->alt_screen() && row_text(*screen, 23).find("services") != std::string::npos;
  }, 30s));
  CHECK(row_text(*screen, 0).find("xxxx") == std::string::npos);
  CHECK_FALSE(snapshot.value("exact", true));
  CHECK(snapshot.value("reason", "") == "output_skipped");
  const auto metrics = http_get(daemon.port(), "/metrics");
  REQUIRE(metrics);
  CHECK(metrics->body.find("ptyhub_snapshots_total 0") == std::string::npos);
  CHECK_MESSAGE(daemon.sanitizer_findings().empty(), daemon.sanitizer_findings());
}

TEST_CASE("snapshot: a wrong type, since with it, the terminal list, another's terminal and snapshots off are refused") {
  DaemonProcess daemon;
  INFO(daemon.log());
  REQUIRE(daemon.started());
  auto alice = connect_user(daemon, "alice");
  const std::string id = alice->create_terminal({{"command", {"/bin/sh"}}}).value("id", "");
  REQUIRE(!id.empty());
  const std::string channel = "shell:terminal:" + id;
  CHECK(is_error(alice->request("subscribe", {{"channel", channel}, {"snapshot", "yes"}}), "bad_message", "data.snapshot"));
  CHECK(is_error(alice->request("subscribe", {{"channel", channel}, {"snapshot", true}, {"since", 0}}), "bad_message", "data.snapshot"));
  CHECK(is_error(alice->request("subscribe", {{"channel", "shell:terminals"}, {"snapshot", true}}), "bad_message", "data.snapshot"));
  auto bob = connect_user(daemon, "bob");
  CHECK(is_error(bob->request("subscribe", {{"channel", channel}, {"snapshot", true}}), "not_found", "data.channel"));
  // base64 on request.
  const size_t from = alice->mark();
  REQUIRE(alice->request("subscribe", {{"channel", channel}, {"snapshot", true}, {"encoding", "base64"}}));
  const auto encoded = alice->wait_event("shell.snapshot", id, 5s, from);
  REQUIRE(encoded);
  CHECK((*encoded)["data"].value("encoding", "") == "base64");
  CHECK(decode_base64((*encoded)["data"].value("data", "")).rfind("\x1b" "c", 0) == 0);

  DaemonProcess off({"--snapshots", "off"});
  REQUIRE(off.started());
  auto carol = connect_user(off, "carol");
  const std::string other = carol->create_terminal({{"command", {"/bin/sh"}}}).value("id", "");
  CHECK(is_error(carol->request("subscribe", {{"channel", "shell:terminal:" + other}, {"snapshot", true}}), "unavailable", "data.snapshot"));
  CHECK_MESSAGE(daemon.sanitizer_findings().empty(), daemon.sanitizer_findings());
}

// The users in a viewers list, in order, as "user:role:connections".
std::string viewers_text(const Json& viewers) {
  std::string out;
  for (const Json& v : viewers) {
    out += (out.empty() ? "" : " ") + v.value("user", "") + ":" + v.value("role", "") + ":" +
           std::to_string(v.value("connections", 0));
    CHECK(is_iso_millis(v["since"]));
  }
  return out;
}

TEST_CASE("presence: subscribed lists the viewers - shell.viewers tells every subscriber who came and went, coalesced") {
  DaemonProcess daemon;
  INFO(daemon.log());
  REQUIRE(daemon.started());
  auto alice = connect_user(daemon, "alice");
  const std::string id = alice->create_terminal({{"command", {"/bin/sh"}}}).value("id", "");
  REQUIRE(!id.empty());
  const std::string channel = "shell:terminal:" + id;
  REQUIRE(alice->request("shell.share", {{"terminalId", id}, {"user", "bob"}, {"mode", "write"}}));
  REQUIRE(alice->request("shell.share", {{"terminalId", id}, {"user", "carol"}, {"mode", "read"}}));
  auto bob = connect_user(daemon, "bob");
  const auto bob_joined = bob->request("subscribe", {{"channel", channel}});
  REQUIRE(bob_joined);
  CHECK(viewers_text((*bob_joined)["data"]["viewers"]) == "alice:owner:1 bob:write:1");
  // Alice hears of bob.
  const auto seen = alice->wait_for([&](const Json& m) {
    return m.value("type", "") == "shell.viewers" && viewers_text(m["data"]["viewers"]) == "alice:owner:1 bob:write:1";
  }, 5s);
  REQUIRE(seen);
  CHECK((*seen)["channel"] == channel);
  // Carol twice (two connections) and a quick come-and-go of a third: one entry for carol, and the
  // come-and-go may not be seen at all (coalesced), but the final list is.
  auto carol1 = connect_user(daemon, "carol");
  auto carol2 = connect_user(daemon, "carol");
  REQUIRE(carol1->request("subscribe", {{"channel", channel}}));
  REQUIRE(carol2->request("subscribe", {{"channel", channel}}));
  REQUIRE(alice->wait_for([&](const Json& m) {
    return m.value("type", "") == "shell.viewers" && viewers_text(m["data"]["viewers"]) == "alice:owner:1 bob:write:1 carol:read:2";
  }, 5s));
  bob.reset();  // bob's connection goes away
  REQUIRE(alice->wait_for([&](const Json& m) {
    return m.value("type", "") == "shell.viewers" && viewers_text(m["data"]["viewers"]) == "alice:owner:1 carol:read:2";
  }, 5s));
  // Someone who may not read the terminal cannot subscribe, so never sees the list.
  auto mallory = connect_user(daemon, "mallory");
  CHECK(is_error(mallory->request("subscribe", {{"channel", channel}}), "not_found", "data.channel"));
  // Bursts are coalesced: 10 subscribe/unsubscribe pairs bring at most a few shell.viewers.
  const size_t from = alice->mark();
  auto dave = connect_user(daemon, "carol");
  for (int i = 0; i < 10; ++i) {
    REQUIRE(dave->request("subscribe", {{"channel", channel}}));
    REQUIRE(dave->request("unsubscribe", {{"channel", channel}}));
  }
  REQUIRE(alice->request("ping"));
  alice->drain(600ms);  // longer than the coalescing period: what it sends has arrived
  size_t events = 0;
  for (size_t i = from; i < alice->history().size(); ++i) events += alice->history()[i].value("type", "") == "shell.viewers";
  CHECK(events <= 2);
  CHECK_MESSAGE(daemon.sanitizer_findings().empty(), daemon.sanitizer_findings());
}

}  // namespace
}  // namespace ptyhub::test
