// Decoding what cluster mode reads from Redis: checked, typed, all or nothing.
#include "src/cluster/entries.hpp"

#include <charconv>
#include <limits>

#include <nlohmann/json.hpp>

namespace ptyhub::cluster {
namespace {

using nlohmann::json;
using Code = EntryError::Code;

constexpr uint64_t kMaxSize = 1000;     // cols and rows, as a client may ask them
constexpr uint64_t kMaxSignal = 64;     // signal numbers: 1..64
constexpr size_t kMaxNamedField = 64;  // a field name from the input, as an error shows it

EntryError error(Code code, std::string_view field) { return EntryError{code, std::string(field)}; }

// A decimal number with nothing around it; nullopt and the reason otherwise.
template <typename T>
std::optional<T> parse_number(std::string_view text, Code* why) {
  T value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec == std::errc::result_out_of_range) {
    *why = Code::out_of_range;
    return std::nullopt;
  }
  if (ec != std::errc() || end != text.data() + text.size()) {
    *why = Code::not_a_number;
    return std::nullopt;
  }
  return value;
}

// JSON text, or a discarded value when it is not JSON.
json parse_json(std::string_view text) {
  try {
    return json::parse(text, nullptr, false);
  } catch (const json::exception&) {
    return json(json::value_t::discarded);
  }
}

std::optional<ShareAccess> access_of(std::string_view text) {
  if (text == "write") return ShareAccess::write;
  if (text == "read") return ShareAccess::read;
  if (text == "none") return ShareAccess::none;
  return std::nullopt;
}

// Reads fields one after another, keeping the first error: decoders read everything, then check failed().
class FieldReader {
 public:
  explicit FieldReader(const Fields& fields) : fields_(fields) {}

  bool failed() const { return error_.has_value(); }
  const EntryError& error() const { return *error_; }
  void fail(Code code, std::string_view key) {
    if (!error_) error_ = cluster::error(code, key);
  }
  bool has(std::string_view key) const { return fields_.find(key) != fields_.end(); }

  // A field that must be there, and not be empty unless `may_be_empty`.
  std::string text(std::string_view key, bool may_be_empty = false) {
    const std::string* value = find(key);
    if (value == nullptr) {
      fail(Code::missing_field, key);
      return {};
    }
    if (value->empty() && !may_be_empty) fail(Code::empty_field, key);
    return *value;
  }
  // A field that may be missing (then "").
  std::string optional_text(std::string_view key) {
    const std::string* value = find(key);
    return value == nullptr ? std::string() : *value;
  }
  // A number in [min, max] that must be there.
  uint64_t number(std::string_view key, uint64_t min, uint64_t max) {
    if (!has(key)) {
      fail(Code::missing_field, key);
      return min;
    }
    return optional_number(key, min, max).value_or(min);
  }
  // A number in [min, max] when the field is there.
  std::optional<uint64_t> optional_number(std::string_view key, uint64_t min, uint64_t max) {
    const std::string* value = find(key);
    if (value == nullptr) return std::nullopt;
    Code why = Code::not_a_number;
    const std::optional<uint64_t> number = parse_number<uint64_t>(*value, &why);
    if (!number) {
      fail(why, key);
      return std::nullopt;
    }
    if (*number < min || *number > max) {
      fail(Code::out_of_range, key);
      return std::nullopt;
    }
    return number;
  }
  // "1" or "0", and it must be there.
  bool flag(std::string_view key) {
    const std::string value = text(key);
    if (failed()) return false;
    if (value != "1" && value != "0") fail(Code::bad_value, key);
    return value == "1";
  }
  // A JSON value when the field is there (null otherwise), refused unless `accepts` it.
  template <typename Check>
  json optional_json(std::string_view key, Check accepts, bool required = false) {
    const std::string* value = find(key);
    if (value == nullptr) {
      if (required) fail(Code::missing_field, key);
      return nullptr;
    }
    json parsed = parse_json(*value);
    if (parsed.is_discarded() || !accepts(parsed)) {
      fail(Code::bad_json, key);
      return nullptr;
    }
    return parsed;
  }

 private:
  const std::string* find(std::string_view key) const {
    auto it = fields_.find(key);
    return it == fields_.end() ? nullptr : &it->second;
  }

  const Fields& fields_;
  std::optional<EntryError> error_;
};

bool is_string_array(const json& value) {
  if (!value.is_array()) return false;
  for (const json& element : value) {
    if (!element.is_string()) return false;
  }
  return true;
}

bool is_string_map(const json& value) {
  if (!value.is_object()) return false;
  for (const auto& [key, element] : value.items()) {
    if (!element.is_string()) return false;
  }
  return true;
}

// An event or trailer payload: the text of a JSON object.
bool is_object_text(std::string_view text) { return parse_json(text).is_object(); }

std::vector<std::string> strings_of(const json& array) {
  std::vector<std::string> out;
  if (!array.is_array()) return out;
  for (const json& element : array) out.push_back(element.get<std::string>());
  return out;
}

// A JSON integer member in [min, max] (absent: `fallback`); out of it, or not an integer: an error.
std::optional<uint16_t> json_size(const json& object, const char* key, uint16_t fallback) {
  auto it = object.find(key);
  if (it == object.end()) return fallback;
  if (it->is_number_unsigned()) {
    const uint64_t value = it->get<uint64_t>();
    if (value >= 1 && value <= kMaxSize) return static_cast<uint16_t>(value);
  } else if (it->is_number_integer()) {
    const int64_t value = it->get<int64_t>();
    if (value >= 1 && value <= static_cast<int64_t>(kMaxSize)) return static_cast<uint16_t>(value);
  }
  return std::nullopt;
}

Decoded<TerminalEntry> decode_output(StreamId id, FieldReader& reader, const Fields& fields) {
  const uint64_t start = reader.number("s", 0, std::numeric_limits<uint64_t>::max());
  if (reader.failed()) return reader.error();
  const std::string& data = fields.find("d")->second;
  if (data.size() > std::numeric_limits<uint64_t>::max() - start) return error(Code::out_of_range, "s");
  // The id says where the output ends: <start + length>-0.
  if (id.ms != start + data.size() || id.seq != 0) return error(Code::inconsistent, "s");
  return TerminalEntry(OutputEntry{start, data});
}

Decoded<TerminalEntry> decode_exit(FieldReader& reader) {
  ExitEntry exit;
  if (reader.has("code")) {
    Code why = Code::not_a_number;
    const std::string code = reader.text("code");
    if (!reader.failed()) {
      exit.code = parse_number<int>(code, &why);
      if (!exit.code) reader.fail(why, "code");
    }
  }
  if (reader.has("sig")) {
    exit.signal = reader.text("sig");
    if (exit.code) reader.fail(Code::inconsistent, "sig");  // an exit code or a signal, not both
  }
  exit.duration_ms = reader.optional_number("dur", 0, std::numeric_limits<uint64_t>::max()).value_or(0);
  exit.reason = reader.optional_text("why");
  const json trailers = reader.optional_json("tr", [](const json& value) {
    if (!is_string_array(value)) return false;
    for (const json& payload : value) {
      if (!is_object_text(payload.get_ref<const std::string&>())) return false;
    }
    return true;
  });
  if (reader.failed()) return reader.error();
  exit.trailers = strings_of(trailers);
  return TerminalEntry(std::move(exit));
}

}  // namespace

std::string EntryError::describe() const {
  const char* what = "";
  switch (code) {
    case Code::not_array: what = "not an array of the expected size"; break;
    case Code::not_string: what = "not a string"; break;
    case Code::odd_fields: what = "a field without its value"; break;
    case Code::duplicate_field: what = "given twice"; break;
    case Code::bad_id: what = "not a stream entry id"; break;
    case Code::missing_field: what = "missing"; break;
    case Code::empty_field: what = "empty"; break;
    case Code::not_a_number: what = "not a number"; break;
    case Code::out_of_range: what = "out of range"; break;
    case Code::bad_value: what = "not a value it may take"; break;
    case Code::bad_json: what = "not JSON of the expected shape"; break;
    case Code::inconsistent: what = "inconsistent with the rest of the entry"; break;
  }
  return field.empty() ? std::string(what) : "\"" + field + "\": " + what;
}

Decoded<StreamId> parse_stream_id(std::string_view text) {
  const size_t dash = text.find('-');
  if (dash == std::string_view::npos) return error(Code::bad_id, "id");
  Code why = Code::not_a_number;
  const auto ms = parse_number<uint64_t>(text.substr(0, dash), &why);
  const auto seq = parse_number<uint64_t>(text.substr(dash + 1), &why);
  if (!ms || !seq) return error(Code::bad_id, "id");
  return StreamId{*ms, *seq};
}

std::string to_string(StreamId id) { return std::to_string(id.ms) + "-" + std::to_string(id.seq); }

Decoded<Fields> decode_fields(const RedisValue& list) {
  if (list.type != RedisValue::Type::array) return error(Code::not_array, "fields");
  if (list.elements.size() % 2 != 0) return error(Code::odd_fields, "fields");
  Fields fields;
  for (size_t i = 0; i < list.elements.size(); i += 2) {
    const RedisValue& key = list.elements[i];
    const RedisValue& value = list.elements[i + 1];
    if (key.type != RedisValue::Type::string || value.type != RedisValue::Type::string) {
      return error(Code::not_string, "fields");
    }
    if (!fields.emplace(key.text, value.text).second) {
      return error(Code::duplicate_field, key.text.size() <= kMaxNamedField ? std::string_view(key.text)
                                                                            : std::string_view(key.text).substr(0, kMaxNamedField));
    }
  }
  return fields;
}

StreamEntry decode_stream_entry(const RedisValue& entry) {
  StreamEntry out;
  if (entry.type != RedisValue::Type::array || entry.elements.size() != 2) {
    out.error = error(Code::not_array, "entry");
    return out;
  }
  if (entry[0].type != RedisValue::Type::string) {
    out.error = error(Code::not_string, "id");
    return out;
  }
  Decoded<StreamId> id = parse_stream_id(entry[0].text);
  if (!id) {
    out.error = id.error();
    return out;
  }
  out.id = *id;
  Decoded<Fields> fields = decode_fields(entry[1]);
  if (!fields) {
    out.error = fields.error();
    return out;
  }
  out.fields = std::move(*fields);
  return out;
}

Decoded<std::vector<StreamEntry>> decode_range_reply(const RedisValue& reply) {
  if (reply.type != RedisValue::Type::array) return error(Code::not_array, "reply");
  std::vector<StreamEntry> entries;
  entries.reserve(reply.elements.size());
  for (const RedisValue& entry : reply.elements) entries.push_back(decode_stream_entry(entry));
  return entries;
}

Decoded<std::vector<StreamBatch>> decode_read_reply(const RedisValue& reply) {
  std::vector<StreamBatch> batches;
  if (reply.is_nil()) return batches;  // the timeout: nothing new
  if (reply.type != RedisValue::Type::array) return error(Code::not_array, "reply");
  for (const RedisValue& stream : reply.elements) {
    if (stream.type != RedisValue::Type::array || stream.elements.size() != 2 ||
        stream[1].type != RedisValue::Type::array) {
      return error(Code::not_array, "stream");
    }
    if (stream[0].type != RedisValue::Type::string) return error(Code::not_string, "stream");
    Decoded<std::vector<StreamEntry>> entries = decode_range_reply(stream[1]);
    batches.push_back(StreamBatch{stream[0].text, std::move(*entries)});
  }
  return batches;
}

Decoded<TerminalEntry> decode_terminal_entry(StreamId id, const Fields& fields) {
  FieldReader reader(fields);
  if (reader.has("d")) return decode_output(id, reader, fields);
  const std::string type = reader.text("t");
  if (reader.failed()) return reader.error();
  if (type == "r") {
    const auto cols = static_cast<uint16_t>(reader.number("c", 1, kMaxSize));
    const auto rows = static_cast<uint16_t>(reader.number("r", 1, kMaxSize));
    if (reader.failed()) return reader.error();
    return TerminalEntry(ResizeEntry{cols, rows});
  }
  if (type == "x") return decode_exit(reader);
  if (type == "e") {
    std::string payload = reader.text("f");
    if (!reader.failed() && !is_object_text(payload)) reader.fail(Code::bad_json, "f");
    if (reader.failed()) return reader.error();
    return TerminalEntry(EventEntry{std::move(payload)});
  }
  return TerminalEntry(UnknownEntry{type});
}

Decoded<DirectoryEvent> decode_directory_event(const Fields& fields) {
  FieldReader reader(fields);
  DirectoryEvent event{reader.text("e"), reader.text("t"), reader.optional_text("n")};
  if (reader.failed()) return reader.error();
  return event;
}

Decoded<DirectoryEntry> decode_directory_entry(const Fields& fields) {
  FieldReader reader(fields);
  DirectoryEntry entry;
  entry.node = reader.text("node");
  entry.boot = reader.text("boot");
  entry.owner = reader.optional_text("owner");
  entry.kind = reader.optional_text("kind");
  entry.name = reader.optional_text("name");
  const json command = reader.optional_json("command", is_string_array);
  entry.cwd = reader.optional_text("cwd");
  entry.operation = reader.optional_text("op");
  entry.cols = static_cast<uint16_t>(reader.optional_number("cols", 1, kMaxSize).value_or(80));
  entry.rows = static_cast<uint16_t>(reader.optional_number("rows", 1, kMaxSize).value_or(24));
  entry.created_at_ms = static_cast<int64_t>(
      reader.optional_number("createdAt", 0, static_cast<uint64_t>(std::numeric_limits<int64_t>::max())).value_or(0));
  const json shares = reader.optional_json("shares", [](const json& value) {
    if (!is_string_map(value)) return false;
    for (const auto& [user, mode] : value.items()) {
      if (!access_of(mode.get_ref<const std::string&>())) return false;
    }
    return true;
  });
  entry.state = reader.optional_text("state");
  if (reader.failed()) return reader.error();
  entry.command = strings_of(command);
  if (shares.is_object()) {
    for (const auto& [user, mode] : shares.items()) entry.shares[user] = *access_of(mode.get_ref<const std::string&>());
  }
  return entry;
}

Decoded<CreateReplyAddress> decode_create_reply_address(const Fields& fields) {
  FieldReader reader(fields);
  CreateReplyAddress address;
  address.meant_for = reader.text("b");
  if (reader.text("k") != "c" && !reader.failed()) reader.fail(Code::bad_value, "k");
  address.node = reader.text("from");
  address.boot = reader.text("fb");
  address.seq = reader.number("q", 0, std::numeric_limits<uint64_t>::max());
  if (reader.failed()) return reader.error();
  return address;
}

namespace {

Decoded<NodeRequestBody> decode_create_request(FieldReader& reader) {
  CreateRequest request;
  request.from = reader.text("from");
  request.from_boot = reader.text("fb");
  request.seq = reader.number("q", 0, std::numeric_limits<uint64_t>::max());
  request.user = reader.text("u");
  const json options = reader.optional_json("o", [](const json& value) { return value.is_object(); }, true);
  if (reader.failed()) return reader.error();
  auto member = options.find("command");
  if (member != options.end()) {
    if (!is_string_array(*member)) return error(Code::bad_json, "o");
    request.command = strings_of(*member);
  }
  member = options.find("cwd");
  if (member != options.end()) {
    if (!member->is_string()) return error(Code::bad_json, "o");
    request.cwd = member->get<std::string>();
  }
  member = options.find("env");
  if (member != options.end()) {
    if (!is_string_map(*member)) return error(Code::bad_json, "o");
    for (const auto& [key, value] : member->items()) request.env[key] = value.get<std::string>();
  }
  member = options.find("name");
  if (member != options.end()) {
    if (!member->is_string()) return error(Code::bad_json, "o");
    request.name = member->get<std::string>();
  }
  const std::optional<uint16_t> cols = json_size(options, "cols", 80);
  const std::optional<uint16_t> rows = json_size(options, "rows", 24);
  if (!cols || !rows) return error(Code::out_of_range, "o");
  request.cols = *cols;
  request.rows = *rows;
  return NodeRequestBody(std::move(request));
}

Decoded<NodeRequestBody> decode_create_reply(FieldReader& reader) {
  CreateReply reply;
  reply.seq = reader.number("q", 0, std::numeric_limits<uint64_t>::max());
  reply.terminal = reader.optional_text("tid");
  if (reply.terminal.empty()) {
    reply.code = reader.text("err");
    reply.message = reader.optional_text("m");
    reply.field = reader.optional_text("f");
  }
  if (reader.failed()) return reader.error();
  return NodeRequestBody(std::move(reply));
}

// The requests about one of this node's terminals (`t`).
Decoded<NodeRequestBody> decode_terminal_request(const std::string& kind, FieldReader& reader) {
  if (kind.size() != 1 || std::string_view("irksgdah").find(kind[0]) == std::string_view::npos) {
    return NodeRequestBody(UnknownRequest{kind});
  }
  std::string terminal = reader.text("t");
  if (reader.failed()) return reader.error();
  NodeRequestBody body;
  if (kind == "i") {
    body = InputRequest{std::move(terminal), reader.text("d", true)};
  } else if (kind == "r") {
    const auto cols = static_cast<uint16_t>(reader.number("c", 1, kMaxSize));
    const auto rows = static_cast<uint16_t>(reader.number("r", 1, kMaxSize));
    body = ResizeRequest{std::move(terminal), cols, rows};
  } else if (kind == "k") {
    body = KillRequest{std::move(terminal), static_cast<int>(reader.number("s", 1, kMaxSignal))};
  } else if (kind == "s") {
    std::string user = reader.text("u");
    const std::string access = reader.text("a");
    const std::optional<ShareAccess> parsed = access_of(access);
    if (!parsed) reader.fail(Code::bad_value, "a");
    body = ShareRequest{std::move(terminal), std::move(user), parsed.value_or(ShareAccess::none)};
  } else if (kind == "g") {
    body = CancelRequest{std::move(terminal), reader.text("o")};
  } else if (kind == "d") {
    body = DismissRequest{std::move(terminal)};
  } else if (kind == "a") {
    std::string node = reader.text("n");
    const std::optional<uint64_t> offset = reader.optional_number("o", 0, std::numeric_limits<uint64_t>::max());
    body = ProgressRequest{std::move(terminal), std::move(node), offset};
  } else if (kind == "h") {
    std::string node = reader.text("n");
    const bool held = reader.flag("h");
    const bool urgent = reader.flag("u");
    body = HoldRequest{std::move(terminal), std::move(node), held, urgent};
  }
  if (reader.failed()) return reader.error();
  return body;
}

}  // namespace

Decoded<NodeRequest> decode_node_request(const Fields& fields) {
  FieldReader reader(fields);
  NodeRequest request;
  request.boot = reader.text("b");
  const std::string kind = reader.text("k");
  if (reader.failed()) return reader.error();
  Decoded<NodeRequestBody> body = kind == "c"   ? decode_create_request(reader)
                                  : kind == "C" ? decode_create_reply(reader)
                                                : decode_terminal_request(kind, reader);
  if (!body) return body.error();
  request.body = std::move(*body);
  return request;
}

}  // namespace ptyhub::cluster
