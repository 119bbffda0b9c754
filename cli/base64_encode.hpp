// Standard base64 (RFC 4648 §4, with '=' padding) encoding, for `shell.input {encoding: "base64"}`.
// Decoding is the protocol library's (src/protocol/base64.hpp). Pure.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ptyhub::cli {

std::string base64_encode(std::string_view bytes);

}  // namespace ptyhub::cli
