// DetachKeys: the key sequence that detaches an interactive client from its terminal (default Ctrl-\ then
// d), parsed from --detach-keys, and the matcher that finds it in what the user types. Pure; no I/O.
//
// Spelling (as docker's): keys separated by commas; each is one printable character or `ctrl-X` with X one of
// a–z, @, [, \, ], ^, _ (so "ctrl-\,d" is the default and "ctrl-p,ctrl-q" docker's). Bytes that begin the
// sequence are held back until the sequence is complete (detach) or broken (they are sent after all).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace ptyhub::cli {

inline constexpr std::string_view kDefaultDetachKeys = "ctrl-\\,d";

// The bytes of `spec`, or nullopt with `*why` set.
std::optional<std::string> parse_detach_keys(std::string_view spec, std::string* why);

class DetachMatcher {
 public:
  explicit DetachMatcher(std::string keys) : keys_(std::move(keys)) {}

  struct Result {
    std::string forward;    // bytes to send to the terminal, in order
    bool detached = false;  // the whole sequence was typed; bytes after it are dropped
  };

  // Feeds what was read from the keyboard.
  Result feed(std::string_view input);

 private:
  std::string keys_;
  size_t matched_ = 0;  // leading bytes of keys_ seen and held back
};

}  // namespace ptyhub::cli
