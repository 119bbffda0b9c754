// The command-line client end to end: `ptyhub` under tmux (a real terminal) against the real daemon —
// attach, type, resize, detach, attach again, a connection cut by the network, a live upgrade (close 1012),
// `new`, `run`, `git clone --follow`, `ls`/`kill`/`share`/`watch`, and each failure's message and exit
// status with the local terminal restored. Waits poll the screen or a file until a deadline.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <csignal>
#include <fstream>
#include <regex>
#include <sstream>

#include "tests/support/cli_harness.hpp"
#include "tests/support/daemon_process.hpp"
#include "tests/support/test_client.hpp"

namespace fs = std::filesystem;
using namespace ptyhub::test;
using namespace std::chrono_literals;

namespace {

constexpr const char* kGitScopes = "terminal:create terminal:read terminal:write git:run";

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The pane's command: an interactive sh with the client on PATH, PTYHUB_URL and PTYHUB_TOKEN set, and a
// prompt of its own so the outer shell can be told from the daemon's.
std::string outer_shell(const std::string& url, const std::string& token) {
  const std::string cli_dir = fs::path(PTYHUB_CLI_PATH).parent_path().string();
  return "env PATH=" + shell_quote(cli_dir + ":/usr/bin:/bin") + " PTYHUB_URL=" + shell_quote(url) +
         " PTYHUB_TOKEN=" + shell_quote(token) + " PS1='outer$ ' ENV= /bin/sh";
}

// Creates a running /bin/sh terminal for `user` with the prompt "inner$ "; returns its id. `tls`: the
// daemon's listener speaks TLS.
std::string create_terminal(const DaemonProcess& daemon, const std::string& user, bool tls = false) {
  TestClient client;
  WsOptions options = daemon.ws_options();
  options.tls = tls;
  REQUIRE(client.connect(options));
  auto authenticated = client.request("auth", {{"token", daemon.token(user)}});
  REQUIRE(authenticated);
  REQUIRE((*authenticated)["type"] == "auth.ok");
  auto reply = client.request("shell.create", {{"command", {"/bin/sh"}}, {"env", {{"PS1", "inner$ "}}}, {"subscribe", false}});
  REQUIRE(reply);
  REQUIRE((*reply)["type"] == "shell.created");
  return (*reply)["data"]["terminal"]["id"].get<std::string>();
}

// Lines of `screen` that are exactly "n<number>", as numbers, in order.
std::vector<int> numbered_lines(const std::string& screen) {
  std::vector<int> numbers;
  std::istringstream in(screen);
  std::string line;
  static const std::regex kLine("^n([0-9]+)\\s*$");
  while (std::getline(in, line)) {
    std::smatch match;
    if (std::regex_match(line, match, kLine)) numbers.push_back(std::stoi(match[1]));
  }
  return numbers;
}

// 1..count, for comparing with numbered_lines().
std::vector<int> one_to(int count) {
  std::vector<int> all;
  for (int i = 1; i <= count; ++i) all.push_back(i);
  return all;
}

}  // namespace

TEST_CASE("cli: attach types and echoes and follows a resize and detaches and attaches again and restores the terminal") {
  DaemonProcess daemon;
  REQUIRE(daemon.started());
  const std::string id = create_terminal(daemon, "alice");
  const std::string url = "ws://127.0.0.1:" + std::to_string(daemon.port()) + "/ws";
  Tmux tmux(outer_shell(url, daemon.token("alice")), 100, 30);
  REQUIRE(tmux.started());
  REQUIRE(tmux.wait_for("outer$ "));
  const fs::path before = tmux.dir() / "before";
  const fs::path after = tmux.dir() / "after";

  tmux.line("stty -g > " + before.string() + "; ptyhub attach " + id + "; echo \"status1=$?\"; stty -g > " + after.string());
  REQUIRE(tmux.wait_for("inner$ "));
  tmux.line("echo hello-$((6*7))");
  CHECK(tmux.wait_for("hello-42"));

  // The pane grows: SIGWINCH → shell.resize → the remote PTY's size.
  tmux.resize(120, 40);
  tmux.line("stty size");
  CHECK(tmux.wait_for("40 120"));

  // Ctrl-\ then d detaches: exit 0, the terminal keeps running, the local terminal is as before.
  tmux.keys({"C-\\"});
  tmux.keys({"d"});
  REQUIRE(tmux.wait_for("status1=0"));
  CHECK(tmux.wait_for("[detached from " + id + "]"));
  REQUIRE(eventually([&] { return fs::exists(after) && !read_text(after).empty(); }, 10s));
  CHECK(read_text(after) == read_text(before));

  // Attach again: the history comes back, typing works, and the shell's exit status is the client's.
  tmux.line("ptyhub attach " + id + "; echo \"status2=$?\"; stty -g > " + after.string() + ".2");
  CHECK(tmux.wait_for_count("hello-42", 2));
  tmux.line("echo again-$((1+1))");
  CHECK(tmux.wait_for("again-2"));
  tmux.line("exit 3");
  CHECK(tmux.wait_for("status2=3"));
  REQUIRE(eventually([&] { return fs::exists(after.string() + ".2") && !read_text(after.string() + ".2").empty(); }, 10s));
  CHECK(read_text(after.string() + ".2") == read_text(before));
}

TEST_CASE("cli: new starts a terminal and run ends with the command's exit status") {
  DaemonProcess daemon;
  REQUIRE(daemon.started());
  const std::string url = "ws://127.0.0.1:" + std::to_string(daemon.port()) + "/ws";
  Tmux tmux(outer_shell(url, daemon.token("alice")), 100, 30);
  REQUIRE(tmux.started());
  REQUIRE(tmux.wait_for("outer$ "));

  tmux.line("ptyhub run -- sh -c 'exit 7'; echo \"run=$?\"");
  CHECK(tmux.wait_for("run=7"));
  tmux.line("ptyhub run -- sh -c 'echo out-$((3*3)); kill -TERM $$'; echo \"signalled=$?\"");
  CHECK(tmux.wait_for("out-9"));
  CHECK(tmux.wait_for("signalled=143"));

  tmux.line("ptyhub new -- sh -c 'stty size; read line; echo got-$line; exit 5'; echo \"new=$?\"");
  CHECK(tmux.wait_for("30 100"));  // created at the pane's size
  tmux.line("abc");
  CHECK(tmux.wait_for("got-abc"));
  CHECK(tmux.wait_for("new=5"));
}

TEST_CASE("cli: a connection cut by the network resumes with no hole and no repeat") {
  DaemonProcess daemon;
  REQUIRE(daemon.started());
  const std::string id = create_terminal(daemon, "alice");
  TcpProxy proxy(daemon.port());
  REQUIRE(proxy.port() > 0);
  const std::string url = "ws://127.0.0.1:" + std::to_string(proxy.port()) + "/ws";
  Tmux tmux(outer_shell(url, daemon.token("alice")), 100, 30);
  REQUIRE(tmux.started());
  REQUIRE(tmux.wait_for("outer$ "));
  tmux.line("ptyhub attach " + id + "; echo \"status=$?\"");
  REQUIRE(tmux.wait_for("inner$ "));
  REQUIRE(proxy.accepted() == 1);

  // Numbered lines, printed while the connection is cut and resumed.
  tmux.line("i=0; while [ $i -lt 400 ]; do i=$((i+1)); echo n$i; sleep 0.005; done; echo end-$((2*3))");
  REQUIRE(tmux.wait_for("\nn40"));
  proxy.cut();
  REQUIRE(eventually([&] { return proxy.accepted() >= 2; }, 10s));
  REQUIRE(tmux.wait_for("end-6", 30s));
  CHECK(numbered_lines(tmux.capture()) == one_to(400));

  // Cut once more while idle: still attached afterwards.
  proxy.cut();
  REQUIRE(eventually([&] { return proxy.accepted() >= 3; }, 10s));
  tmux.line("echo still-$((4*4))");
  CHECK(tmux.wait_for("still-16"));
  tmux.line("exit");
  CHECK(tmux.wait_for("status=0"));
}

TEST_CASE("cli: a live upgrade of the daemon (close 1012) is resumed at once") {
  // A long kill_grace: the new image's orphan reaper may take the resumed shell for a process left behind
  // and SIGTERM it (a daemon race; sh ignores SIGTERM), SIGKILL following after kill_grace.
  DaemonProcess daemon({"--kill-grace", "60"});
  REQUIRE(daemon.started());
  const std::string id = create_terminal(daemon, "alice");
  const std::string url = "ws://127.0.0.1:" + std::to_string(daemon.port()) + "/ws";
  Tmux tmux(outer_shell(url, daemon.token("alice")), 100, 30);
  REQUIRE(tmux.started());
  REQUIRE(tmux.wait_for("outer$ "));
  // A first delay of 60 s after an ordinary drop: only the immediate reconnection after 1012 comes back in time.
  tmux.line("ptyhub --resume-delay 60 --resume-timeout 120 attach " + id + "; echo \"status=$?\"");
  REQUIRE(tmux.wait_for("inner$ "));
  tmux.line("i=0; while [ $i -lt 300 ]; do i=$((i+1)); echo n$i; sleep 0.005; done; echo end-$((2*3))");
  REQUIRE(tmux.wait_for("\nn30"));
  REQUIRE(daemon.send_signal(SIGUSR2));
  REQUIRE(daemon.wait_for_log("upgrade: resumed", 15s));
  const bool ended = tmux.wait_for("end-6", 20s);
  INFO(daemon.log());
  INFO(tmux.capture());
  REQUIRE(ended);
  CHECK(numbered_lines(tmux.capture()) == one_to(300));
  tmux.line("exit 4");
  CHECK(tmux.wait_for("status=4"));
}

TEST_CASE("cli: git clone --follow shows the phases to 100% and ends with git's exit status") {
  TempDir tmp("ptyhub-cli-git");
  REQUIRE(!tmp.path().empty());
  const fs::path root = tmp / "root";
  fs::create_directories(root);
  const std::string make_repo =
      "set -e; mkdir seed; cd seed; git init -q -b main; i=0; while [ $i -lt 2000 ]; do i=$((i+1)); "
      "echo \"file $i\" > f$i.txt; done; git add -A; git -c user.name=t -c user.email=t@x commit -q -m seed; "
      "git clone -q --bare . " + shell_quote((root / "origin.git").string());
  CliResult made = run_sh("cd " + shell_quote(tmp.path().string()) + " && " + make_repo, {});
  INFO(made.err);
  REQUIRE(made.status == 0);

  DaemonProcess daemon({"--repos-root", root.string()});
  REQUIRE(daemon.started());
  const std::string url = "ws://127.0.0.1:" + std::to_string(daemon.port()) + "/ws";
  Tmux tmux(outer_shell(url, daemon.token("alice", kGitScopes)), 100, 30);
  REQUIRE(tmux.started());
  REQUIRE(tmux.wait_for("outer$ "));
  tmux.line("ptyhub git clone file://" + (root / "origin.git").string() + " copy --follow; echo \"git=$?\"");
  REQUIRE(tmux.wait_for("\ngit=", 60s));
  const std::string screen = tmux.capture();
  INFO(screen);
  CHECK(screen.find("git=0") != std::string::npos);
  CHECK(screen.find("Receiving objects") != std::string::npos);
  CHECK(screen.find("100%") != std::string::npos);
  CHECK(fs::exists(root / "copy" / "f2000.txt"));

  // Not a terminal: plain lines; a failing operation: git's status and its output.
  const std::map<std::string, std::string> env = {{"PTYHUB_URL", url}, {"PTYHUB_TOKEN", daemon.token("alice", kGitScopes)}};
  CliResult status = run_cli({"git", "status", "copy", "--follow"}, env);
  CHECK(status.status == 0);
  CHECK(status.out.find("On branch main") != std::string::npos);
  CliResult again = run_cli({"git", "clone", "file://" + (root / "origin.git").string(), "copy2", "--follow"}, env);
  INFO(again.err);
  CHECK(again.status == 0);
  CHECK(again.err.find("Receiving objects: 100%") != std::string::npos);
  CliResult missing = run_cli({"git", "fetch", "nope", "--follow"}, env);
  CHECK(missing.status == 68);
  CHECK(missing.err.find("cannot start git fetch") != std::string::npos);
  CliResult started = run_cli({"git", "log", "copy", "--oneline"}, env);  // without --follow: the ids
  CHECK(started.status == 0);
  CHECK(started.out.starts_with("operation "));
  CliResult listed = run_cli({"git", "ls"}, env);
  CHECK(listed.status == 0);
  CHECK(listed.out.find("git   exited 0") != std::string::npos);
}

TEST_CASE("cli: a bad URL and an unreachable daemon and an expired token and a forbidden act and an unknown terminal") {
  DaemonProcess daemon;
  REQUIRE(daemon.started());
  const std::string url = "ws://127.0.0.1:" + std::to_string(daemon.port()) + "/ws";
  const std::map<std::string, std::string> good = {{"PTYHUB_URL", url}, {"PTYHUB_TOKEN", daemon.token("alice")}};

  CliResult bad_url = run_cli({"--url", "http://127.0.0.1/ws", "ls"}, good);
  CHECK(bad_url.status == 64);
  CHECK(bad_url.err.find("bad URL") != std::string::npos);

  CliResult usage = run_cli({"kill"}, good);
  CHECK(usage.status == 64);

  CliResult unreachable = run_cli({"--url", "ws://127.0.0.1:1/ws", "ls"}, good);
  CHECK(unreachable.status == 65);
  CHECK(unreachable.err.find("cannot connect") != std::string::npos);

  CliResult no_socket = run_cli({"--url", "unix:/nonexistent/ptyhub.sock", "ls"}, good);
  CHECK(no_socket.status == 65);

  std::map<std::string, std::string> expired = good;
  expired["PTYHUB_TOKEN"] = daemon.token("alice", ptyhub::test::kUserScopes, -3600);
  CliResult rejected = run_cli({"ls"}, expired);
  CHECK(rejected.status == 66);
  CHECK(rejected.err.find("token") != std::string::npos);

  std::map<std::string, std::string> no_token = good;
  no_token["PTYHUB_TOKEN"] = "";
  CHECK(run_cli({"ls"}, no_token).status == 66);

  const std::string id = create_terminal(daemon, "alice");
  std::map<std::string, std::string> reader = good;
  reader["PTYHUB_TOKEN"] = daemon.token("alice", "terminal:read");
  CliResult forbidden = run_cli({"kill", id}, reader);
  CHECK(forbidden.status == 67);
  CHECK(forbidden.err.find("cannot kill") != std::string::npos);

  CliResult unknown = run_cli({"kill", "NoSuchTerminal00000000"}, good);
  CHECK(unknown.status == 68);
  // An id with a leading '-' (none from this daemon, docs/protocol.md §5) is an operand after "--".
  CliResult dashed = run_cli({"kill", "--", "-NoSuchTerminal0000000"}, good);
  CHECK(dashed.status == 68);
  CHECK(dashed.err.find("-NoSuchTerminal0000000") != std::string::npos);

  // Interactive, under tmux: an unknown terminal ends at once with its message, the terminal restored.
  Tmux tmux(outer_shell(url, daemon.token("alice")), 100, 30);
  REQUIRE(tmux.started());
  REQUIRE(tmux.wait_for("outer$ "));
  const fs::path before = tmux.dir() / "before";
  const fs::path after = tmux.dir() / "after";
  tmux.line("stty -g > " + before.string() + "; ptyhub attach NoSuchTerminal00000000; echo \"attach=$?\"; stty -g > " + after.string());
  CHECK(tmux.wait_for("attach=68"));
  CHECK(tmux.wait_for("no terminal NoSuchTerminal00000000"));
  CHECK(tmux.child_of_pane("ptyhub") == 0);  // nothing left running
  REQUIRE(eventually([&] { return fs::exists(after) && !read_text(after).empty(); }, 10s));
  CHECK(read_text(after) == read_text(before));

  // The same for an expired token and an unreachable daemon, each after raw mode was entered.
  const std::string expired_token = daemon.token("alice", ptyhub::test::kUserScopes, -3600);
  tmux.line("PTYHUB_TOKEN=" + expired_token + " ptyhub attach " + id + "; echo \"expired=$?\"; stty -g > " + after.string() + ".expired");
  CHECK(tmux.wait_for("expired=66"));
  tmux.line("ptyhub --url ws://127.0.0.1:1/ws attach " + id + "; echo \"unreachable=$?\"; stty -g > " + after.string() + ".unreachable");
  CHECK(tmux.wait_for("unreachable=65"));
  CHECK(tmux.child_of_pane("ptyhub") == 0);
  for (const char* suffix : {".expired", ".unreachable"}) {
    const std::string file = after.string() + suffix;
    REQUIRE(eventually([&] { return fs::exists(file) && !read_text(file).empty(); }, 10s));
    CHECK(read_text(file) == read_text(before));
  }

  // Killed by a signal while attached: the handler restores the terminal before the default action.
  const fs::path killed = tmux.dir() / "killed";
  tmux.line("ptyhub attach " + id + "; echo \"killed=$?\"; stty -g > " + killed.string());
  REQUIRE(tmux.wait_for("inner$ "));
  const pid_t client = tmux.child_of_pane("ptyhub");
  REQUIRE(client > 0);
  REQUIRE(::kill(client, SIGTERM) == 0);
  CHECK(tmux.wait_for("killed=143"));
  REQUIRE(eventually([&] { return fs::exists(killed) && !read_text(killed).empty(); }, 10s));
  CHECK(read_text(killed) == read_text(before));
}

TEST_CASE("cli: ls and kill and share and watch") {
  DaemonProcess daemon;
  REQUIRE(daemon.started());
  const std::string url = "ws://127.0.0.1:" + std::to_string(daemon.port()) + "/ws";
  const std::map<std::string, std::string> alice = {{"PTYHUB_URL", url}, {"PTYHUB_TOKEN", daemon.token("alice")}};
  const std::map<std::string, std::string> bob = {{"PTYHUB_URL", url}, {"PTYHUB_TOKEN", daemon.token("bob")}};
  const std::string id = create_terminal(daemon, "alice");

  CliResult table = run_cli({"ls"}, alice);
  CHECK(table.status == 0);
  CHECK(table.out.starts_with("ID"));
  CHECK(table.out.find(id) != std::string::npos);
  CliResult listed = run_cli({"ls", "--json"}, alice);
  CHECK(listed.status == 0);
  const auto parsed = nlohmann::json::parse(listed.out, nullptr, false);
  REQUIRE(parsed.is_array());
  CHECK(parsed.size() == 1);
  CHECK(parsed[0]["id"] == id);

  CHECK(run_cli({"ls", "--json"}, bob).out.find(id) == std::string::npos);
  CHECK(run_cli({"share", id, "bob", "read"}, alice).status == 0);
  CHECK(run_cli({"ls"}, bob).out.find(id) != std::string::npos);
  CHECK(run_cli({"kill", id}, bob).status == 67);  // read only

  // watch (not a tty: stdin unused) follows the output until the terminal ends, with its status.
  TestClient writer;
  REQUIRE(writer.connect_as(daemon, "alice"));
  CHECK(writer.request("shell.input", {{"terminalId", id}, {"data", "echo watched-$((7*6))\n"}}));
  CliResult watched;
  std::thread watcher([&] { watched = run_cli({"watch", id}, bob); });
  CHECK(writer.request("shell.input", {{"terminalId", id}, {"data", "exit 9\n"}}));
  watcher.join();
  CHECK(watched.status == 9);
  CHECK(watched.out.find("watched-42") != std::string::npos);

  const std::string other = create_terminal(daemon, "alice");
  CHECK(run_cli({"kill", other, "--signal", "KILL"}, alice).status == 0);
  CliResult exited = run_cli({"ls", "--state", "exited"}, alice);
  CHECK(eventually([&] { return run_cli({"ls", "--state", "exited"}, alice).out.find(other) != std::string::npos; }, 10s));
  (void)exited;
}

TEST_CASE("cli: wss with --ca and a unix socket") {
  TempDir dir("ptyhub-cli-tls");
  REQUIRE(!dir.path().empty());
  const fs::path crt = dir / "server.crt";
  const fs::path key = dir / "server.key";
  CliResult made = run_sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=127.0.0.1"
                          " -addext subjectAltName=IP:127.0.0.1 -keyout " + shell_quote(key.string()) + " -out " +
                              shell_quote(crt.string()), {});
  REQUIRE(made.status == 0);
  const fs::path socket = dir / "ptyhub.sock";
  DaemonProcess daemon({"--tls-cert", crt.string(), "--tls-key", key.string(), "--listen", "unix:" + socket.string()});
  INFO(daemon.log());
  REQUIRE(daemon.started());
  const std::string id = create_terminal(daemon, "alice", true);  // the test's client accepts any certificate
  const std::map<std::string, std::string> env = {{"PTYHUB_TOKEN", daemon.token("alice")}};
  const std::string wss = "wss://127.0.0.1:" + std::to_string(daemon.port()) + "/ws";

  CliResult verified = run_cli({"--url", wss, "--ca", crt.string(), "ls"}, env);
  INFO(verified.err);
  CHECK(verified.status == 0);
  CHECK(verified.out.find(id) != std::string::npos);
  CliResult untrusted = run_cli({"--url", wss, "ls"}, env);  // the system's CAs do not know this certificate
  CHECK(untrusted.status == 65);
  CHECK(run_cli({"--url", wss, "--ca", (dir / "missing.crt").string(), "ls"}, env).status == 64);

  CliResult over_unix = run_cli({"--url", "unix:" + socket.string(), "ls"}, env);
  INFO(over_unix.err);
  CHECK(over_unix.status == 0);
  CHECK(over_unix.out.find(id) != std::string::npos);
}

TEST_CASE("cli: watch sends nothing that is typed and detaches") {
  DaemonProcess daemon;
  REQUIRE(daemon.started());
  const std::string id = create_terminal(daemon, "alice");
  const std::string url = "ws://127.0.0.1:" + std::to_string(daemon.port()) + "/ws";
  Tmux tmux(outer_shell(url, daemon.token("alice")), 100, 30);
  REQUIRE(tmux.started());
  REQUIRE(tmux.wait_for("outer$ "));
  tmux.line("ptyhub watch " + id + "; echo \"watch=$?\"");
  REQUIRE(tmux.wait_for("inner$ "));
  tmux.line("echo typed-$((1+1))");  // typed into the watcher: must not reach the terminal

  TestClient writer;
  REQUIRE(writer.connect_as(daemon, "alice"));
  CHECK(writer.request("shell.input", {{"terminalId", id}, {"data", "echo written-$((2+3))\n"}}));
  CHECK(tmux.wait_for("written-5"));
  CHECK(tmux.capture().find("typed-2") == std::string::npos);
  tmux.keys({"C-\\"});
  tmux.keys({"d"});
  CHECK(tmux.wait_for("watch=0"));
  // The terminal never saw the typed line: its own output has written-5 and no typed-2.
  auto subscribed = writer.request("subscribe", {{"channel", "shell:terminal:" + id}});
  REQUIRE(subscribed);
  CHECK(writer.wait_output(id, "written-5"));
  CHECK(writer.output(id).text.find("typed") == std::string::npos);

  // attach without TERMINAL: the newest running shell.
  const std::string newest = create_terminal(daemon, "alice");
  CHECK(newest != id);
  tmux.line("ptyhub attach; echo \"attach=$?\"");
  REQUIRE(tmux.wait_for_count("inner$ ", 2));
  tmux.line("echo $PTYHUB_TERMINAL_ID");
  CHECK(tmux.wait_for("\n" + newest));
  tmux.line("exit 6");
  CHECK(tmux.wait_for("attach=6"));
}
