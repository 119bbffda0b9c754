// HTTP routes served beside the WebSocket: /healthz, /readyz, /metrics, / and 404.
// Pure: a path and the daemon's state in, a response out; the edge writes it.
#pragma once

#include <string>
#include <string_view>

#include "src/hub/metrics.hpp"

namespace ptyhub::server {

struct HttpResponse {
  unsigned status = 200;
  std::string content_type;
  std::string body;
};

struct HttpState {
  bool ready = false;  // listening and able to spawn, not shutting down
  const hub::Metrics* metrics = nullptr;
};

HttpResponse route_http(std::string_view path, const HttpState& state);

}  // namespace ptyhub::server
