// Security of the daemon as a client sees it (docs/protocol.md §1-§4): hostile tokens, public-key
// algorithms, key rotation on SIGHUP, the scope x request matrix, shell.share, TLS and client
// certificates, unix sockets, the limits that close with 4429, and the audit log.
//
// Keys and certificates are made with the openssl command line in a temporary directory per test, and
// public-key tokens are signed by the same tool, so the daemon's verifier is checked against an
// independent signer.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "auth/base64url.hpp"
#include "auth/jwt.hpp"
#include "tests/support/daemon_process.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_client.hpp"

namespace ptyhub::test {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kIssuer = "https://issuer.test";
constexpr std::string_view kAudience = "ptyhub-test";

std::int64_t now_seconds() { return static_cast<std::int64_t>(std::time(nullptr)); }

Json sh(const std::string& script) { return Json{"/bin/sh", "-c", script}; }

std::string channel_of(const std::string& terminal_id) { return "shell:terminal:" + terminal_id; }

// ---- files and the openssl command line ----------------------------------------------------------

// A scratch directory of this file's tests.
class TempDir : public test::TempDir {
 public:
  TempDir() : test::TempDir("ptyhub-sec") {}
};

std::string quoted(const fs::path& path) { return "'" + path.string() + "'"; }

// Runs a command line through /bin/sh with its output discarded; true on exit status 0.
bool run(const std::string& command) {
  const int status = std::system((command + " >/dev/null 2>&1").c_str());
  return status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

void write_file(const fs::path& path, std::string_view content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

enum class KeyType { rsa, ec, ed25519 };

// Makes a private key in `dir`/<name>.key and writes its public key (PEM) to `public_pem`.
// Returns the private key's path; fails the test when openssl does not succeed.
fs::path make_key(const fs::path& dir, KeyType type, const std::string& name, const fs::path& public_pem) {
  const fs::path key = dir / (name + ".key");
  std::string algorithm;
  switch (type) {
    case KeyType::rsa: algorithm = "-algorithm RSA -pkeyopt rsa_keygen_bits:2048"; break;
    case KeyType::ec: algorithm = "-algorithm EC -pkeyopt ec_paramgen_curve:P-256"; break;
    case KeyType::ed25519: algorithm = "-algorithm ED25519"; break;
  }
  INFO("generating key ", name);
  REQUIRE(run("openssl genpkey " + algorithm + " -out " + quoted(key)));
  REQUIRE(run("openssl pkey -in " + quoted(key) + " -pubout -out " + quoted(public_pem)));
  return key;
}

// A self-signed certificate for 127.0.0.1 (EC P-256), written to <dir>/<name>.crt and <name>.key.
void make_self_signed(const fs::path& dir, const std::string& name, const std::string& subject) {
  REQUIRE(run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj " + subject +
              " -addext subjectAltName=IP:127.0.0.1 -keyout " + quoted(dir / (name + ".key")) + " -out " +
              quoted(dir / (name + ".crt"))));
}

// A certificate for `subject` signed by <dir>/<ca>.crt, written to <dir>/<name>.crt and <name>.key.
void make_signed_by(const fs::path& dir, const std::string& ca, const std::string& name, const std::string& subject) {
  const fs::path csr = dir / (name + ".csr");
  REQUIRE(run("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj " + subject +
              " -keyout " + quoted(dir / (name + ".key")) + " -out " + quoted(csr)));
  REQUIRE(run("openssl x509 -req -days 2 -set_serial 7 -in " + quoted(csr) + " -CA " + quoted(dir / (ca + ".crt")) +
              " -CAkey " + quoted(dir / (ca + ".key")) + " -out " + quoted(dir / (name + ".crt"))));
}

// ---- tokens --------------------------------------------------------------------------------------

std::string b64(std::string_view bytes) { return ptyhub::auth::base64url_encode(bytes); }

// base64url(header) "." base64url(payload): the JWS signing input.
std::string signing_input(const Json& header, const Json& payload) {
  return b64(header.dump()) + "." + b64(payload.dump());
}

// A JWS ECDSA signature is r||s, 32 bytes each; openssl writes DER (SEQUENCE of two INTEGERs).
std::optional<std::string> der_to_jws(std::string_view der) {
  std::size_t at = 0;
  auto byte = [&](std::size_t i) { return static_cast<unsigned char>(der[i]); };
  if (der.size() < 8 || byte(at++) != 0x30) return std::nullopt;
  if (byte(at) & 0x80) at += 1 + (byte(at) & 0x7f);
  else ++at;
  std::string out;
  for (int part = 0; part < 2; ++part) {
    if (at + 2 > der.size() || byte(at) != 0x02) return std::nullopt;
    std::size_t length = byte(at + 1);
    at += 2;
    if (at + length > der.size()) return std::nullopt;
    std::string_view integer = der.substr(at, length);
    at += length;
    while (!integer.empty() && integer.front() == '\0') integer.remove_prefix(1);
    if (integer.size() > 32) return std::nullopt;
    out += std::string(32 - integer.size(), '\0');
    out += integer;
  }
  return out;
}

// Signs with the openssl command line. `alg` is RS256/RS384/RS512, ES256 or EdDSA. With `der_ecdsa`
// an ES256 signature is left in openssl's DER form (which JWS does not accept).
class CliSigner {
 public:
  explicit CliSigner(fs::path work) : work_(std::move(work)) { fs::create_directories(work_); }

  std::string signature(std::string_view alg, const fs::path& key, std::string_view input, bool der_ecdsa = false) {
    const std::string n = std::to_string(++count_);
    const fs::path in = work_ / ("in-" + n);
    const fs::path sig = work_ / ("sig-" + n);
    write_file(in, input);
    std::string command;
    if (alg == "EdDSA") {
      command = "openssl pkeyutl -sign -rawin -inkey " + quoted(key) + " -in " + quoted(in) + " -out " + quoted(sig);
    } else {
      const std::string digest = alg.ends_with("384") ? "-sha384" : alg.ends_with("512") ? "-sha512" : "-sha256";
      command = "openssl dgst " + digest + " -sign " + quoted(key) + " -out " + quoted(sig) + " " + quoted(in);
    }
    INFO("signing with ", alg, ": ", command);
    REQUIRE(run(command));
    std::string bytes = read_file(sig);
    if (alg == "ES256" && !der_ecdsa) {
      auto raw = der_to_jws(bytes);
      REQUIRE(raw);
      bytes = *raw;
    }
    return bytes;
  }

  // header.payload.signature, with the header's `alg` chosen by the caller.
  std::string token(std::string_view alg, const fs::path& key, const Json& header, const Json& payload,
                    bool der_ecdsa = false) {
    const std::string input = signing_input(header, payload);
    return input + "." + b64(signature(alg, key, input, der_ecdsa));
  }

 private:
  fs::path work_;
  int count_ = 0;
};

std::string hs256(std::string_view secret, const Json& header, const Json& payload) {
  return ptyhub::auth::sign_encoded(ptyhub::auth::HmacAlgorithm::hs256, secret, signing_input(header, payload));
}

// The claims of an ordinary valid token.
Json claims(std::string_view sub, std::string_view scope = kUserScopes, std::int64_t ttl = 3600) {
  const std::int64_t now = now_seconds();
  return {{"sub", sub}, {"scope", scope}, {"iat", now}, {"exp", now + ttl}};
}

Json header(std::string_view alg, std::optional<std::string_view> kid = std::nullopt) {
  Json h = {{"alg", alg}, {"typ", "JWT"}};
  if (kid) h["kid"] = *kid;
  return h;
}

// ---- authentication through the daemon ------------------------------------------------------------

struct AuthOutcome {
  std::optional<Json> reply;  // the answer to the auth message, or the first message after the upgrade
  bool established = false;
  bool closed = false;
  int close_code = 0;
};

// Connects and presents `token` in an auth message (or, with `in_header`, as Authorization: Bearer).
// On an error it waits for the connection to close.
AuthOutcome try_token(const WsOptions& base, const std::string& token, bool in_header) {
  AuthOutcome outcome;
  TestClient client;
  WsOptions options = base;
  if (in_header) options.authorization = "Bearer " + token;
  outcome.established = client.connect(options);
  if (!outcome.established) return outcome;
  if (in_header) {
    outcome.reply = client.wait_for([](const Json&) { return true; }, 5s);
  } else {
    outcome.reply = client.request_with_id("auth", {{"token", token}}, "auth-1");
  }
  if (outcome.reply && outcome.reply->value("type", "") == "error") {
    outcome.closed = client.ws().wait_closed(5s);
    outcome.close_code = client.ws().close_code();
  } else {
    outcome.closed = client.ws().closed();
  }
  return outcome;
}

bool accepted(const AuthOutcome& outcome) {
  return outcome.reply && outcome.reply->value("type", "") == "auth.ok" && !outcome.closed;
}

std::string error_message(const std::optional<Json>& reply) {
  if (!reply || !reply->contains("data") || !(*reply)["data"].is_object()) return {};
  return (*reply)["data"].value("message", "");
}

// A rejected token: error unauthenticated "authentication failed: <reason>" then close 4401.
// `reason` (when not empty) must occur in the message.
void check_rejected(const AuthOutcome& outcome, std::string_view reason = {}) {
  INFO("reply: ", brief(outcome.reply), " close ", outcome.close_code);
  CHECK(outcome.established);
  CHECK(is_error(outcome.reply, "unauthenticated"));
  const std::string message = error_message(outcome.reply);
  CHECK(message.starts_with("authentication failed: "));
  if (!reason.empty()) CHECK_MESSAGE(message.find(reason) != std::string::npos, "expected reason: ", reason);
  CHECK(outcome.closed);
  CHECK(outcome.close_code == 4401);
}

std::size_t count_of(const std::string& text, std::string_view needle) {
  std::size_t count = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++count;
  return count;
}

// Waits until the daemon's log holds `needle` at least `times` times.
bool wait_log_count(const DaemonProcess& daemon, std::string_view needle, std::size_t times,
                    std::chrono::milliseconds timeout = 10s) {
  return eventually([&] { return count_of(daemon.log(), needle) >= times; }, timeout);
}

// A connected client authenticated with `token` by an auth message; fails the test otherwise.
std::unique_ptr<TestClient> connect_with_token(const WsOptions& options, const std::string& token) {
  auto client = std::make_unique<TestClient>();
  REQUIRE(client->connect(options));
  auto ok = client->request("auth", {{"token", token}});
  INFO("auth -> ", brief(ok));
  REQUIRE(ok);
  REQUIRE((*ok)["type"] == "auth.ok");
  return client;
}

bool has_type(const std::optional<Json>& reply, std::string_view type) {
  return reply && reply->is_object() && reply->value("type", "") == type;
}

bool pongs(TestClient& client) {
  auto pong = client.request("ping");
  return pong && pong->value("type", "") == "pong";
}

// The terminals of this client's shell.list, by id (empty when the list is refused).
std::map<std::string, Json> list_terminals(TestClient& client) {
  std::map<std::string, Json> terminals;
  auto reply = client.request("shell.list");
  if (!reply || (*reply)["type"] != "shell.list") return terminals;
  for (const Json& terminal : (*reply)["data"]["terminals"]) terminals[terminal.value("id", "")] = terminal;
  return terminals;
}

// ---- HTTP over TLS and over unix sockets ------------------------------------------------------------

struct RawResponse {
  int status = 0;
  std::string body;
};

// Status line and body of a complete HTTP/1.1 response (Content-Length or read to EOF).
std::optional<RawResponse> parse_raw(const std::string& raw) {
  if (!raw.starts_with("HTTP/1.") || raw.size() < 12) return std::nullopt;
  const std::size_t head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos) return std::nullopt;
  RawResponse response;
  response.status = std::atoi(raw.c_str() + 9);
  response.body = raw.substr(head_end + 4);
  return response;
}

// True once `raw` holds a whole response with a Content-Length body (else read until the peer closes).
bool complete(const std::string& raw) {
  auto response = parse_raw(raw);
  if (!response) return false;
  const std::string head = raw.substr(0, raw.find("\r\n\r\n"));
  std::istringstream lines(head);
  for (std::string line; std::getline(lines, line);) {
    if (line.size() > 15 && strncasecmp(line.c_str(), "content-length:", 15) == 0) {
      return response->body.size() >= std::strtoul(line.c_str() + 15, nullptr, 10);
    }
  }
  return false;
}

struct TlsOptions {
  fs::path trust;  // verify the server against this certificate; empty: no verification
  fs::path cert;   // client certificate and key, optional
  fs::path key;
};

struct TlsResult {
  std::optional<RawResponse> response;
  std::string error;  // why the exchange failed
};

std::string openssl_errors() {
  std::string text;
  while (unsigned long code = ERR_get_error()) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof buffer);
    text += std::string(text.empty() ? "" : "; ") + buffer;
  }
  return text;
}

// GET https://127.0.0.1:<port><path> (Connection: close) with OpenSSL; socket timeouts bound every step.
TlsResult https_get(int port, std::string_view path, const TlsOptions& options = {}) {
  static const bool ignore_sigpipe = [] { return std::signal(SIGPIPE, SIG_IGN) != SIG_ERR; }();
  (void)ignore_sigpipe;
  TlsResult result;
  ERR_clear_error();
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return {std::nullopt, "socket"};
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};
  timeval timeout{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) return {std::nullopt, "connect"};

  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> context(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
  if (!context) return {std::nullopt, "SSL_CTX_new"};
  if (!options.trust.empty()) {
    if (SSL_CTX_load_verify_locations(context.get(), options.trust.c_str(), nullptr) != 1) {
      return {std::nullopt, "trust: " + openssl_errors()};
    }
    SSL_CTX_set_verify(context.get(), SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(context.get(), SSL_VERIFY_NONE, nullptr);
  }
  if (!options.cert.empty() &&
      (SSL_CTX_use_certificate_file(context.get(), options.cert.c_str(), SSL_FILETYPE_PEM) != 1 ||
       SSL_CTX_use_PrivateKey_file(context.get(), options.key.c_str(), SSL_FILETYPE_PEM) != 1)) {
    return {std::nullopt, "client certificate: " + openssl_errors()};
  }
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(context.get()), SSL_free);
  SSL_set_fd(ssl.get(), fd);
  if (SSL_connect(ssl.get()) != 1) return {std::nullopt, "handshake: " + openssl_errors()};
  const std::string request = "GET " + std::string(path) + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                              "\r\nConnection: close\r\n\r\n";
  if (SSL_write(ssl.get(), request.data(), static_cast<int>(request.size())) <= 0) {
    return {std::nullopt, "write: " + openssl_errors()};
  }
  std::string raw;
  char buffer[4096];
  for (;;) {
    const int n = SSL_read(ssl.get(), buffer, sizeof buffer);
    if (n <= 0) break;
    raw.append(buffer, static_cast<std::size_t>(n));
    if (complete(raw)) break;
  }
  result.response = parse_raw(raw);
  if (!result.response) result.error = "no response: " + openssl_errors();
  return result;
}

// GET <path> over the unix socket at `socket_path` (Connection: close); nullopt on any failure.
std::optional<RawResponse> unix_http_get(const fs::path& socket_path, std::string_view path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::nullopt;
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};
  timeval timeout{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  const std::string text = socket_path.string();
  if (text.size() >= sizeof address.sun_path) return std::nullopt;
  text.copy(address.sun_path, text.size());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) return std::nullopt;
  const std::string request = "GET " + std::string(path) + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
    return std::nullopt;
  }
  std::string raw;
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) break;
    raw.append(buffer, static_cast<std::size_t>(n));
    if (complete(raw)) break;
  }
  return parse_raw(raw);
}

// The value of a counter or gauge in /metrics; nullopt when it is absent.
std::optional<std::uint64_t> metric(int port, std::string_view name) {
  auto response = http_get(port, "/metrics");
  if (!response || response->status != 200) return std::nullopt;
  std::istringstream lines(response->body);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with(std::string(name) + " ")) return std::stoull(line.substr(name.size() + 1));
  }
  return std::nullopt;
}

// ---- 1. bad tokens ----------------------------------------------------------------------------------

struct BadToken {
  std::string name;
  std::string token;
  std::string why;     // why the daemon must refuse it
  std::string reason;  // a word of the daemon's reason, when it is certain
};

TEST_CASE("security: a table of bad tokens - each gets error unauthenticated and close 4401") {
  TempDir dir;
  REQUIRE(!dir.path().empty());
  const fs::path keys_dir = dir / "keys";
  fs::create_directories(keys_dir);
  const fs::path rsa = make_key(dir.path(), KeyType::rsa, "rsa", keys_dir / "rsa.pem");
  const fs::path ec = make_key(dir.path(), KeyType::ec, "ec", keys_dir / "ec.pem");
  const fs::path stranger = make_key(dir.path(), KeyType::ec, "stranger", dir / "stranger.pub");
  const fs::path ed = make_key(dir.path(), KeyType::ed25519, "ed", dir / "ed.pub");
  CliSigner cli(dir / "work");

  DaemonProcess daemon({"--jwt-public-key", keys_dir.string(), "--jwt-issuer", std::string(kIssuer), "--jwt-audience",
                        std::string(kAudience), "--auth-failures-per-ip", "100000"});
  INFO(daemon.log());
  REQUIRE(daemon.started());
  const std::string secret = daemon.secret();
  const std::int64_t now = now_seconds();

  // Every bad token differs from one of these good ones in the one way its row names.
  Json good = claims("alice");
  good["iss"] = kIssuer;
  good["aud"] = kAudience;
  auto with = [&](const Json& changes) {
    Json payload = good;
    for (const auto& [key, value] : changes.items()) {
      if (value.is_null()) payload.erase(key);
      else payload[key] = value;
    }
    return payload;
  };
  const std::string good_hs = hs256(secret, header("HS256"), good);
  const std::string good_rs = cli.token("RS256", rsa, header("RS256", "rsa"), good);
  const std::string good_es = cli.token("ES256", ec, header("ES256", "ec"), good);
  for (const std::string* token : {&good_hs, &good_rs, &good_es}) {
    CHECK_MESSAGE(accepted(try_token(daemon.ws_options(), *token, false)), "a control token is refused: ", *token);
  }

  const std::string rsa_public_pem = read_file(keys_dir / "rsa.pem");
  const std::string hs_input = signing_input(header("HS256"), good);
  const std::string none_input = signing_input({{"alg", "none"}, {"typ", "JWT"}}, good);
  const std::string oversized_claim(17 * 1024, 'x');

  std::vector<BadToken> rows = {
      {"expired", hs256(secret, header("HS256"), with({{"iat", now - 7200}, {"exp", now - 3600}})),
       "exp is an hour ago", "token expired"},
      {"expired beyond the leeway", hs256(secret, header("HS256"), with({{"exp", now - 45}})),
       "exp + 30 s leeway is in the past", "token expired"},
      {"nbf in the future", hs256(secret, header("HS256"), with({{"nbf", now + 3600}})), "not valid for an hour",
       "not yet valid"},
      {"iat in the future", hs256(secret, header("HS256"), with({{"iat", now + 3600}})), "issued in an hour",
       "issued in the future"},
      {"missing sub", hs256(secret, header("HS256"), with({{"sub", nullptr}})), "sub is required", "sub"},
      {"empty sub", hs256(secret, header("HS256"), with({{"sub", ""}})), "sub must be a non-empty string", "sub"},
      {"sub not a string", hs256(secret, header("HS256"), with({{"sub", 42}})), "sub must be a string", "sub"},
      {"missing exp", hs256(secret, header("HS256"), with({{"exp", nullptr}})), "exp is required", "exp"},
      {"exp not a number", hs256(secret, header("HS256"), with({{"exp", std::to_string(now + 3600)}})),
       "exp must be a number", "exp"},
      {"alg none without signature", none_input + ".", "alg none never passes", "none"},
      {"alg none with a valid HS256 MAC",
       ptyhub::auth::sign_encoded(ptyhub::auth::HmacAlgorithm::hs256, secret, none_input),
       "alg none never passes, whatever follows", "none"},
      {"alg NONE in capitals", signing_input({{"alg", "NONE"}}, good) + ".", "no such algorithm", "alg"},
      {"no alg", ptyhub::auth::sign_encoded(ptyhub::auth::HmacAlgorithm::hs256, secret,
                                            signing_input({{"typ", "JWT"}}, good)),
       "alg is required", "alg"},
      {"HS256 signed with another secret", hs256("not-the-daemon-secret", header("HS256"), good),
       "the MAC does not verify", "bad signature"},
      {"HS256 with kid rsa, keyed with the RSA public key PEM", hs256(rsa_public_pem, header("HS256", "rsa"), good),
       "an HS token is never checked against a public key", "alg does not match key"},
      {"HS256 without kid, keyed with the RSA public key PEM", hs256(rsa_public_pem, header("HS256"), good),
       "without kid an HS token is checked against the secret only", "bad signature"},
      {"HS256 with a kid, keyed with the secret", hs256(secret, header("HS256", "hs"), good),
       "the secret has no kid", "kid"},
      {"RS256 header over an HMAC signature",
       ptyhub::auth::sign_encoded(ptyhub::auth::HmacAlgorithm::hs256, secret,
                                  signing_input(header("RS256", "rsa"), good)),
       "an RS256 token is checked with the RSA key only", "signature"},
      {"RS256 header without kid over an HMAC signature",
       ptyhub::auth::sign_encoded(ptyhub::auth::HmacAlgorithm::hs256, secret, signing_input(header("RS256"), good)),
       "never checked against the secret", "signature"},
      {"ES256 with a DER signature", cli.token("ES256", ec, header("ES256", "ec"), good, true),
       "JWS wants r||s, not DER", "signature"},
      {"ES256 signed by a key that is not configured", cli.token("ES256", stranger, header("ES256", "ec"), good),
       "the signature is not by the key of kid ec", "bad signature"},
      {"RS256 with an unknown kid", cli.token("RS256", rsa, header("RS256", "nobody"), good),
       "no configured key has this kid", "unknown kid"},
      {"RS256 whose kid names the EC key", cli.token("RS256", rsa, header("RS256", "ec"), good),
       "the algorithm must match the key's type", "alg does not match key"},
      {"EdDSA whose kid names the EC key", cli.token("EdDSA", ed, header("EdDSA", "ec"), good),
       "the algorithm must match the key's type", "alg does not match key"},
      {"EdDSA without kid and no Ed25519 key", cli.token("EdDSA", ed, header("EdDSA"), good),
       "no key of that type is configured", ""},
      {"kid not a string", hs256(secret, {{"alg", "HS256"}, {"kid", 5}}, good), "kid must be a string", "kid"},
      {"payload changed after signing",
       good_hs.substr(0, good_hs.find('.')) + "." + b64(with({{"sub", "root"}, {"scope", "admin"}}).dump()) +
           good_hs.substr(good_hs.rfind('.')),
       "the MAC covers the payload", "bad signature"},
      {"RS256 payload changed after signing",
       good_rs.substr(0, good_rs.find('.')) + "." + b64(with({{"scope", "admin"}}).dump()) +
           good_rs.substr(good_rs.rfind('.')),
       "the signature covers the payload", "bad signature"},
      {"truncated", good_hs.substr(0, good_hs.size() - 6), "the MAC is cut short", "signature"},
      {"two parts", hs_input, "a JWS has three parts", "malformed"},
      {"four parts", good_hs + "." + good_hs.substr(good_hs.rfind('.') + 1), "a JWS has three parts", "malformed"},
      {"header not base64url",
       ptyhub::auth::sign_encoded(ptyhub::auth::HmacAlgorithm::hs256, secret,
                                  "eyJhbGciOiJIUzI1NiJ9*!." + hs_input.substr(hs_input.find('.') + 1)),
       "'*' and '!' are not base64url", "header"},
      {"payload in standard base64",
       ptyhub::auth::sign_encoded(ptyhub::auth::HmacAlgorithm::hs256, secret,
                                  hs_input.substr(0, hs_input.find('.') + 1) + "e30+/w=="),
       "'+', '/' and '=' are not base64url", "payload"},
      {"payload a JSON array", hs256(secret, header("HS256"), Json::array({good})), "claims must be an object",
       "payload"},
      {"payload not JSON",
       ptyhub::auth::sign_encoded(ptyhub::auth::HmacAlgorithm::hs256, secret,
                                  hs_input.substr(0, hs_input.find('.') + 1) + b64("{\"sub\":")),
       "the claims do not parse", "payload"},
      {"header not JSON",
       ptyhub::auth::sign_encoded(ptyhub::auth::HmacAlgorithm::hs256, secret,
                                  b64("{alg:HS256}") + hs_input.substr(hs_input.find('.'))),
       "the header does not parse", "header"},
      {"crit header", hs256(secret, {{"alg", "HS256"}, {"crit", {"exp"}}, {"exp", 1}}, good),
       "no crit extension is understood", "crit"},
      {"64 KiB of garbage", std::string(64 * 1024, 'A'), "over 16 KiB", "too large"},
      {"a valid signature over 16 KiB", hs256(secret, header("HS256"), with({{"pad", oversized_claim}})),
       "over 16 KiB even when signed", "too large"},
      {"iss of another issuer", hs256(secret, header("HS256"), with({{"iss", "https://evil.test"}})),
       "--jwt-issuer is set", "issuer mismatch"},
      {"no iss", hs256(secret, header("HS256"), with({{"iss", nullptr}})), "--jwt-issuer is set", "iss"},
      {"aud of another audience", hs256(secret, header("HS256"), with({{"aud", "someone-else"}})),
       "--jwt-audience is set", "audience mismatch"},
      {"aud array without ours", hs256(secret, header("HS256"), with({{"aud", {"a", "b"}}})),
       "--jwt-audience must be a member", "audience mismatch"},
      {"no aud", hs256(secret, header("HS256"), with({{"aud", nullptr}})), "--jwt-audience is set", "aud"},
  };
  REQUIRE(rows.size() >= 20);

  for (const BadToken& row : rows) {
    CAPTURE(row.name);
    CAPTURE(row.why);
    INFO("in an auth message");
    check_rejected(try_token(daemon.ws_options(), row.token, false), row.reason);
  }
  // The same tokens in the Authorization header (the test client's handshake buffer takes up to ~4 KiB).
  for (const BadToken& row : rows) {
    if (row.token.size() > 2 * 1024) continue;
    CAPTURE(row.name);
    CAPTURE(row.why);
    INFO("in the Authorization header");
    check_rejected(try_token(daemon.ws_options(), row.token, true), row.reason);
  }

  {
    INFO("refresh: a token of another sub is forbidden and changes nothing - a bad one closes 4401");
    auto client = connect_with_token(daemon.ws_options(), good_rs);
    auto other = client->request("auth", {{"token", hs256(secret, header("HS256"), with({{"sub", "mallory"}}))}});
    CHECK_MESSAGE(is_error(other, "forbidden", "data.token"), brief(other));
    CHECK(pongs(*client));
    Json terminal = client->create_terminal({{"command", sh("exec sleep 1000")}, {"subscribe", false}});
    CHECK(terminal.value("owner", "") == "alice");

    auto expired = client->request("auth", {{"token", hs256(secret, header("HS256"), with({{"exp", now - 3600}}))}});
    CHECK_MESSAGE(is_error(expired, "unauthenticated"), brief(expired));
    CHECK(client->ws().wait_closed(5s));
    CHECK(client->ws().close_code() == 4401);
  }

  // Nothing of a token reaches the log, not even of a rejected one.
  const std::string log = daemon.log();
  for (const BadToken& row : rows) {
    const std::size_t dot = row.token.rfind('.');
    const std::string signature = dot == std::string::npos ? row.token : row.token.substr(dot + 1);
    if (signature.size() >= 16) CHECK_MESSAGE(log.find(signature) == std::string::npos, row.name);
  }
  CHECK(log.find(good_rs.substr(good_rs.rfind('.') + 1)) == std::string::npos);
  CHECK_MESSAGE(daemon.sanitizer_findings().empty(), daemon.sanitizer_findings());
}

// ---- 2. public-key algorithms -------------------------------------------------------------------------

TEST_CASE("security: RS256, RS512, ES256 and EdDSA tokens signed by openssl are accepted - kid is the file name") {
  TempDir dir;
  REQUIRE(!dir.path().empty());
  const fs::path keys_dir = dir / "keys";
  fs::create_directories(keys_dir);
  const fs::path rsa = make_key(dir.path(), KeyType::rsa, "rsa", keys_dir / "rsa-main.pem");
  const fs::path ec = make_key(dir.path(), KeyType::ec, "ec", keys_dir / "ec-main.pem");
  const fs::path ed = make_key(dir.path(), KeyType::ed25519, "ed", keys_dir / "ed-main.pem");
  // A second path: one PEM file, kid "solo" (its name without extension).
  const fs::path solo = make_key(dir.path(), KeyType::ec, "solo", dir / "solo.pem");
  CliSigner cli(dir / "work");

  DaemonProcess daemon({"--jwt-public-key", keys_dir.string(), "--jwt-public-key", (dir / "solo.pem").string()});
  INFO(daemon.log());
  REQUIRE(daemon.started());

  struct Case {
    std::string alg;
    fs::path key;
    std::optional<std::string> kid;
  };
  const std::vector<Case> cases = {
      {"RS256", rsa, "rsa-main"}, {"RS384", rsa, "rsa-main"}, {"RS512", rsa, "rsa-main"}, {"ES256", ec, "ec-main"},
      {"EdDSA", ed, "ed-main"},   {"ES256", solo, "solo"},
      // Without kid: the one key of the algorithm's type.
      {"RS256", rsa, std::nullopt}, {"EdDSA", ed, std::nullopt},
  };
  for (const Case& c : cases) {
    CAPTURE(c.alg);
    CAPTURE(c.kid.value_or("(no kid)"));
    const std::string user = "user-" + c.alg;
    const std::string token = cli.token(c.alg, c.key, header(c.alg, c.kid), claims(user));
    AuthOutcome message = try_token(daemon.ws_options(), token, false);
    INFO(brief(message.reply));
    REQUIRE(accepted(message));
    CHECK((*message.reply)["data"]["user"] == user);
    CHECK((*message.reply)["data"]["scopes"] == Json{"terminal:create", "terminal:read", "terminal:write"});
    CHECK(accepted(try_token(daemon.ws_options(), token, true)));
  }

  {
    INFO("an RS256 session creates a shell and sees its output");
    const std::string token = cli.token("RS256", rsa, header("RS256", "rsa-main"), claims("rita"));
    auto client = connect_with_token(daemon.ws_options(), token);
    Json terminal = client->create_terminal({{"command", sh("echo rsa-$((40+2))")}});
    const std::string id = terminal.value("id", "");
    CHECK(terminal.value("owner", "") == "rita");
    CHECK(client->wait_output(id, "rsa-42"));
    auto exit = client->wait_exit(id);
    REQUIRE(exit);
    CHECK((*exit)["exitCode"] == 0);
  }
  {
    INFO("a long RS256 token in the bearer subprotocol (over 126 bytes) works on a plain listener");
    const std::string token = cli.token("RS256", rsa, header("RS256", "rsa-main"), claims("rita"));
    REQUIRE(token.size() > 126);
    TestClient client;
    WsOptions options = daemon.ws_options();
    options.subprotocols = "ptyhub.v1, bearer." + token;
    REQUIRE(client.connect(options));
    CHECK(client.ws().accepted_subprotocol() == "ptyhub.v1");
    auto ok = client.wait_event("auth.ok");
    CHECK_MESSAGE(ok, brief(ok));
    CHECK(pongs(client));
  }
  {
    INFO("ES256 without kid is refused when two EC keys are configured");
    check_rejected(try_token(daemon.ws_options(), cli.token("ES256", ec, header("ES256"), claims("eve")), false),
                   "kid required");
  }
  {
    INFO("the same token signed by the daemon's own signer and by openssl verify alike");
    const Json payload = claims("sam");
    const std::string own = ptyhub::auth::sign_jwt_with_private_key("EdDSA", read_file(ed),
                                                                    header("EdDSA", "ed-main").dump(), payload.dump());
    REQUIRE_FALSE(own.empty());
    // Ed25519 is deterministic: both signers produce the same token.
    CHECK(own == cli.token("EdDSA", ed, header("EdDSA", "ed-main"), payload));
    CHECK(accepted(try_token(daemon.ws_options(), own, false)));
  }
  CHECK_MESSAGE(daemon.sanitizer_findings().empty(), daemon.sanitizer_findings());
}

// ---- 3. key rotation ----------------------------------------------------------------------------------

TEST_CASE("security: SIGHUP rotates keys, a live connection keeps working - a broken key file keeps the old keys") {
  TempDir dir;
  REQUIRE(!dir.path().empty());
  const fs::path keys_dir = dir / "keys";
  fs::create_directories(keys_dir);
  const fs::path k1 = make_key(dir.path(), KeyType::ec, "k1", keys_dir / "k1.pem");
  const fs::path k2 = make_key(dir.path(), KeyType::ed25519, "k2", dir / "k2.public");
  CliSigner cli(dir / "work");
  auto k1_token = [&](std::string_view sub) { return cli.token("ES256", k1, header("ES256", "k1"), claims(sub)); };
  auto k2_token = [&](std::string_view sub) { return cli.token("EdDSA", k2, header("EdDSA", "k2"), claims(sub)); };

  DaemonProcess daemon({"--jwt-public-key", keys_dir.string()});
  INFO(daemon.log());
  REQUIRE(daemon.started());
  const std::string reloaded = "SIGHUP: keys reloaded";
  const std::string not_reloaded = "SIGHUP: nothing reloaded";

  auto live = connect_with_token(daemon.ws_options(), k1_token("alice"));
  Json terminal = live->create_terminal();  // the configured shell, subscribed
  const std::string id = terminal.value("id", "");
  check_rejected(try_token(daemon.ws_options(), k2_token("bob"), false), "unknown kid");

  // Add k2 and reload.
  fs::copy_file(dir / "k2.public", keys_dir / "k2.pem");
  REQUIRE(daemon.send_signal(SIGHUP));
  REQUIRE(wait_log_count(daemon, reloaded, 1));
  CHECK(accepted(try_token(daemon.ws_options(), k2_token("bob"), false)));
  CHECK(accepted(try_token(daemon.ws_options(), k1_token("carol"), false)));
  CHECK(pongs(*live));
  CHECK(list_terminals(*live).count(id) == 1);
  auto input = live->request("shell.input", {{"terminalId", id}, {"data", "echo rotated-$((40+2))\n"}});
  CHECK_MESSAGE(has_type(input, "ack"), brief(input));
  CHECK(live->wait_output(id, "rotated-42"));

  // A key file that does not parse: the reload fails and the keys in use stay.
  write_file(keys_dir / "broken.pem", "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n");
  REQUIRE(daemon.send_signal(SIGHUP));
  REQUIRE(wait_log_count(daemon, not_reloaded, 1));
  CHECK(count_of(daemon.log(), reloaded) == 1);
  CHECK(accepted(try_token(daemon.ws_options(), k1_token("carol"), false)));
  CHECK(accepted(try_token(daemon.ws_options(), k2_token("bob"), false)));
  CHECK(pongs(*live));

  // Remove k1 (and the broken file) and change the HS secret: k1 and the old secret stop working for new
  // connections; the connection authenticated with k1 is not dropped.
  fs::remove(keys_dir / "broken.pem");
  fs::remove(keys_dir / "k1.pem");
  const std::string old_secret_token = daemon.token("dave");
  CHECK(accepted(try_token(daemon.ws_options(), old_secret_token, false)));
  const std::string new_secret = "rotated-secret-0123456789abcdef-0123456789";
  write_file(daemon.secret_file(), new_secret + "\n");
  REQUIRE(daemon.send_signal(SIGHUP));
  REQUIRE(wait_log_count(daemon, reloaded, 2));
  check_rejected(try_token(daemon.ws_options(), k1_token("carol"), false), "unknown kid");
  check_rejected(try_token(daemon.ws_options(), old_secret_token, false), "bad signature");
  CHECK(accepted(try_token(daemon.ws_options(),
                           ptyhub::auth::mint_token(new_secret, "dave", kUserScopes, now_seconds(), 600), false)));
  CHECK(accepted(try_token(daemon.ws_options(), k2_token("bob"), false)));
  CHECK(pongs(*live));
  CHECK(list_terminals(*live).count(id) == 1);
  input = live->request("shell.input", {{"terminalId", id}, {"data", "echo still-$((6*7))\n"}});
  CHECK_MESSAGE(has_type(input, "ack"), brief(input));
  CHECK(live->wait_output(id, "still-42"));

  // Refreshing the old connection with a token of the removed key fails like any bad token.
  auto refresh = live->request("auth", {{"token", k1_token("alice")}});
  CHECK_MESSAGE(is_error(refresh, "unauthenticated"), brief(refresh));
  CHECK(live->ws().wait_closed(5s));
  CHECK(live->ws().close_code() == 4401);
  CHECK_MESSAGE(daemon.sanitizer_findings().empty(), daemon.sanitizer_findings());
}

TEST_CASE("security: a secret file others may read or write, or shorter than 32 bytes, is refused - at start and on SIGHUP") {
  TempDir dir;
  REQUIRE(!dir.path().empty());
  struct Bad {
    const char* name;
    mode_t mode;
    std::string content;
    const char* reason;
  };
  const std::string strong(64, 'k');
  const std::vector<Bad> bads = {
      {"world-readable", 0644, strong, "has mode 0644"},
      {"world-writable", 0666, strong, "has mode 0666"},
      {"group-writable", 0620, strong, "has mode 0620"},
      {"eight bytes", 0600, "12345678", "holds 8 bytes; an HS256 secret needs at least 32"},
  };
  for (const Bad& bad : bads) {
    CAPTURE(bad.name);
    const fs::path file = dir / bad.name;
    write_file(file, bad.content + "\n");
    REQUIRE(chmod(file.c_str(), bad.mode) == 0);
    DaemonLaunch launch;
    launch.extra_args = {"--jwt-secret-file", file.string()};  // after the harness's own: this one counts
    launch.wait_for_port = false;
    DaemonProcess daemon(launch);
    const auto status = daemon.wait_exit(10s);  // it exits on its own, having said why
    CHECK_FALSE(daemon.started());
    REQUIRE(status.has_value());
    CHECK((WIFEXITED(*status) && WEXITSTATUS(*status) != 0));
    CHECK_MESSAGE(daemon.log().find(bad.reason) != std::string::npos, daemon.log());
  }
  {
    INFO("a group-readable secret (a service group) is accepted");
    const fs::path file = dir / "group-readable";
    write_file(file, strong + "\n");
    REQUIRE(chmod(file.c_str(), 0640) == 0);
    DaemonLaunch launch;
    launch.extra_args = {"--jwt-secret-file", file.string()};
    DaemonProcess daemon(launch);
    CHECK(daemon.started());
  }
  {
    INFO("on SIGHUP a refused secret changes nothing: the old one keeps working");
    DaemonProcess daemon;
    INFO(daemon.log());
    REQUIRE(daemon.started());
    REQUIRE(chmod(daemon.secret_file().c_str(), 0644) == 0);
    REQUIRE(daemon.send_signal(SIGHUP));
    CHECK(daemon.wait_for_log("has mode 0644", 10s));
    CHECK(accepted(try_token(daemon.ws_options(), daemon.token("erin"), false)));
    REQUIRE(chmod(daemon.secret_file().c_str(), 0600) == 0);
    write_file(daemon.secret_file(), "short\n");
    REQUIRE(daemon.send_signal(SIGHUP));
    CHECK(daemon.wait_for_log("holds 5 bytes", 10s));
    CHECK(accepted(try_token(daemon.ws_options(), daemon.token("erin"), false)));
    CHECK(daemon.running());
  }
}

// ---- 4. scopes x requests ------------------------------------------------------------------------------

TEST_CASE("security: every scope x request cell is allowed or forbidden as documented - admin reaches other users") {
  DaemonProcess daemon;
  INFO(daemon.log());
  REQUIRE(daemon.started());
  auto owner = connect_user(daemon, "olivia");
  auto lifecycle = owner->request("subscribe", {{"channel", "shell:terminals"}});
  REQUIRE(lifecycle);
  REQUIRE((*lifecycle)["type"] == "subscribed");
  Json target = owner->create_terminal();
  const std::string id = target.value("id", "");
  REQUIRE_FALSE(id.empty());

  struct Row {
    std::string scope;
    bool create, read, write;
  };
  // Tokens of the owner herself, so that the scope alone decides.
  const std::vector<Row> rows = {
      {"terminal:create", true, false, false},
      {"terminal:read", false, true, false},
      {"terminal:write", false, false, true},
      {"git:run", false, false, false},
      {"admin", true, true, true},
      {"", false, false, false},
      {"superuser root", false, false, false},  // unknown names count for nothing
      {"terminal:create terminal:read", true, true, false},
  };
  std::size_t expected_created = 1;
  int cols = 80;
  int size_step = 0;
  for (const Row& row : rows) {
    CAPTURE(row.scope);
    Json victim = owner->create_terminal({{"command", sh("exec sleep 1000")}, {"subscribe", false}});
    ++expected_created;
    const std::string victim_id = victim.value("id", "");
    auto client = connect_user(daemon, "olivia", row.scope);

    auto cell = [&](std::string_view name, bool allowed, std::string_view ok_type, std::string_view type,
                    const Json& data) {
      auto reply = client->request(type, data);
      INFO("cell ", name, " (", allowed ? "allowed" : "forbidden", ") -> ", brief(reply));
      if (allowed) CHECK((reply && (*reply)["type"] == ok_type));
      else CHECK(is_error(reply, "forbidden"));
      return reply;
    };
    cell("shell.create subscribe:true", row.create && row.read, "shell.created", "shell.create",
         {{"command", sh("exec sleep 1000")}, {"subscribe", true}});
    if (row.create && row.read) ++expected_created;
    cell("shell.create subscribe:false", row.create, "shell.created", "shell.create",
         {{"command", sh("exec sleep 1000")}, {"subscribe", false}});
    if (row.create) ++expected_created;
    cell("subscribe terminal", row.read, "subscribed", "subscribe", {{"channel", channel_of(id)}});
    cell("subscribe shell:terminals", row.read, "subscribed", "subscribe", {{"channel", "shell:terminals"}});
    cell("shell.list", row.read, "shell.list", "shell.list", Json::object());
    cell("shell.pause", row.read, "ack", "shell.pause", {{"terminalId", id}});
    cell("shell.resume", row.read, "ack", "shell.resume", {{"terminalId", id}});
    cell("shell.input", row.write, "ack", "shell.input", {{"terminalId", id}, {"data", ": scope check\n"}});
    const int new_cols = 100 + ++size_step;
    cell("shell.resize", row.write, "ack", "shell.resize", {{"terminalId", id}, {"cols", new_cols}, {"rows", 30}});
    if (row.write) cols = new_cols;
    cell("shell.kill", row.write, "ack", "shell.kill", {{"terminalId", victim_id}, {"signal", "SIGTERM"}});
    // Sharing needs terminal:write: a read-only or scopeless token of the owner cannot hand out write.
    const std::string grantee = "grantee-" + std::to_string(size_step);
    cell("shell.share", row.write, "shell.shared", "shell.share", {{"terminalId", id}, {"user", grantee}, {"mode", "write"}});
    {
      auto other = connect_user(daemon, grantee, "terminal:read terminal:write");
      CHECK_MESSAGE(list_terminals(*other).count(id) == (row.write ? 1u : 0u), "shared with ", grantee);
    }

    auto listed = list_terminals(*owner);
    CHECK(listed[id].value("cols", 0) == cols);
    if (row.write) {
      CHECK(owner->wait_event("shell.exit", victim_id));
    } else {
      CHECK(listed[victim_id].value("state", "") == "running");
    }
    // Refused requests had no effect: nothing was created.
    CHECK(listed.size() == expected_created);
  }

  {
    INFO("admin of another user reads, writes, resizes and kills - a plain other user gets not_found");
    auto root = connect_user(daemon, "root", "admin");
    auto listed = list_terminals(*root);
    REQUIRE(listed.count(id) == 1);
    CHECK(listed[id]["owner"] == "olivia");
    auto subscribed = root->request("subscribe", {{"channel", channel_of(id)}});
    CHECK_MESSAGE(has_type(subscribed, "subscribed"), brief(subscribed));
    auto input = root->request("shell.input", {{"terminalId", id}, {"data", "echo admin-$((6*7))\n"}});
    CHECK_MESSAGE(has_type(input, "ack"), brief(input));
    CHECK(root->wait_output(id, "admin-42"));
    auto resize = root->request("shell.resize", {{"terminalId", id}, {"cols", 77}, {"rows", 22}});
    CHECK_MESSAGE(has_type(resize, "ack"), brief(resize));
    CHECK(list_terminals(*owner)[id]["cols"] == 77);

    auto mallory = connect_user(daemon, "mallory", "terminal:create terminal:read terminal:write git:run");
    CHECK(list_terminals(*mallory).count(id) == 0);
    for (const auto& [type, data] : std::vector<std::pair<std::string, Json>>{
             {"shell.input", {{"terminalId", id}, {"data", "x"}}},
             {"shell.resize", {{"terminalId", id}, {"cols", 90}, {"rows", 20}}},
             {"shell.kill", {{"terminalId", id}}},
             {"shell.pause", {{"terminalId", id}}},
             {"shell.share", {{"terminalId", id}, {"user", "mallory"}, {"mode", "write"}}},
         }) {
      auto reply = mallory->request(type, data);
      CHECK_MESSAGE(is_error(reply, "not_found"), type, " -> ", brief(reply));
    }
    auto peek = mallory->request("subscribe", {{"channel", channel_of(id)}});
    CHECK_MESSAGE(is_error(peek, "not_found", "data.channel"), brief(peek));

    auto kill = root->request("shell.kill", {{"terminalId", id}, {"signal", "SIGKILL"}});
    CHECK_MESSAGE(has_type(kill, "ack"), brief(kill));
    CHECK(root->wait_exit(id));
  }
  CHECK_MESSAGE(daemon.sanitizer_findings().empty(), daemon.sanitizer_findings());
}

// ---- 5. shell.share -------------------------------------------------------------------------------------

TEST_CASE("security: shell.share read, write and revoke - only the owner or an admin shares") {
  DaemonProcess daemon;
  INFO(daemon.log());
  REQUIRE(daemon.started());
  auto alice = connect_user(daemon, "alice");
  auto bob = connect_user(daemon, "bob");
  auto carol = connect_user(daemon, "carol");
  Json terminal = alice->create_terminal();
  const std::string id = terminal.value("id", "");
  Json carols = carol->create_terminal({{"command", sh("exec sleep 1000")}});
  const std::string carol_id = carols.value("id", "");

  auto share = [&](TestClient& by, const std::string& terminal_id, std::string_view user, std::string_view mode) {
    return by.request("shell.share", {{"terminalId", terminal_id}, {"user", user}, {"mode", mode}});
  };

  // Before any share bob cannot tell the terminal exists.
  CHECK(is_error(bob->request("subscribe", {{"channel", channel_of(id)}}), "not_found", "data.channel"));

  // read
  auto shared = share(*alice, id, "bob", "read");
  REQUIRE_MESSAGE(has_type(shared, "shell.shared"), brief(shared));
  CHECK((*shared)["data"] == Json{{"terminalId", id}, {"user", "bob"}, {"mode", "read"}});
  CHECK(list_terminals(*bob).count(id) == 1);
  CHECK(has_type(bob->request("subscribe", {{"channel", channel_of(id)}}), "subscribed"));
  CHECK(has_type(alice->request("shell.input", {{"terminalId", id}, {"data", "echo from-alice-$((40+2))\n"}}), "ack"));
  CHECK(bob->wait_output(id, "from-alice-42"));
  CHECK(is_error(bob->request("shell.input", {{"terminalId", id}, {"data", "echo nope\n"}}), "forbidden"));
  CHECK(is_error(bob->request("shell.resize", {{"terminalId", id}, {"cols", 90}, {"rows", 20}}), "forbidden"));
  CHECK(is_error(bob->request("shell.kill", {{"terminalId", id}}), "forbidden"));
  CHECK(has_type(bob->request("shell.pause", {{"terminalId", id}}), "ack"));
  CHECK(has_type(bob->request("shell.resume", {{"terminalId", id}}), "ack"));
  CHECK(list_terminals(*alice)[id]["cols"] == 80);

  // A non-owner cannot share, not even a terminal shared with it; other terminals stay not_found.
  CHECK(is_error(share(*bob, id, "carol", "read"), "forbidden"));
  CHECK(is_error(share(*bob, id, "bob", "write"), "forbidden"));
  CHECK(is_error(carol->request("subscribe", {{"channel", channel_of(id)}}), "not_found"));
  CHECK(is_error(share(*alice, carol_id, "alice", "write"), "not_found"));
  CHECK(is_error(share(*bob, carol_id, "bob", "read"), "not_found"));
  CHECK(is_error(bob->request("subscribe", {{"channel", channel_of(carol_id)}}), "not_found"));
  CHECK(is_error(share(*alice, "no-such-terminal", "bob", "read"), "not_found"));
  // Sharing with the owner is a bad request.
  CHECK(is_error(share(*alice, id, "alice", "read"), "bad_message", "data.user"));
  CHECK(is_error(share(*alice, id, "bob", "admin"), "bad_message", "data.mode"));

  // write: bob types and alice sees it.
  CHECK(has_type(share(*alice, id, "bob", "write"), "shell.shared"));
  CHECK(has_type(bob->request("shell.input", {{"terminalId", id}, {"data", "echo from-bob-$((2+3))\n"}}), "ack"));
  CHECK(alice->wait_output(id, "from-bob-5"));
  CHECK(has_type(bob->request("shell.resize", {{"terminalId", id}, {"cols", 99}, {"rows", 33}}), "ack"));
  // The share does not lift bob's scopes: a read-only token of bob still cannot write.
  auto bob_reader = connect_user(daemon, "bob", "terminal:read");
  CHECK(is_error(bob_reader->request("shell.input", {{"terminalId", id}, {"data", "x"}}), "forbidden"));

  // Lowering write to read takes effect on the next request.
  CHECK(has_type(share(*alice, id, "bob", "read"), "shell.shared"));
  CHECK(is_error(bob->request("shell.input", {{"terminalId", id}, {"data", "echo late\n"}}), "forbidden"));

  // Revoke: the live subscription ends with unsubscribed {reason: revoked}; the terminal is gone for bob.
  const std::size_t from = bob->mark();
  CHECK(has_type(share(*alice, id, "bob", "none"), "shell.shared"));
  auto revoked = bob->wait_event("unsubscribed", {}, 5s, from);
  REQUIRE_MESSAGE(revoked, "no unsubscribed after the revoke");
  CHECK((*revoked)["data"]["channel"] == channel_of(id));
  CHECK((*revoked)["data"]["reason"] == "revoked");
  const std::size_t after_revoke = bob->mark();
  CHECK(has_type(alice->request("shell.input", {{"terminalId", id}, {"data", "echo after-revoke-$((1+1))\n"}}), "ack"));
  CHECK(alice->wait_output(id, "after-revoke-2"));
  bob->drain(200ms);
  for (std::size_t i = after_revoke; i < bob->history().size(); ++i) {
    CHECK_MESSAGE(bob->history()[i].value("type", "") != "shell.output", bob->history()[i].dump());
  }
  CHECK(is_error(bob->request("subscribe", {{"channel", channel_of(id)}}), "not_found"));
  CHECK(is_error(bob->request("shell.input", {{"terminalId", id}, {"data", "x"}}), "not_found"));
  CHECK(list_terminals(*bob).count(id) == 0);

  // An admin may share a terminal it does not own.
  auto root = connect_user(daemon, "root", "admin");
  CHECK(has_type(share(*root, id, "dave", "read"), "shell.shared"));
  auto dave = connect_user(daemon, "dave");
  CHECK(has_type(dave->request("subscribe", {{"channel", channel_of(id)}}), "subscribed"));
  CHECK(is_error(dave->request("shell.input", {{"terminalId", id}, {"data", "x"}}), "forbidden"));
  CHECK_MESSAGE(daemon.sanitizer_findings().empty(), daemon.sanitizer_findings());
}

// ---- 6. TLS ---------------------------------------------------------------------------------------------

TEST_CASE("security: TLS - https healthz, a wss session, plain HTTP refused, unix socket stays plain") {
  TempDir dir;
  REQUIRE(!dir.path().empty());
  make_self_signed(dir.path(), "server", "/CN=127.0.0.1");
  const fs::path unix_socket = dir / "plain.sock";
  DaemonProcess daemon({"--tls-cert", (dir / "server.crt").string(), "--tls-key", (dir / "server.key").string(),
                        "--listen", "unix:" + unix_socket.string()});
  INFO(daemon.log());
  REQUIRE(daemon.started());
  CHECK(daemon.log().find("listening on https://127.0.0.1:") != std::string::npos);

  // The server presents our certificate (it verifies against it) and answers /healthz.
  TlsResult health = https_get(daemon.port(), "/healthz", {dir / "server.crt", {}, {}});
  INFO("https: ", health.error);
  REQUIRE(health.response);
  CHECK(health.response->status == 200);
  CHECK(Json::parse(health.response->body, nullptr, false) == Json{{"status", "ok"}});

  // Plain HTTP and plain ws:// on the TLS port get nothing.
  auto plain = http_get(daemon.port(), "/healthz", 3s);
  CHECK_MESSAGE((!plain || plain->status != 200), "plain HTTP answered ", plain ? plain->status : 0);
  WsClient plain_ws;
  CHECK_FALSE(plain_ws.connect(daemon.ws_options(), 3s));

  {
    INFO("wss with the token in the Authorization header");
    TestClient client;
    WsOptions options = daemon.ws_options();
    options.tls = true;
    options.authorization = "Bearer " + daemon.token("alice");
    REQUIRE(client.connect(options));
    auto ok = client.wait_event("auth.ok");
    REQUIRE_MESSAGE(ok, "no auth.ok over wss");
    CHECK((*ok)["data"]["user"] == "alice");
    Json terminal = client.create_terminal({{"command", sh("echo tls-$((40+2))")}});
    const std::string id = terminal.value("id", "");
    CHECK(client.wait_output(id, "tls-42"));
    auto exit = client.wait_exit(id);
    REQUIRE(exit);
    CHECK((*exit)["exitCode"] == 0);
  }
  {
    INFO("wss with an auth message, then an interactive shell");
    TestClient client;
    WsOptions options = daemon.ws_options();
    options.tls = true;
    REQUIRE(client.connect(options));
    auto ok = client.request("auth", {{"token", daemon.token("bob")}});
    REQUIRE_MESSAGE((ok && (*ok)["type"] == "auth.ok"), brief(ok));
    Json terminal = client.create_terminal();
    const std::string id = terminal.value("id", "");
    auto input = client.request("shell.input", {{"terminalId", id}, {"data", "echo wss-$((6*7))\n"}});
    CHECK_MESSAGE(has_type(input, "ack"), brief(input));
    CHECK(client.wait_output(id, "wss-42"));
  }
  {
    INFO("over TLS the bearer.<jwt> subprotocol is refused");
    TestClient client;
    WsOptions options = daemon.ws_options();
    options.tls = true;
    options.subprotocols = "ptyhub.v1, bearer." + daemon.token("alice");
    if (client.connect(options, 3s)) {
      auto first = client.wait_for([](const Json&) { return true; }, 3s);
      CHECK_MESSAGE(!has_type(first, "auth.ok"), brief(first));
    }
  }
  {
    INFO("the unix socket of a TLS daemon speaks plain HTTP");
    auto response = unix_http_get(unix_socket, "/healthz");
    REQUIRE(response);
    CHECK(response->status == 200);
  }
  CHECK_MESSAGE(daemon.sanitizer_findings().empty(), daemon.sanitizer_findings());
}

// A server certificate and a daemon that requires client certificates of a test CA.
struct ClientCaSetup {
  TempDir dir;
  std::unique_ptr<DaemonProcess> daemon;

  ClientCaSetup() {
    REQUIRE(!dir.path().empty());
    make_self_signed(dir.path(), "server", "/CN=127.0.0.1");
    make_self_signed(dir.path(), "ca", "/CN=ptyhub-test-ca");
    make_signed_by(dir.path(), "ca", "client", "/CN=alice-laptop");
    make_self_signed(dir.path(), "rogue", "/CN=alice-laptop");
    daemon = std::make_unique<DaemonProcess>(std::vector<std::string>{
        "--tls-cert", (dir / "server.crt").string(), "--tls-key", (dir / "server.key").string(), "--tls-client-ca",
        (dir / "ca.crt").string()});
  }
  TlsResult get(const std::string& client) {
    if (client.empty()) return https_get(daemon->port(), "/healthz", {dir / "server.crt", {}, {}});
    const TlsOptions options{dir / "server.crt", dir / (client + ".crt"), dir / (client + ".key")};
    return https_get(daemon->port(), "/healthz", options);
  }
};

TEST_CASE("security: SIGHUP reloads the TLS certificate for new connections, live ones stay, a mismatched key changes nothing") {
  TempDir dir;
  REQUIRE(!dir.path().empty());
  make_self_signed(dir.path(), "old", "/CN=127.0.0.1");
  make_self_signed(dir.path(), "new", "/CN=127.0.0.1");
  const auto install = [&](const std::string& cert, const std::string& key) {
    fs::copy_file(dir / (cert + ".crt"), dir / "server.crt", fs::copy_options::overwrite_existing);
    fs::copy_file(dir / (key + ".key"), dir / "server.key", fs::copy_options::overwrite_existing);
  };
  install("old", "old");
  DaemonProcess daemon({"--tls-cert", (dir / "server.crt").string(), "--tls-key", (dir / "server.key").string()});
  INFO(daemon.log());
  REQUIRE(daemon.started());
  const auto served_by = [&](const std::string& name) {
    TlsResult result = https_get(daemon.port(), "/healthz", {dir / (name + ".crt"), {}, {}});
    return result.response && result.response->status == 200;
  };
  CHECK(served_by("old"));
  CHECK_FALSE(served_by("new"));

  TestClient client;
  WsOptions options = daemon.ws_options();
  options.tls = true;
  options.authorization = "Bearer " + daemon.token("alice");
  REQUIRE(client.connect(options));
  const std::string id = client.create_terminal().value("id", "");
  REQUIRE(!id.empty());

  install("new", "new");
  REQUIRE(daemon.send_signal(SIGHUP));
  REQUIRE(daemon.wait_for_log("SIGHUP: TLS certificate reloaded", 5s));
  CHECK(served_by("new"));
  CHECK_FALSE(served_by("old"));
  // The connection made before it goes on.
  CHECK(has_type(client.request("shell.input", {{"terminalId", id}, {"data", "echo still-$((6*7))\n"}}), "ack"));
  CHECK(client.wait_output(id, "still-42"));

  // A key of another certificate: refused, the one in use stays.
  install("old", "new");
  REQUIRE(daemon.send_signal(SIGHUP));
  REQUIRE(daemon.wait_for_log("SIGHUP: TLS certificate not reloaded", 5s));
  CHECK(daemon.log().find("cannot use the key") != std::string::npos);
  CHECK(served_by("new"));
  CHECK_MESSAGE(daemon.sanitizer_findings().empty(), daemon.sanitizer_findings());
}

TEST_CASE("security: tls_client_ca - a client without a certificate is refused, one of the CA is served") {
  ClientCaSetup setup;
  DaemonProcess& daemon = *setup.daemon;
  INFO(daemon.log());
  REQUIRE(daemon.started());

  TlsResult with_cert = setup.get("client");
  INFO("with a CA-signed certificate: ", with_cert.error);
  REQUIRE(with_cert.response);
  CHECK(with_cert.response->status == 200);

  TlsResult without = setup.get("");
  INFO("without a certificate: ", without.error);
  CHECK_FALSE(without.response);

  // A wss client without a certificate does not get a WebSocket.
  WsClient client;
  WsOptions options = daemon.ws_options();
  options.tls = true;
  options.authorization = "Bearer " + daemon.token("alice");
  if (client.connect(options, 3s)) {
    auto message = client.receive_json(2s);
    CHECK_MESSAGE(!(message && message->value("type", "") == "auth.ok"), "auth.ok without a client certificate");
  }
  CHECK(daemon.running());
  CHECK_MESSAGE(daemon.sanitizer_findings().empty(), daemon.sanitizer_findings());
}

// libwebsockets asks protocols[0] to confirm each client certificate and takes a 0 answer as valid: the
// daemon must pass OpenSSL's own verdict on.
TEST_CASE("security: tls_client_ca - a certificate of another issuer is refused") {
  ClientCaSetup setup;
  DaemonProcess& daemon = *setup.daemon;
  INFO(daemon.log());
  REQUIRE(daemon.started());

  TlsResult rogue = setup.get("rogue");
  INFO("with a self-signed certificate that the CA did not sign: ", rogue.error);
  CHECK_MESSAGE(!rogue.response, "served with status ", rogue.response ? rogue.response->status : 0);
  CHECK_MESSAGE(daemon.sanitizer_findings().empty(), daemon.sanitizer_findings());
}

// ---- 7. unix sockets --------------------------------------------------------------------------------------

TEST_CASE("security: unix socket - mode 0660, healthz, a WebSocket session, in use, stale and removed at shutdown") {
  TempDir dir;
  REQUIRE(!dir.path().empty());
  const fs::path socket_path = dir / "p.sock";
  DaemonProcess daemon({"--listen", "unix:" + socket_path.string(), "--max-connections-per-ip", "1"});
  INFO(daemon.log());
  REQUIRE(daemon.started());
  REQUIRE(daemon.wait_for_log("listening on unix:" + socket_path.string(), 5s));

  struct stat info {};
  REQUIRE(::lstat(socket_path.c_str(), &info) == 0);
  CHECK(S_ISSOCK(info.st_mode));
  CHECK((info.st_mode & 07777) == 0660);

  auto health = unix_http_get(socket_path, "/healthz");
  REQUIRE(health);
  CHECK(health->status == 200);
  CHECK(Json::parse(health->body, nullptr, false) == Json{{"status", "ok"}});

  WsOptions options = daemon.ws_options();
  options.unix_path = socket_path.string();
  {
    TestClient client;
    WsOptions with_header = options;
    with_header.authorization = "Bearer " + daemon.token("alice");
    REQUIRE_MESSAGE(client.connect(with_header), client.ws().connect_error());
    auto ok = client.wait_event("auth.ok");
    REQUIRE_MESSAGE(ok, "no auth.ok over the unix socket");
    Json terminal = client.create_terminal({{"command", sh("echo unix-$((40+2))")}});
    CHECK(client.wait_output(terminal.value("id", ""), "unix-42"));
    // Unix-socket clients have no address, so the per-address limit (1 here) does not apply to them.
    TestClient second;
    REQUIRE(second.connect(options));
    auto second_ok = second.request("auth", {{"token", daemon.token("bob")}});
    CHECK_MESSAGE(has_type(second_ok, "auth.ok"), brief(second_ok));
    CHECK(pongs(client));
  }

  {
    INFO("a second daemon on the same path fails with in use and leaves the socket alone");
    DaemonProcess second({"--listen", "unix:" + socket_path.string()}, 5s);
    auto status = second.wait_exit(10s);
    INFO(second.log());
    REQUIRE(status);
    CHECK((WIFEXITED(*status) && WEXITSTATUS(*status) != 0));
    CHECK(second.wait_for_log("in use", 5s));  // the log reader may get the last line just after the exit
    auto still = unix_http_get(socket_path, "/healthz");
    REQUIRE(still);
    CHECK(still->status == 200);
  }
  {
    INFO("a stale socket is replaced - a path that is not a socket is an error and stays");
    const fs::path stale = dir / "stale.sock";
    {
      DaemonProcess killed({"--listen", "unix:" + stale.string()});
      REQUIRE(killed.started());
      REQUIRE(killed.wait_for_log("listening on unix:", 5s));
      REQUIRE(killed.stop(SIGKILL).has_value());
    }
    REQUIRE(fs::exists(fs::symlink_status(stale)));
    DaemonProcess replacing({"--listen", "unix:" + stale.string()});
    INFO(replacing.log());
    REQUIRE(replacing.started());
    REQUIRE(replacing.wait_for_log("listening on unix:", 5s));
    auto response = unix_http_get(stale, "/healthz");
    REQUIRE(response);
    CHECK(response->status == 200);

    const fs::path regular = dir / "regular";
    write_file(regular, "not a socket");
    DaemonProcess refused({"--listen", "unix:" + regular.string()}, 5s);
    auto status = refused.wait_exit(10s);
    INFO(refused.log());
    REQUIRE(status);
    CHECK((WIFEXITED(*status) && WEXITSTATUS(*status) != 0));
    CHECK(read_file(regular) == "not a socket");
  }
  {
    INFO("the socket file is removed at shutdown");
    auto status = daemon.stop(SIGTERM, 10s);
    REQUIRE(status);
    CHECK((WIFEXITED(*status) && WEXITSTATUS(*status) == 0));
    CHECK_FALSE(fs::exists(fs::symlink_status(socket_path)));
  }
  CHECK_MESSAGE(daemon.sanitizer_findings().empty(), daemon.sanitizer_findings());
}

// ---- 8. limits ----------------------------------------------------------------------------------------------

// Opens a connection and waits for it to be closed (4429 expected); returns the client for inspection.
std::unique_ptr<TestClient> refused_connection(const WsOptions& options) {
  auto client = std::make_unique<TestClient>();
  client->connect(options);
  // Read until the close, so that what it was told before goes to history().
  client->wait_for([](const Json&) { return false; }, 5s);
  client->ws().wait_closed(5s);
  return client;
}

// The refused connection was told why before the close: error limit_exceeded naming the limit.
bool says_limit_exceeded(TestClient& client, std::string_view limit) {
  for (const Json& message : client.history()) {
    if (message.value("type", "") != "error" || !message.contains("data")) continue;
    if (message["data"].value("code", "") == "limit_exceeded" &&
        message["data"].value("message", "").find(limit) != std::string::npos) {
      return true;
    }
  }
  INFO("history: ", Json(client.history()).dump());
  return false;
}

// With one of two connections closed, the daemon counts one, and `user` gets a working connection again.
void check_room_after_close(DaemonProcess& daemon, TestClient& closing, std::string_view user) {
  closing.ws().close();
  CHECK(closing.ws().wait_closed(5s));
  CHECK(eventually([&] { return metric(daemon.port(), "ptyhub_connections") == 1; }, 5s));
  auto again = connect_user(daemon, user);
  CHECK(pongs(*again));
}

TEST_CASE("security: max_connections - the connection over the limit is closed 4429, a freed slot is reusable") {
  DaemonProcess daemon({"--max-connections", "2"});
  INFO(daemon.log());
  REQUIRE(daemon.started());
  auto first = connect_user(daemon, "alice");
  auto second = connect_user(daemon, "bob");
  WsOptions options = daemon.ws_options();
  options.authorization = "Bearer " + daemon.token("carol");
  auto third = refused_connection(options);
  CHECK(third->ws().close_code() == 4429);
  for (const Json& message : third->history()) CHECK(message.value("type", "") != "auth.ok");
  CHECK(says_limit_exceeded(*third, "max_connections (2)"));
  CHECK(pongs(*first));
  CHECK(pongs(*second));

  check_room_after_close(daemon, *first, "carol");
  CHECK_MESSAGE(daemon.sanitizer_findings().empty(), daemon.sanitizer_findings());
}

TEST_CASE("security: max_connections_per_ip with limit_loopback - the third connection from 127.0.0.1 is closed 4429 and counted") {
  DaemonProcess daemon({"--max-connections-per-ip", "2", "--limit-loopback", "true"});
  INFO(daemon.log());
  REQUIRE(daemon.started());
  REQUIRE(metric(daemon.port(), "ptyhub_peer_refusals_total") == 0);
  auto first = connect_user(daemon, "alice");
  auto second = connect_user(daemon, "alice");
  WsOptions options = daemon.ws_options();
  options.authorization = "Bearer " + daemon.token("alice");
  auto third = refused_connection(options);
  CHECK(third->ws().close_code() == 4429);
  CHECK(says_limit_exceeded(*third, "max_connections_per_ip 2"));
  auto fourth = refused_connection(options);
  CHECK(fourth->ws().close_code() == 4429);
  CHECK(metric(daemon.port(), "ptyhub_peer_refusals_total") == 2);
  CHECK(pongs(*first));
  CHECK(pongs(*second));
  {
    options.source_address = "127.0.0.2";  // another address has its own count
    TestClient other;
    REQUIRE(other.connect(options));
    CHECK(other.wait_for([](const Json& m) { return m.value("type", "") == "auth.ok"; }, 5s).has_value());
    other.ws().close(1000, "done");
    CHECK(other.ws().wait_closed(5s));
  }
  REQUIRE(eventually([&] { return metric(daemon.port(), "ptyhub_connections") == 2; }, 5s));

  check_room_after_close(daemon, *second, "alice");
  CHECK_MESSAGE(daemon.sanitizer_findings().empty(), daemon.sanitizer_findings());
}

TEST_CASE("security: loopback is not limited per address unless limit_loopback is set") {
  DaemonProcess daemon({"--max-connections-per-ip", "1", "--auth-failures-per-ip", "1"});
  INFO(daemon.log());
  REQUIRE(daemon.started());
  const std::string bad = ptyhub::auth::mint_token("wrong-secret", "alice", kUserScopes, now_seconds(), 600);
  for (int i = 0; i < 4; ++i) check_rejected(try_token(daemon.ws_options(), bad, true), "bad signature");
  auto first = connect_user(daemon, "alice");
  auto second = connect_user(daemon, "alice");
  auto third = connect_user(daemon, "bob");
  CHECK(pongs(*first));
  CHECK(pongs(*third));
  CHECK(metric(daemon.port(), "ptyhub_peer_refusals_total") == 0);
  CHECK(metric(daemon.port(), "ptyhub_auth_delays_total") == 0);
  CHECK_MESSAGE(daemon.sanitizer_findings().empty(), daemon.sanitizer_findings());
}

TEST_CASE("security: 100 rejected tokens from one address - a valid token from it is still accepted, after a bounded delay, another address is never delayed") {
  DaemonProcess daemon({"--auth-failures-per-ip", "3", "--limit-loopback", "true"});
  INFO(daemon.log());
  REQUIRE(daemon.started());
  const std::string bad = ptyhub::auth::mint_token("wrong-secret", "alice", kUserScopes, now_seconds(), 600);
  std::vector<std::unique_ptr<TestClient>> attempts;
  for (int i = 0; i < 100; ++i) {
    WsOptions options = daemon.ws_options();
    options.authorization = "Bearer " + bad;
    auto client = std::make_unique<TestClient>();
    REQUIRE(client->connect(options));
    attempts.push_back(std::move(client));
  }
  // Every one of them is rejected (some after a delay), none is refused for its address.
  CHECK(eventually([&] { return metric(daemon.port(), "ptyhub_auth_failures_total") == 100; }, 30s));
  CHECK(metric(daemon.port(), "ptyhub_peer_refusals_total") == 0);
  for (auto& attempt : attempts) {
    CHECK(attempt->ws().wait_closed(10s));
    CHECK(attempt->ws().close_code() == 4401);
  }
  attempts.clear();
  const std::uint64_t delays = metric(daemon.port(), "ptyhub_auth_delays_total").value_or(0);
  CHECK(delays > 0);

  {
    INFO("a valid token from the same address: accepted after at most the bounded delay");
    WsOptions options = daemon.ws_options();
    options.authorization = "Bearer " + daemon.token("alice");
    TestClient client;
    REQUIRE(client.connect(options));
    const auto reply = client.wait_for([](const Json&) { return true; }, 10s);
    CHECK_MESSAGE((reply && reply->value("type", "") == "auth.ok"), brief(reply));
    CHECK(metric(daemon.port(), "ptyhub_auth_delays_total") == delays + 1);
  }
  {
    INFO("a valid token from another address: never delayed");
    WsOptions options = daemon.ws_options();
    options.source_address = "127.0.0.2";
    options.authorization = "Bearer " + daemon.token("bob");
    TestClient client;
    REQUIRE(client.connect(options));
    const auto reply = client.wait_for([](const Json&) { return true; }, 5s);
    CHECK_MESSAGE((reply && reply->value("type", "") == "auth.ok"), brief(reply));
    CHECK(metric(daemon.port(), "ptyhub_auth_delays_total") == delays + 1);
  }
  {
    INFO("an auth message sent during the delay is held, then answered");
    WsOptions options = daemon.ws_options();
    TestClient client;
    REQUIRE(client.connect(options));
    const auto reply = client.request_with_id("auth", {{"token", daemon.token("carol")}}, "auth-1", 10s);
    CHECK_MESSAGE((reply && reply->value("type", "") == "auth.ok"), brief(reply));
    CHECK(metric(daemon.port(), "ptyhub_auth_delays_total") == delays + 2);
  }
  CHECK(metric(daemon.port(), "ptyhub_peer_refusals_total") == 0);
  CHECK_MESSAGE(daemon.sanitizer_findings().empty(), daemon.sanitizer_findings());
}

TEST_CASE("security: max_terminals and max_terminals_per_user answer limit_exceeded and create nothing") {
  DaemonProcess daemon({"--max-terminals", "2", "--max-terminals-per-user", "1"});
  INFO(daemon.log());
  REQUIRE(daemon.started());
  auto alice = connect_user(daemon, "alice");
  auto bob = connect_user(daemon, "bob");
  auto carol = connect_user(daemon, "carol");
  const Json sleeper = {{"command", sh("exec sleep 1000")}};
  alice->create_terminal(sleeper);
  auto second = alice->create(sleeper);
  CHECK_MESSAGE(is_error(second, "limit_exceeded"), brief(second));
  bob->create_terminal(sleeper);
  auto total = carol->create(sleeper);
  CHECK_MESSAGE(is_error(total, "limit_exceeded"), brief(total));
  CHECK(list_terminals(*alice).size() == 1);
  CHECK(list_terminals(*carol).empty());
  CHECK(metric(daemon.port(), "ptyhub_terminals") == 2);
  CHECK_MESSAGE(daemon.sanitizer_findings().empty(), daemon.sanitizer_findings());
}

TEST_CASE("security: SIGHUP applies a new max_terminals_per_user from the config file - a broken file changes nothing") {
  TempDir dir;
  REQUIRE(!dir.path().empty());
  const fs::path config = dir / "ptyhub.toml";
  write_file(config, "max_terminals_per_user = 1\n");
  DaemonProcess daemon({"--config", config.string()});
  INFO(daemon.log());
  REQUIRE(daemon.started());
  auto alice = connect_user(daemon, "alice");
  const Json sleeper = {{"command", sh("exec sleep 1000")}};
  alice->create_terminal(sleeper);
  CHECK(is_error(alice->create(sleeper), "limit_exceeded"));

  // ring_buffer_bytes needs a restart (listen would not do: the harness's --listen flag overrides the file).
  write_file(config, "max_terminals_per_user = 3\nring_buffer_bytes = \"2MiB\"\n");
  REQUIRE(daemon.send_signal(SIGHUP));
  REQUIRE(daemon.wait_for_log("SIGHUP: settings reloaded: max_terminals_per_user", 10s));
  CHECK(daemon.wait_for_log("only applied by a restart: ring_buffer_bytes", 5s));
  auto second = alice->create(sleeper);
  CHECK_MESSAGE((second && (*second)["type"] == "shell.created"), brief(second));
  CHECK(pongs(*alice));  // the connection lived through the reload

  write_file(config, "max_terminals_per_user = \"many\"\n");
  REQUIRE(daemon.send_signal(SIGHUP));
  REQUIRE(daemon.wait_for_log("SIGHUP: nothing reloaded: settings: ", 10s));
  alice->create_terminal(sleeper);  // the third of 3 still fits
  CHECK(is_error(alice->create(sleeper), "limit_exceeded"));
  CHECK(daemon.running());
  CHECK_MESSAGE(daemon.sanitizer_findings().empty(), daemon.sanitizer_findings());
}

// ---- 9. audit log ---------------------------------------------------------------------------------------------

TEST_CASE("security: the audit log records auth, creation, share and kill - never a token") {
  DaemonProcess daemon;
  INFO(daemon.log());
  REQUIRE(daemon.started());

  const std::string good = daemon.token("alice");
  auto alice = connect_with_token(daemon.ws_options(), good);
  REQUIRE(daemon.wait_for_log("audit event=auth.ok user=\"alice\" peer=\"127.0.0.1", 5s));

  const std::string foreign = ptyhub::auth::mint_token("wrong-secret", "alice", kUserScopes, now_seconds(), 600);
  check_rejected(try_token(daemon.ws_options(), foreign, false), "bad signature");
  check_rejected(try_token(daemon.ws_options(), foreign, true), "bad signature");
  REQUIRE(wait_log_count(daemon, "audit event=auth.failed", 2));

  CHECK(has_type(alice->request("auth", {{"token", daemon.token("alice", kUserScopes, 7200)}}), "auth.ok"));
  REQUIRE(daemon.wait_for_log("audit event=auth.refresh user=\"alice\"", 5s));

  Json terminal = alice->create_terminal();
  const std::string id = terminal.value("id", "");
  REQUIRE(daemon.wait_for_log("audit event=terminal.created user=\"alice\"", 5s));
  CHECK(daemon.log().find("terminal=\"" + id + "\"") != std::string::npos);

  auto shared = alice->request("shell.share", {{"terminalId", id}, {"user", "bob"}, {"mode", "read"}});
  CHECK(has_type(shared, "shell.shared"));
  REQUIRE(daemon.wait_for_log("audit event=terminal.shared user=\"alice\"", 5s));
  CHECK(daemon.log().find("with=\"bob\" mode=\"read\"") != std::string::npos);

  CHECK(has_type(alice->request("shell.kill", {{"terminalId", id}, {"signal", "SIGTERM"}}), "ack"));
  REQUIRE(daemon.wait_for_log("audit event=terminal.killed user=\"alice\"", 5s));
  CHECK(daemon.log().find("signal=\"SIGTERM\"") != std::string::npos);

  // A user name cannot forge fields or lines.
  auto forger = connect_with_token(daemon.ws_options(), daemon.token("eve\" event=auth.ok user=\"root\nx"));
  REQUIRE(daemon.wait_for_log("user=\"eve\\\" event=auth.ok user=\\\"root?x\"", 5s));

  const std::string log = daemon.log();
  std::istringstream lines(log);
  std::size_t failures = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.find("audit event=auth.failed") == std::string::npos) continue;
    ++failures;
    CHECK_MESSAGE(line.find("reason=\"bad signature\"") != std::string::npos, line);
    CHECK_MESSAGE(line.find("peer=\"127.0.0.1") != std::string::npos, line);
  }
  CHECK(failures == 2);
  for (const std::string* token : {&good, &foreign}) {
    CHECK(log.find(*token) == std::string::npos);
    CHECK(log.find(token->substr(token->rfind('.') + 1)) == std::string::npos);  // not even the signature
    CHECK(log.find(token->substr(token->find('.') + 1, 20)) == std::string::npos);  // nor the claims
  }
  CHECK_MESSAGE(daemon.sanitizer_findings().empty(), daemon.sanitizer_findings());
}

}  // namespace
}  // namespace ptyhub::test
