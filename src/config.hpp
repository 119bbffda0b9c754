// Config: every setting of ptyhubd (../docs/configuration.md), from flags and a TOML file.
//
// One name per setting: the long flag `--name-with-dashes` and the TOML key `name_with_underscores`.
// Flags override the file. Durations are seconds (decimals allowed), sizes are bytes with optional
// `KiB`/`MiB` suffixes. Unknown keys and bad values are errors naming the key. Pure: no libuv, no lws.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/log.hpp"

namespace ptyhub {

struct ListenAddress {
  bool unix_socket = false;
  std::string host;  // for TCP
  uint16_t port = 0; // 0 = any free port
  std::string path;  // for unix:/path
  bool operator==(const ListenAddress&) const = default;
};

struct Config {
  std::vector<ListenAddress> listen;  // default: 127.0.0.1:7700
  std::string config_file;            // the TOML file that was read, if any
  log::Level log_level = log::Level::info;
  log::Format log_format = log::Format::text;
  std::string shell;                  // default: user's login shell, else /bin/sh
  std::string home;                   // default: the daemon user's home
  std::string jwt_secret_file;
  std::vector<std::string> jwt_public_key;
  std::string jwt_issuer;
  std::string jwt_audience;
  double jwt_leeway = 30;
  double auth_timeout = 10;
  std::vector<std::string> allowed_origin;
  std::string frame_ancestors = "'self'";
  std::string pid_file;                    // "": none
  std::string base_path;                   // "" (the root) or "/a/b": no trailing slash
  std::vector<std::string> trusted_proxy;  // addresses, ADDRESS/PREFIX, "unix"; checked when loaded
  bool limit_loopback = false;
  bool snapshots = true;
  uint64_t snapshot_scrollback = 1000;
  std::string redis_url;   // empty: single node (no cluster code runs)
  std::string node_id;     // default: the host name
  std::string advertise;
  uint64_t cluster_retention_bytes = 0;  // 0: ring_buffer_bytes
  std::string tls_cert, tls_key, tls_client_ca;
  uint64_t max_message = 1024 * 1024;
  uint64_t max_connections = 10000;
  uint64_t max_connections_per_ip = 256;
  uint64_t auth_failures_per_ip = 20;
  uint64_t max_terminals = 1000;
  uint64_t max_terminals_per_user = 50;
  uint64_t ring_buffer_bytes = 1024 * 1024;
  uint64_t client_queue_limit = 4 * 1024 * 1024;
  double exited_retention = 300;
  double detached_timeout = 0;
  double idle_timeout = 0;
  double max_lifetime = 0;
  double kill_grace = 5;
  double ping_interval = 30;
  std::string repos_root;
  std::vector<std::string> git_allowed_protocols{"https", "ssh", "git", "file"};
  double git_timeout = 1800;
  uint64_t max_git_operations = 16;
  uint64_t max_git_operations_per_user = 4;
};

struct ConfigResult {
  bool ok = false;
  bool show_help = false;
  bool show_version = false;
  Config config;
  std::string error;  // when !ok: one line naming the flag or key, e.g. "max_message: not a size: \"12 parsecs\""
};

// Parses argv (without the program name / subcommand) and the TOML file named by --config, or
// /etc/ptyhub/ptyhub.toml when it exists and no --config was given. Fills defaults for shell and home.
ConfigResult load_config(const std::vector<std::string>& args);

inline constexpr const char* kDefaultConfigFile = "/etc/ptyhub/ptyhub.toml";

// As above, with the file read when no --config is given (kDefaultConfigFile above); for tests.
ConfigResult load_config(const std::vector<std::string>& args, const std::string& default_config_file);

// What SIGHUP does with a setting; each row of the settings table has one.
enum class Reload {
  unspecified,  // no rule: never in the table (a unit test checks)
  restart,      // a change is named in a warning and takes effect at the next start
  applied,      // a change takes effect without a restart (the row's reload_scope says for what)
  reread,       // `config`: the file SIGHUP reads again
};

// One row of the settings table, as --help, docs/configuration.md and the tests see it.
struct SettingInfo {
  std::string name;          // the TOML key
  std::string flag;          // "--" + name with '_' -> '-'
  std::string value_name;    // e.g. SECONDS
  std::string default_text;
  std::string meaning;
  Reload reload = Reload::unspecified;
  std::string reload_scope;  // for Reload::applied: what the new value applies to
};

// Every setting, in the table's order.
std::vector<SettingInfo> settings_table();

// SIGHUP: copies into `live` the settings of `fresh` whose table row says Reload::applied. Returns the
// names of those that changed; `needs_restart` gets the names of the Reload::restart ones that differ.
// Both in table order.
std::vector<std::string> reload_settings(Config& live, const Config& fresh, std::vector<std::string>* needs_restart);

// The --help text: usage, subcommands, every setting with its default.
std::string config_help_text();

// The settings reference of docs/configuration.md (Markdown, from the table), between these markers.
inline constexpr const char* kReferenceBegin = "<!-- settings table: generated from src/config.cpp -->";
inline constexpr const char* kReferenceEnd = "<!-- end of settings table -->";
std::string configuration_reference();

// Seconds to whole milliseconds (rounded), the unit every component takes.
uint64_t to_millis(double seconds);

// Parsing helpers, exposed for tests.
bool parse_size(const std::string& text, uint64_t* out);        // "1MiB", "512KiB", "1024"
bool parse_duration(const std::string& text, double* out);      // "30", "0.5"
bool parse_listen(const std::string& text, ListenAddress* out); // "127.0.0.1:7700", "[::1]:0", "unix:/p"

}  // namespace ptyhub
