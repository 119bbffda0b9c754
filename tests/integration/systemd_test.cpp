// Running under systemd (systemd/README.md): the units pass `systemd-analyze verify`; the notify protocol
// (READY, STATUS, WATCHDOG cadence, STOPPING) over a real datagram socket; socket activation through
// systemd-socket-activate with WebSocket sessions over the passed TCP and unix sockets; the JWT secret from
// $CREDENTIALS_DIRECTORY; processes a terminal leaves behind are ended and reaped with it.
#include <doctest/doctest.h>

#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "tests/support/proc_file.hpp"
#include "auth/jwt.hpp"
#include "core/unique_fd.hpp"
#include "tests/support/daemon_process.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_client.hpp"

#ifndef PTYHUB_SYSTEMD_SOURCE_DIR
#error "PTYHUB_SYSTEMD_SOURCE_DIR must name the systemd/ directory of the sources"
#endif
#ifndef PTYHUB_SYSTEMD_BINARY_DIR
#error "PTYHUB_SYSTEMD_BINARY_DIR must name the systemd/ directory of the build"
#endif

namespace ptyhub::test {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr const char* kSystemdAnalyze = "/usr/bin/systemd-analyze";
constexpr const char* kSocketActivate = "/usr/bin/systemd-socket-activate";

std::string random_suffix() {
  std::random_device device;
  return std::to_string(std::uniform_int_distribution<unsigned>(100000, 999999)(device));
}

// Runs a command and returns its exit status and combined output (the command finishes by itself).
std::pair<int, std::string> run_command(const std::string& command) {
  std::string output;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed"};
  char buffer[4096];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) output += buffer;
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

// The receiving end of $NOTIFY_SOCKET: a bound AF_UNIX datagram socket (a path, or abstract with '@').
class NotifyReceiver {
 public:
  explicit NotifyReceiver(std::string address) : address_(std::move(address)) {
    fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    address_.copy(un.sun_path, address_.size());
    if (address_[0] == '@') un.sun_path[0] = '\0';
    const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address_.size() +
                                               (address_[0] == '@' ? 0 : 1));
    bound_ = fd_ && ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&un), length) == 0;
  }
  bool bound() const { return bound_; }
  const std::string& address() const { return address_; }

  struct Message {
    std::string text;
    Clock::time_point at;
  };

  // Waits (poll, bounded) for the next datagram.
  std::optional<Message> receive(std::chrono::milliseconds timeout) {
    pollfd wait{fd_.get(), POLLIN, 0};
    if (::poll(&wait, 1, static_cast<int>(timeout.count())) <= 0) return std::nullopt;
    char buffer[4096];
    const ssize_t n = ::recv(fd_.get(), buffer, sizeof buffer, 0);
    if (n < 0) return std::nullopt;
    Message message{std::string(buffer, static_cast<size_t>(n)), Clock::now()};
    all_.push_back(message);
    return message;
  }
  // Receives until a message contains `needle` or the deadline passes.
  std::optional<Message> wait_for(std::string_view needle, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      auto message = receive(std::max(left, std::chrono::milliseconds(1)));
      if (message && message->text.find(needle) != std::string::npos) return message;
    }
    return std::nullopt;
  }
  std::string transcript() const {
    std::string text;
    for (const Message& m : all_) text += "[" + m.text + "] ";
    return text;
  }

 private:
  std::string address_;
  UniqueFd fd_;
  bool bound_ = false;
  std::vector<Message> all_;
};

// A free TCP port on 127.0.0.1 (bound and released; good enough for a local test).
int free_port() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) return 0;
  socklen_t length = sizeof address;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&address), &length);
  return ntohs(address.sin_port);
}

// Pids of live or zombie processes whose command line holds `marker`.
std::vector<pid_t> processes_with_argument(const std::string& marker) {
  std::vector<pid_t> found;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return found;
  while (dirent* entry = ::readdir(proc)) {
    const pid_t pid = static_cast<pid_t>(std::atoi(entry->d_name));
    if (pid <= 0) continue;
    const std::string text = read_proc_file("/proc/" + std::string(entry->d_name) + "/cmdline");
    if (text.find(marker) != std::string::npos) found.push_back(pid);
  }
  ::closedir(proc);
  return found;
}

pid_t parent_of(pid_t pid) {
  const std::string text = read_proc_file("/proc/" + std::to_string(pid) + "/stat");
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return 0;
  char state = 0;
  int parent = 0;
  std::sscanf(text.c_str() + close + 1, " %c %d", &state, &parent);
  return parent;
}

TEST_CASE("systemd: systemd-analyze verify accepts ptyhub.service and ptyhub.socket") {
  if (::access(kSystemdAnalyze, X_OK) != 0) {
    MESSAGE("skipped: ", kSystemdAnalyze, " is not installed (Debian package systemd)");
    return;
  }
  // The installed unit names the installed binary; verify a copy that names the built one.
  TempDir dir("ptyhub-sd");
  REQUIRE(!dir.path().empty());
  std::ifstream in(fs::path(PTYHUB_SYSTEMD_BINARY_DIR) / "ptyhub.service");
  REQUIRE(in);
  std::ostringstream unit;
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("ExecStart=")) line = std::string("ExecStart=") + PTYHUBD_PATH + " --config /etc/ptyhub/ptyhub.toml";
    unit << line << "\n";
  }
  std::ofstream(dir / "ptyhub.service") << unit.str();
  fs::copy_file(fs::path(PTYHUB_SYSTEMD_SOURCE_DIR) / "ptyhub.socket", dir / "ptyhub.socket");
  const auto [status, output] = run_command(std::string(kSystemdAnalyze) + " verify --man=no " +
                                            (dir / "ptyhub.socket").string() + " " +
                                            (dir / "ptyhub.service").string());
  INFO(output);
  CHECK(status == 0);
  CHECK(output.find("ptyhub.service:") == std::string::npos);  // no complaint about either unit
  CHECK(output.find("ptyhub.socket:") == std::string::npos);
}

TEST_CASE("systemd: READY=1 with STATUS, WATCHDOG=1 at half of WATCHDOG_USEC, STATUS updates, STOPPING=1") {
  TempDir dir("ptyhub-sd");
  NotifyReceiver notify((dir / "notify.sock").string());
  REQUIRE(notify.bound());
  DaemonLaunch launch;
  launch.environment = {{"NOTIFY_SOCKET", notify.address()}, {"WATCHDOG_USEC", "200000"}};
  DaemonProcess daemon(launch);
  INFO(daemon.log());
  REQUIRE(daemon.started());

  auto ready = notify.wait_for("READY=1", 5s);
  INFO(notify.transcript());
  REQUIRE(ready);
  CHECK(ready->text.find("STATUS=0 connections, 0 terminals") != std::string::npos);

  // Watchdog: 200 ms asked for, so a ping about every 100 ms. Six pings in a row, spaced 50..250 ms.
  std::vector<Clock::time_point> pings;
  const auto deadline = Clock::now() + 5s;
  while (pings.size() < 6 && Clock::now() < deadline) {
    auto message = notify.receive(1s);
    if (message && message->text == "WATCHDOG=1") pings.push_back(message->at);
  }
  REQUIRE(pings.size() == 6);
  const auto span = std::chrono::duration_cast<std::chrono::milliseconds>(pings.back() - pings.front()).count();
  CHECK(span >= 5 * 50);
  CHECK(span <= 5 * 250);

  // STATUS follows the connections and terminals.
  auto client = connect_user(daemon, "alice");
  const Json terminal = client->create_terminal({{"command", Json{"/bin/sh", "-c", "echo up; exec sleep 60"}}});
  REQUIRE(client->wait_output(terminal.value("id", ""), "up"));
  CHECK(notify.wait_for("STATUS=1 connection, 1 terminal", 5s));

  daemon.send_signal(SIGTERM);
  CHECK(notify.wait_for("STOPPING=1", 10s));
  auto status = daemon.wait_exit(15s);
  REQUIRE(status);
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 0);
}

TEST_CASE("systemd: NOTIFY_SOCKET in the abstract namespace") {
  NotifyReceiver notify("@ptyhub-test-notify-" + random_suffix());
  REQUIRE(notify.bound());
  DaemonLaunch launch;
  launch.environment = {{"NOTIFY_SOCKET", notify.address()}};
  DaemonProcess daemon(launch);
  INFO(daemon.log());
  REQUIRE(daemon.started());
  CHECK(notify.wait_for("READY=1", 5s));
}

TEST_CASE("systemd: SIGHUP reload is announced with RELOADING=1 and READY=1") {
  TempDir dir("ptyhub-sd");
  NotifyReceiver notify((dir / "notify.sock").string());
  REQUIRE(notify.bound());
  DaemonLaunch launch;
  launch.environment = {{"NOTIFY_SOCKET", notify.address()}};
  DaemonProcess daemon(launch);
  INFO(daemon.log());
  REQUIRE(daemon.started());
  REQUIRE(notify.wait_for("READY=1", 5s));
  daemon.send_signal(SIGHUP);
  CHECK(notify.wait_for("RELOADING=1", 5s));
  CHECK(notify.wait_for("READY=1", 5s));
  CHECK(daemon.wait_for_log("SIGHUP: keys reloaded", 5s));
}

TEST_CASE("systemd: socket activation - WebSocket sessions over the passed TCP and unix sockets") {
  if (::access(kSocketActivate, X_OK) != 0) {
    MESSAGE("skipped: ", kSocketActivate, " is not installed (Debian package systemd)");
    return;
  }
  TempDir dir("ptyhub-sd");
  const int port = free_port();
  REQUIRE(port > 0);
  const std::string unix_path = (dir / "ptyhub.sock").string();
  DaemonLaunch launch;
  launch.wrapper = {kSocketActivate, "-l", "127.0.0.1:" + std::to_string(port), "-l", unix_path};
  launch.listen_on_free_port = false;
  launch.extra_args = {"--listen", "127.0.0.1:1"};  // ignored: the passed sockets replace it
  launch.wait_for_port = false;  // systemd-socket-activate starts the daemon on the first connection
  DaemonProcess daemon(launch);
  REQUIRE(daemon.wait_for_log("Listening on " + unix_path + " as 4.", 5s));  // systemd-socket-activate is ready

  // TCP: this connection makes systemd-socket-activate exec the daemon, which then accepts it.
  WsOptions options;
  options.port = port;
  options.authorization = "Bearer " + daemon.token("alice");
  TestClient over_tcp;
  INFO(daemon.log());
  REQUIRE(over_tcp.connect(options, 10s));
  CHECK(daemon.wait_for_log("listening on 127.0.0.1:" + std::to_string(port) + " (socket activation)", 5s));
  CHECK(daemon.wait_for_log("listening on unix:" + unix_path + " (socket activation)", 5s));
  CHECK(daemon.log().find("127.0.0.1:1\n") == std::string::npos);
  TestClient* tcp = &over_tcp;
  const Json terminal = tcp->create_terminal({{"command", Json{"/bin/sh", "-c", "echo over-tcp-$((6*7))"}}});
  CHECK(tcp->wait_output(terminal.value("id", ""), "over-tcp-42"));
  // The LISTEN_* variables are gone from the daemon's environment, and so from the terminal's.
  const Json env_check = tcp->create_terminal({{"command", Json{"/bin/sh", "-c", "echo fds=${LISTEN_FDS:-none}"}}});
  CHECK(tcp->wait_output(env_check.value("id", ""), "fds=none"));

  // Unix socket.
  WsOptions unix_options;
  unix_options.unix_path = unix_path;
  unix_options.authorization = "Bearer " + daemon.token("bob");
  TestClient over_unix;
  REQUIRE(over_unix.connect(unix_options));
  const Json unix_terminal = over_unix.create_terminal({{"command", Json{"/bin/sh", "-c", "echo over-unix"}}});
  CHECK(over_unix.wait_output(unix_terminal.value("id", ""), "over-unix"));
}

TEST_CASE("systemd: malformed LISTEN_FDS stops the daemon with a clear message") {
  DaemonLaunch launch;
  launch.wrapper = {"/bin/sh", "-c", "LISTEN_PID=$$ LISTEN_FDS=two exec \"$0\" \"$@\""};
  launch.wait_for_port = false;
  DaemonProcess daemon(launch);
  auto status = daemon.wait_exit(10s);
  INFO(daemon.log());
  REQUIRE(status);
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 1);
  // The log is read by another thread: its last line may arrive just after the exit.
  CHECK(daemon.wait_for_log("LISTEN_FDS: not a number of sockets", 5s));
}

TEST_CASE("systemd: the JWT secret comes from $CREDENTIALS_DIRECTORY/jwt-secret") {
  DaemonLaunch launch;
  launch.secret_as_credential = true;  // and no --jwt-secret-file
  DaemonProcess daemon(launch);
  INFO(daemon.log());
  REQUIRE(daemon.started());
  CHECK(daemon.log().find("jwt_secret_file: credential") != std::string::npos);
  auto client = connect_user(daemon, "alice");  // a token signed with that secret is accepted
  REQUIRE(client);
  auto reply = client->request("shell.list");
  REQUIRE(reply);
  CHECK((*reply)["type"] == "shell.list");

  // A token signed with another secret is not.
  WsOptions options = daemon.ws_options();
  options.authorization = "Bearer " + auth::mint_token("another-secret-entirely", "mallory", kUserScopes,
                                                       static_cast<std::int64_t>(std::time(nullptr)), 60);
  WsClient intruder;
  intruder.connect(options);
  CHECK(intruder.wait_closed(5s));
  CHECK(intruder.close_code() == 4401);
}

TEST_CASE("systemd: what a shell daemonises with setsid is reaped and killed with its terminal") {
  DaemonProcess daemon;
  INFO(daemon.log());
  REQUIRE(daemon.started());
  auto client = connect_user(daemon, "alice");
  const std::string stays = "1000." + random_suffix();   // setsid without fork: the shell's child, new session
  const std::string forked = "1001." + random_suffix();  // setsid -f: re-parented to the daemon at once
  const Json terminal = client->create_terminal(
      {{"command", Json{"/bin/sh", "-c", "setsid sleep " + stays + " & setsid -f sleep " + forked +
                                             "; echo started; exec sleep 1000"}}});
  const std::string id = terminal.value("id", "");
  REQUIRE(client->wait_output(id, "started"));
  // The daemon is the subreaper: the sleep of `setsid -f` ends up its child. Until the intermediate
  // `setsid -f` has exited, that process and the forked one still before its exec carry the marker too,
  // with another parent; wait for the re-parented one.
  pid_t orphan = 0;
  const auto reparented = [&] {
    for (pid_t pid : processes_with_argument(forked)) {
      if (parent_of(pid) == daemon.pid()) orphan = pid;
    }
    return orphan > 0;
  };
  CHECK(eventually(reparented, 5s));
  REQUIRE(eventually([&] { return !processes_with_argument(stays).empty(); }, 5s));

  auto reply = client->request("shell.kill", {{"terminalId", id}});
  REQUIRE(reply);
  REQUIRE(client->wait_exit(id, 10s));
  // Gone, zombies included (a zombie still has /proc/<pid>, with an empty cmdline, so check by pid too).
  CHECK(eventually([&] { return processes_with_argument(stays).empty() && processes_with_argument(forked).empty(); },
                   10s));
  CHECK(eventually([&] { return orphan == 0 || !process_exists(orphan); }, 10s));
  // The daemon reaped it: either the session-wide SIGHUP of shell.kill ended it, or the daemon ended it
  // as left behind once the terminal had exited (which comes first depends on scheduling).
  CHECK(daemon.wait_for_log("reaped orphan " + std::to_string(orphan) + "\n", 2s));
}

}  // namespace
}  // namespace ptyhub::test
