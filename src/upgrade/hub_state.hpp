// Between a hub and the handoff state (docs/upgrade.md): the old image captures its terminals into the
// state, releasing their processes; the new one restores them, checking every fd first. A terminal whose
// fds are not what they claim is not half restored: it is listed as exited with reason "upgrade_failed"
// and its processes are ended.
#pragma once

#include <string>
#include <vector>

#include "core/unique_fd.hpp"
#include "src/hub/hub.hpp"
#include "src/upgrade/handoff_state.hpp"

namespace ptyhub::upgrade {

// Every local terminal of `hub`, running ones with their processes released: their masters and pidfds
// are handed over. Rings are not copied: each TerminalState::ring_pieces names its terminal's ring, which
// is written out with the state (the terminals must live until then). Also: the masters and pidfds
// are appended to `handed` (which owns them; the state names their numbers). Mirrors are not captured.
HandoffState capture(hub::Hub& hub, std::string daemon_version, std::vector<UniqueFd>* handed);

// Restores the terminals of `state` into `hub`, taking ownership of their fds. Returns one line per
// terminal that could not run again (it is then listed exited, reason "upgrade_failed").
// The rings move out of `state` into the terminals.
std::vector<std::string> restore(hub::Hub& hub, HandoffState& state);

}  // namespace ptyhub::upgrade
