// Tests of src/server/http_routes: the plain HTTP endpoints of docs/protocol.md §1 Endpoints (/healthz,
// /readyz, /metrics, /) and 404 for everything else.
#include "src/server/http_routes.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

#include "src/hub/metrics.hpp"

namespace ptyhub::server {
namespace {

using json = nlohmann::json;

json body_json(const HttpResponse& response) {
  json parsed = json::parse(response.body, nullptr, false);
  REQUIRE_FALSE(parsed.is_discarded());
  return parsed;
}

TEST_CASE("/healthz answers 200 {\"status\":\"ok\"} whatever the readiness") {
  for (bool ready : {false, true}) {
    CAPTURE(ready);
    for (std::string_view path : {"/healthz", "/healthz?probe=1", "/healthz?"}) {
      CAPTURE(path);
      const HttpResponse response = route_http(path, HttpState{ready, nullptr, {}});
      CHECK(response.status == 200);
      CHECK(response.content_type.starts_with("application/json"));
      CHECK(body_json(response) == json{{"status", "ok"}});
    }
  }
}

TEST_CASE("/readyz answers 200 when ready and 503 before") {
  for (std::string_view path : {"/readyz", "/readyz?x=1"}) {
    CAPTURE(path);
    const HttpResponse ready = route_http(path, HttpState{true, nullptr, {}});
    CHECK(ready.status == 200);
    CHECK(body_json(ready).is_object());
    const HttpResponse not_ready = route_http(path, HttpState{false, nullptr, {}});
    CHECK(not_ready.status == 503);
    CHECK(body_json(not_ready).is_object());
  }
}

TEST_CASE("/metrics is Prometheus text with the current values") {
  hub::Metrics metrics;
  metrics.connections_open = 3;
  metrics.connections_total = 17;
  metrics.auth_failures_total = 2;
  for (std::string_view path : {"/metrics", "/metrics?name[]=ptyhub_connections"}) {
    CAPTURE(path);
    const HttpResponse response = route_http(path, HttpState{true, &metrics, {}});
    CHECK(response.status == 200);
    CHECK(response.content_type.starts_with("text/plain"));
    const std::string& body = response.body;
    CAPTURE(body);
    CHECK(body.find("# TYPE ptyhub_connections gauge\n") != std::string::npos);
    CHECK(body.find("# TYPE ptyhub_connections_total counter\n") != std::string::npos);
    CHECK(body.find("\nptyhub_connections 3\n") != std::string::npos);
    CHECK(body.find("\nptyhub_connections_total 17\n") != std::string::npos);
    CHECK(body.find("\nptyhub_auth_failures_total 2\n") != std::string::npos);
    CHECK(body.ends_with("\n"));
  }
  // Served while not ready too: metrics help to see why.
  CHECK(route_http("/metrics", HttpState{false, &metrics, {}}).status == 200);
}

TEST_CASE("/metrics follows a change of the counters") {
  hub::Metrics metrics;
  const HttpState state{true, &metrics, {}};
  CHECK(route_http("/metrics", state).body.find("\nptyhub_connections 0\n") != std::string::npos);
  metrics.connections_open = 41;
  CHECK(route_http("/metrics", state).body.find("\nptyhub_connections 41\n") != std::string::npos);
}

TEST_CASE("/ is the HTML page") {
  for (std::string_view path : {"/", "/?tab=git"}) {
    CAPTURE(path);
    const HttpResponse response = route_http(path, HttpState{true, nullptr, {}});
    CHECK(response.status == 200);
    CHECK(response.content_type.starts_with("text/html"));
    CHECK(response.body.find("<html") != std::string::npos);
  }
}

TEST_CASE("any other path is 404") {
  hub::Metrics metrics;
  for (std::string_view path : {"/nope", "/healthz/", "/HEALTHZ", "/readyz/x", "/metricsx", "//", "/healthzx?y"}) {
    CAPTURE(path);
    const HttpResponse response = route_http(path, HttpState{true, &metrics, {}});
    CHECK(response.status == 404);
  }
}

TEST_CASE("base_path: every route is under it, the bare path redirects to the page, nothing else is served") {
  hub::Metrics metrics;
  const HttpState state{true, &metrics, "/term"};
  CHECK(route_http("/term/healthz", state).status == 200);
  CHECK(route_http("/term/readyz", state).status == 200);
  CHECK(route_http("/term/metrics", state).status == 200);
  CHECK(route_http("/term/", state).content_type.starts_with("text/html"));
  CHECK(route_http("/term/?x=1", state).content_type.starts_with("text/html"));
  const HttpResponse redirect = route_http("/term", state);
  CHECK(redirect.status == 308);
  CHECK(redirect.location == "/term/");
  for (std::string_view path : {"/", "/healthz", "/terminal/healthz", "/termhealthz", "/ws", "/other/term/healthz"}) {
    CAPTURE(path);
    CHECK(route_http(path, state).status == 404);
  }
}

TEST_CASE("the placeholder page links relative to itself") {
  const HttpResponse page = route_http("/", HttpState{true, nullptr, {}});
  CHECK(page.body.find("href=\"/") == std::string::npos);
  CHECK(page.body.find("src=\"/") == std::string::npos);
}

}  // namespace
}  // namespace ptyhub::server
