// base64url (RFC 4648 §5) without padding, as JWTs use it. Built on OpenSSL's base64 codec;
// decoding rejects invalid input.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace ptyhub::auth {

std::string base64url_encode(std::string_view bytes);
// nullopt on characters outside the base64url alphabet, '=' padding, or an impossible length.
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace ptyhub::auth
