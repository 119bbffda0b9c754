// The HTTP routes. `/` is the embedded web client (src/server/web_assets.hpp), its files are under
// `/assets/`; a build without the web client serves a short placeholder page at `/`.
#include "src/server/http_routes.hpp"

#include "src/server/web_assets.hpp"

namespace ptyhub::server {
namespace {

constexpr std::string_view kIndexPage = R"(<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>ptyhub</title>
<style>body{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem;line-height:1.5}
code{background:#8882;padding:0 .2em}</style></head>
<body>
<h1>ptyhub</h1>
<p>ptyhubd is running. Connect a WebSocket client to <code>ws</code> (beside this page) with the subprotocol
<code>ptyhub.v1</code> and a token (see <code>docs/protocol.md</code>).</p>
<p>Health: <a href="healthz">healthz</a> · Readiness: <a href="readyz">readyz</a> ·
Metrics: <a href="metrics">metrics</a></p>
</body>
</html>
)";

constexpr std::string_view kAssetPrefix = "/assets/";

HttpResponse asset_response(const WebAsset& asset) {
  return {200, std::string(asset.content_type),
          std::string(reinterpret_cast<const char*>(asset.data), asset.size)};
}

}  // namespace

HttpResponse route_http(std::string_view path, const HttpState& state) {
  const size_t query = path.find('?');
  if (query != std::string_view::npos) path = path.substr(0, query);
  if (!state.base_path.empty()) {
    // The page's URLs are relative: it must be served with a trailing slash.
    if (path == state.base_path) return {308, "application/json", R"({"redirect":"trailing slash"})", std::string(state.base_path) + "/"};
    if (!path.starts_with(state.base_path) || path[state.base_path.size()] != '/') {
      return {404, "application/json", R"({"error":"not_found"})", {}};
    }
    path.remove_prefix(state.base_path.size());
  }
  if (path == "/healthz") return {200, "application/json", R"({"status":"ok"})"};
  if (path == "/readyz") {
    if (state.ready) return {200, "application/json", R"({"status":"ready"})"};
    return {503, "application/json", R"({"status":"unavailable"})"};
  }
  if (path == "/metrics" && state.metrics != nullptr) {
    return {200, "text/plain; version=0.0.4; charset=utf-8", hub::render_prometheus(*state.metrics)};
  }
  if (path == "/" || path == "/index.html") {
    if (const WebAsset* index = find_web_asset("index.html")) return asset_response(*index);
    return {200, "text/html; charset=utf-8", std::string(kIndexPage)};
  }
  if (path.starts_with(kAssetPrefix)) {
    const std::string_view name = path.substr(kAssetPrefix.size());
    const WebAsset* asset = name.find('/') == std::string_view::npos ? find_web_asset(name) : nullptr;
    if (asset != nullptr) return asset_response(*asset);
  }
  return {404, "application/json", R"({"error":"not_found"})"};
}

}  // namespace ptyhub::server
