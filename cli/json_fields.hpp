// Reading the daemon's messages without exceptions: typed access to members of a JSON object that returns
// an empty value when the member is missing or of another type (nlohmann's value() and at() throw, and
// operator[] on a const object asserts). Pure.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace ptyhub::cli {

using json = nlohmann::json;

// The member `key` of `object`; a null value when `object` is not an object or has no such member.
inline const json& field(const json& object, std::string_view key) {
  static const json kNull;
  if (!object.is_object()) return kNull;
  auto found = object.find(key);
  return found == object.end() ? kNull : *found;
}

// The string member `key`, or `fallback`.
inline std::string text(const json& object, std::string_view key, std::string_view fallback = {}) {
  const json& value = field(object, key);
  return value.is_string() ? value.get<std::string>() : std::string(fallback);
}

// The non-negative integer member `key`, or 0.
inline uint64_t count(const json& object, std::string_view key) {
  const json& value = field(object, key);
  return value.is_number_unsigned() ? value.get<uint64_t>() : 0;
}

// The integer member `key`, or `fallback`.
inline int64_t integer(const json& object, std::string_view key, int64_t fallback = 0) {
  const json& value = field(object, key);
  return value.is_number_integer() ? value.get<int64_t>() : fallback;
}

}  // namespace ptyhub::cli
