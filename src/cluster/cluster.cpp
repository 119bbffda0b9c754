// Cluster: publishing local terminals, mirroring remote ones, routing requests, leases.
#include "src/cluster/cluster.hpp"


#include <algorithm>
#include <csignal>
#include <variant>

#include <nlohmann/json.hpp>

#include "core/log.hpp"
#include "core/random.hpp"
#include "core/time_format.hpp"
#include "src/cluster/entries.hpp"
#include "src/protocol/frame.hpp"

namespace ptyhub::cluster {
namespace {

using nlohmann::json;

constexpr std::string_view kPrefix = "ptyhub:";
constexpr uint64_t kReadBlockMs = 1000;
// Entries per stream in one XREAD: a bound on one reply (an entry holds at most one loop turn's PTY reads,
// 256 KiB), so that a node catching up never takes in tens of megabytes at once.
constexpr const char* kReadCount = "128";
constexpr const char* kEventsMaxLen = "10000";
constexpr const char* kInputMaxLen = "10000";
constexpr uint64_t kSweepMs = 1000;
constexpr uint64_t kRemoteCreateTimeoutMs = 10000;
// How much a mirror with writers reads between two progress reports to its owner (flow control).
constexpr uint64_t kProgressStepBytes = 128 * 1024;
// Output appends in flight beyond this are dropped (they become a gap for mirrors), so a slow Redis
// never grows this process's memory without bound.
constexpr uint64_t kMaxAppendBytesInFlight = 32 * 1024 * 1024;

// Appends one entry to a terminal's stream, unless this node's lease is no longer `boot` (fenced).
// KEYS: lease, stream, terminal hash. ARGV: boot, entry id, MINID threshold, top, field, value, ...
constexpr const char* kAppendScript = R"lua(
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return redis.error_reply('FENCED') end
local args = {'XADD', KEYS[2], 'MINID', '~', ARGV[3], ARGV[2]}
for i = 5, #ARGV do args[#args + 1] = ARGV[i] end
local id = redis.call(unpack(args))
redis.call('HSET', KEYS[3], 'top', ARGV[4])
return id
)lua";

// Ends a running terminal of a lost incarnation: state lost, an exit entry after its last byte, expiry.
// KEYS: terminal hash, stream. ARGV: the incarnation's boot, reason, ttl ms.
constexpr const char* kMarkLostScript = R"lua(
if redis.call('HGET', KEYS[1], 'state') ~= 'running' then return 0 end
if redis.call('HGET', KEYS[1], 'boot') ~= ARGV[1] then return 0 end
local top = redis.call('HGET', KEYS[1], 'top') or '0'
redis.call('HSET', KEYS[1], 'state', 'lost', 'reason', ARGV[2])
redis.call('XADD', KEYS[2], top .. '-*', 't', 'x', 'why', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
)lua";

// Renews this node's lease. KEYS: lease, node hash. ARGV: boot, lease ms.
// OK: renewed. RESTORED: the key was gone without anyone reaping this node (Redis lost its data): set
// again. REAPED / TAKEN: another node declared this incarnation lost, or another holds the node id.
constexpr const char* kRenewScript = R"lua(
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 'OK' end
if current then return 'TAKEN' end
if redis.call('HGET', KEYS[2], 'reaped') == ARGV[1] then return 'REAPED' end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 'RESTORED'
)lua";

// Joins as incarnation ARGV[1]: refused while another incarnation's lease is live (TAKEN) and when
// another node reaped this very incarnation (REAPED: it must fence itself first). KEYS: lease, node hash.
// ARGV: boot, lease ms, advertise, joined (ms).
constexpr const char* kJoinScript = R"lua(
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] then return 'TAKEN' end
if redis.call('HGET', KEYS[2], 'reaped') == ARGV[1] then return 'REAPED' end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('HSET', KEYS[2], 'boot', ARGV[1], 'advertise', ARGV[3], 'joined', ARGV[4])
return 'OK'
)lua";

// Declares an incarnation lost, once: the first node to get here reaps it. Only the incarnation the
// node's hash names: after Redis lost its data (no hash) nobody is reaped, the nodes register again.
// KEYS: node hash, lease. ARGV: boot. 1 when this caller should reap.
constexpr const char* kClaimReapScript = R"lua(
if redis.call('HGET', KEYS[1], 'boot') ~= ARGV[1] then return 0 end
if redis.call('GET', KEYS[2]) == ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], 'reaped') == ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'reaped', ARGV[1])
return 1
)lua";

std::string random_boot() {
  unsigned char bytes[8];
  random_bytes(bytes, sizeof bytes);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string text;
  for (unsigned char b : bytes) {
    text.push_back(kHex[b >> 4]);
    text.push_back(kHex[b & 15]);
  }
  return text;
}

const char* access_text(auth::Access access) {
  return access == auth::Access::write ? "write" : access == auth::Access::read ? "read" : "none";
}

auth::Access access_of(ShareAccess access) {
  return access == ShareAccess::write ? auth::Access::write
         : access == ShareAccess::read ? auth::Access::read
                                       : auth::Access::none;
}

// How often a malformed entry of one kind is logged at most (each is counted).
constexpr uint64_t kMalformedLogMs = 60000;
constexpr uint64_t kReadRetryMs = 500;  // after an XREAD that failed with an error or garbage

std::string shares_json(const std::map<std::string, auth::Access, std::less<>>& shares) {
  json out = json::object();
  for (const auto& [user, access] : shares) out[user] = access_text(access);
  return out.dump();
}

}  // namespace

Cluster::Cluster(uv_loop_t* loop, ClusterSettings settings, hub::Hub& hub, hub::Metrics& metrics)
    : loop_(loop),
      settings_(std::move(settings)),
      hub_(hub),
      metrics_(metrics),
      boot_(random_boot()),
      commands_(loop, settings_.redis, "commands", [this](bool up) { on_commands_state(up); }),
      reader_(loop, settings_.redis, "reader", [this](bool up) { on_reader_state(up); }) {
  hub_.set_node(settings_.node_id);
  hub_.set_remote_creator(this);
  metrics_.cluster = true;
  created_observer_ = hub_.add_created_observer([this](hub::Terminal& t) { on_local_created(t); });
  removed_observer_ = hub_.add_removed_observer([this](const std::string& id) { on_local_removed(id); });
  if (flusher_.adopt_init(uv_check_init(loop_, flusher_.get()), this)) {
    // started when output is pending
  }
  lease_timer_.adopt_init(uv_timer_init(loop_, lease_timer_.get()), this);
  rejoin_timer_.adopt_init(uv_timer_init(loop_, rejoin_timer_.get()), this);
  sweep_timer_.adopt_init(uv_timer_init(loop_, sweep_timer_.get()), this);
  read_retry_timer_.adopt_init(uv_timer_init(loop_, read_retry_timer_.get()), this);
  wake_retry_timer_.adopt_init(uv_timer_init(loop_, wake_retry_timer_.get()), this);
}

Cluster::~Cluster() {
  hub_.set_remote_creator(nullptr);
  hub_.remove_created_observer(created_observer_);
  hub_.remove_removed_observer(removed_observer_);
  for (auto& [id, published] : published_) {
    if (hub::Terminal* terminal = hub_.find_any(id)) {
      terminal->remove_output_tap(published.tap);
      terminal->remove_change_observer(published.changes);
      terminal->remove_event_observer(published.events);
    }
  }
}

// ---- keys -----------------------------------------------------------------------------------------
// `{id}` keeps a terminal's keys in one hash slot, ready for a Redis Cluster.

std::string Cluster::term_key(const std::string& id) const { return std::string(kPrefix) + "term:{" + id + "}"; }
std::string Cluster::stream_key(const std::string& id) const { return term_key(id) + ":out"; }
std::string Cluster::node_key(const std::string& node) const { return std::string(kPrefix) + "node:{" + node + "}"; }
std::string Cluster::lease_key(const std::string& node) const { return node_key(node) + ":lease"; }
std::string Cluster::input_key(const std::string& node) const { return node_key(node) + ":in"; }
std::string Cluster::node_terms_key(const std::string& node) const { return node_key(node) + ":terms"; }
std::string Cluster::events_key() const { return std::string(kPrefix) + "events"; }
std::string Cluster::terms_key() const { return std::string(kPrefix) + "terms"; }

// ---- joining ----------------------------------------------------------------------------------------

void Cluster::start() {
  log::info("cluster: node " + log::quoted(settings_.node_id) + " joining through redis " + settings_.redis.host + ":" +
            std::to_string(settings_.redis.port));
  commands_.start();
  reader_.start();
  uv_timer_start(
      lease_timer_.get(), [](uv_timer_t* t) { static_cast<Cluster*>(t->data)->renew_lease(); }, settings_.renew_ms,
      settings_.renew_ms);
  uv_timer_start(
      sweep_timer_.get(), [](uv_timer_t* t) { static_cast<Cluster*>(t->data)->sweep(); }, kSweepMs, kSweepMs);
}

void Cluster::stop() {
  flush();
  if (lease_timer_.initialised()) uv_timer_stop(lease_timer_.get());
  if (rejoin_timer_.initialised()) uv_timer_stop(rejoin_timer_.get());
  if (sweep_timer_.initialised()) uv_timer_stop(sweep_timer_.get());
  if (read_retry_timer_.initialised()) uv_timer_stop(read_retry_timer_.get());
  if (wake_retry_timer_.initialised()) uv_timer_stop(wake_retry_timer_.get());
  commands_.stop(true);
  reader_.stop(false);  // its XREAD blocks for up to a second: no need to wait for it
}

void Cluster::on_commands_state(bool up) {
  metrics_.redis_up = up;
  metrics_.redis_reconnects_total = commands_.reconnects();
  if (up) {
    join();
  } else {
    joined_ = false;
    joining_ = false;
    // Other nodes get nothing while Redis is unreachable: they hold no local terminal back meanwhile.
    for (const auto& [id, published] : published_) {
      if (hub::Terminal* terminal = hub_.find_any(id)) terminal->clear_remote_holds();
    }
  }
}

void Cluster::join() {
  if (joining_) return;
  joining_ = true;
  const std::string node = settings_.node_id;
  commands_.command({"EVAL", kJoinScript, "2", lease_key(node), node_key(node), boot_,
                     std::to_string(settings_.lease_ms), settings_.advertise, std::to_string(unix_millis_now())},
                    [this](const RedisValue* reply) {
                      joining_ = false;
                      if (reply == nullptr) return;  // the link dropped: joined again when it is back
                      if (reply->text == "REAPED") {
                        fence("another node declared this node lost while it could not reach Redis");
                        return;
                      }
                      if (reply->text == "TAKEN") {
                        if (!taken_logged_) {
                          log::error("cluster: another daemon holds node id " + log::quoted(settings_.node_id) +
                                     " (its lease is live); waiting for it to go before joining");
                        }
                        taken_logged_ = true;
                        uv_timer_start(
                            rejoin_timer_.get(), [](uv_timer_t* t) { static_cast<Cluster*>(t->data)->join(); },
                            settings_.renew_ms, 0);
                        return;
                      }
                      taken_logged_ = false;
                      if (reply->is_error()) {
                        log::warn("cluster: joining failed: " + log::quoted(reply->text));
                        return;
                      }
                      register_node();
                    });
}

void Cluster::register_node() {
  const std::string node = settings_.node_id;
  commands_.command({"SADD", std::string(kPrefix) + "nodes", node}, nullptr);
  // A previous incarnation of this node id left its terminals running in the directory: they are lost.
  commands_.command({"SMEMBERS", node_terms_key(node)}, [this](const RedisValue* members) {
    if (members == nullptr) return;
    for (const RedisValue& member : members->elements) {
      const std::string id = member.text;
      if (published_.count(id) != 0) continue;
      commands_.command({"HGET", term_key(id), "boot"}, [this, id](const RedisValue* boot) {
        if (boot == nullptr || boot->is_nil() || boot->text == boot_) return;
        commands_.command({"EVAL", kMarkLostScript, "2", term_key(id), stream_key(id), boot->text, "node_lost",
                           std::to_string(settings_.exited_ttl_ms)},
                          [this, id](const RedisValue* marked) {
                            if (marked != nullptr && marked->integer == 1) publish_event("changed", id);
                          });
        commands_.command({"SREM", node_terms_key(settings_.node_id), id}, nullptr);
      });
    }
  });
  for (auto& [id, published] : published_) {
    if (hub::Terminal* terminal = hub_.find_any(id)) register_terminal(*terminal);
  }
  last_renewal_ok_ms_ = uv_now(loop_);
  commands_.command({"PING"}, [this](const RedisValue* pong) {
    if (pong == nullptr) return;
    if (!joined_) log::info("cluster: node " + log::quoted(settings_.node_id) + " joined", {{"boot", boot_}});
    joined_ = true;
    for (auto& [id, published] : published_) send_entries(id, published);  // what waited for the link
  });
}

void Cluster::register_terminal(hub::Terminal& terminal) {
  const hub::TerminalSpec& spec = terminal.spec();
  std::vector<std::string> fields = {"HSET", term_key(spec.id), "id", spec.id, "node", settings_.node_id, "boot", boot_,
                                     "owner", spec.owner, "kind", spec.kind, "name", spec.name,
                                     "command", json(spec.command).dump(), "cwd", spec.cwd,
                                     "cols", std::to_string(spec.cols), "rows", std::to_string(spec.rows),
                                     "createdAt", std::to_string(terminal.created_at_ms()),
                                     "shares", shares_json(terminal.shares()),
                                     "state", terminal.running() ? "running" : "exited"};
  if (!spec.operation.empty()) fields.insert(fields.end(), {"op", spec.operation});
  commands_.command(fields, nullptr);
  commands_.command({"SADD", terms_key(), spec.id}, nullptr);
  commands_.command({"SADD", node_terms_key(settings_.node_id), spec.id}, nullptr);
  publish_event("created", spec.id);
}

void Cluster::publish_event(std::string_view event, const std::string& terminal_id) {
  commands_.command({"XADD", events_key(), "MAXLEN", "~", kEventsMaxLen, "*", "e", std::string(event), "t", terminal_id,
                     "n", settings_.node_id},
                    nullptr);
}

// ---- local terminals --------------------------------------------------------------------------------

void Cluster::on_local_created(hub::Terminal& terminal) {
  const std::string id = terminal.id();
  Published& published = published_[id];
  published.tap = terminal.add_output_tap([this, id](std::string_view raw) { on_local_output(id, raw); });
  published.changes =
      terminal.add_change_observer([this, &terminal](hub::TerminalChange change) { on_local_change(terminal, change); });
  // Events on its channel (git progress) go into the stream at their offset, for viewers elsewhere.
  published.events = terminal.add_event_observer([this, id](const protocol::SharedFrame& frame) {
    auto it = published_.find(id);
    if (it != published_.end()) append_control(id, it->second, {"t", "e", "f", std::string(frame->payload())});
  });
  if (joined_) register_terminal(terminal);
}

void Cluster::on_local_output(const std::string& id, std::string_view raw) {
  auto it = published_.find(id);
  if (it == published_.end()) return;
  Published& published = it->second;
  if (published.pending.empty()) published.pending_start = published.offset;
  published.pending.append(raw);
  published.offset += raw.size();
  published.control_seq = 0;
  flush_queue_.insert(id);
  if (flusher_.initialised() && !uv_is_active(flusher_.as_handle())) {
    uv_check_start(flusher_.get(), [](uv_check_t* c) { static_cast<Cluster*>(c->data)->flush(); });
  }
}

void Cluster::flush() {
  if (flusher_.initialised()) uv_check_stop(flusher_.get());
  std::set<std::string> queue;
  queue.swap(flush_queue_);
  for (const std::string& id : queue) {
    auto it = published_.find(id);
    if (it != published_.end()) flush_terminal(id, it->second);
  }
}

void Cluster::flush_terminal(const std::string& id, Published& published) {
  if (!published.pending.empty()) {
    Entry entry;
    const uint64_t start = published.pending_start;
    const uint64_t end = start + published.pending.size();
    entry.id = std::to_string(end) + "-0";
    entry.top = end;
    entry.bytes = published.pending.size();
    entry.fields = {"s", std::to_string(start), "d", std::move(published.pending)};
    published.pending.clear();
    published.unacked_bytes += entry.bytes;
    published.unacked.push_back(std::move(entry));
    // Bounded while Redis is away: beyond what a late joiner could get anyway, the oldest output goes
    // (the stream then has a hole there, which readers get as an exact shell.gap). Control entries stay.
    const uint64_t bound = std::max<uint64_t>(settings_.retention_bytes, 1024 * 1024);
    while (published.unacked_bytes > bound) {
      auto oldest = std::find_if(published.unacked.begin(), published.unacked.end(),
                                 [](const Entry& e) { return e.bytes > 0 && !e.sent; });
      if (oldest == published.unacked.end()) break;
      published.unacked_bytes -= oldest->bytes;
      metrics_.cluster_bytes_dropped_total += oldest->bytes;
      published.unacked.erase(oldest);
    }
  }
  send_entries(id, published);
}

void Cluster::append_control(const std::string& id, Published& published, std::vector<std::string> fields) {
  flush_terminal(id, published);
  Entry entry;
  entry.id = std::to_string(published.offset) + "-" + std::to_string(++published.control_seq);
  entry.top = published.offset;
  entry.fields = std::move(fields);
  published.unacked.push_back(std::move(entry));
  send_entries(id, published);
}

void Cluster::send_entries(const std::string& id, Published& published) {
  if (!joined_) return;  // kept until this node has joined (again)
  for (Entry& entry : published.unacked) {
    if (entry.sent) continue;
    if (metrics_.cluster_append_bytes_in_flight + entry.bytes > kMaxAppendBytesInFlight) {
      waiting_for_room_.insert(id);  // sent once earlier appends are answered
      return;
    }
    const uint64_t retention = settings_.retention_bytes;
    const uint64_t minid = entry.top > retention ? entry.top - retention : 0;
    std::vector<std::string> args = {"EVAL", kAppendScript, "3", lease_key(settings_.node_id), stream_key(id),
                                     term_key(id), boot_, entry.id, std::to_string(minid), std::to_string(entry.top)};
    args.insert(args.end(), entry.fields.begin(), entry.fields.end());
    entry.sent = true;
    metrics_.cluster_append_bytes_in_flight += entry.bytes;
    commands_.command(args, [this, id](const RedisValue* reply) { on_appended(id, reply); });
  }
}

void Cluster::on_appended(const std::string& id, const RedisValue* reply) {
  auto it = published_.find(id);
  if (it == published_.end() || it->second.unacked.empty()) return;
  Published& published = it->second;
  if (reply == nullptr) {
    // The link dropped: every entry sent on it is sent again once joined (again).
    for (Entry& entry : published.unacked) {
      if (!entry.sent) continue;
      entry.sent = false;
      metrics_.cluster_append_bytes_in_flight -= std::min(metrics_.cluster_append_bytes_in_flight, entry.bytes);
    }
    return;
  }
  Entry& entry = published.unacked.front();  // Redis answers in order
  metrics_.cluster_append_bytes_in_flight -= std::min(metrics_.cluster_append_bytes_in_flight, entry.bytes);
  if (reply->is_error()) {
    if (reply->text.find("FENCED") != std::string::npos) {
      fence("Redis refused an append: this node's lease is gone");
      return;
    }
    // "equal or smaller than the target stream top item": it landed before the link dropped.
    if (reply->text.find("equal or smaller") == std::string::npos) {
      log::warn("cluster: an append failed: " + log::quoted(reply->text), {{"terminal", id}});
    }
  } else {
    metrics_.cluster_bytes_mirrored_total += entry.bytes;
  }
  published.unacked_bytes -= entry.bytes;
  published.unacked.pop_front();
  std::set<std::string> waiting;
  waiting.swap(waiting_for_room_);
  for (const std::string& other : waiting) {
    auto found = published_.find(other);
    if (found != published_.end()) send_entries(other, found->second);
  }
}

void Cluster::on_local_change(hub::Terminal& terminal, hub::TerminalChange change) {
  const std::string id = terminal.id();
  auto it = published_.find(id);
  if (it == published_.end()) return;
  switch (change) {
    case hub::TerminalChange::resized:
      append_control(id, it->second, {"t", "r", "c", std::to_string(terminal.cols()), "r", std::to_string(terminal.rows())});
      if (joined_) {
        commands_.command({"HSET", term_key(id), "cols", std::to_string(terminal.cols()), "rows",
                           std::to_string(terminal.rows())},
                          nullptr);
      }
      break;
    case hub::TerminalChange::shared:
      if (joined_) {
        commands_.command({"HSET", term_key(id), "shares", shares_json(terminal.shares())}, nullptr);
        publish_event("changed", id);
      }
      break;
    case hub::TerminalChange::exited: {
      const pty::ExitStatus& status = terminal.exit_status();
      std::vector<std::string> fields = {"t", "x", "dur", std::to_string(terminal.duration_ms())};
      if (status.signal != 0) {
        fields.insert(fields.end(), {"sig", pty::signal_name(status.signal)});
      } else {
        fields.insert(fields.end(), {"code", std::to_string(status.exit_code)});
      }
      if (!terminal.end_reason().empty()) fields.insert(fields.end(), {"why", terminal.end_reason()});
      if (!terminal.exit_trailers().empty()) {
        json trailers = json::array();
        for (const protocol::SharedFrame& frame : terminal.exit_trailers()) trailers.push_back(std::string(frame->payload()));
        fields.insert(fields.end(), {"tr", trailers.dump()});
      }
      append_control(id, it->second, fields);
      if (joined_) {
        commands_.command({"HSET", term_key(id), "state", "exited"}, nullptr);
        commands_.command({"PEXPIRE", term_key(id), std::to_string(settings_.exited_ttl_ms)}, nullptr);
        commands_.command({"PEXPIRE", stream_key(id), std::to_string(settings_.exited_ttl_ms)}, nullptr);
        publish_event("changed", id);
      }
      terminal.remove_output_tap(it->second.tap);
      it->second.tap = 0;
      break;
    }
  }
}

void Cluster::on_local_removed(const std::string& id) {
  auto it = published_.find(id);
  if (it == published_.end()) return;
  published_.erase(it);
  flush_queue_.erase(id);
  if (!joined_) return;
  commands_.command({"DEL", term_key(id), stream_key(id)}, nullptr);
  commands_.command({"SREM", terms_key(), id}, nullptr);
  commands_.command({"SREM", node_terms_key(settings_.node_id), id}, nullptr);
  publish_event("removed", id);
}

// ---- requests for mirrors ---------------------------------------------------------------------------

void Cluster::send_request(const std::string& terminal_id, std::vector<std::string> fields) {
  auto it = mirrors_.find(terminal_id);
  if (it == mirrors_.end()) return;
  std::vector<std::string> args = {"XADD", input_key(it->second.owner_node), "MAXLEN", "~", kInputMaxLen, "*",
                                   "t", terminal_id, "b", it->second.owner_boot};
  for (std::string& field : fields) args.push_back(std::move(field));
  commands_.command(args, [terminal_id](const RedisValue* reply) {
    if (reply == nullptr || reply->is_error()) {
      log::warn("cluster: a request for a terminal of another node was lost (Redis unreachable)",
                {{"terminal", terminal_id}});
    }
  });
  ++metrics_.cluster_requests_sent_total;
}

void Cluster::input(const std::string& terminal_id, std::string_view bytes) {
  send_request(terminal_id, {"k", "i", "d", std::string(bytes)});
}

void Cluster::resize(const std::string& terminal_id, uint16_t cols, uint16_t rows) {
  send_request(terminal_id, {"k", "r", "c", std::to_string(cols), "r", std::to_string(rows)});
}

void Cluster::kill(const std::string& terminal_id, int signal) {
  send_request(terminal_id, {"k", "k", "s", std::to_string(signal)});
}

void Cluster::share(const std::string& terminal_id, const std::string& user, auth::Access access) {
  send_request(terminal_id, {"k", "s", "u", user, "a", access_text(access)});
}

void Cluster::hold(const std::string& terminal_id, bool held, bool urgent) {
  auto it = mirrors_.find(terminal_id);
  if (it == mirrors_.end()) return;
  it->second.held = held;
  it->second.urgent = urgent;
  send_request(terminal_id, {"k", "h", "h", held ? "1" : "0", "u", urgent ? "1" : "0", "n", settings_.node_id});
  if (!held) drain_mirror(terminal_id);
}

void Cluster::progress(const std::string& terminal_id, std::optional<uint64_t> offset) {
  auto it = mirrors_.find(terminal_id);
  if (it == mirrors_.end()) return;
  it->second.reported = offset;
  if (offset) {
    send_request(terminal_id, {"k", "a", "o", std::to_string(*offset), "n", settings_.node_id});
  } else {
    send_request(terminal_id, {"k", "a", "n", settings_.node_id});
  }
}

void Cluster::dismiss(const std::string& terminal_id) {
  send_request(terminal_id, {"k", "d"});
}

void Cluster::cancel_operation(const std::string& terminal_id, const std::string& operation_id) {
  send_request(terminal_id, {"k", "g", "o", operation_id});
}

void Cluster::drain_mirror(const std::string& id) {
  if (draining_) return;  // applying an entry can release a hold: the loop below goes on
  draining_ = true;
  auto it = mirrors_.find(id);
  while (it != mirrors_.end() && !it->second.held && !it->second.backlog.empty()) {
    const TerminalEntry entry = std::move(it->second.backlog.front());
    it->second.backlog.pop_front();
    on_stream_entry(id, entry);  // may hold the mirror again, or remove it
    it = mirrors_.find(id);
    // While writers here may hold it back, the owner is told how far this node has read, every so often.
    if (it != mirrors_.end() && it->second.reported) {
      hub::Terminal* terminal = hub_.find_any(id);
      if (terminal != nullptr && terminal->mirror_offset() >= *it->second.reported + kProgressStepBytes) {
        progress(id, terminal->mirror_offset());
        it = mirrors_.find(id);
      }
    }
  }
  draining_ = false;
  if (it != mirrors_.end() && !it->second.held && it->second.backlog.empty()) wake_reader();
}

void Cluster::wake_reader() {
  // The reader may be blocked in an XREAD that leaves this stream out; it is asked again with it.
  if (!reading_ || reader_client_id_ <= 0 || woken_seq_ == read_seq_) return;
  woken_seq_ = read_seq_;
  commands_.command({"CLIENT", "UNBLOCK", std::to_string(reader_client_id_)}, [this, seq = read_seq_](const RedisValue* reply) {
    // 0: that XREAD was not blocked in Redis. Either its answer is on its way (then read_seq_ moves on), or
    // it has not reached Redis yet: waiting for the end of its BLOCK would stall this mirror for a second.
    if (reply == nullptr || reply->type != RedisValue::Type::integer || reply->integer != 0) return;
    if (!reading_ || read_seq_ != seq || !wake_retry_timer_.initialised()) return;
    uv_timer_start(
        wake_retry_timer_.get(),
        [](uv_timer_t* t) {
          auto* self = static_cast<Cluster*>(t->data);
          if (self->woken_seq_ != self->read_seq_) return;  // that XREAD ended; the next one reads it all
          self->woken_seq_ = 0;
          self->wake_reader();
        },
        1, 0);
  });
}

void Cluster::on_input_entry(const Fields& fields) {
  const Decoded<NodeRequest> request = decode_node_request(fields);
  if (!request) {
    // A create request for this incarnation is answered even when its options are malformed.
    const Decoded<CreateReplyAddress> address = decode_create_reply_address(fields);
    if (address && address->meant_for == boot_) {
      reply_create(address->node, address->boot, address->seq,
                   {"err", "bad_message", "m", "a malformed create request", "f", ""});
    }
    return malformed("request", request.error());
  }
  if (request->boot != boot_) return;  // for an earlier incarnation of this node
  const NodeRequestBody& body = request->body;
  if (const auto* create = std::get_if<CreateRequest>(&body)) return on_create_request(*create);
  if (const auto* reply = std::get_if<CreateReply>(&body)) return on_create_reply(*reply);
  if (std::holds_alternative<UnknownRequest>(body)) return;  // of a kind this version does not know
  const std::string id = std::visit(
      [](const auto& r) -> std::string {
        if constexpr (requires { r.terminal; }) return r.terminal;
        return {};
      },
      body);
  hub::Terminal* terminal = hub_.find_any(id);
  if (terminal == nullptr || terminal->mirror()) return;
  if (std::holds_alternative<DismissRequest>(body)) {  // of an exited terminal; its removal reaches every node
    if (hub_.dismiss(id)) ++metrics_.cluster_requests_applied_total;
    return;
  }
  if (!terminal->running()) return;
  ++metrics_.cluster_requests_applied_total;
  if (const auto* input = std::get_if<InputRequest>(&body)) {
    terminal->write_input(input->bytes, nullptr);
  } else if (const auto* resize = std::get_if<ResizeRequest>(&body)) {
    terminal->resize(resize->cols, resize->rows);
  } else if (const auto* kill = std::get_if<KillRequest>(&body)) {
    terminal->kill(kill->signal, settings_.kill_grace_ms);
  } else if (const auto* share = std::get_if<ShareRequest>(&body)) {
    if (share->user != terminal->owner()) terminal->share(share->user, access_of(share->access));
  } else if (const auto* cancel = std::get_if<CancelRequest>(&body)) {
    if (terminal->spec().operation == cancel->operation) hub_.cancel_operation(cancel->operation);
  } else if (const auto* progress = std::get_if<ProgressRequest>(&body)) {
    const uint64_t window = settings_.retention_bytes > 0 ? settings_.retention_bytes / 2 : 0;
    terminal->set_remote_progress(progress->node, progress->offset, window);
  } else if (const auto* hold = std::get_if<HoldRequest>(&body)) {
    terminal->set_remote_hold(hold->node, hold->held, hold->urgent);
  }
}

void Cluster::malformed(const std::string& what, const EntryError& error, const std::string& terminal) {
  ++metrics_.cluster_entries_malformed_total;
  const std::string reason = error.describe();  // log::Field views its value: it must outlive the line
  std::vector<log::Field> fields = {{"error", reason}};
  if (!terminal.empty()) fields.push_back({"terminal", terminal});
  warn_limited(what, "cluster: skipped a malformed " + what + " read from Redis", std::move(fields));
}

void Cluster::warn_limited(const std::string& kind, const std::string& message, std::vector<log::Field> fields) {
  // The first of each kind at once, then at most one line a minute: garbage in Redis must not flood the log.
  MalformedLog& logged = malformed_logs_[kind];
  const uint64_t now = uv_now(loop_);
  if (logged.logged_ms != 0 && now - logged.logged_ms < kMalformedLogMs) {
    ++logged.unlogged;
    return;
  }
  // unlogged: how many of this kind were left out since the last line, when there were any.
  const std::string unlogged = std::to_string(logged.unlogged);
  if (logged.unlogged > 0) fields.push_back({"unlogged", unlogged, true});
  log::write(log::Level::warn, message, fields);
  logged.logged_ms = now == 0 ? 1 : now;
  logged.unlogged = 0;
}

// ---- shell.create {node} ----------------------------------------------------------------------------
// The request goes to the node's input stream addressed to its current incarnation (its lease); the
// node creates the terminal as for its own client, registers it, then answers on our input stream. The
// reply is written after the registration on the same Redis connection, so the directory entry is there
// when we read the reply.

void Cluster::create_on(const std::string& node, const auth::Principal& owner, const hub::CreateOptions& options,
                        std::function<void(hub::RemoteCreateResult)> done) {
  if (!joined_ || !commands_.up()) {
    done({nullptr, "unavailable", "this node is not connected to the cluster", ""});
    return;
  }
  json encoded = {{"command", options.command}, {"cwd", options.cwd},   {"env", options.env},
                  {"cols", options.cols},       {"rows", options.rows}, {"name", options.name}};
  const uint64_t seq = ++next_create_;
  pending_creates_[seq] = PendingCreate{std::move(done), uv_now(loop_) + kRemoteCreateTimeoutMs};
  commands_.command({"GET", lease_key(node)}, [this, seq, node, user = owner.user,
                                               body = encoded.dump()](const RedisValue* lease) {
    if (pending_creates_.count(seq) == 0) return;
    if (lease == nullptr || lease->is_error()) {
      return finish_create(seq, {nullptr, "unavailable", "the cluster's Redis is unreachable", ""});
    }
    if (lease->is_nil() || lease->text.empty()) {
      return finish_create(seq, {nullptr, "not_found", "no such node in the cluster: " + node, "data.node"});
    }
    commands_.command({"XADD", input_key(node), "MAXLEN", "~", kInputMaxLen, "*", "k", "c", "b", lease->text, "q",
                       std::to_string(seq), "from", settings_.node_id, "fb", boot_, "u", user, "o", body},
                      [this, seq](const RedisValue* added) {
                        if (added == nullptr || added->is_error()) {
                          finish_create(seq, {nullptr, "unavailable", "the cluster's Redis is unreachable", ""});
                        }
                      });
  });
}

void Cluster::finish_create(uint64_t seq, hub::RemoteCreateResult result) {
  auto it = pending_creates_.find(seq);
  if (it == pending_creates_.end()) return;
  auto done = std::move(it->second.done);
  pending_creates_.erase(it);
  done(std::move(result));
}

void Cluster::reply_create(const std::string& node, const std::string& boot, uint64_t seq,
                           std::vector<std::string> fields) {
  std::vector<std::string> args = {"XADD", input_key(node), "MAXLEN", "~", kInputMaxLen, "*", "k", "C", "b", boot,
                                   "q", std::to_string(seq)};
  for (std::string& field : fields) args.push_back(std::move(field));
  commands_.command(args, nullptr);
}

void Cluster::on_create_request(const CreateRequest& request) {
  const std::string& from = request.from;
  const std::string& from_boot = request.from_boot;
  const uint64_t seq = request.seq;
  const std::string& user = request.user;
  hub::CreateOptions options;
  options.command = request.command;
  options.cwd = request.cwd;
  options.env = request.env;
  options.cols = request.cols;
  options.rows = request.rows;
  options.name = request.name;
  auth::Principal owner;
  owner.user = user;
  hub::CreateResult created = hub_.create(owner, options, nullptr, hub::Encoding::utf8);
  switch (created.failure) {
    case hub::CreateFailure::none:
      break;
    case hub::CreateFailure::limit_total:
    case hub::CreateFailure::limit_user:
      return reply_create(from, from_boot, seq, {"err", "limit_exceeded", "m", created.message, "f", ""});
    case hub::CreateFailure::cwd:
      return reply_create(from, from_boot, seq, {"err", "bad_message", "m", created.message, "f", "data.cwd"});
    case hub::CreateFailure::command:
      return reply_create(from, from_boot, seq, {"err", "bad_message", "m", created.message, "f", "data.command"});
    case hub::CreateFailure::system:
      return reply_create(from, from_boot, seq, {"err", "internal", "m", created.message, "f", ""});
  }
  log::info("cluster: created a terminal for a client of node " + log::quoted(from),
            {{"terminal", created.terminal->id()}, {"user", user}});
  reply_create(from, from_boot, seq, {"tid", created.terminal->id()});
}

void Cluster::on_create_reply(const CreateReply& reply) {
  const uint64_t seq = reply.seq;
  if (pending_creates_.count(seq) == 0) return;
  const std::string id = reply.terminal;
  if (id.empty()) return finish_create(seq, {nullptr, reply.code, reply.message, reply.field});
  reader_.command({"HGETALL", term_key(id)}, [this, seq, id](const RedisValue* hash) {
    if (hash != nullptr && !hash->elements.empty()) apply_directory_entry(id, *hash);
    hub::Terminal* terminal = hub_.find_any(id);
    if (terminal == nullptr) {
      return finish_create(seq, {nullptr, "not_found", "the terminal was created but is already gone", ""});
    }
    finish_create(seq, {terminal, "", "", ""});
  });
}

// ---- the directory and mirrors ----------------------------------------------------------------------

void Cluster::on_reader_state(bool up) {
  reading_ = false;
  loaded_ = false;
  reader_client_id_ = 0;
  if (!up) return;
  reader_.command({"CLIENT", "ID"}, [this](const RedisValue* id) {
    if (id != nullptr && id->type == RedisValue::Type::integer) reader_client_id_ = id->integer;
  });
  load_directory();
}

void Cluster::load_directory() {
  // The newest event first: whatever happens after it is read from the events stream.
  reader_.command({"XREVRANGE", events_key(), "+", "-", "COUNT", "1"}, [this](const RedisValue* newest) {
    if (newest == nullptr) return;
    const Decoded<std::vector<StreamEntry>> entries = decode_range_reply(*newest);
    if (!entries) malformed("read reply", entries.error());
    events_cursor_ = entries && !entries->empty() && entries->front().id ? to_string(*entries->front().id) : "0-0";
    reader_.command({"SMEMBERS", terms_key()}, [this](const RedisValue* members) {
      if (members == nullptr) return;
      for (const RedisValue& member : members->elements) load_terminal(member.text);
      reader_.command({"PING"}, [this](const RedisValue* pong) {
        if (pong == nullptr) return;
        loaded_ = true;
        read_next();
      });
    });
  });
}

void Cluster::load_terminal(const std::string& id) {
  reader_.command({"HGETALL", term_key(id)}, [this, id](const RedisValue* hash) {
    if (hash == nullptr) return;
    if (hash->elements.empty()) {  // expired: forget it
      commands_.command({"SREM", terms_key(), id}, nullptr);
      return;
    }
    apply_directory_entry(id, *hash);
  });
}

void Cluster::apply_directory_entry(const std::string& id, const RedisValue& hash) {
  Decoded<Fields> fields = decode_fields(hash);
  if (!fields) return malformed("directory entry", fields.error(), id);
  const Decoded<DirectoryEntry> entry = decode_directory_entry(*fields);
  if (!entry) return malformed("directory entry", entry.error(), id);
  // Ours; an earlier incarnation's terminals are mirrored like any other node's (they end node_lost).
  if (published_.count(id) != 0 || (entry->node == settings_.node_id && entry->boot == boot_)) return;
  std::map<std::string, auth::Access, std::less<>> shares;
  for (const auto& [user, access] : entry->shares) shares[user] = access_of(access);
  hub::Terminal* terminal = hub_.find_any(id);
  if (terminal != nullptr) {
    if (!terminal->mirror()) return;
    terminal->set_shares(shares);
    terminal->set_name(entry->name);
    return;
  }
  hub::TerminalSpec spec;
  spec.id = id;
  spec.node = entry->node;
  spec.owner = entry->owner;
  spec.kind = entry->kind;
  spec.name = entry->name;
  spec.command = entry->command;
  spec.cwd = entry->cwd;
  spec.operation = entry->operation;
  spec.cols = entry->cols;
  spec.rows = entry->rows;
  if (spec.owner.empty()) return;
  hub::Terminal* mirror = hub_.add_mirror(spec, entry->created_at_ms, this);
  if (mirror == nullptr) return;
  mirror->set_shares(shares);
  {
    Mirror added;
    added.owner_node = entry->node;
    added.owner_boot = entry->boot;
    mirrors_[id] = std::move(added);
    wake_reader();  // its stream is read from now on, not after the XREAD in flight
  }
  ++metrics_.cluster_mirrors;
}

void Cluster::read_next() {
  if (reading_ || !loaded_ || !reader_.up()) return;
  std::vector<std::string> args = {"XREAD", "COUNT", kReadCount, "BLOCK", std::to_string(kReadBlockMs), "STREAMS"};
  std::vector<std::string> cursors;
  args.push_back(events_key());
  cursors.push_back(events_cursor_);
  if (joined_) {
    args.push_back(input_key(settings_.node_id));
    cursors.push_back(input_cursor_);
  }
  for (const auto& [id, mirror] : mirrors_) {
    if (mirror.held || !mirror.backlog.empty()) continue;  // held back: read once it takes more
    hub::Terminal* terminal = hub_.find_any(id);
    if (terminal == nullptr || !terminal->running()) continue;  // ended: nothing more to read
    args.push_back(stream_key(id));
    cursors.push_back(mirror.cursor);
  }
  args.insert(args.end(), cursors.begin(), cursors.end());
  reading_ = true;
  ++read_seq_;
  reader_.command(args, [this](const RedisValue* reply) {
    reading_ = false;
    if (reply == nullptr) return;  // the link dropped: on_reader_state starts again
    if (reply->is_error()) warn_limited("XREAD error", "cluster: XREAD failed", {{"error", reply->text}});
    if (!reply->is_error() && on_read(*reply)) return read_next();
    // An error (a watched key that is not a stream, a Redis refusing reads) or a reply that is not one:
    // asking again at once would spin the loop on the same answer. A moment later, then.
    if (!read_retry_timer_.initialised()) return;
    uv_timer_start(
        read_retry_timer_.get(), [](uv_timer_t* t) { static_cast<Cluster*>(t->data)->read_next(); }, kReadRetryMs, 0);
  }, kReadBlockMs + RedisConnection::kDefaultTimeoutMs);
}

bool Cluster::on_read(const RedisValue& reply) {
  Decoded<std::vector<StreamBatch>> streams = decode_read_reply(reply);
  if (!streams) {
    malformed("read reply", streams.error());
    return false;
  }
  std::set<std::string> touched;  // mirrors with new entries
  const std::string events = events_key();
  const std::string inputs = input_key(settings_.node_id);
  const std::string prefix = std::string(kPrefix) + "term:{";
  for (StreamBatch& stream : *streams) {
    const std::string& key = stream.key;
    for (StreamEntry& entry : stream.entries) {
      // A malformed entry is skipped; the cursor moves past it when its id is readable.
      if (key == events) {
        if (entry.id) events_cursor_ = to_string(*entry.id);
        if (!entry.ok()) {
          malformed("event", *entry.error);
          continue;
        }
        const Decoded<DirectoryEvent> event = decode_directory_event(entry.fields);
        if (!event) {
          malformed("event", event.error());
          continue;
        }
        on_event(*event);
      } else if (key == inputs) {
        if (entry.id) input_cursor_ = to_string(*entry.id);
        if (!entry.ok()) {
          malformed("request", *entry.error);
          continue;
        }
        on_input_entry(entry.fields);
      } else if (key.starts_with(prefix) && key.ends_with("}:out")) {
        const std::string id = key.substr(prefix.size(), key.size() - prefix.size() - 5);
        auto mirror = mirrors_.find(id);
        if (mirror == mirrors_.end()) continue;
        if (entry.id) mirror->second.cursor = to_string(*entry.id);
        if (!entry.ok()) {
          malformed("terminal entry", *entry.error, id);
          continue;
        }
        Decoded<TerminalEntry> decoded = decode_terminal_entry(*entry.id, std::move(entry.fields));
        if (!decoded) {
          malformed("terminal entry", decoded.error(), id);
          continue;
        }
        mirror->second.backlog.push_back(std::move(*decoded));
        touched.insert(id);
      }
    }
  }
  for (const std::string& id : touched) drain_mirror(id);
  return true;
}

void Cluster::on_event(const DirectoryEvent& event) {
  const std::string& id = event.terminal;
  if (published_.count(id) != 0) return;
  if (event.event == "removed") {
    if (mirrors_.erase(id) != 0) {
      --metrics_.cluster_mirrors;
      hub_.remove_mirror(id);
    }
    return;
  }
  load_terminal(id);  // created or changed: read its entry again
}

void Cluster::on_stream_entry(const std::string& id, const TerminalEntry& entry) {
  hub::Terminal* terminal = hub_.find_any(id);
  if (terminal == nullptr || !terminal->mirror()) return;
  if (const auto* output = std::get_if<OutputEntry>(&entry)) {
    terminal->append_mirrored(output->start, output->data);
    metrics_.cluster_bytes_read_total += output->data.size();
  } else if (const auto* resize = std::get_if<ResizeEntry>(&entry)) {
    terminal->mirror_resized(resize->cols, resize->rows);
  } else if (const auto* ended = std::get_if<ExitEntry>(&entry)) {
    hub::MirrorExit exit;
    exit.exit_code = ended->code;
    exit.signal = ended->signal;
    exit.duration_ms = ended->duration_ms;
    exit.reason = ended->reason;
    std::vector<protocol::SharedFrame> trailers;
    for (const std::string& payload : ended->trailers) trailers.push_back(protocol::make_frame(payload));
    terminal->mirror_exited(exit, std::move(trailers));
  } else if (const auto* event = std::get_if<EventEntry>(&entry)) {
    terminal->publish_event(protocol::make_frame(event->payload));
  }
}

// ---- liveness ---------------------------------------------------------------------------------------

void Cluster::renew_lease() {
  const uint64_t now = uv_now(loop_);
  // Cut off (or stopped) longer than the lease: the other nodes may have declared this node lost, so its
  // terminals end now rather than run on unseen (docs/cluster.md, "Failures").
  if (last_renewal_ok_ms_ != 0 && now - last_renewal_ok_ms_ > settings_.lease_ms) {
    fence("no lease renewal for longer than the lease (" + std::to_string(settings_.lease_ms) + " ms)");
    last_renewal_ok_ms_ = 0;  // until joined again
    return;
  }
  if (!joined_) return;
  commands_.command({"EVAL", kRenewScript, "2", lease_key(settings_.node_id), node_key(settings_.node_id), boot_,
                     std::to_string(settings_.lease_ms)},
                    [this, asked = now, asked_us = uv_hrtime() / 1000](const RedisValue* reply) {
                      if (reply == nullptr || reply->is_error()) return;
                      metrics_.redis_rtt_us = (uv_hrtime() / 1000) - asked_us;
                      if (reply->text == "OK") {
                        last_renewal_ok_ms_ = asked;
                      } else if (reply->text == "RESTORED") {
                        log::warn("cluster: Redis lost this node's keys; registering again");
                        last_renewal_ok_ms_ = asked;
                        input_cursor_ = "0-0";
                        join();
                      } else {
                        fence(reply->text == "REAPED" ? "another node declared this node lost"
                                                      : "another process holds this node id");
                      }
                    });
}

void Cluster::sweep() {
  const uint64_t now = uv_now(loop_);
  // Holds lapse on the owner unless said again (hub::Terminal::kRemoteHoldMs).
  for (const auto& [id, mirror] : mirrors_) {
    hub::Terminal* terminal = hub_.find_any(id);
    if (terminal == nullptr || !terminal->running()) continue;
    if (mirror.held) send_request(id, {"k", "h", "h", "1", "u", mirror.urgent ? "1" : "0", "n", settings_.node_id});
    if (mirror.reported) {
      send_request(id, {"k", "a", "o", std::to_string(terminal->mirror_offset()), "n", settings_.node_id});
    }
  }
  for (auto it = pending_creates_.begin(); it != pending_creates_.end();) {
    const uint64_t seq = (it++)->first;
    if (pending_creates_[seq].deadline_ms <= now) {
      finish_create(seq, {nullptr, "unavailable", "the node did not answer within 10 s", "data.node"});
    }
  }
  uint64_t remote_subscribers = 0;
  for (const auto& [id, mirror] : mirrors_) {
    if (hub::Terminal* terminal = hub_.find_any(id)) remote_subscribers += terminal->subscriber_count();
  }
  metrics_.cluster_remote_subscribers = remote_subscribers;
  if (!joined_) return;
  std::set<std::pair<std::string, std::string>> owners;
  for (const auto& [id, mirror] : mirrors_) {
    hub::Terminal* terminal = hub_.find_any(id);
    if (terminal != nullptr && terminal->running()) owners.insert({mirror.owner_node, mirror.owner_boot});
  }
  // Named captures, not the structured bindings themselves: clang 14 (the fuzz build) cannot capture those.
  for (const auto& owner : owners) {
    commands_.command({"GET", lease_key(owner.first)}, [this, node = owner.first, boot = owner.second](const RedisValue* lease) {
      if (lease == nullptr || lease->is_error()) return;
      if (!lease->is_nil() && lease->text == boot) return;  // alive
      reap(node, boot);
    });
  }
}

void Cluster::reap(const std::string& node, const std::string& boot) {
  commands_.command({"EVAL", kClaimReapScript, "2", node_key(node), lease_key(node), boot},
                    [this, node, boot](const RedisValue* claimed) {
                      if (claimed == nullptr || claimed->integer != 1) return;
                      log::warn("cluster: node " + log::quoted(node) + " is lost (no lease); ending its terminals",
                                {{"boot", boot}});
                      ++metrics_.cluster_nodes_reaped_total;
                      commands_.command({"SMEMBERS", node_terms_key(node)}, [this, boot](const RedisValue* members) {
                        if (members == nullptr) return;
                        for (const RedisValue& member : members->elements) {
                          const std::string id = member.text;
                          commands_.command({"EVAL", kMarkLostScript, "2", term_key(id), stream_key(id), boot,
                                             "node_lost", std::to_string(settings_.exited_ttl_ms)},
                                            [this, id](const RedisValue* marked) {
                                              if (marked != nullptr && marked->integer == 1) publish_event("changed", id);
                                            });
                        }
                      });
                    });
}

void Cluster::fence(std::string_view why) {
  log::error("cluster: fencing this node: " + std::string(why) +
             "; its terminals end (node_fenced) and it joins again as a new incarnation");
  ++metrics_.cluster_fenced_total;
  // Nothing of the old incarnation is written any more: its terminals are no longer published.
  std::vector<std::string> ids;
  for (auto& [id, published] : published_) ids.push_back(id);
  for (const std::string& id : ids) {
    hub::Terminal* terminal = hub_.find_any(id);
    auto it = published_.find(id);
    if (terminal != nullptr && it != published_.end()) {
      terminal->remove_output_tap(it->second.tap);
      terminal->remove_change_observer(it->second.changes);
      terminal->remove_event_observer(it->second.events);
    }
    published_.erase(id);
    if (terminal != nullptr && terminal->running()) terminal->end("node_fenced", settings_.kill_grace_ms);
  }
  flush_queue_.clear();
  waiting_for_room_.clear();
  metrics_.cluster_append_bytes_in_flight = 0;  // the answers still due find nothing to account
  joined_ = false;
  boot_ = random_boot();
  last_renewal_ok_ms_ = 0;
  if (commands_.up()) join();
}

}  // namespace ptyhub::cluster
