// Streaming parse of git's progress lines: line splitting on '\r' and '\n', escape removal, the
// "remote: " prefix, the "Title: NN% (cur/total)" and "Title: count" forms and deduplication.
#include "src/git/git_progress.hpp"

namespace ptyhub::git {
namespace {

constexpr size_t kMaxTitleBytes = 64;
constexpr size_t kMaxTitleWords = 6;
constexpr size_t kMaxNumberDigits = 20;
constexpr std::string_view kRemotePrefix = "remote:";

bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Length of the escape sequence starting at text[i] (ESC), or of what is left when it is cut off.
size_t escape_length(std::string_view text, size_t i) {
  if (i + 1 >= text.size()) return text.size() - i;
  if (text[i + 1] != '[') return 2;
  // CSI: parameter and intermediate bytes (0x20..0x3f), then one final byte.
  auto in_body = [](char c) { return static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) < 0x40; };
  size_t j = i + 2;
  while (j < text.size() && in_body(text[j])) ++j;
  return (j < text.size() ? j + 1 : j) - i;
}

// The line without escape sequences, other control characters and trailing blanks.
std::string clean_line(std::string_view line) {
  std::string out;
  out.reserve(line.size());
  for (size_t i = 0; i < line.size();) {
    const auto c = static_cast<unsigned char>(line[i]);
    if (c == 0x1b) {
      i += escape_length(line, i);
      continue;
    }
    if (c >= 0x20 && c != 0x7f) out.push_back(line[i]);
    ++i;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// "remote: X" → "X"; the two spaces that start a split counters line are kept.
std::string_view strip_remote(std::string_view line) {
  if (!line.starts_with(kRemotePrefix)) return line;
  line.remove_prefix(kRemotePrefix.size());
  if (line.starts_with(' ')) line.remove_prefix(1);
  return line;
}

// A progress title: words of ASCII letters separated by single spaces, the first capitalised.
bool is_title(std::string_view title) {
  if (title.empty() || title.size() > kMaxTitleBytes || !(title.front() >= 'A' && title.front() <= 'Z')) return false;
  size_t words = 1;
  for (size_t i = 0; i < title.size(); ++i) {
    if (title[i] == ' ') {
      if (i + 1 == title.size() || title[i + 1] == ' ' || ++words > kMaxTitleWords) return false;
    } else if (!is_letter(title[i])) {
      return false;
    }
  }
  return true;
}

bool parse_number(std::string_view text, size_t* pos, uint64_t* value) {
  const size_t start = *pos;
  uint64_t n = 0;
  while (*pos < text.size() && is_digit(text[*pos])) {
    const auto digit = static_cast<uint64_t>(text[*pos] - '0');
    if (*pos - start >= kMaxNumberDigits || n > (UINT64_MAX - digit) / 10) return false;
    n = n * 10 + digit;
    ++*pos;
  }
  *value = n;
  return *pos > start;
}

bool expect(std::string_view text, size_t* pos, char c) {
  if (*pos >= text.size() || text[*pos] != c) return false;
  ++*pos;
  return true;
}

void skip_spaces(std::string_view text, size_t* pos) {
  while (*pos < text.size() && text[*pos] == ' ') ++*pos;
}

// "  45% (450/1000)[, …]" or "5[, …]" into `progress`.
bool parse_counters(std::string_view text, GitProgress* progress) {
  size_t pos = 0;
  skip_spaces(text, &pos);
  uint64_t first = 0;
  if (!parse_number(text, &pos, &first)) return false;
  if (pos < text.size() && text[pos] == '%') {
    uint64_t current = 0;
    uint64_t total = 0;
    ++pos;
    skip_spaces(text, &pos);
    if (first > 100 || !expect(text, &pos, '(') || !parse_number(text, &pos, &current) || !expect(text, &pos, '/') ||
        !parse_number(text, &pos, &total) || !expect(text, &pos, ')')) {
      return false;
    }
    progress->percent = static_cast<int>(first);
    progress->current = current;
    progress->total = total;
  } else {
    progress->current = first;
  }
  return pos == text.size() || text[pos] == ',';
}

// "<Title>: <counters>" of a cleaned line without its "remote: " prefix.
std::optional<GitProgress> parse_body(std::string_view body) {
  const size_t colon = body.find(": ");
  if (colon == std::string_view::npos || !is_title(body.substr(0, colon))) return std::nullopt;
  GitProgress progress;
  if (!parse_counters(body.substr(colon + 2), &progress)) return std::nullopt;
  progress.phase = std::string(body.substr(0, colon));
  return progress;
}

}  // namespace

std::optional<GitProgress> parse_git_progress_line(std::string_view line) {
  const std::string cleaned = clean_line(line);
  return parse_body(strip_remote(cleaned));
}

void GitProgressParser::on_line(std::string_view line, std::vector<GitProgress>* out) {
  const std::string cleaned = clean_line(line);
  const std::string_view body = strip_remote(cleaned);
  if (body.empty()) return;  // the '\n' after a PTY's '\r', or a blank line: nothing changes
  if (first_error_.empty() && (body.starts_with("fatal: ") || body.starts_with("error: "))) {
    first_error_ = std::string(body.substr(0, kMaxErrorBytes));
    return;
  }
  // Remote lines come from another process and interleave with local ones: each has its own split title.
  std::string& split_title = cleaned.starts_with(kRemotePrefix) ? remote_split_title_ : split_title_;
  if (body.back() == ':' && is_title(body.substr(0, body.size() - 1))) {
    split_title = std::string(body.substr(0, body.size() - 1));
    return;
  }
  std::optional<GitProgress> progress;
  if (!split_title.empty() && body.starts_with("  ")) {
    GitProgress candidate;
    candidate.phase = split_title;
    if (parse_counters(body, &candidate)) progress = std::move(candidate);
  }
  if (!progress) {
    split_title.clear();
    progress = parse_body(body);
  }
  if (!progress || (last_ && *last_ == *progress)) return;
  last_ = *progress;
  out->push_back(std::move(*progress));
}

std::vector<GitProgress> GitProgressParser::feed(std::string_view bytes) {
  std::vector<GitProgress> out;
  size_t pos = 0;
  while (pos < bytes.size()) {
    const size_t end = bytes.find_first_of("\r\n", pos);
    const std::string_view piece = bytes.substr(pos, end == std::string_view::npos ? end : end - pos);
    if (!overflow_ && line_.size() + piece.size() > kMaxLineBytes) {
      overflow_ = true;
      line_.clear();
    }
    if (!overflow_) line_.append(piece);
    if (end == std::string_view::npos) break;
    if (!overflow_) on_line(line_, &out);
    line_.clear();
    overflow_ = false;
    pos = end + 1;
  }
  return out;
}

std::vector<GitProgress> GitProgressParser::finish() {
  std::vector<GitProgress> out;
  if (!overflow_ && !line_.empty()) on_line(line_, &out);
  line_.clear();
  overflow_ = false;
  return out;
}

}  // namespace ptyhub::git
