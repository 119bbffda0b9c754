// Fuzzes the configuration loader (src/config): arbitrary bytes as the TOML file named by --config (a
// memfd, read through /proc/self/fd, so nothing touches the disk), then the value parsers the file and
// the flags share (sizes, durations, listen addresses) on the same text, and the reload rules between the
// loaded settings and the defaults. Properties: nothing throws out of load_config or crashes; a refusal
// says why; a listen address that parses has a host or a unix path.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz/fuzz_check.hpp"
#include "src/config.hpp"

namespace {

// The memfd the TOML text is written to, once per process.
int config_fd() {
  static const int fd = memfd_create("ptyhub-config-fuzz.toml", 0);
  FUZZ_CHECK(fd >= 0);
  return fd;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  const int fd = config_fd();
  FUZZ_CHECK(ftruncate(fd, 0) == 0);
  FUZZ_CHECK(pwrite(fd, bytes, size, 0) == static_cast<ssize_t>(size));
  const std::string path = "/proc/self/fd/" + std::to_string(fd);

  const ptyhub::ConfigResult result = ptyhub::load_config({"--config", path}, "/nonexistent");
  if (!result.ok) {
    FUZZ_CHECK(!result.error.empty());
  } else {
    ptyhub::Config live = ptyhub::load_config({}, "/nonexistent").config;
    std::vector<std::string> needs_restart;
    (void)ptyhub::reload_settings(live, result.config, &needs_restart);
  }

  const std::string text(reinterpret_cast<const char*>(bytes), size);
  uint64_t bytes_value = 0;
  (void)ptyhub::parse_size(text, &bytes_value);
  double seconds = 0;
  if (ptyhub::parse_duration(text, &seconds)) (void)ptyhub::to_millis(seconds);
  ptyhub::ListenAddress listen;
  if (ptyhub::parse_listen(text, &listen)) FUZZ_CHECK(listen.unix_socket ? !listen.path.empty() : !listen.host.empty());
  return 0;
}
