// EventLoop: owns the one libuv loop of a ptyhub run, and run_command(), which drives a command's Client
// on it from start to a clean end. Loop thread only.
//
// Ending cleanly (LWS-NOTES §4): the loop runs until the command finishes (uv_stop); then the command
// closes its own handles, the Client closes its connection with a close frame (waiting at most 500 ms for
// the answer) and tears the lws context down, and the loop runs again until every
// handle is closed. The EventLoop's destructor — after the command and its Client are gone, which makes
// lws's second context destroy — runs the loop once more and closes it.
#pragma once

#include <functional>

#include <uv.h>

namespace ptyhub::cli {

class Client;

class EventLoop {
 public:
  EventLoop() { uv_loop_init(&loop_); }
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  uv_loop_t* get() { return &loop_; }

 private:
  uv_loop_t loop_;
};

// Runs the loop until `client` finished, then `close_own_handles()`, the client's shutdown and the drain.
// Returns the client's exit status.
int run_command(EventLoop& loop, Client& client, const std::function<void()>& close_own_handles);

}  // namespace ptyhub::cli
