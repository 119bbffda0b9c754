// `ptyhub run` with stdin not a terminal: bytes pass unchanged both ways and the end of stdin reaches the
// command (shell.create {stdio: "pipes"}, shell.input {eof: true}). A daemon without stdio pipes makes the
// client refuse with its message (exit 69); then these tests report SKIP (exit 77, ctest's
// SKIP_RETURN_CODE) once every daemon and process of the test is gone.
#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <random>

#include "tests/support/cli_harness.hpp"
#include "tests/support/daemon_process.hpp"

namespace fs = std::filesystem;
using namespace ptyhub::test;

namespace {

constexpr int kSkip = 77;

// True when the client refused because the daemon has no stdio pipes.
bool pipes_unsupported(const CliResult& result) {
  return result.status == 69 && result.err.find("stdio pipes") != std::string::npos;
}

// seq 100000 | ptyhub run -- wc -l; false when the daemon has no pipes (nothing was checked).
bool check_line_count() {
  DaemonProcess daemon;
  REQUIRE(daemon.started());
  const std::map<std::string, std::string> env = {
      {"PTYHUB_URL", "ws://127.0.0.1:" + std::to_string(daemon.port()) + "/ws"}, {"PTYHUB_TOKEN", daemon.token("alice")}};
  CliResult counted = run_sh("seq 100000 | " + shell_quote(PTYHUB_CLI_PATH) + " run -- wc -l", env);
  if (pipes_unsupported(counted)) return false;
  INFO(counted.err);
  CHECK(counted.status == 0);
  CHECK(counted.out == "100000\n");
  CliResult failed = run_sh("echo hi | " + shell_quote(PTYHUB_CLI_PATH) + " run -- sh -c 'cat; exit 7'", env);
  CHECK(failed.status == 7);
  CHECK(failed.out == "hi\n");
  return true;
}

// 1 MiB of random bytes through `cat`, byte-identical; false when the daemon has no pipes.
bool check_binary_round_trip() {
  TempDir tmp("ptyhub-cli-pipes");
  REQUIRE(!tmp.path().empty());
  std::string bytes(1 << 20, '\0');
  std::mt19937 random(12345);
  for (char& b : bytes) b = static_cast<char>(random() & 0xff);
  { std::ofstream(tmp / "in", std::ios::binary) << bytes; }
  DaemonProcess daemon;
  REQUIRE(daemon.started());
  const std::map<std::string, std::string> env = {
      {"PTYHUB_URL", "ws://127.0.0.1:" + std::to_string(daemon.port()) + "/ws"}, {"PTYHUB_TOKEN", daemon.token("alice")}};
  CliResult copied = run_sh("cat " + shell_quote((tmp / "in").string()) + " | " + shell_quote(PTYHUB_CLI_PATH) +
                                " run -- cat > " + shell_quote((tmp / "out").string()), env);
  if (pipes_unsupported(copied)) return false;
  INFO(copied.err);
  CHECK(copied.status == 0);
  std::ifstream out(tmp / "out", std::ios::binary);
  const std::string received((std::istreambuf_iterator<char>(out)), std::istreambuf_iterator<char>());
  CHECK(received.size() == bytes.size());
  CHECK(received == bytes);
  return true;
}

}  // namespace

TEST_CASE("cli pipes: seq 100000 through run -- wc -l counts 100000") {
  if (!check_line_count()) {
    MESSAGE("the daemon has no stdio pipes (shell.create {stdio: \"pipes\"}): skipped");
    std::exit(kSkip);
  }
}

TEST_CASE("cli pipes: 1 MiB of binary through run -- cat comes back byte-identical") {
  if (!check_binary_round_trip()) {
    MESSAGE("the daemon has no stdio pipes (shell.create {stdio: \"pipes\"}): skipped");
    std::exit(kSkip);
  }
}
