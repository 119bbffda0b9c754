// Frame: one encoded outbound message, built once and shared by every connection that sends it.
//
// The payload (a JSON text) never changes after construction. In front of it the buffer keeps
// kFrameHeadroom bytes that the server edge may use as scratch space for the WebSocket header, so a
// frame is sent without copying. Frames are handed around as shared_ptr on the loop thread only.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace ptyhub::protocol {

inline constexpr size_t kFrameHeadroom = 16;  // >= LWS_PRE; checked by the edge at compile time

class Frame {
 public:
  explicit Frame(std::string_view payload) : buffer_(kFrameHeadroom + payload.size(), '\0') {
    payload.copy(buffer_.data() + kFrameHeadroom, payload.size());
  }
  std::string_view payload() const { return std::string_view(buffer_).substr(kFrameHeadroom); }
  size_t size() const { return buffer_.size() - kFrameHeadroom; }
  // Start of the payload in the mutable buffer; the kFrameHeadroom bytes before it are scratch.
  unsigned char* send_pointer() { return reinterpret_cast<unsigned char*>(buffer_.data()) + kFrameHeadroom; }

 private:
  std::string buffer_;
};

using SharedFrame = std::shared_ptr<Frame>;

inline SharedFrame make_frame(std::string_view payload) { return std::make_shared<Frame>(payload); }

}  // namespace ptyhub::protocol
