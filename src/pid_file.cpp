// The pid file and the upgrade result beside it.
#include "src/pid_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

namespace ptyhub {

bool write_file_atomically(const std::string& path, const std::string& text, std::string* error) {
  const std::string temporary = path + ".tmp";
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    *error = temporary + ": " + std::strerror(errno);
    return false;
  }
  size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *error = temporary + ": " + std::strerror(errno);
      ::close(fd);
      ::unlink(temporary.c_str());
      return false;
    }
    written += static_cast<size_t>(n);
  }
  ::close(fd);
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    *error = path + ": " + std::strerror(errno);
    ::unlink(temporary.c_str());
    return false;
  }
  return true;
}

pid_t read_pid_file(const std::string& path, std::string* error) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) {
    *error = path + ": " + (in ? "empty" : std::strerror(errno));
    return 0;
  }
  char* end = nullptr;
  const long pid = std::strtol(line.c_str(), &end, 10);
  if (end == line.c_str() || *end != '\0' || pid <= 1) {
    *error = path + ": no pid in it";
    return 0;
  }
  return static_cast<pid_t>(pid);
}

std::string upgrade_result_path(const std::string& pid_file) { return pid_file + ".upgrade"; }

}  // namespace ptyhub
