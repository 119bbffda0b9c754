// The answer a binary gives to --handoff-probe (src/upgrade/binary_probe.*): accepted only when it names
// the state version asked for, on the answer's own line.
#include <doctest/doctest.h>

#include "src/upgrade/binary_probe.hpp"

namespace ptyhub::upgrade {
namespace {

TEST_CASE("handoff probe: the answer must name the version among those the binary reads") {
  CHECK(probe_accepts("ptyhub-handoff-versions: 1\r\n", 1));
  CHECK(probe_accepts("some warning\r\nptyhub-handoff-versions: 2 1 3\r\n", 1));
  CHECK(probe_accepts("ptyhub-handoff-versions: 1", 1));
  CHECK_FALSE(probe_accepts("ptyhub-handoff-versions: 11\r\n", 1));
  CHECK_FALSE(probe_accepts("ptyhub-handoff-versions: 2\r\n1\r\n", 1));  // a 1 on another line does not count
  CHECK_FALSE(probe_accepts("ptyhub-handoff-versions:\r\n", 1));
  CHECK_FALSE(probe_accepts("ptyhubd 0.1.0\r\n", 1));
  CHECK_FALSE(probe_accepts("", 1));
}

}  // namespace
}  // namespace ptyhub::upgrade
