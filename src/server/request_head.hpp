// The head of an HTTP request as it arrives on a new connection, before libwebsockets sees it.
//
// libwebsockets 4.1.6 refuses a Sec-WebSocket-Protocol header longer than 126 bytes, so a browser's
// `ptyhub.v1, bearer.<jwt>` never reaches the protocol. The daemon therefore reads each request head
// itself and moves a `bearer.<jwt>` entry into an `Authorization: Bearer` header (unless the request
// already has one, which wins: docs/protocol.md §2 Authentication), leaving `ptyhub.v1` in the
// subprotocol list.
//
// The head is also checked before libwebsockets parses it, because its parser (4.1.6) answers nothing at
// all to some heads and the client waits for a timeout: a head over about 12 KB, or one whose last header
// is a prefix of a header name lws knows (`X-A`, `X`). prepare_head() answers those at once (431, 400) and
// puts the Host header last, where no such prefix can be.
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

// The largest head handed to libwebsockets (after the rewrite), and the largest single header line.
constexpr size_t kMaxPreparedHead = 12 * 1024 - 256;
constexpr size_t kMaxHeaderLine = 8 * 1024;

// A complete head made ready for libwebsockets, or the answer to send instead (status != 0).
struct PreparedHead {
  std::string head;
  int status = 0;           // 400 or 431 when refused
  std::string_view reason;  // why, for the answer's body
};

// Checks the request line and every header line (`name: value` with a token name, no line folding, no
// line over kMaxHeaderLine, exactly one Host), moves the bearer subprotocol (above), puts Host last and
// checks the size against kMaxPreparedHead.
PreparedHead prepare_head(std::string_view head);

// The bytes of an HTTP/1.1 refusal with a JSON body {"error": code, "message": reason}; it closes.
std::string refusal_response(int status, std::string_view reason);

}  // namespace ptyhub::server
