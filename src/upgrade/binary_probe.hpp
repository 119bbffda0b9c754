// BinaryProbe: before a live upgrade hands anything over, the binary now at the daemon's path is asked
// whether it can take the handoff: `<binary> --handoff-probe <the daemon's arguments>` must load the same
// settings and answer `ptyhub-handoff-versions: <v>…` naming the state version this image writes, then
// exit 0 (docs/upgrade.md). A binary that is not executable, exits with another status, answers
// otherwise or not within the time limit is refused, and the upgrade is aborted with nothing changed.
//
// The probe runs on a PTY (pty::PtyProcess), so it is reaped through its pidfd like every terminal and
// the daemon's orphan reaper leaves it alone. Owns the process and a timer. Loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/uv_handle.hpp"
#include "pty/pty_process.hpp"

namespace ptyhub::upgrade {

// The line a binary prints for --handoff-probe, followed by the versions it reads, space-separated.
inline constexpr const char* kProbeAnswer = "ptyhub-handoff-versions:";

// True when `output` (what --handoff-probe printed) names `version` among the versions it reads.
bool probe_accepts(const std::string& output, uint32_t version);

class BinaryProbe {
 public:
  // ok, or why not (one line, for the log).
  using Done = std::function<void(bool ok, const std::string& why)>;

  // Starts `binary --handoff-probe args…` with `env`. nullptr with `error` when it cannot start (then
  // `done` is never called); otherwise `done` is called once, from the loop, never from start().
  static std::unique_ptr<BinaryProbe> start(uv_loop_t* loop, const std::string& binary,
                                            const std::vector<std::string>& args, std::vector<std::string> env,
                                            uint32_t version, uint64_t timeout_ms, Done done, std::string* error);
  ~BinaryProbe();
  BinaryProbe(const BinaryProbe&) = delete;
  BinaryProbe& operator=(const BinaryProbe&) = delete;

 private:
  BinaryProbe() = default;
  void on_exit(pty::ExitStatus status);
  void on_timeout();

  static constexpr size_t kMaxOutput = 4096;
  std::unique_ptr<pty::PtyProcess> process_;
  UvHandle<uv_timer_t> timer_;
  std::string output_;
  uint32_t version_ = 0;
  bool timed_out_ = false;
  Done done_;
};

}  // namespace ptyhub::upgrade
