// Metrics: the daemon's counters and gauges, rendered as Prometheus text (GET /metrics).
// Plain integers updated on the loop thread; no locking.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace ptyhub::hub {

struct Metrics {
  uint64_t connections_open = 0;
  uint64_t connections_total = 0;
  uint64_t terminals_created_total = 0;
  uint64_t terminals_running = 0;
  uint64_t terminals_exited = 0;   // exited but still listed
  uint64_t pty_bytes_out = 0;      // bytes read from PTYs
  uint64_t pty_bytes_in = 0;       // bytes written to PTYs
  uint64_t ws_messages_in = 0;
  uint64_t ws_bytes_out = 0;       // payload bytes sent on WebSockets
  uint64_t outbound_queue_bytes = 0;  // sum of every connection's queued bytes
  uint64_t ring_bytes = 0;            // memory held by output rings
  uint64_t replays_total = 0;         // subscriptions that started behind the live edge
  uint64_t gaps_total = 0;            // shell.gap events sent
  uint64_t terminal_faults_total = 0; // shell.error events: faults of running terminals
  uint64_t pty_read_pauses_total = 0; // times a PTY stopped being read because no subscriber took output
  uint64_t auth_failures_total = 0;
  uint64_t peer_refusals_total = 0;   // connections closed 4429 for their address's limits
  uint64_t auth_delays_total = 0;     // connections whose token waited for their address's rejected tokens
  uint64_t request_errors_total = 0;
  uint64_t git_started_total = 0;
  std::map<std::string, uint64_t> git_completed;  // "operation,status" -> count
  uint64_t git_duration_ms_total = 0;
  uint64_t screen_models = 0;        // terminals with a screen model (snapshots)
  uint64_t screen_model_bytes = 0;   // memory their models hold (estimate)
  uint64_t snapshots_total = 0;      // shell.snapshot sent
  uint64_t upgrade_handoff_ms = 0;      // the live upgrade that started this image: signal to PTYs read again
  uint64_t upgrades_aborted_total = 0;  // live upgrades this image refused or could not carry out

  // Cluster mode only (rendered when `cluster` is set; docs/cluster.md).
  bool cluster = false;
  bool redis_up = false;
  uint64_t redis_rtt_us = 0;                    // the last lease renewal's round trip
  uint64_t redis_reconnects_total = 0;
  uint64_t cluster_mirrors = 0;                 // terminals of other nodes mirrored here
  uint64_t cluster_remote_subscribers = 0;      // subscriptions to mirrors
  uint64_t cluster_bytes_mirrored_total = 0;    // output bytes appended to Redis
  uint64_t cluster_bytes_read_total = 0;        // output bytes read from Redis into mirrors
  uint64_t cluster_bytes_dropped_total = 0;     // output not appended (Redis down or too slow): a gap
  uint64_t cluster_append_bytes_in_flight = 0;
  uint64_t cluster_requests_sent_total = 0;     // requests sent to other nodes
  uint64_t cluster_requests_applied_total = 0;  // requests of other nodes applied here
  uint64_t cluster_nodes_reaped_total = 0;
  uint64_t cluster_fenced_total = 0;
  uint64_t cluster_entries_malformed_total = 0;  // entries read from Redis that did not decode: skipped
};

std::string render_prometheus(const Metrics& metrics);

}  // namespace ptyhub::hub
