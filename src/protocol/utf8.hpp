// UTF-8 framing of PTY output: where a chunk may end, and how invalid bytes are replaced.
// Pure functions, no state, no I/O.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ptyhub::protocol {

// Length of the longest prefix of `bytes` that does not end inside a UTF-8 sequence more bytes could
// still complete. Invalid bytes count as complete (they are replaced, not waited for). The rest (at most
// 3 bytes) is carried to the next read.
size_t utf8_complete_prefix(std::string_view bytes);

// At `pos`, a byte >= 0x80: the length of the valid sequence starting there, or 0 when there is none,
// with `*invalid_length` set to the bytes one U+FFFD replaces (the maximal invalid subpart, or the
// incomplete rest at the end).
size_t utf8_sequence_at(std::string_view bytes, size_t pos, size_t* invalid_length);

// True when `bytes` is entirely valid UTF-8.
bool utf8_valid(std::string_view bytes);

}  // namespace ptyhub::protocol
