// The edge in front of real infrastructure (docs/protocol.md §1 Endpoints and §3 Limits): a sub-path
// (base_path), client addresses from trusted proxies only, request heads libwebsockets would leave
// unanswered, a flood of unfinished heads from one address, and a strict client seeing a refusal.
// The real-nginx browser test is tests/web/proxy.mjs.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include <filesystem>
#include <fstream>

#include "tests/support/daemon_process.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_client.hpp"

namespace ptyhub::test {
namespace {

namespace fs = std::filesystem;

void write_file(const fs::path& path, std::string_view content) { std::ofstream(path) << content; }

// The `peer=` of the audit line of `event` for `user`; empty when there is none.
std::string audit_peer(const std::string& log, std::string_view event, std::string_view user) {
  const std::string marker = "audit event=" + std::string(event) + " user=\"" + std::string(user) + "\" peer=\"";
  const size_t at = log.find(marker);
  if (at == std::string::npos) return {};
  const size_t start = at + marker.size();
  return log.substr(start, log.find('"', start) - start);
}

// An authenticated client from `source` with extra request headers; nullptr when it did not get auth.ok.
std::unique_ptr<TestClient> connect_via(const DaemonProcess& daemon, const std::string& user, const std::string& source,
                                        std::vector<std::pair<std::string, std::string>> headers) {
  WsOptions options = daemon.ws_options();
  options.source_address = source;
  options.headers = std::move(headers);
  options.authorization = "Bearer " + daemon.token(user);
  auto client = std::make_unique<TestClient>();
  if (!client->connect(options)) return nullptr;
  auto reply = client->wait_for([](const Json&) { return true; }, 5s);
  if (!reply || reply->value("type", "") != "auth.ok") return nullptr;
  return client;
}

// A raw TCP socket from `source` to 127.0.0.1:<port>; -1 on failure.
int connect_from(const char* source, int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in local{};
  local.sin_family = AF_INET;
  inet_pton(AF_INET, source, &local.sin_addr);
  sockaddr_in remote{};
  remote.sin_family = AF_INET;
  remote.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &remote.sin_addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0 ||
      connect(fd, reinterpret_cast<sockaddr*>(&remote), sizeof remote) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Whatever arrives on `fd` within `timeout` (until the peer closes or nothing more comes).
std::string read_some(int fd, std::chrono::milliseconds timeout) {
  std::string out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char buffer[4096];
    const ssize_t n = read(fd, buffer, sizeof buffer);
    if (n <= 0) break;
    out.append(buffer, static_cast<size_t>(n));
  }
  return out;
}

TEST_CASE("proxy: X-Forwarded-For from a trusted proxy names the client in audit and limits - from anyone else it is ignored") {
  DaemonProcess daemon({"--trusted-proxy", "127.0.0.2", "--max-connections-per-ip", "1"});
  INFO(daemon.log());
  REQUIRE(daemon.started());

  auto proxied = connect_via(daemon, "alice", "127.0.0.2", {{"x-forwarded-for:", "198.51.100.1, 203.0.113.7"}});
  REQUIRE(proxied);
  CHECK(daemon.wait_for_log("audit event=auth.ok user=\"alice\"", 5s));
  CHECK(audit_peer(daemon.log(), "auth.ok", "alice") == "203.0.113.7");

  auto forged = connect_via(daemon, "mallory", "127.0.0.1", {{"x-forwarded-for:", "198.51.100.9"}});
  REQUIRE(forged);
  CHECK(daemon.wait_for_log("audit event=auth.ok user=\"mallory\"", 5s));
  CHECK(audit_peer(daemon.log(), "auth.ok", "mallory") == "127.0.0.1");
  CHECK(daemon.log().find("198.51.100.9") == std::string::npos);

  // Users behind the proxy are counted one by one: a second connection of 203.0.113.7 is over its limit
  // of one, another client address behind the same proxy is not.
  WsOptions again = daemon.ws_options();
  again.source_address = "127.0.0.2";
  again.headers = {{"x-forwarded-for:", "203.0.113.7"}};
  again.authorization = "Bearer " + daemon.token("alice");
  TestClient second;
  REQUIRE(second.connect(again));
  CHECK(second.ws().wait_closed(5s));
  CHECK(second.ws().close_code() == 4429);
  auto neighbour = connect_via(daemon, "bob", "127.0.0.2", {{"x-forwarded-for:", "203.0.113.8"}});
  CHECK(neighbour != nullptr);
  CHECK(daemon.wait_for_log("audit event=auth.ok user=\"bob\"", 5s));  // the log arrives through a pipe
  CHECK(audit_peer(daemon.log(), "auth.ok", "bob") == "203.0.113.8");
  CHECK_MESSAGE(daemon.sanitizer_findings().empty(), daemon.sanitizer_findings());
}

TEST_CASE("proxy: Forwarded (RFC 7239) is read too, and a unix-socket proxy can be trusted") {
  TempDir dir;
  REQUIRE(!dir.path().empty());
  const std::string socket_path = (dir / "ptyhub.sock").string();
  DaemonProcess daemon({"--listen", "127.0.0.1:0", "--listen", "unix:" + socket_path, "--trusted-proxy", "unix"});
  INFO(daemon.log());
  REQUIRE(daemon.started());
  // started() sees the first TCP listener; the unix one is announced after it.
  REQUIRE(daemon.wait_for_log("listening on unix:" + socket_path, 5s));
  WsOptions options = daemon.ws_options();
  options.unix_path = socket_path;
  options.headers = {{"forwarded:", "for=\"[2001:db8::5]:4711\";proto=https"}};
  options.authorization = "Bearer " + daemon.token("carol");
  TestClient client;
  REQUIRE(client.connect(options));
  REQUIRE(client.wait_for([](const Json& m) { return m.value("type", "") == "auth.ok"; }, 5s));
  CHECK(daemon.wait_for_log("user=\"carol\"", 5s));
  CHECK(audit_peer(daemon.log(), "auth.ok", "carol") == "2001:db8::5");
}

TEST_CASE("proxy: behind a trusted proxy the Origin is checked against X-Forwarded-Host and -Proto") {
  DaemonProcess daemon({"--trusted-proxy", "127.0.0.2"});
  INFO(daemon.log());
  REQUIRE(daemon.started());
  const auto upgrade_status = [&](const char* source, const char* proto) {
    WsOptions options = daemon.ws_options();
    options.source_address = source;
    options.origin = "https://term.example.org";
    options.headers = {{"x-forwarded-host:", "term.example.org"}, {"x-forwarded-proto:", proto}};
    options.authorization = "Bearer " + daemon.token("alice");
    TestClient client;
    const bool upgraded = client.connect(options);
    return upgraded ? 101 : client.ws().http_status_on_failure();
  };
  CHECK(upgrade_status("127.0.0.2", "https") == 101);
  CHECK(upgrade_status("127.0.0.2", "http") == 403);   // the page was not loaded over https
  CHECK(upgrade_status("127.0.0.1", "https") == 403);  // not a proxy: its Host header counts
}

TEST_CASE("base_path: every route and the WebSocket are under it") {
  DaemonProcess daemon({"--base-path", "/term/"});
  INFO(daemon.log());
  REQUIRE(daemon.started());
  auto health = http_get(daemon.port(), "/term/healthz");
  REQUIRE(health);
  CHECK(health->status == 200);
  auto page = http_get(daemon.port(), "/term/");
  REQUIRE(page);
  CHECK(page->status == 200);
  CHECK(page->headers["content-type"].starts_with("text/html"));
  auto bare = http_get(daemon.port(), "/term");
  REQUIRE(bare);
  CHECK(bare->status == 308);
  CHECK(bare->headers["location"] == "/term/");
  for (const char* path : {"/healthz", "/", "/metrics", "/terminal/healthz"}) {
    CAPTURE(path);
    auto missing = http_get(daemon.port(), path);
    REQUIRE(missing);
    CHECK(missing->status == 404);
  }
  WsOptions options = daemon.ws_options();
  options.path = "/term/ws";
  options.authorization = "Bearer " + daemon.token("alice");
  TestClient client;
  REQUIRE(client.connect(options));
  const Json terminal = client.create_terminal();
  REQUIRE(terminal.contains("id"));
  client.notify("shell.input", {{"terminalId", terminal["id"]}, {"data", "echo sub-$((6*7))\n"}});
  CHECK(client.wait_output(terminal["id"], "sub-42"));
  options.path = "/ws";
  TestClient root;
  CHECK_FALSE(root.connect(options));
  CHECK(root.ws().http_status_on_failure() == 404);
}

TEST_CASE("heads: a last header lws half-knows, a 20 KB header and a malformed line are answered at once") {
  DaemonProcess daemon;
  INFO(daemon.log());
  REQUIRE(daemon.started());
  // Without the daemon's own check each of these waits for the 10 s head timeout: 2 s is plenty.
  auto x_a = http_exchange(daemon.port(), "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: b\r\n\r\n", 2s);
  REQUIRE(x_a);
  CHECK(x_a->status == 200);
  auto x = http_exchange(daemon.port(), "GET /healthz HTTP/1.1\r\nHost: x\r\nX: 1\r\n\r\n", 2s);
  REQUIRE(x);
  CHECK(x->status == 200);
  auto big = http_exchange(daemon.port(), "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n", 2s);
  REQUIRE(big);
  CHECK(big->status == 431);
  CHECK(big->status_line == "HTTP/1.1 431 Request Header Fields Too Large");
  CHECK(big->body.find("\"error\":\"too_large\"") != std::string::npos);
  auto total = http_exchange(daemon.port(), "GET /healthz HTTP/1.1\r\nHost: x\r\nX-One: " + std::string(7000, 'a') +
                                                "\r\nX-Two: " + std::string(7000, 'b') + "\r\n\r\n", 2s);
  REQUIRE(total);
  CHECK(total->status == 431);
  auto malformed = http_exchange(daemon.port(), "GET /healthz HTTP/1.1\r\nHost: x\r\nno colon\r\n\r\n", 2s);
  REQUIRE(malformed);
  CHECK(malformed->status == 400);
  CHECK(malformed->headers["content-length"] == std::to_string(malformed->body.size()));
}

TEST_CASE("heads: 1,100 unfinished request heads from one address - a client from 127.0.0.2 still connects and gets a shell") {
  rlimit files{};
  REQUIRE(getrlimit(RLIMIT_NOFILE, &files) == 0);
  if (files.rlim_cur < 4096 && files.rlim_max >= 4096) {
    files.rlim_cur = 4096;
    REQUIRE(setrlimit(RLIMIT_NOFILE, &files) == 0);
  }
  REQUIRE(files.rlim_cur >= 1200);
  DaemonProcess daemon;
  INFO(daemon.log());
  REQUIRE(daemon.started());
  std::vector<int> flood;
  for (int i = 0; i < 1100; ++i) {
    const int fd = connect_from("127.0.0.1", daemon.port());
    REQUIRE(fd >= 0);
    const std::string partial = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
    REQUIRE(write(fd, partial.data(), partial.size()) == static_cast<ssize_t>(partial.size()));
    flood.push_back(fd);
  }
  {
    WsOptions options = daemon.ws_options();
    options.source_address = "127.0.0.2";
    options.authorization = "Bearer " + daemon.token("alice");
    TestClient client;
    REQUIRE(client.connect(options));
    const Json terminal = client.create_terminal();
    REQUIRE(terminal.contains("id"));
    client.notify("shell.input", {{"terminalId", terminal["id"]}, {"data", "echo through-$((6*7))\n"}});
    CHECK(client.wait_output(terminal["id"], "through-42"));
  }
  // The oldest of the flood were shed with a reason.
  const std::string first = read_some(flood.front(), 2s);
  CHECK(first.starts_with("HTTP/1.1 429 Too Many Requests\r\n"));
  CHECK(first.find("too many unfinished requests") != std::string::npos);
  for (int fd : flood) close(fd);
  CHECK(daemon.running());
  CHECK_MESSAGE(daemon.sanitizer_findings().empty(), daemon.sanitizer_findings());
}

TEST_CASE("strict client: Python's websockets sees the 403 of a foreign Origin and its reason") {
  if (access("/usr/bin/python3", X_OK) != 0 || std::system("/usr/bin/python3 -c 'import websockets' 2>/dev/null") != 0) {
    FAIL("needs /usr/bin/python3 with websockets (scripts/install-deps.sh installs python3-websockets)");
  }
  DaemonProcess daemon;
  INFO(daemon.log());
  REQUIRE(daemon.started());
  TempDir dir;
  const fs::path script = dir / "origin.py";
  write_file(script,
             "import asyncio, sys, websockets\n"
             "async def main():\n"
             "    try:\n"
             "        async with websockets.connect(sys.argv[1], origin='http://evil.example',\n"
             "                                      subprotocols=['ptyhub.v1']):\n"
             "            print('upgraded')\n"
             "    except websockets.exceptions.InvalidStatusCode as e:\n"
             "        print('status', e.status_code)\n"
             "asyncio.run(main())\n");
  const std::string command = "/usr/bin/python3 " + script.string() + " ws://127.0.0.1:" +
                              std::to_string(daemon.port()) + "/ws 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string output;
  char buffer[256];
  while (fgets(buffer, sizeof buffer, pipe) != nullptr) output += buffer;
  const int status = pclose(pipe);
  INFO(output);
  CHECK(WIFEXITED(status));
  CHECK(output == "status 403\n");
}

}  // namespace
}  // namespace ptyhub::test
