// The message envelope of docs/protocol.md §3 Envelope: parsing requests, building replies, events and
// errors. Pure: no I/O. Untrusted input never throws.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

#include "src/protocol/frame.hpp"

namespace ptyhub::protocol {

using json = nlohmann::json;

// Error codes of §3.
namespace code {
inline constexpr const char* kBadJson = "bad_json";
inline constexpr const char* kBadMessage = "bad_message";
inline constexpr const char* kUnknownType = "unknown_type";
inline constexpr const char* kUnauthenticated = "unauthenticated";
inline constexpr const char* kForbidden = "forbidden";
inline constexpr const char* kNotFound = "not_found";
inline constexpr const char* kConflict = "conflict";
inline constexpr const char* kLimitExceeded = "limit_exceeded";
inline constexpr const char* kRateLimited = "rate_limited";
inline constexpr const char* kUnavailable = "unavailable";
inline constexpr const char* kInternal = "internal";
}  // namespace code

// Close codes of §3.
namespace close_code {
inline constexpr int kNormal = 1000;
inline constexpr int kGoingAway = 1001;
inline constexpr int kUnsupportedData = 1003;
inline constexpr int kPolicy = 1008;
inline constexpr int kTooLarge = 1009;
inline constexpr int kInternalError = 1011;
inline constexpr int kAuthFailed = 4401;
inline constexpr int kAuthTimeout = 4408;
inline constexpr int kTooManyConnections = 4429;
}  // namespace close_code

struct RequestError {
  std::string code;
  std::string message;
  std::string field;  // dotted path from the envelope root; empty when none applies
};

struct Request {
  std::string type;
  json id;    // null when the request had none; else a string or an integer
  json data;  // always an object ({} when omitted)
};

struct ParsedRequest {
  bool ok = false;
  Request request;     // when ok
  RequestError error;  // when !ok
  json id;             // the id, when one could be read, so the error can carry it
};

// Parses one inbound text message.
ParsedRequest parse_request(std::string_view text);

// Outbound frames. `id` null means "no id member".
SharedFrame reply_frame(std::string_view type, const json& id, json data);
SharedFrame ack_frame(const json& id);
SharedFrame error_frame(const json& id, const RequestError& error);
SharedFrame event_frame(std::string_view type, std::string_view channel, json data);

}  // namespace ptyhub::protocol
