// Levelled logging to stderr (text or JSON lines), journald-aware.
#include "core/log.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/time_format.hpp"

namespace ptyhub::log {
namespace {
constexpr const char* kJournalSocket = "/run/systemd/journal/socket";
constexpr int kJournalSendBuffer = 8 * 1024 * 1024;  // as sd-journal asks for: room for large entries

Level g_level = Level::info;
Format g_format = Format::text;
bool g_journal = false;            // stderr is the journal
std::string g_journal_socket;      // where json-format entries go when not empty
int g_journal_fd = -1;

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

std::string priority_prefix(Level level) { return "<" + std::to_string(journal_priority(level)) + ">"; }

// True when JOURNAL_STREAM ("DEVICE:INODE") names the file stderr is.
bool stderr_is_journal(const char* stream) {
  if (stream == nullptr) return false;
  const std::string_view text(stream);
  const size_t colon = text.find(':');
  if (colon == std::string_view::npos) return false;
  unsigned long long device = 0, inode = 0;
  const auto [d_end, d_ec] = std::from_chars(text.data(), text.data() + colon, device);
  const auto [i_end, i_ec] = std::from_chars(text.data() + colon + 1, text.data() + text.size(), inode);
  if (d_ec != std::errc() || d_end != text.data() + colon || i_ec != std::errc() || i_end != text.data() + text.size()) {
    return false;
  }
  struct stat st {};
  if (fstat(STDERR_FILENO, &st) != 0) return false;
  return static_cast<unsigned long long>(st.st_dev) == device && static_cast<unsigned long long>(st.st_ino) == inode;
}

// Length of the valid UTF-8 sequence at text[i], or 0 when the byte there does not start one.
size_t utf8_sequence(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return 1;
  size_t length = 0;
  unsigned char low = 0x80, high = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    length = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    length = 3;
    if (c == 0xE0) low = 0xA0;   // no overlong forms
    if (c == 0xED) high = 0x9F;  // no surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    length = 4;
    if (c == 0xF0) low = 0x90;   // no overlong forms
    if (c == 0xF4) high = 0x8F;  // nothing above U+10FFFF
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  if (byte(i + 1) < low || byte(i + 1) > high) return 0;
  for (size_t k = 2; k < length; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return length;
}

// The journal field name of a line's key: PTYHUB_ and the key upper-cased, anything but [A-Z0-9_] as '_'.
std::string journal_key(std::string_view key) {
  std::string name = "PTYHUB_";
  for (char c : key) {
    if (c >= 'a' && c <= 'z') name.push_back(static_cast<char>(c - 'a' + 'A'));
    else if ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) name.push_back(c);
    else name.push_back('_');
  }
  return name.substr(0, 64);  // the journal's limit on a field name
}

void append_journal_field(std::string& entry, std::string_view name, std::string_view value) {
  entry.append(name);
  if (value.find('\n') == std::string_view::npos) {
    entry.push_back('=');
    entry.append(value);
  } else {
    entry.push_back('\n');
    uint64_t size = value.size();
    for (int k = 0; k < 8; ++k) {
      entry.push_back(static_cast<char>(size & 0xff));
      size >>= 8;
    }
    entry.append(value);
  }
  entry.push_back('\n');
}

// Sends one entry to the journal socket. False when it did not go (no socket, refused, too large).
bool send_to_journal(const std::string& entry) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (g_journal_socket.size() >= sizeof address.sun_path) return false;
  std::memcpy(address.sun_path, g_journal_socket.data(), g_journal_socket.size());
  if (g_journal_fd < 0) {
    g_journal_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (g_journal_fd < 0) return false;
    int size = kJournalSendBuffer;
    setsockopt(g_journal_fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);  // best effort
  }
  ssize_t sent;
  do {
    sent = sendto(g_journal_fd, entry.data(), entry.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&address),
                  sizeof address);
  } while (sent < 0 && errno == EINTR);
  return sent == static_cast<ssize_t>(entry.size());
}

void write_stderr(const std::string& line) {
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
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

void set_format(Format format) { g_format = format; }
Format format() { return g_format; }

bool parse_format(std::string_view text, Format* out) {
  if (text == "text") *out = Format::text;
  else if (text == "json") *out = Format::json;
  else return false;
  return true;
}

void init_from_environment() {
  g_journal = stderr_is_journal(std::getenv("JOURNAL_STREAM"));
  set_journal_socket(g_journal ? kJournalSocket : "");
}

void set_journal_socket(std::string path) {
  if (g_journal_fd >= 0) close(g_journal_fd);
  g_journal_fd = -1;
  g_journal_socket = std::move(path);
}

std::string quoted(std::string_view value) {
  std::string out = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? '?' : c);
  }
  return out + "\"";
}

std::string json_string(std::string_view value) {
  std::string out;
  out.reserve(value.size() + 2);
  out.push_back('"');
  for (size_t i = 0; i < value.size();) {
    const auto c = static_cast<unsigned char>(value[i]);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
      ++i;
    } else if (c < 0x20 || c == 0x7f) {
      char escape[8];
      std::snprintf(escape, sizeof escape, "\\u%04x", c);
      out.append(escape);
      ++i;
    } else if (const size_t length = utf8_sequence(value, i); length > 0) {
      out.append(value.substr(i, length));
      i += length;
    } else {
      out.append("\xEF\xBF\xBD");  // U+FFFD REPLACEMENT CHARACTER
      ++i;
    }
  }
  out.push_back('"');
  return out;
}

std::string text_body(std::string_view message, std::span<const Field> fields) {
  std::string body(message);
  for (const Field& field : fields) {
    body.push_back(' ');
    body.append(field.key);
    body.push_back('=');
    body.append(field.word ? std::string(field.value) : quoted(field.value));
  }
  return body;
}

std::string json_line(std::string_view time, Level level, std::string_view message, std::span<const Field> fields) {
  std::string line = "{\"time\":" + json_string(time) + ",\"level\":\"" + level_name(level) +
                     "\",\"message\":" + json_string(message);
  for (const Field& field : fields) {
    line.push_back(',');
    line.append(json_string(field.key));
    line.push_back(':');
    line.append(json_string(field.value));
  }
  line.push_back('}');
  return line;
}

std::string journal_entry(Level level, std::string_view message, std::span<const Field> fields) {
  std::string entry;
  append_journal_field(entry, "MESSAGE", text_body(message, fields));
  append_journal_field(entry, "PRIORITY", std::to_string(journal_priority(level)));
  append_journal_field(entry, "SYSLOG_IDENTIFIER", "ptyhubd");
  for (const Field& field : fields) append_journal_field(entry, journal_key(field.key), field.value);
  return entry;
}

void write(Level lvl, std::string_view message, std::span<const Field> fields) {
  if (static_cast<int>(lvl) > static_cast<int>(g_level)) return;
  if (g_format == Format::json) {
    if (!g_journal_socket.empty() && send_to_journal(journal_entry(lvl, message, fields))) return;
    const std::string prefix = g_journal ? priority_prefix(lvl) : "";
    write_stderr(prefix + json_line(iso8601_utc_now(), lvl, message, fields) + "\n");
    return;
  }
  std::string line;
  if (g_journal) {
    line = priority_prefix(lvl);
  } else {
    line = iso8601_utc_now() + " " + level_name(lvl) + " ";
  }
  line.append(text_body(message, fields));
  line.push_back('\n');
  write_stderr(line);
}

}  // namespace ptyhub::log
