// Fanout: one terminal's output stream, its subscribers and its flow control, without I/O.
#include "src/hub/fanout.hpp"

#include <algorithm>

#include "src/protocol/envelope.hpp"
#include "src/protocol/utf8.hpp"

namespace ptyhub::hub {
namespace {

// The longest UTF-8 character: a cut moved back to a character boundary moves at most this far.
constexpr size_t kMaxCharBytes = 4;
// Sweep frames no longer queued anywhere out of the catch-up cache once it holds this many entries.
constexpr size_t kCacheSweepEntries = 256;

// The length of the next piece of `raw`: at most `limit` bytes, ending on a UTF-8 boundary.
size_t piece_length(std::string_view raw, size_t limit) {
  if (raw.size() <= limit) return raw.size();
  const size_t complete = protocol::utf8_complete_prefix(raw.substr(0, limit));
  return complete > 0 ? complete : limit;
}

}  // namespace

Fanout::Fanout(std::string terminal_id, FanoutLimits limits, Metrics* metrics)
    : terminal_id_(std::move(terminal_id)),
      channel_("shell:terminal:" + terminal_id_),
      metrics_(metrics),
      read_budget_(std::max<size_t>(1, std::min(limits.max_read_bytes, limits.ring_bytes / 2))),
      ring_(limits.ring_bytes) {}

Fanout::~Fanout() {
  if (metrics_ != nullptr) metrics_->ring_bytes -= ring_.allocated();
}

void Fanout::account_ring(size_t allocated_before) {
  if (metrics_ != nullptr) metrics_->ring_bytes += ring_.allocated() - allocated_before;
}

// --- input ---------------------------------------------------------------------------------------

void Fanout::adopt(uint64_t end, SharedBytes&& bytes) {
  if (ring_.end() != 0 || !subscriptions_.empty() || finished_) {  // not fresh: the ordinary way
    const uint64_t start = end - bytes.size();
    append(start, bytes.view());
    return;
  }
  const size_t allocated = ring_.allocated();
  ring_.adopt(end, std::move(bytes));
  account_ring(allocated);
}

void Fanout::append(uint64_t offset, std::string_view bytes) {
  if (finished_) return;
  if (offset < ring_.end()) {  // re-delivered bytes: keep only what is new
    const uint64_t known = ring_.end() - offset;
    if (known >= bytes.size()) return;
    bytes.remove_prefix(static_cast<size_t>(known));
    offset = ring_.end();
  }
  if (offset > ring_.end()) {
    const size_t allocated = ring_.allocated();
    const uint64_t from = ring_.end();
    ring_.skip(offset - from);
    account_ring(allocated);
    holes_.push_back({from, offset});
    prune();
    // A hole with no bytes after it yet still reaches the subscribers at the live edge.
    if (bytes.empty()) {
      for (Subscription& s : subscriptions_) catch_up(s);
    }
  }
  while (!bytes.empty()) {
    const size_t length = piece_length(bytes, kMaxFrameBytes);
    publish_piece(ring_.end(), bytes.substr(0, length));
    bytes.remove_prefix(length);
  }
}

void Fanout::publish_piece(uint64_t offset, std::string_view raw) {
  const size_t allocated = ring_.allocated();
  ring_.append(raw);
  account_ring(allocated);
  prune();
  protocol::SharedFrame frames[2];  // per encoding, built at most once
  for (Subscription& s : subscriptions_) {
    if (s.cursor != offset || !ready(s)) {
      catch_up(s);  // behind (or a hole before it): served from the ring while it has room
      continue;
    }
    auto& frame = frames[static_cast<int>(s.encoding)];
    if (!frame) frame = protocol::shell_output_frame(channel_, terminal_id_, offset, raw, s.encoding);
    s.sink->deliver(frame);
    s.cursor = ring_.end();
  }
}

void Fanout::finish(protocol::SharedFrame exit, std::vector<protocol::SharedFrame> trailers) {
  if (finished_) return;
  finished_ = true;
  exit_frame_ = std::move(exit);
  trailers_ = std::move(trailers);
  for (Subscription& s : subscriptions_) catch_up(s);
}

void Fanout::broadcast(const protocol::SharedFrame& frame) {
  for (const Subscription& s : subscriptions_) s.sink->deliver(frame);
}

void Fanout::prune() {
  while (!holes_.empty() && holes_.front().to <= ring_.start()) holes_.pop_front();
  auto it = catch_up_frames_.begin();
  while (it != catch_up_frames_.end() && std::get<0>(it->first) < ring_.start()) it = catch_up_frames_.erase(it);
}

uint64_t Fanout::past_hole(uint64_t offset) const {
  for (const Hole& hole : holes_) {
    if (offset >= hole.from && offset < hole.to) return hole.to;
  }
  return offset;
}

uint64_t Fanout::next_hole(uint64_t offset) const {
  for (const Hole& hole : holes_) {
    if (hole.to > offset) return std::max(hole.from, offset);
  }
  return ring_.end();
}

// --- subscriptions -------------------------------------------------------------------------------

Fanout::Subscription* Fanout::find(const Sink* sink) {
  for (auto& subscription : subscriptions_) {
    if (subscription.sink == sink) return &subscription;
  }
  return nullptr;
}

ReplayRange Fanout::subscribe(Sink* sink, Encoding encoding, std::optional<uint64_t> since, bool may_hold) {
  const uint64_t cursor = since.value_or(ring_.start());
  Subscription fresh{sink, encoding, cursor, may_hold};
  if (Subscription* existing = find(sink)) *existing = fresh;
  else subscriptions_.push_back(fresh);
  if (cursor < ring_.end() && metrics_ != nullptr) ++metrics_->replays_total;
  return {past_hole(std::max(cursor, ring_.start())), ring_.end()};
}

bool Fanout::unsubscribe(Sink* sink) {
  const size_t before = subscriptions_.size();
  std::erase_if(subscriptions_, [&](const Subscription& s) { return s.sink == sink; });
  return subscriptions_.size() != before;
}

bool Fanout::subscribed(const Sink* sink) const {
  return std::any_of(subscriptions_.begin(), subscriptions_.end(), [&](const Subscription& s) { return s.sink == sink; });
}

bool Fanout::set_paused(Sink* sink, bool paused) {
  Subscription* subscription = find(sink);
  if (subscription == nullptr) return false;
  subscription->paused = paused;
  if (!paused) catch_up(*subscription);
  return true;
}

void Fanout::set_may_hold(Sink* sink, bool may_hold) {
  if (Subscription* subscription = find(sink)) subscription->may_hold = may_hold;
}

void Fanout::serve(Sink* sink) {
  if (Subscription* subscription = find(sink)) catch_up(*subscription);
}

std::vector<Sink*> Fanout::sinks() const {
  std::vector<Sink*> out;
  out.reserve(subscriptions_.size());
  for (const Subscription& s : subscriptions_) out.push_back(s.sink);
  return out;
}

bool Fanout::live(const Subscription& s) const { return s.cursor == ring_.end() && ready(s); }

protocol::SharedFrame Fanout::catch_up_frame(uint64_t offset, std::string_view raw, Encoding encoding) {
  const auto key = std::make_tuple(offset, raw.size(), static_cast<int>(encoding));
  auto it = catch_up_frames_.find(key);
  if (it != catch_up_frames_.end()) {
    if (protocol::SharedFrame frame = it->second.lock()) return frame;
  }
  if (catch_up_frames_.size() >= kCacheSweepEntries) {
    std::erase_if(catch_up_frames_, [](const auto& entry) { return entry.second.expired(); });
  }
  protocol::SharedFrame frame = protocol::shell_output_frame(channel_, terminal_id_, offset, raw, encoding);
  catch_up_frames_[key] = frame;
  return frame;
}

// Gaps, then frames from the ring while `s` has room, then the exit once it has every byte. Frames end
// at the next multiple of kMaxFrameBytes (moved back to a character boundary), at a hole, or at the
// end, so that subscribers catching up over the same bytes are sent the same frames.
void Fanout::catch_up(Subscription& s) {
  while (ready(s) && s.cursor < ring_.end()) {
    const uint64_t resumed = past_hole(std::max(s.cursor, ring_.start()));
    if (resumed != s.cursor) {
      if (metrics_ != nullptr) ++metrics_->gaps_total;
      s.sink->deliver(protocol::event_frame("shell.gap", channel_,
                                            {{"terminalId", terminal_id_}, {"from", s.cursor}, {"to", resumed}}));
      s.cursor = resumed;
      continue;
    }
    const uint64_t stop = next_hole(s.cursor);
    const uint64_t grid = (s.cursor / kMaxFrameBytes + 1) * kMaxFrameBytes;
    ring_.read(s.cursor, static_cast<size_t>(std::min(stop, grid) - s.cursor), &scratch_);
    size_t length = scratch_.size();
    if (grid < stop) {  // cut by the grid line: end on the last character boundary before it
      length = protocol::utf8_complete_prefix(scratch_);
      if (length == 0) {  // no character ends before the line: the one across it, alone
        ring_.read(s.cursor, static_cast<size_t>(std::min(stop, s.cursor + kMaxCharBytes) - s.cursor), &scratch_);
        length = protocol::utf8_complete_prefix(scratch_);
        if (length == 0) length = scratch_.size();  // not a character at all: as it is
      }
    }
    const std::string_view raw(scratch_.data(), length);
    s.sink->deliver(catch_up_frame(s.cursor, raw, s.encoding));
    s.cursor += length;
  }
  if (finished_ && !s.exit_sent && !s.paused && s.cursor == ring_.end()) {
    s.exit_sent = true;
    if (exit_frame_) s.sink->deliver(exit_frame_);
    for (const auto& trailer : trailers_) s.sink->deliver(trailer);
  }
}

// --- the source ----------------------------------------------------------------------------------

std::string Fanout::retained() const {
  std::string out;
  ring_.read(ring_.start(), static_cast<size_t>(ring_.end() - ring_.start()), &out);
  return out;
}

bool Fanout::any_may_hold() const {
  return std::any_of(subscriptions_.begin(), subscriptions_.end(), [](const Subscription& s) { return s.may_hold; });
}

bool Fanout::any_live() const {
  return std::any_of(subscriptions_.begin(), subscriptions_.end(), [&](const Subscription& s) { return live(s); });
}

SourceDecision Fanout::decide(uint64_t now_ms) const {
  SourceDecision decision;
  if (finished_) return decision;
  const bool any_live = this->any_live();
  for (const Subscription& s : subscriptions_) {
    if (!s.may_hold || live(s)) continue;
    if (s.paused) {
      // An explicit pause (end-to-end flow control) holds while nobody else takes output live.
      if (!any_live) decision.read = false;
      continue;
    }
    if (s.cursor < ring_.start()) continue;  // already left the ring: it gets a gap, holds nobody
    // Behind or full, still in the ring: it holds while nobody takes output live, or when the next
    // read (plus a character carried over) could push its next byte out of the ring ...
    const bool near_edge = s.cursor + ring_.capacity() < ring_.end() + read_budget_ + kMaxCharBytes;
    if (any_live && !near_edge) continue;
    // ... unless it stopped taking data for longer than its own pace allows.
    if (s.sink->stalled(now_ms)) continue;
    decision.read = false;
    decision.recheck = true;
    if (near_edge) decision.urgent = true;
  }
  return decision;
}

}  // namespace ptyhub::hub
