// FUZZ_CHECK: the fuzz targets' assertion. A property that does not hold prints what failed and aborts,
// which libFuzzer reports as a crash and keeps the input (scripts/fuzz.sh prints it). Unlike assert() it
// is never compiled out.
#pragma once

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(condition)                                                                  \
  do {                                                                                         \
    if (!(condition)) {                                                                        \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                            \
    }                                                                                          \
  } while (0)
