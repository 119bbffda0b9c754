// Bytes from the kernel's random source (getrandom), for ids and nonces.
#pragma once

#include <sys/random.h>

#include <cstddef>

namespace ptyhub {

// Fills `out` with `size` random bytes; blocks only until the kernel's pool is initialised (at boot).
inline void random_bytes(void* out, size_t size) {
  auto* bytes = static_cast<unsigned char*>(out);
  size_t got = 0;
  while (got < size) {
    const ssize_t n = ::getrandom(bytes + got, size - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
  }
}

}  // namespace ptyhub
