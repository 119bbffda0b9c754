// Levelled logging to stderr, journald-aware.
#include "core/log.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/time_format.hpp"

namespace ptyhub::log {
namespace {
Level g_level = Level::info;
bool g_journal = false;

const char* level_name(Level level) {
  switch (level) {
    case Level::error: return "error";
    case Level::warn: return "warn";
    case Level::info: return "info";
    case Level::debug: return "debug";
  }
  return "info";
}

// syslog priorities: 3 err, 4 warning, 6 info, 7 debug.
int journal_priority(Level level) {
  switch (level) {
    case Level::error: return 3;
    case Level::warn: return 4;
    case Level::info: return 6;
    case Level::debug: return 7;
  }
  return 6;
}
}  // namespace

void set_level(Level level) { g_level = level; }
Level level() { return g_level; }

bool parse_level(std::string_view text, Level* out) {
  if (text == "error") *out = Level::error;
  else if (text == "warn") *out = Level::warn;
  else if (text == "info") *out = Level::info;
  else if (text == "debug") *out = Level::debug;
  else return false;
  return true;
}

void init_from_environment() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  g_journal = stream != nullptr && *stream != '\0';
}

void write(Level lvl, std::string_view message) {
  if (static_cast<int>(lvl) > static_cast<int>(g_level)) return;
  std::string line;
  line.reserve(message.size() + 48);
  if (g_journal) {
    line.push_back('<');
    line.append(std::to_string(journal_priority(lvl)));
    line.push_back('>');
  } else {
    line.append(iso8601_utc_now());
    line.push_back(' ');
    line.append(level_name(lvl));
    line.push_back(' ');
  }
  line.append(message);
  line.push_back('\n');
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

std::string quoted(std::string_view value) {
  std::string out = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? '?' : c);
  }
  return out + "\"";
}

}  // namespace ptyhub::log
