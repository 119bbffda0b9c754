// FakeSink: a hub::Sink for tests of the fan-out core. It records every frame it is sent; the test sets
// whether it has room (a flag, and optionally a queue limit in bytes that drain() empties) and when it
// counts as stalled.
#pragma once

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "src/hub/fanout.hpp"
#include "src/protocol/frame.hpp"

namespace ptyhub::hub::test {

// A received frame, read back as JSON.
struct Message {
  protocol::SharedFrame frame;
  std::string type;
  nlohmann::json data;
};

inline Message read_message(const protocol::SharedFrame& frame) {
  REQUIRE(frame != nullptr);
  const std::string_view payload = frame->payload();
  nlohmann::json parsed = nlohmann::json::parse(payload.begin(), payload.end(), nullptr, false);
  REQUIRE_FALSE(parsed.is_discarded());
  REQUIRE(parsed.is_object());
  REQUIRE(parsed.contains("type"));
  return Message{frame, parsed["type"].get<std::string>(), parsed.value("data", nlohmann::json::object())};
}

class FakeSink final : public Sink {
 public:
  void deliver(const protocol::SharedFrame& frame) override {
    Message message = read_message(frame);
    // Output and gaps go only to a subscriber that has room (docs/protocol.md §6 "Flow control").
    if ((message.type == "shell.output" || message.type == "shell.gap") && !has_room()) ++sent_without_room;
    queued_bytes += frame->size();
    received.push_back(std::move(message));
  }
  bool has_room() const override { return room && queued_bytes < queue_limit; }
  bool stalled(uint64_t now_ms) const override { return stalled_at.has_value() && now_ms >= *stalled_at; }

  // The client took everything off its queue.
  void drain() { queued_bytes = 0; }
  // Messages received since the previous call.
  std::vector<Message> take() {
    std::vector<Message> fresh(received.begin() + static_cast<std::ptrdiff_t>(taken), received.end());
    taken = received.size();
    return fresh;
  }

  bool room = true;
  size_t queue_limit = std::numeric_limits<size_t>::max();
  size_t queued_bytes = 0;
  std::optional<uint64_t> stalled_at;  // stalled from this loop time on
  std::vector<Message> received;
  size_t taken = 0;
  int sent_without_room = 0;
};

}  // namespace ptyhub::hub::test
