// BinaryProbe: asks the binary a live upgrade would execute whether it reads this image's state.
#include "src/upgrade/binary_probe.hpp"

#include <csignal>
#include <sstream>

namespace ptyhub::upgrade {

bool probe_accepts(const std::string& output, uint32_t version) {
  const size_t at = output.find(kProbeAnswer);
  if (at == std::string::npos) return false;
  const size_t end = output.find_first_of("\r\n", at);
  std::istringstream versions(output.substr(at + std::string(kProbeAnswer).size(),
                                            end == std::string::npos ? std::string::npos : end - at - std::string(kProbeAnswer).size()));
  std::string word;
  while (versions >> word) {
    if (word == std::to_string(version)) return true;
  }
  return false;
}

std::unique_ptr<BinaryProbe> BinaryProbe::start(uv_loop_t* loop, const std::string& binary,
                                                const std::vector<std::string>& args, std::vector<std::string> env,
                                                uint32_t version, uint64_t timeout_ms, Done done, std::string* error) {
  std::unique_ptr<BinaryProbe> probe(new BinaryProbe());
  probe->version_ = version;
  probe->done_ = std::move(done);
  if (!probe->timer_.adopt_init(uv_timer_init(loop, probe->timer_.get()), probe.get())) {
    *error = "cannot set up the probe's timer";
    return nullptr;
  }
  pty::SpawnOptions options;
  options.argv = {binary, "--handoff-probe"};
  options.argv.insert(options.argv.end(), args.begin(), args.end());
  options.cwd = "/";
  options.env = std::move(env);
  options.cols = 200;
  options.drain_grace_ms = 500;
  BinaryProbe* raw = probe.get();
  pty::PtyProcess::Callbacks callbacks;
  callbacks.on_output = [raw](std::string_view bytes) {
    if (raw->output_.size() < kMaxOutput) raw->output_.append(bytes.substr(0, kMaxOutput - raw->output_.size()));
  };
  callbacks.on_exit = [raw](pty::ExitStatus status) { raw->on_exit(status); };
  pty::SpawnError spawn_error;
  probe->process_ = pty::PtyProcess::spawn(loop, options, std::move(callbacks), &spawn_error);
  if (!probe->process_) {
    *error = spawn_error.message;
    return nullptr;
  }
  uv_timer_start(
      probe->timer_.get(),
      [](uv_timer_t* handle) {
        if (auto* self = static_cast<BinaryProbe*>(handle->data)) self->on_timeout();
      },
      timeout_ms, 0);
  return probe;
}

BinaryProbe::~BinaryProbe() = default;  // a probe still running is killed and reaped by ~PtyProcess

void BinaryProbe::on_timeout() {
  timed_out_ = true;
  if (process_) process_->signal_session(SIGKILL, 0);  // on_exit follows
}

void BinaryProbe::on_exit(pty::ExitStatus status) {
  uv_timer_stop(timer_.get());
  // Its first line, for the log.
  std::string said = output_.substr(0, output_.find_first_of("\r\n"));
  if (said.size() > 200) said.resize(200);
  std::string why;
  if (timed_out_) why = "it did not answer in time";
  else if (status.signal != 0) why = std::string("it was killed by ") + pty::signal_name(status.signal);
  else if (status.exit_code != 0) why = "it exited with status " + std::to_string(status.exit_code);
  else if (!probe_accepts(output_, version_)) why = "it does not read state version " + std::to_string(version_);
  if (!why.empty() && !said.empty()) why += " (it said: " + said + ")";
  Done done = std::move(done_);
  if (done) done(why.empty(), why);  // may destroy this object: nothing after
}

}  // namespace ptyhub::upgrade
