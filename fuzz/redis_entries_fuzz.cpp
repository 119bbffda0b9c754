// Fuzzes the decoders of what cluster mode reads from Redis (src/cluster/entries, ptyhub_cluster_entries):
// XREAD and XRANGE replies, the entries of a terminal's stream, the requests of a node's input stream,
// events and directory entries. The input is read as a tree of Redis replies (RedisValue), one node a
// line, so that the seed corpus is readable and mutations keep the shape:
//   *N   an array of the N nodes that follow (N <= 64)      $text  a bulk string (the rest of the line)
//   #hex a bulk string given in hex (binary bytes, newlines) :N     an integer
//   +text a status    -text an error    _ nil                another line: a bulk string of the whole line
// Depth (8) and node count (1024) are bounded; a missing node ends its array early.
// Every decoder runs on the tree, on each entry it holds and on the tree taken as one field list.
// Properties: nothing throws; a refusal says why; what is decoded keeps its ranges (sizes 1..1000, signals
// 1..64, an output entry ends where its id says, with the very bytes of `d`); a field list keeps every
// pair; written again the way the cluster writes it, a decoded entry decodes to the same value; a field no
// decoder knows changes nothing.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "fuzz/fuzz_check.hpp"
#include "src/cluster/entries.hpp"

namespace {

using namespace ptyhub::cluster;
using nlohmann::json;

constexpr int kMaxDepth = 8;
constexpr size_t kMaxNodes = 1024;
constexpr size_t kMaxArray = 64;

// ---- the input as a tree of replies -----------------------------------------------------------------

class TreeReader {
 public:
  explicit TreeReader(std::string_view input) : input_(input) {}

  // The next node; nullopt when the input is used up.
  std::optional<RedisValue> node(int depth) {
    if (at_ >= input_.size() || nodes_ >= kMaxNodes) return std::nullopt;
    ++nodes_;
    const char tag = input_[at_];
    RedisValue value;
    switch (tag) {
      case '*': {
        ++at_;
        const size_t count = std::min<size_t>(number(line()), kMaxArray);
        value.type = RedisValue::Type::array;
        if (depth >= kMaxDepth) break;
        for (size_t i = 0; i < count; ++i) {
          std::optional<RedisValue> child = node(depth + 1);
          if (!child) break;
          value.elements.push_back(std::move(*child));
        }
        break;
      }
      case '$':
        ++at_;
        value.type = RedisValue::Type::string;
        value.text = line();
        break;
      case '#':
        ++at_;
        value.type = RedisValue::Type::string;
        value.text = unhex(line());
        break;
      case ':':
        ++at_;
        value.type = RedisValue::Type::integer;
        value.integer = static_cast<long long>(number(line()));
        break;
      case '+':
      case '-':
        ++at_;
        value.type = tag == '+' ? RedisValue::Type::status : RedisValue::Type::error;
        value.text = line();
        break;
      case '_':
        ++at_;
        line();
        break;
      default:
        value.type = RedisValue::Type::string;
        value.text = line();
        break;
    }
    return value;
  }

 private:
  // The rest of the line, without its '\n'.
  std::string line() {
    const size_t end = input_.find('\n', at_);
    const size_t stop = end == std::string_view::npos ? input_.size() : end;
    std::string text(input_.substr(at_, stop - at_));
    at_ = end == std::string_view::npos ? input_.size() : end + 1;
    return text;
  }
  static uint64_t number(std::string_view text) {
    uint64_t value = 0;
    for (char c : text) {
      if (c < '0' || c > '9') break;
      value = value * 10 + static_cast<uint64_t>(c - '0');
      if (value > 1000000000) break;
    }
    return value;
  }
  static std::string unhex(std::string_view text) {
    auto digit = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    std::string out;
    for (size_t i = 0; i + 1 < text.size(); i += 2) {
      const int high = digit(text[i]), low = digit(text[i + 1]);
      if (high < 0 || low < 0) break;
      out.push_back(static_cast<char>(high * 16 + low));
    }
    return out;
  }

  std::string_view input_;
  size_t at_ = 0;
  size_t nodes_ = 0;
};

// ---- writing decoded entries again, as src/cluster/cluster.cpp writes them --------------------------

const char* access_text(ShareAccess access) {
  return access == ShareAccess::write ? "write" : access == ShareAccess::read ? "read" : "none";
}

Fields encode(const TerminalEntry& entry) {
  Fields fields;
  if (const auto* output = std::get_if<OutputEntry>(&entry)) {
    fields = {{"s", std::to_string(output->start)}, {"d", output->data}};
  } else if (const auto* resize = std::get_if<ResizeEntry>(&entry)) {
    fields = {{"t", "r"}, {"c", std::to_string(resize->cols)}, {"r", std::to_string(resize->rows)}};
  } else if (const auto* exit = std::get_if<ExitEntry>(&entry)) {
    fields = {{"t", "x"}, {"dur", std::to_string(exit->duration_ms)}};
    if (exit->code) fields["code"] = std::to_string(*exit->code);
    if (!exit->signal.empty()) fields["sig"] = exit->signal;
    if (!exit->reason.empty()) fields["why"] = exit->reason;
    if (!exit->trailers.empty()) fields["tr"] = json(exit->trailers).dump();
  } else if (const auto* event = std::get_if<EventEntry>(&entry)) {
    fields = {{"t", "e"}, {"f", event->payload}};
  } else {
    fields = {{"t", std::get<UnknownEntry>(entry).type}};
  }
  return fields;
}

Fields encode(const NodeRequest& request) {
  Fields fields = {{"b", request.boot}};
  const NodeRequestBody& body = request.body;
  auto terminal = [&](const char* kind, const std::string& id) {
    fields["k"] = kind;
    fields["t"] = id;
  };
  if (const auto* input = std::get_if<InputRequest>(&body)) {
    terminal("i", input->terminal);
    fields["d"] = input->bytes;
  } else if (const auto* resize = std::get_if<ResizeRequest>(&body)) {
    terminal("r", resize->terminal);
    fields["c"] = std::to_string(resize->cols);
    fields["r"] = std::to_string(resize->rows);
  } else if (const auto* kill = std::get_if<KillRequest>(&body)) {
    terminal("k", kill->terminal);
    fields["s"] = std::to_string(kill->signal);
  } else if (const auto* share = std::get_if<ShareRequest>(&body)) {
    terminal("s", share->terminal);
    fields["u"] = share->user;
    fields["a"] = access_text(share->access);
  } else if (const auto* cancel = std::get_if<CancelRequest>(&body)) {
    terminal("g", cancel->terminal);
    fields["o"] = cancel->operation;
  } else if (const auto* dismiss = std::get_if<DismissRequest>(&body)) {
    terminal("d", dismiss->terminal);
  } else if (const auto* progress = std::get_if<ProgressRequest>(&body)) {
    terminal("a", progress->terminal);
    fields["n"] = progress->node;
    if (progress->offset) fields["o"] = std::to_string(*progress->offset);
  } else if (const auto* hold = std::get_if<HoldRequest>(&body)) {
    terminal("h", hold->terminal);
    fields["n"] = hold->node;
    fields["h"] = hold->held ? "1" : "0";
    fields["u"] = hold->urgent ? "1" : "0";
  } else if (const auto* create = std::get_if<CreateRequest>(&body)) {
    fields["k"] = "c";
    fields["q"] = std::to_string(create->seq);
    fields["from"] = create->from;
    fields["fb"] = create->from_boot;
    fields["u"] = create->user;
    fields["o"] = json{{"command", create->command}, {"cwd", create->cwd}, {"env", create->env},
                       {"cols", create->cols},       {"rows", create->rows}, {"name", create->name}}
                      .dump();
  } else if (const auto* reply = std::get_if<CreateReply>(&body)) {
    fields["k"] = "C";
    fields["q"] = std::to_string(reply->seq);
    if (!reply->terminal.empty()) {
      fields["tid"] = reply->terminal;
    } else {
      fields["err"] = reply->code;
      fields["m"] = reply->message;
      fields["f"] = reply->field;
    }
  } else {
    fields["k"] = std::get<UnknownRequest>(body).kind;
  }
  return fields;
}

Fields encode(const DirectoryEntry& entry) {
  json shares = json::object();
  for (const auto& [user, access] : entry.shares) shares[user] = access_text(access);
  return {{"node", entry.node},       {"boot", entry.boot},       {"owner", entry.owner},
          {"kind", entry.kind},       {"name", entry.name},       {"command", json(entry.command).dump()},
          {"cwd", entry.cwd},         {"op", entry.operation},    {"cols", std::to_string(entry.cols)},
          {"rows", std::to_string(entry.rows)}, {"createdAt", std::to_string(entry.created_at_ms)},
          {"shares", shares.dump()},  {"state", entry.state}};
}

Fields encode(const DirectoryEvent& event) {
  Fields fields = {{"e", event.event}, {"t", event.terminal}};
  if (!event.node.empty()) fields["n"] = event.node;
  return fields;
}

// ---- properties -------------------------------------------------------------------------------------

template <typename T>
bool same(const Decoded<T>& a, const Decoded<T>& b) {
  if (a.ok() != b.ok()) return false;
  return a.ok() ? *a == *b : a.error() == b.error();
}

template <typename T>
void check_refusal(const Decoded<T>& decoded) {
  if (!decoded) FUZZ_CHECK(!decoded.error().describe().empty());
}

// `fields` plus one that no decoder reads.
Fields with_stranger(const Fields& fields) {
  Fields out = fields;
  out.emplace("~unknown", "1");
  return out;
}

void check_terminal_entry(StreamId id, const Fields& fields) {
  const Decoded<TerminalEntry> decoded = decode_terminal_entry(id, fields);
  check_refusal(decoded);
  FUZZ_CHECK(same(decoded, decode_terminal_entry(id, with_stranger(fields))));
  if (!decoded) return;
  if (const auto* output = std::get_if<OutputEntry>(&*decoded)) {
    FUZZ_CHECK(id.seq == 0);
    FUZZ_CHECK(output->start + output->data.size() == id.ms);
    FUZZ_CHECK(output->start <= id.ms);
    FUZZ_CHECK(output->data == fields.find("d")->second);
  } else if (const auto* resize = std::get_if<ResizeEntry>(&*decoded)) {
    FUZZ_CHECK(resize->cols >= 1 && resize->cols <= 1000 && resize->rows >= 1 && resize->rows <= 1000);
  } else if (const auto* exit = std::get_if<ExitEntry>(&*decoded)) {
    FUZZ_CHECK(!(exit->code && !exit->signal.empty()));
    for (const std::string& trailer : exit->trailers) FUZZ_CHECK(json::parse(trailer, nullptr, false).is_object());
  } else if (const auto* event = std::get_if<EventEntry>(&*decoded)) {
    FUZZ_CHECK(json::parse(event->payload, nullptr, false).is_object());
  }
  const Decoded<TerminalEntry> again = decode_terminal_entry(id, encode(*decoded));
  FUZZ_CHECK(again.ok() && *again == *decoded);
}

void check_node_request(const Fields& fields) {
  const Decoded<NodeRequest> decoded = decode_node_request(fields);
  check_refusal(decoded);
  FUZZ_CHECK(same(decoded, decode_node_request(with_stranger(fields))));
  const Decoded<CreateReplyAddress> address = decode_create_reply_address(fields);
  check_refusal(address);
  if (address) FUZZ_CHECK(!address->meant_for.empty() && !address->node.empty() && !address->boot.empty());
  if (!decoded) return;
  FUZZ_CHECK(!decoded->boot.empty());
  const NodeRequestBody& body = decoded->body;
  std::visit(
      [](const auto& r) {
        if constexpr (requires { r.terminal; }) {
          if constexpr (!std::is_same_v<std::decay_t<decltype(r)>, CreateReply>) FUZZ_CHECK(!r.terminal.empty());
        }
      },
      body);
  if (const auto* resize = std::get_if<ResizeRequest>(&body)) {
    FUZZ_CHECK(resize->cols >= 1 && resize->cols <= 1000 && resize->rows >= 1 && resize->rows <= 1000);
  } else if (const auto* kill = std::get_if<KillRequest>(&body)) {
    FUZZ_CHECK(kill->signal >= 1 && kill->signal <= 64);
  } else if (const auto* share = std::get_if<ShareRequest>(&body)) {
    FUZZ_CHECK(!share->user.empty());
  } else if (const auto* cancel = std::get_if<CancelRequest>(&body)) {
    FUZZ_CHECK(!cancel->operation.empty());
  } else if (const auto* progress = std::get_if<ProgressRequest>(&body)) {
    FUZZ_CHECK(!progress->node.empty());
  } else if (const auto* hold = std::get_if<HoldRequest>(&body)) {
    FUZZ_CHECK(!hold->node.empty());
  } else if (const auto* create = std::get_if<CreateRequest>(&body)) {
    FUZZ_CHECK(create->cols >= 1 && create->cols <= 1000 && create->rows >= 1 && create->rows <= 1000);
    FUZZ_CHECK(!create->user.empty() && !create->from.empty() && !create->from_boot.empty());
    // A decodable create request is answerable.
    FUZZ_CHECK(address.ok() && address->node == create->from && address->boot == create->from_boot &&
               address->seq == create->seq && address->meant_for == decoded->boot);
  } else if (const auto* reply = std::get_if<CreateReply>(&body)) {
    FUZZ_CHECK(!reply->terminal.empty() || !reply->code.empty());
  }
  const Decoded<NodeRequest> again = decode_node_request(encode(*decoded));
  FUZZ_CHECK(again.ok() && *again == *decoded);
}

void check_directory(const Fields& fields) {
  const Decoded<DirectoryEntry> entry = decode_directory_entry(fields);
  check_refusal(entry);
  FUZZ_CHECK(same(entry, decode_directory_entry(with_stranger(fields))));
  if (entry) {
    FUZZ_CHECK(!entry->node.empty() && !entry->boot.empty());
    FUZZ_CHECK(entry->cols >= 1 && entry->cols <= 1000 && entry->rows >= 1 && entry->rows <= 1000);
    FUZZ_CHECK(entry->created_at_ms >= 0);
    const Decoded<DirectoryEntry> again = decode_directory_entry(encode(*entry));
    FUZZ_CHECK(again.ok() && *again == *entry);
  }
  const Decoded<DirectoryEvent> event = decode_directory_event(fields);
  check_refusal(event);
  FUZZ_CHECK(same(event, decode_directory_event(with_stranger(fields))));
  if (event) {
    FUZZ_CHECK(!event->event.empty() && !event->terminal.empty());
    const Decoded<DirectoryEvent> again = decode_directory_event(encode(*event));
    FUZZ_CHECK(again.ok() && *again == *event);
  }
}

// Every decoder of a field list; `id` is the entry's, when it has one.
void check_fields(const Fields& fields, std::optional<StreamId> id) {
  check_node_request(fields);
  check_directory(fields);
  if (id) check_terminal_entry(*id, fields);
  // The id an output entry of these fields would need, so that the rest of it is reached too.
  auto start = fields.find("s");
  auto data = fields.find("d");
  if (start != fields.end() && data != fields.end()) {
    const Decoded<StreamId> parsed = parse_stream_id(start->second + "-0");
    if (parsed && parsed->ms <= UINT64_MAX - data->second.size()) {
      check_terminal_entry(StreamId{parsed->ms + data->second.size(), 0}, fields);
    }
  }
}

void check_entry(const StreamEntry& entry) {
  FUZZ_CHECK(entry.ok() == (entry.id.has_value() && !entry.error.has_value()));
  if (entry.error) {
    FUZZ_CHECK(!entry.error->describe().empty());
    FUZZ_CHECK(entry.fields.empty());
    return;
  }
  const Decoded<StreamId> again = parse_stream_id(to_string(*entry.id));
  FUZZ_CHECK(again.ok() && *again == *entry.id);
  check_fields(entry.fields, entry.id);
}

void check_tree(const RedisValue& tree) {
  const Decoded<std::vector<StreamBatch>> read = decode_read_reply(tree);
  check_refusal(read);
  if (read) {
    FUZZ_CHECK(tree.is_nil() || read->size() == tree.elements.size());
    for (const StreamBatch& batch : *read) {
      for (const StreamEntry& entry : batch.entries) check_entry(entry);
    }
  }
  const Decoded<std::vector<StreamEntry>> range = decode_range_reply(tree);
  check_refusal(range);
  if (range) {
    FUZZ_CHECK(range->size() == tree.elements.size());
    for (const StreamEntry& entry : *range) check_entry(entry);
  }
  check_entry(decode_stream_entry(tree));
  const Decoded<Fields> fields = decode_fields(tree);
  check_refusal(fields);
  if (fields) {
    // Every pair is there, each field once.
    FUZZ_CHECK(fields->size() * 2 == tree.elements.size());
    for (size_t i = 0; i + 1 < tree.elements.size(); i += 2) {
      auto it = fields->find(tree.elements[i].text);
      FUZZ_CHECK(it != fields->end() && it->second == tree.elements[i + 1].text);
    }
    check_fields(*fields, std::nullopt);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  TreeReader reader(std::string_view(reinterpret_cast<const char*>(bytes), size));
  const std::optional<RedisValue> tree = reader.node(0);
  if (!tree) return 0;
  bool threw = false;
  try {
    check_tree(*tree);
  } catch (...) {
    threw = true;
  }
  FUZZ_CHECK(!threw);  // no decoder throws
  return 0;
}
