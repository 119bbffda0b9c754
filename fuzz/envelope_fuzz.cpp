// Fuzzes the request envelope (parse_request) and the typed field reader every request uses
// (DataReader), then builds the replies the daemon would send. Properties: nothing throws or crashes; a
// parsed request has an object `data` and a null, string or integer id; every error names a code and, for
// a field, a path under "data."; every outbound frame is JSON that parses back.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz/fuzz_check.hpp"
#include "src/protocol/envelope.hpp"
#include "src/protocol/fields.hpp"

namespace {

using ptyhub::protocol::DataReader;
using ptyhub::protocol::json;

// A frame's payload must be one JSON text.
void check_frame(const ptyhub::protocol::SharedFrame& frame) {
  FUZZ_CHECK(frame != nullptr);
  FUZZ_CHECK(!json::parse(frame->payload(), nullptr, false).is_discarded());
}

// A failed read names a bad_message error on a field of `data`.
void check_reader(const DataReader& reader) {
  if (reader.ok()) return;
  FUZZ_CHECK(reader.error().code == ptyhub::protocol::code::kBadMessage);
  FUZZ_CHECK(reader.error().field.starts_with("data."));
  check_frame(ptyhub::protocol::error_frame(nullptr, reader.error()));
}

// Reads `key` with every reader, each on a fresh DataReader (a reader stops at its first failure).
void read_every_way(const json& data, const std::string& key) {
  { DataReader r(data); (void)r.string(key, true, true); check_reader(r); }
  { DataReader r(data); (void)r.integer(key, true, 0, 65535); check_reader(r); }
  { DataReader r(data); (void)r.integer(key, false, INT64_MIN, INT64_MAX); check_reader(r); }
  { DataReader r(data); (void)r.boolean(key, true); check_reader(r); }
  { DataReader r(data); (void)r.string_array(key, true); check_reader(r); }
  { DataReader r(data); (void)r.string_map(key, true); check_reader(r); }
  { DataReader r(data); (void)r.one_of(key, true, {"utf8", "base64", "read", "write"}); check_reader(r); }
}

}  // namespace

// One inbound text message.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(bytes), size);
  const ptyhub::protocol::ParsedRequest parsed = ptyhub::protocol::parse_request(text);
  if (!parsed.ok) {
    FUZZ_CHECK(!parsed.error.code.empty());
    FUZZ_CHECK(parsed.error.field.empty() || parsed.error.field == "type" || parsed.error.field == "id" ||
               parsed.error.field.starts_with("data"));
    check_frame(ptyhub::protocol::error_frame(parsed.id, parsed.error));
    return 0;
  }
  const ptyhub::protocol::Request& request = parsed.request;
  FUZZ_CHECK(!request.type.empty());
  FUZZ_CHECK(request.data.is_object());
  FUZZ_CHECK(request.id.is_null() || request.id.is_string() || request.id.is_number_integer());
  check_frame(ptyhub::protocol::reply_frame(request.type, request.id, request.data));
  check_frame(ptyhub::protocol::ack_frame(request.id));
  check_frame(ptyhub::protocol::event_frame(request.type, "term:fuzz", request.data));
  for (const auto& [key, value] : request.data.items()) read_every_way(request.data, key);
  read_every_way(request.data, "absent");
  return 0;
}
