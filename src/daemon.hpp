// Daemon: the process — its libuv loop, signals, the hub, the server edge — and the ordered start and
// shutdown of docs/protocol.md §7.
//
// Under systemd (systemd/README.md) it reports to the service manager: READY=1 once listening, STATUS= with
// the connection and terminal counts, RELOADING=1/READY=1 around a SIGHUP reload, STOPPING=1 at shutdown and
// WATCHDOG=1 from the loop; it serves on passed sockets (LISTEN_FDS) and reads credentials. It is a child
// subreaper: processes its terminals leave behind are reaped and ended with their terminal (OrphanReaper).
//
// Owns the loop and everything on it. Shutdown: stop accepting, SIGHUP every terminal (SIGKILL after
// kill_grace), once all exited close every WebSocket with 1001, then tear lws down outside its
// callbacks, close every handle and prove the loop empty (uv_loop_close() == 0). Loop thread only.
#pragma once

#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "auth/jwt.hpp"
#include "core/loop_delay.hpp"
#include "core/uv_handle.hpp"
#include "src/cluster/cluster.hpp"
#include "src/hub/git_operations.hpp"
#include "src/hub/hub.hpp"
#include "src/hub/metrics.hpp"
#include "src/orphan_reaper.hpp"
#include "src/server/ws_server.hpp"
#include "src/systemd/notify.hpp"
#include "src/systemd/watchdog.hpp"
#include "src/upgrade/binary_probe.hpp"

namespace ptyhub {

struct Config;  // src/config.hpp: only this file's .cpp sees every setting

class Daemon {
 public:
  // `args` is the command line the config came from: SIGHUP reads it and the config file again.
  explicit Daemon(const Config& config, std::vector<std::string> args = {});
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Runs until shutdown; returns the process exit code.
  int run();

 private:
  bool start(std::string* error);
  bool watch_signal(UvHandle<uv_signal_t>& handle, int signal);
  void on_signal(int signal);
  struct KeyReload;
  // SIGHUP: reads the settings (command line and config file), the secret and the public keys again on a
  // worker thread, then swaps the verifier and applies the reloadable settings; a failure keeps it all.
  void reload_keys();
  void finish_reload(KeyReload& job);
  void begin_shutdown();
  // Live upgrade (docs/upgrade.md): SIGUSR2 closes the clients with 1012, then exec_upgrade() hands every
  // terminal and listener to the binary now at self_path_ in this same process. take_handoff() is the
  // new image's side, at start.
  void start_upgrade();
  // The probe's answer (upgrade::BinaryProbe): hand over, or abort with nothing changed.
  void on_probe(bool ok, const std::string& why);
  void hand_over();
  void abort_upgrade(const std::string& why);
  void exec_upgrade();
  // pid_file and FILE.upgrade (src/pid_file.hpp); nothing without pid_file.
  void write_pid_file();
  void write_upgrade_result(const std::string& line);
  void take_handoff(const char* fd_text, std::vector<UniqueFd>* listeners);
  void close_connections();
  void schedule_teardown();
  void teardown();
  void release_everything();
  // "N connections, M terminals" for STATUS=.
  std::string status_text() const;
  void publish_status(bool force);
  void notify(const std::string& state);

  // Applies the settings in config_ to the components (SIGHUP).
  void apply_settings();

  std::unique_ptr<Config> config_;  // the settings in effect
  std::vector<std::string> args_;
  uv_loop_t loop_{};
  bool loop_initialised_ = false;
  hub::Metrics metrics_;
  std::unique_ptr<auth::JwtVerifier> verifier_;
  std::unique_ptr<hub::Hub> hub_;
  std::unique_ptr<hub::GitOperations> git_;
  std::unique_ptr<server::WsServer> server_;
  std::unique_ptr<cluster::Cluster> cluster_;  // only with redis_url
  systemd::Notifier notifier_;
  std::unique_ptr<systemd::Watchdog> watchdog_;
  std::unique_ptr<OrphanReaper> reaper_;
  UvHandle<uv_timer_t> status_timer_;
  std::string last_status_;
  UvHandle<uv_signal_t> sigterm_;
  UvHandle<uv_signal_t> sigint_;
  UvHandle<uv_signal_t> sighup_;
  UvHandle<uv_timer_t> shutdown_deadline_;
  UvHandle<uv_timer_t> teardown_timer_;
  // How long the loop was blocked at most during a shutdown (logged when it ends).
  std::unique_ptr<LoopDelayProbe> shutdown_probe_;
  uint64_t shutdown_started_ns_ = 0;
  // The stages of shutdown, in order; teardown also follows a failed start.
  enum class Phase { serving, hanging_up, closing_connections, torn_down };
  Phase phase_ = Phase::serving;
  bool reload_in_flight_ = false;
  bool upgrading_ = false;
  std::string self_path_;  // this binary, resolved at start (a package may replace the file later)
  UvHandle<uv_signal_t> sigusr2_;
  UvHandle<uv_timer_t> upgrade_timer_;
  std::unique_ptr<upgrade::BinaryProbe> probe_;  // the last probe of the binary at self_path_
  uint64_t upgrade_signalled_ns_ = 0;            // uv_hrtime() of the SIGUSR2 being carried out
  std::string handoff_result_;                   // the new image: how the handoff went, for FILE.upgrade
  // The new image: restored rings still borrowed from the mapped state, owned a few at a time after the
  // PTYs are read again (the mapping goes when the last one is owned).
  UvHandle<uv_timer_t> own_rings_timer_;
  std::vector<std::string> borrowed_rings_;
  uint64_t own_rings_started_ns_ = 0;
  void own_borrowed_rings();
};

// The command line `ptyhubd [options]`, read with the config file: what main() is to do.
struct Invocation {
  enum class Action { run, help, version, usage_error };
  Action action = Action::usage_error;
  std::string text;                // help: the --help text; usage_error: the message
  std::unique_ptr<Daemon> daemon;  // run: the daemon with these settings
};
Invocation read_command_line(const std::vector<std::string>& args);

// `ptyhubd token`: the jwt_secret_file named by the settings in `args` ("" when none). False with `error` when
// the settings do not load.
bool token_secret_file(const std::vector<std::string>& args, std::string* path, std::string* error);
// `ptyhubd upgrade`: the pid_file named by the settings in `args` ("" when none).
bool configured_pid_file(const std::vector<std::string>& args, std::string* path, std::string* error);

}  // namespace ptyhub
