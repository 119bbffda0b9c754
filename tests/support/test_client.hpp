// TestClient: the ptyhub.v1 protocol spoken from a test, on top of one WsClient.
//
// Ownership: a TestClient owns its WsClient and a log of every message it received (history()), in order.
// Each received message is also folded into per-terminal output records (TerminalOutput), which check the
// output-stream rules of docs/protocol.md §6 The output stream as the messages arrive: contiguous offsets,
// nothing after shell.exit. Single-threaded like WsClient; every wait services the connection until a
// condition holds or a deadline passes.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/daemon_process.hpp"
#include "tests/support/ws_client.hpp"

namespace ptyhub::test {

using Json = nlohmann::json;
using Predicate = std::function<bool(const Json&)>;

// What one client saw of one terminal's output stream.
struct TerminalOutput {
  std::string text;                   // concatenated `data` of utf8 chunks (decoded bytes for base64)
  std::vector<Json> chunks;           // every shell.output `data`, in order
  std::optional<std::uint64_t> first_offset;
  std::uint64_t next = 0;             // `next` of the last chunk
  std::vector<Json> gaps;             // shell.gap `data`
  std::optional<Json> exit;           // shell.exit `data`
  std::vector<std::string> problems;  // violations of the stream rules, human readable
};

class TestClient {
 public:
  TestClient() = default;

  // Opens the WebSocket (no authentication besides what `options` carries).
  bool connect(const WsOptions& options, std::chrono::milliseconds timeout = 5s);
  // Connects to `daemon` and authenticates with an `auth` message; true on auth.ok.
  bool connect_as(const DaemonProcess& daemon, std::string_view sub, std::string_view scope = kUserScopes);

  WsClient& ws() { return ws_; }

  // Sends a raw message.
  void send(const Json& message) { ws_.send_json(message); }
  // Sends {type, id, data} with a fresh integer id and waits for the message that carries the id.
  std::optional<Json> request(std::string_view type, const Json& data = Json::object(),
                              std::chrono::milliseconds timeout = 5s);
  // Same with the given id (string or integer).
  std::optional<Json> request_with_id(std::string_view type, const Json& data, const Json& id,
                                      std::chrono::milliseconds timeout = 5s);
  // Sends {type, data} without an id.
  void notify(std::string_view type, const Json& data = Json::object());
  int next_id() { return ++last_id_; }

  // Waits for a message satisfying `predicate` among those received from history index `from` on.
  std::optional<Json> wait_for(const Predicate& predicate, std::chrono::milliseconds timeout = 5s,
                               std::size_t from = 0);
  // Waits for a message of `type`, optionally about `terminal_id` (data.terminalId), from `from` on.
  std::optional<Json> wait_event(std::string_view type, std::string_view terminal_id = {},
                                 std::chrono::milliseconds timeout = 5s, std::size_t from = 0);
  // Receives whatever arrives during `duration` (to show that something does NOT arrive).
  void drain(std::chrono::milliseconds duration);

  const std::vector<Json>& history() const { return history_; }
  // The current end of history(), for "from here on" waits.
  std::size_t mark() const { return history_.size(); }

  // The output record of a terminal (empty when nothing arrived).
  const TerminalOutput& output(const std::string& terminal_id) { return outputs_[terminal_id]; }
  // Waits until the terminal's output text contains `needle`.
  bool wait_output(const std::string& terminal_id, std::string_view needle, std::chrono::milliseconds timeout = 5s);
  // Waits for the terminal's shell.exit; returns its data.
  std::optional<Json> wait_exit(const std::string& terminal_id, std::chrono::milliseconds timeout = 5s);

  // shell.create: returns the reply (shell.created or error).
  std::optional<Json> create(const Json& data = Json::object(), std::chrono::milliseconds timeout = 5s);
  // shell.create that must succeed: returns the terminal object, or an empty object (and fails the test).
  Json create_terminal(const Json& data = Json::object());

 private:
  // Receives one message (up to `timeout`) into history; false when none arrived.
  bool pump(std::chrono::milliseconds timeout);
  void record(Json message);
  void record_output(const Json& data);

  WsClient ws_;
  std::vector<Json> history_;
  std::map<std::string, TerminalOutput> outputs_;
  int last_id_ = 0;
};

// A client of `daemon` authenticated as `sub` (by an auth message); fails the test when that does not work.
std::unique_ptr<TestClient> connect_user(const DaemonProcess& daemon, std::string_view sub,
                                         std::string_view scope = kUserScopes);

// True when `message` is an error reply with `code` (and `field`, when given).
bool is_error(const std::optional<Json>& message, std::string_view code, std::string_view field = {});
// ISO 8601 UTC with milliseconds: 2026-11-26T14:00:00.000Z.
bool is_iso_millis(const Json& value);
// Base64 (RFC 4648) decoding for `encoding: "base64"` chunks.
std::string decode_base64(std::string_view text);
// A short printable rendering of a message for failure output.
std::string brief(const std::optional<Json>& message);

}  // namespace ptyhub::test
