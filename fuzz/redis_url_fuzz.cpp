// Fuzzes the parser of the cluster's Redis URL, parse_redis_url (src/cluster/redis). What the cluster reads
// back from Redis is fuzzed by redis_entries_fuzz. Properties: nothing crashes; an accepted URL has a host, a
// port in 1..65535 and a database in 0..15; a refused one says why.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/fuzz_check.hpp"
#include "src/cluster/redis.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  const std::string_view url(reinterpret_cast<const char*>(bytes), size);
  ptyhub::cluster::RedisAddress address;
  std::string error;
  if (ptyhub::cluster::parse_redis_url(url, &address, &error)) {
    FUZZ_CHECK(!address.host.empty());
    FUZZ_CHECK(address.port >= 1 && address.port <= 65535);
    FUZZ_CHECK(address.db >= 0 && address.db <= 15);
  } else {
    FUZZ_CHECK(!error.empty());
  }
  return 0;
}
