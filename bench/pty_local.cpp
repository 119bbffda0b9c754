// pty_local: the reference figures of the benchmark — the same workloads ptyhubd serves, read straight
// from a PTY master by this process, with no daemon and no network in between.
//
//   pty_local throughput FILE          `cat FILE` on a new PTY, read to EOF; prints bytes and seconds
//   pty_local throughput-forward FILE  the same, each chunk read then sent over loopback TCP to a process
//                                      that discards it: what forwarding alone costs, without a protocol
//   pty_local echo N                   `cat` on a PTY; N keystrokes, one at a time, each timed until
//                                      the terminal's echo of it is read back
//   pty_local echo-many T SECONDS      T PTYs running `cat`, each typing one key per second (random
//                                      phase) for SECONDS; every echo is timed
//   pty_local ws-echo PORT TOKEN N [NODE]
//                                      the `echo` loop through ptyhubd on 127.0.0.1:PORT: a minimal
//                                      blocking WebSocket client (no library, no event loop) creates a
//                                      `cat` terminal and times N keystrokes until their shell.output,
//                                      so the echo's added time is the daemon's, not a client runtime's.
//                                      With NODE (cluster mode) the terminal runs on that node: every
//                                      keystroke and its echo cross Redis
//   pty_local redis-hops PORT N        the floor of that path: N messages, each timed through two Redis
//                                      stream hops (XADD, a second process blocked in XREAD, its XADD
//                                      back, this one's XREAD) on the Redis at 127.0.0.1:PORT
//
// Each mode prints one JSON object on stdout. PTYs are set up like ptyhubd sets them up (forkpty here, with
// the kernel's default termios, 80x24), so output processing (\n -> \r\n) and echo are the same.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

double now_seconds() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double cpu_seconds(const rusage& usage) {
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6;
}

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "pty_local: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

// Starts argv on a new PTY; returns the child's pid and the master in *master.
pid_t spawn(const std::vector<const char*>& argv, int* master) {
  winsize size{};
  size.ws_col = 80;
  size.ws_row = 24;
  const pid_t pid = forkpty(master, nullptr, nullptr, &size);
  if (pid < 0) die("forkpty");
  if (pid == 0) {
    std::vector<char*> args;
    for (const char* a : argv) args.push_back(const_cast<char*>(a));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  return pid;
}

// Reads exactly `count` bytes (blocking, 5 s at most); false on EOF, error or timeout.
bool read_exactly(int fd, size_t count) {
  char buffer[4096];
  while (count > 0) {
    pollfd p{fd, POLLIN, 0};
    const int ready = poll(&p, 1, 5000);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return false;
    const ssize_t n = read(fd, buffer, std::min(count, sizeof buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    count -= static_cast<size_t>(n);
  }
  return true;
}

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t rank = static_cast<size_t>(p * static_cast<double>(values.size()));  // nearest rank, 0-based
  if (rank >= values.size()) rank = values.size() - 1;
  return values[rank];
}

void print_latencies(const char* mode, const std::vector<double>& ms, int terminals) {
  std::printf("{\"mode\":\"%s\",\"terminals\":%d,\"samples\":%zu,\"p50_ms\":%.4f,\"p99_ms\":%.4f,\"max_ms\":%.4f}\n",
              mode, terminals, ms.size(), percentile(ms, 0.50), percentile(ms, 0.99), percentile(ms, 1.0));
}

// `cat FILE` on a new PTY, read to EOF; with `forward` >= 0 each chunk is also sent there as it is.
struct CatRead {
  uint64_t bytes = 0;
  double seconds = 0;
  double reader_cpu_s = 0;  // this process
  double cat_cpu_s = 0;
};
CatRead read_cat(const char* file, int forward) {
  int master = -1;
  const double start = now_seconds();
  const pid_t pid = spawn({"/bin/cat", file}, &master);
  static char buffer[256 * 1024];
  CatRead result;
  while (true) {
    const ssize_t n = read(master, buffer, sizeof buffer);
    if (n > 0) {
      result.bytes += static_cast<uint64_t>(n);
      for (ssize_t sent = 0; forward >= 0 && sent < n;) {
        const ssize_t w = send(forward, buffer + sent, static_cast<size_t>(n - sent), MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) die("send");
        sent += w;
      }
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;  // EIO once the child closed the slave and everything was read
  }
  result.seconds = now_seconds() - start;
  int status = 0;
  rusage child{};
  wait4(pid, &status, 0, &child);
  rusage self{};
  getrusage(RUSAGE_SELF, &self);
  close(master);
  result.reader_cpu_s = cpu_seconds(self);
  result.cat_cpu_s = cpu_seconds(child);
  return result;
}

int throughput(const char* file) {
  const CatRead r = read_cat(file, -1);
  std::printf("{\"mode\":\"throughput\",\"bytes\":%llu,\"seconds\":%.6f,\"reader_cpu_s\":%.4f,\"cat_cpu_s\":%.4f}\n",
              static_cast<unsigned long long>(r.bytes), r.seconds, r.reader_cpu_s, r.cat_cpu_s);
  return 0;
}

// The same reads, each chunk then sent as it is over a loopback TCP connection to a process that discards
// it: the floor of any server that forwards a PTY's output to a client over TCP (no framing, no encoding).
int throughput_forward(const char* file) {
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (listener < 0 || bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      listen(listener, 1) != 0 || getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    die("listen");
  }
  const pid_t sink = fork();
  if (sink == 0) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) _exit(1);
    static char discard[256 * 1024];
    while (read(fd, discard, sizeof discard) > 0) {
    }
    _exit(0);
  }
  const int client = accept(listener, nullptr, nullptr);
  if (client < 0) die("accept");
  const int one = 1;
  setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  close(listener);
  const CatRead r = read_cat(file, client);
  shutdown(client, SHUT_WR);
  rusage sink_usage{};
  wait4(sink, nullptr, 0, &sink_usage);
  close(client);
  std::printf("{\"mode\":\"throughput-forward\",\"bytes\":%llu,\"seconds\":%.6f,\"reader_cpu_s\":%.4f,"
              "\"cat_cpu_s\":%.4f,\"sink_cpu_s\":%.4f}\n",
              static_cast<unsigned long long>(r.bytes), r.seconds, r.reader_cpu_s, r.cat_cpu_s, cpu_seconds(sink_usage));
  return 0;
}

// Keys go one at a time into `cat` in canonical mode: the line discipline echoes each at once. Every
// 64 keys a CR ends the line (echo "\r\n", then cat writes the line back) so the line buffer never fills.
constexpr int kKeysPerLine = 64;
constexpr int kWarmup = 20;

int echo(int samples) {
  int master = -1;
  const pid_t pid = spawn({"/bin/cat"}, &master);
  std::vector<double> ms;
  int on_line = 0;
  for (int i = 0; i < samples + kWarmup; ++i) {
    const char key = static_cast<char>('a' + i % 26);
    const double start = now_seconds();
    if (write(master, &key, 1) != 1) die("write");
    if (!read_exactly(master, 1)) die("echo did not arrive");
    const double elapsed = now_seconds() - start;
    if (i >= kWarmup) ms.push_back(elapsed * 1000.0);
    if (++on_line == kKeysPerLine) {
      if (write(master, "\r", 1) != 1) die("write");
      if (!read_exactly(master, 2 + kKeysPerLine + 2)) die("line did not come back");
      on_line = 0;
    }
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  close(master);
  print_latencies("echo", ms, 1);
  return 0;
}

int echo_many(int terminals, double seconds) {
  struct Term {
    int master = -1;
    pid_t pid = 0;
    double next_key = 0;  // when the next key is due
    double sent_at = 0;   // when the outstanding key was sent; 0 = none outstanding
  };
  std::vector<Term> terms(static_cast<size_t>(terminals));
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  for (size_t i = 0; i < terms.size(); ++i) {
    terms[i].pid = spawn({"/bin/cat"}, &terms[i].master);
    fcntl(terms[i].master, F_SETFL, fcntl(terms[i].master, F_GETFL) | O_NONBLOCK);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, terms[i].master, &ev) != 0) die("epoll_ctl");
  }
  std::mt19937_64 rng(12345);
  std::uniform_real_distribution<double> phase(0.0, 1.0);
  const double start = now_seconds() + 0.5;  // let every cat start
  for (Term& t : terms) t.next_key = start + phase(rng);
  const double end = start + seconds;
  std::vector<double> ms;
  std::vector<epoll_event> events(static_cast<size_t>(terminals));
  char buffer[4096];
  while (true) {
    double now = now_seconds();
    double soonest = 1e300;
    bool outstanding = false;
    for (Term& t : terms) {
      if (t.sent_at == 0 && t.next_key <= now && t.next_key < end) {
        const char key = 'k';
        t.sent_at = now_seconds();
        if (write(t.master, &key, 1) != 1) die("write");
        t.next_key += 1.0;
      }
      if (t.sent_at != 0) outstanding = true;
      if (t.next_key < end) soonest = std::min(soonest, t.next_key);
    }
    if (!outstanding && soonest == 1e300) break;
    now = now_seconds();
    int timeout_ms = soonest == 1e300 ? 1000 : static_cast<int>(std::max(0.0, (soonest - now) * 1000.0));
    if (now > end + 5.0) break;
    const int n = epoll_wait(ep, events.data(), terminals, std::min(timeout_ms, 1000));
    const double arrived = now_seconds();
    for (int k = 0; k < n; ++k) {
      Term& t = terms[events[static_cast<size_t>(k)].data.u64];
      while (read(t.master, buffer, sizeof buffer) > 0) {
      }
      if (t.sent_at != 0) {
        ms.push_back((arrived - t.sent_at) * 1000.0);
        t.sent_at = 0;
      }
    }
  }
  for (Term& t : terms) {
    kill(t.pid, SIGKILL);
    waitpid(t.pid, nullptr, 0);
    close(t.master);
  }
  print_latencies("echo-many", ms, terminals);
  return 0;
}

}  // namespace

// ---- ws-echo: a minimal WebSocket client --------------------------------------------------------------

// A blocking connection: text frames out (masked, as a client must), whole messages in (unmasked;
// fragments joined, pings answered).
class WsClient {
 public:
  WsClient(int port, const std::string& token) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) die("socket");
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) die("connect");
    const int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const std::string request = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                                "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                "Sec-WebSocket-Key: cHR5aHViLWJlbmNoLWtleQ==\r\nSec-WebSocket-Version: 13\r\n"
                                "Sec-WebSocket-Protocol: ptyhub.v1\r\nAuthorization: Bearer " + token + "\r\n\r\n";
    write_all(request.data(), request.size());
    while (in_.find("\r\n\r\n") == std::string::npos) fill();
    const size_t end = in_.find("\r\n\r\n") + 4;
    if (in_.compare(0, 12, "HTTP/1.1 101") != 0) {
      std::fprintf(stderr, "pty_local: upgrade refused: %s\n", in_.substr(0, in_.find('\r')).c_str());
      std::exit(1);
    }
    in_.erase(0, end);
  }
  ~WsClient() { close(fd_); }

  void send_text(const std::string& text) {
    std::string frame;
    frame.push_back(static_cast<char>(0x81));
    if (text.size() < 126) {
      frame.push_back(static_cast<char>(0x80 | text.size()));
    } else {
      frame.push_back(static_cast<char>(0x80 | 126));
      frame.push_back(static_cast<char>((text.size() >> 8) & 0xff));
      frame.push_back(static_cast<char>(text.size() & 0xff));
    }
    const unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
    frame.append(reinterpret_cast<const char*>(mask), 4);
    for (size_t i = 0; i < text.size(); ++i) frame.push_back(static_cast<char>(text[i] ^ mask[i % 4]));
    write_all(frame.data(), frame.size());
  }

  // The next whole text message.
  std::string receive() {
    std::string message;
    while (true) {
      while (in_.size() < 2) fill();
      const auto byte = [&](size_t i) { return static_cast<unsigned char>(in_[i]); };
      const bool fin = (byte(0) & 0x80) != 0;
      const int opcode = byte(0) & 0x0f;
      uint64_t length = byte(1) & 0x7f;
      size_t header = 2;
      if (length == 126) header = 4;
      if (length == 127) header = 10;
      while (in_.size() < header) fill();
      if (length == 126) length = (uint64_t{byte(2)} << 8) | byte(3);
      if (length == 127) {
        length = 0;
        for (size_t i = 2; i < 10; ++i) length = (length << 8) | byte(i);
      }
      while (in_.size() < header + length) fill();
      std::string payload = in_.substr(header, length);
      in_.erase(0, header + length);
      if (opcode == 0x9) {  // ping: pong with the same payload
        std::string pong;
        pong.push_back(static_cast<char>(0x8a));
        pong.push_back(static_cast<char>(0x80 | payload.size()));
        pong.append("\0\0\0\0", 4);
        pong += payload;
        write_all(pong.data(), pong.size());
        continue;
      }
      if (opcode == 0x8) {
        std::fprintf(stderr, "pty_local: the daemon closed the connection\n");
        std::exit(1);
      }
      message += payload;
      if (fin) return message;
    }
  }

 private:
  void write_all(const char* data, size_t size) {
    while (size > 0) {
      const ssize_t n = write(fd_, data, size);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) die("write");
      data += n;
      size -= static_cast<size_t>(n);
    }
  }
  void fill() {
    char buffer[65536];
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 10000) <= 0) die("poll (no answer from the daemon within 10 s)");
    const ssize_t n = read(fd_, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) return;
    if (n <= 0) die("read");
    in_.append(buffer, static_cast<size_t>(n));
  }

  int fd_ = -1;
  std::string in_;
};

// The number after `"key":` in a message (0 when absent).
uint64_t number_field(const std::string& message, const char* key) {
  const std::string pattern = std::string("\"") + key + "\":";
  const size_t at = message.find(pattern);
  return at == std::string::npos ? 0 : std::strtoull(message.c_str() + at + pattern.size(), nullptr, 10);
}

int ws_echo(int port, const std::string& token, int keys, const std::string& node) {
  WsClient client(port, token);
  while (client.receive().find("\"auth.ok\"") == std::string::npos) {
  }
  const std::string on_node = node.empty() ? "" : ",\"node\":\"" + node + "\"";
  client.send_text(R"({"type":"shell.create","id":1,"data":{"command":["/bin/cat"])" + on_node + "}}");
  std::string id;
  while (id.empty()) {
    const std::string message = client.receive();
    const size_t terminal = message.find("\"terminal\":{");
    if (message.find("\"id\":1") == std::string::npos || terminal == std::string::npos) continue;
    const size_t key = message.find("\"id\":\"", terminal);
    if (key == std::string::npos) continue;
    id = message.substr(key + 6, message.find('"', key + 6) - key - 6);
  }
  const auto input = [&](const char* data) {
    client.send_text(std::string(R"({"type":"shell.input","data":{"terminalId":")") + id + R"(","data":")" + data + "\"}}");
  };
  uint64_t seen = 0;
  const auto wait_for = [&](uint64_t offset) {
    while (seen < offset) {
      const std::string message = client.receive();
      if (message.find("\"type\":\"shell.output\"") != std::string::npos) seen = number_field(message, "next");
    }
  };
  std::vector<double> ms;
  uint64_t expect = 0;
  int on_line = 0;
  for (int i = 0; i < keys + 20; ++i) {
    const char key[2] = {static_cast<char>('a' + i % 26), 0};
    expect += 1;
    const double start = now_seconds();
    input(key);
    wait_for(expect);
    if (i >= 20) ms.push_back((now_seconds() - start) * 1000);
    if (++on_line == 64) {  // end the line: echo "\r\n", then cat writes the 64 keys and "\r\n"
      expect += 2 + 64 + 2;
      input("\\r");
      wait_for(expect);
      on_line = 0;
    }
  }
  print_latencies("ws-echo", ms, 1);
  return 0;
}

// ---- redis-hops: two stream hops through Redis and back, as a keystroke typed on another node takes ----

// The id of the last entry of an XREAD reply on one stream ("" when none), and whether it carried `stop`.
std::string last_entry_id(const redisReply* reply, bool* stop) {
  if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY || reply->elements < 1) return {};
  const redisReply* stream = reply->element[0];
  if (stream->type != REDIS_REPLY_ARRAY || stream->elements < 2) return {};
  const redisReply* entries = stream->element[1];
  if (entries->type != REDIS_REPLY_ARRAY || entries->elements == 0) return {};
  const redisReply* entry = entries->element[entries->elements - 1];
  const redisReply* fields = entry->element[1];
  if (stop != nullptr && fields->elements >= 1 && std::string(fields->element[0]->str) == "stop") *stop = true;
  return entry->element[0]->str;
}

// Blocks until `key` has an entry after `*cursor`; moves the cursor.
bool read_after(redisContext* c, const char* key, std::string* cursor, bool* stop) {
  for (;;) {
    auto* reply = static_cast<redisReply*>(redisCommand(c, "XREAD BLOCK 0 STREAMS %s %s", key, cursor->c_str()));
    if (reply == nullptr) return false;
    const std::string id = last_entry_id(reply, stop);
    freeReplyObject(reply);
    if (!id.empty()) {
      *cursor = id;
      return true;
    }
  }
}

int redis_hops(int port, int samples) {
  redisContext* c = redisConnect("127.0.0.1", port);
  if (c == nullptr || c->err) return 1;
  freeReplyObject(redisCommand(c, "DEL bench:hop:there bench:hop:back"));
  const pid_t pid = fork();
  if (pid == 0) {  // the other side: every entry read on `there` is answered on `back`
    redisContext* other = redisConnect("127.0.0.1", port);
    if (other == nullptr || other->err) _exit(1);
    std::string cursor = "0-0";
    bool stop = false;
    while (!stop && read_after(other, "bench:hop:there", &cursor, &stop)) {
      freeReplyObject(redisCommand(other, "XADD bench:hop:back * k x"));
    }
    redisFree(other);
    _exit(0);
  }
  std::vector<double> ms;
  std::string cursor = "0-0";
  for (int i = 0; i < samples + 20; ++i) {
    const double start = now_seconds();
    freeReplyObject(redisCommand(c, "XADD bench:hop:there * k x"));
    if (!read_after(c, "bench:hop:back", &cursor, nullptr)) return 1;
    if (i >= 20) ms.push_back((now_seconds() - start) * 1000);
  }
  freeReplyObject(redisCommand(c, "XADD bench:hop:there * stop 1"));
  waitpid(pid, nullptr, 0);
  freeReplyObject(redisCommand(c, "DEL bench:hop:there bench:hop:back"));
  redisFree(c);
  print_latencies("redis-hops", ms, 1);
  return 0;
}

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "throughput" && argc == 3) return throughput(argv[2]);
  if (mode == "throughput-forward" && argc == 3) return throughput_forward(argv[2]);
  if (mode == "echo" && argc == 3) return echo(std::atoi(argv[2]));
  if (mode == "echo-many" && argc == 4) return echo_many(std::atoi(argv[2]), std::atof(argv[3]));
  if (mode == "ws-echo" && (argc == 5 || argc == 6)) {
    return ws_echo(std::atoi(argv[2]), argv[3], std::atoi(argv[4]), argc == 6 ? argv[5] : "");
  }
  if (mode == "redis-hops" && argc == 4) return redis_hops(std::atoi(argv[2]), std::atoi(argv[3]));
  std::fprintf(stderr,
               "usage: pty_local throughput FILE | echo N | echo-many TERMINALS SECONDS | ws-echo PORT TOKEN N [NODE]"
               " | redis-hops PORT N | throughput-forward FILE\n");
  return 2;
}
