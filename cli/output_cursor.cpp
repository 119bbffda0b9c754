// OutputCursor: see output_cursor.hpp.
#include "cli/output_cursor.hpp"

namespace ptyhub::cli {

std::string_view OutputCursor::accept(uint64_t offset, uint64_t next, std::string_view bytes) {
  if (next < offset || next - offset != bytes.size()) return {};  // a malformed chunk: show nothing of it
  if (next <= next_) return {};                                   // already shown
  if (offset > next_) {
    lost_ += offset - next_;
    next_ = next;
    return bytes;
  }
  std::string_view fresh = bytes.substr(static_cast<size_t>(next_ - offset));
  next_ = next;
  return fresh;
}

void OutputCursor::gap(uint64_t from, uint64_t to) {
  if (to <= next_) return;
  (void)from;  // the bytes from next_ on are gone, whatever the daemon names as the start
  lost_ += to - next_;
  next_ = to;
}

}  // namespace ptyhub::cli
