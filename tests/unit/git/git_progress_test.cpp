// Tests of src/git/git_progress: single lines, a hand-written PTY transcript split at every byte
// position, deduplication, the bounded line buffer, and the real output of `git clone --progress`
// captured from a file and from a PTY (script), whose phases must rise to 100 %.
#include "src/git/git_progress.hpp"

#include <doctest/doctest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace ptyhub::git {
namespace {

std::string describe(const GitProgress& p) {
  std::string out = p.phase + " " + std::to_string(p.current);
  if (p.total) out += "/" + std::to_string(*p.total);
  if (p.percent) out += " " + std::to_string(*p.percent) + "%";
  return out;
}

std::string describe(const std::vector<GitProgress>& events) {
  std::string out;
  for (const GitProgress& p : events) out += describe(p) + "\n";
  return out;
}

std::string describe_line(std::string_view line) {
  const auto progress = parse_git_progress_line(line);
  return progress ? describe(*progress) : "none";
}

void append(std::vector<GitProgress>* to, std::vector<GitProgress> from) {
  to->insert(to->end(), from.begin(), from.end());
}

// Feeds `text` in chunks of `chunk` bytes, then finishes.
std::vector<GitProgress> parse_in_chunks(std::string_view text, size_t chunk) {
  GitProgressParser parser;
  std::vector<GitProgress> events;
  for (size_t pos = 0; pos < text.size(); pos += chunk) append(&events, parser.feed(text.substr(pos, chunk)));
  append(&events, parser.finish());
  return events;
}

TEST_CASE("single lines: the forms git prints") {
  CHECK(describe_line("Receiving objects:  45% (450/1000), 1.2 MiB | 2.3 MiB/s") == "Receiving objects 450/1000 45%");
  CHECK(describe_line("Resolving deltas: 100% (3/3), done.") == "Resolving deltas 3/3 100%");
  CHECK(describe_line("Resolving deltas: 100% (3/3), completed with 2 local objects.") == "Resolving deltas 3/3 100%");
  CHECK(describe_line("remote: Counting objects: 100% (5/5), done.") == "Counting objects 5/5 100%");
  CHECK(describe_line("remote: Enumerating objects: 5, done.") == "Enumerating objects 5");
  CHECK(describe_line("Updating files:  50% (1/2)") == "Updating files 1/2 50%");
  CHECK(describe_line("Writing objects:   0% (0/12)") == "Writing objects 0/12 0%");
  CHECK(describe_line("remote: Compressing objects: 100% (2/2), done.\x1b[K") == "Compressing objects 2/2 100%");
  CHECK(describe_line("remote: Compressing objects:  50% (1/2)        ") == "Compressing objects 1/2 50%");
  CHECK(describe_line("\x1b[1mremote:\x1b[m Counting objects: 7") == "Counting objects 7");
  CHECK(describe_line("Counting objects: 18446744073709551615") == "Counting objects 18446744073709551615");
}

TEST_CASE("single lines: anything else is not progress") {
  for (const char* line : {"",
                           "remote: ",
                           "Cloning into 'dst'...",
                           "fatal: repository 'x' not found",
                           "error: 5",
                           "Author: Someone <a@b>",
                           "Date:   Mon Jan 1",
                           "Receiving objects:",
                           "Receiving objects: 101% (1/1)",
                           "Receiving objects: 45% 450/1000",
                           "Receiving objects: 45% (450/1000) extra",
                           "Receiving objects: 45% (450/)",
                           "Receiving objects: x",
                           "Receiving  objects: 5",
                           "receiving objects: 5",
                           "Receiving objects 5",
                           "Counting objects: 18446744073709551616",
                           "Counting objects: 99999999999999999999999",
                           "remote: Total 5 (delta 0), reused 0",
                           "To https://example.com/x.git",
                           "Title2: 5",
                           "A very long title of many words: 5"}) {
    INFO(line);
    CHECK(describe_line(line) == "none");
  }
}

// What a PTY shows for a clone: remote lines with the erase-line escape, '\r' updates, "\r\n" line
// ends, phases split over two lines because the terminal is narrow, and a remote line arriving in the
// middle of a local split phase.
constexpr std::string_view kTranscript =
    "Cloning into 'dst'...\r\n"
    "remote: Enumerating objects: 5, done.\x1b[K\r\n"
    "remote: Counting objects:  20% (1/5)\x1b[K\r"
    "remote: Counting objects: 100% (5/5)\x1b[K\r"
    "remote: Counting objects: 100% (5/5), done.\x1b[K\r\n"
    "remote: Compressing objects:                      \x1b[K\r\n"
    "remote:    50% (1/2)\x1b[K\r"
    "remote:   100% (2/2), done.\x1b[K\r\n"
    "Receiving objects:  20% (1/5)\r"
    "Receiving objects:  40% (2/5), 1.20 KiB | 1.20 MiB/s\r"
    "Receiving objects:  40% (2/5), 2.40 KiB | 1.20 MiB/s\r"
    "Receiving objects: 100% (5/5), 2.40 KiB | 1.20 MiB/s, done.\r\n"
    "Resolving deltas:   0% (0/3)\r"
    "Resolving deltas: 100% (3/3), done.\r\n"
    "Updating files:                                    \r\n"
    "   50% (1/2)\r"
    "remote: Total 5 (delta 0), reused 0 (delta 0), pack-reused 0\x1b[K\r\n"
    "  100% (2/2), done.\r\n"
    "Author: x\r\n"
    "  60% (1/2)\r\n";

constexpr std::string_view kExpected =
    "Enumerating objects 5\n"
    "Counting objects 1/5 20%\n"
    "Counting objects 5/5 100%\n"
    "Compressing objects 1/2 50%\n"
    "Compressing objects 2/2 100%\n"
    "Receiving objects 1/5 20%\n"
    "Receiving objects 2/5 40%\n"
    "Receiving objects 5/5 100%\n"
    "Resolving deltas 0/3 0%\n"
    "Resolving deltas 3/3 100%\n"
    "Updating files 1/2 50%\n"
    "Updating files 2/2 100%\n";

TEST_CASE("a transcript gives each change once, without the remote: prefix") {
  CHECK(describe(parse_in_chunks(kTranscript, kTranscript.size())) == kExpected);
  CHECK(describe(parse_in_chunks(kTranscript, 1)) == kExpected);
}

TEST_CASE("a transcript split at every byte position gives the same events") {
  for (size_t split = 0; split <= kTranscript.size(); ++split) {
    GitProgressParser parser;
    std::vector<GitProgress> events = parser.feed(kTranscript.substr(0, split));
    append(&events, parser.feed(kTranscript.substr(split)));
    append(&events, parser.finish());
    INFO("split at " << split);
    CHECK(describe(events) == kExpected);
  }
}

TEST_CASE("identical updates are dropped, a changed one after another phase is not") {
  GitProgressParser parser;
  CHECK(parser.feed("Receiving objects:  50% (1/2), 1 KiB | 1 KiB/s\r").size() == 1);
  CHECK(parser.feed("Receiving objects:  50% (1/2), 2 KiB | 1 KiB/s\r").empty());
  CHECK(parser.feed("remote: Receiving objects:  50% (1/2)\r").empty());
  CHECK(parser.feed("Resolving deltas: 100% (1/1)\r\n").size() == 1);
  CHECK(parser.feed("Receiving objects:  50% (1/2)\r").size() == 1);
}

TEST_CASE("first_error() is the first fatal or error line, cleaned and bounded - progress goes on around it") {
  GitProgressParser parser;
  CHECK(parser.first_error().empty());
  CHECK(parser.feed("Cloning into 'copy'...\r\nReceiving objects:  33% (1/3)\r").size() == 1);
  CHECK(parser.first_error().empty());
  CHECK(parser.feed("\x1b[Kfatal: write error: No space left on device\r\n").empty());
  CHECK(parser.feed("fatal: fetch-pack: invalid index-pack output\r\n").empty());
  CHECK(parser.first_error() == "fatal: write error: No space left on device");
  CHECK(parser.feed("Resolving deltas: 100% (1/1)\r\n").size() == 1);
  CHECK(parser.first_error() == "fatal: write error: No space left on device");

  GitProgressParser other;
  other.feed("error: pathspec 'x' did not match any file(s) known to git\n");
  CHECK(other.first_error() == "error: pathspec 'x' did not match any file(s) known to git");
  GitProgressParser long_line;
  long_line.feed("fatal: " + std::string(2000, 'x') + "\n");
  CHECK(long_line.first_error().size() == GitProgressParser::kMaxErrorBytes);
  GitProgressParser not_first;
  not_first.feed("warning: fatal: is not at the start\n");
  CHECK(not_first.first_error().empty());
}

TEST_CASE("finish() parses a last line without a terminator, empty input gives nothing") {
  GitProgressParser parser;
  CHECK(parser.feed("").empty());
  CHECK(parser.feed("Resolving deltas: 100% (3/3), do").empty());
  CHECK(describe(parser.finish()) == "Resolving deltas 3/3 100%\n");
  CHECK(parser.finish().empty());
}

TEST_CASE("a line longer than the buffer is dropped to its end, the next one parses") {
  GitProgressParser parser;
  const std::string long_line = "Receiving objects:  10% (1/10)" + std::string(GitProgressParser::kMaxLineBytes, ' ');
  for (size_t pos = 0; pos < long_line.size(); pos += 100)
    CHECK(parser.feed(std::string_view(long_line).substr(pos, 100)).empty());
  CHECK(parser.feed("\r").empty());
  CHECK(describe(parser.feed("Receiving objects:  20% (2/10)\r")) == "Receiving objects 2/10 20%\n");
  // Binary noise is no progress and does not stop the parser.
  std::string noise;
  for (int i = 0; i < 256; ++i) noise.push_back(static_cast<char>(i));
  CHECK(parser.feed(noise + noise).empty());
  CHECK(describe(parser.feed("\nReceiving objects:  30% (3/10)\n")) == "Receiving objects 3/10 30%\n");
}

// ---------------------------------------------------------------------------------------------------
// Real git output.

struct Workspace {
  std::string base;

  Workspace() {
    char pattern[] = "/tmp/ptyhub-git-progress-XXXXXX";
    REQUIRE(::mkdtemp(pattern) != nullptr);
    base = pattern;
    // Many similar blobs, so that every phase (deltas included) has work to report.
    REQUIRE(sh("git init -q -b main src") == 0);
    std::string lines;
    for (int line = 1; line <= 400; ++line) lines += std::to_string(line) + "\n";
    for (int i = 1; i <= 250; ++i) std::ofstream(base + "/src/f" + std::to_string(i)) << lines << i << "\n";
    REQUIRE(sh("cd src && git add . && git -c user.name=t -c user.email=t@e commit -qm one") == 0);
  }
  ~Workspace() {
    std::error_code ignored;
    std::filesystem::remove_all(base, ignored);
  }
  int sh(const std::string& command) const {
    const std::string full = "export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1 LC_ALL=C.UTF-8 LANGUAGE=; cd '" +
                             base + "' && " + command;
    return std::system(full.c_str());
  }
  std::string read(const std::string& name) const {
    std::ifstream in(base + "/" + name, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }
};

// Every phase's counters and percentages never go down, and phases that have a total end at 100 %.
void check_rises_to_complete(const std::vector<GitProgress>& events) {
  std::map<std::string, GitProgress> last;
  std::vector<std::string> order;
  for (const GitProgress& p : events) {
    INFO(describe(p));
    CHECK_FALSE(p.phase.starts_with("remote"));
    auto it = last.find(p.phase);
    if (it == last.end()) {
      order.push_back(p.phase);
    } else {
      CHECK(order.back() == p.phase);  // a phase is one block: it never comes back
      CHECK(p.current >= it->second.current);
      if (p.percent && it->second.percent) CHECK(*p.percent >= *it->second.percent);
    }
    last[p.phase] = p;
  }
  for (const auto& [phase, p] : last) {
    INFO(describe(p));
    if (!p.total) continue;
    CHECK(p.percent == 100);
    CHECK(p.current == *p.total);
  }
}

void check_clone_phases(const std::string& output) {
  REQUIRE_FALSE(output.empty());
  for (size_t chunk : {size_t{1}, size_t{7}, size_t{4096}, output.size()}) {
    const std::vector<GitProgress> events = parse_in_chunks(output, chunk);
    INFO("chunk " << chunk << "\n" << describe(events));
    CHECK(events.size() > 10);
    check_rises_to_complete(events);
    std::map<std::string, int> phases;
    for (const GitProgress& p : events) ++phases[p.phase];
    for (const char* phase : {"Counting objects", "Compressing objects", "Receiving objects", "Resolving deltas"}) {
      CHECK(phases.count(phase) == 1);
    }
  }
}

TEST_CASE("real git: clone --progress with stderr to a file") {
  Workspace ws;
  REQUIRE(ws.sh("git clone --progress --no-local file://\"$PWD\"/src dst 2> progress.log") == 0);
  check_clone_phases(ws.read("progress.log"));
}

TEST_CASE("real git: clone --progress on a narrow terminal, where git splits title and counters") {
  Workspace ws;
  REQUIRE(ws.sh("COLUMNS=30 git clone --progress --no-local file://\"$PWD\"/src dst 2> progress.log") == 0);
  const std::string output = ws.read("progress.log");
  // The title stands alone on its line; the counters follow on the next ones.
  const size_t title = output.find("Receiving objects:");
  REQUIRE(title != std::string::npos);
  const size_t after = output.find_first_not_of(' ', title + std::string_view("Receiving objects:").size());
  REQUIRE(after != std::string::npos);
  CHECK(output[after] == '\n');
  check_clone_phases(output);
}

TEST_CASE("real git: clone on a PTY (script), with the terminal's escapes and CR LF") {
  Workspace ws;
  if (ws.sh("command -v script > /dev/null") != 0) {
    MESSAGE("script(1) is not installed; skipped");
    return;
  }
  REQUIRE(ws.sh("TERM=xterm COLUMNS=80 script -qec 'git clone --progress file://'\"$PWD\"'/src dst' /dev/null"
                " < /dev/null > pty.log") == 0);
  const std::string output = ws.read("pty.log");
  CHECK(output.find("\r\n") != std::string::npos);
  check_clone_phases(output);
}

}  // namespace
}  // namespace ptyhub::git
