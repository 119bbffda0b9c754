// The Origin check of docs/protocol.md §1 Endpoints against cross-site WebSocket hijacking. Pure.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ptyhub::server {

// True when an upgrade carrying `origin` may proceed: no Origin at all (a non-browser client), an Origin
// whose host[:port] equals the request's Host header, or one of `allowed` (compared without a trailing
// slash, scheme and host case-insensitively). "null" and malformed origins are refused. With `scheme`
// (known from a trusted proxy: "http" or "https"), a same-origin Origin must also have that scheme.
bool origin_allowed(std::string_view origin, std::string_view host, const std::vector<std::string>& allowed,
                    std::string_view scheme = {});

}  // namespace ptyhub::server
