// Decoding what cluster mode reads back from Redis (docs/cluster.md, "What the nodes keep in Redis"):
// the replies of XREAD and XRANGE as stream entries, a terminal's output and control entries, the requests
// of a node's input stream (shell.create requests and replies among them), the events stream and the
// directory hash of a terminal.
//
// Whatever is in Redis is untrusted: any node, or anyone who can write to Redis, may have put anything
// there. Each decoder either returns the whole entry, typed and checked (numbers in their ranges, JSON of
// the expected shape), or an EntryError saying what is wrong; it never throws and never returns half an
// entry. Names and forms of the fields are those the cluster writes (src/cluster/cluster.cpp); a kind of
// entry or request it does not know (a newer node's) decodes as `Unknown…`, which the reader ignores, while
// an unknown field is ignored. Pure: no I/O, no loop, no hub.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "src/cluster/redis_value.hpp"

namespace ptyhub::cluster {

// What is wrong with an entry; `field` names the field (or part of the reply) concerned.
struct EntryError {
  enum class Code {
    not_array,        // a reply, stream or entry that is not an array of the expected size
    not_string,       // an element that is not a bulk string
    odd_fields,       // a field without its value
    duplicate_field,  // a field given twice
    bad_id,           // a stream entry id that is not <ms>-<seq>
    missing_field,
    empty_field,      // a field that must not be empty
    not_a_number,     // not a decimal number (no sign, no space, nothing after it)
    out_of_range,     // a number outside its range
    bad_value,        // not one of the values the field may take
    bad_json,         // not JSON, or JSON of the wrong shape
    inconsistent,     // fields that contradict each other or the entry's id
  };
  Code code = Code::not_array;
  std::string field;

  // "missing field \"c\"", "reply: not an array".
  std::string describe() const;
  bool operator==(const EntryError&) const = default;
};

// Either a decoded T or the reason it could not be decoded.
template <typename T>
class Decoded {
 public:
  Decoded(T value) : value_(std::move(value)) {}  // NOLINT: implicit, as a return value
  Decoded(EntryError error) : error_(std::move(error)) {}  // NOLINT
  explicit operator bool() const { return value_.has_value(); }
  bool ok() const { return value_.has_value(); }
  const T& operator*() const& { return *value_; }
  T& operator*() & { return *value_; }
  T&& operator*() && { return std::move(*value_); }
  const T* operator->() const { return &*value_; }
  T* operator->() { return &*value_; }
  // Only meaningful when !ok().
  const EntryError& error() const { return error_; }

 private:
  std::optional<T> value_;
  EntryError error_;
};

// The fields of a stream entry or of a hash, by name.
using Fields = std::map<std::string, std::string, std::less<>>;

// A stream entry id, <ms>-<seq>. In a terminal's stream `ms` is a byte offset (docs/cluster.md).
struct StreamId {
  uint64_t ms = 0;
  uint64_t seq = 0;
  auto operator<=>(const StreamId&) const = default;
};
Decoded<StreamId> parse_stream_id(std::string_view text);
std::string to_string(StreamId id);  // "<ms>-<seq>", as Redis writes it

// One entry of a stream as read. A malformed one has `error` set and is to be skipped; its `id` is kept
// when it was readable, so that a reader moves past it.
struct StreamEntry {
  std::optional<StreamId> id;
  Fields fields;
  std::optional<EntryError> error;
  bool ok() const { return id.has_value() && !error.has_value(); }
};
// The entries of one stream of an XREAD reply.
struct StreamBatch {
  std::string key;
  std::vector<StreamEntry> entries;
};

// [id, [field, value, ...]]; the fields must be bulk strings, in pairs, each named once.
StreamEntry decode_stream_entry(const RedisValue& entry);
// XREAD / XREADGROUP: [[key, [entry, ...]], ...], or nil when nothing came before the timeout.
Decoded<std::vector<StreamBatch>> decode_read_reply(const RedisValue& reply);
// XRANGE / XREVRANGE: [entry, ...].
Decoded<std::vector<StreamEntry>> decode_range_reply(const RedisValue& reply);
// A flat [field, value, ...] array (HGETALL, or the fields of a stream entry).
Decoded<Fields> decode_fields(const RedisValue& list);

// ---- a terminal's stream (ptyhub:term:{ID}:out) ----------------------------------------------------

// Raw output covering [start, start + data.size()); its entry id is <start + data.size()>-0.
struct OutputEntry {
  uint64_t start = 0;
  std::string data;
  bool operator==(const OutputEntry&) const = default;
};
// t=r: the terminal was resized (1..1000 each).
struct ResizeEntry {
  uint16_t cols = 0;
  uint16_t rows = 0;
  bool operator==(const ResizeEntry&) const = default;
};
// t=x: the terminal ended. Neither code nor signal when another node wrote it (node_lost).
struct ExitEntry {
  std::optional<int> code;
  std::string signal;  // its name, when a signal ended it
  uint64_t duration_ms = 0;
  std::string reason;                 // why the daemon ended it, if it did
  std::vector<std::string> trailers;  // events sent after shell.exit (JSON payloads)
  bool operator==(const ExitEntry&) const = default;
};
// t=e: an event on the terminal's channel (a JSON payload).
struct EventEntry {
  std::string payload;
  bool operator==(const EventEntry&) const = default;
};
// A control entry of a type this version does not know.
struct UnknownEntry {
  std::string type;
  bool operator==(const UnknownEntry&) const = default;
};
using TerminalEntry = std::variant<OutputEntry, ResizeEntry, ExitEntry, EventEntry, UnknownEntry>;
// `id` is the entry's id: an output entry must end where its id says.
Decoded<TerminalEntry> decode_terminal_entry(StreamId id, const Fields& fields);

// ---- the events stream (ptyhub:events) ------------------------------------------------------------

struct DirectoryEvent {
  std::string event;     // created, changed, removed (others read as changed)
  std::string terminal;  // never empty
  std::string node;
  bool operator==(const DirectoryEvent&) const = default;
};
Decoded<DirectoryEvent> decode_directory_event(const Fields& fields);

// ---- a terminal's directory entry (the hash ptyhub:term:{ID}) --------------------------------------

enum class ShareAccess { none, read, write };
struct DirectoryEntry {
  std::string node;  // never empty
  std::string boot;  // never empty
  std::string owner;  // empty: nothing to mirror yet
  std::string kind;
  std::string name;
  std::vector<std::string> command;
  std::string cwd;
  std::string operation;
  uint16_t cols = 80;
  uint16_t rows = 24;
  int64_t created_at_ms = 0;
  std::map<std::string, ShareAccess, std::less<>> shares;
  std::string state;
  bool operator==(const DirectoryEntry&) const = default;
};
Decoded<DirectoryEntry> decode_directory_entry(const Fields& fields);

// ---- a node's input stream (ptyhub:node:{N}:in) ----------------------------------------------------

// k=i: bytes for the terminal's input.
struct InputRequest {
  std::string terminal;
  std::string bytes;
  bool operator==(const InputRequest&) const = default;
};
// k=r
struct ResizeRequest {
  std::string terminal;
  uint16_t cols = 0;
  uint16_t rows = 0;
  bool operator==(const ResizeRequest&) const = default;
};
// k=k: a signal number, 1..64.
struct KillRequest {
  std::string terminal;
  int signal = 0;
  bool operator==(const KillRequest&) const = default;
};
// k=s
struct ShareRequest {
  std::string terminal;
  std::string user;  // never empty
  ShareAccess access = ShareAccess::none;
  bool operator==(const ShareRequest&) const = default;
};
// k=g: cancel the terminal's git operation.
struct CancelRequest {
  std::string terminal;
  std::string operation;  // never empty
  bool operator==(const CancelRequest&) const = default;
};
// k=d: shell.dismiss of the terminal (exited) on another node: it is removed everywhere.
struct DismissRequest {
  std::string terminal;
  bool operator==(const DismissRequest&) const = default;
};
// k=a: how far `node` has read (flow control); no offset: it has no holders any more.
struct ProgressRequest {
  std::string terminal;
  std::string node;  // never empty
  std::optional<uint64_t> offset;
  bool operator==(const ProgressRequest&) const = default;
};
// k=h
struct HoldRequest {
  std::string terminal;
  std::string node;  // never empty
  bool held = false;
  bool urgent = false;
  bool operator==(const HoldRequest&) const = default;
};
// k=c: shell.create {node} from node `from` (incarnation `from_boot`), answered there with number `seq`.
struct CreateRequest {
  std::string from;       // never empty
  std::string from_boot;  // never empty
  uint64_t seq = 0;
  std::string user;  // never empty
  // The options (the JSON object `o`): members absent take these values.
  std::vector<std::string> command;
  std::string cwd;
  std::map<std::string, std::string> env;
  uint16_t cols = 80;
  uint16_t rows = 24;
  std::string name;
  bool operator==(const CreateRequest&) const = default;
};
// k=C: the answer to this node's create request `seq`: the terminal, or an error.
struct CreateReply {
  uint64_t seq = 0;
  std::string terminal;  // empty when it failed
  std::string code;      // the error code when it failed (never empty then)
  std::string message;
  std::string field;
  bool operator==(const CreateReply&) const = default;
};
// A request of a kind this version does not know.
struct UnknownRequest {
  std::string kind;
  bool operator==(const UnknownRequest&) const = default;
};
using NodeRequestBody = std::variant<InputRequest, ResizeRequest, KillRequest, ShareRequest, CancelRequest,
                                     DismissRequest, ProgressRequest, HoldRequest, CreateRequest, CreateReply,
                                     UnknownRequest>;
struct NodeRequest {
  std::string boot;  // the incarnation it is meant for (never empty)
  NodeRequestBody body;
  bool operator==(const NodeRequest&) const = default;
};
Decoded<NodeRequest> decode_node_request(const Fields& fields);

// Where to answer a create request, read alone (`b`, `from`, `fb`, `q` of a k=c entry): a request whose
// options are malformed is still answered (bad_message) when this much of it is readable.
struct CreateReplyAddress {
  std::string meant_for;  // `b`: the incarnation asked
  std::string node;       // `from`: the asking node
  std::string boot;       // `fb`: its incarnation
  uint64_t seq = 0;       // `q`
  bool operator==(const CreateReplyAddress&) const = default;
};
Decoded<CreateReplyAddress> decode_create_reply_address(const Fields& fields);

}  // namespace ptyhub::cluster
