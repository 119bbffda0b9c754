// Tests of src/hub/fanout: the pure core of one terminal's output stream (docs/protocol.md §6). Each row
// is one situation; it checks exactly which frames every subscriber receives (type and payload) and
// whether the source may be read. Time is an argument: nothing here sleeps.
#include "src/hub/fanout.hpp"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "src/protocol/envelope.hpp"
#include "src/protocol/utf8.hpp"
#include "tests/unit/hub/fake_sink.hpp"

namespace ptyhub::hub {
namespace {

using nlohmann::json;
using protocol::SharedFrame;
using test::FakeSink;
using test::Message;

constexpr const char* kTerminal = "t1";
constexpr const char* kChannel = "shell:terminal:t1";

FanoutLimits ring_of(size_t bytes) { return FanoutLimits{bytes, 256 * 1024}; }

// The bytes at offsets [from, to) of a recognisable ASCII stream.
std::string stream_bytes(uint64_t from, uint64_t to) {
  std::string out;
  for (uint64_t i = from; i < to; ++i) out.push_back(static_cast<char>('!' + i % 90));
  return out;
}

std::string base64_decode(const std::string& text) {
  static const std::string kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t bits = 0;
  int count = 0;
  for (const char c : text) {
    if (c == '=') break;
    const size_t value = kAlphabet.find(c);
    REQUIRE(value != std::string::npos);
    bits = (bits << 6) | static_cast<uint32_t>(value);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out.push_back(static_cast<char>((bits >> count) & 0xFF));
    }
  }
  return out;
}

// The raw bytes of a shell.output message, whatever its encoding.
std::string raw_of(const Message& m) {
  const std::string data = m.data.at("data").get<std::string>();
  if (m.data.contains("encoding")) return base64_decode(data);
  return data;
}

// "" when `got` equals `want`, else where they first differ (long byte strings are not printed whole).
std::string difference(const std::string& got, const std::string& want) {
  if (got == want) return "";
  size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  std::ostringstream s;
  s << "sizes " << got.size() << " and " << want.size() << ", first difference at index " << i;
  return s.str();
}

SharedFrame exit_frame(int code = 0) {
  return protocol::event_frame("shell.exit", kChannel,
                               {{"terminalId", kTerminal}, {"exitCode", code}, {"signal", nullptr}});
}

// --- what a subscriber must receive ------------------------------------------------------------------

struct Want {
  std::string type;
  uint64_t from = 0;  // shell.output: offset; shell.gap: from
  uint64_t to = 0;    // shell.output: next; shell.gap: to
  std::string bytes;  // shell.output: the raw bytes
  Encoding encoding = Encoding::utf8;
  SharedFrame same;  // any other frame: exactly this one
};

Want out(uint64_t offset, std::string bytes, Encoding encoding = Encoding::utf8) {
  const uint64_t next = offset + bytes.size();
  return Want{"shell.output", offset, next, std::move(bytes), encoding, nullptr};
}
Want gap(uint64_t from, uint64_t to) { return Want{"shell.gap", from, to, "", Encoding::utf8, nullptr}; }
Want frame(const SharedFrame& f) { return Want{test::read_message(f).type, 0, 0, "", Encoding::utf8, f}; }

std::string describe(const Message& m) {
  std::ostringstream s;
  if (m.type == "shell.output") {
    s << "output[" << m.data.value("offset", uint64_t{0}) << "," << m.data.value("next", uint64_t{0}) << ")";
    const std::string raw = raw_of(m);
    if (raw.size() <= 40) s << " '" << raw << "'";
    else s << " (" << raw.size() << " bytes)";
    if (m.data.contains("encoding")) s << " " << m.data["encoding"].get<std::string>();
  } else if (m.type == "shell.gap") {
    s << "gap{" << m.data.value("from", uint64_t{0}) << "," << m.data.value("to", uint64_t{0}) << "}";
  } else {
    s << m.type;
  }
  return s.str();
}

std::string describe(const Want& w) {
  std::ostringstream s;
  if (w.type == "shell.output") {
    s << "output[" << w.from << "," << w.to << ")";
    if (w.bytes.size() <= 40) s << " '" << w.bytes << "'";
    else s << " (" << w.bytes.size() << " bytes)";
    if (w.encoding == Encoding::base64) s << " base64";
  } else if (w.type == "shell.gap") {
    s << "gap{" << w.from << "," << w.to << "}";
  } else {
    s << w.type;
  }
  return s.str();
}

template <class T>
std::string describe_all(const std::vector<T>& items) {
  std::string out;
  for (const T& item : items) out += (out.empty() ? "" : "; ") + describe(item);
  return out.empty() ? "(nothing)" : out;
}

void check_output(const Message& m) {
  CHECK(m.frame.get() != nullptr);
  CHECK(json::parse(m.frame->payload()).value("channel", "") == kChannel);
  CHECK(m.data.value("terminalId", "") == kTerminal);
}

// Checks that `sink` received exactly `wants` since the previous check.
void expect(FakeSink& sink, const std::vector<Want>& wants) {
  const std::vector<Message> got = sink.take();
  INFO("expected: " << describe_all(wants));
  INFO("received: " << describe_all(got));
  REQUIRE(got.size() == wants.size());
  for (size_t i = 0; i < wants.size(); ++i) {
    CAPTURE(i);
    const Want& w = wants[i];
    const Message& m = got[i];
    REQUIRE(m.type == w.type);
    if (w.type == "shell.output") {
      check_output(m);
      CHECK(m.data.at("offset").get<uint64_t>() == w.from);
      CHECK(m.data.at("next").get<uint64_t>() == w.to);
      CHECK(difference(raw_of(m), w.bytes) == "");
      if (w.encoding == Encoding::base64) CHECK(m.data.value("encoding", "") == "base64");
      else CHECK_FALSE(m.data.contains("encoding"));
    } else if (w.type == "shell.gap") {
      check_output(m);
      CHECK(m.data.at("from").get<uint64_t>() == w.from);
      CHECK(m.data.at("to").get<uint64_t>() == w.to);
    } else {
      CHECK(m.frame == w.same);
    }
  }
  CHECK(sink.sent_without_room == 0);
}

// Output and gaps received since the previous take(), checked to cover [from, to) contiguously: returns
// the raw bytes, with holes (gaps) as '#'. Every output frame must respect kMaxFrameBytes.
struct Coverage {
  std::string bytes;
  int gaps = 0;
  int frames = 0;
};
Coverage covered(FakeSink& sink, uint64_t from, uint64_t to) {
  Coverage c;
  uint64_t at = from;
  for (const Message& m : sink.take()) {
    INFO("at " << at << ": " << describe(m));
    if (m.type == "shell.gap") {
      REQUIRE(m.data.at("from").get<uint64_t>() == at);
      const uint64_t gap_to = m.data.at("to").get<uint64_t>();
      REQUIRE(gap_to > at);
      c.bytes.append(gap_to - at, '#');
      at = gap_to;
      ++c.gaps;
    } else if (m.type == "shell.output") {
      REQUIRE(m.data.at("offset").get<uint64_t>() == at);
      const uint64_t next = m.data.at("next").get<uint64_t>();
      const std::string raw = raw_of(m);
      REQUIRE(next > at);
      CHECK(next - at <= Fanout::kMaxFrameBytes);
      if (m.data.contains("encoding")) CHECK(raw.size() == next - at);
      c.bytes += raw;
      at = next;
      ++c.frames;
    }
  }
  CHECK(at == to);
  CHECK(sink.sent_without_room == 0);
  return c;
}

// --- rows 1-3: delivery ------------------------------------------------------------------------------

TEST_CASE("row 1: a caught-up subscriber gets each append at once as one shell.output") {
  Fanout fanout(kTerminal, ring_of(1024));
  CHECK(fanout.channel() == kChannel);
  CHECK(fanout.terminal_id() == kTerminal);
  FakeSink sink;
  const ReplayRange range = fanout.subscribe(&sink, Encoding::utf8, std::nullopt, true);
  CHECK(range.from == 0);
  CHECK(range.to == 0);
  fanout.serve(&sink);
  expect(sink, {});
  fanout.append(0, "hello");
  expect(sink, {out(0, "hello")});
  fanout.append(5, " world\r\n");
  expect(sink, {out(5, " world\r\n")});
  CHECK(fanout.decide(0) == SourceDecision{true, false});
  CHECK(fanout.end() == 13);
}

TEST_CASE("row 1b: a base64 subscriber gets the exact bytes, with encoding set") {
  Fanout fanout(kTerminal, ring_of(1024));
  FakeSink sink;
  fanout.subscribe(&sink, Encoding::base64, std::nullopt, true);
  const std::string bytes("\x00\xff\x1b[0m\xe2\x82", 8);  // ends inside a character: base64 keeps it
  fanout.append(0, "ok");
  fanout.append(2, bytes);
  expect(sink, {out(0, "ok", Encoding::base64), out(2, bytes, Encoding::base64)});
}

TEST_CASE("row 2: a lagging subscriber within the ring gets the missed bytes in order, without a gap") {
  Fanout fanout(kTerminal, ring_of(1024));
  FakeSink lagging;
  FakeSink live;
  fanout.subscribe(&lagging, Encoding::utf8, std::nullopt, true);
  fanout.subscribe(&live, Encoding::utf8, std::nullopt, true);
  fanout.append(0, "abc");
  expect(lagging, {out(0, "abc")});
  expect(live, {out(0, "abc")});
  lagging.room = false;
  fanout.append(3, "def");
  fanout.append(6, "ghi");
  expect(lagging, {});
  expect(live, {out(3, "def"), out(6, "ghi")});
  fanout.serve(&lagging);  // still without room: nothing
  expect(lagging, {});
  lagging.room = true;
  fanout.serve(&lagging);
  expect(lagging, {out(3, "defghi")});  // catch-up frames are cut on the grid, not per append
  fanout.append(9, "jk");
  expect(lagging, {out(9, "jk")});
  expect(live, {out(9, "jk")});
}

TEST_CASE("row 2b: a subscriber whose queue fills stops receiving, and continues after it drains") {
  Fanout fanout(kTerminal, ring_of(1024));
  FakeSink sink;
  sink.queue_limit = 1;  // full after any frame
  fanout.subscribe(&sink, Encoding::utf8, std::nullopt, false);
  fanout.append(0, "one");
  fanout.append(3, "two");
  fanout.append(6, "three");
  expect(sink, {out(0, "one")});
  sink.drain();
  fanout.serve(&sink);
  expect(sink, {out(3, "twothree")});
  sink.drain();
  fanout.serve(&sink);
  expect(sink, {});
}

struct LeftRingRow {
  const char* name;
  bool may_hold;
  std::optional<uint64_t> stalled_at;
  uint64_t received_before;  // bytes it got before it lost room
};

TEST_CASE("row 3: a cursor that left the ring gets the exact gap, then the retained bytes") {
  const std::vector<LeftRingRow> rows = {
      {"read-only subscriber", false, std::nullopt, 0},
      {"read-only subscriber after some output", false, std::nullopt, 8},
      {"stalled holder", true, 0, 0},
      {"stalled holder after some output", true, 0, 8},
  };
  for (const LeftRingRow& row : rows) {
    INFO(std::string(row.name));
    Fanout fanout(kTerminal, ring_of(16));
    FakeSink sink;
    sink.stalled_at = row.stalled_at;
    fanout.subscribe(&sink, Encoding::utf8, std::nullopt, row.may_hold);
    if (row.received_before > 0) fanout.append(0, stream_bytes(0, row.received_before));
    expect(sink, row.received_before > 0 ? std::vector<Want>{out(0, stream_bytes(0, row.received_before))}
                                         : std::vector<Want>{});
    sink.room = false;
    for (uint64_t at = row.received_before; at < 40; at += 8) {
      CHECK(fanout.decide(100).read);  // nobody holds the source
      fanout.append(at, stream_bytes(at, at + 8));
    }
    CHECK(fanout.start() == 24);
    CHECK(fanout.end() == 40);
    expect(sink, {});
    sink.room = true;
    fanout.serve(&sink);
    expect(sink, {gap(row.received_before, 24), out(24, stream_bytes(24, 40))});
  }
}

// --- rows 4, 5, 9, 10: whether the source may be read -------------------------------------------------

struct SubscriberSetup {
  bool may_hold = true;
  bool room = true;  // room while the later bytes arrive and at decide()
  bool paused = false;
  std::optional<uint64_t> stalled_at;
  std::optional<uint64_t> since;  // where it subscribes after the first bytes; none: at the live edge
};

struct DecideRow {
  const char* name;
  size_t ring_bytes;
  uint64_t before;  // bytes appended before anyone subscribes
  uint64_t after;   // bytes appended after the subscribers are set up
  std::vector<SubscriberSetup> subscribers;
  uint64_t now;
  SourceDecision expected;
};

SubscriberSetup live_reader() { return {}; }
SubscriberSetup holder_without_room(std::optional<uint64_t> stalled_at = std::nullopt) {
  return {true, false, false, stalled_at, std::nullopt};
}

TEST_CASE("decide(): who may hold the source back, row by row") {
  // Ring 4096 bytes: read_budget() = 2048. A holder at cursor 0 is near the edge when
  // 0 + 4096 < end + 2048 + 4, that is from end = 2045 on.
  const std::vector<DecideRow> rows = {
      {"no subscriber: read into the ring", 4096, 100, 0, {}, 0, {true, false}},
      {"one live subscriber", 4096, 100, 100, {live_reader()}, 0, {true, false}},
      // row 4
      {"paused holder alone: held, nothing to recheck", 4096, 0, 100, {{true, true, true, std::nullopt, std::nullopt}},
       0, {false, false}},
      {"paused holder alone, even when its client stopped reading", 4096, 0, 100,
       {{true, true, true, 0, std::nullopt}}, 1000, {false, false}},
      {"paused holder with a live subscriber", 4096, 0, 3000,
       {{true, true, true, std::nullopt, std::nullopt}, live_reader()}, 0, {true, false}},
      {"paused read-only subscriber alone", 4096, 0, 100, {{false, true, true, std::nullopt, std::nullopt}}, 0,
       {true, false}},
      // row 5 / row 10
      {"slow holder alone, not stalled: held until it stalls", 4096, 0, 100, {holder_without_room(1000)}, 0,
       {false, true}},
      {"slow holder alone, just before its stall time", 4096, 0, 100, {holder_without_room(1000)}, 999,
       {false, true}},
      {"slow holder alone, stalled: let go", 4096, 0, 100, {holder_without_room(1000)}, 1000, {true, false}},
      {"caught-up holder without room alone", 4096, 0, 0, {holder_without_room()}, 0, {false, true}},
      {"slow holder far from the edge with a live subscriber", 4096, 0, 100,
       {{true, false, false, std::nullopt, 0}, live_reader()}, 0, {true, false}},
      {"slow holder at the last safe distance with a live subscriber", 4096, 0, 2044,
       {{true, false, false, std::nullopt, 0}, live_reader()}, 0, {true, false}},
      {"slow holder one byte nearer the edge with a live subscriber", 4096, 0, 2045,
       {{true, false, false, std::nullopt, 0}, live_reader()}, 0, {false, true, true}},
      {"slow holder near the edge with a live subscriber, stalled", 4096, 0, 3000,
       {{true, false, false, 50, 0}, live_reader()}, 50, {true, false}},
      {"slow holder near the edge with a live subscriber, before it stalls", 4096, 0, 3000,
       {{true, false, false, 50, 0}, live_reader()}, 49, {false, true, true}},
      {"slow holder subscribed behind, far from the edge", 4096, 1000, 100,
       {{true, false, false, std::nullopt, 500}, live_reader()}, 0, {true, false}},
      {"slow holder subscribed behind, near the edge", 4096, 1000, 1600,
       {{true, false, false, std::nullopt, 500}, live_reader()}, 0, {false, true, true}},
      // row 9
      {"read-only subscriber without room alone never holds", 4096, 0, 100, {{false, false, false, std::nullopt, 0}},
       0, {true, false}},
      {"read-only subscriber without room near the edge never holds", 4096, 0, 3000,
       {{false, false, false, std::nullopt, 0}, live_reader()}, 0, {true, false}},
      {"two slow holders, one stalled, one not", 4096, 0, 100, {holder_without_room(0), holder_without_room()}, 10,
       {false, true}},
      {"two slow holders, both stalled", 4096, 0, 100, {holder_without_room(0), holder_without_room(5)}, 10,
       {true, false}},
  };
  for (const DecideRow& row : rows) {
    INFO(std::string(row.name));
    Fanout fanout(kTerminal, ring_of(row.ring_bytes));
    REQUIRE(fanout.read_budget() == row.ring_bytes / 2);
    if (row.before > 0) fanout.append(0, stream_bytes(0, row.before));
    std::vector<FakeSink> sinks(row.subscribers.size());
    for (size_t i = 0; i < sinks.size(); ++i) {
      const SubscriberSetup& setup = row.subscribers[i];
      sinks[i].stalled_at = setup.stalled_at;
      sinks[i].room = setup.room;
      fanout.subscribe(&sinks[i], Encoding::utf8, setup.since.value_or(fanout.end()), setup.may_hold);
      fanout.serve(&sinks[i]);
      if (setup.paused) CHECK(fanout.set_paused(&sinks[i], true));
    }
    if (row.after > 0) fanout.append(row.before, stream_bytes(row.before, row.before + row.after));
    const SourceDecision decision = fanout.decide(row.now);
    INFO("read=" << decision.read << " recheck=" << decision.recheck << " urgent=" << decision.urgent);
    CHECK(decision == row.expected);
  }
}

TEST_CASE("row 4: a paused holder alone holds the source - on resume it gets everything and the source is read") {
  Fanout fanout(kTerminal, ring_of(1024));
  FakeSink sink;
  fanout.subscribe(&sink, Encoding::utf8, std::nullopt, true);
  fanout.append(0, "before ");
  expect(sink, {out(0, "before ")});
  CHECK(fanout.set_paused(&sink, true));
  CHECK(fanout.decide(0) == SourceDecision{false, false});
  fanout.append(7, "while ");  // a read already under way when the pause came
  fanout.append(13, "paused");
  fanout.serve(&sink);
  expect(sink, {});
  CHECK(fanout.decide(10000) == SourceDecision{false, false});
  CHECK(fanout.set_paused(&sink, false));
  expect(sink, {out(7, "while paused")});
  CHECK(fanout.decide(10000) == SourceDecision{true, false});
  fanout.append(19, "!");
  expect(sink, {out(19, "!")});
  FakeSink stranger;
  CHECK_FALSE(fanout.set_paused(&stranger, true));
}

TEST_CASE("row 4b: a paused subscriber whose point left the ring gets a gap on resume") {
  Fanout fanout(kTerminal, ring_of(16));
  FakeSink paused;
  FakeSink live;
  fanout.subscribe(&paused, Encoding::utf8, std::nullopt, true);
  fanout.subscribe(&live, Encoding::utf8, std::nullopt, true);
  fanout.append(0, "abcd");
  CHECK(fanout.set_paused(&paused, true));
  for (uint64_t at = 4; at < 36; at += 8) {
    CHECK(fanout.decide(0).read);  // somebody takes output live: the paused one holds nobody
    fanout.append(at, stream_bytes(at, at + 8));
  }
  expect(paused, {out(0, "abcd")});
  CHECK(fanout.set_paused(&paused, false));
  expect(paused, {gap(4, 20), out(20, stream_bytes(20, 36))});
}

// --- row 6: two readers, a ring smaller than one read -------------------------------------------------

struct TwoReaderRow {
  const char* name;
  bool slow_may_hold;
  unsigned seed;
  int max_drain_interval;  // the slow reader drains every 1..max steps
};

TEST_CASE("row 6: two readers and a small ring: a momentarily full holder never gets a gap") {
  const std::vector<TwoReaderRow> rows = {
      {"every third step", true, 0, 3},
      {"irregular bursts, seed 1", true, 1, 6},
      {"irregular bursts, seed 2", true, 2, 9},
      {"irregular bursts, seed 3", true, 3, 4},
  };
  for (const TwoReaderRow& row : rows) {
    INFO(std::string(row.name));
    Fanout fanout(kTerminal, FanoutLimits{4096, 256 * 1024});
    REQUIRE(fanout.read_budget() == 2048);
    FakeSink fast;
    FakeSink slow;
    slow.queue_limit = 1;  // full after any frame until it drains
    fanout.subscribe(&fast, Encoding::utf8, std::nullopt, true);
    fanout.subscribe(&slow, Encoding::utf8, std::nullopt, row.slow_may_hold);
    std::mt19937 random(row.seed);
    std::uniform_int_distribution<int> interval(1, row.max_drain_interval);
    int next_drain = row.seed == 0 ? 3 : interval(random);
    int reads = 0;
    int held = 0;
    for (uint64_t now = 0; now < 400; ++now) {
      const SourceDecision decision = fanout.decide(now);
      if (decision.read) {
        const uint64_t at = fanout.end();
        fanout.append(at, stream_bytes(at, at + fanout.read_budget()));
        ++reads;
      } else {
        CHECK(decision.recheck);  // held by a client that still reads: it is asked again
        ++held;
      }
      fast.drain();
      fanout.serve(&fast);
      if (--next_drain == 0) {
        slow.drain();
        fanout.serve(&slow);
        next_drain = row.seed == 0 ? 3 : interval(random);
      }
    }
    CHECK(reads > 40);  // the source kept moving
    CHECK(held > 0);     // and was held at times
    for (int i = 0; i < 10; ++i) {
      slow.drain();
      fanout.serve(&slow);
    }
    const uint64_t end = fanout.end();
    const Coverage fast_got = covered(fast, 0, end);
    const Coverage slow_got = covered(slow, 0, end);
    CHECK(fast_got.gaps == 0);
    CHECK(slow_got.gaps == 0);
    CHECK(difference(fast_got.bytes, stream_bytes(0, end)) == "");
    CHECK(difference(slow_got.bytes, stream_bytes(0, end)) == "");
  }
}

TEST_CASE("row 6b: the same loop with a read-only slow reader leaves it behind with gaps") {
  // The control for row 6: without the hold, the slow reader is pushed out of the ring.
  Fanout fanout(kTerminal, FanoutLimits{4096, 256 * 1024});
  FakeSink fast;
  FakeSink slow;
  slow.queue_limit = 1;
  fanout.subscribe(&fast, Encoding::utf8, std::nullopt, true);
  fanout.subscribe(&slow, Encoding::utf8, std::nullopt, false);
  for (uint64_t now = 0; now < 60; ++now) {
    CHECK(fanout.decide(now) == SourceDecision{true, false});
    const uint64_t at = fanout.end();
    fanout.append(at, stream_bytes(at, at + fanout.read_budget()));
    fast.drain();
    fanout.serve(&fast);
    if (now % 3 == 2) {
      slow.drain();
      fanout.serve(&slow);
    }
  }
  slow.drain();
  fanout.serve(&slow);
  const Coverage slow_got = covered(slow, 0, fanout.end());
  CHECK(slow_got.gaps > 0);
  CHECK(covered(fast, 0, fanout.end()).gaps == 0);
}

// --- row 7: the exit after the last byte --------------------------------------------------------------

TEST_CASE("row 7: every subscriber gets the exit after its last byte, then the trailers in order") {
  Fanout fanout(kTerminal, ring_of(1024));
  FakeSink caught_up;
  FakeSink lagging;
  FakeSink paused;
  fanout.subscribe(&caught_up, Encoding::utf8, std::nullopt, true);
  fanout.subscribe(&lagging, Encoding::utf8, std::nullopt, false);
  fanout.subscribe(&paused, Encoding::base64, std::nullopt, true);
  fanout.append(0, "first ");
  CHECK(fanout.set_paused(&paused, true));
  lagging.room = false;
  fanout.append(6, "last");
  const SharedFrame exit = exit_frame(3);
  const SharedFrame trailer1 = protocol::event_frame("git.operation.completed", kChannel, {{"n", 1}});
  const SharedFrame trailer2 = protocol::event_frame("git.operation.completed", kChannel, {{"n", 2}});
  CHECK_FALSE(fanout.finished());
  fanout.finish(exit, {trailer1, trailer2});
  CHECK(fanout.finished());
  expect(caught_up, {out(0, "first "), out(6, "last"), frame(exit), frame(trailer1), frame(trailer2)});
  expect(lagging, {out(0, "first ")});
  expect(paused, {out(0, "first ", Encoding::base64)});

  fanout.serve(&lagging);  // no room yet
  expect(lagging, {});
  lagging.room = true;
  fanout.serve(&lagging);
  expect(lagging, {out(6, "last"), frame(exit), frame(trailer1), frame(trailer2)});

  fanout.serve(&paused);
  expect(paused, {});
  CHECK(fanout.set_paused(&paused, false));
  expect(paused, {out(6, "last", Encoding::base64), frame(exit), frame(trailer1), frame(trailer2)});

  // The exit goes out once.
  for (FakeSink* sink : {&caught_up, &lagging, &paused}) {
    fanout.serve(sink);
    expect(*sink, {});
  }
}

TEST_CASE("row 7b: a subscriber that comes after the exit gets the retained output, then the exit") {
  Fanout fanout(kTerminal, ring_of(8));
  fanout.append(0, "0123456789");
  const SharedFrame exit = exit_frame();
  fanout.finish(exit);
  FakeSink late;
  const ReplayRange range = fanout.subscribe(&late, Encoding::utf8, std::nullopt, true);
  CHECK(range.from == 2);
  CHECK(range.to == 10);
  fanout.serve(&late);
  expect(late, {out(2, "23456789"), frame(exit)});
  FakeSink from_zero;
  fanout.subscribe(&from_zero, Encoding::utf8, 0, true);
  fanout.serve(&from_zero);
  expect(from_zero, {gap(0, 2), out(2, "23456789"), frame(exit)});
  // Subscribing again replays again, exit included.
  fanout.subscribe(&late, Encoding::utf8, 6, true);
  fanout.serve(&late);
  expect(late, {out(6, "6789"), frame(exit)});
}

TEST_CASE("row 7c: finish without output and without trailers") {
  Fanout fanout(kTerminal, ring_of(64));
  FakeSink sink;
  fanout.subscribe(&sink, Encoding::utf8, std::nullopt, true);
  const SharedFrame exit = exit_frame();
  fanout.finish(exit);
  expect(sink, {frame(exit)});
}

TEST_CASE("broadcast reaches every subscriber at once, wherever its cursor is") {
  Fanout fanout(kTerminal, ring_of(64));
  FakeSink live;
  FakeSink full;
  FakeSink paused;
  for (FakeSink* sink : {&live, &full, &paused}) fanout.subscribe(sink, Encoding::utf8, std::nullopt, true);
  fanout.set_paused(&paused, true);
  full.room = false;
  fanout.append(0, "abc");
  const SharedFrame resized = protocol::event_frame("shell.resized", kChannel, {{"terminalId", kTerminal}});
  fanout.broadcast(resized);
  expect(live, {out(0, "abc"), frame(resized)});
  expect(full, {frame(resized)});
  expect(paused, {frame(resized)});
  full.room = true;
  fanout.serve(&full);
  expect(full, {out(0, "abc")});
}

// --- row 8: a mirror's input with holes ---------------------------------------------------------------

struct Append {
  uint64_t offset;
  std::string bytes;
};

struct HoleRow {
  const char* name;
  size_t ring_bytes;
  std::vector<Append> appends;
  std::vector<Want> caught_up;                 // a subscriber there from the start
  std::optional<uint64_t> since;               // a subscriber that comes after the appends
  std::vector<Want> late;                      // what it gets on serve()
  uint64_t end;
};

TEST_CASE("row 8: mirror input: holes become exact gaps, known bytes are dropped") {
  const std::vector<HoleRow> rows = {
      {"a hole between two appends", 64, {{0, "abc"}, {10, "xyz"}},
       {out(0, "abc"), gap(3, 10), out(10, "xyz")}, 0, {out(0, "abc"), gap(3, 10), out(10, "xyz")}, 13},
      {"since at the hole's start", 64, {{0, "abc"}, {10, "xyz"}},
       {out(0, "abc"), gap(3, 10), out(10, "xyz")}, 3, {gap(3, 10), out(10, "xyz")}, 13},
      {"since inside the hole", 64, {{0, "abc"}, {10, "xyz"}},
       {out(0, "abc"), gap(3, 10), out(10, "xyz")}, 5, {gap(5, 10), out(10, "xyz")}, 13},
      {"since at the hole's end", 64, {{0, "abc"}, {10, "xyz"}},
       {out(0, "abc"), gap(3, 10), out(10, "xyz")}, 10, {out(10, "xyz")}, 13},
      {"a hole at the very start", 64, {{4, "abc"}}, {gap(0, 4), out(4, "abc")}, 0, {gap(0, 4), out(4, "abc")}, 7},
      {"two holes", 64, {{0, "a"}, {2, "b"}, {5, "cd"}},
       {out(0, "a"), gap(1, 2), out(2, "b"), gap(3, 5), out(5, "cd")}, 0,
       {out(0, "a"), gap(1, 2), out(2, "b"), gap(3, 5), out(5, "cd")}, 7},
      {"an overlap: the known prefix is dropped, offsets continue", 64, {{0, "abcdef"}, {3, "defgh"}},
       {out(0, "abcdef"), out(6, "gh")}, 0, {out(0, "abcdefgh")}, 8},
      {"a re-delivery of known bytes changes nothing", 64, {{0, "abc"}, {0, "abc"}, {1, "b"}, {3, ""}},
       {out(0, "abc")}, 0, {out(0, "abc")}, 3},
      {"an overlap after a hole", 64, {{0, "abc"}, {10, "xyz"}, {12, "zw"}},
       {out(0, "abc"), gap(3, 10), out(10, "xyz"), out(13, "w")}, 0,
       {out(0, "abc"), gap(3, 10), out(10, "xyzw")}, 14},
      {"bytes arriving inside an earlier hole are dropped", 64, {{0, "abc"}, {10, "xyz"}, {5, "12345678X"}},
       {out(0, "abc"), gap(3, 10), out(10, "xyz"), out(13, "X")}, 0,
       {out(0, "abc"), gap(3, 10), out(10, "xyzX")}, 14},
      {"a hole with no bytes after it yet", 64, {{0, "abc"}, {10, ""}}, {out(0, "abc"), gap(3, 10)}, 0,
       {out(0, "abc"), gap(3, 10)}, 10},
      {"empty appends change nothing", 64, {{0, ""}, {0, "abc"}, {3, ""}}, {out(0, "abc")}, 0, {out(0, "abc")}, 3},
      {"a hole bigger than the ring", 16, {{0, "abc"}, {100, "xyz"}},
       {out(0, "abc"), gap(3, 100), out(100, "xyz")}, 0, {gap(0, 100), out(100, "xyz")}, 103},
      {"a hole bigger than the ring, since inside it", 16, {{0, "abc"}, {100, "xyz"}},
       {out(0, "abc"), gap(3, 100), out(100, "xyz")}, 50, {gap(50, 100), out(100, "xyz")}, 103},
  };
  for (const HoleRow& row : rows) {
    INFO(std::string(row.name));
    Fanout fanout(kTerminal, ring_of(row.ring_bytes));
    FakeSink caught_up;
    fanout.subscribe(&caught_up, Encoding::utf8, std::nullopt, true);
    for (const Append& a : row.appends) fanout.append(a.offset, a.bytes);
    CHECK(fanout.end() == row.end);
    {
      INFO("caught-up subscriber");
      expect(caught_up, row.caught_up);
    }
    FakeSink late;
    const ReplayRange range = fanout.subscribe(&late, Encoding::utf8, row.since, true);
    CHECK(range.to == row.end);
    expect(late, {});  // nothing before serve()
    fanout.serve(&late);
    {
      INFO("subscriber from " << row.since.value_or(0));
      expect(late, row.late);
    }
  }
}

TEST_CASE("row 8b: a hole that partly left the ring is never sent as bytes") {
  Fanout fanout(kTerminal, ring_of(16));
  fanout.append(0, "abc");
  fanout.append(10, "xyz");
  fanout.append(13, "0123456789");  // end 23: the ring holds [7, 23), of which [7, 10) is the hole
  CHECK(fanout.end() == 23);
  for (const uint64_t since : {uint64_t{0}, uint64_t{3}, uint64_t{7}, uint64_t{8}, uint64_t{10}}) {
    CAPTURE(since);
    FakeSink sink;
    fanout.subscribe(&sink, Encoding::utf8, since, true);
    fanout.serve(&sink);
    const Coverage c = covered(sink, since, 23);
    CHECK(c.bytes.substr(c.bytes.size() - 13) == "xyz0123456789");
    CHECK(c.bytes.find('\0') == std::string::npos);
    CHECK(c.bytes.substr(0, c.bytes.size() - 13) == std::string(10 - std::min<uint64_t>(since, 10), '#'));
    CHECK(c.gaps <= 1);  // one hole from `since` to 10: one gap
  }
}

// --- row 9: read-only subscribers -------------------------------------------------------------------

TEST_CASE("row 9: a read-only subscriber that stops reading never holds, and later gets a gap") {
  Fanout fanout(kTerminal, ring_of(16));
  FakeSink sink;
  fanout.subscribe(&sink, Encoding::utf8, std::nullopt, false);
  fanout.append(0, "abcd");
  expect(sink, {out(0, "abcd")});
  sink.room = false;
  for (uint64_t at = 4; at < 44; at += 8) {
    CHECK(fanout.decide(at) == SourceDecision{true, false});
    fanout.append(at, stream_bytes(at, at + 8));
  }
  CHECK(fanout.decide(1000000) == SourceDecision{true, false});
  sink.room = true;
  fanout.serve(&sink);
  expect(sink, {gap(4, 28), out(28, stream_bytes(28, 44))});
  // Made a holder, the same situation holds the source.
  fanout.set_may_hold(&sink, true);
  sink.room = false;
  fanout.append(44, "x");
  CHECK(fanout.decide(0) == SourceDecision{false, true});
  fanout.set_may_hold(&sink, false);
  CHECK(fanout.decide(0) == SourceDecision{true, false});
}

// --- row 10: a stalled writer -------------------------------------------------------------------------

TEST_CASE("row 10: a writer that stops reading holds the source only until it counts as stalled") {
  Fanout fanout(kTerminal, ring_of(4096));
  FakeSink writer;
  FakeSink viewer;
  fanout.subscribe(&writer, Encoding::utf8, std::nullopt, true);
  fanout.subscribe(&viewer, Encoding::utf8, std::nullopt, false);
  fanout.append(0, "prompt$ ");
  expect(writer, {out(0, "prompt$ ")});
  writer.room = false;
  writer.stalled_at = 5000;
  uint64_t now = 4000;
  // Read until the writer is near the ring's edge: within three reads of 1000 bytes.
  for (int reads = 0; fanout.decide(now).read; ++reads) {
    REQUIRE(reads < 3);
    const uint64_t at = fanout.end();
    fanout.append(at, stream_bytes(at, at + 1000));
  }
  for (; now < 5000; now += Fanout::kStallRecheckMs) {
    CAPTURE(now);
    CHECK(fanout.decide(now) == SourceDecision{false, true, true});  // near the edge: urgent
  }
  CHECK(fanout.decide(5000) == SourceDecision{true, false});
  for (uint64_t at = fanout.end(); at < 20000; at += 1000) fanout.append(at, stream_bytes(at, at + 1000));
  writer.room = true;
  fanout.serve(&writer);
  const uint64_t end = fanout.end();
  REQUIRE(end >= 20000);
  const Coverage c = covered(writer, 8, end);
  CHECK(c.gaps == 1);
  CHECK(difference(c.bytes.substr(c.bytes.size() - 4096), stream_bytes(end - 4096, end)) == "");
  CHECK(covered(viewer, 0, end).gaps == 0);
}

// --- row 11: shared frames, the frame grid, UTF-8 -----------------------------------------------------

TEST_CASE("row 11: live frames are encoded once per encoding and shared by every caught-up subscriber") {
  Fanout fanout(kTerminal, ring_of(1 << 20));
  FakeSink a;
  FakeSink b;
  FakeSink binary;
  FakeSink lagging;
  fanout.subscribe(&a, Encoding::utf8, std::nullopt, true);
  fanout.subscribe(&b, Encoding::utf8, std::nullopt, false);
  fanout.subscribe(&binary, Encoding::base64, std::nullopt, false);
  fanout.subscribe(&lagging, Encoding::utf8, std::nullopt, false);
  lagging.room = false;
  fanout.append(0, "same bytes \xE2\x82\xAC");
  expect(lagging, {});
  REQUIRE(a.received.size() == 1);
  REQUIRE(b.received.size() == 1);
  REQUIRE(binary.received.size() == 1);
  CHECK(a.received[0].frame == b.received[0].frame);
  CHECK(a.received[0].frame != binary.received[0].frame);
  expect(a, {out(0, "same bytes \xE2\x82\xAC")});
  expect(b, {out(0, "same bytes \xE2\x82\xAC")});
  expect(binary, {out(0, "same bytes \xE2\x82\xAC", Encoding::base64)});
}

TEST_CASE("row 11b: catch-up frames are cut on the 64 KiB grid and shared by subscribers behind on the same bytes") {
  constexpr uint64_t kGrid = Fanout::kMaxFrameBytes;
  const uint64_t total = 3 * kGrid + 1234;
  Fanout fanout(kTerminal, ring_of(1 << 20));
  fanout.append(0, stream_bytes(0, total));
  FakeSink first;
  FakeSink second;
  FakeSink offset;
  FakeSink binary;
  fanout.subscribe(&first, Encoding::utf8, 0, false);
  fanout.subscribe(&second, Encoding::utf8, 0, false);
  fanout.subscribe(&offset, Encoding::utf8, 1000, false);
  fanout.subscribe(&binary, Encoding::base64, 0, false);
  for (FakeSink* sink : {&first, &second, &offset, &binary}) fanout.serve(sink);
  const std::vector<Want> grid = {out(0, stream_bytes(0, kGrid)), out(kGrid, stream_bytes(kGrid, 2 * kGrid)),
                                  out(2 * kGrid, stream_bytes(2 * kGrid, 3 * kGrid)),
                                  out(3 * kGrid, stream_bytes(3 * kGrid, total))};
  REQUIRE(first.received.size() == 4);
  REQUIRE(second.received.size() == 4);
  REQUIRE(offset.received.size() == 4);
  REQUIRE(binary.received.size() == 4);
  for (size_t i = 0; i < 4; ++i) {
    CAPTURE(i);
    CHECK(first.received[i].frame == second.received[i].frame);
    CHECK(first.received[i].frame != binary.received[i].frame);
    if (i > 0) CHECK(offset.received[i].frame == first.received[i].frame);
  }
  CHECK(offset.received[0].frame != first.received[0].frame);
  CHECK(fanout.cached_frames() >= 8);  // 4 utf8 and 4 base64 frames alive, plus the offset one
  expect(first, grid);
  expect(second, grid);
  expect(offset, {out(1000, stream_bytes(1000, kGrid)), grid[1], grid[2], grid[3]});
  std::vector<Want> grid64;
  for (const Want& w : grid) grid64.push_back(out(w.from, w.bytes, Encoding::base64));
  expect(binary, grid64);
}

TEST_CASE("row 11e: a catch-up frame that starts just before a grid line ends there, within 64 KiB") {
  constexpr uint64_t kGrid = Fanout::kMaxFrameBytes;
  Fanout fanout(kTerminal, ring_of(1 << 20));
  fanout.append(0, stream_bytes(0, 2 * kGrid + 100));
  for (const uint64_t since : {kGrid - 3, kGrid - 2, kGrid - 1}) {
    CAPTURE(since);
    FakeSink sink;
    fanout.subscribe(&sink, Encoding::utf8, since, false);
    fanout.serve(&sink);
    expect(sink, {out(since, stream_bytes(since, kGrid)), out(kGrid, stream_bytes(kGrid, 2 * kGrid)),
                  out(2 * kGrid, stream_bytes(2 * kGrid, 2 * kGrid + 100))});
  }
}

TEST_CASE("row 11c: a lagging subscriber shares the grid frames of one that lags further") {
  constexpr uint64_t kGrid = Fanout::kMaxFrameBytes;
  Fanout fanout(kTerminal, ring_of(1 << 20));
  FakeSink far;
  FakeSink near;
  fanout.subscribe(&far, Encoding::utf8, std::nullopt, false);
  fanout.subscribe(&near, Encoding::utf8, std::nullopt, false);
  far.room = false;
  fanout.append(0, stream_bytes(0, 100));
  near.room = false;
  fanout.append(100, stream_bytes(100, 2 * kGrid + 10));
  far.room = true;
  near.room = true;
  fanout.serve(&far);
  fanout.serve(&near);
  expect(far, {out(0, stream_bytes(0, kGrid)), out(kGrid, stream_bytes(kGrid, 2 * kGrid)),
               out(2 * kGrid, stream_bytes(2 * kGrid, 2 * kGrid + 10))});
  expect(near, {out(0, stream_bytes(0, 100)), out(100, stream_bytes(100, kGrid)),
                out(kGrid, stream_bytes(kGrid, 2 * kGrid)), out(2 * kGrid, stream_bytes(2 * kGrid, 2 * kGrid + 10))});
  REQUIRE(far.received.size() == 3);
  REQUIRE(near.received.size() == 4);
  CHECK(far.received[1].frame == near.received[2].frame);
  CHECK(far.received[2].frame == near.received[3].frame);
}

// Text of `count` copies of `character`, so that characters cross every 64 KiB boundary.
std::string repeated(const std::string& character, size_t count) {
  std::string out;
  out.reserve(character.size() * count);
  for (size_t i = 0; i < count; ++i) out += character;
  return out;
}

struct Utf8Row {
  const char* name;
  std::string text;
  std::string prefix;  // appended first, so that the characters sit at other offsets
};

TEST_CASE("row 11d: no frame ends inside a UTF-8 character or carries more than 64 KiB, live or from the ring") {
  const std::vector<Utf8Row> rows = {
      {"3-byte characters", repeated("\xE2\x82\xAC", 70000), ""},
      {"4-byte characters after one byte", repeated("\xF0\x9F\x98\x80", 50000), "x"},
      {"2-byte characters after one byte", repeated("\xC3\xA9", 100000), "y"},
      {"mixed widths", repeated("a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80", 20000), "zz"},
  };
  for (const Utf8Row& row : rows) {
    INFO(std::string(row.name));
    const std::string all = row.prefix + row.text;
    const uint64_t total = all.size();
    REQUIRE(total > 2 * Fanout::kMaxFrameBytes);
    Fanout fanout(kTerminal, ring_of(1 << 20));
    FakeSink live;
    FakeSink lagging_a;
    FakeSink lagging_b;
    FakeSink lagging_binary;
    fanout.subscribe(&live, Encoding::utf8, std::nullopt, true);
    for (FakeSink* sink : {&lagging_a, &lagging_b, &lagging_binary}) {
      fanout.subscribe(sink, sink == &lagging_binary ? Encoding::base64 : Encoding::utf8, std::nullopt, false);
      sink->room = false;
    }
    if (!row.prefix.empty()) fanout.append(0, row.prefix);
    fanout.append(row.prefix.size(), row.text);
    for (FakeSink* sink : {&lagging_a, &lagging_b, &lagging_binary}) {
      sink->room = true;
      fanout.serve(sink);
    }
    const std::vector<Message> a_frames(lagging_a.received);
    const std::vector<Message> b_frames(lagging_b.received);
    for (FakeSink* sink : {&live, &lagging_a, &lagging_b, &lagging_binary}) {
      INFO(std::string(sink == &live ? "live" : sink == &lagging_binary ? "lagging base64" : "lagging utf8"));
      for (const Message& m : sink->received) {
        // A frame that ended inside a character would carry U+FFFD for its piece (or, in base64, a
        // piece that is not valid UTF-8 on its own).
        const std::string raw = raw_of(m);
        CHECK(raw.find("\xEF\xBF\xBD") == std::string::npos);
        CHECK(protocol::utf8_valid(raw));
      }
      const Coverage c = covered(*sink, 0, total);
      CHECK(c.gaps == 0);
      CHECK(difference(c.bytes, all) == "");
    }
    REQUIRE(a_frames.size() == b_frames.size());
    for (size_t i = 0; i < a_frames.size(); ++i) CHECK(a_frames[i].frame == b_frames[i].frame);
    for (size_t i = 0; i < std::min(a_frames.size(), lagging_binary.received.size()); ++i) {
      CHECK(a_frames[i].frame != lagging_binary.received[i].frame);
    }
  }
}

// --- row 12: subscriptions ----------------------------------------------------------------------------

struct SinceRow {
  const char* name;
  std::optional<uint64_t> since;
  ReplayRange range;
  std::vector<Want> served;
};

TEST_CASE("row 12: subscribe replays {max(since, start), end}, with a gap when since is older than the ring") {
  // Ring 16 after 40 bytes: [24, 40) retained.
  const std::vector<SinceRow> rows = {
      {"no since: the oldest retained byte", std::nullopt, {24, 40}, {out(24, stream_bytes(24, 40))}},
      {"since inside the ring", 30, {30, 40}, {out(30, stream_bytes(30, 40))}},
      {"since at the ring's start", 24, {24, 40}, {out(24, stream_bytes(24, 40))}},
      {"since at the live edge", 40, {40, 40}, {}},
      {"since before the ring", 10, {24, 40}, {gap(10, 24), out(24, stream_bytes(24, 40))}},
      {"since 0", 0, {24, 40}, {gap(0, 24), out(24, stream_bytes(24, 40))}},
  };
  for (const SinceRow& row : rows) {
    INFO(std::string(row.name));
    Metrics metrics;
    Fanout fanout(kTerminal, ring_of(16), &metrics);
    fanout.append(0, stream_bytes(0, 40));
    FakeSink sink;
    const ReplayRange range = fanout.subscribe(&sink, Encoding::utf8, row.since, true);
    CHECK(range.from == row.range.from);
    CHECK(range.to == row.range.to);
    CHECK(fanout.subscribed(&sink));
    CHECK(fanout.subscriber_count() == 1);
    expect(sink, {});
    fanout.serve(&sink);
    expect(sink, row.served);
    CHECK(metrics.replays_total == (row.range.from < 40 ? 1u : 0u));
    CHECK(metrics.gaps_total == (row.since.value_or(24) < 24 ? 1u : 0u));
    fanout.append(40, "+");
    expect(sink, {out(40, "+")});
  }
}

TEST_CASE("row 12b: unsubscribe, then subscribe again from the last next received") {
  Fanout fanout(kTerminal, ring_of(64));
  FakeSink sink;
  FakeSink other;
  fanout.subscribe(&sink, Encoding::utf8, std::nullopt, true);
  fanout.subscribe(&other, Encoding::utf8, std::nullopt, false);
  CHECK(fanout.subscriber_count() == 2);
  fanout.append(0, "abc");
  expect(sink, {out(0, "abc")});
  CHECK(fanout.unsubscribe(&sink));
  CHECK_FALSE(fanout.subscribed(&sink));
  CHECK_FALSE(fanout.unsubscribe(&sink));
  CHECK(fanout.subscriber_count() == 1);
  CHECK(fanout.sinks() == std::vector<Sink*>{&other});
  fanout.append(3, "def");
  fanout.serve(&sink);  // not subscribed: nothing
  expect(sink, {});
  const ReplayRange range = fanout.subscribe(&sink, Encoding::utf8, 3, true);
  CHECK(range.from == 3);
  CHECK(range.to == 6);
  fanout.serve(&sink);
  expect(sink, {out(3, "def")});
  fanout.append(6, "g");
  expect(sink, {out(6, "g")});
  expect(other, {out(0, "abc"), out(3, "def"), out(6, "g")});
}

TEST_CASE("row 12c: subscribing again replaces the subscription: new since and encoding") {
  Fanout fanout(kTerminal, ring_of(64));
  FakeSink sink;
  fanout.subscribe(&sink, Encoding::utf8, std::nullopt, true);
  fanout.append(0, "abcdef");
  expect(sink, {out(0, "abcdef")});
  const ReplayRange range = fanout.subscribe(&sink, Encoding::base64, 2, true);
  CHECK(fanout.subscriber_count() == 1);
  CHECK(range.from == 2);
  CHECK(range.to == 6);
  fanout.serve(&sink);
  expect(sink, {out(2, "cdef", Encoding::base64)});
  fanout.append(6, "g");
  expect(sink, {out(6, "g", Encoding::base64)});
  // A paused subscription subscribed again is no longer paused.
  fanout.set_paused(&sink, true);
  fanout.subscribe(&sink, Encoding::utf8, 7, true);
  fanout.append(7, "h");
  expect(sink, {out(7, "h")});
}

// --- metrics ------------------------------------------------------------------------------------------

TEST_CASE("the ring's memory is counted in the metrics while the fanout lives") {
  Metrics metrics;
  {
    Fanout fanout(kTerminal, ring_of(1 << 20), &metrics);
    CHECK(metrics.ring_bytes == 0);
    fanout.append(0, stream_bytes(0, 10000));
    CHECK(fanout.ring_allocated() >= 10000);
    CHECK(metrics.ring_bytes == fanout.ring_allocated());
    fanout.append(10000, stream_bytes(10000, 100000));
    CHECK(metrics.ring_bytes == fanout.ring_allocated());
  }
  CHECK(metrics.ring_bytes == 0);
}

}  // namespace
}  // namespace ptyhub::hub
