// Levelled logging to stderr. With JOURNAL_STREAM set (stderr connected to journald) each line
// carries a syslog priority prefix "<N>" instead of a timestamp. Loop thread only; no locking.
#pragma once

#include <string>
#include <string_view>

namespace ptyhub::log {

enum class Level { error = 0, warn = 1, info = 2, debug = 3 };

void set_level(Level level);
Level level();
bool parse_level(std::string_view text, Level* out);
// Decides between journald prefixes and timestamps; called once at start.
void init_from_environment();
void write(Level level, std::string_view message);

// A client-supplied value for a log line: in double quotes, with '"' and '\\' escaped and control
// characters shown as '?', so that no value can end the line or forge a field.
std::string quoted(std::string_view value);

inline void error(std::string_view m) { write(Level::error, m); }
inline void warn(std::string_view m) { write(Level::warn, m); }
inline void info(std::string_view m) { write(Level::info, m); }
inline void debug(std::string_view m) { write(Level::debug, m); }

}  // namespace ptyhub::log
