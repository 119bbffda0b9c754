// DetachKeys parsing and matching: see detach_keys.hpp.
#include "cli/detach_keys.hpp"

#include <cctype>

namespace ptyhub::cli {

namespace {

// One key of the list ("d", "ctrl-\") as its byte, or nullopt.
std::optional<char> parse_key(std::string_view key) {
  if (key.size() == 1 && std::isprint(static_cast<unsigned char>(key[0]))) return key[0];
  if (key.size() == 6 && (key.starts_with("ctrl-") || key.starts_with("Ctrl-") || key.starts_with("CTRL-"))) {
    const char c = static_cast<char>(std::tolower(static_cast<unsigned char>(key[5])));
    if (c >= 'a' && c <= 'z') return static_cast<char>(c - 'a' + 1);
    switch (c) {
      case '@': return '\0';
      case '[': return '\x1b';
      case '\\': return '\x1c';
      case ']': return '\x1d';
      case '^': return '\x1e';
      case '_': return '\x1f';
      default: break;
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> parse_detach_keys(std::string_view spec, std::string* why) {
  std::string keys;
  while (true) {
    size_t comma = spec.find(',');
    // A comma is itself a key when it is the whole item: "ctrl-a,," means ctrl-a then ','.
    if (comma == 0 && (spec.size() == 1 || spec[1] == ',')) comma = 1;
    std::string_view item = spec.substr(0, comma);
    std::optional<char> key = parse_key(item);
    if (!key) {
      if (why != nullptr) *why = "bad detach key '" + std::string(item) + "' (use e.g. ctrl-\\,d or ctrl-p,ctrl-q)";
      return std::nullopt;
    }
    keys.push_back(*key);
    if (comma == std::string_view::npos || comma >= spec.size()) break;
    spec.remove_prefix(comma + 1);
    if (spec.empty()) break;
  }
  return keys;
}

DetachMatcher::Result DetachMatcher::feed(std::string_view input) {
  Result result;
  if (keys_.empty()) {
    result.forward.assign(input);
    return result;
  }
  for (char c : input) {
    if (c != keys_[matched_] && matched_ > 0) {
      result.forward.append(keys_, 0, matched_);  // a broken sequence: its bytes were meant for the terminal
      matched_ = 0;
    }
    if (c == keys_[matched_]) {
      if (++matched_ == keys_.size()) {
        matched_ = 0;
        result.detached = true;
        return result;
      }
      continue;
    }
    result.forward.push_back(c);
  }
  return result;
}

}  // namespace ptyhub::cli
