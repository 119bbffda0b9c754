// Owning wrapper for a libuv handle.
//
// A UvHandle<T> owns one heap-allocated uv handle. libuv forbids freeing a handle's memory before its
// close callback runs, so the destructor only calls uv_close(); the memory is released in the close
// callback. The handle therefore never moves while live, and the owner may be destroyed at any time
// (on the loop thread) without waiting for the loop. All calls happen on the loop thread.
#pragma once

#include <uv.h>

namespace ptyhub {

template <typename T>
class UvHandle {
 public:
  UvHandle() : handle_(new T{}) {}
  ~UvHandle() { close(); }
  UvHandle(const UvHandle&) = delete;
  UvHandle& operator=(const UvHandle&) = delete;

  T* get() const { return handle_; }
  uv_handle_t* as_handle() const { return reinterpret_cast<uv_handle_t*>(handle_); }
  // True once the handle was initialised with uv_*_init (set by the owner via mark_initialised).
  bool initialised() const { return initialised_; }
  void mark_initialised() { initialised_ = true; }
  // Takes the result of this handle's uv_*_init call: when it succeeded (0) the handle is initialised
  // and its data pointer set, and true is returned; otherwise it stays uninitialised.
  bool adopt_init(int rc, void* data) {
    if (rc != 0) return false;
    initialised_ = true;
    handle_->data = data;
    return true;
  }

  // Closes the handle (idempotent). Its data pointer is cleared so no callback reaches the owner.
  void close() {
    if (handle_ == nullptr) return;
    T* h = handle_;
    handle_ = nullptr;
    if (!initialised_) {
      delete h;
      return;
    }
    auto* base = reinterpret_cast<uv_handle_t*>(h);
    base->data = nullptr;
    if (uv_is_closing(base)) return;  // someone else closes it; cannot happen with sole ownership
    uv_close(base, [](uv_handle_t* closed) { delete reinterpret_cast<T*>(closed); });
  }

 private:
  T* handle_;
  bool initialised_ = false;
};

}  // namespace ptyhub
