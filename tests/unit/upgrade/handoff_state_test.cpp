// The live-upgrade state (src/upgrade/handoff_state.*): what one image writes the next one reads whole,
// byte for byte, and anything else is refused with a reason, never half read.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <pty.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <optional>
#include <random>
#include <string>

#include "src/upgrade/handoff_state.hpp"

namespace ptyhub::upgrade {
namespace {

std::string every_byte() {
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes.push_back(static_cast<char>(i));
  return bytes;
}

HandoffState sample() {
  HandoffState state;
  state.daemon_version = "0.1.0";
  state.signalled_ns = 987654321012345;
  state.fds = {{FdKind::listener, 5, 0}, {FdKind::pty_master, 7, 0}, {FdKind::pidfd, 8, 4242}};
  TerminalState running;
  running.id = "e20ksqqsXLJz6xWqMsV2VA";
  running.owner = "alice";
  running.name = "build";
  running.command = {"/bin/bash", "-l"};
  running.cwd = "/home/alice";
  running.cols = 132;
  running.rows = 43;
  running.shares = {{"bob", "read"}, {"carol", "write"}};
  running.created_at_ms = 1765000000123;
  running.pid = 4242;
  running.master = 1;
  running.pidfd = 2;
  running.ring_start = 1u << 20;
  running.ring = every_byte() + every_byte();
  running.carry = "\xe2\x82";
  running.pending_input = "typed\r";
  running.idle_ms = 1234;
  running.detached_ms = 5678;
  TerminalState done;
  done.id = "gitTerminal0000000000A";
  done.kind = "git";
  done.owner = "bob";
  done.operation = "op1";
  done.exited = true;
  done.exit_code = 128;
  done.duration_ms = 4711;
  done.end_reason = "idle_timeout";
  done.ring = "fatal: repository not found\r\n";
  done.git = {{"operation", "clone"}, {"status", "failed"}};
  state.terminals = {running, done};
  return state;
}

TEST_CASE("handoff state: a round trip keeps every field and every byte of the rings") {
  const HandoffState state = sample();
  const std::string encoded = encode_state(state);
  std::string error;
  const auto decoded = decode_state(encoded, &error);
  REQUIRE_MESSAGE(decoded, error);
  CHECK(decoded->daemon_version == "0.1.0");
  REQUIRE(decoded->fds.size() == 3);
  CHECK(decoded->fds[2].kind == FdKind::pidfd);
  CHECK(decoded->fds[2].pid == 4242);
  REQUIRE(decoded->terminals.size() == 2);
  const TerminalState& t = decoded->terminals[0];
  CHECK(t.id == state.terminals[0].id);
  CHECK(t.command == state.terminals[0].command);
  CHECK(t.cols == 132);
  CHECK(t.rows == 43);
  CHECK(t.shares == state.terminals[0].shares);
  CHECK(t.created_at_ms == 1765000000123);
  CHECK(t.ring.view() == state.terminals[0].ring.view());
  CHECK(t.carry == "\xe2\x82");
  CHECK(t.pending_input == "typed\r");
  CHECK(t.idle_ms == 1234);
  CHECK(t.detached_ms == 5678);
  CHECK(decoded->signalled_ns == 987654321012345);
  CHECK(t.output_bytes() == (1u << 20) + 512 + 2);
  const TerminalState& d = decoded->terminals[1];
  CHECK(d.exited);
  CHECK(d.exit_code == 128);
  CHECK(d.end_reason == "idle_timeout");
  CHECK(d.git == state.terminals[1].git);
  CHECK(d.master == -1);
}

TEST_CASE("handoff state: another version, a cut, a changed byte or trailing bytes are refused with a reason") {
  const std::string encoded = encode_state(sample());
  std::string error;
  std::string other_version = encoded;
  other_version[16] = 3;
  CHECK_FALSE(decode_state(other_version, &error));
  CHECK(error.find("version 3") != std::string::npos);
  CHECK_FALSE(decode_state(encoded.substr(0, encoded.size() - 1), &error));
  CHECK(error.find("header says") != std::string::npos);
  CHECK_FALSE(decode_state(encoded + "x", &error));
  CHECK_FALSE(decode_state("", &error));
  CHECK(error.find("magic") != std::string::npos);
  // Any single changed byte of the header or the metadata fails (its digest, its lengths).
  constexpr size_t kHeader = 16 + 4 + 8 + 8 + 32;
  size_t meta_length = 0;
  for (int i = 0; i < 8; ++i) meta_length |= size_t{static_cast<unsigned char>(encoded[20 + i])} << (8 * i);
  for (size_t at = 16; at < kHeader + meta_length; at += 7) {
    std::string changed = encoded;
    changed[at] = static_cast<char>(changed[at] ^ 0x20);
    CAPTURE(at);
    CHECK_FALSE(decode_state(changed, &error));
  }
  // The rings are not hashed (the memfd is sealed; docs/upgrade.md): a changed ring byte is that byte.
  std::string changed = encoded;
  changed[kHeader + meta_length] = static_cast<char>(changed[kHeader + meta_length] ^ 0x01);
  const auto decoded = decode_state(changed, &error);
  REQUIRE_MESSAGE(decoded, error);
  CHECK(decoded->terminals[0].ring[0] == static_cast<char>(sample().terminals[0].ring[0] ^ 0x01));
}

TEST_CASE("handoff state: references that do not add up are refused") {
  std::string error;
  const auto refused = [&](HandoffState state, const char* expected) {
    const bool decoded = decode_state(encode_state(state), &error).has_value();
    CAPTURE(expected);
    CAPTURE(error);
    CHECK_FALSE(decoded);
    CHECK(error.find(expected) != std::string::npos);
  };
  HandoffState state = sample();
  state.terminals[0].master = 2;  // the pidfd
  refused(state, "terminals.0.master does not refer to a handed pty");
  state = sample();
  state.terminals[0].pidfd = 9;
  refused(state, "terminals.0.pidfd does not refer");
  state = sample();
  state.fds[2].pid = 1;
  refused(state, "refers to another process");
  state = sample();
  state.terminals[1].id = state.terminals[0].id;
  refused(state, "is not unique");
  state = sample();
  state.fds[1].fd = 5;
  refused(state, "handed twice");
  state = sample();
  state.terminals[0].carry = "abcd";
  refused(state, "carry");
  state = sample();
  state.terminals[1].pidfd = 2;
  refused(state, "set on an exited terminal");
  state = sample();
  state.terminals[0].shares["dave"] = "admin";
  refused(state, "shares.dave");
}

TEST_CASE("handoff state: random bytes in the header and metadata never decode and never crash") {
  std::mt19937 random(7);
  const std::string encoded = encode_state(sample());
  size_t meta_end = 16 + 4 + 8 + 8 + 32;
  for (int i = 0; i < 8; ++i) meta_end += size_t{static_cast<unsigned char>(encoded[20 + i])} << (8 * i);
  std::string error;
  for (int round = 0; round < 2000; ++round) {
    std::string mutated = encoded;
    const int changes = 1 + static_cast<int>(random() % 8);
    for (int i = 0; i < changes; ++i) mutated[random() % meta_end] = static_cast<char>(random());
    const auto decoded = decode_state(mutated, &error);
    if (decoded) CHECK(mutated == encoded);  // only an unchanged state decodes
  }
}

// `body` as the metadata behind a valid header (magic, version, lengths, SHA-256) and no rings, as encode_state writes it.
std::string with_header(std::string_view body) {
  std::string out("PTYHUB-HANDOFF\n\0", 16);
  const auto put_le = [&out](uint64_t value, int bytes) {
    for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
  };
  put_le(kStateVersion, 4);
  put_le(body.size(), 8);  // the metadata
  put_le(0, 8);            // no rings
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  REQUIRE(EVP_Digest(body.data(), body.size(), digest, &length, EVP_sha256(), nullptr) == 1);
  out.append(reinterpret_cast<const char*>(digest), length);
  out.append(body);
  return out;
}

// Found by fuzz/handoff_state_fuzz: CBOR announcing an array or map of 2^63 items made nlohmann's DOM
// builder throw out_of_range (from_cbor's allow_exceptions=false does not cover it), ending the process.
TEST_CASE("handoff state: a CBOR body announcing an impossible array or map size is refused, not thrown") {
  std::string error;
  for (std::string_view body : {std::string_view("\x9b\x9f\x9f\x9f\x9f\x9f\x9f\x9f\x9f", 9),
                                std::string_view("\xbb\x7f\xff\xff\xff\xff\xff\xff\xff", 9),
                                std::string_view("\xa1\x61x\x9b\x7f\xff\xff\xff\xff\xff\xff\xff", 12)}) {
    const std::string state = with_header(body);
    std::optional<HandoffState> decoded;
    CHECK_NOTHROW(decoded = decode_state(state, &error));
    CHECK_FALSE(decoded.has_value());
    CHECK(error == "the body is not CBOR");
  }
}

TEST_CASE("handoff state: a sealed memfd round trip - an unsealed or oversized one is refused") {
  const std::string encoded = encode_state(sample());
  std::string error;
  UniqueFd fd = write_sealed(encoded, &error);
  REQUIRE_MESSAGE(fd, error);
  CHECK((::fcntl(fd.get(), F_GETFD) & FD_CLOEXEC) == 0);  // it crosses execve
  CHECK(::write(fd.get(), "x", 1) < 0);                    // sealed
  const auto read = read_sealed(fd.get(), kMaxStateBytes, &error);
  REQUIRE_MESSAGE(read, error);
  CHECK(*read == encoded);
  CHECK_FALSE(read_sealed(fd.get(), encoded.size() - 1, &error));

  UniqueFd plain(::memfd_create("plain", 0));
  REQUIRE(plain);
  REQUIRE(::write(plain.get(), encoded.data(), encoded.size()) == static_cast<ssize_t>(encoded.size()));
  CHECK_FALSE(read_sealed(plain.get(), kMaxStateBytes, &error));
  CHECK(error.find("not a sealed memfd") != std::string::npos);
}

TEST_CASE("handoff state: write_state writes rings from their two pieces, read_state lends them from its mapping") {
  HandoffState state = sample();
  // The running terminal's ring as a wrapped ring hands it: "ABC" then "DEF", no copy in the state.
  const std::string first = "ABC", second = "DEF";
  state.terminals[0].ring.clear();
  state.terminals[0].ring_length = first.size() + second.size();
  state.terminals[0].ring_pieces = [&] { return std::pair<std::string_view, std::string_view>(first, second); };
  std::string error;
  UniqueFd fd = write_state(state, &error);
  REQUIRE_MESSAGE(fd, error);
  CHECK((::fcntl(fd.get(), F_GETFD) & FD_CLOEXEC) == 0);
  CHECK(::write(fd.get(), "x", 1) < 0);  // sealed
  // The bytes are those encode_state() writes from the same state.
  const auto whole = read_sealed(fd.get(), kMaxStateBytes, &error);
  REQUIRE_MESSAGE(whole, error);
  CHECK(*whole == encode_state(state));

  std::optional<HandoffState> read = read_state(fd.get(), kMaxStateBytes, &error);
  REQUIRE_MESSAGE(read, error);
  TerminalState& t = read->terminals[0];
  CHECK(t.ring.view() == "ABCDEF");
  CHECK(t.ring.borrowed());  // lent from the mapping, not copied
  CHECK(read->terminals[1].ring.view() == "fatal: repository not found\r\n");
  // Written through (a ring appending over its oldest bytes): the sealed memfd does not change.
  t.ring[0] = 'x';
  CHECK(t.ring.view() == "xBCDEF");
  const auto again = read_sealed(fd.get(), kMaxStateBytes, &error);
  REQUIRE(again);
  CHECK(*again == *whole);
  // Owned: the same bytes, no longer borrowed, alive after the state (and its mapping) is gone.
  SharedBytes kept = std::move(t.ring);
  kept.own();
  read.reset();
  CHECK_FALSE(kept.borrowed());
  CHECK(kept.view() == "xBCDEF");
  // decode_state() of the same bytes copies.
  std::optional<HandoffState> decoded = decode_state(*whole, &error);
  REQUIRE_MESSAGE(decoded, error);
  CHECK_FALSE(decoded->terminals[0].ring.borrowed());
  CHECK(decoded->terminals[0].ring.view() == "ABCDEF");
}

TEST_CASE("handoff state: each handed fd is checked for what it claims to be") {
  int master = -1, replica = -1;
  REQUIRE(::openpty(&master, &replica, nullptr, nullptr, nullptr) == 0);
  UniqueFd master_fd(master), replica_fd(replica);
  CHECK(check_handed_fd({FdKind::pty_master, master, 0}) == "");
  CHECK(check_handed_fd({FdKind::pty_master, replica, 0}).find("not a PTY master") != std::string::npos);
  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  UniqueFd in(pipe_fds[0]), out(pipe_fds[1]);
  CHECK(check_handed_fd({FdKind::pty_master, pipe_fds[0], 0}).find("not a PTY master") != std::string::npos);
  CHECK(check_handed_fd({FdKind::listener, pipe_fds[0], 0}).find("not a listening socket") != std::string::npos);
  CHECK(check_handed_fd({FdKind::pidfd, pipe_fds[0], 1}).find("not a pidfd") != std::string::npos);
  CHECK(check_handed_fd({FdKind::pty_master, 999, 0}).find("not open") != std::string::npos);

  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::pause();
    ::_exit(0);
  }
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, child, 0)));
  REQUIRE(pidfd);
  CHECK(check_handed_fd({FdKind::pidfd, pidfd.get(), child}) == "");
  CHECK(check_handed_fd({FdKind::pidfd, pidfd.get(), child + 1}).find("refers to process") != std::string::npos);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);

  UniqueFd socket_fd(::socket(AF_INET, SOCK_STREAM, 0));
  REQUIRE(socket_fd);
  CHECK(check_handed_fd({FdKind::listener, socket_fd.get(), 0}).find("not a listening socket") != std::string::npos);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(socket_fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  REQUIRE(::listen(socket_fd.get(), 1) == 0);
  CHECK(check_handed_fd({FdKind::listener, socket_fd.get(), 0}) == "");
}

TEST_CASE("handoff state: close_unclaimed_fds closes the handed kinds that crossed an exec and nothing else") {
  // Without FD_CLOEXEC (as handed over): a PTY master, a pidfd, a listening socket, a handoff memfd; and
  // a pipe, which is none of those. With FD_CLOEXEC (claimed): another PTY master.
  int master = -1, replica = -1, claimed = -1, claimed_replica = -1;
  REQUIRE(::openpty(&master, &replica, nullptr, nullptr, nullptr) == 0);
  REQUIRE(::openpty(&claimed, &claimed_replica, nullptr, nullptr, nullptr) == 0);
  ::fcntl(claimed, F_SETFD, FD_CLOEXEC);
  for (int fd : {replica, claimed_replica}) ::fcntl(fd, F_SETFD, FD_CLOEXEC);  // a replica is none of the kinds anyway
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::pause();
    ::_exit(0);
  }
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, child, 0));
  REQUIRE(pidfd >= 0);
  ::fcntl(pidfd, F_SETFD, 0);  // pidfd_open sets it; a handed pidfd has it cleared
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  REQUIRE(::listen(listener, 1) == 0);
  const int memfd = ::memfd_create("ptyhub-handoff", 0);
  REQUIRE(memfd >= 0);
  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);

  CHECK(close_unclaimed_fds() == 4);
  for (int fd : {master, pidfd, listener, memfd}) CHECK(::fcntl(fd, F_GETFD) < 0);
  for (int fd : {claimed, replica, claimed_replica, pipe_fds[0], pipe_fds[1]}) CHECK(::fcntl(fd, F_GETFD) >= 0);
  for (int fd : {claimed, replica, claimed_replica, pipe_fds[0], pipe_fds[1]}) ::close(fd);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
}

}  // namespace
}  // namespace ptyhub::upgrade
