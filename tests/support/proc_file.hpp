// The whole of a /proc file, or "" when it cannot be read: a process may vanish before or during the read
// (ESRCH), which an ifstream read through istreambuf_iterator reports by throwing. For tests only.
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <string>

namespace ptyhub::test {

inline std::string read_proc_file(const std::string& path) {
  std::string text;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return text;
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return text;
}

}  // namespace ptyhub::test
