// Standard base64 (RFC 4648 §4, with '=' padding) decoding for `shell.input {encoding: "base64"}`.
// Strict: only the canonical encoding of some bytes is accepted (length a multiple of 4, padding only at
// the end, unused bits zero), so one text means exactly one byte string. Pure.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace ptyhub::protocol {

// nullopt when `text` is not canonical base64.
std::optional<std::string> base64_decode(std::string_view text);
// Standard base64 with padding (a shell.snapshot's data with encoding "base64").
std::string base64_encode(std::string_view bytes);

}  // namespace ptyhub::protocol
