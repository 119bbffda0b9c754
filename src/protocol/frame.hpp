// Frame: one encoded outbound message, built once and shared by every connection that sends it.
//
// The payload (a JSON text) never changes after construction. In front of it the buffer keeps
// kFrameHeadroom bytes that the server edge may use as scratch space for the WebSocket header, so a
// frame is sent without copying. Frames are handed around as shared_ptr on the loop thread only.
#pragma once

#include <cstddef>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>

namespace ptyhub::protocol {

inline constexpr size_t kFrameHeadroom = 16;  // >= LWS_PRE; checked by the edge at compile time

class Frame {
 public:
  // The pieces, concatenated, are the payload (one allocation, no zero-filling).
  explicit Frame(std::initializer_list<std::string_view> pieces) {
    for (std::string_view piece : pieces) size_ += piece.size();
    buffer_ = std::make_unique_for_overwrite<char[]>(kFrameHeadroom + size_);
    char* out = buffer_.get() + kFrameHeadroom;
    for (std::string_view piece : pieces) {
      if (!piece.empty()) std::memcpy(out, piece.data(), piece.size());
      out += piece.size();
    }
  }
  explicit Frame(std::string_view payload) : Frame({payload}) {}

  std::string_view payload() const { return {buffer_.get() + kFrameHeadroom, size_}; }
  size_t size() const { return size_; }
  // Start of the payload in the mutable buffer; the kFrameHeadroom bytes before it are scratch.
  unsigned char* send_pointer() { return reinterpret_cast<unsigned char*>(buffer_.get()) + kFrameHeadroom; }

 private:
  std::unique_ptr<char[]> buffer_;
  size_t size_ = 0;
};

using SharedFrame = std::shared_ptr<Frame>;

inline SharedFrame make_frame(std::string_view payload) { return std::make_shared<Frame>(payload); }

}  // namespace ptyhub::protocol
