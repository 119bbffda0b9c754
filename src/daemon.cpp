// Daemon: start, signals and shutdown order.
#include "src/daemon.hpp"

#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <optional>
#include <vector>

#include "core/log.hpp"
#include "src/config.hpp"
#include "src/key_loader.hpp"
#include "src/protocol/envelope.hpp"
#include "src/systemd/credentials.hpp"
#include "src/systemd/socket_activation.hpp"
#include "src/pid_file.hpp"
#include "src/upgrade/hub_state.hpp"

namespace ptyhub {
namespace {

// ---- the settings each component takes, from the config (durations in milliseconds from here on) ----

hub::HubLimits hub_limits(const Config& config) {
  hub::HubLimits limits;
  limits.max_terminals = config.max_terminals;
  limits.max_terminals_per_user = config.max_terminals_per_user;
  limits.shell = config.shell;
  limits.home = config.home;
  limits.exited_retention_ms = to_millis(config.exited_retention);
  limits.terminal.ring_bytes = config.ring_buffer_bytes;
  limits.terminal.snapshots = config.snapshots;
  limits.terminal.snapshot_scrollback = config.snapshot_scrollback;
  limits.terminal.detached_timeout_ms = to_millis(config.detached_timeout);
  limits.terminal.idle_timeout_ms = to_millis(config.idle_timeout);
  limits.terminal.max_lifetime_ms = to_millis(config.max_lifetime);
  limits.terminal.kill_grace_ms = to_millis(config.kill_grace);
  return limits;
}

hub::GitLimits git_limits(const Config& config) {
  hub::GitLimits limits;
  limits.repos_root = config.repos_root;
  limits.allowed_protocols = config.git_allowed_protocols;
  limits.max_operations = config.max_git_operations;
  limits.max_operations_per_user = config.max_git_operations_per_user;
  limits.timeout_ms = to_millis(config.git_timeout);
  limits.kill_grace_ms = to_millis(config.kill_grace);
  return limits;
}

server::EdgeSettings edge_settings(const Config& config) {
  server::EdgeSettings settings;
  for (const ListenAddress& address : config.listen) {
    settings.listen.push_back({address.unix_socket, address.host, address.port, address.path});
  }
  settings.tls_cert = config.tls_cert;
  settings.tls_key = config.tls_key;
  settings.tls_client_ca = config.tls_client_ca;
  settings.ping_interval_ms = to_millis(config.ping_interval);
  settings.max_message = config.max_message;
  settings.client_queue_limit = config.client_queue_limit;
  settings.max_connections = config.max_connections;
  settings.max_connections_per_ip = config.max_connections_per_ip;
  settings.auth_failures_per_ip = config.auth_failures_per_ip;
  settings.allowed_origin = config.allowed_origin;
  settings.frame_ancestors = config.frame_ancestors;
  settings.base_path = config.base_path;
  settings.limit_loopback = config.limit_loopback;
  std::string error;
  if (!settings.trusted_proxies.parse(config.trusted_proxy, &error)) log::error(error);  // checked when loaded
  settings.session.auth_timeout_ms = to_millis(config.auth_timeout);
  settings.session.kill_grace_ms = to_millis(config.kill_grace);
  return settings;
}

// Cluster mode's settings (docs/cluster.md); false with `error` for a bad redis_url or node_id.
bool cluster_settings(const Config& config, cluster::ClusterSettings* out, std::string* error) {
  cluster::ClusterSettings settings;
  if (!cluster::parse_redis_url(config.redis_url, &settings.redis, error)) return false;
  settings.node_id = config.node_id;
  if (settings.node_id.empty()) {
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') {
      *error = "node_id: not set, and the host name is not available";
      return false;
    }
    settings.node_id = host;
  }
  const bool plain = settings.node_id.size() <= 64 &&
                     std::all_of(settings.node_id.begin(), settings.node_id.end(), [](char c) {
                       return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                              c == '.' || c == '_';
                     });
  if (!plain) {
    *error = "node_id: at most 64 letters, digits, '-', '.' or '_': " + log::quoted(settings.node_id);
    return false;
  }
  settings.advertise = config.advertise;
  settings.retention_bytes = config.cluster_retention_bytes != 0 ? config.cluster_retention_bytes : config.ring_buffer_bytes;
  settings.kill_grace_ms = to_millis(config.kill_grace);
  *out = std::move(settings);
  return true;
}

KeySettings key_settings(const Config& config) {
  return {config.jwt_secret_file, config.jwt_public_key, config.jwt_issuer, config.jwt_audience,
          static_cast<int64_t>(config.jwt_leeway)};
}

// systemd::apply_credentials on the paths of `config`.
bool resolve_credentials(Config* config, std::vector<std::string>* notes, std::string* error) {
  systemd::CredentialPaths paths{config->jwt_secret_file, config->jwt_public_key, config->tls_cert,
                                 config->tls_key, config->tls_client_ca};
  if (!systemd::apply_credentials(&paths, notes, error)) return false;
  config->jwt_secret_file = std::move(paths.jwt_secret_file);
  config->jwt_public_key = std::move(paths.jwt_public_key);
  config->tls_cert = std::move(paths.tls_cert);
  config->tls_key = std::move(paths.tls_key);
  config->tls_client_ca = std::move(paths.tls_client_ca);
  return true;
}

// The fd of the sealed handoff state, for the re-executed image (docs/upgrade.md).
constexpr const char* kHandoffVariable = "PTYHUB_HANDOFF_FD";
// How long terminals get to drain after SIGKILL, and sockets to flush their close frames.
constexpr uint64_t kExitDrainMs = 3000;
constexpr uint64_t kCloseFlushMs = 2000;
// How often STATUS= is refreshed (sent only when it changed).
constexpr uint64_t kStatusPeriodMs = 1000;
// How long the binary of a live upgrade has to answer --handoff-probe.
constexpr uint64_t kProbeTimeoutMs = 10000;

bool init_timer(uv_loop_t* loop, UvHandle<uv_timer_t>& timer, void* data) {
  return timer.adopt_init(uv_timer_init(loop, timer.get()), data);
}

}  // namespace

Daemon::Daemon(const Config& config, std::vector<std::string> args)
    : config_(std::make_unique<Config>(config)), args_(std::move(args)) {}

Daemon::~Daemon() { release_everything(); }

bool Daemon::start(std::string* error) {
  // The service manager's variables first: the passed sockets get FD_CLOEXEC before any child is started.
  std::string notify_error;
  notifier_ = systemd::Notifier::from_environment(&notify_error);
  if (!notify_error.empty()) {
    *error = notify_error;
    return false;
  }
  std::vector<systemd::ActivatedSocket> activated;
  if (!systemd::take_activated_sockets(&activated, error)) return false;
  std::optional<uint64_t> watchdog_usec;
  if (!systemd::watchdog_interval_from_environment(&watchdog_usec, error)) return false;
  std::vector<std::string> notes;
  if (!resolve_credentials(config_.get(), &notes, error)) return false;
  for (const std::string& note : notes) log::info(note);

  auth::VerifierOptions options;
  if (!load_verifier_options(key_settings(*config_), &options, error)) return false;
  verifier_ = std::make_unique<auth::JwtVerifier>(std::move(options));
  if (!verifier_->key_error().empty()) {
    *error = "jwt keys: " + verifier_->key_error();
    return false;
  }

  if (uv_loop_init(&loop_) != 0) {
    *error = "cannot create the event loop";
    return false;
  }
  loop_initialised_ = true;
  if (!watch_signal(sigterm_, SIGTERM) || !watch_signal(sigint_, SIGINT) || !watch_signal(sighup_, SIGHUP) ||
      !watch_signal(sigusr2_, SIGUSR2) || !init_timer(&loop_, upgrade_timer_, this) ||
      !init_timer(&loop_, shutdown_deadline_, this) || !init_timer(&loop_, teardown_timer_, this) ||
      !init_timer(&loop_, status_timer_, this) || !init_timer(&loop_, own_rings_timer_, this)) {
    *error = "cannot set up the loop's signal handlers and timers";
    return false;
  }
  uv_unref(status_timer_.as_handle());
  reaper_ = std::make_unique<OrphanReaper>(&loop_, to_millis(config_->kill_grace), [this](std::string_view id) {
    hub::Terminal* terminal = hub_ ? hub_->find_any(id) : nullptr;
    return terminal != nullptr && terminal->running();
  });
  hub_ = std::make_unique<hub::Hub>(&loop_, hub_limits(*config_), metrics_);
  hub_->add_exited_observer([this](const std::string& id) {
    if (reaper_) reaper_->terminal_exited(id);
  });
  git_ = std::make_unique<hub::GitOperations>(&loop_, git_limits(*config_), *hub_, metrics_);
  if (char resolved[PATH_MAX]; ::realpath("/proc/self/exe", resolved) != nullptr) self_path_ = resolved;
  std::vector<UniqueFd> handed_listeners;
  if (const char* handoff = std::getenv(kHandoffVariable)) {
    const std::string fd_text = handoff;
    ::unsetenv(kHandoffVariable);  // not for the terminals' processes
    take_handoff(fd_text.c_str(), &handed_listeners);
  }
  // After the handoff: the reaper's first sweep must find the handed processes adopted (pty/ reaps
  // them), and ends those nobody adopted like any process whose terminal is gone.
  if (!reaper_->start(error)) return false;
  if (!config_->redis_url.empty()) {
    cluster::ClusterSettings settings;
    if (!cluster_settings(*config_, &settings, error)) return false;
    cluster_ = std::make_unique<cluster::Cluster>(&loop_, std::move(settings), *hub_, metrics_);
  }
  server_ = std::make_unique<server::WsServer>(&loop_, edge_settings(*config_), *hub_, *git_, *verifier_, metrics_);
  if (cluster_) server_->set_ready_check([this] { return cluster_->ready(); });
  if (!handed_listeners.empty() && activated.empty()) {
    server_->use_activated_sockets(std::move(handed_listeners));
  } else if (!activated.empty()) {
    log::info("socket activation: serving on " + std::to_string(activated.size()) +
              " passed sockets; the listen setting is not used");
    std::vector<UniqueFd> sockets;
    for (systemd::ActivatedSocket& socket : activated) sockets.push_back(std::move(socket.fd));
    server_->use_activated_sockets(std::move(sockets));
  }
  if (!server_->start(error)) return false;
  if (cluster_) cluster_->start();  // Redis down: the daemon serves, /readyz says so, and it retries
  if (watchdog_usec) {
    watchdog_ = std::make_unique<systemd::Watchdog>(&loop_, notifier_, *watchdog_usec);
    if (!watchdog_->start()) {
      *error = "cannot start the watchdog timer";
      return false;
    }
    log::info("watchdog: WATCHDOG=1 every " + std::to_string(watchdog_->period_ms()) + " ms");
  }
  return true;
}

std::string Daemon::status_text() const {
  const size_t connections = server_ ? server_->connection_count() : 0;
  const size_t terminals = hub_ ? hub_->running_count() : 0;
  return std::to_string(connections) + (connections == 1 ? " connection, " : " connections, ") +
         std::to_string(terminals) + (terminals == 1 ? " terminal" : " terminals");
}

void Daemon::notify(const std::string& state) {
  std::string error;
  if (!notifier_.send(state, &error)) log::warn(error);
}

void Daemon::publish_status(bool force) {
  if (!notifier_.enabled()) return;
  std::string text = status_text();
  if (!force && text == last_status_) return;
  last_status_ = text;
  notify("STATUS=" + systemd::status_line(text));
}

bool Daemon::watch_signal(UvHandle<uv_signal_t>& handle, int signal) {
  if (!handle.adopt_init(uv_signal_init(&loop_, handle.get()), this)) return false;
  return 0 == uv_signal_start(
      handle.get(),
      [](uv_signal_t* h, int signum) {
        if (auto* self = static_cast<Daemon*>(h->data)) self->on_signal(signum);
      },
      signal);
}

int Daemon::run() {
  log::set_level(config_->log_level);
  log::set_format(config_->log_format);
  std::string error;
  if (!start(&error)) {
    log::error(error);
    notify("STATUS=" + systemd::status_line("failed to start: " + error));
    teardown();
    release_everything();
    return 1;
  }
  last_status_ = status_text();
  write_pid_file();
  if (!handoff_result_.empty()) write_upgrade_result(handoff_result_);
  notify("READY=1\nSTATUS=" + systemd::status_line(last_status_));
  if (notifier_.enabled()) {
    uv_timer_start(
        status_timer_.get(),
        [](uv_timer_t* h) {
          if (auto* self = static_cast<Daemon*>(h->data)) self->publish_status(false);
        },
        kStatusPeriodMs, kStatusPeriodMs);
  }
  log::info("ptyhubd ready");
  uv_run(&loop_, UV_RUN_DEFAULT);
  release_everything();
  if (!config_->pid_file.empty()) {
    std::string ignored;
    if (read_pid_file(config_->pid_file, &ignored) == ::getpid()) ::unlink(config_->pid_file.c_str());
  }
  log::info("ptyhubd stopped");
  return 0;
}

void Daemon::on_signal(int signal) {
  if (signal == SIGHUP) {
    reload_keys();
    return;
  }
  if (signal == SIGUSR2) {
    start_upgrade();
    return;
  }
  begin_shutdown();
}

// A reload of the secret and public keys, read on a worker thread; the verifier is swapped on the loop.
struct Daemon::KeyReload {
  uv_work_t work{};
  Daemon* daemon = nullptr;
  std::vector<std::string> args;
  Config config;  // the settings in effect; replaced by the ones read again when `args` is not empty
  std::vector<std::string> notes;
  auth::VerifierOptions options;
  std::string error;
  bool ok = false;
};

void Daemon::reload_keys() {
  if (reload_in_flight_ || phase_ != Phase::serving) return;
  reload_in_flight_ = true;
  auto* job = new KeyReload;
  job->work.data = job;
  job->daemon = this;
  job->config = *config_;
  job->args = args_;
  const int rc = uv_queue_work(
      &loop_, &job->work,
      [](uv_work_t* work) {
        auto* job = static_cast<KeyReload*>(work->data);
        if (!job->args.empty()) {
          ConfigResult fresh = load_config(job->args);
          if (!fresh.ok) {
            job->error = "settings: " + fresh.error;
            return;
          }
          job->config = std::move(fresh.config);
          if (!resolve_credentials(&job->config, &job->notes, &job->error)) return;
        }
        job->ok = load_verifier_options(key_settings(job->config), &job->options, &job->error);
      },
      [](uv_work_t* work, int status) {
        std::unique_ptr<KeyReload> job(static_cast<KeyReload*>(work->data));
        Daemon* daemon = job->daemon;
        daemon->reload_in_flight_ = false;
        if (status == 0) daemon->finish_reload(*job);
        if (daemon->phase_ == Phase::serving) daemon->notify("READY=1\nSTATUS=" + systemd::status_line(daemon->status_text()));
      });
  if (rc != 0) {
    reload_in_flight_ = false;
    delete job;
    return;
  }
  notify("RELOADING=1\nSTATUS=reloading settings and keys");
}

void Daemon::finish_reload(KeyReload& job) {
  server_->reload_tls();  // a renewed certificate, whatever happens to the keys and settings
  if (!job.ok) {
    log::error("SIGHUP: nothing reloaded: " + job.error);
    return;
  }
  auth::JwtVerifier fresh(std::move(job.options));
  if (!fresh.key_error().empty()) {
    log::error("SIGHUP: nothing reloaded: " + fresh.key_error());
    return;
  }
  *verifier_ = std::move(fresh);  // sessions hold a reference to *verifier_; live connections stay
  log::info("SIGHUP: keys reloaded");
  if (job.args.empty()) return;
  // The reloadable settings change in config_ (the table of src/config.cpp says which), then every
  // component gets its settings built from it again, on the loop thread.
  std::vector<std::string> needs_restart;
  const std::vector<std::string> changed = reload_settings(*config_, job.config, &needs_restart);
  apply_settings();
  const auto joined = [](const std::vector<std::string>& names) {
    std::string text;
    for (const std::string& name : names) text += (text.empty() ? "" : ", ") + name;
    return text;
  };
  log::info("SIGHUP: settings reloaded" + (changed.empty() ? std::string(", none changed") : ": " + joined(changed)));
  if (!needs_restart.empty()) log::warn("SIGHUP: changed but only applied by a restart: " + joined(needs_restart));
}

void Daemon::apply_settings() {
  log::set_level(config_->log_level);
  log::set_format(config_->log_format);
  hub_->set_limits(hub_limits(*config_));
  git_->set_limits(git_limits(*config_));
  server_->apply(edge_settings(*config_));
}

void Daemon::begin_shutdown() {
  if (phase_ != Phase::serving) return;
  phase_ = Phase::hanging_up;
  if (upgrading_) {  // a shutdown wins over an upgrade still waiting for its clients' closes
    upgrading_ = false;
    uv_timer_stop(upgrade_timer_.get());
  }
  notify("STOPPING=1\nSTATUS=" + systemd::status_line("stopping: " + status_text()));
  log::info("shutting down: " + std::to_string(hub_->running_count()) + " terminals, " +
            std::to_string(server_->connection_count()) + " connections");
  shutdown_started_ns_ = uv_hrtime();
  shutdown_probe_ = std::make_unique<LoopDelayProbe>(&loop_);
  if (!shutdown_probe_->start()) shutdown_probe_.reset();
  server_->stop_accepting();
  uv_timer_start(
      shutdown_deadline_.get(),
      [](uv_timer_t* h) {
        if (auto* self = static_cast<Daemon*>(h->data)) self->close_connections();
      },
      to_millis(config_->kill_grace) + kExitDrainMs, 0);
  hub_->hang_up_all([this] { close_connections(); });
}

void Daemon::close_connections() {
  if (phase_ >= Phase::closing_connections) return;
  phase_ = Phase::closing_connections;
  server_->close_all(protocol::close_code::kGoingAway, "server shutting down");
  uv_timer_start(
      shutdown_deadline_.get(),
      [](uv_timer_t* h) {
        if (auto* self = static_cast<Daemon*>(h->data)) self->schedule_teardown();
      },
      kCloseFlushMs, 0);
  server_->when_no_connections([this] { schedule_teardown(); });
}

// ---- live upgrade (docs/upgrade.md) -------------------------------------------------------------------

void Daemon::start_upgrade() {
  if (phase_ != Phase::serving || upgrading_) return;
  if (cluster_) {
    abort_upgrade("not available in cluster mode yet");
    return;
  }
  if (self_path_.empty() || ::access(self_path_.c_str(), X_OK) != 0) {
    abort_upgrade("cannot execute " + (self_path_.empty() ? std::string("this binary") : self_path_));
    return;
  }
  upgrading_ = true;
  upgrade_signalled_ns_ = uv_hrtime();
  notify("RELOADING=1\nSTATUS=" + systemd::status_line("upgrading: " + status_text()));
  // First the binary now at the path is asked whether it takes this state; until it says so, nothing
  // changes (clients stay connected, terminals keep running here).
  std::vector<std::string> env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    if (std::strncmp(*entry, kHandoffVariable, std::strlen(kHandoffVariable)) != 0) env.emplace_back(*entry);
  }
  std::string error;
  probe_.reset();
  probe_ = upgrade::BinaryProbe::start(
      &loop_, self_path_, args_, std::move(env), upgrade::kStateVersion, kProbeTimeoutMs,
      [this](bool ok, const std::string& why) { on_probe(ok, why); }, &error);
  if (!probe_) {
    upgrading_ = false;
    abort_upgrade("the binary at " + self_path_ + " does not start: " + error);
  }
}

void Daemon::on_probe(bool ok, const std::string& why) {
  if (!upgrading_ || phase_ != Phase::serving) return;  // a shutdown came first
  if (!ok) {
    upgrading_ = false;
    abort_upgrade("the binary at " + self_path_ + " refuses the handoff: " + why);
    return;
  }
  hand_over();
}

void Daemon::abort_upgrade(const std::string& why) {
  log::error("upgrade aborted, this image serves on: " + why);
  ++metrics_.upgrades_aborted_total;
  write_upgrade_result("failed " + why);
  notify("READY=1\nSTATUS=" + systemd::status_line(status_text()));
}

void Daemon::hand_over() {
  log::info("upgrade: handing " + std::to_string(hub_->running_count()) + " terminals to " + self_path_);
  // Clients are told to come back at once (1012); the exec waits for their closes, at most kCloseFlushMs.
  server_->close_all(1012, "service restart");
  const auto exec_after = [this](uint64_t ms) {
    uv_timer_start(
        upgrade_timer_.get(),
        [](uv_timer_t* h) {
          if (auto* self = static_cast<Daemon*>(h->data)) self->exec_upgrade();
        },
        ms, 0);
  };
  exec_after(kCloseFlushMs);
  // Once every client is gone, on a fresh loop turn (never inside an lws callback).
  server_->when_no_connections([exec_after] { exec_after(0); });
}

void Daemon::write_pid_file() {
  if (config_->pid_file.empty()) return;
  std::string error;
  if (!write_file_atomically(config_->pid_file, std::to_string(::getpid()) + "\n", &error)) log::error("pid_file: " + error);
}

void Daemon::write_upgrade_result(const std::string& line) {
  if (config_->pid_file.empty()) return;
  std::string error;
  if (!write_file_atomically(upgrade_result_path(config_->pid_file), line + "\n", &error)) {
    log::error("pid_file: " + error);
  }
}

void Daemon::exec_upgrade() {
  if (!upgrading_ || phase_ != Phase::serving) return;
  uv_timer_stop(upgrade_timer_.get());
  std::vector<UniqueFd> handed;
  const auto since_signal = [this] { return std::to_string((uv_hrtime() - upgrade_signalled_ns_) / 1000000) + " ms"; };
  log::debug("upgrade: clients closed " + since_signal() + " after the signal");
  upgrade::HandoffState state = upgrade::capture(*hub_, PTYHUB_VERSION, &handed);
  state.signalled_ns = upgrade_signalled_ns_;
  for (upgrade::TerminalState& t : state.terminals) {
    if (!t.operation.empty()) t.git = git_->export_state(t.id);
  }
  const std::vector<int> listeners = server_->listener_fds();
  for (int fd : listeners) state.fds.push_back({upgrade::FdKind::listener, fd, 0});
  std::string error;
  log::debug("upgrade: captured " + std::to_string(state.terminals.size()) + " terminals, " + since_signal());
  UniqueFd memfd = upgrade::write_state(state, &error);
  log::debug("upgrade: state written, " + since_signal());
  const auto set_cloexec = [](int fd, bool on) {
    const int flags = ::fcntl(fd, F_GETFD);
    if (flags >= 0) ::fcntl(fd, F_SETFD, on ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC));
  };
  if (memfd) {
    for (const UniqueFd& fd : handed) set_cloexec(fd.get(), false);
    for (int fd : listeners) set_cloexec(fd, false);
    std::vector<std::string> args = {self_path_};
    args.insert(args.end(), args_.begin(), args_.end());
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    std::vector<std::string> env_text = {std::string(kHandoffVariable) + "=" + std::to_string(memfd.get())};
    for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
      if (std::strncmp(*entry, kHandoffVariable, std::strlen(kHandoffVariable)) != 0) env_text.emplace_back(*entry);
    }
    std::vector<char*> envp;
    for (std::string& entry : env_text) envp.push_back(entry.data());
    envp.push_back(nullptr);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    log::info("upgrade: executing " + self_path_);
    ::execve(self_path_.c_str(), argv.data(), envp.data());
    error = std::string("execve ") + self_path_ + ": " + std::strerror(errno);
    for (const UniqueFd& fd : handed) set_cloexec(fd.get(), true);
    for (int fd : listeners) set_cloexec(fd, true);
  }
  // The new image did not start: this one takes its terminals back and serves on.
  log::error("upgrade failed, this image serves on: " + error);
  ++metrics_.upgrades_aborted_total;
  write_upgrade_result("failed " + error);
  size_t next = 0;
  for (const upgrade::TerminalState& t : state.terminals) {
    if (t.master < 0) continue;
    pty::PtyProcess::Released released;
    released.master = std::move(handed[next++]);
    released.pidfd = std::move(handed[next++]);
    released.pending_input = t.pending_input;
    released.end_input = t.end_input;
    hub::Terminal* terminal = hub_->find_any(t.id);
    std::string why;
    if (terminal == nullptr || !terminal->take_back_process(std::move(released), &why)) {
      log::error("upgrade: terminal " + t.id + " could not be taken back: " + why);
      if (terminal != nullptr) terminal->end("upgrade_failed", 0);
    }
  }
  upgrading_ = false;
  notify("READY=1\nSTATUS=" + systemd::status_line(status_text()));
}

void Daemon::take_handoff(const char* fd_text, std::vector<UniqueFd>* listeners) {
  char* end = nullptr;
  const long number = std::strtol(fd_text, &end, 10);
  if (end == fd_text || *end != '\0' || number <= 2 || number > INT_MAX) {
    log::error(std::string("upgrade: ") + kHandoffVariable + " is not an fd: " + fd_text);
    return;
  }
  UniqueFd memfd(static_cast<int>(number));
  std::string error;
  const uint64_t started = uv_hrtime();
  std::optional<upgrade::HandoffState> state = upgrade::read_state(memfd.get(), upgrade::kMaxStateBytes, &error);
  memfd.reset();
  if (state && state->signalled_ns > 0 && state->signalled_ns < started) {
    log::debug("upgrade: new image started " + std::to_string((started - state->signalled_ns) / 1000000) +
               " ms after the signal; state read and decoded in " + std::to_string((uv_hrtime() - started) / 1000000) + " ms");
  }
  if (!state) {
    // Never half a state: what was handed over is closed (a PTY's hangup reaches its shell), and the
    // orphan reaper ends the processes as it ends those of any terminal that is gone.
    const size_t closed = upgrade::close_unclaimed_fds();
    log::error("upgrade: the previous image's state cannot be read (" + error + "); its terminals end (" +
               std::to_string(closed) + " handed fds closed), this image serves on");
    handoff_result_ = "failed the state could not be read: " + error;
    return;
  }
  for (const upgrade::HandedFd& handed : state->fds) {
    if (handed.kind != upgrade::FdKind::listener) continue;
    const std::string why = upgrade::check_handed_fd(handed);
    if (!why.empty()) {
      log::error("upgrade: " + why);
      continue;
    }
    if (const int flags = ::fcntl(handed.fd, F_GETFD); flags >= 0) ::fcntl(handed.fd, F_SETFD, flags | FD_CLOEXEC);
    listeners->emplace_back(handed.fd);
  }
  const std::vector<std::string> problems = upgrade::restore(*hub_, *state);
  for (const std::string& problem : problems) log::error("upgrade: " + problem);
  for (const upgrade::TerminalState& t : state->terminals) {
    if (t.git.is_null()) continue;
    if (std::string why; !git_->adopt(t.git, &why)) log::error("upgrade: terminal " + t.id + ": " + why);
  }
  if (const size_t closed = upgrade::close_unclaimed_fds(); closed > 0) {
    log::error("upgrade: closed " + std::to_string(closed) + " handed fds no terminal claimed");
  }
  // The rings are borrowed from the state's mapping: they become the terminals' own in the background.
  for (auto t = state->terminals.rbegin(); t != state->terminals.rend(); ++t) borrowed_rings_.push_back(t->id);
  own_rings_started_ns_ = uv_hrtime();
  uv_timer_start(
      own_rings_timer_.get(),
      [](uv_timer_t* h) {
        if (auto* self = static_cast<Daemon*>(h->data)) self->own_borrowed_rings();
      },
      0, 1);
  const uint64_t now = uv_hrtime();
  const uint64_t handoff_ms = state->signalled_ns > 0 && state->signalled_ns < now ? (now - state->signalled_ns) / 1000000 : 0;
  metrics_.upgrade_handoff_ms = handoff_ms;
  const std::string resumed = std::to_string(state->terminals.size() - problems.size()) + " of " +
                              std::to_string(state->terminals.size()) + " terminals";
  log::info("upgrade: resumed " + resumed + " from " + state->daemon_version + ", reading PTYs " +
            std::to_string(handoff_ms) + " ms after the signal");
  handoff_result_ = (problems.empty() ? "ok " : "partial ") + std::string(PTYHUB_VERSION) + " resumed " + resumed +
                    " in " + std::to_string(handoff_ms) + " ms";
}

void Daemon::own_borrowed_rings() {
  // A few MiB per loop turn (about 2 ms of copying), so the loop never waits long for it.
  const uint64_t turn_started = uv_hrtime();
  while (!borrowed_rings_.empty() && uv_hrtime() - turn_started < 2'000'000) {
    hub::Terminal* terminal = hub_ ? hub_->find_any(borrowed_rings_.back()) : nullptr;
    borrowed_rings_.pop_back();
    if (terminal != nullptr) terminal->own_ring();
  }
  if (!borrowed_rings_.empty()) return;
  uv_timer_stop(own_rings_timer_.get());
  log::info("upgrade: the restored rings are the terminals' own, " +
            std::to_string((uv_hrtime() - own_rings_started_ns_) / 1000000) + " ms after the restore");
}

void Daemon::schedule_teardown() {
  // Never destroy lws from inside one of its callbacks: continue on a fresh loop turn.
  uv_timer_start(
      teardown_timer_.get(),
      [](uv_timer_t* h) {
        if (auto* self = static_cast<Daemon*>(h->data)) self->teardown();
      },
      0, 0);
}

void Daemon::teardown() {
  if (phase_ == Phase::torn_down) return;
  phase_ = Phase::torn_down;
  if (shutdown_probe_) {
    char line[160];
    std::snprintf(line, sizeof line, "shutdown: terminals and connections closed in %.0f ms, the loop blocked %.1f ms at most",
                  static_cast<double>(uv_hrtime() - shutdown_started_ns_) / 1e6, shutdown_probe_->max_delay_ms());
    log::info(line);
    shutdown_probe_.reset();
  }
  if (server_) server_->destroy_context();
  if (cluster_) cluster_->stop();  // what was sent (the terminals' exits) is answered, then the links close
  sigterm_.close();
  sigint_.close();
  sighup_.close();
  sigusr2_.close();
  upgrade_timer_.close();
  probe_.reset();
  shutdown_deadline_.close();
  teardown_timer_.close();
  status_timer_.close();
  own_rings_timer_.close();
  borrowed_rings_.clear();
  if (watchdog_) watchdog_->stop();
}

void Daemon::release_everything() {
  if (!loop_initialised_) return;
  teardown();
  uv_run(&loop_, UV_RUN_DEFAULT);  // lws closes its handles; running terminals finish draining
 if (server_) server_->finish();
  server_.reset();
  cluster_.reset();
  git_.reset();
  hub_.reset();                    // kills and reaps whatever still runs; closes terminal handles
  if (reaper_) reaper_->stop();    // then what the terminals left behind
  reaper_.reset();
  watchdog_.reset();
  uv_run(&loop_, UV_RUN_DEFAULT);
  const int rc = uv_loop_close(&loop_);
  if (rc != 0) log::error(std::string("event loop closed with handles still open: ") + uv_strerror(rc));
  loop_initialised_ = false;
}

Invocation read_command_line(const std::vector<std::string>& args) {
  Invocation invocation;
  ConfigResult loaded = load_config(args);
  if (loaded.show_help) {
    invocation.action = Invocation::Action::help;
    invocation.text = config_help_text();
  } else if (loaded.show_version) {
    invocation.action = Invocation::Action::version;
  } else if (!loaded.ok) {
    invocation.action = Invocation::Action::usage_error;
    invocation.text = loaded.error;
  } else {
    invocation.action = Invocation::Action::run;
    invocation.daemon = std::make_unique<Daemon>(loaded.config, args);
  }
  return invocation;
}

bool token_secret_file(const std::vector<std::string>& args, std::string* path, std::string* error) {
  ConfigResult loaded = load_config(args);
  if (!loaded.ok) {
    *error = loaded.error;
    return false;
  }
  *path = loaded.config.jwt_secret_file;
  return true;
}

bool configured_pid_file(const std::vector<std::string>& args, std::string* path, std::string* error) {
  ConfigResult loaded = load_config(args);
  if (!loaded.ok) {
    *error = loaded.error;
    return false;
  }
  *path = loaded.config.pid_file;
  return true;
}

}  // namespace ptyhub
