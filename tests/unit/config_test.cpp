// Tests of src/config: the parsing helpers, flags, the TOML file, defaults, errors and --help.
// Each test that touches files owns a fresh temporary directory and removes it.
#include "src/config.hpp"

#include <doctest/doctest.h>
#include <pwd.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace ptyhub {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "ptyhub-config-XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // Writes a file in the directory and returns its path.
  std::string write(const std::string& name, const std::string& content) const {
    fs::path file = path_ / name;
    std::ofstream(file) << content;
    return file.string();
  }
  std::string missing(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

// Loads with no default file, so that the machine's /etc/ptyhub does not matter.
ConfigResult load(const std::vector<std::string>& args) {
  TempDir dir;
  return load_config(args, dir.missing("absent.toml"));
}

std::string error_of(const std::vector<std::string>& args) {
  ConfigResult result = load(args);
  CHECK_FALSE(result.ok);
  return result.error;
}

std::string error_of_file(const std::string& toml) {
  TempDir dir;
  std::string path = dir.write("ptyhub.toml", toml);
  ConfigResult result = load_config({"--config", path}, dir.missing("absent.toml"));
  CHECK_FALSE(result.ok);
  return result.error;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("parse_size accepts bytes and KiB/MiB suffixes") {
  const std::pair<const char*, uint64_t> good[] = {
      {"0", 0},          {"1024", 1024},           {"1KiB", 1024},
      {"512KiB", 524288}, {"1MiB", 1048576},        {"4 MiB", 4194304},
      {"007", 7},        {"18446744073709551615", std::numeric_limits<uint64_t>::max()},
  };
  for (const auto& [text, expected] : good) {
    uint64_t value = 1;
    CHECK_MESSAGE(parse_size(text, &value), text);
    CHECK(value == expected);
  }
  const char* bad[] = {"",      "-1",      "+1",    "1.5MiB", "12 parsecs", "1kib", "1KB",
                       "1 ",    " 1",      "1  KiB", "1GiB",  "KiB",        "0x10", "1KiB ",
                       "18446744073709551616", "17592186044416MiB", "1 k"};
  for (const char* text : bad) {
    uint64_t value = 42;
    CHECK_FALSE_MESSAGE(parse_size(text, &value), text);
    CHECK(value == 42);
  }
}

TEST_CASE("parse_duration accepts non-negative decimal seconds") {
  const std::pair<const char*, double> good[] = {{"0", 0}, {"30", 30}, {"0.5", 0.5}, {"1800", 1800}, {"00.25", 0.25}};
  for (const auto& [text, expected] : good) {
    double value = -1;
    CHECK_MESSAGE(parse_duration(text, &value), text);
    CHECK(value == expected);
  }
  std::string huge = "1" + std::string(400, '0');
  const std::string bad[] = {"", "-1", "+1", ".5", "5.", "1e3", "inf", "nan", "1,5", " 1", "1 ", "1s", "0x1", huge};
  for (const std::string& text : bad) {
    double value = 42;
    CHECK_FALSE_MESSAGE(parse_duration(text, &value), text);
    CHECK(value == 42);
  }
}

TEST_CASE("parse_listen reads HOST:PORT, [V6]:PORT and unix:/path") {
  struct Good {
    const char* text;
    bool unix_socket;
    const char* host;
    uint16_t port;
    const char* path;
  };
  const Good good[] = {
      {"127.0.0.1:7700", false, "127.0.0.1", 7700, ""}, {"0.0.0.0:0", false, "0.0.0.0", 0, ""},
      {"localhost:65535", false, "localhost", 65535, ""}, {"ws-1.example.com:443", false, "ws-1.example.com", 443, ""},
      {"[::1]:8080", false, "::1", 8080, ""},            {"[::]:1", false, "::", 1, ""},
      {"unix:/run/ptyhub.sock", true, "", 0, "/run/ptyhub.sock"},
  };
  for (const Good& g : good) {
    ListenAddress address;
    REQUIRE_MESSAGE(parse_listen(g.text, &address), g.text);
    CHECK(address.unix_socket == g.unix_socket);
    CHECK(address.host == g.host);
    CHECK(address.port == g.port);
    CHECK(address.path == g.path);
  }
  const std::string bad[] = {"",        "127.0.0.1",     "127.0.0.1:",   ":7700",        "127.0.0.1:65536",
                             "127.0.0.1:-1", "127.0.0.1:http", "::1:7700", "[::1]7700",    "[::1]",
                             "[nothere]:1", "999.1.1.1:80", "1.2.3:80",    "host name:80", "-bad.example:80",
                             "unix:relative", "unix:",       "unix:/" + std::string(200, 'a'), "[::1]:",
                             "127.0.0.1:077000"};
  for (const std::string& text : bad) {
    ListenAddress address;
    address.port = 9;
    CHECK_FALSE_MESSAGE(parse_listen(text, &address), text);
    CHECK(address.port == 9);
  }
}

TEST_CASE("defaults") {
  ConfigResult result = load({});
  REQUIRE_MESSAGE(result.ok, result.error);
  const Config& c = result.config;
  REQUIRE(c.listen.size() == 1);
  CHECK_FALSE(c.listen[0].unix_socket);
  CHECK(c.listen[0].host == "127.0.0.1");
  CHECK(c.listen[0].port == 7700);
  CHECK(c.config_file.empty());
  CHECK(c.log_level == log::Level::info);
  CHECK(c.log_format == log::Format::text);
  REQUIRE_FALSE(c.shell.empty());
  CHECK(c.shell.front() == '/');
  CHECK(access(c.shell.c_str(), X_OK) == 0);
  const passwd* pw = getpwuid(getuid());
  CHECK(c.home == (pw != nullptr && pw->pw_dir[0] != '\0' ? std::string(pw->pw_dir) : std::string("/")));
  CHECK(c.jwt_leeway == 30);
  CHECK(c.auth_timeout == 10);
  CHECK(c.max_message == 1048576);
  CHECK(c.client_queue_limit == 4194304);
  CHECK(c.git_allowed_protocols == std::vector<std::string>{"https", "ssh", "git", "file"});
  CHECK(c.jwt_public_key.empty());
  CHECK_FALSE(result.show_help);
  CHECK_FALSE(result.show_version);
}

// One value for every setting but --config, as flag name and value.
const std::vector<std::pair<std::string, std::string>> kEveryFlag = {
    {"--listen", "[::1]:0"},
    {"--log-level", "debug"},
    {"--log-format", "json"},
    {"--shell", "/bin/bash"},
    {"--home", "/srv"},
    {"--jwt-secret-file", "/etc/secret"},
    {"--jwt-public-key", "/etc/keys/a.pem"},
    {"--jwt-issuer", "issuer"},
    {"--jwt-audience", "audience"},
    {"--jwt-leeway", "0"},
    {"--auth-timeout", "0.5"},
    {"--allowed-origin", "https://example.com"},
    {"--tls-cert", "/c.pem"},
    {"--tls-key", "/k.pem"},
    {"--tls-client-ca", "/ca.pem"},
    {"--max-message", "2MiB"},
    {"--max-connections", "7"},
    {"--max-terminals", "8"},
    {"--max-terminals-per-user", "9"},
    {"--ring-buffer-bytes", "64KiB"},
    {"--client-queue-limit", "65536"},
    {"--exited-retention", "1.25"},
    {"--detached-timeout", "600"},
    {"--kill-grace", "0"},
    {"--ping-interval", "15"},
    {"--repos-root", "/srv/repos"},
    {"--git-allowed-protocols", "https, SSH"},
    {"--git-timeout", "60"},
    {"--max-git-operations", "3"},
    {"--max-git-operations-per-user", "2"},
};

void check_every_flag(const Config& c) {
  REQUIRE(c.listen.size() == 1);
  CHECK(c.listen[0].host == "::1");
  CHECK(c.listen[0].port == 0);
  CHECK(c.log_level == log::Level::debug);
  CHECK(c.log_format == log::Format::json);
  CHECK(c.shell == "/bin/bash");
  CHECK(c.home == "/srv");
  CHECK(c.jwt_secret_file == "/etc/secret");
  CHECK(c.jwt_public_key == std::vector<std::string>{"/etc/keys/a.pem"});
  CHECK(c.jwt_issuer == "issuer");
  CHECK(c.jwt_audience == "audience");
  CHECK(c.jwt_leeway == 0);
  CHECK(c.auth_timeout == 0.5);
  CHECK(c.allowed_origin == std::vector<std::string>{"https://example.com"});
  CHECK(c.tls_cert == "/c.pem");
  CHECK(c.tls_key == "/k.pem");
  CHECK(c.tls_client_ca == "/ca.pem");
  CHECK(c.max_message == 2 * 1048576);
  CHECK(c.max_connections == 7);
  CHECK(c.max_terminals == 8);
  CHECK(c.max_terminals_per_user == 9);
  CHECK(c.ring_buffer_bytes == 65536);
  CHECK(c.client_queue_limit == 65536);
  CHECK(c.exited_retention == 1.25);
  CHECK(c.detached_timeout == 600);
  CHECK(c.kill_grace == 0);
  CHECK(c.ping_interval == 15);
  CHECK(c.repos_root == "/srv/repos");
  CHECK(c.git_allowed_protocols == std::vector<std::string>{"https", "ssh"});
  CHECK(c.git_timeout == 60);
  CHECK(c.max_git_operations == 3);
  CHECK(c.max_git_operations_per_user == 2);
}

TEST_CASE("every flag as --name value") {
  std::vector<std::string> args;
  for (const auto& [flag, value] : kEveryFlag) {
    args.push_back(flag);
    args.push_back(value);
  }
  ConfigResult result = load(args);
  REQUIRE_MESSAGE(result.ok, result.error);
  check_every_flag(result.config);
}

TEST_CASE("every flag as --name=value") {
  std::vector<std::string> args;
  for (const auto& [flag, value] : kEveryFlag) args.push_back(flag + "=" + value);
  ConfigResult result = load(args);
  REQUIRE_MESSAGE(result.ok, result.error);
  check_every_flag(result.config);
}

TEST_CASE("--help, -h, --version, -V") {
  for (const char* flag : {"--help", "-h"}) {
    ConfigResult result = load({flag});
    CHECK(result.ok);
    CHECK(result.show_help);
    CHECK_FALSE(result.show_version);
  }
  for (const char* flag : {"--version", "-V"}) {
    ConfigResult result = load({flag});
    CHECK(result.ok);
    CHECK(result.show_version);
    CHECK_FALSE(result.show_help);
  }
  ConfigResult result = load({"--bogus", "--help"});
  CHECK(result.ok);
  CHECK(result.show_help);
  CHECK(error_of({"--help=yes"}) == "--help: takes no value");
}

TEST_CASE("TOML file with every kind of value, flags override it") {
  TempDir dir;
  std::string path = dir.write("ptyhub.toml", R"(
listen = ["127.0.0.1:1", "unix:/run/ptyhub.sock"]
log_level = "warn"
log_format = "json"
shell = "/bin/zsh"
jwt_public_key = "/keys/one.pem"
allowed_origin = ["https://a.example", "https://b.example"]
jwt_leeway = 5
auth_timeout = 2.5
ping_interval = "0.25"
max_message = 2048
ring_buffer_bytes = "8 KiB"
client_queue_limit = "1MiB"
max_connections = 3
max_terminals = "4"
git_allowed_protocols = ["https", "file"]
detached_timeout = 0
)");
  std::vector<std::string> args = {"--config", path, "--listen", "[::]:9", "--max-message=4KiB",
                                   "--log-level", "error"};
  ConfigResult result = load_config(args, dir.missing("absent.toml"));
  REQUIRE_MESSAGE(result.ok, result.error);
  const Config& c = result.config;
  CHECK(c.config_file == path);
  REQUIRE(c.listen.size() == 1);
  CHECK(c.listen[0].host == "::");
  CHECK(c.listen[0].port == 9);
  CHECK(c.log_level == log::Level::error);
  CHECK(c.log_format == log::Format::json);
  CHECK(c.shell == "/bin/zsh");
  CHECK(c.jwt_public_key == std::vector<std::string>{"/keys/one.pem"});
  CHECK(c.allowed_origin == std::vector<std::string>{"https://a.example", "https://b.example"});
  CHECK(c.jwt_leeway == 5);
  CHECK(c.auth_timeout == 2.5);
  CHECK(c.ping_interval == 0.25);
  CHECK(c.max_message == 4096);
  CHECK(c.ring_buffer_bytes == 8192);
  CHECK(c.client_queue_limit == 1048576);
  CHECK(c.max_connections == 3);
  CHECK(c.max_terminals == 4);
  CHECK(c.git_allowed_protocols == std::vector<std::string>{"https", "file"});
  CHECK(c.detached_timeout == 0);
  CHECK(c.kill_grace == 5);
}

TEST_CASE("TOML lists are kept without flags - comma string for protocols") {
  TempDir dir;
  std::string path = dir.write("ptyhub.toml",
                               "listen = [\"127.0.0.1:1\", \"unix:/run/p.sock\"]\n"
                               "git_allowed_protocols = \"ssh,git\"\n");
  ConfigResult result = load_config({"--config=" + path}, dir.missing("absent.toml"));
  REQUIRE_MESSAGE(result.ok, result.error);
  REQUIRE(result.config.listen.size() == 2);
  CHECK(result.config.listen[1].unix_socket);
  CHECK(result.config.listen[1].path == "/run/p.sock");
  CHECK(result.config.git_allowed_protocols == std::vector<std::string>{"ssh", "git"});
}

TEST_CASE("the default file is read when it exists and no --config is given") {
  TempDir dir;
  std::string path = dir.write("default.toml", "max_terminals = 12\n");
  ConfigResult result = load_config({}, path);
  REQUIRE_MESSAGE(result.ok, result.error);
  CHECK(result.config.max_terminals == 12);
  CHECK(result.config.config_file == path);

  std::string other = dir.write("other.toml", "max_terminals = 13\n");
  result = load_config({"--config", other}, path);
  REQUIRE_MESSAGE(result.ok, result.error);
  CHECK(result.config.max_terminals == 13);
}

TEST_CASE("repeatable settings accumulate - flags replace the file's list") {
  ConfigResult result = load({"--listen", "127.0.0.1:1", "--listen=[::1]:2", "--allowed-origin", "https://a",
                              "--allowed-origin", "https://b", "--jwt-public-key", "/a.pem", "--jwt-public-key",
                              "/b.pem"});
  REQUIRE_MESSAGE(result.ok, result.error);
  REQUIRE(result.config.listen.size() == 2);
  CHECK(result.config.listen[0].port == 1);
  CHECK(result.config.listen[1].host == "::1");
  CHECK(result.config.allowed_origin == std::vector<std::string>{"https://a", "https://b"});
  CHECK(result.config.jwt_public_key == std::vector<std::string>{"/a.pem", "/b.pem"});

  TempDir dir;
  std::string path = dir.write("ptyhub.toml", "allowed_origin = [\"https://file\"]\njwt_public_key = [\"/f.pem\"]\n");
  result = load_config({"--config", path, "--allowed-origin", "https://x", "--allowed-origin", "https://y"},
                       dir.missing("absent.toml"));
  REQUIRE_MESSAGE(result.ok, result.error);
  CHECK(result.config.allowed_origin == std::vector<std::string>{"https://x", "https://y"});
  CHECK(result.config.jwt_public_key == std::vector<std::string>{"/f.pem"});
}

TEST_CASE("unknown key") {
  CHECK(contains(error_of_file("foo = 1\n"), "unknown setting \"foo\""));
  CHECK(contains(error_of_file("[server]\nlisten = \"127.0.0.1:1\"\n"), "unknown setting \"server\""));
  CHECK(contains(error_of_file("config = \"/x.toml\"\n"), "config: only allowed as a flag"));
}

TEST_CASE("unknown flag or argument") {
  CHECK(error_of({"--foo", "1"}) == "unknown flag \"--foo\"");
  CHECK(error_of({"--max_message=1KiB"}) == "unknown flag \"--max_message\"");
  CHECK(error_of({"-x"}) == "unknown flag \"-x\"");
  CHECK(error_of({"serve"}) == "unexpected argument \"serve\"");
}

TEST_CASE("missing or empty value") {
  CHECK(error_of({"--shell"}) == "shell: missing value");
  CHECK(error_of({"--shell", "--log-level", "debug"}) == "shell: missing value");
  CHECK(error_of({"--config"}) == "config: missing value");
  CHECK(error_of({"--home="}) == "home: empty value");
}

TEST_CASE("bad size") {
  CHECK(error_of({"--max-message", "12 parsecs"}) == "max_message: not a size: \"12 parsecs\"");
  CHECK(error_of({"--max-message=512"}) == "max_message: must be >= 1KiB");
  CHECK(error_of({"--max-message=65MiB"}) == "max_message: must be <= 64MiB");
  CHECK(load({"--max-message=1KiB"}).ok);
  CHECK(load({"--max-message=64MiB"}).ok);
  CHECK(error_of({"--ring-buffer-bytes=4095"}) == "ring_buffer_bytes: must be >= 4KiB");
  CHECK(error_of({"--client-queue-limit=65535"}) == "client_queue_limit: must be >= 64KiB");
  CHECK(contains(error_of_file("max_message = \"12 parsecs\"\n"), "max_message: not a size: \"12 parsecs\""));
  CHECK(contains(error_of_file("max_message = -5\n"), "max_message: not a size: \"-5\""));
  CHECK(contains(error_of_file("max_message = 1.5\n"), "max_message: expected a size"));
}

TEST_CASE("bad duration and count") {
  CHECK(error_of({"--auth-timeout", "soon"}) == "auth_timeout: not a duration: \"soon\"");
  CHECK(error_of({"--auth-timeout=0"}) == "auth_timeout: must be > 0");
  CHECK(error_of({"--ping-interval=0"}) == "ping_interval: must be > 0");
  CHECK(error_of({"--kill-grace=-1"}) == "kill_grace: not a duration: \"-1\"");
  CHECK(error_of({"--jwt-leeway=1e3"}) == "jwt_leeway: not a duration: \"1e3\"");
  CHECK(error_of({"--git-timeout=2000000000"}) == "git_timeout: must be <= 1e+09");
  CHECK(error_of({"--max-connections=0"}) == "max_connections: must be >= 1");
  CHECK(error_of({"--max-terminals=0"}) == "max_terminals: must be >= 1");
  CHECK(error_of({"--max-terminals-per-user=x"}) == "max_terminals_per_user: not a count: \"x\"");
  CHECK(contains(error_of_file("auth_timeout = true\n"), "auth_timeout: expected a number of seconds"));
  CHECK(contains(error_of_file("ping_interval = nan\n"), "ping_interval: not a duration"));
  CHECK(contains(error_of_file("kill_grace = -0.5\n"), "kill_grace: not a duration"));
  CHECK(contains(error_of_file("max_terminals = 0\n"), "max_terminals: must be >= 1"));
}

TEST_CASE("bad listen, log level, protocols, string types") {
  CHECK(contains(error_of({"--listen", "nope"}), "listen: bad address \"nope\""));
  CHECK(contains(error_of({"--listen=unix:rel.sock"}), "listen: bad address \"unix:rel.sock\""));
  CHECK(error_of({"--log-level", "verbose"}) == "log_level: must be one of error, warn, info, debug");
  CHECK(error_of({"--log-format", "JSON"}) == "log_format: must be text or json");
  CHECK(contains(error_of_file("log_format = 1\n"), "log_format: expected a string"));
  CHECK(error_of({"--git-allowed-protocols=https,,ssh"}) == "git_allowed_protocols: bad protocol \"\"");
  CHECK(error_of({"--git-allowed-protocols=ht tp"}) == "git_allowed_protocols: bad protocol \"ht tp\"");
  CHECK(contains(error_of_file("listen = [\"127.0.0.1:1\", 2]\n"), "listen: expected a string or an array of strings"));
  CHECK(contains(error_of_file("shell = [\"/bin/sh\"]\n"), "shell: expected a string"));
  CHECK(contains(error_of_file("listen = \"x\"\n"), "listen: bad address \"x\""));
}

TEST_CASE("base_path, trusted_proxy and limit_loopback: normalised, checked, TOML types") {
  CHECK(load({"--base-path", "/term/"}).config.base_path == "/term");
  CHECK(load({"--base-path", "/"}).config.base_path.empty());
  CHECK(load({"--base-path", "/a/b-c_d.e~f"}).config.base_path == "/a/b-c_d.e~f");
  for (const char* bad : {"term", "/a//b", "/a/../b", "/./a", "/a b", "/a?x", "/%2e"}) {
    CAPTURE(bad);
    CHECK(contains(error_of({"--base-path", bad}), "base_path: "));
  }
  const ConfigResult proxies = load({"--trusted-proxy", "10.0.0.0/8", "--trusted-proxy", "::1", "--trusted-proxy", "unix"});
  REQUIRE(proxies.ok);
  CHECK(proxies.config.trusted_proxy == std::vector<std::string>{"10.0.0.0/8", "::1", "unix"});
  for (const char* bad : {"10.0.0.0/33", "example.org", "10.0.0.1:80", "::/200", "10.0.0.0/"}) {
    CAPTURE(bad);
    CHECK(error_of({"--trusted-proxy", bad}) == "trusted_proxy: not an address, ADDRESS/PREFIX or unix: \"" + std::string(bad) + "\"");
  }
  CHECK_FALSE(load({}).config.limit_loopback);
  CHECK(load({"--limit-loopback", "true"}).config.limit_loopback);
  CHECK(error_of({"--limit-loopback", "yes"}) == "limit_loopback: must be true or false (on or off)");
  TempDir dir;
  const ConfigResult file = load_config({"--config", dir.write("p.toml", "limit_loopback = true\ntrusted_proxy = [\"127.0.0.1\"]\n")},
                                        dir.missing("absent.toml"));
  REQUIRE_MESSAGE(file.ok, file.error);
  CHECK(file.config.limit_loopback);
  CHECK(contains(error_of_file("limit_loopback = 1\n"), "limit_loopback: expected true or false"));
}

TEST_CASE("config file missing or unparsable") {
  TempDir dir;
  std::string missing = dir.missing("nope.toml");
  ConfigResult result = load_config({"--config", missing}, dir.missing("absent.toml"));
  CHECK_FALSE(result.ok);
  CHECK(contains(result.error, missing));
  CHECK(contains(result.error, "No such file"));

  std::string broken = dir.write("broken.toml", "max_terminals = 3\nlisten = [\n");
  result = load_config({"--config", broken}, dir.missing("absent.toml"));
  CHECK_FALSE(result.ok);
  CHECK(contains(result.error, broken + ":"));
  CHECK(contains(result.error, ":2:") + contains(result.error, ":3:") == 1);

  result = load_config({}, dir.write("default.toml", "= 1\n"));
  CHECK_FALSE(result.ok);
  CHECK(contains(result.error, "default.toml:1:"));
}

TEST_CASE("help text names every setting with its default") {
  std::string help = config_help_text();
  CHECK(contains(help, "ptyhubd [options]"));
  CHECK(contains(help, "ptyhubd token --sub NAME"));
  CHECK(contains(help, "ptyhubd --help | --version"));
  for (const char* flag :
       {"--listen", "--config", "--log-level", "--shell", "--home", "--jwt-secret-file", "--jwt-public-key",
        "--jwt-issuer", "--jwt-audience", "--jwt-leeway", "--auth-timeout", "--allowed-origin", "--tls-cert",
        "--tls-key", "--tls-client-ca", "--max-message", "--max-connections", "--max-terminals",
        "--max-terminals-per-user", "--ring-buffer-bytes", "--client-queue-limit", "--exited-retention",
        "--detached-timeout", "--kill-grace", "--ping-interval", "--repos-root", "--git-allowed-protocols",
        "--git-timeout", "--max-git-operations", "--max-git-operations-per-user"}) {
    CHECK_MESSAGE(contains(help, std::string(flag) + " "), flag);
  }
  auto line_of = [&](const std::string& flag) {
    size_t at = help.find("  " + flag + " ");
    REQUIRE(at != std::string::npos);
    return help.substr(at, help.find('\n', at) - at);
  };
  CHECK_FALSE(contains(help, "not yet in effect"));
  CHECK(contains(line_of("--max-git-operations-per-user"), "4"));
  CHECK(contains(line_of("--ring-buffer-bytes"), "1MiB"));
  CHECK(contains(line_of("--max-message"), "1MiB"));
}

TEST_CASE("reload_settings takes the reloadable settings and names the others") {
  Config live;
  live.max_terminals_per_user = 1;
  live.log_level = log::Level::info;
  Config fresh = live;
  fresh.max_terminals_per_user = 3;
  fresh.log_level = log::Level::debug;
  fresh.allowed_origin = {"https://example.org"};
  fresh.client_queue_limit = live.client_queue_limit * 2;
  fresh.listen = {ListenAddress{false, "127.0.0.1", 1, ""}};
  std::vector<std::string> needs_restart;
  const std::vector<std::string> changed = reload_settings(live, fresh, &needs_restart);
  CHECK(changed == std::vector<std::string>{"log_level", "allowed_origin", "max_terminals_per_user"});
  CHECK(needs_restart == std::vector<std::string>{"listen", "client_queue_limit"});
  CHECK(live.max_terminals_per_user == 3);
  CHECK(live.log_level == log::Level::debug);
  CHECK(live.client_queue_limit == Config{}.client_queue_limit);  // kept until a restart
  needs_restart.clear();
  CHECK(reload_settings(live, live, &needs_restart).empty());
  CHECK(needs_restart.empty());
}

TEST_CASE("every setting of the table has a reload rule, and a scope when SIGHUP applies it") {
  const std::vector<SettingInfo> table = settings_table();
  CHECK(table.size() == 46);
  for (const SettingInfo& s : table) {
    CHECK_MESSAGE(s.reload != Reload::unspecified, s.name);
    CHECK_MESSAGE((s.reload == Reload::applied) == !s.reload_scope.empty(), s.name);
    CHECK_MESSAGE((s.reload == Reload::reread) == (s.name == "config"), s.name);
  }
}

// For each setting but config, a value other than its default, as a flag.
const std::map<std::string, std::vector<std::string>> kChangedValue = {
    {"listen", {"--listen", "127.0.0.1:7701"}},
    {"log_level", {"--log-level", "debug"}},
    {"log_format", {"--log-format", "json"}},
    {"pid_file", {"--pid-file", "/run/ptyhub/other.pid"}},
    {"snapshots", {"--snapshots", "off"}},
    {"snapshot_scrollback", {"--snapshot-scrollback", "10"}},
    {"shell", {"--shell", "/nonexistent/shell"}},
    {"home", {"--home", "/nonexistent/home"}},
    {"jwt_secret_file", {"--jwt-secret-file", "/etc/secret"}},
    {"jwt_public_key", {"--jwt-public-key", "/etc/keys/a.pem"}},
    {"jwt_issuer", {"--jwt-issuer", "issuer"}},
    {"jwt_audience", {"--jwt-audience", "audience"}},
    {"jwt_leeway", {"--jwt-leeway", "0"}},
    {"auth_timeout", {"--auth-timeout", "0.5"}},
    {"allowed_origin", {"--allowed-origin", "https://example.com"}},
    {"tls_cert", {"--tls-cert", "/c.pem"}},
    {"tls_key", {"--tls-key", "/k.pem"}},
    {"tls_client_ca", {"--tls-client-ca", "/ca.pem"}},
    {"max_message", {"--max-message", "2MiB"}},
    {"max_connections", {"--max-connections", "7"}},
    {"max_connections_per_ip", {"--max-connections-per-ip", "3"}},
    {"auth_failures_per_ip", {"--auth-failures-per-ip", "4"}},
    {"max_terminals", {"--max-terminals", "8"}},
    {"max_terminals_per_user", {"--max-terminals-per-user", "9"}},
    {"ring_buffer_bytes", {"--ring-buffer-bytes", "64KiB"}},
    {"client_queue_limit", {"--client-queue-limit", "65536"}},
    {"exited_retention", {"--exited-retention", "1.25"}},
    {"detached_timeout", {"--detached-timeout", "600"}},
    {"idle_timeout", {"--idle-timeout", "3600"}},
    {"frame_ancestors", {"--frame-ancestors", "'none'"}},
    {"base_path", {"--base-path", "/term"}},
    {"trusted_proxy", {"--trusted-proxy", "10.0.0.0/8"}},
    {"limit_loopback", {"--limit-loopback", "true"}},
    {"redis_url", {"--redis-url", "redis://127.0.0.1:6379/0"}},
    {"node_id", {"--node-id", "node-2"}},
    {"advertise", {"--advertise", "wss://node-2.example/ws"}},
    {"cluster_retention_bytes", {"--cluster-retention-bytes", "8MiB"}},
    {"max_lifetime", {"--max-lifetime", "86400"}},
    {"kill_grace", {"--kill-grace", "0"}},
    {"ping_interval", {"--ping-interval", "15"}},
    {"repos_root", {"--repos-root", "/srv/repos"}},
    {"git_allowed_protocols", {"--git-allowed-protocols", "https"}},
    {"git_timeout", {"--git-timeout", "60"}},
    {"max_git_operations", {"--max-git-operations", "3"}},
    {"max_git_operations_per_user", {"--max-git-operations-per-user", "2"}},
};

TEST_CASE("reload_settings follows each setting's rule: applied ones change, the others need a restart") {
  TempDir dir;
  const ConfigResult defaults = load({});
  REQUIRE_MESSAGE(defaults.ok, defaults.error);
  for (const SettingInfo& s : settings_table()) {
    CAPTURE(s.name);
    std::vector<std::string> args;
    if (s.name == "config") {
      args = {"--config", dir.write("empty.toml", "")};
    } else {
      REQUIRE_MESSAGE(kChangedValue.count(s.name) == 1, "no changed value for ", s.name);
      args = kChangedValue.at(s.name);
    }
    const ConfigResult fresh = load(args);
    REQUIRE_MESSAGE(fresh.ok, fresh.error);
    Config live = defaults.config;
    std::vector<std::string> needs_restart;
    const std::vector<std::string> changed = reload_settings(live, fresh.config, &needs_restart);
    switch (s.reload) {
      case Reload::applied:
        CHECK(changed == std::vector<std::string>{s.name});
        CHECK(needs_restart.empty());
        needs_restart.clear();
        CHECK(reload_settings(live, fresh.config, &needs_restart).empty());  // it is now the live value
        CHECK(needs_restart.empty());
        break;
      case Reload::restart:
        CHECK(changed.empty());
        CHECK(needs_restart == std::vector<std::string>{s.name});
        needs_restart.clear();
        reload_settings(live, fresh.config, &needs_restart);
        CHECK(needs_restart == std::vector<std::string>{s.name});  // the live value stayed
        break;
      case Reload::reread:
      case Reload::unspecified:
        CHECK(changed.empty());
        CHECK(needs_restart.empty());
        break;
    }
  }
}

TEST_CASE("--help names the settings SIGHUP applies, from the table") {
  const std::string help = config_help_text();
  const size_t begin = help.find("Without a restart");
  const size_t end = help.find("Options:");
  REQUIRE(begin < end);
  std::string paragraph = help.substr(begin, end - begin);
  for (char& c : paragraph) {
    if (c == '\n') c = ' ';
  }
  for (const SettingInfo& s : settings_table()) {
    const bool named = contains(paragraph, " " + s.name + ",") || contains(paragraph, " " + s.name + " ") ||
                       contains(paragraph, " " + s.name + ";");
    CHECK_MESSAGE(named == (s.reload == Reload::applied), s.name);
  }
}

// docs/configuration.md, found from this file's path (tests/unit/config_test.cpp).
fs::path configuration_doc() {
  return fs::path(__FILE__).parent_path().parent_path().parent_path() / "docs" / "configuration.md";
}

TEST_CASE("docs/configuration.md has the settings table of src/config.cpp, and so every setting") {
  const fs::path path = configuration_doc();
  std::ifstream file(path);
  REQUIRE_MESSAGE(file.good(), "cannot read ", path.string());
  std::stringstream buffer;
  buffer << file.rdbuf();
  std::string doc = buffer.str();
  const size_t begin = doc.find(kReferenceBegin);
  const size_t end = doc.find(kReferenceEnd);
  REQUIRE(begin != std::string::npos);
  REQUIRE(end != std::string::npos);
  REQUIRE(begin < end);
  const size_t after = doc.find('\n', end);
  const std::string current = doc.substr(begin, (after == std::string::npos ? doc.size() : after + 1) - begin);
  const std::string expected = configuration_reference();
  const char* update = std::getenv("PTYHUB_UPDATE_DOCS");
  if (current != expected && update != nullptr && std::string(update) == "1") {
    doc.replace(begin, current.size(), expected);
    std::ofstream(path) << doc;
    MESSAGE("rewrote the settings table of ", path.string());
    return;
  }
  CHECK_MESSAGE(current == expected,
                "docs/configuration.md is stale: run PTYHUB_UPDATE_DOCS=1 build/tests/config_tests and commit it");
  for (const SettingInfo& s : settings_table()) {
    CHECK_MESSAGE(contains(current, "`" + s.flag + " "), s.flag);
    if (s.name != "config") CHECK_MESSAGE(contains(current, "| `" + s.name + "` |"), s.name);
  }
}

}  // namespace ptyhub
