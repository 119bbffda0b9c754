// The head of an HTTP request as it arrives on a new connection, before libwebsockets sees it.
//
// libwebsockets 4.1.6 refuses a Sec-WebSocket-Protocol header longer than 126 bytes, so a browser's
// `ptyhub.v1, bearer.<jwt>` never reaches the protocol. The daemon therefore reads each request head
// itself and moves a `bearer.<jwt>` entry into an `Authorization: Bearer` header (unless the request
// already has one, which wins: docs/protocol.md §2 Authentication), leaving `ptyhub.v1` in the
// subprotocol list.
// Pure functions; no I/O.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace ptyhub::server {

// Length of the head including its terminating blank line, or nullopt while it is incomplete.
std::optional<size_t> request_head_length(std::string_view bytes);

// The head with `bearer.*` entries removed from Sec-WebSocket-Protocol (the header is dropped when
// nothing is left) and, when there was one and no Authorization header, `Authorization: Bearer <jwt>`
// added. Any other head is returned unchanged.
std::string move_bearer_subprotocol(std::string_view head);

}  // namespace ptyhub::server
