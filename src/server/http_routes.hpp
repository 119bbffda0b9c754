// HTTP routes served beside the WebSocket: /healthz, /readyz, /metrics, / and 404.
// Pure: a path and the daemon's state in, a response out; the edge writes it.
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include "src/hub/metrics.hpp"

namespace ptyhub::server {

struct HttpResponse {
  HttpResponse(unsigned status_code, std::string type, std::string text, std::string redirect = {})
      : status(status_code), content_type(std::move(type)), body(std::move(text)), location(std::move(redirect)) {}
  unsigned status = 200;
  std::string content_type;
  std::string body;
  std::string location;  // a redirect's target
};

struct HttpState {
  bool ready = false;  // listening and able to spawn, not shutting down
  const hub::Metrics* metrics = nullptr;
  std::string_view base_path;  // every route is under it ("" or "/term")
};

HttpResponse route_http(std::string_view path, const HttpState& state);

}  // namespace ptyhub::server
