// Wall-clock helpers: ISO 8601 UTC with milliseconds ("2026-11-26T14:00:00.000Z"), as the protocol uses.
#pragma once

#include <cstdint>
#include <string>

namespace ptyhub {

int64_t unix_millis_now();
std::string iso8601_utc(int64_t unix_millis);
inline std::string iso8601_utc_now() { return iso8601_utc(unix_millis_now()); }

}  // namespace ptyhub
