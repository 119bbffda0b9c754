// GitProgressParser: finds git's progress lines in the raw output of a git PTY and turns them into
// `git.operation.progress` events (docs/protocol.md §4 Requests, `git.operation.start`):
// "Receiving objects:  45% (450/1000), 1.2 MiB | …", "remote: Counting objects: 100% (5/5), done.",
// "remote: Enumerating objects: 5, done.".
//
// git rewrites a progress line in place with '\r' and ends a phase with '\n'; lines relayed from the
// remote side start with "remote: " (dropped from the phase name) and may end in an erase-line escape.
// On a terminal narrower than the line, git prints "Title:" alone and then "  45% (450/1000)" updates;
// both forms are understood. Chunks may split anywhere, even inside a line or an escape.
//
// Pure: no I/O, never throws on any input. Memory is bounded: a partial line longer than kMaxLineBytes
// is dropped up to its end. Each parser belongs to one git terminal; one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ptyhub::git {

struct GitProgress {
  std::string phase;  // as git prints it, without "remote: ": "Receiving objects"
  uint64_t current = 0;
  std::optional<uint64_t> total;  // absent for phases that only count ("Enumerating objects: 5")
  std::optional<int> percent;     // 0..100, present with total

  bool operator==(const GitProgress&) const = default;
};

class GitProgressParser {
 public:
  static constexpr size_t kMaxLineBytes = 4096;

  // Consumes the next chunk of output; returns the progress updates it completed, in order, leaving out
  // any update identical to the one emitted before it.
  std::vector<GitProgress> feed(std::string_view bytes);
  // At the end of the output: parses a last line that had no terminator.
  std::vector<GitProgress> finish();
  // The first line git printed as "fatal: …" or "error: …" (escapes removed, at most kMaxErrorBytes), or
  // "": why a failed operation failed. The first, because git's later lines follow from it.
  const std::string& first_error() const { return first_error_; }
  static constexpr size_t kMaxErrorBytes = 512;

 private:
  void on_line(std::string_view line, std::vector<GitProgress>* out);

  std::string line_;                // the current partial line, at most kMaxLineBytes
  bool overflow_ = false;           // the current line outgrew the buffer; skip to its end
  std::string split_title_;         // a title git printed alone ("Receiving objects:") awaiting its counters
  std::string remote_split_title_;  // the same for "remote: " lines
  std::optional<GitProgress> last_;
  std::string first_error_;
};

// One complete line (without its '\r' or '\n'; escapes and a "remote: " prefix allowed) read as
// "<Title>: <counters>[, …]". Returns nullopt for anything else.
std::optional<GitProgress> parse_git_progress_line(std::string_view line);

}  // namespace ptyhub::git
