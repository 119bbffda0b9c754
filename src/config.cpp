// Config loading. Owns the settings table (one row per setting: its name, kind, Config field, bounds and
// --help line), turns flags and the TOML file into a Config, fills the defaults and checks ranges.
// Runs once at start on the main thread (getpwuid is not reentrant). Nothing here throws: toml++'s
// parse_error is caught and becomes the error string.
#include "src/config.hpp"

#include <arpa/inet.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <limits>
#include <optional>
#include <string_view>
#include <toml++/toml.h>
#include <type_traits>
#include <utility>
#include <variant>

namespace ptyhub {
namespace {

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * 1024;
constexpr double kMaxSeconds = 1e9;  // about 31 years; keeps seconds-to-milliseconds conversions in range
constexpr double kNoMax = std::numeric_limits<double>::infinity();
constexpr const char* kDefaultListen = "127.0.0.1:7700";
constexpr const char* kFallbackShell = "/bin/sh";

enum class Kind { config, text, text_list, listen, level, format, duration, size, count, protocols, proxies, base_path, flag };

using Field = std::variant<std::monostate, std::string Config::*, std::vector<std::string> Config::*,
                           std::vector<ListenAddress> Config::*, log::Level Config::*, log::Format Config::*,
                           double Config::*, uint64_t Config::*, bool Config::*>;

// Allowed values of a duration, size or count.
struct Bounds {
  double min = 0;
  bool above_min = false;  // min itself is not allowed
  double max = kNoMax;
};

struct Setting {
  std::string_view name;  // TOML key; the flag is "--" + name with '_' -> '-'
  Kind kind;
  Field field;
  Bounds bounds;
  std::string_view value_name;  // --help placeholder
  std::string_view default_text;
  std::string_view meaning;
  Reload reload = Reload::unspecified;  // what SIGHUP does with it
  std::string_view reload_scope;        // for Reload::applied: what a new value applies to
};

constexpr Reload kRestart = Reload::restart;
constexpr Reload kApplied = Reload::applied;

// What a reloaded value applies to, for the settings of the same kind.
constexpr std::string_view kNewTerminals = "terminals created from then on";
constexpr std::string_view kTokens =
    "tokens presented from then on (auth and refresh); authenticated connections stay";
constexpr std::string_view kTerminalCreation = "shell.create from then on; running terminals stay";
constexpr std::string_view kGitStarts = "git.start from then on; running operations stay";

// Every setting of docs/configuration.md, in its order.
const Setting kSettings[] = {
    {"listen", Kind::listen, &Config::listen, {}, "ADDR", "127.0.0.1:7700",
     "HOST:PORT, [V6]:PORT or unix:/path (port 0 = any free port); repeatable", kRestart, {}},
    {"config", Kind::config, {}, {}, "FILE", "/etc/ptyhub/ptyhub.toml",
     "TOML file with these settings (the default one only when it exists)", Reload::reread, {}},
    {"log_level", Kind::level, &Config::log_level, {}, "LEVEL", "info", "error, warn, info or debug", kApplied,
     "at once"},
    {"log_format", Kind::format, &Config::log_format, {}, "FORMAT", "text",
     "text, or json: one JSON object a line (time, level, message and fields such as terminal, user, peer); under journald, json sends the fields as journal fields",
     kApplied, "at once"},
    {"pid_file", Kind::text, &Config::pid_file, {}, "FILE", "-",
     "write the daemon's PID here once it serves (again after a live upgrade; removed when it stops); "
     "`ptyhubd upgrade` reads it, and FILE.upgrade says how the last upgrade went",
     kRestart, {}},
    {"shell", Kind::text, &Config::shell, {}, "PATH", "login shell, else /bin/sh",
     "default command of shell.create", kApplied, kNewTerminals},
    {"home", Kind::text, &Config::home, {}, "DIR", "the user's home", "default cwd of shell.create", kApplied,
     kNewTerminals},
    {"jwt_secret_file", Kind::text, &Config::jwt_secret_file, {}, "FILE", "-",
     "HS256/384/512 secret (whole file, trailing newline ignored; at least 32 bytes; refused when others may read it or others than its owner may write it); under systemd, unset means the credential jwt-secret and a relative path names a credential",
     kApplied, kTokens},
    {"jwt_public_key", Kind::text_list, &Config::jwt_public_key, {}, "FILE", "-",
     "PEM public key (RSA, EC P-256, Ed25519; kid = file name without extension), a directory of *.pem, or a JWKS *.json; repeatable",
     kApplied, kTokens},
    {"jwt_issuer", Kind::text, &Config::jwt_issuer, {}, "ISS", "-", "required value of iss when set", kApplied,
     kTokens},
    {"jwt_audience", Kind::text, &Config::jwt_audience, {}, "AUD", "-", "required value of aud when set", kApplied,
     kTokens},
    {"jwt_leeway", Kind::duration, &Config::jwt_leeway, {}, "SECONDS", "30", "clock skew allowed on exp/nbf/iat",
     kApplied, "tokens presented from then on, and the expiry of the sessions they authenticate"},
    {"auth_timeout", Kind::duration, &Config::auth_timeout, {0, true}, "SECONDS", "10", "time to present a token",
     kRestart, {}},
    {"allowed_origin", Kind::text_list, &Config::allowed_origin, {}, "ORIGIN", "-",
     "extra allowed Origin besides same-origin; repeatable", kApplied,
     "WebSocket upgrades from then on; open connections stay"},
    {"frame_ancestors", Kind::text, &Config::frame_ancestors, {}, "SOURCES", "'self'",
     "who may embed the web page in a frame: the CSP frame-ancestors sources ('none', 'self', origins)",
     kApplied, "pages served from then on"},
    {"base_path", Kind::base_path, &Config::base_path, {}, "PATH", "- (the root)",
     "serve every route (/, /ws, /healthz, ...) under this path, e.g. /term", kRestart, {}},
    {"trusted_proxy", Kind::proxies, &Config::trusted_proxy, {}, "ADDR", "-",
     "a reverse proxy (address, ADDRESS/PREFIX or unix) whose Forwarded / X-Forwarded-* headers name the "
     "client; repeatable",
     kApplied, "WebSocket upgrades from then on; open connections stay"},
    {"limit_loopback", Kind::flag, &Config::limit_loopback, {}, "BOOL", "false",
     "apply max_connections_per_ip and auth_failures_per_ip to loopback and unix-socket clients too", kApplied,
     "WebSocket upgrades from then on; open connections stay"},
    {"tls_cert", Kind::text, &Config::tls_cert, {}, "FILE", "-", "PEM certificate: TLS on every TCP listener; SIGHUP reads the file again",
     kRestart, {}},
    {"tls_key", Kind::text, &Config::tls_key, {}, "FILE", "-", "PEM private key of tls_cert", kRestart, {}},
    {"tls_client_ca", Kind::text, &Config::tls_client_ca, {}, "FILE", "-",
     "PEM CA; when set, clients must present a certificate", kRestart, {}},
    {"max_message", Kind::size, &Config::max_message, {double(kKiB), false, double(64 * kMiB)}, "BYTES",
     "1MiB", "largest inbound message", kRestart, {}},
    {"max_connections", Kind::count, &Config::max_connections, {1}, "N", "10000", "then close 4429", kApplied,
     "connections opened from then on; open connections stay"},
    {"max_connections_per_ip", Kind::count, &Config::max_connections_per_ip, {1}, "N", "256",
     "open connections from one client address, then close 4429", kRestart, {}},
    {"auth_failures_per_ip", Kind::count, &Config::auth_failures_per_ip, {1}, "N", "20",
     "rejected tokens from one address per minute before each further attempt waits (250 ms, doubling, at "
     "most 5 s); a valid token is never refused",
     kRestart, {}},
    {"max_terminals", Kind::count, &Config::max_terminals, {1}, "N", "1000",
     "running terminals, then limit_exceeded; as many exited ones stay listed at most", kApplied,
     kTerminalCreation},
    {"max_terminals_per_user", Kind::count, &Config::max_terminals_per_user, {1}, "N", "50",
     "running terminals per user, then limit_exceeded; as many exited ones stay listed at most", kApplied,
     kTerminalCreation},
    {"ring_buffer_bytes", Kind::size, &Config::ring_buffer_bytes, {double(4 * kKiB)}, "BYTES", "1MiB",
     "retained output per terminal", kRestart, {}},
    {"snapshots", Kind::flag, &Config::snapshots, {}, "BOOL", "on",
     "keep a screen model per terminal for subscribe {snapshot: true} (docs/snapshots.md); off: snapshots are refused",
     kRestart, {}},
    {"snapshot_scrollback", Kind::count, &Config::snapshot_scrollback, {0, false, 100000}, "LINES", "1000",
     "history lines a snapshot carries at most", kRestart, {}},
    {"client_queue_limit", Kind::size, &Config::client_queue_limit, {double(64 * kKiB)}, "BYTES", "4MiB",
     "outbound bytes queued per connection before it counts as full", kRestart, {}},
    {"exited_retention", Kind::duration, &Config::exited_retention, {}, "SECONDS", "300",
     "how long an exited terminal stays listed", kApplied,
     "terminals that exit from then on; already exited ones keep their removal time"},
    {"detached_timeout", Kind::duration, &Config::detached_timeout, {}, "SECONDS", "0 (off)",
     "SIGHUP a terminal nobody has subscribed to for this long", kApplied, kNewTerminals},
    {"idle_timeout", Kind::duration, &Config::idle_timeout, {}, "SECONDS", "0 (off)",
     "SIGHUP a terminal without input or output for this long (shell.exit reason idle_timeout)", kApplied,
     kNewTerminals},
    {"max_lifetime", Kind::duration, &Config::max_lifetime, {}, "SECONDS", "0 (off)",
     "SIGHUP a terminal this long after it started (shell.exit reason max_lifetime)", kApplied, kNewTerminals},
    {"kill_grace", Kind::duration, &Config::kill_grace, {}, "SECONDS", "5", "SIGHUP/SIGTERM -> SIGKILL delay",
     kRestart, {}},
    {"ping_interval", Kind::duration, &Config::ping_interval, {0, true}, "SECONDS", "30",
     "WebSocket ping period", kRestart, {}},
    {"repos_root", Kind::text, &Config::repos_root, {}, "DIR", "- (git disabled)",
     "the only directory git operations may touch", kRestart, {}},
    {"git_allowed_protocols", Kind::protocols, &Config::git_allowed_protocols, {}, "LIST", "https,ssh,git,file",
     "comma-separated URL protocols allowed for clone/fetch/pull/push", kRestart, {}},
    {"git_timeout", Kind::duration, &Config::git_timeout, {}, "SECONDS", "1800", "then timed_out", kApplied,
     "git operations started from then on"},
    {"max_git_operations", Kind::count, &Config::max_git_operations, {1}, "N", "16", "concurrent git operations",
     kApplied, kGitStarts},
    {"max_git_operations_per_user", Kind::count, &Config::max_git_operations_per_user, {1}, "N", "4",
     "concurrent git operations per user", kApplied, kGitStarts},
    {"redis_url", Kind::text, &Config::redis_url, {}, "URL", "- (single node)",
     "cluster mode: join the nodes on this Redis (redis://[:password@]host[:port][/db]); docs/cluster.md",
     kRestart, {}},
    {"node_id", Kind::text, &Config::node_id, {}, "NAME", "the host name",
     "cluster mode: this node's name, unique among the nodes", kRestart, {}},
    {"advertise", Kind::text, &Config::advertise, {}, "URL", "-",
     "cluster mode: where clients can reach this node, shown in the node's directory entry", kRestart, {}},
    {"cluster_retention_bytes", Kind::size, &Config::cluster_retention_bytes, {}, "BYTES", "0 (ring_buffer_bytes)",
     "cluster mode: output kept in Redis per terminal, for other nodes' late joiners", kRestart, {}},
};

// ---- small helpers ----

std::string flag_of(std::string_view name) {
  std::string flag = "--";
  for (char c : name) flag += c == '_' ? '-' : c;
  return flag;
}

const Setting* find_setting(std::string_view name) {
  for (const Setting& s : kSettings) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

const Setting* find_flag(std::string_view flag) {
  for (const Setting& s : kSettings) {
    if (flag_of(s.name) == flag) return &s;
  }
  return nullptr;
}

// The text in double quotes, with quotes, backslashes and control bytes escaped.
std::string quoted(std::string_view text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

template <class T>
T& field(Config& config, const Setting& s) {
  return config.*(*std::get_if<T Config::*>(&s.field));
}

bool is_list(Kind kind) {
  return kind == Kind::text_list || kind == Kind::listen || kind == Kind::protocols || kind == Kind::proxies;
}

void clear_list(Config& config, const Setting& s) {
  if (s.kind == Kind::listen) field<std::vector<ListenAddress>>(config, s).clear();
  if (s.kind == Kind::text_list || s.kind == Kind::protocols || s.kind == Kind::proxies) {
    field<std::vector<std::string>>(config, s).clear();
  }
}

size_t count_digits(std::string_view text) {
  size_t n = 0;
  while (n < text.size() && text[n] >= '0' && text[n] <= '9') ++n;
  return n;
}

// A non-empty run of decimal digits that fits in uint64_t.
bool parse_digits(std::string_view text, uint64_t* out) {
  if (text.empty() || count_digits(text) != text.size()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

// ---- listen addresses ----

bool is_hostname(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  size_t start = 0;
  while (start <= host.size()) {
    size_t dot = host.find('.', start);
    std::string_view label = host.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
      if (!ok) return false;
    }
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return true;
}

// An IPv4 address in dotted form, or a host name that is not all digits and dots.
bool is_tcp_host(const std::string& host) {
  if (host.find_first_not_of("0123456789.") == std::string::npos) {
    in_addr addr;
    return inet_pton(AF_INET, host.c_str(), &addr) == 1;
  }
  return is_hostname(host);
}

bool parse_port(std::string_view text, uint16_t* out) {
  uint64_t value = 0;
  if (text.size() > 5 || !parse_digits(text, &value) || value > 65535) return false;
  *out = static_cast<uint16_t>(value);
  return true;
}

bool parse_unix_listen(std::string_view path, ListenAddress* out) {
  if (path.empty() || path.front() != '/' || path.find('\0') != std::string_view::npos) return false;
  if (path.size() >= sizeof(sockaddr_un{}.sun_path)) return false;
  *out = ListenAddress{true, "", 0, std::string(path)};
  return true;
}

// Splits "HOST:PORT" or "[V6]:PORT" into a checked host (without brackets) and port text.
bool split_host_port(const std::string& text, std::string* host, std::string_view* port) {
  if (text.starts_with('[')) {
    size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') return false;
    *host = text.substr(1, close - 1);
    *port = std::string_view(text).substr(close + 2);
    in6_addr addr;
    return inet_pton(AF_INET6, host->c_str(), &addr) == 1;
  }
  size_t colon = text.rfind(':');
  if (colon == std::string::npos) return false;
  *host = text.substr(0, colon);
  *port = std::string_view(text).substr(colon + 1);
  return is_tcp_host(*host);
}

// ---- applying one value to a Config ----

std::string format_bound(Kind kind, double value) {
  auto n = static_cast<uint64_t>(value);
  if (kind == Kind::size && n != 0 && n % kMiB == 0) return std::to_string(n / kMiB) + "MiB";
  if (kind == Kind::size && n != 0 && n % kKiB == 0) return std::to_string(n / kKiB) + "KiB";
  if (kind == Kind::size || kind == Kind::count) return std::to_string(n);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", value);
  return buf;
}

std::string check_bounds(const Setting& s, double value) {
  const Bounds& b = s.bounds;
  std::string name(s.name);
  if (b.above_min && value <= b.min) return name + ": must be > " + format_bound(s.kind, b.min);
  if (value < b.min) return name + ": must be >= " + format_bound(s.kind, b.min);
  if (value > b.max) return name + ": must be <= " + format_bound(s.kind, b.max);
  return "";
}

std::string apply_duration(Config& config, const Setting& s, const std::string& text) {
  double value = 0;
  if (!parse_duration(text, &value)) return std::string(s.name) + ": not a duration: " + quoted(text);
  if (value > kMaxSeconds) return std::string(s.name) + ": must be <= " + format_bound(s.kind, kMaxSeconds);
  std::string error = check_bounds(s, value);
  if (error.empty()) field<double>(config, s) = value;
  return error;
}

std::string apply_number(Config& config, const Setting& s, const std::string& text) {
  uint64_t value = 0;
  bool parsed = s.kind == Kind::size ? parse_size(text, &value) : parse_digits(text, &value);
  if (!parsed) {
    return std::string(s.name) + (s.kind == Kind::size ? ": not a size: " : ": not a count: ") + quoted(text);
  }
  std::string error = check_bounds(s, static_cast<double>(value));
  if (error.empty()) field<uint64_t>(config, s) = value;
  return error;
}

// A URL scheme (RFC 3986: letter, then letters, digits, '+', '-', '.'), stored lower-case.
bool parse_protocol(std::string_view text, std::string* out) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  if (text.empty()) return false;
  out->clear();
  for (char c : text) {
    char lower = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    bool letter = lower >= 'a' && lower <= 'z';
    bool other = (lower >= '0' && lower <= '9') || lower == '+' || lower == '-' || lower == '.';
    if (!letter && (out->empty() || !other)) return false;
    *out += lower;
  }
  return true;
}

// Appends the comma-separated protocols of text.
std::string apply_protocols(Config& config, const Setting& s, const std::string& text) {
  std::vector<std::string> protocols;
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    std::string_view item = std::string_view(text).substr(start, comma == std::string::npos ? comma : comma - start);
    std::string protocol;
    if (!parse_protocol(item, &protocol)) return std::string(s.name) + ": bad protocol " + quoted(item);
    protocols.push_back(std::move(protocol));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  auto& list = field<std::vector<std::string>>(config, s);
  list.insert(list.end(), protocols.begin(), protocols.end());
  return "";
}

// Sets a single-valued setting or appends to a list one. Returns an error naming the key, or "".
// ---- trusted proxies, the base path, flags ----

// An address, ADDRESS/PREFIX or "unix" (src/server/forwarded.hpp reads them the same way).
bool is_proxy_entry(const std::string& text) {
  if (text == "unix") return true;
  const size_t slash = text.find('/');
  const std::string address = text.substr(0, slash);
  unsigned char bytes[16];
  const bool v4 = inet_pton(AF_INET, address.c_str(), bytes) == 1;
  if (!v4 && inet_pton(AF_INET6, address.c_str(), bytes) != 1) return false;
  if (slash == std::string::npos) return true;
  uint64_t prefix = 0;
  return parse_digits(std::string_view(text).substr(slash + 1), &prefix) && prefix <= (v4 ? 32u : 128u);
}

// "/", "" -> ""; "/a/b/" -> "/a/b". Segments of unreserved URL characters only; no "." or "..".
bool normalise_base_path(std::string text, std::string* out) {
  while (text.size() > 1 && text.back() == '/') text.pop_back();
  if (text == "/") text.clear();
  if (!text.empty() && text.front() != '/') return false;
  size_t start = 1;
  while (start <= text.size() && !text.empty()) {
    const size_t slash = text.find('/', start);
    const std::string segment = text.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (segment.empty() || segment == "." || segment == "..") return false;
    for (char c : segment) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                      c == '.' || c == '_' || c == '~';
      if (!ok) return false;
    }
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  *out = std::move(text);
  return true;
}

std::string apply_text(Config& config, const Setting& s, const std::string& text) {
  std::string name(s.name);
  if (text.empty()) return name + ": empty value";
  switch (s.kind) {
    case Kind::config: return name + ": only allowed as a flag";
    case Kind::text: field<std::string>(config, s) = text; return "";
    case Kind::text_list: field<std::vector<std::string>>(config, s).push_back(text); return "";
    case Kind::listen: {
      ListenAddress address;
      if (!parse_listen(text, &address)) {
        return name + ": bad address " + quoted(text) + " (want HOST:PORT, [V6]:PORT or unix:/absolute/path)";
      }
      field<std::vector<ListenAddress>>(config, s).push_back(std::move(address));
      return "";
    }
    case Kind::level:
      if (log::parse_level(text, &field<log::Level>(config, s))) return "";
      return name + ": must be one of error, warn, info, debug";
    case Kind::format:
      if (log::parse_format(text, &field<log::Format>(config, s))) return "";
      return name + ": must be text or json";
    case Kind::duration: return apply_duration(config, s, text);
    case Kind::size:
    case Kind::count: return apply_number(config, s, text);
    case Kind::protocols: return apply_protocols(config, s, text);
    case Kind::proxies:
      if (!is_proxy_entry(text)) return name + ": not an address, ADDRESS/PREFIX or unix: " + quoted(text);
      field<std::vector<std::string>>(config, s).push_back(text);
      return "";
    case Kind::base_path:
      if (normalise_base_path(text, &field<std::string>(config, s))) return "";
      return name + ": " + quoted(text) + " is not a path such as /term (letters, digits, - . _ ~ between slashes)";
    case Kind::flag:
      if (text == "true" || text == "false" || text == "on" || text == "off") {
        field<bool>(config, s) = text == "true" || text == "on";
        return "";
      }
      return name + ": must be true or false (on or off)";
  }
  return "";
}

// ---- flags ----

struct FlagValue {
  const Setting* setting;
  std::string value;
};

struct ParsedArgs {
  std::vector<FlagValue> values;  // in command-line order, without --config
  std::optional<std::string> config_file;
  bool help = false;
  bool version = false;
  std::string error;  // the first one
};

// Takes args[*i] and, for "--name value", the value after it (advancing *i). Returns an error or "".
std::string take_argument(const std::vector<std::string>& args, size_t* i, ParsedArgs* parsed) {
  const std::string& arg = args[*i];
  if (arg == "-h" || arg == "--help") {
    parsed->help = true;
    return "";
  }
  if (arg == "-V" || arg == "--version") {
    parsed->version = true;
    return "";
  }
  if (!arg.starts_with("--") || arg == "--") {
    return (arg.starts_with('-') && arg != "-" ? "unknown flag " : "unexpected argument ") + quoted(arg);
  }
  size_t eq = arg.find('=');
  std::string flag = arg.substr(0, eq);
  const Setting* setting = find_flag(flag);
  if (setting == nullptr) {
    return flag == "--help" || flag == "--version" ? flag + ": takes no value" : "unknown flag " + quoted(flag);
  }
  std::string value;
  if (eq != std::string::npos) {
    value = arg.substr(eq + 1);
  } else if (*i + 1 < args.size() && !args[*i + 1].starts_with("--")) {
    value = args[++*i];
  } else {
    return std::string(setting->name) + ": missing value";
  }
  if (setting->kind == Kind::config) {
    parsed->config_file = std::move(value);
  } else {
    parsed->values.push_back({setting, std::move(value)});
  }
  return "";
}

ParsedArgs tokenize(const std::vector<std::string>& args) {
  ParsedArgs parsed;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string error = take_argument(args, &i, &parsed);
    if (!error.empty() && parsed.error.empty()) parsed.error = std::move(error);
  }
  return parsed;
}

// Flags override the file; the first flag of a list setting replaces the file's list.
std::string apply_flags(const std::vector<FlagValue>& values, Config& config) {
  std::vector<const Setting*> cleared;
  for (const FlagValue& v : values) {
    bool first = std::find(cleared.begin(), cleared.end(), v.setting) == cleared.end();
    if (v.setting->kind == Kind::protocols || (is_list(v.setting->kind) && first)) {
      clear_list(config, *v.setting);
      cleared.push_back(v.setting);
    }
    std::string error = apply_text(config, *v.setting, v.value);
    if (!error.empty()) return error;
  }
  return "";
}

// ---- the TOML file ----

std::string expected_type(Kind kind) {
  switch (kind) {
    case Kind::duration: return "a number of seconds";
    case Kind::size: return "a size (an integer or a string such as \"1MiB\")";
    case Kind::count: return "an integer";
    case Kind::text_list:
    case Kind::listen:
    case Kind::protocols:
    case Kind::proxies: return "a string or an array of strings";
    case Kind::flag: return "true or false";
    default: return "a string";
  }
}

// Doubles printed in fixed notation so that parse_duration reads them back exactly.
std::string fixed_text(double value) {
  char buf[512];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::fixed);
  return ec == std::errc() ? std::string(buf, end) : "nan";
}

// The value texts of a TOML node, as if each had been given as a flag value.
std::string node_texts(const Setting& s, const toml::node& node, std::vector<std::string>* out) {
  bool numeric = s.kind == Kind::duration || s.kind == Kind::size || s.kind == Kind::count;
  if (const auto* text = node.as_string()) {
    out->push_back(text->get());
  } else if (const auto* array = node.as_array(); array != nullptr && is_list(s.kind)) {
    for (const toml::node& item : *array) {
      const auto* text = item.as_string();
      if (text == nullptr) return std::string(s.name) + ": expected " + expected_type(s.kind);
      out->push_back(text->get());
    }
  } else if (const auto* integer = node.as_integer(); integer != nullptr && numeric) {
    out->push_back(std::to_string(integer->get()));
  } else if (const auto* flag = node.as_boolean(); flag != nullptr && s.kind == Kind::flag) {
    out->push_back(flag->get() ? "true" : "false");
  } else if (const auto* real = node.as_floating_point(); real != nullptr && s.kind == Kind::duration) {
    out->push_back(fixed_text(real->get()));
  } else {
    return std::string(s.name) + ": expected " + expected_type(s.kind);
  }
  return "";
}

std::string apply_node(Config& config, const Setting& s, const toml::node& node) {
  if (s.kind == Kind::config) return std::string(s.name) + ": only allowed as a flag";
  std::vector<std::string> texts;
  std::string error = node_texts(s, node, &texts);
  if (!error.empty()) return error;
  if (is_list(s.kind)) clear_list(config, s);
  for (const std::string& text : texts) {
    error = apply_text(config, s, text);
    if (!error.empty()) return error;
  }
  return "";
}

std::string apply_table(const toml::table& table, Config& config, const std::string& path) {
  for (auto&& [key, node] : table) {
    std::string where = " (" + path + " line " + std::to_string(key.source().begin.line) + ")";
    const Setting* s = find_setting(key.str());
    if (s == nullptr) return "unknown setting " + quoted(key.str()) + where;
    std::string error = apply_node(config, *s, node);
    if (!error.empty()) return error + where;
  }
  return "";
}

// Reads the whole file; returns "" or an error naming it.
std::string read_whole_file(const std::string& path, std::string* out) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) return "config: cannot read " + quoted(path) + ": " + std::strerror(errno);
  char buf[8192];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, file)) > 0) out->append(buf, n);
  int read_errno = std::ferror(file) ? errno : 0;
  std::fclose(file);
  if (read_errno != 0) return "config: cannot read " + quoted(path) + ": " + std::strerror(read_errno);
  return "";
}

std::string load_file(const std::string& path, Config& config) {
  std::string content;
  std::string error = read_whole_file(path, &content);
  if (!error.empty()) return error;
  config.config_file = path;
  try {
    toml::table table = toml::parse(content, path);
    return apply_table(table, config, path);
  } catch (const toml::parse_error& e) {
    const toml::source_position& at = e.source().begin;
    return path + ":" + std::to_string(at.line) + ":" + std::to_string(at.column) + ": " + std::string(e.description());
  }
}

// ---- defaults ----

bool is_executable_file(const char* path) {
  struct stat st;
  return path != nullptr && path[0] == '/' && stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

void fill_defaults(Config& config) {
  if (config.listen.empty()) {
    ListenAddress address;
    parse_listen(kDefaultListen, &address);
    config.listen.push_back(address);
  }
  const passwd* pw = getpwuid(getuid());
  if (config.shell.empty()) {
    config.shell = pw != nullptr && is_executable_file(pw->pw_shell) ? pw->pw_shell : kFallbackShell;
  }
  if (config.home.empty()) {
    config.home = pw != nullptr && pw->pw_dir != nullptr && pw->pw_dir[0] != '\0' ? pw->pw_dir : "/";
  }
}

bool file_exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 || (errno != ENOENT && errno != ENOTDIR);
}

std::string load_settings(const ParsedArgs& parsed, const std::string& default_config_file, Config& config) {
  std::string error;
  if (parsed.config_file.has_value()) {
    if (parsed.config_file->empty()) return "config: empty value";
    error = load_file(*parsed.config_file, config);
  } else if (!default_config_file.empty() && file_exists(default_config_file)) {
    error = load_file(default_config_file, config);
  }
  if (error.empty()) error = apply_flags(parsed.values, config);
  if (error.empty()) fill_defaults(config);
  return error;
}


std::string padded(std::string text, size_t width) {
  if (text.size() < width) text.append(width - text.size(), ' ');
  return text;
}

// "A, B and C".
std::string joined_names(const std::vector<std::string_view>& names) {
  std::string text;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) text += i + 1 == names.size() ? " and " : ", ";
    text += names[i];
  }
  return text;
}

// Words wrapped to lines of at most `width` characters.
std::string wrapped(const std::string& text, size_t width) {
  std::string out, line;
  size_t start = 0;
  while (start < text.size()) {
    size_t space = text.find(' ', start);
    std::string word = text.substr(start, space == std::string::npos ? std::string::npos : space - start);
    if (!line.empty() && line.size() + 1 + word.size() > width) {
      out += line + "\n";
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
    if (space == std::string::npos) break;
    start = space + 1;
  }
  return line.empty() ? out : out + line + "\n";
}

// The --help paragraph on SIGHUP, from the table's reload rules.
std::string sighup_text() {
  std::vector<std::string_view> applied;
  for (const Setting& s : kSettings) {
    if (s.reload == Reload::applied) applied.push_back(s.name);
  }
  return wrapped("Without a restart it applies " + joined_names(applied) +
                     "; a change of any other setting is named in a warning and needs a restart.",
                 100);
}

// One Markdown table cell: '|' escaped.
std::string cell(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

std::vector<std::string> reload_settings(Config& live, const Config& fresh, std::vector<std::string>* needs_restart) {
  std::vector<std::string> changed;
  for (const Setting& s : kSettings) {
    std::visit(
        [&](auto member) {
          if constexpr (!std::is_same_v<decltype(member), std::monostate>) {
            if (live.*member == fresh.*member) return;
            if (s.reload == Reload::applied) {
              live.*member = fresh.*member;
              changed.emplace_back(s.name);
            } else {
              needs_restart->emplace_back(s.name);
            }
          }
        },
        s.field);
  }
  return changed;
}

std::vector<SettingInfo> settings_table() {
  std::vector<SettingInfo> rows;
  for (const Setting& s : kSettings) {
    rows.push_back({std::string(s.name), flag_of(s.name), std::string(s.value_name), std::string(s.default_text),
                    std::string(s.meaning), s.reload, std::string(s.reload_scope)});
  }
  return rows;
}

uint64_t to_millis(double seconds) { return static_cast<uint64_t>(std::llround(seconds * 1000.0)); }

bool parse_size(const std::string& text, uint64_t* out) {
  size_t digits = count_digits(text);
  uint64_t value = 0;
  if (!parse_digits(std::string_view(text).substr(0, digits), &value)) return false;
  std::string_view suffix = std::string_view(text).substr(digits);
  uint64_t unit = 1;
  if (!suffix.empty()) {
    if (suffix.front() == ' ') suffix.remove_prefix(1);
    if (suffix == "KiB") unit = kKiB;
    else if (suffix == "MiB") unit = kMiB;
    else return false;
  }
  if (value > std::numeric_limits<uint64_t>::max() / unit) return false;
  *out = value * unit;
  return true;
}

bool parse_duration(const std::string& text, double* out) {
  size_t whole = count_digits(text);
  if (whole == 0) return false;
  if (whole < text.size()) {
    if (text[whole] != '.') return false;
    size_t fraction = count_digits(std::string_view(text).substr(whole + 1));
    if (fraction == 0 || whole + 1 + fraction != text.size()) return false;
  }
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(value)) return false;
  *out = value;
  return true;
}

bool parse_listen(const std::string& text, ListenAddress* out) {
  if (text.starts_with("unix:")) return parse_unix_listen(std::string_view(text).substr(5), out);
  std::string host;
  std::string_view port_text;
  uint16_t port = 0;
  if (!split_host_port(text, &host, &port_text) || !parse_port(port_text, &port)) return false;
  *out = ListenAddress{false, std::move(host), port, ""};
  return true;
}

ConfigResult load_config(const std::vector<std::string>& args) { return load_config(args, kDefaultConfigFile); }

ConfigResult load_config(const std::vector<std::string>& args, const std::string& default_config_file) {
  ConfigResult result;
  try {
    ParsedArgs parsed = tokenize(args);
    result.show_help = parsed.help;
    result.show_version = parsed.version;
    if (parsed.help || parsed.version) {
      result.ok = true;
      return result;
    }
    result.error = parsed.error;
    if (result.error.empty()) result.error = load_settings(parsed, default_config_file, result.config);
  } catch (const std::exception& e) {
    result.error = std::string("config: ") + e.what();
  }
  result.ok = result.error.empty();
  return result;
}

std::string config_help_text() {
  std::string text =
      "Usage:\n"
      "  ptyhubd [options]\n"
      "  ptyhubd token --sub NAME [--scope \"a b\"] [--ttl 3600] [--config FILE | --jwt-secret-file FILE]\n"
      "  ptyhubd upgrade [--pid-file FILE | --config FILE] [--timeout SECONDS]\n"
      "  ptyhubd --help | --version\n"
      "\n"
      "Serves PTY-backed shells over WebSockets. `token` prints a signed HS256 token for testing.\n"
      "Every option is also a key of the TOML file, with '_' for '-'; flags override the file.\n"
      "Durations are seconds (decimals allowed); sizes are bytes (KiB and MiB suffixes allowed).\n"
      "SIGHUP reads the command line, the file and the keys again (docs/configuration.md).\n"
      "SIGUSR2 replaces the daemon with the binary now at its path, every terminal kept (docs/upgrade.md);\n"
      "`upgrade` sends it to the daemon of pid_file and waits for the outcome (`ptyhubd upgrade --help`).\n";
  text += sighup_text();
  text += "\n";
  size_t flag_width = 0, default_width = 0;
  for (const Setting& s : kSettings) {
    flag_width = std::max(flag_width, flag_of(s.name).size() + 1 + s.value_name.size());
    default_width = std::max(default_width, s.default_text.size());
  }
  text += padded("Options:", flag_width + 4) + "default\n";
  for (const Setting& s : kSettings) {
    std::string line = "  " + padded(flag_of(s.name) + " " + std::string(s.value_name), flag_width + 2);
    line += padded(std::string(s.default_text), default_width + 2) + std::string(s.meaning);
    text += line + "\n";
  }
  text += "  " + padded("-h, --help", flag_width + default_width + 4) + "show this text\n";
  text += "  " + padded("-V, --version", flag_width + default_width + 4) + "print the version\n";
  return text;
}

std::string configuration_reference() {
  std::string text = std::string(kReferenceBegin) + "\n\n";
  text += "| TOML key | flag | default | meaning | SIGHUP |\n";
  text += "|---|---|---|---|---|\n";
  for (const Setting& s : kSettings) {
    std::string reload;
    switch (s.reload) {
      case Reload::applied: reload = "applied: " + std::string(s.reload_scope); break;
      case Reload::reread: reload = "read again"; break;
      case Reload::restart: reload = "restart"; break;
      case Reload::unspecified: reload = "?"; break;
    }
    std::string key = s.kind == Kind::config ? "- (flag only)" : "`" + std::string(s.name) + "`";
    text += "| " + key + " | `" + flag_of(s.name) + " " + std::string(s.value_name) + "` | " +
            cell(s.default_text) + " | " + cell(s.meaning) + " | " + cell(reload) + " |\n";
  }
  text += "\n" + std::string(kReferenceEnd) + "\n";
  return text;
}

}  // namespace ptyhub
