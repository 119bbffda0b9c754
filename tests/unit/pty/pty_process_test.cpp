// PtyProcess against real PTYs and real processes, driven by a real libuv loop. Every wait runs the
// loop until a condition or a deadline; every test ends with no handle left on the loop, no fd
// leaked and no child (running or zombie) left behind.
#include <dirent.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/proc_file.hpp"
#include "pty/pty_process.hpp"

namespace ptyhub::pty {
namespace {
using test::read_proc_file;

constexpr uint64_t kDeadlineMs = 10000;
constexpr size_t kMiB = 1024 * 1024;

using Clock = std::chrono::steady_clock;

int64_t ms_since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

int count_open_fds() {
  DIR* dir = opendir("/proc/self/fd");
  REQUIRE(dir != nullptr);
  int count = 0;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  closedir(dir);
  return count - 1;  // the directory's own fd
}

// True when this process has no child at all: none running and no zombie (nothing is reaped here).
bool has_no_children() {
  siginfo_t info{};
  return waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) == -1 && errno == ECHILD;
}

// Snapshot of fds and children; verify() at the end of a test proves nothing leaked.
class ResourceCheck {
 public:
  ResourceCheck() {
    static bool libuv_globals_ready = false;  // libuv opens a process-wide pipe on the first loop
    if (!libuv_globals_ready) {
      uv_loop_t warmup;
      REQUIRE(uv_loop_init(&warmup) == 0);
      REQUIRE(uv_loop_close(&warmup) == 0);
      libuv_globals_ready = true;
    }
    fds_ = count_open_fds();
    REQUIRE(has_no_children());
  }
  void verify() const {
    CHECK(count_open_fds() == fds_);
    CHECK(has_no_children());
  }

 private:
  int fds_ = 0;
};

// A loop for one test. run_until polls its condition every few ms and after every event.
class TestLoop {
 public:
  TestLoop() { REQUIRE(uv_loop_init(&loop_) == 0); }
  ~TestLoop() {
    if (!closed_) close();
  }
  uv_loop_t* get() { return &loop_; }

  bool run_until(const std::function<bool()>& done, uint64_t timeout_ms = kDeadlineMs) {
    bool expired = false;
    uv_timer_t deadline;
    uv_timer_t poll;
    uv_timer_init(&loop_, &deadline);
    uv_timer_init(&loop_, &poll);
    deadline.data = &expired;
    uv_timer_start(&deadline, [](uv_timer_t* t) { *static_cast<bool*>(t->data) = true; }, timeout_ms, 0);
    uv_timer_start(&poll, [](uv_timer_t*) {}, 5, 5);
    while (!done() && !expired) uv_run(&loop_, UV_RUN_ONCE);
    uv_close(reinterpret_cast<uv_handle_t*>(&deadline), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&poll), nullptr);
    uv_run(&loop_, UV_RUN_NOWAIT);  // runs the close callbacks before the timers leave scope
    return done();
  }
  // Keeps the loop running for `ms`: shows that something does NOT happen meanwhile.
  void run_for(uint64_t ms) { run_until([] { return false; }, ms); }

  // Lets pending close callbacks run, then closes the loop; 0 when no handle was left.
  int close() {
    for (int i = 0; i < 10 && uv_run(&loop_, UV_RUN_NOWAIT) != 0; ++i) {
    }
    closed_ = true;
    return uv_loop_close(&loop_);
  }

 private:
  uv_loop_t loop_{};
  bool closed_ = false;
};

// Records what a PtyProcess reports.
struct Recorder {
  std::string output;
  size_t output_bytes = 0;
  size_t unexpected_bytes = 0;  // bytes differing from `expected_byte`, when set
  char expected_byte = 0;
  bool keep_output = true;
  int exits = 0;
  ExitStatus status;
  bool output_after_exit = false;
  int drained = 0;

  PtyProcess::Callbacks callbacks() {
    PtyProcess::Callbacks c;
    c.on_output = [this](std::string_view bytes) {
      if (exits > 0) output_after_exit = true;
      output_bytes += bytes.size();
      if (expected_byte != 0) {
        for (char b : bytes) unexpected_bytes += b != expected_byte;
      }
      if (keep_output) output.append(bytes);
    };
    c.on_exit = [this](ExitStatus s) {
      ++exits;
      status = s;
    };
    c.on_input_drained = [this] { ++drained; };
    return c;
  }
  bool saw(std::string_view text) const { return output.find(text) != std::string::npos; }
};

SpawnOptions options_for(std::vector<std::string> argv) {
  SpawnOptions options;
  options.argv = std::move(argv);
  options.cwd = "/";
  options.env = {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "TERM=dumb", "LANG=C", "PS1=$ "};
  return options;
}

std::unique_ptr<PtyProcess> spawn_ok(TestLoop& loop, const SpawnOptions& options, Recorder& recorder) {
  SpawnError error;
  auto process = PtyProcess::spawn(loop.get(), options, recorder.callbacks(), &error);
  INFO("spawn error: ", error.message);
  REQUIRE(process != nullptr);
  CHECK(error.failure == SpawnFailure::none);
  return process;
}

// Session id and process group of `pid` from /proc (0 when gone).
std::pair<pid_t, pid_t> session_and_group(pid_t pid) {
  const std::string text = read_proc_file("/proc/" + std::to_string(pid) + "/stat");
  size_t close = text.rfind(')');
  if (close == std::string::npos) return {0, 0};
  std::istringstream fields(text.substr(close + 1));
  char state = 0;
  long ppid = 0, pgrp = 0, session = 0;
  fields >> state >> ppid >> pgrp >> session;
  return {static_cast<pid_t>(session), static_cast<pid_t>(pgrp)};
}

// True while `pid` exists and is not a zombie.
bool process_is_live(pid_t pid) {
  const std::string text = read_proc_file("/proc/" + std::to_string(pid) + "/stat");
  size_t close = text.rfind(')');
  if (close == std::string::npos || close + 2 >= text.size()) return false;
  char state = text[close + 2];
  return state != 'Z' && state != 'X';
}

// The number printed after `key` in `output` (e.g. "job=1234"), or 0.
pid_t number_after(const std::string& output, const std::string& key) {
  size_t at = output.find(key);
  if (at == std::string::npos) return 0;
  return static_cast<pid_t>(std::atol(output.c_str() + at + key.size()));
}

// A scratch directory removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/ptyhub-pty-test-XXXXXX";
    REQUIRE(mkdtemp(pattern) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    for (const std::string& file : files_) unlink(file.c_str());
    rmdir(path_.c_str());
  }
  const std::string& path() const { return path_; }
  std::string write_file(const std::string& name, const std::string& content, mode_t mode) {
    std::string file = path_ + "/" + name;
    {
      std::ofstream out(file);
      out << content;
    }
    REQUIRE(chmod(file.c_str(), mode) == 0);
    files_.push_back(file);
    return file;
  }
  std::string symlink_to(const std::string& name, const std::string& target) {
    std::string link = path_ + "/" + name;
    REQUIRE(symlink(target.c_str(), link.c_str()) == 0);
    files_.push_back(link);
    return link;
  }

 private:
  std::string path_;
  std::vector<std::string> files_;
};

}  // namespace

TEST_CASE("input reaches a real shell and its output comes back") {
  ResourceCheck resources;
  {
    TestLoop loop;
    Recorder rec;
    auto process = spawn_ok(loop, options_for({"/bin/sh"}), rec);
    CHECK(process->pid() > 0);
    REQUIRE(process->write("echo hi-$((6*7))\n") == 0);
    CHECK(loop.run_until([&] { return rec.saw("hi-42"); }));
    REQUIRE(process->write("exit\n") == 0);
    CHECK(loop.run_until([&] { return rec.exits == 1; }));
    CHECK(rec.status.exit_code == 0);
    CHECK(rec.status.signal == 0);
    CHECK(process->exited());
    CHECK(process->write("late\n") == -EPIPE);
    CHECK(process->resize(90, 30) == -EPIPE);
    CHECK(process->signal_session(SIGTERM, 0) == -ESRCH);
    process.reset();
    CHECK(loop.close() == 0);
  }
  resources.verify();
}

TEST_CASE("the initial size is honoured and argv[0] is found through PATH") {
  ResourceCheck resources;
  {
    TestLoop loop;
    Recorder rec;
    SpawnOptions options = options_for({"stty", "size"});
    options.cols = 132;
    options.rows = 43;
    auto process = spawn_ok(loop, options, rec);
    CHECK(loop.run_until([&] { return rec.exits == 1; }));
    CHECK(rec.saw("43 132"));
    CHECK(rec.status.exit_code == 0);
    process.reset();
    CHECK(loop.close() == 0);
  }
  resources.verify();
}

TEST_CASE("resize changes what the child sees") {
  ResourceCheck resources;
  {
    TestLoop loop;
    Recorder rec;
    auto process = spawn_ok(loop, options_for({"/bin/sh"}), rec);
    REQUIRE(process->resize(100, 30) == 0);
    REQUIRE(process->write("stty size\n") == 0);
    CHECK(loop.run_until([&] { return rec.saw("30 100"); }));
    REQUIRE(process->write("exit\n") == 0);
    CHECK(loop.run_until([&] { return rec.exits == 1; }));
    process.reset();
    CHECK(loop.close() == 0);
  }
  resources.verify();
}

TEST_CASE("exit code and terminating signal are reported, once") {
  ResourceCheck resources;
  {
    TestLoop loop;
    Recorder rec;
    auto process = spawn_ok(loop, options_for({"/bin/sh", "-c", "echo before-exit; exit 7"}), rec);
    CHECK(loop.run_until([&] { return rec.exits == 1; }));
    CHECK(rec.status.exit_code == 7);
    CHECK(rec.status.signal == 0);
    CHECK(rec.saw("before-exit"));
    loop.run_for(100);
    CHECK(rec.exits == 1);
    CHECK_FALSE(rec.output_after_exit);
    process.reset();
    CHECK(loop.close() == 0);
  }
  {
    TestLoop loop;
    Recorder rec;
    auto process = spawn_ok(loop, options_for({"/bin/sh", "-c", "kill -TERM $$"}), rec);
    CHECK(loop.run_until([&] { return rec.exits == 1; }));
    CHECK(rec.status.signal == SIGTERM);
    CHECK(std::string(signal_name(rec.status.signal)) == "SIGTERM");
    process.reset();
    CHECK(loop.close() == 0);
  }
  resources.verify();
}

TEST_CASE("1 MiB printed by a process that exits at once is delivered whole, 20 times") {
  ResourceCheck resources;
  for (int run = 0; run < 20; ++run) {
    CAPTURE(run);
    TestLoop loop;
    Recorder rec;
    rec.keep_output = false;
    rec.expected_byte = 'x';
    SpawnOptions options = options_for({"/bin/sh", "-c", "head -c 1048576 /dev/zero | tr '\\0' x"});
    options.drain_grace_ms = 60000;  // the exit must come from EOF, not from the grace timer
    auto process = spawn_ok(loop, options, rec);
    CHECK(loop.run_until([&] { return rec.exits == 1; }));
    CHECK(rec.output_bytes == kMiB);
    CHECK(rec.unexpected_bytes == 0);
    CHECK(rec.status.exit_code == 0);
    CHECK_FALSE(rec.output_after_exit);
    process.reset();
    CHECK(loop.close() == 0);
  }
  resources.verify();
}

TEST_CASE("1 MiB of input to a slow reader is queued, written without blocking the loop, and drained") {
  ResourceCheck resources;
  {
    TestLoop loop;
    Recorder rec;
    auto process = spawn_ok(
        loop, options_for({"/bin/sh", "-c", "stty -echo; sleep 0.3; head -c 1048576 >/dev/null; echo done-reading"}),
        rec);
    std::string payload;
    while (payload.size() < kMiB) payload += std::string(63, 'a') + "\n";
    REQUIRE(payload.size() == kMiB);

    uv_timer_t ticker;
    int ticks = 0;
    uv_timer_init(loop.get(), &ticker);
    ticker.data = &ticks;
    uv_timer_start(&ticker, [](uv_timer_t* t) { ++*static_cast<int*>(t->data); }, 10, 10);

    Clock::time_point start = Clock::now();
    REQUIRE(process->write(payload) == 0);
    CHECK(ms_since(start) < 200);
    CHECK(process->input_above_high_water());
    CHECK(process->pending_input() > PtyProcess::kInputHighWater);

    CHECK(loop.run_until([&] { return rec.drained == 1; }));
    CHECK(ticks >= 10);  // the loop kept turning while the child slept
    CHECK(process->pending_input() <= PtyProcess::kInputLowWater);
    CHECK(loop.run_until([&] { return rec.exits == 1 && rec.saw("done-reading"); }));
    CHECK(process->pending_input() == 0);
    CHECK(rec.drained == 1);
    CHECK(rec.status.exit_code == 0);

    uv_close(reinterpret_cast<uv_handle_t*>(&ticker), nullptr);
    process.reset();
    CHECK(loop.close() == 0);
  }
  resources.verify();
}

TEST_CASE("spawn failures are reported synchronously, with nothing left behind") {
  ResourceCheck resources;
  TempDir dir;
  std::string not_executable = dir.write_file("plain-file", "echo never\n", 0644);
  {
    TestLoop loop;
    Recorder rec;
    SpawnError error;

    SpawnOptions options = options_for({"/bin/sh"});
    options.cwd = "/nonexistent-ptyhub-dir";
    CHECK(PtyProcess::spawn(loop.get(), options, rec.callbacks(), &error) == nullptr);
    CHECK(error.failure == SpawnFailure::cwd);
    CHECK(error.error_number == ENOENT);
    CHECK(error.message.find("/nonexistent-ptyhub-dir") != std::string::npos);
    CHECK(has_no_children());

    CHECK(PtyProcess::spawn(loop.get(), options_for({"ptyhub-no-such-command"}), rec.callbacks(), &error) == nullptr);
    CHECK(error.failure == SpawnFailure::command);
    CHECK(error.error_number == ENOENT);
    CHECK(error.message.find("ptyhub-no-such-command") != std::string::npos);
    CHECK(has_no_children());

    CHECK(PtyProcess::spawn(loop.get(), options_for({not_executable}), rec.callbacks(), &error) == nullptr);
    CHECK(error.failure == SpawnFailure::command);
    CHECK(error.error_number == EACCES);

    SpawnOptions via_path = options_for({"plain-file"});
    via_path.env = {"PATH=" + dir.path() + ":/usr/bin:/bin"};
    CHECK(PtyProcess::spawn(loop.get(), via_path, rec.callbacks(), &error) == nullptr);
    CHECK(error.failure == SpawnFailure::command);
    CHECK(error.error_number == EACCES);

    CHECK(PtyProcess::spawn(loop.get(), options_for({}), rec.callbacks(), nullptr) == nullptr);
    CHECK(rec.exits == 0);
    CHECK(rec.output_bytes == 0);
    CHECK(loop.close() == 0);
  }
  resources.verify();
}

TEST_CASE("argv[0] is looked up in the PATH of the given environment, not the daemon's") {
  ResourceCheck resources;
  TempDir dir;
  dir.write_file("ptyhub-tool", "#!/bin/sh\necho tool-ran-$1\n", 0755);
  {
    TestLoop loop;
    Recorder rec;
    SpawnOptions options = options_for({"ptyhub-tool", "ok"});
    options.env = {"PATH=/nonexistent:" + dir.path() + ":/usr/bin:/bin"};
    auto process = spawn_ok(loop, options, rec);
    CHECK(loop.run_until([&] { return rec.exits == 1; }));
    CHECK(rec.saw("tool-ran-ok"));
    process.reset();

    SpawnError error;
    CHECK(PtyProcess::spawn(loop.get(), options_for({"ptyhub-tool"}), rec.callbacks(), &error) == nullptr);
    CHECK(error.failure == SpawnFailure::command);
    CHECK(loop.close() == 0);
  }
  resources.verify();
}

TEST_CASE("the child starts with default signal dispositions, an empty mask and no inherited fd") {
  // Stand-ins for what the daemon's libraries do: SIGPIPE ignored, a signal blocked, an fd without CLOEXEC.
  struct sigaction ignore {};
  struct sigaction previous_pipe {};
  ignore.sa_handler = SIG_IGN;
  REQUIRE(sigaction(SIGPIPE, &ignore, &previous_pipe) == 0);
  sigset_t usr1;
  sigset_t previous_mask;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  REQUIRE(pthread_sigmask(SIG_BLOCK, &usr1, &previous_mask) == 0);
  int leaked = fcntl(STDERR_FILENO, F_DUPFD, 70);  // F_DUPFD: no CLOEXEC
  REQUIRE(leaked >= 70);

  ResourceCheck resources;
  {
    TestLoop loop;
    Recorder rec;
    auto status = spawn_ok(loop, options_for({"grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status"}), rec);
    CHECK(loop.run_until([&] { return rec.exits == 1; }));
    CHECK(rec.saw("SigIgn:\t0000000000000000"));
    CHECK(rec.saw("SigBlk:\t0000000000000000"));
    status.reset();

    Recorder pipe_rec;
    SpawnOptions pipe_options =
        options_for({"/bin/bash", "-c", "yes | head -c1 >/dev/null; echo status=${PIPESTATUS[0]}"});
    auto pipe = spawn_ok(loop, pipe_options, pipe_rec);
    CHECK(loop.run_until([&] { return pipe_rec.exits == 1; }));
    CHECK(pipe_rec.saw("status=141"));
    pipe.reset();

    Recorder fd_rec;
    auto fds = spawn_ok(loop, options_for({"/bin/ls", "-1", "/proc/self/fd"}), fd_rec);
    CHECK(loop.run_until([&] { return fd_rec.exits == 1; }));
    std::istringstream lines(fd_rec.output);
    std::set<int> listed;
    for (std::string line; std::getline(lines, line);) listed.insert(std::atoi(line.c_str()));
    CHECK(listed == std::set<int>{0, 1, 2, 3});  // stdio and ls's own directory fd
    fds.reset();
    CHECK(loop.close() == 0);
  }
  resources.verify();

  close(leaked);
  pthread_sigmask(SIG_SETMASK, &previous_mask, nullptr);
  sigaction(SIGPIPE, &previous_pipe, nullptr);
}

TEST_CASE("signal_session reaches a background job in its own process group") {
  ResourceCheck resources;
  {
    TestLoop loop;
    Recorder rec;
    auto process = spawn_ok(loop, options_for({"/bin/bash", "-c", "set -m; sleep 1000 & echo job=$!.; wait"}), rec);
    CHECK(loop.run_until([&] { return rec.saw("."); }));
    pid_t job = number_after(rec.output, "job=");
    REQUIRE(job > 0);
    auto [job_session, job_group] = session_and_group(job);
    CHECK(job_session == process->pid());
    CHECK(job_group == job);  // not the shell's group: kill(-pid) alone would miss it
    CHECK(session_has_processes(process->pid()));

    CHECK(process->signal_session(SIGTERM, 0) == 0);
    CHECK(loop.run_until([&] { return rec.exits == 1 && !session_has_processes(process->pid()); }));
    CHECK(rec.status.signal == SIGTERM);
    process.reset();
    CHECK(loop.close() == 0);
  }
  resources.verify();
}

TEST_CASE("a process ignoring SIGHUP gets SIGKILL after escalate_after_ms") {
  ResourceCheck resources;
  {
    TestLoop loop;
    Recorder rec;
    auto process = spawn_ok(loop, options_for({"/bin/sh", "-c", "trap '' HUP; echo ready; exec sleep 1000"}), rec);
    CHECK(loop.run_until([&] { return rec.saw("ready"); }));
    Clock::time_point start = Clock::now();
    CHECK(process->signal_session(SIGHUP, 300) == 0);
    CHECK(loop.run_until([&] { return rec.exits == 1; }));
    CHECK(ms_since(start) >= 250);
    CHECK(rec.status.signal == SIGKILL);
    process.reset();
    CHECK(loop.close() == 0);
  }
  resources.verify();
}

TEST_CASE("escalation also ends a job that outlives the shell - exit waits for the PTY to close") {
  ResourceCheck resources;
  {
    TestLoop loop;
    Recorder rec;
    SpawnOptions options = options_for(
        {"/bin/sh", "-c", "(trap '' HUP; exec sh -c 'echo job=$$.; exec sleep 1000') & wait"});
    options.drain_grace_ms = 5000;
    auto process = spawn_ok(loop, options, rec);
    pid_t sid = process->pid();
    CHECK(loop.run_until([&] { return rec.saw("."); }));
    pid_t job = number_after(rec.output, "job=");
    REQUIRE(job > 0);
    Clock::time_point start = Clock::now();
    CHECK(process->signal_session(SIGHUP, 300) == 0);
    CHECK(loop.run_until([&] { return !process_is_live(sid); }));
    CHECK(process_is_live(job));  // it ignores SIGHUP and still holds the PTY open
    CHECK(rec.exits == 0);        // so no EOF and no exit yet
    CHECK(loop.run_until([&] { return rec.exits == 1; }));
    CHECK(ms_since(start) >= 250);
    CHECK(ms_since(start) < 5000);  // EOF came from the SIGKILL, not from the drain grace
    CHECK(rec.status.signal == SIGHUP);
    CHECK(loop.run_until([&] { return !session_has_processes(sid); }));
    process.reset();
    CHECK(loop.close() == 0);
  }
  resources.verify();
}

TEST_CASE("without EOF, exit is reported drain_grace_ms after the reap, with the output before it") {
  ResourceCheck resources;
  {
    TestLoop loop;
    Recorder rec;
    // The job keeps the PTY open after the shell exits, so the master never reaches EOF.
    SpawnOptions options = options_for(
        {"/bin/sh", "-c", "(trap '' HUP; echo job-ready; exec sleep 1000) & read go; echo last-words; exit 3"});
    options.drain_grace_ms = 300;
    auto process = spawn_ok(loop, options, rec);
    pid_t sid = process->pid();
    CHECK(loop.run_until([&] { return rec.saw("job-ready"); }));
    Clock::time_point start = Clock::now();
    REQUIRE(process->write("go\n") == 0);
    CHECK(loop.run_until([&] { return !process_is_live(sid); }));
    CHECK(loop.run_until([&] { return rec.exits == 1; }));
    CHECK(ms_since(start) >= 250);
    CHECK(rec.status.exit_code == 3);
    CHECK(rec.saw("last-words"));
    CHECK(process->write("x") == -EPIPE);
    CHECK(session_has_processes(sid));  // the job is still there; no kill was asked for
    CHECK(process->signal_session(SIGKILL, 0) == 0);
    CHECK(loop.run_until([&] { return !session_has_processes(sid); }));
    process.reset();
    CHECK(loop.close() == 0);
  }
  resources.verify();
}

TEST_CASE("output still held while paused is delivered when the drain grace expires") {
  ResourceCheck resources;
  {
    TestLoop loop;
    Recorder rec;
    SpawnOptions options = options_for({"/bin/sh", "-c", "echo tail-bytes; exit 4"});
    options.drain_grace_ms = 200;
    auto process = spawn_ok(loop, options, rec);
    process->pause_output();
    CHECK(loop.run_until([&] { return rec.exits == 1; }));
    CHECK(rec.saw("tail-bytes"));
    CHECK(rec.status.exit_code == 4);
    CHECK_FALSE(rec.output_after_exit);
    process.reset();
    CHECK(loop.close() == 0);
  }
  resources.verify();
}

TEST_CASE("SIGINT without escalation leaves a process that handles it running") {
  ResourceCheck resources;
  {
    TestLoop loop;
    Recorder rec;
    auto process = spawn_ok(
        loop, options_for({"/bin/sh", "-c", "trap 'echo got-int' INT; echo ready; while :; do sleep 0.05; done"}), rec);
    CHECK(loop.run_until([&] { return rec.saw("ready"); }));
    CHECK(process->signal_session(SIGINT, 0) == 0);
    CHECK(loop.run_until([&] { return rec.saw("got-int"); }));
    loop.run_for(400);
    CHECK(rec.exits == 0);
    CHECK(session_has_processes(process->pid()));
    process.reset();  // the destructor kills and reaps
    CHECK(rec.exits == 0);
    CHECK(loop.close() == 0);
  }
  resources.verify();
}

TEST_CASE("destroying a running process kills its session and leaves no zombie") {
  ResourceCheck resources;
  {
    TestLoop loop;
    Recorder rec;
    auto process = spawn_ok(loop, options_for({"/bin/sh", "-c", "sleep 1000 & echo bg=$!.; sleep 1000"}), rec);
    CHECK(loop.run_until([&] { return rec.saw("."); }));
    pid_t sid = process->pid();
    pid_t background = number_after(rec.output, "bg=");
    REQUIRE(background > 0);
    process.reset();
    CHECK(has_no_children());  // reaped before the destructor returned
    CHECK(loop.run_until([&] { return !session_has_processes(sid); }));
    CHECK_FALSE(process_is_live(background));
    CHECK(rec.exits == 0);
    CHECK(loop.close() == 0);
  }
  resources.verify();
}

TEST_CASE("pause_output stops reading, the child blocks, resume delivers everything") {
  ResourceCheck resources;
  {
    TestLoop loop;
    Recorder rec;
    rec.keep_output = false;
    rec.expected_byte = 'y';
    auto process = spawn_ok(loop, options_for({"/bin/sh", "-c", "head -c 1048576 /dev/zero | tr '\\0' y"}), rec);
    process->pause_output();
    CHECK(process->output_paused());
    uv_prepare_t counter;  // counts loop iterations: a paused PTY must not keep waking the loop
    int iterations = 0;
    uv_prepare_init(loop.get(), &counter);
    counter.data = &iterations;
    uv_prepare_start(&counter, [](uv_prepare_t* p) { ++*static_cast<int*>(p->data); });
    loop.run_for(300);
    uv_close(reinterpret_cast<uv_handle_t*>(&counter), nullptr);
    CHECK(iterations < 150);  // ~60 turns of the 5 ms condition timer; a busy poll makes thousands
    CHECK(rec.output_bytes == 0);
    CHECK(rec.exits == 0);
    CHECK(session_has_processes(process->pid()));  // blocked on the full PTY, not finished

    process->resume_output();
    CHECK_FALSE(process->output_paused());
    CHECK(loop.run_until([&] { return rec.exits == 1; }));
    CHECK(rec.output_bytes == kMiB);
    CHECK(rec.unexpected_bytes == 0);
    process.reset();
    CHECK(loop.close() == 0);
  }
  resources.verify();
}

TEST_CASE("exit waits for the output still held in the PTY, even long after the reap") {
  ResourceCheck resources;
  {
    TestLoop loop;
    Recorder rec;
    SpawnOptions options = options_for({"/bin/sh", "-c", "echo pending-tail; exit 5"});
    options.drain_grace_ms = 60000;
    auto process = spawn_ok(loop, options, rec);
    process->pause_output();
    CHECK(loop.run_until([&] { return !process_is_live(process->pid()); }));
    loop.run_for(200);  // the pidfd reports the exit meanwhile; the reap happens
    CHECK(has_no_children());
    CHECK(rec.exits == 0);  // but the output is not drained yet
    process->resume_output();
    CHECK(loop.run_until([&] { return rec.exits == 1; }));
    CHECK(rec.saw("pending-tail"));
    CHECK(rec.status.exit_code == 5);
    CHECK_FALSE(rec.output_after_exit);
    process.reset();
    CHECK(loop.close() == 0);
  }
  resources.verify();
}

TEST_CASE("pausing from inside on_output stops delivery at once") {
  ResourceCheck resources;
  {
    TestLoop loop;
    size_t bytes = 0;
    int calls_while_paused = 0;
    std::unique_ptr<PtyProcess> process;
    bool exited = false;
    PtyProcess::Callbacks callbacks;
    callbacks.on_output = [&](std::string_view chunk) {
      if (process->output_paused()) ++calls_while_paused;
      bytes += chunk.size();
      process->pause_output();
    };
    callbacks.on_exit = [&](ExitStatus) { exited = true; };
    SpawnError error;
    process = PtyProcess::spawn(loop.get(), options_for({"/bin/sh", "-c", "head -c 1048576 /dev/zero | tr '\\0' y"}),
                                std::move(callbacks), &error);
    REQUIRE(process != nullptr);
    // Resume after each pause: every chunk arrives in a wake-up of its own.
    CHECK(loop.run_until([&] {
      if (process->output_paused()) process->resume_output();
      return exited;
    }));
    CHECK(bytes == kMiB);
    CHECK(calls_while_paused == 0);
    process.reset();
    CHECK(loop.close() == 0);
  }
  resources.verify();
}

TEST_CASE("the owner may destroy the process inside each callback") {
  ResourceCheck resources;
  {
    TestLoop loop;
    std::unique_ptr<PtyProcess> process;
    int exits = 0;
    PtyProcess::Callbacks callbacks;
    callbacks.on_exit = [&](ExitStatus) {
      ++exits;
      process.reset();
    };
    process = PtyProcess::spawn(loop.get(), options_for({"/bin/sh", "-c", "echo bye"}), std::move(callbacks), nullptr);
    REQUIRE(process != nullptr);
    CHECK(loop.run_until([&] { return exits == 1; }));
    CHECK(process == nullptr);
    CHECK(loop.close() == 0);
  }
  {
    TestLoop loop;
    std::unique_ptr<PtyProcess> process;
    int chunks = 0;
    PtyProcess::Callbacks callbacks;
    callbacks.on_output = [&](std::string_view) {
      ++chunks;
      process.reset();
    };
    process = PtyProcess::spawn(loop.get(), options_for({"/bin/sh", "-c", "head -c 1048576 /dev/zero | tr '\\0' z"}),
                                std::move(callbacks), nullptr);
    REQUIRE(process != nullptr);
    CHECK(loop.run_until([&] { return process == nullptr; }));
    loop.run_for(50);
    CHECK(chunks == 1);
    CHECK(loop.close() == 0);
  }
  {
    TestLoop loop;
    std::unique_ptr<PtyProcess> process;
    int drained = 0;
    PtyProcess::Callbacks callbacks;
    callbacks.on_input_drained = [&] {
      ++drained;
      process.reset();
    };
    process = PtyProcess::spawn(loop.get(), options_for({"/bin/sh", "-c", "stty -echo; cat >/dev/null"}),
                                std::move(callbacks), nullptr);
    REQUIRE(process != nullptr);
    std::string payload;
    while (payload.size() < kMiB) payload += std::string(63, 'b') + "\n";
    REQUIRE(process->write(payload) == 0);
    CHECK(process->input_above_high_water());
    CHECK(loop.run_until([&] { return process == nullptr; }));
    CHECK(drained == 1);
    CHECK(loop.close() == 0);
  }
  resources.verify();
}

TEST_CASE("100 children that ended at once are reported at most kExitReportsPerLoopTurn per loop turn") {
  ResourceCheck resources;
  {
    TestLoop loop;
    constexpr int kChildren = 100;
    std::vector<Recorder> recorders(kChildren);
    std::vector<std::unique_ptr<PtyProcess>> processes;
    for (int i = 0; i < kChildren; ++i) {
      processes.push_back(spawn_ok(loop, options_for({"/bin/sh", "-c", "exit " + std::to_string(i % 100)}), recorders[i]));
    }
    // Every child has ended (a zombie, not reaped) before the loop looks: their pidfds and masters are all
    // ready in the same poll.
    for (const auto& process : processes) {
      siginfo_t info{};
      REQUIRE(waitid(P_PID, static_cast<id_t>(process->pid()), &info, WEXITED | WNOWAIT) == 0);
    }
    // run_until looks after every turn of the loop (UV_RUN_ONCE): count the exits reported in each.
    std::vector<int> exits_per_turn;
    int reported = 0;
    CHECK(loop.run_until([&] {
      int now = 0;
      for (const Recorder& rec : recorders) now += rec.exits;
      exits_per_turn.push_back(now - reported);
      reported = now;
      return reported == kChildren;
    }));
    int most = 0;
    for (int count : exits_per_turn) most = std::max(most, count);
    CHECK(most <= static_cast<int>(kExitReportsPerLoopTurn));
    for (int i = 0; i < kChildren; ++i) {
      CHECK(recorders[i].exits == 1);
      CHECK(recorders[i].status.exit_code == i % 100);
    }
    processes.clear();
    CHECK(loop.close() == 0);
  }
  resources.verify();
}

TEST_CASE("session scan parses /proc/<pid>/stat after the last ')' of the command name") {
  ResourceCheck resources;
  TempDir dir;
  std::string tricky = dir.symlink_to("x) R 1 1 1", "/bin/sleep");  // comm becomes "x) R 1 1 1"
  {
    TestLoop loop;
    Recorder rec;
    auto process = spawn_ok(loop, options_for({tricky, "1000"}), rec);
    CHECK(session_has_processes(process->pid()));
    CHECK(process->signal_session(SIGTERM, 0) == 0);
    CHECK(loop.run_until([&] { return rec.exits == 1; }));
    CHECK(rec.status.signal == SIGTERM);
    CHECK_FALSE(session_has_processes(process->pid()));
    process.reset();
    CHECK(loop.close() == 0);
  }
  resources.verify();
}

TEST_CASE("signal names") {
  CHECK(std::string(signal_name(SIGHUP)) == "SIGHUP");
  CHECK(std::string(signal_name(SIGINT)) == "SIGINT");
  CHECK(std::string(signal_name(SIGTERM)) == "SIGTERM");
  CHECK(std::string(signal_name(SIGKILL)) == "SIGKILL");
  CHECK(std::string(signal_name(SIGSEGV)) == "SIGSEGV");
  CHECK(std::string(signal_name(SIGPIPE)) == "SIGPIPE");
  CHECK(std::string(signal_name(SIGQUIT)) == "SIGQUIT");
  CHECK(std::string(signal_name(SIGABRT)) == "SIGABRT");
  CHECK(std::string(signal_name(SIGUSR1)) == "SIGUSR1");
  CHECK(std::string(signal_name(SIGUSR2)) == "SIGUSR2");
  CHECK(std::string(signal_name(SIGRTMIN)) == "SIGRTMIN");
  CHECK(std::string(signal_name(SIGRTMIN + 2)) == "SIGRTMIN+2");
  for (int n = 1; n < NSIG; ++n) CHECK(signal_name(n) != nullptr);
  CHECK(signal_name(0) == nullptr);
  CHECK(signal_name(NSIG) == nullptr);
  CHECK(signal_from_name("SIGHUP") == SIGHUP);
  CHECK(signal_from_name("SIGINT") == SIGINT);
  CHECK(signal_from_name("SIGTERM") == SIGTERM);
  CHECK(signal_from_name("SIGKILL") == SIGKILL);
  CHECK(signal_from_name("SIGSEGV") == 0);  // not one a client may send
  CHECK(signal_from_name("HUP") == 0);
  CHECK(signal_from_name("") == 0);
  CHECK_FALSE(session_has_processes(0));
  CHECK(signal_session_processes(0, SIGTERM) == 0);
}

}  // namespace ptyhub::pty

namespace ptyhub::pty {
namespace {

// ---- live upgrade: release() and adopt() ------------------------------------------------------------

TEST_CASE("release and adopt: the child lives on through a handover, its PTY and input continue, its exit is reported once") {
  ResourceCheck resources;
  {
    TestLoop loop;
    Recorder before;
    auto process = spawn_ok(loop, options_for({"/bin/sh", "-c", "stty -echo; echo ready; read a; echo got-$a; read b; exit 7"}),
                            before);
    REQUIRE(loop.run_until([&] { return before.saw("ready"); }));
    const pid_t pid = process->pid();
    process->pause_output();
    REQUIRE(process->write("one\n") == 0);
    PtyProcess::Released released;
    REQUIRE(process->release(&released));
    CHECK_FALSE(process->release(&released));  // once
    process.reset();                           // inert: the child is not signalled
    CHECK(process_is_live(pid));
    // What the child printed meanwhile waits in the PTY for the next owner.
    Recorder after;
    std::string error;
    auto adopted = PtyProcess::adopt(loop.get(), pid, std::move(released.master), std::move(released.pidfd), 2000,
                                     after.callbacks(), &error);
    REQUIRE_MESSAGE(adopted != nullptr, error);
    if (!released.pending_input.empty()) REQUIRE(adopted->write(released.pending_input) == 0);
    REQUIRE(loop.run_until([&] { return after.saw("got-one"); }));
    REQUIRE(adopted->write("two\n") == 0);
    REQUIRE(loop.run_until([&] { return after.exits == 1; }));
    CHECK(after.status.exit_code == 7);
    CHECK(after.status.signal == 0);
    CHECK(before.exits == 0);
    adopted.reset();
    CHECK(loop.close() == 0);
  }
  resources.verify();
}

TEST_CASE("adopt: a child that exited during the handover is reaped with its real status, after the output it left") {
  ResourceCheck resources;
  {
    TestLoop loop;
    Recorder before;
    auto process = spawn_ok(loop, options_for({"/bin/sh", "-c", "read x; echo last-words; kill -TERM $$"}), before);
    const pid_t pid = process->pid();
    PtyProcess::Released released;
    REQUIRE(process->release(&released));
    process.reset();
    // Told to go while nobody owns it, the child ends (a zombie of this process).
    REQUIRE(::write(released.master.get(), "go\n", 3) == 3);
    siginfo_t info{};
    REQUIRE(waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT) == 0);
    Recorder after;
    std::string error;
    auto adopted = PtyProcess::adopt(loop.get(), pid, std::move(released.master), std::move(released.pidfd), 2000,
                                     after.callbacks(), &error);
    REQUIRE_MESSAGE(adopted != nullptr, error);
    REQUIRE(loop.run_until([&] { return after.exits == 1; }));
    CHECK(after.status.signal == SIGTERM);
    CHECK(after.saw("last-words"));
    CHECK_FALSE(after.output_after_exit);
    adopted.reset();
    CHECK(loop.close() == 0);
  }
  resources.verify();
}

TEST_CASE("adopt: missing fds are refused and nothing is started") {
  TestLoop loop;
  Recorder recorder;
  std::string error;
  CHECK(PtyProcess::adopt(loop.get(), 12345, UniqueFd(), UniqueFd(), 2000, recorder.callbacks(), &error) == nullptr);
  CHECK_FALSE(error.empty());
  CHECK(loop.close() == 0);
}

}  // namespace
}  // namespace ptyhub::pty
