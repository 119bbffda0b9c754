// OutputRing: the retained output of one terminal, raw bytes addressed by their stream offset.
//
// Holds the last `capacity` bytes published (offsets [start(), end())). Memory is allocated as output
// arrives (doubling up to the capacity), so an idle terminal costs next to nothing. Owned by its
// Terminal; loop thread only. Pure: no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/shared_bytes.hpp"

namespace ptyhub::hub {

class OutputRing {
 public:
  explicit OutputRing(size_t capacity) : capacity_(capacity) {}

  void append(std::string_view bytes);
  // Advances end() by `count` bytes that are not known (a hole in a mirrored stream): the ring holds
  // zero bytes in their place, or nothing at all when `count` is at least the capacity.
  void skip(uint64_t count);
  uint64_t start() const { return end_ - size_; }
  uint64_t end() const { return end_; }
  // Copies up to `max` bytes from offset `from` (start() <= from <= end()) into `out` (replacing it).
  void read(uint64_t from, size_t max, std::string* out) const;
  size_t allocated() const { return buffer_.size(); }
  // The held bytes, oldest first: the first piece, then the second (empty when they are contiguous).
  std::pair<std::string_view, std::string_view> pieces() const;
  size_t size() const { return size_; }
  // An empty ring takes `bytes` (which end at offset `end`) as its contents without copying them (a
  // live upgrade's restore: they may be borrowed from the mapped state); only the last capacity() bytes
  // are kept.
  void adopt(uint64_t end, SharedBytes&& bytes);
  // Whether the held bytes are borrowed; own() copies them into memory of the ring's own.
  bool borrowed() const { return buffer_.borrowed(); }
  void own() { buffer_.own(); }
  size_t capacity() const { return capacity_; }

 private:
  void grow_for(size_t extra);
  void read_into(char* out) const;  // the held bytes, oldest first

  size_t capacity_;
  SharedBytes buffer_;  // circular once full; data ends at head_
  size_t head_ = 0;           // index where the next byte goes
  size_t size_ = 0;           // bytes held
  uint64_t end_ = 0;          // offset of the next byte
};

}  // namespace ptyhub::hub
