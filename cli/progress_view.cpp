// ProgressView and progress_bar(): see progress_view.hpp.
#include "cli/progress_view.hpp"

#include <algorithm>
#include <cstdio>

namespace ptyhub::cli {

namespace {

// "50% (5/10)" or "123" (count only).
std::string counts(const GitProgress& progress) {
  if (!progress.total) return std::to_string(progress.current);
  char text[96];
  std::snprintf(text, sizeof text, "%3d%% (%llu/%llu)", progress.percent.value_or(0),
                static_cast<unsigned long long>(progress.current), static_cast<unsigned long long>(*progress.total));
  return text;
}

// A plain line for the log form: "Receiving objects: 100% (5/5)".
std::string plain_line(const GitProgress& progress) {
  std::string text = counts(progress);
  text.erase(0, text.find_first_not_of(' '));
  return progress.phase + ": " + text + "\n";
}

}  // namespace

std::string progress_bar(const GitProgress& progress, int width) {
  std::string line = progress.phase;
  if (line.size() < 20) line.append(20 - line.size(), ' ');
  if (progress.total) {
    const int percent = std::clamp(progress.percent.value_or(0), 0, 100);
    const int filled = width * percent / 100;
    line += " [" + std::string(static_cast<size_t>(filled), '#') + std::string(static_cast<size_t>(width - filled), '-') + "] ";
  } else {
    line += " ";
  }
  return line + counts(progress);
}

std::string ProgressView::update(const GitProgress& progress) {
  std::string out;
  if (tty_) {
    if (line_open_ && progress.phase != phase_) out += "\n";
    out += "\r" + progress_bar(progress) + "\x1b[K";
    line_open_ = true;
  } else {
    if (progress.phase == done_phase_) return out;  // git repeats a finished phase's last line
    if (last_ && last_->phase != progress.phase) out += plain_line(*last_);
    const bool done = progress.total && progress.current >= *progress.total;
    if (done) {
      done_phase_ = progress.phase;
      out += plain_line(progress);
      last_.reset();
    } else {
      last_ = progress;
    }
  }
  phase_ = progress.phase;
  return out;
}

std::string ProgressView::finish() {
  std::string out;
  if (tty_ && line_open_) out = "\n";
  if (!tty_ && last_) out = plain_line(*last_);
  line_open_ = false;
  last_.reset();
  return out;
}

}  // namespace ptyhub::cli
