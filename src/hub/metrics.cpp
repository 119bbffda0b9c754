// Prometheus text exposition format, version 0.0.4.
#include "src/hub/metrics.hpp"

namespace ptyhub::hub {
namespace {

void add(std::string& out, const char* name, const char* type, const char* help, uint64_t value) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
  out += name;
  out += ' ';
  out += std::to_string(value);
  out += '\n';
}

}  // namespace

std::string render_prometheus(const Metrics& m) {
  std::string out;
  add(out, "ptyhub_connections", "gauge", "Open WebSocket connections.", m.connections_open);
  add(out, "ptyhub_connections_total", "counter", "WebSocket connections accepted.", m.connections_total);
  add(out, "ptyhub_terminals", "gauge", "Terminals whose process runs.", m.terminals_running);
  add(out, "ptyhub_terminals_exited", "gauge", "Exited terminals still listed.", m.terminals_exited);
  add(out, "ptyhub_terminals_created_total", "counter", "Terminals created.", m.terminals_created_total);
  add(out, "ptyhub_pty_output_bytes_total", "counter", "Bytes read from PTYs.", m.pty_bytes_out);
  add(out, "ptyhub_pty_input_bytes_total", "counter", "Bytes written to PTYs.", m.pty_bytes_in);
  add(out, "ptyhub_ws_messages_received_total", "counter", "WebSocket messages received.", m.ws_messages_in);
  add(out, "ptyhub_ws_sent_bytes_total", "counter", "WebSocket payload bytes sent.", m.ws_bytes_out);
  add(out, "ptyhub_outbound_queue_bytes", "gauge", "Bytes queued for sending, all connections.",
      m.outbound_queue_bytes);
  add(out, "ptyhub_ring_bytes", "gauge", "Memory held by output rings.", m.ring_bytes);
  add(out, "ptyhub_replays_total", "counter", "Subscriptions that replayed retained output.", m.replays_total);
  add(out, "ptyhub_gaps_total", "counter", "shell.gap events sent.", m.gaps_total);
  add(out, "ptyhub_terminal_faults_total", "counter",
      "Faults of running terminals sent as shell.error (a failed read, write or resize).", m.terminal_faults_total);
  add(out, "ptyhub_pty_read_pauses_total", "counter", "Times a PTY was paused because no subscriber took output.",
      m.pty_read_pauses_total);
  add(out, "ptyhub_auth_failures_total", "counter", "Rejected tokens.", m.auth_failures_total);
  add(out, "ptyhub_peer_refusals_total", "counter", "Connections refused for their address's limits.",
      m.peer_refusals_total);
  add(out, "ptyhub_auth_delays_total", "counter",
      "Connections whose token was looked at after a delay, for rejected tokens from their address.",
      m.auth_delays_total);
  add(out, "ptyhub_request_errors_total", "counter", "Requests answered with an error.", m.request_errors_total);
  add(out, "ptyhub_git_operations_started_total", "counter", "git operations started.", m.git_started_total);
  out += "# HELP ptyhub_git_operations_total git operations completed, by operation and status.\n";
  out += "# TYPE ptyhub_git_operations_total counter\n";
  for (const auto& [key, count] : m.git_completed) {
    const size_t comma = key.find(',');
    out += "ptyhub_git_operations_total{operation=\"" + key.substr(0, comma) + "\",status=\"" +
           key.substr(comma + 1) + "\"} " + std::to_string(count) + "\n";
  }
  add(out, "ptyhub_git_duration_seconds_total", "counter", "Time spent in completed git operations.",
      m.git_duration_ms_total / 1000);
  add(out, "ptyhub_screen_models", "gauge", "Terminals with a screen model (snapshots).", m.screen_models);
  add(out, "ptyhub_screen_model_bytes", "gauge", "Memory held by screen models (estimate).", m.screen_model_bytes);
  add(out, "ptyhub_snapshots_total", "counter", "shell.snapshot sent.", m.snapshots_total);
  add(out, "ptyhub_upgrade_handoff_milliseconds", "gauge",
      "The live upgrade that started this image: from the signal until its PTYs were read again (0: none).",
      m.upgrade_handoff_ms);
  add(out, "ptyhub_upgrades_aborted_total", "counter", "Live upgrades refused or aborted; this image served on.",
      m.upgrades_aborted_total);
  if (!m.cluster) return out;
  add(out, "ptyhub_redis_up", "gauge", "1 while this node reaches Redis.", m.redis_up ? 1 : 0);
  add(out, "ptyhub_redis_rtt_microseconds", "gauge", "Round trip of the last lease renewal.", m.redis_rtt_us);
  add(out, "ptyhub_redis_reconnects_total", "counter", "Redis connections made again after a loss.",
      m.redis_reconnects_total);
  add(out, "ptyhub_cluster_mirrors", "gauge", "Terminals of other nodes mirrored here.", m.cluster_mirrors);
  add(out, "ptyhub_cluster_remote_subscribers", "gauge", "Subscriptions to terminals of other nodes.",
      m.cluster_remote_subscribers);
  add(out, "ptyhub_cluster_bytes_mirrored_total", "counter", "Output bytes of local terminals appended to Redis.",
      m.cluster_bytes_mirrored_total);
  add(out, "ptyhub_cluster_bytes_read_total", "counter", "Output bytes of other nodes' terminals read from Redis.",
      m.cluster_bytes_read_total);
  add(out, "ptyhub_cluster_bytes_dropped_total", "counter",
      "Output bytes not appended (Redis down or too slow): other nodes see a gap.", m.cluster_bytes_dropped_total);
  add(out, "ptyhub_cluster_requests_sent_total", "counter", "Requests sent to the nodes that own their terminals.",
      m.cluster_requests_sent_total);
  add(out, "ptyhub_cluster_requests_applied_total", "counter", "Requests of other nodes applied here.",
      m.cluster_requests_applied_total);
  add(out, "ptyhub_cluster_nodes_reaped_total", "counter", "Lost nodes whose terminals this node ended.",
      m.cluster_nodes_reaped_total);
  add(out, "ptyhub_cluster_fenced_total", "counter", "Times this node fenced itself.", m.cluster_fenced_total);
  add(out, "ptyhub_cluster_entries_malformed_total", "counter",
      "Entries read from Redis that did not decode (wrong fields, numbers, JSON): skipped.",
      m.cluster_entries_malformed_total);
  return out;
}

}  // namespace ptyhub::hub
