// Socket activation: LISTEN_PID / LISTEN_FDS / LISTEN_FDNAMES.
#include "src/systemd/socket_activation.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#ifdef PTYHUB_HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

namespace ptyhub::systemd {
namespace {

constexpr int kFirstFd = 3;  // SD_LISTEN_FDS_START
// Far more than any unit passes; guards against a value that would have us walk the whole fd table.
constexpr long kMaxFds = 4096;

std::string env_or_empty(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? std::string() : std::string(value);
}

bool parse_count(const std::string& text, long max, long* out) {
  if (text.empty() || text.size() > 10) return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  *out = std::strtol(text.c_str(), nullptr, 10);
  return *out <= max;
}

void unset_variables() {
  unsetenv("LISTEN_PID");
  unsetenv("LISTEN_FDS");
  unsetenv("LISTEN_FDNAMES");
}

std::vector<std::string> split_names(const std::string& text) {
  std::vector<std::string> names;
  if (text.empty()) return names;
  size_t start = 0;
  for (;;) {
    const size_t colon = text.find(':', start);
    names.push_back(text.substr(start, colon == std::string::npos ? std::string::npos : colon - start));
    if (colon == std::string::npos) return names;
    start = colon + 1;
  }
}

}  // namespace

bool take_activated_sockets(std::vector<ActivatedSocket>* out, std::string* error) {
  out->clear();
  const std::string pid_text = env_or_empty("LISTEN_PID");
  const std::string fds_text = env_or_empty("LISTEN_FDS");
  const std::string names_text = env_or_empty("LISTEN_FDNAMES");
  if (fds_text.empty() && pid_text.empty()) {
    unset_variables();
    return true;
  }
  long pid = 0;
  if (!parse_count(pid_text, INT_MAX, &pid) || pid == 0) {
    unset_variables();
    *error = "LISTEN_PID: not a process id: \"" + pid_text + "\"";
    return false;
  }
  if (pid != getpid()) {
    unset_variables();  // meant for another process (e.g. the one that exec'd us): not ours to serve
    return true;
  }
  long count = 0;
  if (!parse_count(fds_text, kMaxFds, &count)) {
    unset_variables();
    *error = "LISTEN_FDS: not a number of sockets up to " + std::to_string(kMaxFds) + ": \"" + fds_text + "\"";
    return false;
  }
  std::vector<std::string> names = split_names(names_text);
  if (!names.empty() && names.size() != static_cast<size_t>(count)) {
    unset_variables();
    *error = "LISTEN_FDNAMES: " + std::to_string(names.size()) + " names for " + std::to_string(count) + " sockets";
    return false;
  }
  for (long i = 0; i < count; ++i) {
    const int fd = kFirstFd + static_cast<int>(i);
    if (fcntl(fd, F_GETFD) < 0) {
      unset_variables();
      *error = "LISTEN_FDS: fd " + std::to_string(fd) + " was not passed: " + std::strerror(errno);
      return false;
    }
  }
#ifdef PTYHUB_HAVE_LIBSYSTEMD
  // The checks above give precise messages; the library then takes the fds (and unsets the variables).
  char** library_names = nullptr;
  const int taken = sd_listen_fds_with_names(1, &library_names);
  if (taken < 0) {
    unset_variables();
    *error = std::string("LISTEN_FDS: ") + std::strerror(-taken);
    return false;
  }
  names.assign(static_cast<size_t>(taken), std::string());
  for (int i = 0; library_names != nullptr && library_names[i] != nullptr; ++i) {
    if (i < taken && std::strcmp(library_names[i], "unknown") != 0) names[static_cast<size_t>(i)] = library_names[i];
    std::free(library_names[i]);
  }
  std::free(library_names);
  count = taken;
#else
  unset_variables();
  names.resize(static_cast<size_t>(count));
#endif
  for (long i = 0; i < count; ++i) {
    const int fd = kFirstFd + static_cast<int>(i);
    fcntl(fd, F_SETFD, FD_CLOEXEC);  // the library sets it too; cheap to be sure
    out->push_back({UniqueFd(fd), names[static_cast<size_t>(i)]});
  }
  return true;
}

}  // namespace ptyhub::systemd
