// This process's own children, listed from /proc/self/task/<tid>/children and shared by everything that
// needs them (the session-wide signals here, the daemon's orphan reaper).
//
// Listing the children costs O(children) in the kernel and here, so a daemon that closes N terminals and
// listed them for every signal and every SIGCHLD did O(N²) work. The listing is therefore taken again only
// when the last one is older than kChildListingMaxAgeMs; every use within that time shares it. A listing
// a few milliseconds old promises as much as a fresh one: either misses a process re-parented here after
// it was taken (no event announces a re-parenting), which is why every user that must see such a process
// looks again later (the SIGKILL escalation re-walks the session; the orphan reaper sweeps again once the
// listing it used has expired). A pid reaped here leaves the listing at once (forget_child), so a stale
// listing never names a pid that may have been recycled.
//
// Loop thread only: no locking.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <vector>

namespace ptyhub::pty {

inline constexpr uint64_t kChildListingMaxAgeMs = 20;

struct ChildListing {
  uint64_t generation = 0;  // a new number every time the children are listed again
  uint64_t taken_ms = 0;    // monotonic milliseconds (uv_hrtime) when listed
  bool listed = false;      // false: the kernel offers no children files (the callers then scan /proc)
  std::vector<pid_t> pids;
};

// The listing, taken again when older than `max_age_ms` (0: always fresh).
const ChildListing& own_children(uint64_t max_age_ms = kChildListingMaxAgeMs);

// The generation of the listing own_children() would return now if it is young enough, without listing
// anything: a caller compares it with the one it gets to know whether its listing was taken for it.
uint64_t listing_generation();

// Appends the whitespace-separated pids of a file such as /proc/<pid>/task/<tid>/children to *out,
// however long it is; false when it cannot be opened.
bool read_pid_list(const char* path, std::vector<pid_t>* out);

// The children of every thread of process `pid` appended to *out; false when its task directory cannot be
// read (the process is gone) or the kernel has no children files.
bool list_children_of(pid_t pid, std::vector<pid_t>* out);

// `pid`, a child of this process, was reaped: it leaves the listing (called by forget_child).
void forget_listed_child(pid_t pid);

// Monotonic milliseconds, the clock of ChildListing::taken_ms.
uint64_t monotonic_ms();

}  // namespace ptyhub::pty
