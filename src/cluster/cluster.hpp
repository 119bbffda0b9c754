// Cluster: this daemon as one node of many over one Redis (docs/cluster.md). Built only with redis_url.
//
// Local terminals are published: each gets a directory entry (a hash), and its output goes, with its
// raw byte offsets, into a Redis stream whose entry ids are those offsets (`<end>-0`); resizes and the
// exit are entries of the same stream at their offsets (`<offset>-<n>`). Terminals of other nodes are
// mirrors in the hub (hub::Terminal in mirror mode): this node reads their streams and appends what it
// reads, so its clients get the same bytes, offsets, gaps and events as the owner's clients; their
// requests (input, resize, kill, share) go to the owner through the owner's input stream, in order.
//
// Liveness: each node holds a lease (a key with a 5 s expiry, renewed every second). A node whose
// lease is gone is reaped by any other node: its running terminals end with `reason: "node_lost"`,
// written into their streams after the last byte that reached Redis. A node that finds it was reaped
// (it was stopped, or cut off from Redis longer than its lease) fences itself: its appends are refused
// by Redis (a script checks the lease), its terminals end with `reason: "node_fenced"`, and it joins again
// under a new boot id. Offsets come from the owner's PTY, never from Redis: data lost in Redis is a gap.
//
// Two Redis connections: commands (pipelined, in order) and the reader (one blocking XREAD over the
// events stream, this node's input stream and every mirrored output stream). Loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/log.hpp"
#include "core/uv_handle.hpp"
#include "src/cluster/entries.hpp"
#include "src/cluster/redis.hpp"
#include "src/hub/hub.hpp"
#include "src/hub/metrics.hpp"

namespace ptyhub::cluster {

// The cluster's settings (docs/configuration.md).
struct ClusterSettings {
  RedisAddress redis;
  std::string node_id;
  std::string advertise;         // where clients of this node may be sent (informational)
  uint64_t retention_bytes = 0;  // bytes kept per terminal stream; 0 = the ring size
  uint64_t lease_ms = 5000;
  uint64_t renew_ms = 1000;
  uint64_t exited_ttl_ms = 600000;  // how long an ended terminal's keys stay
  uint64_t kill_grace_ms = 5000;    // for shell.kill requests from other nodes
};

class Cluster final : public hub::RemoteOwner, public hub::RemoteCreator {
 public:
  Cluster(uv_loop_t* loop, ClusterSettings settings, hub::Hub& hub, hub::Metrics& metrics);
  ~Cluster() override;
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // Connects (retrying with backoff while Redis is down) and joins once connected.
  void start();
  // Shutdown: no more timers or reconnections; what was sent is answered, then the links close.
  void stop();
  // Joined: Redis reachable and this node registered (for /readyz).
  bool ready() const { return joined_ && commands_.up(); }
  const std::string& node_id() const { return settings_.node_id; }
  const std::string& boot() const { return boot_; }

  // hub::RemoteOwner: requests for a mirror, sent to its owner's input stream.
  void input(const std::string& terminal_id, std::string_view bytes) override;
  void resize(const std::string& terminal_id, uint16_t cols, uint16_t rows) override;
  void kill(const std::string& terminal_id, int signal) override;
  void share(const std::string& terminal_id, const std::string& user, auth::Access access) override;
  void hold(const std::string& terminal_id, bool held, bool urgent) override;
  void cancel_operation(const std::string& terminal_id, const std::string& operation_id) override;
  void dismiss(const std::string& terminal_id) override;
  void progress(const std::string& terminal_id, std::optional<uint64_t> offset) override;
  // hub::RemoteCreator: shell.create {node} for another node, through that node's input stream; the
  // answer comes back through this node's input stream (or `unavailable` after 10 s).
  void create_on(const std::string& node, const auth::Principal& owner, const hub::CreateOptions& options,
                 std::function<void(hub::RemoteCreateResult)> done) override;

 private:
  // One entry of a terminal's stream, kept until Redis acknowledged it: after a lost link every
  // unacknowledged entry is sent again in order, and one that did land is refused by its explicit id
  // (not below the stream's top), so nothing is lost and nothing doubled.
  struct Entry {
    std::string id;  // "<end>-0" for output, "<offset>-<n>" for a control entry
    uint64_t top = 0;
    std::vector<std::string> fields;
    uint64_t bytes = 0;  // output bytes (0 for a control entry)
    bool sent = false;   // sent on the current link
  };
  // A local terminal being published.
  struct Published {
    std::string pending;     // output read since the last flush
    uint64_t pending_start = 0;
    uint64_t offset = 0;     // raw bytes read so far (the end of `pending`)
    uint64_t control_seq = 0;  // control entries at `offset` so far
    std::deque<Entry> unacked;
    uint64_t unacked_bytes = 0;
    hub::ObserverId tap = 0;
    hub::ObserverId changes = 0;
    hub::ObserverId events = 0;
  };
  // A mirror being read.
  struct Mirror {
    std::string owner_node;
    std::string owner_boot;
    std::string cursor = "0-0";  // the last stream entry read
    // Flow control: while a subscriber holds the mirror, entries read stay here (and its stream is not
    // read further); the owner is told to hold its PTY.
    bool held = false;
    bool urgent = false;
    std::deque<TerminalEntry> backlog;
    std::optional<uint64_t> reported;  // the last progress told to the owner (while there are holders here)
  };

  // Keys (docs/cluster.md, "Keys").
  std::string term_key(const std::string& id) const;
  std::string stream_key(const std::string& id) const;
  std::string node_key(const std::string& node) const;
  std::string lease_key(const std::string& node) const;
  std::string input_key(const std::string& node) const;
  std::string node_terms_key(const std::string& node) const;
  std::string events_key() const;
  std::string terms_key() const;

  void on_commands_state(bool up);
  void on_reader_state(bool up);
  void join();           // the join script; then register_node()
  void register_node();
  void register_terminal(hub::Terminal& terminal);
  void publish_event(std::string_view event, const std::string& terminal_id);

  // Local terminals.
  void on_local_created(hub::Terminal& terminal);
  void on_local_output(const std::string& id, std::string_view raw);
  void on_local_change(hub::Terminal& terminal, hub::TerminalChange change);
  void on_local_removed(const std::string& id);
  void flush();  // appends every pending output (each loop turn)
  void flush_terminal(const std::string& id, Published& published);
  void append_control(const std::string& id, Published& published, std::vector<std::string> fields);
  // Sends the entries of `id` not sent on this link yet, in order.
  void send_entries(const std::string& id, Published& published);
  void on_appended(const std::string& id, const RedisValue* reply);

  // The directory and mirrors.
  void load_directory();
  void load_terminal(const std::string& id);
  void apply_directory_entry(const std::string& id, const RedisValue& hash);
  void read_next();
  // false when the reply could not be read at all (the next read then waits a moment).
  bool on_read(const RedisValue& reply);
  // A warning of `kind`: the first at once, then at most one a minute, with the number left out.
  void warn_limited(const std::string& kind, const std::string& message, std::vector<log::Field> fields);
  void on_event(const DirectoryEvent& event);
  void on_input_entry(const Fields& fields);
  void on_stream_entry(const std::string& id, const TerminalEntry& entry);
  // Applies a mirror's backlog while it is not held; when it is empty and not held, its stream is read again.
  void drain_mirror(const std::string& id);
  // Ends the reader's blocking XREAD at once (CLIENT UNBLOCK), so that it is asked again with the streams
  // that may be read now. An UNBLOCK can reach Redis before the XREAD it is meant for (they travel on two
  // links): it is then said again a moment later, until that XREAD has ended.
  void wake_reader();
  void send_request(const std::string& terminal_id, std::vector<std::string> fields);
  void on_create_request(const CreateRequest& request);  // as the node asked to create
  void on_create_reply(const CreateReply& reply);        // as the node that asked
  void reply_create(const std::string& node, const std::string& boot, uint64_t seq, std::vector<std::string> fields);
  // An entry read from Redis that does not decode (src/cluster/entries.hpp), skipped: counted, and logged
  // at once for the first of each kind (`what`), then at most once a minute with the number not logged.
  void malformed(const std::string& what, const EntryError& error, const std::string& terminal = {});
  void finish_create(uint64_t seq, hub::RemoteCreateResult result);

  // Liveness.
  void renew_lease();
  void sweep();
  void reap(const std::string& node, const std::string& boot);
  void fence(std::string_view why);

  uv_loop_t* loop_;
  ClusterSettings settings_;
  hub::Hub& hub_;
  hub::Metrics& metrics_;
  std::string boot_;
  RedisConnection commands_;
  RedisConnection reader_;
  bool joined_ = false;
  bool joining_ = false;
  bool taken_logged_ = false;
  bool reading_ = false;
  uint64_t read_seq_ = 0;    // XREADs asked so far; the one in flight when reading_
  uint64_t woken_seq_ = 0;   // the XREAD an UNBLOCK was last sent for
  bool loaded_ = false;  // the directory was read since the reader connected
  std::string events_cursor_ = "0-0";
  std::string input_cursor_ = "0-0";
  int64_t reader_client_id_ = 0;  // CLIENT ID of the reader link
  bool draining_ = false;
  uint64_t last_renewal_ok_ms_ = 0;
  std::unordered_map<std::string, Published> published_;
  std::set<std::string> flush_queue_;
  std::set<std::string> waiting_for_room_;  // terminals with entries held back by kMaxAppendBytesInFlight
  std::unordered_map<std::string, Mirror> mirrors_;
  struct MalformedLog {
    uint64_t logged_ms = 0;  // the last line (loop time)
    uint64_t unlogged = 0;   // skipped since then without a line
  };
  std::map<std::string, MalformedLog> malformed_logs_;
  struct PendingCreate {
    std::function<void(hub::RemoteCreateResult)> done;
    uint64_t deadline_ms = 0;
  };
  std::map<uint64_t, PendingCreate> pending_creates_;
  uint64_t next_create_ = 0;
  hub::ObserverId created_observer_ = 0;
  hub::ObserverId removed_observer_ = 0;
  UvHandle<uv_check_t> flusher_;
  UvHandle<uv_timer_t> lease_timer_;
  UvHandle<uv_timer_t> rejoin_timer_;
  UvHandle<uv_timer_t> sweep_timer_;
  UvHandle<uv_timer_t> read_retry_timer_;  // after an XREAD answered with an error or garbage
  UvHandle<uv_timer_t> wake_retry_timer_;  // an UNBLOCK that came before its XREAD, said again
};

}  // namespace ptyhub::cluster
