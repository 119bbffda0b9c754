// The shell.output event, built straight from raw PTY bytes: the hot path of every terminal.
//
// Equivalent to event_frame("shell.output", channel, {terminalId, offset, next, data[, encoding]}) but
// written without a JSON tree: utf8 data is sanitised (each maximal invalid subpart becomes U+FFFD) and
// escaped in one pass; base64 is encoded in place. Pure; loop thread only (it reuses a scratch buffer).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "src/protocol/frame.hpp"

namespace ptyhub::protocol {

enum class OutputEncoding { utf8, base64 };

SharedFrame shell_output_frame(std::string_view channel, std::string_view terminal_id, uint64_t offset,
                               std::string_view raw, OutputEncoding encoding);

// Appends `raw` as a JSON string literal (quotes included): invalid UTF-8 becomes U+FFFD, control
// characters, '"' and '\' are escaped.
void append_json_string(std::string& out, std::string_view raw);

}  // namespace ptyhub::protocol
