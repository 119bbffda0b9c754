// The exit statuses of the ptyhub command-line client (docs/cli.md, "Exit status"), and how an error
// code of docs/protocol.md §3 maps onto them. Pure; no I/O.
//
// A terminal's own exit status (attach, new, run, git --follow) is passed through unchanged, or as 128 + N
// when signal N ended it, like a shell does; the client's own failures use 64..70 so a script can tell them
// apart from the usual 0..2 of commands.
#pragma once

#include <string_view>

namespace ptyhub::cli {

namespace exit_status {
inline constexpr int kOk = 0;
inline constexpr int kUsage = 64;           // bad command line or settings
inline constexpr int kCannotConnect = 65;   // the daemon could not be reached (URL, network, TLS, HTTP refusal)
inline constexpr int kUnauthenticated = 66; // no token, or the token was rejected or expired
inline constexpr int kForbidden = 67;       // the token may not do this
inline constexpr int kNotFound = 68;        // no such terminal / repository / node
inline constexpr int kRefused = 69;         // any other refusal by the daemon (bad_message, conflict, limits, unsupported)
inline constexpr int kConnectionLost = 70;  // the connection dropped and could not be resumed in time
}  // namespace exit_status

// The exit status for an `error` reply with `code`.
inline int exit_status_for_error(std::string_view code) {
  if (code == "unauthenticated") return exit_status::kUnauthenticated;
  if (code == "forbidden") return exit_status::kForbidden;
  if (code == "not_found") return exit_status::kNotFound;
  return exit_status::kRefused;
}

}  // namespace ptyhub::cli
