// Git operations (docs/protocol.md §4 Requests, `git.operation.*`): real git against real repositories made
// in a temporary directory. clone with parsed progress, then fetch / pull / push / status / log / diff /
// checkout / branch on the clone; failures, cancel, timeout, shutdown, the per-user limit, lifecycle events
// on shell:terminals, metrics, and every request that must be refused before a process starts.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>

#include "tests/support/daemon_process.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_client.hpp"

namespace ptyhub::test {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kGitScopes = "git:run terminal:read";
constexpr std::chrono::milliseconds kOperationTimeout = 20s;

// A scratch directory of this file's tests.
class TempDir : public test::TempDir {
 public:
  TempDir() : test::TempDir("ptyhub-git") {}
};

struct GitResult {
  int status = -1;  // wait status; -1 when git could not be run or overran its deadline
  std::string output;

  bool ok() const { return status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0; }
};

// The environment of the test's own git commands: no system or global configuration, a fixed
// identity, and a large malloc top pad (git's many small allocations otherwise cost one brk each).
std::vector<std::string> own_git_environment() {
  std::vector<std::string> env;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string_view text = *entry;
    if (!text.starts_with("GIT_") && !text.starts_with("GLIBC_TUNABLES=") && !text.starts_with("LC_ALL=")) {
      env.emplace_back(text);
    }
  }
  env.insert(env.end(), {"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_AUTHOR_NAME=ptyhub test",
                         "GIT_AUTHOR_EMAIL=test@ptyhub.invalid", "GIT_COMMITTER_NAME=ptyhub test",
                         "GIT_COMMITTER_EMAIL=test@ptyhub.invalid", "GIT_TERMINAL_PROMPT=0", "LC_ALL=C",
                         "GLIBC_TUNABLES=glibc.malloc.top_pad=67108864"});
  return env;
}

// Runs `git -c init.defaultBranch=main <args>` in `cwd` with stdin from `input` (or /dev/null) and
// stdout+stderr captured; a git still running after `timeout` is killed.
GitResult git(const fs::path& cwd, const std::vector<std::string>& args, const fs::path& input = "/dev/null",
              std::chrono::milliseconds timeout = 60s) {
  GitResult result;
  std::vector<std::string> argv = {"git", "-c", "init.defaultBranch=main"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> argv_ptrs;
  for (auto& arg : argv) argv_ptrs.push_back(arg.data());
  argv_ptrs.push_back(nullptr);
  std::vector<std::string> env = own_git_environment();
  std::vector<char*> env_ptrs;
  for (auto& entry : env) env_ptrs.push_back(entry.data());
  env_ptrs.push_back(nullptr);

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return result;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());
  posix_spawn_file_actions_addopen(&actions, 0, input.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 2);
  pid_t pid = -1;
  const int spawned = ::posix_spawnp(&pid, "git", &actions, nullptr, argv_ptrs.data(), env_ptrs.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipe_fds[1]);
  if (spawned != 0) {
    ::close(pipe_fds[0]);
    return result;
  }
  const auto deadline = Clock::now() + timeout;
  bool overran = false;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      overran = true;
      ::kill(pid, SIGKILL);
      break;
    }
    pollfd entry{pipe_fds[0], POLLIN, 0};
    if (::poll(&entry, 1, static_cast<int>(left)) <= 0) continue;
    char buffer[4096];
    const ssize_t n = ::read(pipe_fds[0], buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    result.output.append(buffer, static_cast<size_t>(n));
  }
  ::close(pipe_fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.status = overran ? -1 : status;
  return result;
}

// git that must succeed; returns its output without the trailing newline.
std::string git_ok(const fs::path& cwd, const std::vector<std::string>& args, const fs::path& input = "/dev/null") {
  GitResult result = git(cwd, args, input);
  std::string command = "git";
  for (const auto& arg : args) command += " " + arg;
  INFO("in ", cwd.string(), ": ", command, "\n", result.output);
  REQUIRE(result.ok());
  while (!result.output.empty() && result.output.back() == '\n') result.output.pop_back();
  return result.output;
}

void write_file(const fs::path& path, const std::string& content) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out << content;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string file_name(size_t index) {
  char name[32];
  std::snprintf(name, sizeof name, "d%03zu/f%05zu.txt", index / 100, index);
  return name;
}

// A work tree at `dir` with `count` small unique files in one commit.
void make_work_tree(const fs::path& dir, size_t count, const std::string& subject) {
  fs::create_directories(dir);
  for (size_t i = 0; i < count; ++i)
    write_file(dir / file_name(i), "file " + std::to_string(i) + " of " + subject + "\n");
  git_ok(dir, {"init", "-q"});
  git_ok(dir, {"add", "-A"});
  git_ok(dir, {"commit", "-q", "-m", subject});
}

// A bare repository at `dir` holding one commit of `count` unique files, written by git fast-import
// (one pack, no per-file work tree), for clones that take a while.
void make_big_bare(const fs::path& dir, size_t count, const fs::path& scratch) {
  const fs::path stream_path = scratch / "fast-import.stream";
  {
    std::ofstream stream(stream_path, std::ios::binary);
    for (size_t i = 0; i < count; ++i) {
      const std::string content = "blob number " + std::to_string(i) + " of a large repository\n";
      stream << "blob\nmark :" << i + 1 << "\ndata " << content.size() << "\n" << content << "\n";
    }
    const std::string message = "many files\n";
    stream << "commit refs/heads/main\nauthor T <t@ptyhub.invalid> 1700000000 +0000\n"
           << "committer T <t@ptyhub.invalid> 1700000000 +0000\ndata " << message.size() << "\n"
           << message;
    for (size_t i = 0; i < count; ++i) stream << "M 100644 :" << i + 1 << " " << file_name(i) << "\n";
    stream << "\n";
  }
  git_ok(scratch, {"init", "-q", "--bare", dir.string()});
  git_ok(scratch, {"--git-dir=" + dir.string(), "fast-import", "--quiet"}, stream_path);
  fs::remove(stream_path);
}

std::string file_url(const fs::path& path) { return "file://" + path.string(); }

std::string channel_of(const std::string& terminal_id) { return "shell:terminal:" + terminal_id; }

bool is_event(const Json& message, std::string_view type, std::string_view channel) {
  return message.is_object() && message.value("type", "") == type && message.value("channel", "") == channel;
}

std::string operation_of(const Json& message) {
  if (!message.contains("data") || !message["data"].is_object()) return {};
  return message["data"].value("operationId", "");
}

// What one client saw of one git operation.
struct Run {
  std::optional<Json> reply;  // git.operation.started, or the error
  std::string operation_id;
  std::string terminal_id;
  std::size_t from = 0;  // history index where the request was sent
  std::optional<Json> completed;
  std::vector<Json> progress;  // data of each git.operation.progress, in order
  std::string output;

  bool started() const { return reply && reply->value("type", "") == "git.operation.started"; }
};

// Sends git.operation.start; when it started, waits (up to `timeout`) for git.operation.completed
// on the operation's channel unless `wait` is false.
Run start(TestClient& client, const Json& data, bool wait = true,
          std::chrono::milliseconds timeout = kOperationTimeout) {
  Run run;
  run.from = client.mark();
  run.reply = client.request("git.operation.start", data, 10s);
  if (!run.started() || !(*run.reply)["data"].is_object()) return run;
  run.operation_id = (*run.reply)["data"].value("operationId", "");
  run.terminal_id = (*run.reply)["data"].value("terminalId", "");
  if (!wait) return run;
  run.completed = client.wait_for(
      [&](const Json& m) { return is_event(m, "git.operation.completed", channel_of(run.terminal_id)); }, timeout,
      run.from);
  return run;
}

// Terminal output without CSI escape sequences (git colours what it writes to a PTY) and '\r'.
std::string plain(const std::string& text) {
  static const std::regex kEscape("\x1b\\[[0-9;?]*[ -/]*[@-~]|\r");
  return std::regex_replace(text, kEscape, "");
}

// Fills `run.progress` and `run.output` from what the client received so far.
void collect(TestClient& client, Run& run) {
  run.progress.clear();
  const auto& history = client.history();
  for (std::size_t i = run.from; i < history.size(); ++i) {
    if (is_event(history[i], "git.operation.progress", channel_of(run.terminal_id))) {
      run.progress.push_back(history[i]["data"]);
    }
  }
  run.output = plain(client.output(run.terminal_id).text);
}

// The history index of the first message after `from` satisfying `predicate`, or npos.
std::size_t index_of(TestClient& client, std::size_t from, const Predicate& predicate) {
  const auto& history = client.history();
  for (std::size_t i = from; i < history.size(); ++i) {
    if (predicate(history[i])) return i;
  }
  return std::string::npos;
}

// Checks the started reply, the channel's git.operation.started, the output stream from offset 0,
// shell.exit before exactly one git.operation.completed, and that completed reports `status`.
void check_run(TestClient& client, Run& run, const Json& request, const std::string& status) {
  INFO("request ", request.dump(), " -> ", brief(run.reply));
  REQUIRE(run.started());
  const Json& started = (*run.reply)["data"];
  CHECK(!run.operation_id.empty());
  CHECK(!run.terminal_id.empty());
  CHECK(started["operation"] == request["operation"]);
  CHECK(started["repo"] == request["repo"]);
  CHECK(started["args"] == request.value("args", Json::array()));
  CHECK(is_iso_millis(started["startedAt"]));

  REQUIRE_MESSAGE(run.completed, "no git.operation.completed");
  collect(client, run);
  INFO("output:\n", run.output);
  const Json& completed = (*run.completed)["data"];
  CHECK(completed["operationId"] == run.operation_id);
  CHECK(completed["terminalId"] == run.terminal_id);
  CHECK(completed["operation"] == request["operation"]);
  CHECK(completed["repo"] == request["repo"]);
  CHECK(completed["status"] == status);
  CHECK(completed["durationMs"].is_number_unsigned());
  if (status == "succeeded") CHECK(completed["exitCode"] == 0);
  if (status != "failed") CHECK_FALSE(completed.contains("error"));

  const std::string channel = channel_of(run.terminal_id);
  const std::size_t channel_started = index_of(client, run.from, [&](const Json& m) {
    return is_event(m, "git.operation.started", channel) && operation_of(m) == run.operation_id;
  });
  CHECK_MESSAGE(channel_started != std::string::npos, "no git.operation.started on ", channel);
  if (channel_started != std::string::npos) CHECK(client.history()[channel_started]["data"] == started);
  // the reply comes before anything published on the operation's channel
  const std::size_t reply_at = index_of(client, run.from, [&](const Json& m) { return m == *run.reply; });
  const std::size_t first_on_channel =
      index_of(client, run.from, [&](const Json& m) { return m.is_object() && m.value("channel", "") == channel; });
  CHECK(reply_at < first_on_channel);

  const TerminalOutput& output = client.output(run.terminal_id);
  for (const auto& problem : output.problems) FAIL_CHECK(problem);
  if (!output.chunks.empty()) CHECK(output.first_offset == std::optional<std::uint64_t>(0));
  REQUIRE_MESSAGE(output.exit, "no shell.exit before git.operation.completed");
  CHECK((*output.exit)["outputBytes"] == output.next);
  if (completed["exitCode"].is_number()) CHECK((*output.exit)["exitCode"] == completed["exitCode"]);

  const std::size_t exit_at = index_of(client, run.from, [&](const Json& m) {
    return is_event(m, "shell.exit", channel) && m["data"].value("terminalId", "") == run.terminal_id;
  });
  const std::size_t completed_at =
      index_of(client, run.from, [&](const Json& m) { return is_event(m, "git.operation.completed", channel); });
  CHECK(exit_at < completed_at);
  for (const Json& progress : run.progress) {
    CHECK(progress["operationId"] == run.operation_id);
    CHECK(progress["phase"].is_string());
    CHECK(progress["current"].is_number_unsigned());
  }
}

// Every git.operation.completed this client received on a terminal channel, counted by operation.
std::map<std::string, int> completions(TestClient& client) {
  std::map<std::string, int> counts;
  for (const Json& m : client.history()) {
    if (m.is_object() && m.value("type", "") == "git.operation.completed" &&
        m.value("channel", "").starts_with("shell:terminal:")) {
      ++counts[operation_of(m)];
    }
  }
  return counts;
}

// Progress rises monotonically within each phase, and the transfer phases end at 100 %.
void check_progress(const std::vector<Json>& progress) {
  std::map<std::string, Json> last;
  std::vector<std::string> order;
  for (const Json& p : progress) {
    INFO("progress ", p.dump());
    const std::string phase = p.value("phase", "");
    CHECK_FALSE(phase.starts_with("remote:"));
    if (p["percent"].is_number()) {
      CHECK(p["percent"].get<int>() >= 0);
      CHECK(p["percent"].get<int>() <= 100);
      REQUIRE(p["total"].is_number_unsigned());
      CHECK(p["current"].get<std::uint64_t>() <= p["total"].get<std::uint64_t>());
    } else {
      CHECK(p["percent"].is_null());
    }
    auto it = last.find(phase);
    if (it == last.end()) {
      order.push_back(phase);
    } else {
      const Json& before = it->second;
      INFO("after ", before.dump());
      CHECK(p["current"].get<std::uint64_t>() >= before["current"].get<std::uint64_t>());
      if (p["percent"].is_number() && before["percent"].is_number()) {
        CHECK(p["percent"].get<int>() >= before["percent"].get<int>());
        CHECK(p["total"] == before["total"]);
      }
    }
    last[phase] = p;
  }
  std::string phases;
  for (const auto& phase : order) phases += "'" + phase + "' ";
  INFO("phases: ", phases);
  REQUIRE(last.count("Receiving objects") == 1);
  CHECK(last["Receiving objects"]["percent"] == 100);
  CHECK(last["Receiving objects"]["current"] == last["Receiving objects"]["total"]);
  CHECK(last["Receiving objects"]["total"].get<std::uint64_t>() >= 3000);
  if (last.count("Resolving deltas") != 0) CHECK(last["Resolving deltas"]["percent"] == 100);
}

// The terminal of `terminal_id` in this client's shell.list.
Json listed_terminal(TestClient& client, const std::string& terminal_id) {
  auto reply = client.request("shell.list");
  INFO("shell.list -> ", brief(reply));
  REQUIRE(reply);
  REQUIRE((*reply)["type"] == "shell.list");
  for (const Json& terminal : (*reply)["data"]["terminals"]) {
    if (terminal.value("id", "") == terminal_id) return terminal;
  }
  FAIL("terminal " << terminal_id << " is not in shell.list");
  return Json::object();
}

std::size_t listed_count(TestClient& client) {
  auto reply = client.request("shell.list");
  REQUIRE(reply);
  REQUIRE((*reply)["type"] == "shell.list");
  return (*reply)["data"]["terminals"].size();
}

std::string describe(const std::vector<ProcessInfo>& processes) {
  std::string text;
  for (const auto& p : processes) {
    text += std::to_string(p.pid) + "(" + p.command + "," + p.state + ",ppid " + std::to_string(p.parent) + ") ";
  }
  return text;
}

// Waits until no process of the session led by `leader` is left, reaping orphans adopted here.
bool session_gone(pid_t leader) {
  return eventually(
      [&] {
        reap_adopted_zombies(processes_in_session(leader));
        return processes_in_session(leader).empty() && !process_exists(leader);
      },
      10s);
}

// The value of a metrics sample line `name` (labels included), or -1 when absent.
double metric(int port, const std::string& name) {
  auto response = http_get(port, "/metrics");
  REQUIRE(response);
  REQUIRE(response->status == 200);
  const std::string& body = response->body;
  for (std::size_t at = 0; at < body.size();) {
    std::size_t end = body.find('\n', at);
    if (end == std::string::npos) end = body.size();
    const std::string_view line = std::string_view(body).substr(at, end - at);
    if (line.starts_with(name) && line.size() > name.size() && line[name.size()] == ' ') {
      return std::stod(std::string(line.substr(name.size() + 1)));
    }
    at = end + 1;
  }
  return -1;
}

// Stops the daemon with SIGTERM and checks that it exited cleanly with no sanitizer report.
void stop_cleanly(DaemonProcess& daemon) {
  auto status = daemon.stop(SIGTERM);
  REQUIRE(status);
  CHECK(WIFEXITED(*status));
  CHECK_MESSAGE(daemon.sanitizer_findings().empty(), daemon.sanitizer_findings());
}

TEST_CASE("git: clone with progress, then fetch, pull, push, status, log, diff, checkout and branch") {
  TempDir tmp;
  REQUIRE(!tmp.path().empty());
  const fs::path root = tmp / "root";
  const fs::path seed = tmp / "seed";
  const fs::path origin = root / "origin.git";
  fs::create_directories(root);
  make_work_tree(seed, 3000, "initial import");
  git_ok(tmp.path(), {"clone", "-q", "--bare", seed.string(), origin.string()});
  git_ok(seed, {"remote", "add", "origin", origin.string()});

  DaemonProcess daemon({"--repos-root", root.string()});
  INFO(daemon.log());
  REQUIRE(daemon.started());
  auto client = connect_user(daemon, "alice", kGitScopes);

  // clone over file:// (git's transport, so there are objects to count and receive)
  const Json clone_request = {{"operation", "clone"}, {"repo", "clone"}, {"url", file_url(origin)}};
  Run clone = start(*client, clone_request);
  check_run(*client, clone, clone_request, "succeeded");
  check_progress(clone.progress);
  CHECK(clone.output.find("Cloning into") != std::string::npos);
  CHECK(clone.output.find("Receiving objects: 100%") != std::string::npos);
  const fs::path work = root / "clone";
  CHECK(fs::is_directory(work / ".git"));
  CHECK(read_file(work / file_name(2999)) == "file 2999 of initial import\n");
  CHECK(git_ok(work, {"rev-parse", "HEAD"}) == git_ok(seed, {"rev-parse", "HEAD"}));
  const Json terminal = listed_terminal(*client, clone.terminal_id);
  CHECK(terminal["kind"] == "git");
  CHECK(terminal["owner"] == "alice");

  // fetch and pull a commit that reached the bare repository from elsewhere
  write_file(seed / "upstream.txt", "from upstream\n");
  git_ok(seed, {"add", "upstream.txt"});
  git_ok(seed, {"commit", "-q", "-m", "upstream change"});
  git_ok(seed, {"push", "-q", "origin", "main"});
  const std::string upstream_head = git_ok(seed, {"rev-parse", "HEAD"});

  const Json fetch_request = {{"operation", "fetch"}, {"repo", "clone"}};
  Run fetch = start(*client, fetch_request);
  check_run(*client, fetch, fetch_request, "succeeded");
  CHECK(git_ok(work, {"rev-parse", "origin/main"}) == upstream_head);
  CHECK_FALSE(fs::exists(work / "upstream.txt"));

  const Json pull_request = {{"operation", "pull"}, {"repo", "clone"}, {"args", {"--ff-only"}}};
  Run pull = start(*client, pull_request);
  check_run(*client, pull, pull_request, "succeeded");
  CHECK(git_ok(work, {"rev-parse", "HEAD"}) == upstream_head);
  CHECK(read_file(work / "upstream.txt") == "from upstream\n");

  // push a commit made in the clone back to the bare repository
  write_file(work / "local.txt", "made in the clone\n");
  git_ok(work, {"add", "local.txt"});
  git_ok(work, {"commit", "-q", "-m", "local change from the clone"});
  const Json push_request = {{"operation", "push"}, {"repo", "clone"}};
  Run push = start(*client, push_request);
  check_run(*client, push, push_request, "succeeded");
  CHECK(git_ok(tmp.path(), {"--git-dir=" + origin.string(), "log", "-1", "--format=%s", "main"}) ==
        "local change from the clone");
  CHECK(git_ok(tmp.path(), {"--git-dir=" + origin.string(), "rev-parse", "main"}) ==
        git_ok(work, {"rev-parse", "HEAD"}));

  // read-only operations on a modified work tree
  write_file(work / file_name(1), "file 1, edited by the test\n");
  const Json status_request = {{"operation", "status"}, {"repo", "clone"}, {"args", {"--short"}}};
  Run status = start(*client, status_request);
  check_run(*client, status, status_request, "succeeded");
  CHECK(status.output.find(file_name(1)) != std::string::npos);

  const Json log_request = {{"operation", "log"}, {"repo", "clone"}, {"args", {"--oneline", "-n", "1"}}};
  Run log = start(*client, log_request);
  check_run(*client, log, log_request, "succeeded");
  CHECK(log.output.find("local change from the clone") != std::string::npos);
  CHECK(log.output.find("upstream change") == std::string::npos);

  const Json diff_request = {{"operation", "diff"}, {"repo", "clone"}};
  Run diff = start(*client, diff_request);
  check_run(*client, diff, diff_request, "succeeded");
  CHECK(diff.output.find(file_name(1)) != std::string::npos);
  CHECK(diff.output.find("+file 1, edited by the test") != std::string::npos);

  // a new branch, then listed
  const Json checkout_request = {{"operation", "checkout"}, {"repo", "clone"}, {"args", {"-b", "newbranch"}}};
  Run checkout = start(*client, checkout_request);
  check_run(*client, checkout, checkout_request, "succeeded");
  CHECK(git_ok(work, {"rev-parse", "--abbrev-ref", "HEAD"}) == "newbranch");

  const Json branch_request = {{"operation", "branch"}, {"repo", "clone"}, {"args", {"--list"}}};
  Run branch = start(*client, branch_request);
  check_run(*client, branch, branch_request, "succeeded");
  CHECK(branch.output.find("newbranch") != std::string::npos);
  CHECK(branch.output.find("main") != std::string::npos);

  // exactly one completion per operation, even after everything queued has arrived
  REQUIRE(client->request("ping"));
  const auto counts = completions(*client);
  CHECK(counts.size() == 9);
  for (const auto& [id, count] : counts) CHECK_MESSAGE(count == 1, "operation ", id, " completed ", count, " times");

  CHECK(metric(daemon.port(), R"(ptyhub_git_operations_total{operation="clone",status="succeeded"})") >= 1);
  CHECK(metric(daemon.port(), R"(ptyhub_git_operations_total{operation="push",status="succeeded"})") >= 1);
  CHECK(metric(daemon.port(), "ptyhub_git_operations_started_total") == 9);
  stop_cleanly(daemon);
}

TEST_CASE("git: a failing operation ends failed with git's exit code or is refused up front") {
  TempDir tmp;
  REQUIRE(!tmp.path().empty());
  const fs::path root = tmp / "root";
  make_work_tree(root / "small", 3, "small");

  DaemonProcess daemon({"--repos-root", root.string()});
  INFO(daemon.log());
  REQUIRE(daemon.started());
  auto client = connect_user(daemon, "alice", kGitScopes);

  const Json checkout_request = {{"operation", "checkout"}, {"repo", "small"}, {"args", {"no-such-branch"}}};
  Run checkout = start(*client, checkout_request);
  INFO("checkout of a missing ref -> ", brief(checkout.reply));
  if (checkout.started()) {
    check_run(*client, checkout, checkout_request, "failed");
    REQUIRE(checkout.completed);
    const Json& exit_code = (*checkout.completed)["data"]["exitCode"];
    REQUIRE(exit_code.is_number_integer());
    CHECK(exit_code.get<int>() != 0);
    // Why, in git's words: its first error line.
    const std::string error = (*checkout.completed)["data"].value("error", "");
    CHECK((error.starts_with("fatal: ") || error.starts_with("error: ")));
    CHECK(error.find("no-such-branch") != std::string::npos);
  } else {
    CHECK((is_error(checkout.reply, "not_found") || is_error(checkout.reply, "forbidden")));
  }
  CHECK(git_ok(root / "small", {"rev-parse", "--abbrev-ref", "HEAD"}) == "main");

  const Json clone_request = {{"operation", "clone"}, {"repo", "copy"}, {"url", file_url(root / "missing.git")}};
  Run clone = start(*client, clone_request);
  INFO("clone of a missing repository -> ", brief(clone.reply));
  if (clone.started()) {
    check_run(*client, clone, clone_request, "failed");
    REQUIRE(clone.completed);
    const Json& exit_code = (*clone.completed)["data"]["exitCode"];
    REQUIRE(exit_code.is_number_integer());
    CHECK(exit_code.get<int>() != 0);
    CHECK((*clone.completed)["data"].value("error", "").starts_with("fatal: "));
  } else {
    CHECK((is_error(clone.reply, "not_found", "data.url") || is_error(clone.reply, "forbidden", "data.url")));
  }
  CHECK_FALSE(fs::exists(root / "copy"));
  stop_cleanly(daemon);
}

// A clone of a repository of 30,000 blobs, started by alice on a daemon with `flags` (and --kill-grace 1),
// past its first progress event when `wait_for_progress`.
struct CloneInProgress {
  TempDir tmp;
  fs::path root = tmp / "root";
  std::unique_ptr<DaemonProcess> daemon;
  std::unique_ptr<TestClient> client;
  Json request;
  Run run;
  pid_t leader = 0;

  explicit CloneInProgress(std::vector<std::string> flags = {}, bool wait_for_progress = true) {
    become_subreaper();
    REQUIRE(!tmp.path().empty());
    fs::create_directories(root);
    make_big_bare(root / "big.git", 30000, tmp.path());
    flags.insert(flags.end(), {"--repos-root", root.string(), "--kill-grace", "1"});
    daemon = std::make_unique<DaemonProcess>(flags);
    INFO(daemon->log());
    REQUIRE(daemon->started());
    client = connect_user(*daemon, "alice", kGitScopes);
    request = {{"operation", "clone"}, {"repo", "bigclone"}, {"url", file_url(root / "big.git")}};
    run = start(*client, request, false);
    INFO("start -> ", brief(run.reply));
    REQUIRE(run.started());
    leader = listed_terminal(*client, run.terminal_id).value("pid", 0);
    REQUIRE(leader > 0);
    if (!wait_for_progress) return;
    auto first = client->wait_for(
        [&](const Json& m) { return is_event(m, "git.operation.progress", channel_of(run.terminal_id)); }, 15s,
        run.from);
    REQUIRE_MESSAGE(first, "no progress event");
  }
};

TEST_CASE("git: cancel right after the first progress event ends cancelled and leaves no git process") {
  CloneInProgress clone;
  DaemonProcess& daemon = *clone.daemon;
  INFO(daemon.log());
  auto& client = clone.client;
  const Json& request = clone.request;
  Run& run = clone.run;
  const pid_t leader = clone.leader;
  auto cancelled = client->request("git.operation.cancel", {{"operationId", run.operation_id}});
  INFO("cancel -> ", brief(cancelled));
  REQUIRE(cancelled);
  CHECK((*cancelled)["type"] == "ack");

  run.completed = client->wait_for(
      [&](const Json& m) { return is_event(m, "git.operation.completed", channel_of(run.terminal_id)); }, 15s,
      run.from);
  check_run(*client, run, request, "cancelled");
  REQUIRE(run.completed);
  const Json& exit_code = (*run.completed)["data"]["exitCode"];
  CHECK((exit_code.is_null() || (exit_code.is_number_integer() && exit_code.get<int>() != 0)));
  CHECK_MESSAGE(session_gone(leader), describe(processes_in_session(leader)));

  auto again = client->request("git.operation.cancel", {{"operationId", run.operation_id}});
  CHECK_MESSAGE(is_error(again, "conflict", "data.operationId"), brief(again));
  auto unknown = client->request("git.operation.cancel", {{"operationId", "no-such-operation"}});
  CHECK_MESSAGE(is_error(unknown, "not_found", "data.operationId"), brief(unknown));
  CHECK(metric(daemon.port(), R"(ptyhub_git_operations_total{operation="clone",status="cancelled"})") == 1);
  stop_cleanly(daemon);
}

TEST_CASE("git: a clone that outlives --git-timeout ends timed_out") {
  CloneInProgress clone({"--git-timeout", "0.3"}, false);
  DaemonProcess& daemon = *clone.daemon;
  INFO(daemon.log());
  auto& client = clone.client;
  const Json& request = clone.request;
  Run& run = clone.run;
  const pid_t leader = clone.leader;
  run.completed = client->wait_for(
      [&](const Json& m) { return is_event(m, "git.operation.completed", channel_of(run.terminal_id)); }, 15s,
      run.from);
  check_run(*client, run, request, "timed_out");
  REQUIRE(run.completed);
  CHECK((*run.completed)["data"]["durationMs"].get<std::uint64_t>() >= 250);
  CHECK_MESSAGE(session_gone(leader), describe(processes_in_session(leader)));
  CHECK(metric(daemon.port(), R"(ptyhub_git_operations_total{operation="clone",status="timed_out"})") == 1);
  stop_cleanly(daemon);
}

TEST_CASE("git: --max-git-operations-per-user 1 refuses a second concurrent operation with limit_exceeded") {
  become_subreaper();
  TempDir tmp;
  REQUIRE(!tmp.path().empty());
  const fs::path root = tmp / "root";
  fs::create_directories(root);
  make_big_bare(root / "big.git", 30000, tmp.path());

  DaemonProcess daemon({"--repos-root", root.string(), "--max-git-operations-per-user", "1", "--kill-grace", "1"});
  INFO(daemon.log());
  REQUIRE(daemon.started());
  auto alice = connect_user(daemon, "alice", kGitScopes);
  auto bob = connect_user(daemon, "bob", kGitScopes);

  const Json clone_request = {{"operation", "clone"}, {"repo", "bigclone"}, {"url", file_url(root / "big.git")}};
  Run clone = start(*alice, clone_request, false);
  INFO("clone -> ", brief(clone.reply));
  REQUIRE(clone.started());

  const Json log_request = {{"operation", "log"}, {"repo", "big.git"}, {"args", {"--oneline", "-n", "1"}}};
  Run second = start(*alice, log_request);
  CHECK_MESSAGE(is_error(second.reply, "limit_exceeded"), brief(second.reply));
  CHECK(listed_count(*alice) == 1);

  auto not_yours = bob->request("git.operation.cancel", {{"operationId", clone.operation_id}});
  CHECK_MESSAGE(is_error(not_yours, "not_found", "data.operationId"), brief(not_yours));

  Run other_user = start(*bob, log_request);
  check_run(*bob, other_user, log_request, "succeeded");
  CHECK(other_user.output.find("many files") != std::string::npos);

  // once the first operation is over, alice may start another
  auto cancelled = alice->request("git.operation.cancel", {{"operationId", clone.operation_id}});
  CHECK_MESSAGE((cancelled && (*cancelled)["type"] == "ack"), brief(cancelled));
  clone.completed = alice->wait_for(
      [&](const Json& m) { return is_event(m, "git.operation.completed", channel_of(clone.terminal_id)); }, 15s,
      clone.from);
  check_run(*alice, clone, clone_request, "cancelled");
  Run third = start(*alice, log_request);
  check_run(*alice, third, log_request, "succeeded");
  stop_cleanly(daemon);
}

TEST_CASE("git: SIGTERM to the daemon mid-clone ends git and leaves no process behind") {
  CloneInProgress clone;
  DaemonProcess& daemon = *clone.daemon;
  INFO(daemon.log());
  const pid_t leader = clone.leader;
  stop_cleanly(daemon);
  CHECK_MESSAGE(session_gone(leader), describe(processes_in_session(leader)));
}

TEST_CASE("git: a second connection on shell:terminals sees git.operation.started and .completed") {
  TempDir tmp;
  REQUIRE(!tmp.path().empty());
  const fs::path root = tmp / "root";
  make_work_tree(root / "small", 3, "small");

  DaemonProcess daemon({"--repos-root", root.string()});
  INFO(daemon.log());
  REQUIRE(daemon.started());
  auto runner = connect_user(daemon, "alice", kGitScopes);
  auto watcher = connect_user(daemon, "alice", "terminal:read");
  auto stranger = connect_user(daemon, "bob", "terminal:read");
  for (auto* client : {watcher.get(), stranger.get()}) {
    auto subscribed = client->request("subscribe", {{"channel", "shell:terminals"}});
    INFO(brief(subscribed));
    REQUIRE(subscribed);
    REQUIRE((*subscribed)["type"] == "subscribed");
  }

  const Json request = {{"operation", "status"}, {"repo", "small"}};
  Run run = start(*runner, request);
  check_run(*runner, run, request, "succeeded");

  const std::size_t from = 0;
  auto started = watcher->wait_for(
      [&](const Json& m) { return is_event(m, "git.operation.started", "shell:terminals"); }, 5s, from);
  INFO("watcher history up to now: ", watcher->history().size(), " messages");
  REQUIRE(started);
  CHECK((*started)["data"] == (*run.reply)["data"]);
  auto completed = watcher->wait_for(
      [&](const Json& m) { return is_event(m, "git.operation.completed", "shell:terminals"); }, 10s, from);
  REQUIRE(completed);
  CHECK((*completed)["data"] == (*run.completed)["data"]);
  const auto& history = watcher->history();
  const auto position = [&](const Json& wanted) {
    return std::find(history.begin(), history.end(), wanted) - history.begin();
  };
  CHECK(position(*started) < position(*completed));
  auto created = watcher->wait_for(
      [&](const Json& m) {
        return is_event(m, "shell.created", "shell:terminals") &&
               m["data"]["terminal"].value("id", "") == run.terminal_id;
      },
      5s, from);
  REQUIRE(created);
  CHECK((*created)["data"]["terminal"]["kind"] == "git");

  // a user who may not read the terminal hears nothing of it
  REQUIRE(stranger->request("ping"));
  for (const Json& m : stranger->history()) {
    CHECK_MESSAGE(!m.value("type", "").starts_with("git.operation."), m.dump());
  }
  stop_cleanly(daemon);
}

TEST_CASE("git: injection attempts are refused with forbidden and the right field, and start nothing") {
  TempDir tmp;
  REQUIRE(!tmp.path().empty());
  const fs::path root = tmp / "root";
  const fs::path outside = tmp / "outside";
  const fs::path touched = tmp / "x";
  make_work_tree(root / "small", 3, "small");
  make_work_tree(outside / "repo", 3, "outside");
  fs::create_directory_symlink(outside / "repo", root / "escape");
  fs::create_directory_symlink(outside, root / "linkdir");
  fs::create_directory_symlink(outside / "new", root / "dangling");  // a clone would create outside/new
  write_file(root / "gitfile" / ".git", "gitdir: " + (outside / "repo" / ".git").string() + "\n");
  fs::create_directories(root / "gitlink");
  fs::create_directory_symlink(outside / "repo" / ".git", root / "gitlink" / ".git");
  make_work_tree(root / "other", 1, "other");
  fs::create_directory_symlink(outside / "repo", root / "other" / "evil");  // a remote name git would read as a path
  // a template whose hook would run on checkout, had --template been passed on
  write_file(outside / "template" / "hooks" / "post-checkout", "#!/bin/sh\ntouch " + touched.string() + "\n");
  fs::permissions(outside / "template" / "hooks" / "post-checkout", fs::perms::owner_all);

  DaemonProcess daemon({"--repos-root", root.string()});
  INFO(daemon.log());
  REQUIRE(daemon.started());
  auto client = connect_user(daemon, "alice", kGitScopes);

  const std::string touch = "touch " + touched.string();
  const std::string small_url = file_url(root / "small");
  const auto clone = [&](const Json& args) {
    return Json{{"operation", "clone"}, {"repo", "copy"}, {"url", small_url}, {"args", args}};
  };
  const auto on_small = [&](const std::string& operation, const Json& args) {
    return Json{{"operation", operation}, {"repo", "small"}, {"args", args}};
  };
  const std::vector<std::pair<Json, std::string>> cases = {
      {clone({"--upload-pack=" + touch}), "data.args.0"},
      {clone({"--upload-pack", touch}), "data.args.0"},
      {clone({"-u", touch}), "data.args.0"},
      {clone({"-u" + touch}), "data.args.0"},
      {clone({"--progress", "-c", "core.sshCommand=" + touch}), "data.args.1"},
      {clone({"--config", "core.sshCommand=" + touch}), "data.args.0"},
      {clone({"--config=core.sshCommand=" + touch}), "data.args.0"},
      {clone({"--template=" + (outside / "template").string()}), "data.args.0"},
      {clone({"--exec=" + touch}), "data.args.0"},
      {on_small("fetch", {"-c", "core.sshCommand=" + touch}), "data.args.0"},
      {on_small("fetch", {"--upload-pack=" + touch}), "data.args.0"},
      {on_small("pull", {"--upload-pack=" + touch}), "data.args.0"},
      {on_small("push", {"--exec=" + touch}), "data.args.0"},
      {on_small("push", {"--receive-pack=" + touch}), "data.args.0"},
      {on_small("checkout", {"--output=" + touched.string()}), "data.args.0"},
      {on_small("log", {"--output=" + touched.string()}), "data.args.0"},
      {on_small("diff", {"--stat", "--output=" + touched.string()}), "data.args.1"},
      {on_small("status", {"../../etc/passwd"}), "data.args.0"},
      {{{"operation", "clone"}, {"repo", "copy"}, {"url", "ext::sh -c " + touch + "% >&2"}}, "data.url"},
      {{{"operation", "clone"}, {"repo", "copy"}, {"url", "ext::sh -c touch% " + touched.string()}}, "data.url"},
      {{{"operation", "clone"}, {"repo", "copy"}, {"url", "fd::3"}}, "data.url"},
      {{{"operation", "fetch"}, {"repo", "small"}, {"url", "ext::sh -c touch% " + touched.string()}}, "data.url"},
      {{{"operation", "clone"}, {"repo", "copy"}, {"url", "--upload-pack=" + touch}}, "data.url"},
      {{{"operation", "clone"}, {"repo", "copy"}, {"url", file_url(root / "escape")}}, "data.url"},
      {{{"operation", "clone"}, {"repo", "copy"}, {"url", (root / "escape").string()}}, "data.url"},
      {{{"operation", "clone"}, {"repo", "linkdir/copy"}, {"url", small_url}}, "data.repo"},
      {{{"operation", "clone"}, {"repo", "../copy"}, {"url", small_url}}, "data.repo"},
      {{{"operation", "status"}, {"repo", "../../etc"}}, "data.repo"},
      {{{"operation", "status"}, {"repo", "/etc"}}, "data.repo"},
      {{{"operation", "status"}, {"repo", (root / "small").string()}}, "data.repo"},
      {{{"operation", "status"}, {"repo", "escape"}}, "data.repo"},
      {{{"operation", "log"}, {"repo", "small/../../outside/repo"}}, "data.repo"},
      {{{"operation", "status"}, {"repo", "gitfile"}}, "data.repo"},
      {{{"operation", "status"}, {"repo", "gitlink"}}, "data.repo"},
      {{{"operation", "clone"}, {"repo", "dangling"}, {"url", small_url}}, "data.repo"},
      {{{"operation", "fetch"}, {"repo", "small"}, {"url", file_url(outside / "repo")}}, "data.url"},
      {{{"operation", "push"}, {"repo", "small"}, {"url", file_url(outside / "repo")}}, "data.url"},
      {{{"operation", "clone"}, {"repo", "copy"}, {"url", small_url + "/%2e%2e/%2e%2e/outside/repo"}}, "data.url"},
      {{{"operation", "fetch"}, {"repo", "small"}, {"args", {"../outside/repo"}}}, "data.args.0"},
      {{{"operation", "fetch"}, {"repo", "other"}, {"args", {"evil"}}}, "data.args.0"},
      {on_small("status", {"--", ":/"}), "data.args.1"},
      {on_small("checkout", {"main", "--", "../x"}), "data.args.1"},
      {on_small("branch", {"--list", "--output=" + touched.string()}), "data.args.1"},
  };
  for (const auto& [request, field] : cases) {
    auto reply = client->request("git.operation.start", request);
    CHECK_MESSAGE(is_error(reply, "forbidden", field), request.dump(), " -> ", brief(reply));
  }

  // ext and fd stay refused even when configured; a protocol left out of the list is refused
  DaemonProcess permissive({"--repos-root", root.string(), "--git-allowed-protocols", "https,ext,fd"});
  INFO(permissive.log());
  REQUIRE(permissive.started());
  auto other = connect_user(permissive, "alice", kGitScopes);
  for (const std::string& url : {"ext::sh -c touch% " + touched.string(), std::string("fd::3"), small_url}) {
    const Json request = {{"operation", "clone"}, {"repo", "copy"}, {"url", url}};
    auto reply = other->request("git.operation.start", request);
    CHECK_MESSAGE(is_error(reply, "forbidden", "data.url"), request.dump(), " -> ", brief(reply));
  }

  // nothing started, nothing written
  for (auto* c : {client.get(), other.get()}) {
    REQUIRE(c->request("ping"));
    CHECK(listed_count(*c) == 0);
    for (const Json& m : c->history()) CHECK_MESSAGE(!m.value("type", "").starts_with("git.operation."), m.dump());
  }
  CHECK(metric(daemon.port(), "ptyhub_git_operations_started_total") == 0);
  CHECK(metric(permissive.port(), "ptyhub_git_operations_started_total") == 0);
  CHECK_FALSE(fs::exists(touched));
  CHECK_FALSE(fs::exists(root / "copy"));
  CHECK_FALSE(fs::exists(outside / "copy"));
  CHECK_FALSE(fs::exists(tmp / "copy"));
  CHECK_FALSE(fs::exists(outside / "new"));
  CHECK(git_ok(root / "small", {"status", "--porcelain"}).empty());
  stop_cleanly(permissive);
  stop_cleanly(daemon);
}

TEST_CASE("git: unknown operation is bad_message, no git:run is forbidden, no repos_root is unavailable") {
  TempDir tmp;
  REQUIRE(!tmp.path().empty());
  const fs::path root = tmp / "root";
  make_work_tree(root / "small", 3, "small");

  DaemonProcess daemon({"--repos-root", root.string()});
  INFO(daemon.log());
  REQUIRE(daemon.started());
  auto client = connect_user(daemon, "alice", kGitScopes);
  for (const Json& operation : {Json("gc"), Json("config"), Json("Clone"), Json(""), Json(7), Json(nullptr)}) {
    const Json request = {{"operation", operation}, {"repo", "small"}};
    auto reply = client->request("git.operation.start", request);
    CHECK_MESSAGE(is_error(reply, "bad_message", "data.operation"), request.dump(), " -> ", brief(reply));
  }
  auto no_operation = client->request("git.operation.start", {{"repo", "small"}});
  CHECK_MESSAGE(is_error(no_operation, "bad_message", "data.operation"), brief(no_operation));
  auto no_repo = client->request("git.operation.start", {{"operation", "status"}});
  CHECK_MESSAGE(is_error(no_repo, "bad_message", "data.repo"), brief(no_repo));

  // without git:run: refused after the schema checks, before anything else
  auto user = connect_user(daemon, "alice", kUserScopes);
  auto forbidden = user->request("git.operation.start", {{"operation", "status"}, {"repo", "small"}});
  CHECK_MESSAGE(is_error(forbidden, "forbidden"), brief(forbidden));
  auto schema_first = user->request("git.operation.start", {{"operation", "gc"}, {"repo", "small"}});
  CHECK_MESSAGE(is_error(schema_first, "bad_message", "data.operation"), brief(schema_first));
  auto cancel = user->request("git.operation.cancel", {{"operationId", "whatever"}});
  CHECK_MESSAGE(is_error(cancel, "forbidden"), brief(cancel));
  CHECK(listed_count(*user) == 0);
  CHECK(metric(daemon.port(), "ptyhub_git_operations_started_total") == 0);
  stop_cleanly(daemon);

  DaemonProcess without_root;
  INFO(without_root.log());
  REQUIRE(without_root.started());
  auto git_user = connect_user(without_root, "alice", kGitScopes);
  auto unavailable = git_user->request("git.operation.start", {{"operation", "status"}, {"repo", "small"}});
  CHECK_MESSAGE(is_error(unavailable, "unavailable"), brief(unavailable));
  stop_cleanly(without_root);
}

}  // namespace
}  // namespace ptyhub::test
