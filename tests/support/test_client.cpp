// TestClient: see test_client.hpp.
#include "tests/support/test_client.hpp"

#include <doctest/doctest.h>

#include <regex>

namespace ptyhub::test {

namespace {

using Clock = std::chrono::steady_clock;

std::chrono::milliseconds left_until(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() > 0 ? left : std::chrono::milliseconds(0);
}

std::string terminal_of(const Json& message) {
  const Json* data = message.contains("data") && message["data"].is_object() ? &message["data"] : nullptr;
  if (data == nullptr || !data->contains("terminalId") || !(*data)["terminalId"].is_string()) return {};
  return (*data)["terminalId"].get<std::string>();
}

}  // namespace

bool TestClient::connect(const WsOptions& options, std::chrono::milliseconds timeout) {
  return ws_.connect(options, timeout);
}

bool TestClient::connect_as(const DaemonProcess& daemon, std::string_view sub, std::string_view scope) {
  if (!connect(daemon.ws_options())) return false;
  auto reply = request("auth", {{"token", daemon.token(sub, scope)}});
  return reply && reply->value("type", "") == "auth.ok";
}

std::optional<Json> TestClient::request(std::string_view type, const Json& data, std::chrono::milliseconds timeout) {
  return request_with_id(type, data, next_id(), timeout);
}

std::optional<Json> TestClient::request_with_id(std::string_view type, const Json& data, const Json& id,
                                                std::chrono::milliseconds timeout) {
  const std::size_t from = mark();
  ws_.send_json({{"type", type}, {"id", id}, {"data", data}});
  return wait_for([&](const Json& message) { return message.contains("id") && message["id"] == id; }, timeout, from);
}

void TestClient::notify(std::string_view type, const Json& data) { ws_.send_json({{"type", type}, {"data", data}}); }

bool TestClient::pump(std::chrono::milliseconds timeout) {
  auto message = ws_.receive_json(timeout);
  if (!message) return false;
  record(std::move(*message));
  return true;
}

void TestClient::record(Json message) {
  const std::string type = message.is_object() ? message.value("type", "") : "";
  const std::string terminal = terminal_of(message);
  if (type == "shell.output" && !terminal.empty()) {
    record_output(message["data"]);
  } else if (type == "shell.gap" && !terminal.empty()) {
    TerminalOutput& output = outputs_[terminal];
    output.gaps.push_back(message["data"]);
    output.next = message["data"].value("to", output.next);
  } else if (type == "subscribed" && message.contains("data") && message["data"].is_object()) {
    // A (re)subscription starts a new stream for this client: offsets restart at the replay point.
    const std::string channel = message["data"].value("channel", "");
    static constexpr std::string_view kPrefix = "shell:terminal:";
    if (channel.rfind(kPrefix, 0) == 0) outputs_[channel.substr(kPrefix.size())] = TerminalOutput{};
  } else if (type == "shell.exit" && !terminal.empty()) {
    TerminalOutput& output = outputs_[terminal];
    if (output.exit) output.problems.push_back("second shell.exit");
    output.exit = message["data"];
  }
  history_.push_back(std::move(message));
}

void TestClient::record_output(const Json& data) {
  TerminalOutput& output = outputs_[data["terminalId"].get<std::string>()];
  if (output.exit) output.problems.push_back("shell.output after shell.exit: " + data.dump());
  if (!data.contains("offset") || !data["offset"].is_number_unsigned() || !data.contains("next") ||
      !data["next"].is_number_unsigned() || !data.contains("data") || !data["data"].is_string()) {
    output.problems.push_back("malformed shell.output: " + data.dump());
    return;
  }
  const auto offset = data["offset"].get<std::uint64_t>();
  const auto next = data["next"].get<std::uint64_t>();
  if (!output.first_offset) {
    output.first_offset = offset;
  } else if (offset != output.next) {
    output.problems.push_back("offset " + std::to_string(offset) + " after next " + std::to_string(output.next));
  }
  if (next < offset) output.problems.push_back("next < offset: " + data.dump());
  output.next = next;
  const std::string encoding = data.value("encoding", "utf8");
  const std::string text = data["data"].get<std::string>();
  output.text += encoding == "base64" ? decode_base64(text) : text;
  output.chunks.push_back(data);
}

std::optional<Json> TestClient::wait_for(const Predicate& predicate, std::chrono::milliseconds timeout,
                                         std::size_t from) {
  const auto deadline = Clock::now() + timeout;
  std::size_t scanned = from;
  for (;;) {
    for (; scanned < history_.size(); ++scanned) {
      if (predicate(history_[scanned])) return history_[scanned];
    }
    if (Clock::now() >= deadline || (ws_.closed() && ws_.pending() == 0)) return std::nullopt;
    pump(left_until(deadline));
  }
}

std::optional<Json> TestClient::wait_event(std::string_view type, std::string_view terminal_id,
                                           std::chrono::milliseconds timeout, std::size_t from) {
  return wait_for(
      [&](const Json& message) {
        return message.is_object() && message.value("type", "") == type &&
               (terminal_id.empty() || terminal_of(message) == terminal_id);
      },
      timeout, from);
}

void TestClient::drain(std::chrono::milliseconds duration) {
  const auto deadline = Clock::now() + duration;
  while (Clock::now() < deadline && !(ws_.closed() && ws_.pending() == 0)) pump(left_until(deadline));
}

bool TestClient::wait_output(const std::string& terminal_id, std::string_view needle,
                             std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (outputs_[terminal_id].text.find(needle) != std::string::npos) return true;
    if (Clock::now() >= deadline || (ws_.closed() && ws_.pending() == 0)) return false;
    pump(left_until(deadline));
  }
}

std::optional<Json> TestClient::wait_exit(const std::string& terminal_id, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (outputs_[terminal_id].exit) return outputs_[terminal_id].exit;
    if (Clock::now() >= deadline || (ws_.closed() && ws_.pending() == 0)) return std::nullopt;
    pump(left_until(deadline));
  }
}

std::optional<Json> TestClient::create(const Json& data, std::chrono::milliseconds timeout) {
  return request("shell.create", data, timeout);
}

Json TestClient::create_terminal(const Json& data) {
  auto reply = create(data);
  INFO("shell.create ", data.dump(), " -> ", brief(reply));
  bool created = reply && reply->value("type", "") == "shell.created" && reply->contains("data") &&
                 (*reply)["data"].contains("terminal") && (*reply)["data"]["terminal"].is_object() &&
                 (*reply)["data"]["terminal"].contains("id");
  CHECK(created);
  return created ? (*reply)["data"]["terminal"] : Json::object();
}

std::unique_ptr<TestClient> connect_user(const DaemonProcess& daemon, std::string_view sub, std::string_view scope) {
  auto client = std::make_unique<TestClient>();
  INFO("connecting as ", sub, " with scope '", scope, "'");
  CHECK(client->connect_as(daemon, sub, scope));
  return client;
}

bool is_error(const std::optional<Json>& message, std::string_view code, std::string_view field) {
  if (!message || !message->is_object() || message->value("type", "") != "error") return false;
  const Json& data = message->contains("data") ? (*message)["data"] : Json();
  if (!data.is_object() || data.value("code", "") != code) return false;
  if (!data.contains("message") || !data["message"].is_string()) return false;
  return field.empty() || data.value("field", "") == field;
}

bool is_iso_millis(const Json& value) {
  static const std::regex kIso(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$)");
  return value.is_string() && std::regex_match(value.get<std::string>(), kIso);
}

std::string decode_base64(std::string_view text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string bytes;
  unsigned accumulator = 0;
  int bits = 0;
  for (char c : text) {
    int v = value(c);
    if (v < 0) continue;  // '=' padding
    accumulator = (accumulator << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes.push_back(static_cast<char>((accumulator >> bits) & 0xff));
    }
  }
  return bytes;
}

std::string brief(const std::optional<Json>& message) {
  if (!message) return "(nothing)";
  std::string text = message->dump();
  if (text.size() > 400) text = text.substr(0, 400) + "...";
  return text;
}

}  // namespace ptyhub::test
