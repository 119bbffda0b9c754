// Fifo<T>: a first-in, first-out queue that allocates nothing until something is pushed.
//
// std::deque allocates a 512-byte block and its map as soon as it is constructed (libstdc++), which an
// idle connection or terminal paid for every queue it owns. Fifo keeps its elements in a vector from a
// head index; popping moves the head, and the vector is compacted when the head passes half of it (each
// element moves at most once per pass, so pushes and pops stay O(1) amortised) and emptied when the last
// element leaves, keeping its capacity for the next burst. Iteration goes oldest first.
#pragma once

#include <cstddef>
#include <iterator>
#include <utility>
#include <vector>

namespace ptyhub {

template <typename T>
class Fifo {
 public:
  using const_iterator = typename std::vector<T>::const_iterator;

  bool empty() const { return head_ == items_.size(); }
  size_t size() const { return items_.size() - head_; }

  T& front() { return items_[head_]; }
  const T& front() const { return items_[head_]; }
  T& back() { return items_.back(); }

  void push_back(T value) { items_.push_back(std::move(value)); }
  template <typename... Args>
  T& emplace_back(Args&&... args) {
    return items_.emplace_back(std::forward<Args>(args)...);
  }

  void pop_front() {
    items_[head_] = T();  // releases what the element holds now, not at the next compaction
    ++head_;
    if (head_ == items_.size()) {
      clear();
    } else if (head_ >= 32 && head_ * 2 >= items_.size()) {
      items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
  }

  void clear() {
    items_.clear();
    head_ = 0;
  }

  const_iterator begin() const { return items_.begin() + static_cast<std::ptrdiff_t>(head_); }
  const_iterator end() const { return items_.end(); }

 private:
  std::vector<T> items_;
  size_t head_ = 0;
};

}  // namespace ptyhub
