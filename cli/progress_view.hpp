// How `ptyhub git … --follow` shows a git operation's phases (git.operation.progress, docs/protocol.md §4):
// a bar redrawn in place on a terminal, or one plain line per phase (and its end) otherwise. Pure: it
// returns the text to write and keeps only what it needs to decide that.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ptyhub::cli {

struct GitProgress {
  std::string phase;              // "Receiving objects"
  uint64_t current = 0;
  std::optional<uint64_t> total;  // absent for phases that only count
  std::optional<int> percent;
};

// One bar line without line ending: "Receiving objects   [##########----------]  50% (5/10)"; a phase
// without a total shows its count only. `width` is the bar's width in cells.
std::string progress_bar(const GitProgress& progress, int width = 30);

class ProgressView {
 public:
  explicit ProgressView(bool tty) : tty_(tty) {}

  // The text to write for one progress event.
  std::string update(const GitProgress& progress);
  // The text to write when the operation ended: finishes the open bar line.
  std::string finish();

 private:
  bool tty_;
  std::string phase_;      // the phase shown last
  bool line_open_ = false; // tty: a bar is on the current line, not yet ended by '\n'
  std::string done_phase_;  // not a tty: the phase whose last line was printed
  std::optional<GitProgress> last_;  // not a tty: the last event of the phase, printed when it ends
};

}  // namespace ptyhub::cli
