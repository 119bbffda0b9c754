// The state a daemon hands to the image it re-executes (a live upgrade): every terminal with its ring and
// offsets, and the fds it passes on (PTY masters, pidfds, listeners). Written to a sealed memfd by the old
// image, read and checked by the new one, which never runs with half a state: decode_state() accepts a
// state whole or refuses it with a reason.
//
// Format (version 2): the magic "PTYHUB-HANDOFF\n\0" (16 bytes), the version (u32, little endian), the
// metadata's length and the rings' length (u64 LE each), the SHA-256 of the metadata (32 bytes), the
// metadata — CBOR (RFC 8949) of one map, each terminal naming where its ring is — then the rings, raw and
// in order. The rings are not hashed (hundreds of MB would cost most of the handoff's time): the memfd is
// sealed against any change and every ring's place is checked against the lengths. Loop-independent; no
// libuv, no sockets beyond checking what an fd is.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/shared_bytes.hpp"
#include "core/unique_fd.hpp"

namespace ptyhub::upgrade {

inline constexpr uint32_t kStateVersion = 2;
inline constexpr size_t kMaxStateBytes = size_t{4} << 30;  // what read_sealed() accepts at most

// stdio_socket: the parent's end of the socket pair of a terminal with stdio "pipes" (its "master").
enum class FdKind { pty_master, pidfd, listener, stdio_socket };

// An fd handed over: its number in both images, what it must be, and for a pidfd the pid it refers to.
struct HandedFd {
  FdKind kind = FdKind::pty_master;
  int fd = -1;
  int64_t pid = 0;  // pidfd only
};

struct TerminalState {
  std::string id;
  std::string kind = "shell";
  std::string owner;
  std::string name;
  std::vector<std::string> command;
  std::string cwd;
  std::string operation;  // git operation id, if any
  uint16_t cols = 80;
  uint16_t rows = 24;
  std::map<std::string, std::string> shares;  // user -> "read" | "write"
  int64_t created_at_ms = 0;                  // Unix ms
  int64_t pid = 0;
  bool pipes = false;      // stdio "pipes": `master` is a stdio_socket
  bool end_input = false;  // shell.input {eof} was asked for: the command's input ends after pending_input
  int master = -1;  // index into HandoffState::fds (pty_master or stdio_socket), -1 once exited
  int pidfd = -1;   // index into HandoffState::fds (pidfd), -1 once exited
  bool exited = false;
  std::optional<int> exit_code;
  int exit_signal = 0;
  uint64_t duration_ms = 0;
  std::string end_reason;
  uint64_t ring_start = 0;  // raw offset of ring[0]
  // Retained output: raw bytes [ring_start, ring_start + ring_size()). read_state() lends them from its
  // mapping of the state (no copy); decode_state() copies them.
  SharedBytes ring;
  // Or, when writing: the ring is not copied here; the state is written from these two pieces of it.
  std::function<std::pair<std::string_view, std::string_view>()> ring_pieces;
  uint64_t ring_length = 0;  // with ring_pieces: its size
  std::string carry;        // bytes of a character split across reads, after the ring
  std::string pending_input;  // input accepted but not yet written to the PTY
  uint64_t idle_ms = 0;      // since the last input or output (idle_timeout goes on counting)
  uint64_t detached_ms = 0;  // since its last subscriber left; 0 while it had one (detached_timeout)
  nlohmann::json git;       // the git operation's own state (null for shells)
  // The offset the next byte read from the PTY gets.
  uint64_t output_bytes() const { return ring_start + ring_size() + carry.size(); }
  uint64_t ring_size() const { return ring_pieces ? ring_length : ring.size(); }
};

struct HandoffState {
  std::string daemon_version;
  uint64_t signalled_ns = 0;  // when the upgrade was asked for (uv_hrtime: CLOCK_MONOTONIC, survives execve)
  std::vector<HandedFd> fds;
  std::vector<TerminalState> terminals;
};

std::string encode_state(const HandoffState& state);
// The state, or nullopt with `error` saying why (bad magic, another version, a length or digest that does
// not match, a field missing or of the wrong type, offsets or fd references that do not add up).
std::optional<HandoffState> decode_state(std::string_view bytes, std::string* error);

// The state written straight into a memfd (each ring copied once, by the kernel) and sealed as
// write_sealed() does.
UniqueFd write_state(const HandoffState& state, std::string* error);
// The state of a memfd written by write_state(), or nullopt with `error`. The memfd is mapped privately,
// not copied: the rings are borrowed from the mapping, which lives until the last of them is owned or gone.
std::optional<HandoffState> read_state(int fd, size_t max_bytes, std::string* error);

// A memfd holding `bytes`, sealed against any change (F_SEAL_WRITE, SHRINK, GROW, SEAL). Without
// FD_CLOEXEC: it is meant to cross execve.
UniqueFd write_sealed(std::string_view bytes, std::string* error);
// The contents of a memfd written by write_sealed(); refused when it is not sealed that way or larger
// than `max_bytes`.
std::optional<std::string> read_sealed(int fd, size_t max_bytes, std::string* error);

// Closes every fd above 2 of this process that crossed an execve (no FD_CLOEXEC) and is a PTY master, a
// pidfd or a listening socket: what an earlier image handed over and nobody claimed (a state that could not
// be read, a terminal that could not be restored), and a handoff state memfd still open. Claimed fds have FD_CLOEXEC again. Returns how many.
size_t close_unclaimed_fds();

// "" when `fd` is what `handed` says (an open PTY master; a pidfd of that pid; a listening socket), else why not.
std::string check_handed_fd(const HandedFd& handed);

}  // namespace ptyhub::upgrade
