// Cluster mode (docs/cluster.md) with a real redis-server and real daemons: any client reaches any
// terminal on any node with the same bytes, offsets and events; requests reach the owner in order; the
// loss of a node is explicit.
#include <doctest/doctest.h>
#include <signal.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/daemon_process.hpp"
#include "tests/support/redis_server.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_client.hpp"

namespace ptyhub::test {
namespace {

// Nodes A, B, C (as many as asked) on one Redis, sharing one JWT secret (A's).
struct Cluster {
  RedisServer redis;
  std::vector<std::unique_ptr<DaemonProcess>> nodes;

  explicit Cluster(int count, std::vector<std::string> extra = {}) {
    REQUIRE(redis.ok());
    for (int i = 0; i < count; ++i) add(std::string(1, static_cast<char>('a' + i)), extra);
  }
  DaemonProcess& add(const std::string& name, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--redis-url", redis.url(), "--node-id", name};
    if (!nodes.empty()) args.insert(args.end(), {"--jwt-secret-file", nodes.front()->secret_file().string()});
    args.insert(args.end(), extra.begin(), extra.end());
    nodes.push_back(std::make_unique<DaemonProcess>(args));
    REQUIRE(nodes.back()->started());
    REQUIRE(eventually([&] { return ready(*nodes.back()); }, 10s));
    return *nodes.back();
  }
  static bool ready(const DaemonProcess& node) {
    auto response = http_get(node.port(), "/readyz", 1s);
    return response && response->status == 200;
  }
  DaemonProcess& operator[](size_t i) { return *nodes[i]; }
  std::unique_ptr<TestClient> client(size_t node, const std::string& user, std::string_view scope = kUserScopes) {
    auto c = std::make_unique<TestClient>();
    WsOptions options = nodes[node]->ws_options();
    options.authorization = "Bearer " + nodes.front()->token(user, scope);
    REQUIRE(c->connect(options));
    REQUIRE(c->wait_for([](const Json& m) { return m.value("type", "") == "auth.ok"; }, 5s));
    return c;
  }
};

// The terminal `id` as `client` lists it; null when it is not listed.
Json listed(TestClient& client, const std::string& id) {
  const auto reply = client.request("shell.list");
  if (!reply || !(*reply)["data"].contains("terminals")) return nullptr;
  for (const Json& terminal : (*reply)["data"]["terminals"]) {
    if (terminal.value("id", "") == id) return terminal;
  }
  return nullptr;
}

Json subscribe(TestClient& client, const std::string& id, std::optional<uint64_t> since = std::nullopt) {
  Json data = {{"channel", "shell:terminal:" + id}};
  if (since) data["since"] = *since;
  auto reply = client.request("subscribe", data);
  REQUIRE(reply);
  return *reply;
}

// A counter of `node`'s /metrics; -1 when it cannot be read.
long long metric(const DaemonProcess& node, const std::string& name) {
  auto response = http_get(node.port(), "/metrics", 2s);
  if (!response) return -1;
  const std::string key = "\n" + name + " ";
  const std::string body = "\n" + response->body;
  const size_t at = body.find(key);
  return at == std::string::npos ? -1 : std::atoll(body.c_str() + at + key.size());
}

// What `seq 1 n` prints on a PTY (LF -> CRLF).
std::string seq_output(int n) {
  std::string out;
  for (int i = 1; i <= n; ++i) out += std::to_string(i) + "\r\n";
  return out;
}

// A shell of alice's on node A, with alice on A and on B; B subscribed and has seen `word`-42 typed on A.
struct SharedShell {
  std::unique_ptr<TestClient> a, b;
  std::string id;
};
SharedShell shell_seen_on_b(Cluster& cluster, const std::string& word) {
  SharedShell shell;
  shell.a = cluster.client(0, "alice");
  shell.id = shell.a->create_terminal({{"command", {"/bin/sh"}}}).value("id", "");
  REQUIRE(!shell.id.empty());
  shell.b = cluster.client(1, "alice");
  REQUIRE(eventually([&] { return !listed(*shell.b, shell.id).is_null(); }, 5s));
  subscribe(*shell.b, shell.id);
  REQUIRE(shell.a->request("shell.input", {{"terminalId", shell.id}, {"data", "echo " + word + "-$((6*7))\n"}}));
  REQUIRE(shell.b->wait_output(shell.id, word + "-42"));
  return shell;
}

TEST_CASE("cluster: a terminal of A is listed on B with its node, streamed byte for byte, typed into and resized through B") {
  if (!RedisServer::available()) FAIL("needs redis-server (scripts/install-deps.sh installs it)");
  Cluster cluster(2);
  auto alice_a = cluster.client(0, "alice");
  const Json terminal = alice_a->create_terminal({{"command", {"/bin/sh"}}});
  const std::string id = terminal.value("id", "");
  REQUIRE(!id.empty());
  CHECK(terminal.value("node", "") == "a");

  auto alice_b = cluster.client(1, "alice");
  REQUIRE(eventually([&] { return !listed(*alice_b, id).is_null(); }, 5s));
  const Json remote = listed(*alice_b, id);
  CHECK(remote.value("node", "") == "a");
  CHECK(remote.value("owner", "") == "alice");
  CHECK(remote.value("state", "") == "running");
  auto bob_b = cluster.client(1, "bob");
  CHECK(listed(*bob_b, id).is_null());  // not shared with bob: not his to see, on any node

  const Json subscribed = subscribe(*alice_b, id);
  CHECK(subscribed.value("type", "") == "subscribed");
  alice_b->notify("shell.input", {{"terminalId", id}, {"data", "echo via-b-$((6*7))\n"}});
  CHECK(alice_b->wait_output(id, "via-b-42"));
  CHECK(alice_a->wait_output(id, "via-b-42"));
  // The same bytes at the same offsets on both nodes.
  CHECK(alice_b->output(id).problems.empty());
  CHECK(eventually([&] { alice_a->drain(50ms); alice_b->drain(50ms);
                         return alice_a->output(id).next == alice_b->output(id).next; }, 5s));
  const std::string on_a = alice_a->output(id).text;
  const std::string on_b = alice_b->output(id).text;
  CHECK(on_a == on_b);

  auto resized = alice_b->request("shell.resize", {{"terminalId", id}, {"cols", 100}, {"rows", 30}});
  CHECK(resized);
  CHECK(alice_a->wait_event("shell.resized", id, 5s));
  CHECK(alice_b->wait_event("shell.resized", id, 5s));

  alice_b->request("shell.kill", {{"terminalId", id}});
  const auto exit_b = alice_b->wait_exit(id, 10s);
  const auto exit_a = alice_a->wait_exit(id, 10s);
  REQUIRE(exit_a);
  REQUIRE(exit_b);
  CHECK((*exit_b)["signal"] == (*exit_a)["signal"]);
  CHECK((*exit_b)["outputBytes"] == (*exit_a)["outputBytes"]);
}

TEST_CASE("cluster: 10 MB from a terminal on A arrive identical on B, and a late joiner on C with since gets the exact tail") {
  if (!RedisServer::available()) FAIL("needs redis-server (scripts/install-deps.sh installs it)");
  Cluster cluster(3, {"--ring-buffer-bytes", "16MiB"});
  auto alice_a = cluster.client(0, "alice");
  auto alice_b = cluster.client(1, "alice");
  // Created stopped at a prompt-less read, so B subscribes before the output starts.
  const Json terminal = alice_a->create_terminal(
      {{"command", {"/bin/sh", "-c", "read go; seq 1 1400000; echo done-streaming"}}});
  const std::string id = terminal.value("id", "");
  REQUIRE(eventually([&] { return !listed(*alice_b, id).is_null(); }, 5s));
  subscribe(*alice_b, id);
  alice_b->notify("shell.input", {{"terminalId", id}, {"data", "go\n"}});
  CHECK(alice_b->wait_output(id, "done-streaming", 150s));  // a bound for a slow machine under ASan (2 s here)
  CHECK(alice_a->wait_output(id, "done-streaming", 60s));
  const auto exit_b = alice_b->wait_exit(id, 30s);
  REQUIRE(exit_b);
  const TerminalOutput& b = alice_b->output(id);
  const TerminalOutput& a = alice_a->output(id);
  CHECK(b.problems.empty());
  CHECK(b.gaps.empty());
  CHECK(b.text.size() > 10'000'000);
  CHECK(b.text == a.text);
  CHECK(b.next == a.next);

  auto alice_c = cluster.client(2, "alice");
  REQUIRE(eventually([&] { return !listed(*alice_c, id).is_null(); }, 5s));
  const uint64_t since = b.next - 1000;
  subscribe(*alice_c, id, since);
  REQUIRE(alice_c->wait_exit(id, 30s));
  const TerminalOutput& c = alice_c->output(id);
  CHECK(c.first_offset == since);
  CHECK(c.text == b.text.substr(b.text.size() - 1000));
}

TEST_CASE("cluster: shares are enforced on every node - read-only input refused on B, revocation on A cuts a viewer on C") {
  if (!RedisServer::available()) FAIL("needs redis-server (scripts/install-deps.sh installs it)");
  Cluster cluster(3);
  auto alice_a = cluster.client(0, "alice");
  const Json terminal = alice_a->create_terminal({{"command", {"/bin/sh"}}});
  const std::string id = terminal.value("id", "");
  auto shared = alice_a->request("shell.share", {{"terminalId", id}, {"user", "bob"}, {"mode", "read"}});
  REQUIRE(shared);
  auto bob_b = cluster.client(1, "bob");
  auto bob_c = cluster.client(2, "bob");
  REQUIRE(eventually([&] { return !listed(*bob_b, id).is_null() && !listed(*bob_c, id).is_null(); }, 5s));
  auto input = bob_b->request("shell.input", {{"terminalId", id}, {"data", "echo nope\n"}});
  CHECK_MESSAGE(is_error(input, "forbidden"), brief(input));
  subscribe(*bob_c, id);
  REQUIRE(alice_a->request("shell.input", {{"terminalId", id}, {"data", "echo seen-$((2*21))\n"}}));
  CHECK(bob_c->wait_output(id, "seen-42"));
  alice_a->request("shell.share", {{"terminalId", id}, {"user", "bob"}, {"mode", "none"}});
  CHECK(bob_c->wait_for([&](const Json& m) {
    return m.value("type", "") == "unsubscribed" && m["data"].value("reason", "") == "revoked";
  }, 5s));
  CHECK(eventually([&] { return listed(*bob_b, id).is_null(); }, 5s));
}

TEST_CASE("cluster: SIGKILL of A - viewers on B get shell.exit node_lost within 10 s, input is refused, A's restart does not resurrect it") {
  if (!RedisServer::available()) FAIL("needs redis-server (scripts/install-deps.sh installs it)");
  Cluster cluster(2);
  SharedShell shell = shell_seen_on_b(cluster, "before");
  auto& alice_b = shell.b;
  const std::string id = shell.id;
  const uint64_t last = alice_b->output(id).next;

  const std::string secret = cluster[0].secret_file().string();
  REQUIRE(cluster[0].send_signal(SIGKILL));
  REQUIRE(cluster[0].wait_exit(5s));
  const auto exit = alice_b->wait_exit(id, 10s);
  REQUIRE(exit);
  CHECK(exit->value("reason", "") == "node_lost");
  // After the last byte that reached Redis: B has every byte up to it (a prompt may have followed the echo).
  CHECK(exit->value("outputBytes", uint64_t{0}) >= last);
  CHECK(exit->value("outputBytes", uint64_t{0}) == alice_b->output(id).next);
  auto input = alice_b->request("shell.input", {{"terminalId", id}, {"data", "x"}});
  CHECK_MESSAGE(is_error(input, "conflict"), brief(input));
  CHECK(listed(*alice_b, id).value("state", "") == "exited");

  // A comes back under the same name: the old terminal stays ended.
  DaemonProcess again({"--redis-url", cluster.redis.url(), "--node-id", "a", "--jwt-secret-file", secret});
  REQUIRE(again.started());
  REQUIRE(eventually([&] { return Cluster::ready(again); }, 10s));
  TestClient alice_again;
  WsOptions options = again.ws_options();
  options.authorization = "Bearer " + cluster[0].token("alice");
  REQUIRE(alice_again.connect(options));
  REQUIRE(alice_again.wait_for([](const Json& m) { return m.value("type", "") == "auth.ok"; }, 5s));
  CHECK(eventually([&] {
    const Json t = listed(alice_again, id);
    return !t.is_null() && t.value("state", "") == "exited";
  }, 5s));
}

// The last entry of a terminal's stream in Redis, as the raw reply of XREVRANGE.
std::string last_entry(Cluster& cluster, const std::string& id) {
  return cluster.redis.command("XREVRANGE ptyhub:term:{" + id + "}:out + - COUNT 1");
}

TEST_CASE("cluster: SIGSTOP A past its lease, then SIGCONT - A fences itself and nothing it writes afterwards lands") {
  if (!RedisServer::available()) FAIL("needs redis-server (scripts/install-deps.sh installs it)");
  Cluster cluster(2);
  SharedShell shell = shell_seen_on_b(cluster, "up");
  auto& alice_a = shell.a;
  auto& alice_b = shell.b;
  const std::string id = shell.id;

  REQUIRE(cluster[0].send_signal(SIGSTOP));
  const auto lost = alice_b->wait_exit(id, 12s);
  REQUIRE(cluster[0].send_signal(SIGCONT));
  REQUIRE(lost);
  CHECK(lost->value("reason", "") == "node_lost");
  const std::string marker = last_entry(cluster, id);
  CHECK(marker.find("node_lost") != std::string::npos);

  // A finds out, ends its terminal for its own clients with a reason, and writes nothing more there.
  const auto fenced = alice_a->wait_exit(id, 10s);
  REQUIRE(fenced);
  CHECK(fenced->value("reason", "") == "node_fenced");
  CHECK(cluster[0].wait_for_log("cluster: fencing this node", 5s));
  CHECK(last_entry(cluster, id) == marker);
  // It serves on as a new incarnation: a new terminal of A reaches B again.
  CHECK(eventually([&] { return Cluster::ready(cluster[0]); }, 10s));
  const Json second = alice_a->create_terminal({{"command", {"/bin/sh"}}});
  CHECK(eventually([&] { return !listed(*alice_b, second.value("id", "")).is_null(); }, 5s));
}

TEST_CASE("cluster: Redis restarted empty - one exact shell.gap for viewers elsewhere, owner-local clients unaffected, offsets kept") {
  if (!RedisServer::available()) FAIL("needs redis-server (scripts/install-deps.sh installs it)");
  Cluster cluster(2);
  SharedShell shell = shell_seen_on_b(cluster, "one");
  auto& alice_a = shell.a;
  auto& alice_b = shell.b;
  const std::string id = shell.id;

  cluster.redis.stop();
  REQUIRE(eventually([&] { return !Cluster::ready(cluster[0]); }, 5s));
  REQUIRE(alice_a->request("shell.input", {{"terminalId", id}, {"data", "echo two-$((6*7))\n"}}));
  CHECK(alice_a->wait_output(id, "two-42"));  // the owner's own clients never notice
  const uint64_t lost_from = alice_b->output(id).next;
  // The bound on what a node keeps for Redis is a megabyte: 2 MB typed while it is away leave a hole.
  REQUIRE(alice_a->request("shell.input", {{"terminalId", id}, {"data", "head -c 2000000 /dev/zero | tr '\\0' x; echo\n"}}));
  REQUIRE(alice_a->wait_output(id, std::string(100, 'x'), 10s));
  alice_a->drain(500ms);
  REQUIRE(cluster.redis.restart());
  REQUIRE(eventually([&] { return Cluster::ready(cluster[0]) && Cluster::ready(cluster[1]); }, 15s));
  REQUIRE(alice_a->request("shell.input", {{"terminalId", id}, {"data", "echo three-$((6*7))\n"}}));
  CHECK(alice_b->wait_output(id, "three-42", 10s));
  CHECK(alice_a->wait_output(id, "three-42"));
  const TerminalOutput& b = alice_b->output(id);
  CHECK(b.problems.empty());
  REQUIRE(b.gaps.size() == 1);
  CHECK(b.gaps[0].value("from", uint64_t{0}) >= lost_from);
  CHECK(b.text.find("one-42") != std::string::npos);
  // What B has after the gap are the owner's bytes at the owner's offsets.
  const TerminalOutput& a = alice_a->output(id);
  CHECK(a.gaps.empty());
  CHECK(eventually([&] { alice_a->drain(20ms); alice_b->drain(20ms); return a.next == b.next; }, 5s));
  const uint64_t gap_to = b.gaps[0].value("to", uint64_t{0});
  CHECK(a.text.substr(a.text.size() - (a.next - gap_to)) == b.text.substr(b.text.size() - (b.next - gap_to)));
}

TEST_CASE("cluster: CLIENT KILL of every Redis connection while a terminal streams - nothing lost, nothing doubled") {
  if (!RedisServer::available()) FAIL("needs redis-server (scripts/install-deps.sh installs it)");
  Cluster cluster(2);
  auto alice_a = cluster.client(0, "alice");
  auto alice_b = cluster.client(1, "alice");
  const Json terminal = alice_a->create_terminal(
      {{"command", {"/bin/sh", "-c", "read go; i=0; while [ $i -lt 400 ]; do i=$((i+1)); echo line-$i; sleep 0.005; done; echo all-done"}}});
  const std::string id = terminal.value("id", "");
  REQUIRE(eventually([&] { return !listed(*alice_b, id).is_null(); }, 5s));
  subscribe(*alice_b, id);
  REQUIRE(alice_b->request("shell.input", {{"terminalId", id}, {"data", "go\n"}}));
  REQUIRE(alice_b->wait_output(id, "line-50", 10s));
  for (int i = 0; i < 3; ++i) {
    CHECK(cluster.redis.command("CLIENT KILL TYPE normal").starts_with(":"));
    REQUIRE(alice_b->wait_output(id, "line-" + std::to_string(100 + 100 * i), 10s));
  }
  REQUIRE(alice_b->wait_output(id, "all-done", 20s));
  REQUIRE(alice_a->wait_output(id, "all-done", 20s));
  const TerminalOutput& b = alice_b->output(id);
  CHECK(b.problems.empty());
  CHECK(b.gaps.empty());
  CHECK(b.text == alice_a->output(id).text);
}

TEST_CASE("cluster: Redis down at start - the daemon serves its own terminals, /readyz says 503, and it joins once Redis is up") {
  if (!RedisServer::available()) FAIL("needs redis-server (scripts/install-deps.sh installs it)");
  RedisServer redis;
  REQUIRE(redis.ok());
  redis.stop();
  DaemonProcess node({"--redis-url", redis.url(), "--node-id", "a"});
  REQUIRE(node.started());
  auto ready = http_get(node.port(), "/readyz");
  REQUIRE(ready);
  CHECK(ready->status == 503);
  auto alice = connect_user(node, "alice");
  const Json terminal = alice->create_terminal({{"command", {"/bin/sh"}}});
  alice->notify("shell.input", {{"terminalId", terminal["id"]}, {"data", "echo alone-$((6*7))\n"}});
  CHECK(alice->wait_output(terminal["id"], "alone-42"));
  CHECK(node.wait_for_log("redis: commands cannot connect", 5s));
  REQUIRE(redis.restart());
  CHECK(eventually([&] {
    auto r = http_get(node.port(), "/readyz", 1s);
    return r && r->status == 200;
  }, 15s));
  // Its terminal is now in the directory.
  CHECK(eventually([&] { return redis.command("SISMEMBER ptyhub:terms " + terminal.value("id", "")) == ":1\r\n"; }, 5s));
}

TEST_CASE("cluster: bad requests through B for A's terminals get the same errors as on A") {
  if (!RedisServer::available()) FAIL("needs redis-server (scripts/install-deps.sh installs it)");
  Cluster cluster(2);
  auto alice_a = cluster.client(0, "alice");
  const Json terminal = alice_a->create_terminal({{"command", {"/bin/sh"}}});
  const std::string id = terminal.value("id", "");
  auto alice_b = cluster.client(1, "alice");
  REQUIRE(eventually([&] { return !listed(*alice_b, id).is_null(); }, 5s));
  const std::vector<std::pair<std::string, Json>> bad = {
      {"shell.resize", {{"terminalId", id}, {"cols", 0}, {"rows", 24}}},
      {"shell.resize", {{"terminalId", id}, {"cols", 80}}},
      {"shell.input", {{"terminalId", id}}},
      {"shell.input", {{"terminalId", id}, {"data", "!!"}, {"encoding", "base64"}}},
      {"shell.kill", {{"terminalId", id}, {"signal", "SIGNOPE"}}},
      {"shell.share", {{"terminalId", id}, {"user", "alice"}, {"mode", "read"}}},
      {"shell.share", {{"terminalId", id}, {"user", "bob"}, {"mode", "admin"}}},
      {"subscribe", {{"channel", "shell:terminal:" + id}, {"since", -1}}},
      {"shell.dismiss", {{"terminalId", id}}},
  };
  for (const auto& [type, data] : bad) {
    CAPTURE(type);
    CAPTURE(data.dump());
    const auto on_a = alice_a->request(type, data);
    const auto on_b = alice_b->request(type, data);
    REQUIRE(on_a);
    REQUIRE(on_b);
    CHECK(on_a->value("type", "") == "error");
    CHECK((*on_a)["data"] == (*on_b)["data"]);
  }
  CHECK(listed(*alice_a, id).value("state", "") == "running");
}

TEST_CASE("cluster: shell.dismiss through B of a terminal A ran removes it on every node") {
  if (!RedisServer::available()) FAIL("needs redis-server (scripts/install-deps.sh installs it)");
  Cluster cluster(3);
  auto alice_a = cluster.client(0, "alice");
  const std::string id = alice_a->create_terminal({{"command", {"/bin/sh", "-c", "echo bye"}}}).value("id", "");
  REQUIRE(!id.empty());
  auto alice_b = cluster.client(1, "alice");
  auto alice_c = cluster.client(2, "alice");
  const auto exited_on = [&](TestClient& client) {
    const Json terminal = listed(client, id);
    return terminal.is_object() && terminal.value("state", "") == "exited";
  };
  REQUIRE(eventually([&] { return exited_on(*alice_a) && exited_on(*alice_b) && exited_on(*alice_c); }, 10s));
  const auto reply = alice_b->request("shell.dismiss", {{"terminalId", id}});
  REQUIRE(reply);
  CHECK(reply->value("type", "") == "shell.dismissed");
  CHECK(listed(*alice_b, id).is_null());  // at once on the node that was asked
  // The node that ran it removes it, and with it every other node's mirror.
  CHECK(eventually([&] { return listed(*alice_a, id).is_null(); }, 5s));
  CHECK(eventually([&] { return listed(*alice_c, id).is_null(); }, 5s));
  for (int node = 0; node < 3; ++node) CHECK(cluster[node].sanitizer_findings().empty());
}

TEST_CASE("cluster: a git operation run on A is seen on B - its output, shell.exit and git.operation.completed") {
  if (!RedisServer::available()) FAIL("needs redis-server (scripts/install-deps.sh installs it)");
  TempDir tmp;
  REQUIRE(!tmp.path().empty());
  const std::string root = (tmp / "root").string();
  const std::string repo = root + "/small";
  REQUIRE(std::system(("mkdir -p " + repo + " && cd " + repo + " && git init -q . && git -c user.name=t -c "
                       "user.email=t@example.org commit -q --allow-empty -m cluster-commit-message").c_str()) == 0);
  Cluster cluster(2, {"--repos-root", root});
  const std::string scopes = "terminal:create terminal:read terminal:write git:run";
  auto alice_a = cluster.client(0, "alice", scopes);
  auto alice_b = cluster.client(1, "alice", scopes);
  auto started = alice_a->request("git.operation.start", {{"operation", "log"}, {"repo", "small"}});
  REQUIRE(started);
  REQUIRE(started->value("type", "") == "git.operation.started");
  const std::string id = (*started)["data"].value("terminalId", "");
  REQUIRE(!id.empty());
  const auto completed_a = alice_a->wait_for([](const Json& m) { return m.value("type", "") == "git.operation.completed"; }, 10s);
  REQUIRE(completed_a);
  REQUIRE(eventually([&] { return !listed(*alice_b, id).is_null(); }, 5s));
  CHECK(listed(*alice_b, id).value("kind", "") == "git");
  subscribe(*alice_b, id);
  REQUIRE(alice_b->wait_exit(id, 10s));
  CHECK(alice_b->output(id).text.find("cluster-commit-message") != std::string::npos);
  const auto completed_b = alice_b->wait_for(
      [](const Json& m) { return m.value("type", "") == "git.operation.completed"; }, 5s);
  REQUIRE(completed_b);
  CHECK((*completed_b)["data"] == (*completed_a)["data"]);
}

TEST_CASE("cluster: shell.create with node runs the terminal on that node for a client of another") {
  if (!RedisServer::available()) FAIL("needs redis-server (scripts/install-deps.sh installs it)");
  Cluster cluster(2);
  auto alice_b = cluster.client(1, "alice");
  const Json terminal = alice_b->create_terminal(
      {{"node", "a"}, {"command", {"/bin/sh", "-c", "echo made-$((6*7)); read line; echo got-$line"}}, {"name", "remote"}});
  const std::string id = terminal.value("id", "");
  REQUIRE(!id.empty());
  CHECK(terminal.value("node", "") == "a");
  CHECK(terminal.value("name", "") == "remote");
  CHECK(terminal["pid"].is_null());  // a mirror on B: the process is A's
  // The creator is subscribed from the first byte, and its input reaches the process on A.
  CHECK(alice_b->wait_output(id, "made-42"));
  CHECK(alice_b->request("shell.input", {{"terminalId", id}, {"data", "x\n"}}));
  CHECK(alice_b->wait_output(id, "got-x"));
  REQUIRE(alice_b->wait_exit(id, 10s));
  CHECK(alice_b->output(id).problems.empty());
  // On A it is a local terminal of alice's with a process.
  auto alice_a = cluster.client(0, "alice");
  const Json on_a = listed(*alice_a, id);
  CHECK(on_a.value("node", "") == "a");
  CHECK(on_a.value("owner", "") == "alice");
  CHECK(on_a["pid"].is_number());

  // Failures are the same errors a client of A gets, or name the node.
  const auto unknown = alice_b->request("shell.create", {{"node", "zz"}});
  REQUIRE(unknown);
  CHECK(unknown->value("type", "") == "error");
  CHECK((*unknown)["data"].value("code", "") == "not_found");
  CHECK((*unknown)["data"].value("field", "") == "data.node");
  const Json bad_cwd = {{"cwd", "/no/such/dir"}};
  const auto local = alice_a->request("shell.create", bad_cwd);
  Json remote_bad = bad_cwd;
  remote_bad["node"] = "a";
  const auto remote = alice_b->request("shell.create", remote_bad);
  REQUIRE(local);
  REQUIRE(remote);
  CHECK(remote->value("type", "") == "error");
  CHECK((*remote)["data"] == (*local)["data"]);
  // The node a client is on may be named too.
  const auto here = alice_b->request("shell.create", {{"node", "b"}, {"command", {"/bin/true"}}});
  REQUIRE(here);
  CHECK((*here)["data"]["terminal"].value("node", "") == "b");
}

TEST_CASE("cluster: a writer on B that pauses holds the PTY on A back, so it gets every byte - and the hold of a node that dies lapses") {
  if (!RedisServer::available()) FAIL("needs redis-server (scripts/install-deps.sh installs it)");
  Cluster cluster(2);  // rings of 1 MiB, and 1 MiB kept per stream in Redis
  constexpr int kLines = 400000;  // about 2.7 MB: more than A's ring and Redis hold together
  const Json command = {"/bin/sh", "-c", "stty -echo; printf R; read x; seq 1 " + std::to_string(kLines)};
  auto alice_a = cluster.client(0, "alice");
  auto alice_b = cluster.client(1, "alice");
  const auto held_by_b = [&](const std::string& id) {
    REQUIRE(eventually([&] { return !listed(*alice_b, id).is_null(); }, 5s));
    subscribe(*alice_b, id, 0);
    REQUIRE(alice_b->wait_output(id, "R"));
    auto paused = alice_b->request("shell.pause", {{"terminalId", id}});
    REQUIRE(paused);
    REQUIRE(paused->value("type", "") == "ack");
  };

  const long long pauses = metric(cluster[0], "ptyhub_pty_read_pauses_total");
  const std::string id = alice_a->create_terminal({{"command", command}, {"subscribe", false}}).value("id", "");
  REQUIRE(!id.empty());
  held_by_b(id);
  REQUIRE(alice_a->request("shell.input", {{"terminalId", id}, {"data", "\n"}}));
  // A stops reading the PTY for B's paused subscriber: the process is blocked, not finished.
  REQUIRE(eventually([&] { return metric(cluster[0], "ptyhub_pty_read_pauses_total") > pauses; }, 10s));
  CHECK(listed(*alice_a, id).value("state", "") == "running");
  auto resumed = alice_b->request("shell.resume", {{"terminalId", id}});
  REQUIRE(resumed);
  REQUIRE(alice_b->wait_exit(id, 90s));  // a bound for a slow machine, not an expected time
  const TerminalOutput& output = alice_b->output(id);
  CHECK(output.gaps.empty());
  for (const auto& problem : output.problems) FAIL_CHECK(problem);
  CHECK(output.text == "R" + seq_output(kLines));

  // Held by B again, then B dies: A reads on by itself within a few seconds.
  const long long before = metric(cluster[0], "ptyhub_pty_read_pauses_total");
  const std::string second = alice_a->create_terminal({{"command", command}, {"subscribe", false}}).value("id", "");
  REQUIRE(!second.empty());
  held_by_b(second);
  REQUIRE(alice_a->request("shell.input", {{"terminalId", second}, {"data", "\n"}}));
  REQUIRE(eventually([&] { return metric(cluster[0], "ptyhub_pty_read_pauses_total") > before; }, 10s));
  REQUIRE(cluster[1].send_signal(SIGKILL));
  REQUIRE(cluster[1].wait_exit(5s));
  CHECK(eventually([&] { return listed(*alice_a, second).value("state", "") == "exited"; }, 15s));
}

TEST_CASE("cluster: git.operation.cancel through B cancels an operation A runs, with the same checks as on A") {
  if (!RedisServer::available()) FAIL("needs redis-server (scripts/install-deps.sh installs it)");
  TempDir tmp;
  REQUIRE(!tmp.path().empty());
  const std::string root = (tmp / "root").string();
  // A bare repository of 60,000 blobs in one commit (600 directories): its clone takes a while.
  const std::string make_big =
      "mkdir -p " + root + " && git init -q --bare " + root + "/big.git && awk 'BEGIN { n = 60000; "
      "for (i = 1; i <= n; i++) { c = \"blob number \" i \" of a large repository\"; "
      "printf \"blob\\nmark :%d\\ndata %d\\n%s\\n\\n\", i, length(c) + 1, c } "
      "printf \"commit refs/heads/main\\nauthor T <t@ptyhub.invalid> 1700000000 +0000\\n"
      "committer T <t@ptyhub.invalid> 1700000000 +0000\\ndata 5\\nmany\\n\"; "
      "for (i = 1; i <= n; i++) printf \"M 100644 :%d d%03d/f%05d\\n\", i, i / 100, i; printf \"\\n\" }' | "
      "git --git-dir=" + root + "/big.git fast-import --quiet && git --git-dir=" + root +
      "/big.git symbolic-ref HEAD refs/heads/main";
  REQUIRE(std::system(make_big.c_str()) == 0);
  Cluster cluster(2, {"--repos-root", root, "--kill-grace", "1"});
  const std::string scopes = "terminal:read git:run";
  auto alice_a = cluster.client(0, "alice", scopes);
  auto alice_b = cluster.client(1, "alice", scopes);
  auto bob_b = cluster.client(1, "bob", scopes);
  auto started = alice_a->request("git.operation.start",
                                  {{"operation", "clone"}, {"repo", "bigclone"}, {"url", "file://" + root + "/big.git"}});
  REQUIRE(started);
  REQUIRE(started->value("type", "") == "git.operation.started");
  const std::string operation = (*started)["data"].value("operationId", "");
  const std::string id = (*started)["data"].value("terminalId", "");
  const std::string channel = "shell:terminal:" + id;
  REQUIRE(alice_a->wait_for([&](const Json& m) {
    return m.value("type", "") == "git.operation.progress" && m.value("channel", "") == channel;
  }, 15s));
  REQUIRE(eventually([&] { return !listed(*alice_b, id).is_null(); }, 5s));
  subscribe(*alice_b, id, 0);

  auto unknown = alice_b->request("git.operation.cancel", {{"operationId", "no-such-operation"}});
  CHECK_MESSAGE(is_error(unknown, "not_found"), brief(unknown));
  auto not_bobs = bob_b->request("git.operation.cancel", {{"operationId", operation}});
  CHECK_MESSAGE(is_error(not_bobs, "not_found"), brief(not_bobs));
  auto cancelled = alice_b->request("git.operation.cancel", {{"operationId", operation}});
  REQUIRE(cancelled);
  CHECK_MESSAGE(cancelled->value("type", "") == "ack", brief(cancelled));
  const auto completed = alice_b->wait_for([&](const Json& m) {
    return m.value("type", "") == "git.operation.completed" && m.value("channel", "") == channel;
  }, 15s);
  REQUIRE(completed);
  CHECK((*completed)["data"].value("status", "") == "cancelled");
  CHECK(alice_b->wait_exit(id, 10s));
  auto again = alice_b->request("git.operation.cancel", {{"operationId", operation}});
  CHECK_MESSAGE(is_error(again, "conflict"), brief(again));
}

TEST_CASE("cluster: the owner keeps a terminal within reach of a stopped node whose writer subscribes - no byte trimmed before it reads") {
  if (!RedisServer::available()) FAIL("needs redis-server (scripts/install-deps.sh installs it)");
  // 512 KiB kept per stream in Redis: A may run 256 KiB ahead of what B read, which it reaches well within
  // the 3 s a stopped node's report lasts, even on a slow machine.
  Cluster cluster(2, {"--cluster-retention-bytes", "512KiB"});
  constexpr int kLines = 200000;  // about 1.3 MB: more than Redis keeps, with room
  auto alice_a = cluster.client(0, "alice");
  auto alice_b = cluster.client(1, "alice");
  const long long pauses = metric(cluster[0], "ptyhub_pty_read_pauses_total");
  const std::string id = alice_a->create_terminal(
      {{"command", {"/bin/sh", "-c", "stty -echo; printf R; read x; seq 1 " + std::to_string(kLines)}}}).value("id", "");
  REQUIRE(!id.empty());
  REQUIRE(eventually([&] { return !listed(*alice_b, id).is_null(); }, 5s));
  subscribe(*alice_b, id, 0);
  REQUIRE(alice_b->wait_output(id, "R"));
  // B stops (a stall, a paused VM); A's own subscriber reads live, yet A does not run ahead of what B read
  // by more than Redis keeps.
  REQUIRE(cluster[1].send_signal(SIGSTOP));
  REQUIRE(alice_a->request("shell.input", {{"terminalId", id}, {"data", "\n"}}));
  const bool paused = eventually([&] { return metric(cluster[0], "ptyhub_pty_read_pauses_total") > pauses; }, 10s);
  REQUIRE(cluster[1].send_signal(SIGCONT));
  REQUIRE(paused);
  REQUIRE(alice_b->wait_exit(id, 90s));  // a bound for a slow machine, not an expected time
  const TerminalOutput& output = alice_b->output(id);
  CHECK(output.gaps.empty());
  for (const auto& problem : output.problems) FAIL_CHECK(problem);
  CHECK(output.text == "R" + seq_output(kLines));
  REQUIRE(alice_a->wait_exit(id, 10s));
  CHECK(alice_a->output(id).text == output.text);
}

// The value of a bulk-string reply ("$N\r\n<value>\r\n"); empty for anything else.
std::string bulk(const std::string& reply) {
  const size_t start = reply.find("\r\n");
  if (!reply.starts_with("$") || start == std::string::npos) return {};
  const size_t end = reply.find("\r\n", start + 2);
  return end == std::string::npos ? std::string() : reply.substr(start + 2, end - start - 2);
}

size_t occurrences(const std::string& text, const std::string& needle) {
  size_t count = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++count;
  return count;
}

TEST_CASE("cluster: garbage written into Redis is skipped and logged once per kind - the nodes go on") {
  if (!RedisServer::available()) FAIL("needs redis-server (scripts/install-deps.sh installs it)");
  Cluster cluster(2);
  SharedShell shell = shell_seen_on_b(cluster, "before");
  const std::string& id = shell.id;
  const std::string boot = bulk(cluster.redis.command("GET ptyhub:node:{a}:lease"));
  REQUIRE(boot.size() == 16);
  // Requests for A's terminal that A cannot read: a number that is none, a signal out of range, input
  // without its bytes, a create request with options that are not JSON (answered bad_message).
  const std::string to_a = "XADD ptyhub:node:{a}:in * t " + id + " b " + boot;
  for (int i = 0; i < 20; ++i) CHECK(cluster.redis.command(to_a + " k r c abc r 10").starts_with("$"));
  CHECK(cluster.redis.command(to_a + " k k s 999").starts_with("$"));
  CHECK(cluster.redis.command(to_a + " k i").starts_with("$"));
  CHECK(cluster.redis.command("XADD ptyhub:node:{a}:in * k c b " + boot + " from b fb x q 1 u alice o [")
            .starts_with("$"));
  // Entries of the terminal's stream B cannot read, after the last byte A wrote: output that does not end
  // where its id says, a resize to nothing, an exit whose trailers are not JSON (it must not end the
  // mirror), an event that is not JSON.
  const std::string top = bulk(cluster.redis.command("HGET ptyhub:term:{" + id + "} top"));
  REQUIRE(!top.empty());
  const std::string stream = "XADD ptyhub:term:{" + id + "}:out " + top;
  CHECK(cluster.redis.command(stream + "-900 s 0 d garbage").starts_with("$"));
  CHECK(cluster.redis.command(stream + "-901 t r c 0 r 0").starts_with("$"));
  CHECK(cluster.redis.command(stream + "-902 t x tr notjson").starts_with("$"));
  CHECK(cluster.redis.command(stream + "-903 t e f notjson").starts_with("$"));
  // A directory entry nobody can read, announced; an event without its kind.
  CHECK(cluster.redis.command("HSET ptyhub:term:{bogus} node a boot 0 owner alice cols many").starts_with(":"));
  CHECK(cluster.redis.command("XADD ptyhub:events * e created t bogus n a").starts_with("$"));
  CHECK(cluster.redis.command("XADD ptyhub:events * t bogus").starts_with("$"));

  // Both nodes go on: input typed through B reaches the shell on A, and its output reaches B.
  REQUIRE(shell.b->request("shell.input", {{"terminalId", id}, {"data", "echo after-$((6*7))\n"}}));
  CHECK(shell.b->wait_output(id, "after-42"));
  CHECK(shell.a->wait_output(id, "after-42"));
  CHECK(listed(*shell.b, "bogus").is_null());
  CHECK(eventually([&] { return metric(cluster[0], "ptyhub_cluster_entries_malformed_total") >= 25; }, 5s));
  CHECK(eventually([&] { return metric(cluster[1], "ptyhub_cluster_entries_malformed_total") >= 6; }, 5s));
  // One line for each kind, however many entries of it.
  const std::string log_a = cluster[0].log(), log_b = cluster[1].log();
  CHECK(occurrences(log_a, "skipped a malformed request read from Redis") == 1);
  CHECK(occurrences(log_b, "skipped a malformed terminal entry read from Redis") == 1);
  CHECK(occurrences(log_b, "skipped a malformed directory entry read from Redis") == 1);
  CHECK(occurrences(log_b, "skipped a malformed event read from Redis") == 1);
  CHECK(cluster[0].running());
  CHECK(cluster[1].running());
  CHECK(cluster[0].sanitizer_findings().empty());
  CHECK(cluster[1].sanitizer_findings().empty());
}

// XREAD calls Redis has answered so far (INFO commandstats).
uint64_t xread_calls(RedisServer& redis) {
  const std::string info = redis.command("INFO commandstats");
  const std::string key = "cmdstat_xread:calls=";
  const size_t at = info.find(key);
  return at == std::string::npos ? 0 : std::strtoull(info.c_str() + at + key.size(), nullptr, 10);
}

TEST_CASE("cluster: a watched stream replaced by another type makes XREAD fail - the nodes wait and retry, one log line, no spin") {
  if (!RedisServer::available()) FAIL("needs redis-server (scripts/install-deps.sh installs it)");
  Cluster cluster(2);
  SharedShell shell = shell_seen_on_b(cluster, "before");
  const std::string& id = shell.id;
  // Every node reads the events stream in its one XREAD: as a string it makes every read fail (WRONGTYPE).
  CHECK(cluster.redis.command("SET ptyhub:events garbage").starts_with("+OK"));
  REQUIRE(cluster[0].wait_for_log("XREAD failed", 10s));
  REQUIRE(cluster[1].wait_for_log("XREAD failed", 10s));
  // An observation window, not a wait for something: a node that asked again at once would make
  // thousands of calls in it; one that waits between tries, a few.
  const uint64_t before = xread_calls(cluster.redis);
  std::this_thread::sleep_for(1500ms);
  const uint64_t calls = xread_calls(cluster.redis) - before;
  INFO("XREAD calls of both nodes in 1.5 s: " << calls);
  CHECK(calls <= 20);
  CHECK(occurrences(cluster[0].log(), "XREAD failed") == 1);
  CHECK(occurrences(cluster[1].log(), "XREAD failed") == 1);
  // Once the key is gone the nodes read again: input typed through B reaches the shell on A.
  CHECK(cluster.redis.command("DEL ptyhub:events").starts_with(":1"));
  REQUIRE(shell.b->request("shell.input", {{"terminalId", id}, {"data", "echo again-$((6*7))\n"}}));
  CHECK(shell.b->wait_output(id, "again-42"));
  CHECK(cluster[0].running());
  CHECK(cluster[1].running());
  CHECK(cluster[0].sanitizer_findings().empty());
  CHECK(cluster[1].sanitizer_findings().empty());
}

}  // namespace
}  // namespace ptyhub::test
