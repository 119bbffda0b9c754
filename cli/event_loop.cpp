// EventLoop and run_command(): see event_loop.hpp.
#include "cli/event_loop.hpp"

#include "cli/client.hpp"
#include "cli/exit_status.hpp"

namespace ptyhub::cli {

EventLoop::~EventLoop() {
  uv_run(&loop_, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop_) != 0) {
    // A handle someone forgot: close whatever is left so the loop can be closed.
    uv_walk(&loop_, [](uv_handle_t* handle, void*) { if (!uv_is_closing(handle)) uv_close(handle, nullptr); }, nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
  }
}

int run_command(EventLoop& loop, Client& client, const std::function<void()>& close_own_handles) {
  if (!client.finished()) uv_run(loop.get(), UV_RUN_DEFAULT);
  else uv_run(loop.get(), UV_RUN_NOWAIT);  // lws finishes setting up on the loop's first turn, even for a teardown
  if (!client.finished()) client.finish(exit_status::kConnectionLost, "nothing left to wait for before the command ended");
  if (close_own_handles) close_own_handles();
  if (client.begin_close()) uv_run(loop.get(), UV_RUN_DEFAULT);  // the close frame out, the peer's answer in
  client.shutdown();
  uv_run(loop.get(), UV_RUN_DEFAULT);
  return client.status();
}

}  // namespace ptyhub::cli
