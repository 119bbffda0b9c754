// SharedBytes: a writable run of bytes that is either owned (a std::string) or borrowed from a shared
// keeper (a memory mapping that lives while any borrower does). A live upgrade's rings are borrowed from the
// mapped state, so the new image reads its PTYs again without copying them; own() copies them out later
// and lets the mapping go. Movable; a copy is owned; one thread.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace ptyhub {

class SharedBytes {
 public:
  SharedBytes() = default;
  SharedBytes(std::string owned) : owned_(std::move(owned)) {}  // NOLINT: implicit, a string is owned bytes
  SharedBytes(const char* text) : owned_(text) {}                // NOLINT
  // `size` bytes at `data`, valid (and writable) while `keeper` lives.
  SharedBytes(std::shared_ptr<void> keeper, char* data, size_t size)
      : keeper_(std::move(keeper)), borrowed_(data), borrowed_size_(size) {}
  SharedBytes(SharedBytes&&) noexcept = default;
  SharedBytes& operator=(SharedBytes&&) noexcept = default;
  // A copy owns its bytes (two borrowers of one place would write over each other).
  SharedBytes(const SharedBytes& other) : owned_(other.view()) {}
  SharedBytes& operator=(const SharedBytes& other) {
    if (this != &other) *this = SharedBytes(std::string(other.view()));
    return *this;
  }

  char* data() { return keeper_ ? borrowed_ : owned_.data(); }
  const char* data() const { return keeper_ ? borrowed_ : owned_.data(); }
  size_t size() const { return keeper_ ? borrowed_size_ : owned_.size(); }
  bool empty() const { return size() == 0; }
  char& operator[](size_t at) { return data()[at]; }
  char operator[](size_t at) const { return data()[at]; }
  std::string_view view() const { return {data(), size()}; }
  bool borrowed() const { return keeper_ != nullptr; }
  // Copies borrowed bytes into memory of its own and drops the keeper; nothing to do when owned.
  void own() {
    if (!keeper_) return;
    owned_.assign(borrowed_, borrowed_size_);
    keeper_.reset();
    borrowed_ = nullptr;
    borrowed_size_ = 0;
  }
  void clear() { *this = SharedBytes(); }
  friend bool operator==(const SharedBytes& a, std::string_view b) { return a.view() == b; }

 private:
  std::string owned_;
  std::shared_ptr<void> keeper_;
  char* borrowed_ = nullptr;
  size_t borrowed_size_ = 0;
};

}  // namespace ptyhub
