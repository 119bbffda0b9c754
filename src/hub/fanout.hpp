// Fanout: the pure core of one terminal's output stream — its retained bytes, its subscribers' cursors,
// and every flow-control decision (docs/protocol.md §6 "The output stream", "Flow control" and "Who may
// hold a terminal back").
//
// Input is "bytes at offset X" (append), so the same core serves a terminal whose bytes come from its
// own PTY and a mirror whose bytes arrive from elsewhere with their offsets: bytes past the end leave a
// hole that subscribers receive as an exact `shell.gap`; bytes already known are dropped. The core keeps
// the last `ring_bytes` in an OutputRing and, for each subscription, the offset of the next byte it
// receives. It decides what each subscriber gets next (live frames shared by every subscriber at the
// live edge; catch-up frames from the ring cut on a fixed grid, so that lagging subscribers share them
// too; gaps; the exit after the last byte) and whether the source may be read (decide()).
//
// No libuv, no PTY, no sockets, no settings file: time is an argument, subscribers are Sinks, and the
// adapter (Terminal) applies the decision to its byte source. Loop thread only.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "core/fifo.hpp"
#include "src/hub/metrics.hpp"
#include "src/hub/output_ring.hpp"
#include "src/protocol/frame.hpp"
#include "src/protocol/output_frame.hpp"

namespace ptyhub::hub {

// How a subscription receives shell.output data.
using Encoding = protocol::OutputEncoding;

// What the core needs of a subscriber. The connection behind it owns its queue limits and answers
// has_room() and stalled(); the core never decides either.
class Sink {
 public:
  virtual ~Sink() = default;
  // Queues one frame for the client. Must not call back into the core.
  virtual void deliver(const protocol::SharedFrame& frame) = 0;
  // True while the client can take more output (its connection's queue is below its limit).
  virtual bool has_room() const = 0;
  // True when the client took nothing off its queue for longer than its own recent pace allows
  // (`now_ms`: loop milliseconds): a client without room that still takes data is slow, not stalled.
  virtual bool stalled(uint64_t now_ms) const = 0;
};

// Where a new subscription starts, for the `subscribed` reply.
struct ReplayRange {
  uint64_t from = 0;
  uint64_t to = 0;
};

// What the adapter does with its byte source after any change.
struct SourceDecision {
  bool read = true;      // the source may be read
  bool recheck = false;  // a subscriber holds it until it stalls: decide() again after kStallRecheckMs
  bool urgent = false;   // a holder's next byte would leave the ring (not only a pause or a lag)
  friend bool operator==(const SourceDecision&, const SourceDecision&) = default;
};

struct FanoutLimits {
  size_t ring_bytes = 1024 * 1024;
  size_t max_read_bytes = 256 * 1024;  // the most the source delivers in one wake-up
};

class Fanout {
 public:
  // Largest shell.output payload in raw bytes: a wake-up's output goes out in several frames, so one
  // frame never dwarfs a client's queue limit and terminals interleave fairly. Catch-up frames are cut
  // at multiples of it, so subscribers behind on the same bytes are sent the same frames.
  static constexpr size_t kMaxFrameBytes = 64 * 1024;
  // While a subscriber holds the source, how often it is asked again whether it stalled.
  static constexpr uint64_t kStallRecheckMs = 250;

  Fanout(std::string terminal_id, FanoutLimits limits, Metrics* metrics = nullptr);
  ~Fanout();
  Fanout(const Fanout&) = delete;
  Fanout& operator=(const Fanout&) = delete;

  const std::string& terminal_id() const { return terminal_id_; }
  const std::string& channel() const { return channel_; }

  // --- input ----------------------------------------------------------------------------------------
  // Bytes [offset, offset + size) of the stream, ending on a UTF-8 character boundary. Above end(),
  // [end(), offset) becomes a hole (subscribers get shell.gap for it); what is below end() is dropped.
  void append(uint64_t offset, std::string_view bytes);
  // A fresh stream (nothing appended, no subscriber) takes `bytes`, which end at `end`, as its retained
  // output without copying them (a live upgrade's restore; they may be borrowed from the mapped state).
  void adopt(uint64_t end, SharedBytes&& bytes);
  // The retained bytes (end() - start()), oldest first, in two pieces, without a copy.
  std::pair<std::string_view, std::string_view> retained_pieces() const { return ring_.pieces(); }
  // Retained bytes still borrowed (adopt()) are copied into the ring's own memory; nothing when owned.
  void own_retained() { ring_.own(); }
  // The stream ended: every subscriber gets `exit`, then `trailer` when set, after its last byte.
  void finish(protocol::SharedFrame exit, std::vector<protocol::SharedFrame> trailers = {});
  // An event for every subscriber at once, wherever its cursor is (shell.resized, git progress).
  void broadcast(const protocol::SharedFrame& frame);

  // --- subscriptions --------------------------------------------------------------------------------
  // Subscribes (or re-subscribes with new settings) from `since`, by default the oldest retained byte.
  // `may_hold`: the subscriber may hold the source back (the owner and writers; docs/protocol.md §6).
  // Returns the replay range; call serve() after sending the reply.
  ReplayRange subscribe(Sink* sink, Encoding encoding, std::optional<uint64_t> since, bool may_hold);
  bool unsubscribe(Sink* sink);
  bool subscribed(const Sink* sink) const;
  // shell.pause / shell.resume; false when `sink` is not subscribed. Resuming serves it.
  bool set_paused(Sink* sink, bool paused);
  void set_may_hold(Sink* sink, bool may_hold);
  // Sends what `sink` lags behind while it has room: gaps, frames from the ring, then the exit.
  void serve(Sink* sink);
  std::vector<Sink*> sinks() const;
  size_t subscriber_count() const { return subscriptions_.size(); }
  // Some subscriber may hold the source back.
  bool any_may_hold() const;
  // The retained bytes, [start(), end()) (a live upgrade carries them).
  std::string retained() const;
  // Up to `max` retained bytes from `from` (start() <= from <= end()) into `out` (replacing it).
  void read(uint64_t from, size_t max, std::string* out) const { ring_.read(from, max, out); }

  // --- the source -----------------------------------------------------------------------------------
  // Whether the source may be read now. Rules (docs/protocol.md §6): with no subscriber it is read into
  // the ring. Only subscribers that may hold can stop it: a paused one while nobody takes output live;
  // one that is behind or full and still takes data while nobody takes output live, or when the next
  // read could push its next byte out of the ring. A stalled one holds nobody. Others never hold: they
  // are served from the ring and get shell.gap when their cursor leaves it.
  SourceDecision decide(uint64_t now_ms) const;
  // Some subscriber takes output live.
  bool any_live() const;
  // The most the source should read per wake-up: at most half the ring, so that one read cannot push
  // a momentarily full subscriber out of it before a hold can act.
  size_t read_budget() const { return read_budget_; }

  uint64_t start() const { return ring_.start(); }
  uint64_t end() const { return ring_.end(); }
  bool finished() const { return finished_; }
  size_t ring_allocated() const { return ring_.allocated(); }
  size_t cached_frames() const { return catch_up_frames_.size(); }

 private:
  struct Subscription {
    Sink* sink;
    Encoding encoding;
    uint64_t cursor;  // next offset this subscriber receives
    bool may_hold = false;
    bool paused = false;
    bool exit_sent = false;
  };
  struct Hole {
    uint64_t from;
    uint64_t to;
  };

  Subscription* find(const Sink* sink);
  bool live(const Subscription& s) const;
  bool ready(const Subscription& s) const { return !s.paused && s.sink->has_room(); }
  void catch_up(Subscription& s);
  void publish_piece(uint64_t offset, std::string_view raw);
  // The end of a hole containing `offset`, or `offset` when it is in none.
  uint64_t past_hole(uint64_t offset) const;
  // Start of the first hole at or after `offset`, or end().
  uint64_t next_hole(uint64_t offset) const;
  protocol::SharedFrame catch_up_frame(uint64_t offset, std::string_view raw, Encoding encoding);
  void prune();
  void account_ring(size_t allocated_before);

  std::string terminal_id_;
  std::string channel_;
  Metrics* metrics_;
  size_t read_budget_;
  OutputRing ring_;
  Fifo<Hole> holes_;  // within [start(), end()), oldest first
  std::vector<Subscription> subscriptions_;
  bool finished_ = false;
  protocol::SharedFrame exit_frame_;
  std::vector<protocol::SharedFrame> trailers_;
  // Catch-up frames still queued somewhere, by (offset, raw length, encoding): reused while alive.
  std::map<std::tuple<uint64_t, size_t, int>, std::weak_ptr<protocol::Frame>> catch_up_frames_;
  std::string scratch_;
};

}  // namespace ptyhub::hub
