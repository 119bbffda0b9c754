// MemoryMap: sole owner of one mmap(2) region; unmaps it when destroyed. Movable, not copyable.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <utility>

namespace ptyhub {

class MemoryMap {
 public:
  MemoryMap() = default;
  // Maps `size` bytes of `fd` from offset 0; check with operator bool (errno says why not).
  MemoryMap(int fd, size_t size, int prot, int flags) {
    void* at = size == 0 ? MAP_FAILED : ::mmap(nullptr, size, prot, flags, fd, 0);
    if (at != MAP_FAILED) {
      data_ = static_cast<char*>(at);
      size_ = size;
    }
  }
  ~MemoryMap() { reset(); }
  MemoryMap(MemoryMap&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  MemoryMap& operator=(MemoryMap&& other) noexcept {
    if (this != &other) {
      reset();
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  MemoryMap(const MemoryMap&) = delete;
  MemoryMap& operator=(const MemoryMap&) = delete;

  explicit operator bool() const { return data_ != nullptr; }
  char* data() const { return data_; }
  size_t size() const { return size_; }
  void reset() {
    if (data_ != nullptr) ::munmap(data_, size_);
    data_ = nullptr;
    size_ = 0;
  }

 private:
  char* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace ptyhub
