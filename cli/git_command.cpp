// `ptyhub git …`: see git_command.hpp.
#include "cli/git_command.hpp"

#include <unistd.h>

#include <cstdio>

#include "cli/exit_status.hpp"
#include "cli/json_fields.hpp"
#include "cli/progress_view.hpp"
#include "cli/terminal_session.hpp"

namespace ptyhub::cli {

namespace {

constexpr size_t kKeptOutput = 64 * 1024;  // the tail of git's output shown when it fails

// Follows one git operation's terminal: its output, progress and end.
class GitFollower {
 public:
  GitFollower(uv_loop_t* loop, ClientSettings settings, GitSpec spec)
      : spec_(std::move(spec)),
        view_(isatty(STDERR_FILENO) != 0),
        client_(loop, std::move(settings),
                Client::Hooks{[this](bool resumed) { on_ready(resumed); }, [this](const json& m) { on_event(m); }, {}}) {
    // Operations whose output is the point print it; the others show progress and print it on failure.
    print_output_ = spec_.operation == "status" || spec_.operation == "log" || spec_.operation == "diff";
    terminal_id_ = spec_.terminal_id;
  }

  Client& client() { return client_; }

 private:
  // Authenticated: start the operation, or subscribe (again) to its terminal.
  void on_ready(bool resumed) {
    if (resumed) {
      resumed_ = true;
      subscribe();
      return;
    }
    if (spec_.operation == "watch") {
      subscribe();
      return;
    }
    json data = {{"operation", spec_.operation}, {"repo", spec_.repo}};
    if (!spec_.args.empty()) data["args"] = spec_.args;
    if (!spec_.url.empty()) data["url"] = spec_.url;
    client_.request("git.operation.start", std::move(data), [this](const json& reply) { on_started(reply); });
  }

  // git.operation.started, or an error.
  void on_started(const json& reply) {
    if (text(reply, "type") == "error") {
      client_.finish_with_error(reply, "cannot start git " + spec_.operation);
      return;
    }
    const json& data = field(reply, "data");
    operation_id_ = text(data, "operationId");
    terminal_id_ = text(data, "terminalId");
    if (!spec_.follow) {
      std::printf("operation %s terminal %s\n", operation_id_.c_str(), terminal_id_.c_str());
      std::fflush(stdout);
      client_.finish(exit_status::kOk);
      return;
    }
    client_.set_resume(true);  // the starter is subscribed from offset 0 already
  }

  // Subscribes to the terminal from the first byte not seen yet.
  void subscribe() {
    client_.set_resume(true);
    json data = {{"channel", "shell:terminal:" + terminal_id_}};
    if (next_ > 0) data["since"] = next_;
    client_.request("subscribe", std::move(data), [this](const json& reply) {
      if (text(reply, "type") != "error") return;
      if (text(field(reply, "data"), "code") == "not_found") {
        client_.finish(exit_status::kNotFound, "no terminal " + terminal_id_ + " (or you may not read it)");
      } else {
        client_.finish_with_error(reply, "cannot follow terminal " + terminal_id_);
      }
    });
  }

  void on_event(const json& message) {
    if (terminal_id_.empty() || !message.contains("data") || !message["data"].is_object()) return;
    const std::string type = text(message, "type");
    const json& data = message["data"];
    const bool ours = text(message, "channel") == "shell:terminal:" + terminal_id_;
    if (!ours) return;
    if (type == "shell.output") on_output(data);
    else if (type == "git.operation.progress") on_progress(data);
    else if (type == "shell.exit") on_exit(data);
    else if (type == "git.operation.completed") on_completed(data);
  }

  void on_output(const json& data) {
    const uint64_t next = count(data, "next");
    if (next <= next_) return;  // seen before a resume
    next_ = next;
    const std::string chunk = text(data, "data");
    if (print_output_) {
      std::fwrite(chunk.data(), 1, chunk.size(), stdout);
      std::fflush(stdout);
      return;
    }
    output_ += chunk;
    if (output_.size() > 2 * kKeptOutput) output_.erase(0, output_.size() - kKeptOutput);
  }

  void on_progress(const json& data) {
    GitProgress progress;
    progress.phase = text(data, "phase");
    progress.current = count(data, "current");
    if (data.contains("total") && data["total"].is_number_unsigned()) progress.total = data["total"].get<uint64_t>();
    if (data.contains("percent") && data["percent"].is_number()) progress.percent = data["percent"].get<int>();
    show(view_.update(progress));
  }

  void on_exit(const json& data) {
    exit_status_ = exit_status_of(data);
    // The completion follows; a watcher or a run resumed after a live upgrade (no git events any more) ends here.
    if (spec_.operation == "watch" || resumed_) end(*exit_status_, "");
  }

  void on_completed(const json& data) {
    const int status = data.contains("exitCode") && data["exitCode"].is_number_integer() ? data["exitCode"].get<int>()
                                                                                         : exit_status_.value_or(1);
    end(status, text(data, "status"));
  }

  // Ends the run: the open bar line finished, and on failure what git said.
  void end(int status, const std::string& result) {
    show(view_.finish());
    if (status != 0) {
      if (!print_output_ && !output_.empty()) std::fwrite(output_.data(), 1, output_.size(), stderr);
      client_.finish(status, "git " + spec_.operation + " " + (result.empty() ? "failed" : result) + " (exit status " +
                                 std::to_string(status) + ")");
      return;
    }
    client_.finish(status);
  }

  static void show(const std::string& text) {
    if (text.empty()) return;
    std::fwrite(text.data(), 1, text.size(), stderr);
    std::fflush(stderr);
  }

  GitSpec spec_;
  ProgressView view_;
  Client client_;
  bool print_output_ = false;
  bool resumed_ = false;
  std::string operation_id_;
  std::string terminal_id_;
  uint64_t next_ = 0;
  std::string output_;
  std::optional<int> exit_status_;
};

}  // namespace

int run_git(EventLoop& loop, ClientSettings settings, const GitSpec& spec) {
  GitFollower follower(loop.get(), std::move(settings), spec);
  follower.client().start();
  return run_command(loop, follower.client(), {});
}

}  // namespace ptyhub::cli
