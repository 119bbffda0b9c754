// OutputRing: a growable circular byte buffer addressed by stream offsets.
#include "src/hub/output_ring.hpp"

#include <algorithm>
#include <cstring>

namespace ptyhub::hub {

void OutputRing::grow_for(size_t extra) {
  if (buffer_.size() >= capacity_ || size_ + extra <= buffer_.size()) return;
  size_t target = std::max<size_t>(buffer_.size() * 2, 4096);
  while (target < size_ + extra) target *= 2;
  target = std::min(target, capacity_);
  // Unroll the held bytes to the front of the new buffer.
  std::string grown(target, '\0');
  read_into(grown.data());
  buffer_ = std::move(grown);
  head_ = size_ % buffer_.size();
}

void OutputRing::append(std::string_view bytes) {
  end_ += bytes.size();
  if (capacity_ == 0 || bytes.empty()) return;
  if (bytes.size() >= capacity_) {
    bytes = bytes.substr(bytes.size() - capacity_);
    if (buffer_.size() != capacity_) buffer_ = std::string(capacity_, '\0');
    std::memcpy(buffer_.data(), bytes.data(), capacity_);
    head_ = 0;
    size_ = capacity_;
    return;
  }
  grow_for(bytes.size());
  const size_t cap = buffer_.size();
  const size_t first = std::min(bytes.size(), cap - head_);
  std::memcpy(buffer_.data() + head_, bytes.data(), first);
  std::memcpy(buffer_.data(), bytes.data() + first, bytes.size() - first);
  head_ = (head_ + bytes.size()) % cap;
  size_ = std::min(size_ + bytes.size(), cap);
}

void OutputRing::adopt(uint64_t end, SharedBytes&& bytes) {
  if (bytes.size() > capacity_) bytes = std::string(bytes.view().substr(bytes.size() - capacity_));
  end_ = end;
  size_ = bytes.size();
  buffer_ = std::move(bytes);
  head_ = buffer_.empty() ? 0 : size_ % buffer_.size();
}

void OutputRing::skip(uint64_t count) {
  if (count >= capacity_) {
    end_ += count;
    head_ = 0;
    size_ = 0;
    return;
  }
  static constexpr char kZeros[4096] = {};
  while (count > 0) {
    const size_t piece = static_cast<size_t>(std::min<uint64_t>(count, sizeof kZeros));
    append(std::string_view(kZeros, piece));
    count -= piece;
  }
}

void OutputRing::read_into(char* out) const {
  const auto [first, second] = pieces();
  if (!first.empty()) std::memcpy(out, first.data(), first.size());
  if (!second.empty()) std::memcpy(out + first.size(), second.data(), second.size());
}

std::pair<std::string_view, std::string_view> OutputRing::pieces() const {
  if (size_ == 0) return {};
  const size_t cap = buffer_.size();
  const size_t tail = (head_ + cap - size_) % cap;
  const size_t first = std::min(size_, cap - tail);
  return {std::string_view(buffer_.data() + tail, first), std::string_view(buffer_.data(), size_ - first)};
}

void OutputRing::read(uint64_t from, size_t max, std::string* out) const {
  out->clear();
  if (from < start() || from >= end_) return;
  const size_t skip = static_cast<size_t>(from - start());
  const size_t count = std::min<size_t>(max, size_ - skip);
  out->resize(count);
  const size_t cap = buffer_.size();
  const size_t tail = (head_ + cap - size_) % cap;
  const size_t begin = (tail + skip) % cap;
  const size_t first = std::min(count, cap - begin);
  std::memcpy(out->data(), buffer_.data() + begin, first);
  std::memcpy(out->data() + first, buffer_.data(), count - first);
}

}  // namespace ptyhub::hub
