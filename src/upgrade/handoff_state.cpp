#include "src/upgrade/handoff_state.hpp"

#include <dirent.h>
#include <limits.h>
#include <sys/uio.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <set>

#include "core/memory_map.hpp"

namespace ptyhub::upgrade {
namespace {

using nlohmann::json;

constexpr char kMagic[16] = {'P', 'T', 'Y', 'H', 'U', 'B', '-', 'H', 'A', 'N', 'D', 'O', 'F', 'F', '\n', '\0'};
constexpr size_t kDigestBytes = 32;
// magic, version (u32), metadata length (u64), blob length (u64), SHA-256 of the metadata.
constexpr size_t kHeaderBytes = sizeof kMagic + 4 + 8 + 8 + kDigestBytes;

std::string sha256(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr) != 1 || length != kDigestBytes) {
    return {};
  }
  return std::string(reinterpret_cast<const char*>(digest), length);
}

void put_le(std::string& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

uint64_t get_le(std::string_view in, size_t at, int bytes) {
  uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) value |= uint64_t{static_cast<unsigned char>(in[at + i])} << (8 * i);
  return value;
}

const char* kind_name(FdKind kind) {
  switch (kind) {
    case FdKind::pty_master: return "pty";
    case FdKind::pidfd: return "pidfd";
    case FdKind::listener: return "listener";
    case FdKind::stdio_socket: return "stdio";
  }
  return "?";
}

json binary(std::string_view bytes) {
  return json::binary(std::vector<std::uint8_t>(bytes.begin(), bytes.end()));
}

// Reads the fields of one CBOR map, remembering the first problem (with the path of the field).
class Fields {
 public:
  Fields(const json& object, std::string path, std::string* error) : object_(object), path_(std::move(path)), error_(error) {
    if (!object_.is_object()) fail("", "is not a map");
  }
  bool ok() const { return error_->empty(); }
  void fail(const std::string& key, const std::string& what) {
    if (error_->empty()) *error_ = path_ + (key.empty() ? "" : "." + key) + " " + what;
  }
  const json* get(const std::string& key, bool (json::*is)() const, const char* type) {
    if (!ok() || !object_.is_object()) return nullptr;
    auto it = object_.find(key);
    if (it == object_.end()) {
      fail(key, "is missing");
      return nullptr;
    }
    if (!((*it).*is)()) {
      fail(key, std::string("is not ") + type);
      return nullptr;
    }
    return &*it;
  }
  std::string text(const std::string& key) {
    const json* v = get(key, &json::is_string, "a string");
    return v ? v->get<std::string>() : std::string();
  }
  std::string bytes(const std::string& key) {
    const json* v = get(key, &json::is_binary, "a byte string");
    return v ? std::string(v->get_binary().begin(), v->get_binary().end()) : std::string();
  }
  uint64_t unsigned_number(const std::string& key, uint64_t max) {
    const json* v = get(key, &json::is_number_unsigned, "an unsigned integer");
    if (v == nullptr) return 0;
    const uint64_t value = v->get<uint64_t>();
    if (value > max) fail(key, "is out of range");
    return value;
  }
  // A field added after version 1 was released: `fallback` when an older image did not write it.
  uint64_t optional_unsigned(const std::string& key, uint64_t max, uint64_t fallback) {
    if (ok() && object_.is_object() && object_.find(key) == object_.end()) return fallback;
    return unsigned_number(key, max);
  }
  int64_t signed_number(const std::string& key) {
    const json* v = get(key, &json::is_number_integer, "an integer");
    return v ? v->get<int64_t>() : 0;
  }
  bool boolean(const std::string& key) {
    const json* v = get(key, &json::is_boolean, "a boolean");
    return v ? v->get<bool>() : false;
  }
  const json* array(const std::string& key) { return get(key, &json::is_array, "an array"); }
  const json* map(const std::string& key) { return get(key, &json::is_object, "a map"); }
  const json* any(const std::string& key) {
    if (!ok()) return nullptr;
    auto it = object_.find(key);
    if (it == object_.end()) {
      fail(key, "is missing");
      return nullptr;
    }
    return &*it;
  }

 private:
  const json& object_;
  std::string path_;
  std::string* error_;
};

json encode_terminal(const TerminalState& t, uint64_t ring_at) {
  json shares = json::object();
  for (const auto& [user, mode] : t.shares) shares[user] = mode;
  return {{"id", t.id},
          {"kind", t.kind},
          {"owner", t.owner},
          {"name", t.name},
          {"command", t.command},
          {"cwd", t.cwd},
          {"operation", t.operation},
          {"cols", t.cols},
          {"rows", t.rows},
          {"shares", shares},
          {"createdAt", t.created_at_ms},
          {"pid", t.pid},
          {"master", t.master},
          {"pidfd", t.pidfd},
          {"exited", t.exited},
          {"exitCode", t.exit_code ? json(*t.exit_code) : json(nullptr)},
          {"exitSignal", t.exit_signal},
          {"duration", t.duration_ms},
          {"endReason", t.end_reason},
          {"ringStart", t.ring_start},
          {"ringAt", ring_at},
          {"ringLength", t.ring_size()},
          {"carry", binary(t.carry)},
          {"input", binary(t.pending_input)},
          {"stdio", t.pipes ? "pipes" : "pty"},
          {"endInput", t.end_input},
          {"idle", t.idle_ms},
          {"detached", t.detached_ms},
          {"git", t.git}};
}

// Where decoded rings come from: copied out of `blob`, or lent from a mapping kept by `keeper`, where the
// rings start at `writable`.
struct RingLender {
  std::shared_ptr<void> keeper;
  char* writable = nullptr;
};

bool decode_terminal(const json& in, size_t index, const std::vector<HandedFd>& fds, std::string_view blob,
                     const RingLender& lender,
                     TerminalState* t, std::string* error) {
  Fields f(in, "terminals." + std::to_string(index), error);
  t->id = f.text("id");
  t->kind = f.text("kind");
  t->owner = f.text("owner");
  t->name = f.text("name");
  if (const json* command = f.array("command")) {
    for (const json& arg : *command) {
      if (!arg.is_string()) f.fail("command", "has an element that is not a string");
      else t->command.push_back(arg.get<std::string>());
    }
  }
  t->cwd = f.text("cwd");
  t->operation = f.text("operation");
  t->cols = static_cast<uint16_t>(f.unsigned_number("cols", 1000));
  t->rows = static_cast<uint16_t>(f.unsigned_number("rows", 1000));
  if (const json* shares = f.map("shares")) {
    for (const auto& [user, mode] : shares->items()) {
      if (!mode.is_string() || (mode != "read" && mode != "write")) f.fail("shares." + user, "is not read or write");
      else t->shares[user] = mode.get<std::string>();
    }
  }
  t->created_at_ms = f.signed_number("createdAt");
  t->pid = f.signed_number("pid");
  t->master = static_cast<int>(f.signed_number("master"));
  t->pidfd = static_cast<int>(f.signed_number("pidfd"));
  t->exited = f.boolean("exited");
  if (const json* code = f.any("exitCode")) {
    if (code->is_number_integer()) t->exit_code = code->get<int>();
    else if (!code->is_null()) f.fail("exitCode", "is neither an integer nor null");
  }
  t->exit_signal = static_cast<int>(f.unsigned_number("exitSignal", 64));
  t->duration_ms = f.unsigned_number("duration", UINT64_MAX);
  t->end_reason = f.text("endReason");
  t->ring_start = f.unsigned_number("ringStart", UINT64_MAX / 2);
  const uint64_t ring_at = f.unsigned_number("ringAt", UINT64_MAX / 2);
  const uint64_t ring_length = f.unsigned_number("ringLength", UINT64_MAX / 2);
  if (f.ok() && (ring_at > blob.size() || ring_length > blob.size() - ring_at)) f.fail("ringLength", "runs past the rings");
  if (f.ok() && ring_length > 0) {
    const size_t at = static_cast<size_t>(ring_at);
    const size_t length = static_cast<size_t>(ring_length);
    if (lender.keeper) t->ring = SharedBytes(lender.keeper, lender.writable + at, length);
    else t->ring = std::string(blob.substr(at, length));
  }
  t->carry = f.bytes("carry");
  t->pending_input = f.bytes("input");
  t->idle_ms = f.optional_unsigned("idle", UINT64_MAX / 2, 0);
  if (in.is_object() && in.contains("stdio")) {
    const std::string stdio = f.text("stdio");
    if (stdio != "pty" && stdio != "pipes") f.fail("stdio", "is not pty or pipes");
    t->pipes = stdio == "pipes";
  }
  if (in.is_object() && in.contains("endInput")) t->end_input = f.boolean("endInput");
  t->detached_ms = f.optional_unsigned("detached", UINT64_MAX / 2, 0);
  if (const json* git = f.any("git")) t->git = *git;
  if (!f.ok()) return false;
  // What the fields mean together.
  if (t->id.empty() || t->owner.empty()) f.fail("id", "or owner is empty");
  if (t->cols == 0 || t->rows == 0) f.fail("cols", "or rows is 0");
  if (t->carry.size() > 3) f.fail("carry", "is longer than a split character");
  const auto refers = [&](const char* key, int at, FdKind kind) {
    if (at < 0 || static_cast<size_t>(at) >= fds.size() || fds[at].kind != kind) {
      f.fail(key, std::string("does not refer to a handed ") + kind_name(kind));
    }
  };
  if (!t->exited) {
    if (t->pid <= 0) f.fail("pid", "is not a process");
    refers("master", t->master, t->pipes ? FdKind::stdio_socket : FdKind::pty_master);
    refers("pidfd", t->pidfd, FdKind::pidfd);
    if (f.ok() && fds[t->pidfd].pid != t->pid) f.fail("pidfd", "refers to another process");
  } else if (t->master != -1 || t->pidfd != -1) {
    f.fail("master", "or pidfd is set on an exited terminal");
  }
  return f.ok();
}

// The CBOR body as JSON, or a discarded value. from_cbor's allow_exceptions=false does not cover every
// failure: nlohmann's DOM builder throws out_of_range (408) for an array or map that announces more items
// than a container can hold (found by fuzz/handoff_state_fuzz), so that one is caught here.
json parse_cbor(std::string_view body) {
  try {
    return json::from_cbor(body.begin(), body.end(), true, false);
  } catch (const json::exception&) {
    return json(json::value_t::discarded);
  }
}

}  // namespace

namespace {

// The header and the metadata of `state`; the rings (`*blob_length` bytes) follow them.
std::string encode_head(const HandoffState& state, uint64_t* blob_length_out) {
  json fds = json::array();
  for (const HandedFd& handed : state.fds) fds.push_back({{"kind", kind_name(handed.kind)}, {"fd", handed.fd}, {"pid", handed.pid}});
  json terminals = json::array();
  uint64_t blob_length = 0;
  for (const TerminalState& t : state.terminals) {
    terminals.push_back(encode_terminal(t, blob_length));
    blob_length += t.ring_size();
  }
  const json body = {{"daemon", state.daemon_version}, {"signalled", state.signalled_ns}, {"fds", fds}, {"terminals", terminals}};
  const std::vector<std::uint8_t> cbor = json::to_cbor(body);
  const std::string_view meta(reinterpret_cast<const char*>(cbor.data()), cbor.size());
  std::string out;
  out.reserve(kHeaderBytes + meta.size());
  out.append(kMagic, sizeof kMagic);
  put_le(out, kStateVersion, 4);
  put_le(out, meta.size(), 8);
  put_le(out, blob_length, 8);
  out += sha256(meta);
  out += meta;
  *blob_length_out = blob_length;
  return out;
}

constexpr int kSeals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL;

std::optional<HandoffState> decode(std::string_view bytes, std::string* error, std::shared_ptr<void> keeper,
                                   char* writable);

}  // namespace

std::string encode_state(const HandoffState& state) {
  uint64_t blob_length = 0;
  std::string out = encode_head(state, &blob_length);
  for (const TerminalState& t : state.terminals) {  // the rings, raw, in order
    const size_t at = out.size();
    out.resize(at + t.ring_size());
    if (t.ring_pieces) {
      const auto [first, second] = t.ring_pieces();
      std::memcpy(out.data() + at, first.data(), first.size());
      std::memcpy(out.data() + at + first.size(), second.data(), second.size());
    } else if (!t.ring.empty()) {
      std::memcpy(out.data() + at, t.ring.data(), t.ring.size());
    }
  }
  return out;
}

namespace {

// Writes every piece at the end of `fd`, as few calls as IOV_MAX allows, going on after short writes.
bool write_pieces(int fd, std::vector<iovec>& pieces, std::string* error) {
  size_t next = 0;
  while (next < pieces.size()) {
    if (pieces[next].iov_len == 0) {
      ++next;
      continue;
    }
    const int count = static_cast<int>(std::min<size_t>(pieces.size() - next, IOV_MAX));
    const ssize_t n = ::writev(fd, &pieces[next], count);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *error = std::string("writing the state: ") + (n == 0 ? "no progress" : std::strerror(errno));
      return false;
    }
    size_t done = static_cast<size_t>(n);
    while (done > 0) {  // skip what went out, whole pieces then part of one
      const size_t taken = std::min(done, pieces[next].iov_len);
      pieces[next].iov_base = static_cast<char*>(pieces[next].iov_base) + taken;
      pieces[next].iov_len -= taken;
      done -= taken;
      if (pieces[next].iov_len == 0) ++next;
    }
  }
  return true;
}

}  // namespace

UniqueFd write_state(const HandoffState& state, std::string* error) {
  uint64_t blob_length = 0;
  const std::string head = encode_head(state, &blob_length);
  UniqueFd fd(::memfd_create("ptyhub-handoff", MFD_ALLOW_SEALING));
  if (!fd) {
    *error = std::string("memfd_create: ") + std::strerror(errno);
    return {};
  }
  // Straight from the rings into the memfd: the kernel copies each byte once, into pages it allocates as it
  // goes (faster than faulting in a mapping and copying into it).
  std::vector<iovec> pieces;
  pieces.reserve(1 + 2 * state.terminals.size());
  const auto add = [&pieces](std::string_view piece) {
    if (!piece.empty()) pieces.push_back({const_cast<char*>(piece.data()), piece.size()});
  };
  add(head);
  for (const TerminalState& t : state.terminals) {
    if (t.ring_pieces) {
      const auto [first, second] = t.ring_pieces();
      add(first);
      add(second);
    } else {
      add(t.ring.view());
    }
  }
  if (!write_pieces(fd.get(), pieces, error)) return {};
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0 || static_cast<uint64_t>(info.st_size) != head.size() + blob_length) {
    *error = "the state's size is not what was written";
    return {};
  }
  if (::fcntl(fd.get(), F_ADD_SEALS, kSeals) != 0) {
    *error = std::string("sealing the state: ") + std::strerror(errno);
    return {};
  }
  return fd;
}

std::optional<HandoffState> read_state(int fd, size_t max_bytes, std::string* error) {
  const int seals = ::fcntl(fd, F_GET_SEALS);
  if (seals < 0 || (seals & kSeals) != kSeals) {
    *error = "the state's fd is not a sealed memfd";
    return std::nullopt;
  }
  struct stat info {};
  if (::fstat(fd, &info) != 0 || info.st_size <= 0 || static_cast<uint64_t>(info.st_size) > max_bytes) {
    *error = "the state's size is unreadable, empty or over the limit";
    return std::nullopt;
  }
  const size_t size = static_cast<size_t>(info.st_size);
  // Private and writable: a restored ring writes into its borrowed pages (copied on write, the sealed memfd
  // never changes). Not populated: pages are mapped in as the rings are read.
  auto map = std::make_shared<MemoryMap>(fd, size, PROT_READ | PROT_WRITE, MAP_PRIVATE);
  if (!*map) {
    *error = std::string("mapping the state: ") + std::strerror(errno);
    return std::nullopt;
  }
  const std::string_view bytes(map->data(), size);
  return decode(bytes, error, map, map->data());
}

std::optional<HandoffState> decode_state(std::string_view bytes, std::string* error) {
  return decode(bytes, error, nullptr, nullptr);
}

namespace {

// decode_state(); with a `keeper`, the rings are lent from `writable`, the same bytes as `bytes`.
std::optional<HandoffState> decode(std::string_view bytes, std::string* error, std::shared_ptr<void> keeper,
                                   char* writable) {
  error->clear();
  if (bytes.size() < kHeaderBytes || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) {
    *error = "not a handoff state (no magic)";
    return std::nullopt;
  }
  const uint64_t version = get_le(bytes, sizeof kMagic, 4);
  if (version != kStateVersion) {
    *error = "state version " + std::to_string(version) + ", this image reads version " + std::to_string(kStateVersion);
    return std::nullopt;
  }
  const uint64_t meta_length = get_le(bytes, sizeof kMagic + 4, 8);
  const uint64_t blob_length = get_le(bytes, sizeof kMagic + 12, 8);
  const uint64_t rest = bytes.size() - kHeaderBytes;
  if (meta_length > rest || blob_length != rest - meta_length) {
    *error = "the state is " + std::to_string(rest) + " bytes after its header, the header says " +
             std::to_string(meta_length) + " + " + std::to_string(blob_length);
    return std::nullopt;
  }
  const std::string_view body = bytes.substr(kHeaderBytes, meta_length);
  const std::string_view blob = bytes.substr(kHeaderBytes + meta_length);
  RingLender lender;
  if (keeper) {
    lender.keeper = std::move(keeper);
    lender.writable = writable + kHeaderBytes + meta_length;
  }
  if (sha256(body) != bytes.substr(sizeof kMagic + 20, kDigestBytes)) {
    *error = "the metadata does not match its SHA-256";
    return std::nullopt;
  }
  const json parsed = parse_cbor(body);
  if (parsed.is_discarded()) {
    *error = "the body is not CBOR";
    return std::nullopt;
  }
  HandoffState state;
  Fields top(parsed, "state", error);
  state.daemon_version = top.text("daemon");
  state.signalled_ns = top.optional_unsigned("signalled", UINT64_MAX, 0);
  const json* fds = top.array("fds");
  const json* terminals = top.array("terminals");
  if (!top.ok()) return std::nullopt;
  std::set<int> numbers;
  for (size_t i = 0; i < fds->size(); ++i) {
    Fields f((*fds)[i], "fds." + std::to_string(i), error);
    HandedFd handed;
    const std::string kind = f.text("kind");
    handed.fd = static_cast<int>(f.unsigned_number("fd", INT32_MAX));
    handed.pid = f.signed_number("pid");
    if (!f.ok()) return std::nullopt;
    if (kind == "pty") handed.kind = FdKind::pty_master;
    else if (kind == "pidfd") handed.kind = FdKind::pidfd;
    else if (kind == "listener") handed.kind = FdKind::listener;
    else if (kind == "stdio") handed.kind = FdKind::stdio_socket;
    else f.fail("kind", "is not pty, pidfd, listener or stdio");
    if (handed.fd <= 2) f.fail("fd", "is a standard stream");
    if (!numbers.insert(handed.fd).second) f.fail("fd", "is handed twice");
    if (!f.ok()) return std::nullopt;
    state.fds.push_back(handed);
  }
  std::set<std::string> ids;
  for (size_t i = 0; i < terminals->size(); ++i) {
    TerminalState t;
    if (!decode_terminal((*terminals)[i], i, state.fds, blob, lender, &t, error)) return std::nullopt;
    if (!ids.insert(t.id).second) {
      *error = "terminals." + std::to_string(i) + ".id is not unique";
      return std::nullopt;
    }
    state.terminals.push_back(std::move(t));
  }
  return state;
}

}  // namespace

UniqueFd write_sealed(std::string_view bytes, std::string* error) {
  UniqueFd fd(::memfd_create("ptyhub-handoff", MFD_ALLOW_SEALING));
  if (!fd) {
    *error = std::string("memfd_create: ") + std::strerror(errno);
    return {};
  }
  size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::write(fd.get(), bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *error = std::string("writing the state: ") + std::strerror(errno);
      return {};
    }
    written += static_cast<size_t>(n);
  }
  if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
    *error = std::string("sealing the state: ") + std::strerror(errno);
    return {};
  }
  return fd;
}

std::optional<std::string> read_sealed(int fd, size_t max_bytes, std::string* error) {
  constexpr int kSeals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL;
  const int seals = ::fcntl(fd, F_GET_SEALS);
  if (seals < 0 || (seals & kSeals) != kSeals) {
    *error = "the state's fd is not a sealed memfd";
    return std::nullopt;
  }
  struct stat info {};
  if (::fstat(fd, &info) != 0 || info.st_size < 0 || static_cast<uint64_t>(info.st_size) > max_bytes) {
    *error = "the state's size is unreadable or over the limit";
    return std::nullopt;
  }
  std::string out(static_cast<size_t>(info.st_size), '\0');
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *error = std::string("reading the state: ") + (n == 0 ? "short read" : std::strerror(errno));
      return std::nullopt;
    }
    done += static_cast<size_t>(n);
  }
  return out;
}

size_t close_unclaimed_fds() {
  std::vector<int> candidates;
  if (DIR* dir = ::opendir("/proc/self/fd")) {
    while (const dirent* entry = ::readdir(dir)) {
      char* end = nullptr;
      const long fd = std::strtol(entry->d_name, &end, 10);
      if (end != entry->d_name && *end == '\0' && fd > 2 && fd != ::dirfd(dir)) candidates.push_back(static_cast<int>(fd));
    }
    ::closedir(dir);
  }
  size_t closed = 0;
  for (int fd : candidates) {
    const int flags = ::fcntl(fd, F_GETFD);
    if (flags < 0 || (flags & FD_CLOEXEC) != 0) continue;
    bool handed = false;
    for (FdKind kind : {FdKind::pty_master, FdKind::listener, FdKind::stdio_socket}) {
      if (check_handed_fd({kind, fd, 0}).empty()) handed = true;
    }
    // A pidfd of any process: check_handed_fd() names the pid it found when it is not the one asked for.
    if (!handed && check_handed_fd({FdKind::pidfd, fd, -1}).find("refers to process") != std::string::npos) handed = true;
    // The state itself, when an image in between (a wrapper) passed another fd on.
    char target[128] = {};
    const std::string link = "/proc/self/fd/" + std::to_string(fd);
    if (!handed && ::readlink(link.c_str(), target, sizeof target - 1) > 0 &&
        std::string_view(target).starts_with("/memfd:ptyhub-handoff")) {
      handed = true;
    }
    if (handed && ::close(fd) == 0) ++closed;
  }
  return closed;
}

std::string check_handed_fd(const HandedFd& handed) {
  const std::string which = std::string(kind_name(handed.kind)) + " fd " + std::to_string(handed.fd);
  struct stat info {};
  if (::fstat(handed.fd, &info) != 0) return which + " is not open";
  switch (handed.kind) {
    case FdKind::pty_master: {
      unsigned int number = 0;
      if (!S_ISCHR(info.st_mode) || ::ioctl(handed.fd, TIOCGPTN, &number) != 0) return which + " is not a PTY master";
      return "";
    }
    case FdKind::pidfd: {
      // The kernel names the process of a pidfd in its fdinfo ("Pid:\t<pid>").
      std::ifstream fdinfo("/proc/self/fdinfo/" + std::to_string(handed.fd));
      std::string line;
      while (std::getline(fdinfo, line)) {
        if (line.rfind("Pid:", 0) == 0) {
          const long long pid = std::atoll(line.c_str() + 4);
          if (pid == handed.pid) return "";
          return which + " refers to process " + std::to_string(pid) + ", not " + std::to_string(handed.pid);
        }
      }
      return which + " is not a pidfd";
    }
    case FdKind::stdio_socket: {
      int type = 0, listening = 1;
      socklen_t size = sizeof type;
      if (!S_ISSOCK(info.st_mode) || ::getsockopt(handed.fd, SOL_SOCKET, SO_TYPE, &type, &size) != 0 || type != SOCK_STREAM) {
        return which + " is not a stream socket";
      }
      size = sizeof listening;
      if (::getsockopt(handed.fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &size) != 0 || listening != 0) {
        return which + " is a listening socket";
      }
      return "";
    }
    case FdKind::listener: {
      int listening = 0;
      socklen_t size = sizeof listening;
      if (!S_ISSOCK(info.st_mode) || ::getsockopt(handed.fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &size) != 0 ||
          listening == 0) {
        return which + " is not a listening socket";
      }
      return "";
    }
  }
  return which + " has an unknown kind";
}

}  // namespace ptyhub::upgrade
