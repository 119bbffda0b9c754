// The web client's files, embedded in the daemon at build time (cmake/embed_web.cmake generates the
// table from the npm bundle). Static, immutable data: safe from any thread, nothing to free.
#pragma once

#include <cstddef>
#include <string_view>

namespace ptyhub::server {

struct WebAsset {
  std::string_view name;          // file name in the bundle: "index.html", "app.js", "app.css"
  std::string_view content_type;  // e.g. "text/javascript; charset=utf-8"
  const unsigned char* data;
  std::size_t size;
};

// The embedded file called `name`, or nullptr (no such file, or a build without the web client).
const WebAsset* find_web_asset(std::string_view name);

}  // namespace ptyhub::server
