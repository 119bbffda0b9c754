// DataReader: typed, validated access to a request's `data` object. The first failing check is kept
// as a bad_message RequestError whose `field` names the member ("data.cols", "data.command.2").
// Later reads after a failure return nullopt. Pure; never throws.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "src/protocol/envelope.hpp"

namespace ptyhub::protocol {

class DataReader {
 public:
  explicit DataReader(const json& data) : data_(data) {}

  std::optional<std::string> string(std::string_view key, bool required, bool non_empty = false);
  std::optional<int64_t> integer(std::string_view key, bool required, int64_t min, int64_t max);
  std::optional<bool> boolean(std::string_view key, bool required);
  // An array of strings with at least one element.
  std::optional<std::vector<std::string>> string_array(std::string_view key, bool required);
  // An object whose values are strings.
  std::optional<std::map<std::string, std::string>> string_map(std::string_view key, bool required);
  // One of `allowed`.
  std::optional<std::string> one_of(std::string_view key, bool required, std::initializer_list<std::string_view> allowed);

  bool ok() const { return !failed_; }
  const RequestError& error() const { return error_; }
  // Records a failure found by the caller (e.g. a value out of range for a reason only it knows).
  void fail(std::string_view key, std::string message);

 private:
  const json* find(std::string_view key, bool required);

  const json& data_;
  bool failed_ = false;
  RequestError error_;
};

}  // namespace ptyhub::protocol
