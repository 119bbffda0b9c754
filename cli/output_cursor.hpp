// OutputCursor: which bytes of a terminal's output stream (docs/protocol.md §6) this client has shown, so
// that a resumed subscription neither repeats nor skips any. Pure; no I/O.
//
// Every shell.output chunk covers raw bytes [offset, next). The cursor keeps the next offset it expects;
// a chunk wholly before it is dropped, one that overlaps it is cut to its new part, and one that starts
// after it (a hole: the bytes left the daemon's ring) is taken whole and the hole is counted.
#pragma once

#include <cstdint>
#include <string_view>

namespace ptyhub::cli {

class OutputCursor {
 public:
  // The part of a chunk [offset, next) with raw bytes `bytes` that is new; empty when none is.
  std::string_view accept(uint64_t offset, uint64_t next, std::string_view bytes);
  // A shell.gap {from, to}: the bytes in between are gone; the cursor moves to `to`.
  void gap(uint64_t from, uint64_t to);

  // The offset of the next byte not yet shown: the `since` of a resumed subscription.
  uint64_t next() const { return next_; }
  // Bytes lost to holes so far.
  uint64_t lost() const { return lost_; }

 private:
  uint64_t next_ = 0;
  uint64_t lost_ = 0;
};

}  // namespace ptyhub::cli
