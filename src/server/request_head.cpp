// Rewriting the upgrade request head.
#include "src/server/request_head.hpp"

#include <strings.h>

#include <vector>

namespace ptyhub::server {
namespace {

constexpr std::string_view kProtocolHeader = "sec-websocket-protocol";
constexpr std::string_view kAuthorizationHeader = "authorization";
constexpr std::string_view kBearerPrefix = "bearer.";

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

bool header_named(std::string_view line, std::string_view name, std::string_view* value) {
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) return false;
  const std::string_view field = trim(line.substr(0, colon));
  if (field.size() != name.size() || strncasecmp(field.data(), name.data(), name.size()) != 0) return false;
  *value = trim(line.substr(colon + 1));
  return true;
}

std::vector<std::string_view> split_lines(std::string_view head) {
  std::vector<std::string_view> lines;
  while (!head.empty()) {
    const size_t end = head.find("\r\n");
    if (end == std::string_view::npos) {
      lines.push_back(head);
      break;
    }
    lines.push_back(head.substr(0, end));
    head.remove_prefix(end + 2);
  }
  return lines;
}

// Keeps the non-bearer entries of a subprotocol list; stores the first bearer token in `token`.
std::string strip_bearer_entries(std::string_view list, std::optional<std::string>* token) {
  std::string kept;
  while (!list.empty()) {
    const size_t comma = list.find(',');
    const std::string_view item = trim(list.substr(0, comma));
    if (item.starts_with(kBearerPrefix)) {
      if (!*token) *token = std::string(item.substr(kBearerPrefix.size()));
    } else if (!item.empty()) {
      if (!kept.empty()) kept += ", ";
      kept += item;
    }
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return kept;
}

}  // namespace

std::optional<size_t> request_head_length(std::string_view bytes) {
  const size_t end = bytes.find("\r\n\r\n");
  if (end == std::string_view::npos) return std::nullopt;
  return end + 4;
}

std::string move_bearer_subprotocol(std::string_view head) {
  std::vector<std::string_view> lines = split_lines(head);
  std::optional<std::string> token;
  bool has_authorization = false;
  std::string out;
  out.reserve(head.size() + 32);
  for (std::string_view line : lines) {
    std::string_view value;
    if (line.empty()) continue;  // the terminating blank line is re-added below
    if (header_named(line, kAuthorizationHeader, &value)) has_authorization = true;
    if (header_named(line, kProtocolHeader, &value)) {
      std::optional<std::string> found;
      const std::string kept = strip_bearer_entries(value, &found);
      if (found) {
        if (!token) token = std::move(found);
        if (!kept.empty()) out.append("Sec-WebSocket-Protocol: ").append(kept).append("\r\n");
        continue;
      }
    }
    out.append(line).append("\r\n");
  }
  if (!token) return std::string(head);
  if (!has_authorization) out.append("Authorization: Bearer ").append(*token).append("\r\n");
  out.append("\r\n");
  return out;
}

}  // namespace ptyhub::server
