// Observers: a list of callbacks that any number of parties add to and remove from by the id they got,
// so that a second observer never silently replaces the first. Loop thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

namespace ptyhub::hub {

using ObserverId = uint64_t;

template <typename Signature>
class Observers {
 public:
  using Callback = std::function<Signature>;

  ObserverId add(Callback callback) {
    entries_.push_back({++last_id_, std::move(callback)});
    return last_id_;
  }
  void remove(ObserverId id) {
    std::erase_if(entries_, [id](const Entry& entry) { return entry.id == id; });
  }
  bool empty() const { return entries_.empty(); }
  // Calls every callback with `args`, on a copy of the list, so a callback may add or remove observers.
  template <typename... Args>
  void notify(Args&&... args) const {
    const std::vector<Entry> entries = entries_;
    for (const Entry& entry : entries) entry.callback(args...);
  }
  // Each callback's result, in the order they were added (e.g. frames to send).
  template <typename Result, typename... Args>
  std::vector<Result> collect(Args&&... args) const {
    std::vector<Result> results;
    for (const Entry& entry : entries_) results.push_back(entry.callback(args...));
    return results;
  }

 private:
  struct Entry {
    ObserverId id;
    Callback callback;
  };
  std::vector<Entry> entries_;
  ObserverId last_id_ = 0;
};

}  // namespace ptyhub::hub
