// Listing children from /proc/<pid>/task/<tid>/children, and the shared, briefly cached listing of this
// process's own children (pty/children.hpp).
#include "pty/children.hpp"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/unique_fd.hpp"
#include "pty/pty_process.hpp"

namespace ptyhub::pty {
namespace {

pid_t parse_pid(const char* name) {
  char* end = nullptr;
  const long value = std::strtol(name, &end, 10);
  if (end == name || *end != '\0' || value <= 0) return 0;
  return static_cast<pid_t>(value);
}

}  // namespace

bool read_pid_list(const char* path, std::vector<pid_t>* out) {
  UniqueFd fd(open(path, O_RDONLY | O_CLOEXEC));
  if (!fd) return false;
  // A read may end inside a number: the digits after the last separator are kept for the next read.
  char buffer[16384];
  size_t kept = 0;
  while (true) {
    const ssize_t n = read(fd.get(), buffer + kept, sizeof buffer - kept - 1);
    if (n < 0 && errno == EINTR) continue;
    const bool end = n <= 0;
    size_t size = kept + (end ? 0 : static_cast<size_t>(n));
    buffer[size] = '\0';
    size_t parsed = 0;
    while (parsed < size) {
      // Skip separators, then take a number only when it is followed by a separator (or the end).
      while (parsed < size && (buffer[parsed] < '0' || buffer[parsed] > '9')) ++parsed;
      size_t digits = parsed;
      while (digits < size && buffer[digits] >= '0' && buffer[digits] <= '9') ++digits;
      if (digits == parsed) break;
      if (digits == size && !end) break;  // may continue in the next read
      const long value = std::strtol(buffer + parsed, nullptr, 10);
      if (value > 0) out->push_back(static_cast<pid_t>(value));
      parsed = digits;
    }
    if (end) break;
    kept = size - parsed;
    std::copy(buffer + parsed, buffer + size, buffer);
  }
  return true;
}

namespace {

ChildListing& cached_listing() {
  static ChildListing listing;
  return listing;
}

}  // namespace

uint64_t monotonic_ms() { return uv_hrtime() / 1000000; }

bool list_children_of(pid_t pid, std::vector<pid_t>* out) {
  char tasks_path[64];
  if (pid == 0) {
    std::snprintf(tasks_path, sizeof tasks_path, "/proc/self/task");
  } else {
    std::snprintf(tasks_path, sizeof tasks_path, "/proc/%d/task", static_cast<int>(pid));
  }
  DIR* tasks = opendir(tasks_path);
  if (tasks == nullptr) return false;
  bool listed = true;
  while (dirent* entry = readdir(tasks)) {
    if (parse_pid(entry->d_name) == 0) continue;
    const std::string task = std::string(tasks_path) + "/" + entry->d_name;
    if (!read_pid_list((task + "/children").c_str(), out)) {
      // A thread that just ended has no directory any more; a kernel without the files has none at all.
      if (errno == ENOENT && access(task.c_str(), F_OK) != 0) continue;
      listed = false;
      break;
    }
  }
  closedir(tasks);
  return listed;
}

const ChildListing& own_children(uint64_t max_age_ms) {
  ChildListing& listing = cached_listing();
  const uint64_t now = monotonic_ms();
  if (listing.generation != 0 && now - listing.taken_ms < max_age_ms) return listing;
  listing.pids.clear();
  listing.listed = list_children_of(0, &listing.pids);
  if (!listing.listed) listing.pids.clear();
  listing.taken_ms = now;
  ++listing.generation;
  return listing;
}

uint64_t listing_generation() { return cached_listing().generation; }

void forget_listed_child(pid_t pid) {
  std::vector<pid_t>& pids = cached_listing().pids;
  auto it = std::find(pids.begin(), pids.end(), pid);
  if (it != pids.end()) pids.erase(it);
}

}  // namespace ptyhub::pty
