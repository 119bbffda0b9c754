// Typed reads of request data with field-naming errors.
#include "src/protocol/fields.hpp"

namespace ptyhub::protocol {

void DataReader::fail(std::string_view key, std::string message) {
  if (failed_) return;
  failed_ = true;
  error_ = {code::kBadMessage, std::move(message), "data." + std::string(key)};
}

const json* DataReader::find(std::string_view key, bool required) {
  if (failed_) return nullptr;
  auto it = data_.find(key);
  if (it == data_.end() || it->is_null()) {
    if (required) fail(key, std::string(key) + " is required");
    return nullptr;
  }
  return &*it;
}

std::optional<std::string> DataReader::string(std::string_view key, bool required, bool non_empty) {
  const json* value = find(key, required);
  if (value == nullptr) return std::nullopt;
  if (!value->is_string()) {
    fail(key, std::string(key) + " must be a string");
    return std::nullopt;
  }
  if (non_empty && value->get_ref<const std::string&>().empty()) {
    fail(key, std::string(key) + " must not be empty");
    return std::nullopt;
  }
  return value->get<std::string>();
}

std::optional<int64_t> DataReader::integer(std::string_view key, bool required, int64_t min, int64_t max) {
  const json* value = find(key, required);
  if (value == nullptr) return std::nullopt;
  const std::string range = " must be an integer from " + std::to_string(min) + " to " + std::to_string(max);
  if (!value->is_number_integer()) {
    fail(key, std::string(key) + range);
    return std::nullopt;
  }
  // Unsigned values above INT64_MAX are out of every range we use.
  if (value->is_number_unsigned() && value->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
    fail(key, std::string(key) + range);
    return std::nullopt;
  }
  const int64_t n = value->get<int64_t>();
  if (n < min || n > max) {
    fail(key, std::string(key) + range);
    return std::nullopt;
  }
  return n;
}

std::optional<bool> DataReader::boolean(std::string_view key, bool required) {
  const json* value = find(key, required);
  if (value == nullptr) return std::nullopt;
  if (!value->is_boolean()) {
    fail(key, std::string(key) + " must be true or false");
    return std::nullopt;
  }
  return value->get<bool>();
}

std::optional<std::vector<std::string>> DataReader::string_array(std::string_view key, bool required) {
  const json* value = find(key, required);
  if (value == nullptr) return std::nullopt;
  if (!value->is_array() || value->empty()) {
    fail(key, std::string(key) + " must be a non-empty array of strings");
    return std::nullopt;
  }
  std::vector<std::string> out;
  out.reserve(value->size());
  for (size_t i = 0; i < value->size(); ++i) {
    const json& item = (*value)[i];
    if (!item.is_string()) {
      fail(std::string(key) + "." + std::to_string(i), std::string(key) + " items must be strings");
      return std::nullopt;
    }
    out.push_back(item.get<std::string>());
  }
  return out;
}

std::optional<std::map<std::string, std::string>> DataReader::string_map(std::string_view key, bool required) {
  const json* value = find(key, required);
  if (value == nullptr) return std::nullopt;
  if (!value->is_object()) {
    fail(key, std::string(key) + " must be an object of strings");
    return std::nullopt;
  }
  std::map<std::string, std::string> out;
  for (const auto& [name, item] : value->items()) {
    if (!item.is_string()) {
      fail(std::string(key) + "." + name, std::string(key) + " values must be strings");
      return std::nullopt;
    }
    out.emplace(name, item.get<std::string>());
  }
  return out;
}

std::optional<std::string> DataReader::one_of(std::string_view key, bool required,
                                              std::initializer_list<std::string_view> allowed) {
  auto value = string(key, required);
  if (!value) return std::nullopt;
  for (std::string_view candidate : allowed) {
    if (*value == candidate) return value;
  }
  std::string list;
  for (std::string_view candidate : allowed) {
    if (!list.empty()) list += ", ";
    list += candidate;
  }
  fail(key, std::string(key) + " must be one of " + list);
  return std::nullopt;
}

}  // namespace ptyhub::protocol
