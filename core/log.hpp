// Levelled logging to stderr, in one of two formats, journald-aware. Loop thread only; no locking.
//
// A line is a message plus fields: (key, value) pairs such as terminal, user, peer, request.
//   text: "2026-11-26T14:00:00.000Z info audit event=auth.ok user=\"alice\" peer=\"127.0.0.1:5000\""
//         (each field appended as ` key="value"`, quoted as by quoted() below).
//   json: {"time":"2026-11-26T14:00:00.000Z","level":"info","message":"audit","event":"auth.ok","user":"alice",...}
//         one object a line; invalid UTF-8 in a value becomes U+FFFD, so every line parses.
// Under journald (JOURNAL_STREAM names stderr's device:inode):
//   text: the text line without the timestamp, with a syslog priority prefix "<N>" (the journal reads it).
//   json: each line is sent as one journal entry over the journal's native protocol: MESSAGE (the text
//         line's message and fields), PRIORITY, SYSLOG_IDENTIFIER and each field as PTYHUB_<KEY>. When
//         the journal's socket refuses the entry, the JSON line goes to stderr with a "<N>" prefix.
#pragma once

#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

namespace ptyhub::log {

enum class Level { error = 0, warn = 1, info = 2, debug = 3 };
enum class Format { text, json };

// One field of a line. Keys are lower-case ASCII words (letters, digits, '_'), never time, level or message.
struct Field {
  std::string_view key;
  std::string_view value;
  bool word = false;  // a value chosen by the daemon (an event name): not quoted in text lines
};

void set_level(Level level);
Level level();
bool parse_level(std::string_view text, Level* out);

void set_format(Format format);
Format format();
bool parse_format(std::string_view text, Format* out);  // "text" or "json"

// Decides whether stderr is the journal (JOURNAL_STREAM); called once at start.
void init_from_environment();
// Sends json-format lines to the journal socket at `path` as if under journald; "" turns that off. For tests.
void set_journal_socket(std::string path);

void write(Level level, std::string_view message, std::span<const Field> fields);
inline void write(Level level, std::string_view message, std::initializer_list<Field> fields = {}) {
  write(level, message, std::span<const Field>(fields.begin(), fields.size()));
}

// A client-supplied value for a text line: in double quotes, with '"' and '\\' escaped and control
// characters shown as '?', so that no value can end the line or forge a field.
std::string quoted(std::string_view value);

// A JSON string literal (with its quotes): '"', '\\' and control characters escaped (\u00XX), and each
// byte that is not part of valid UTF-8 replaced with U+FFFD.
std::string json_string(std::string_view value);

// The pieces of a line, exposed for tests. `time` is an ISO 8601 timestamp.
std::string text_body(std::string_view message, std::span<const Field> fields);  // message + ` key="value"`...
std::string json_line(std::string_view time, Level level, std::string_view message, std::span<const Field> fields);
// One journal entry in the native protocol (KEY=value lines; a value holding '\n' in the binary form:
// KEY, '\n', its length as 64-bit little-endian, the value, '\n').
std::string journal_entry(Level level, std::string_view message, std::span<const Field> fields);

inline void error(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::error, m, f); }
inline void warn(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::warn, m, f); }
inline void info(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::info, m, f); }
inline void debug(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::debug, m, f); }

}  // namespace ptyhub::log
