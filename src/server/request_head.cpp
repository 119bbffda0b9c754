// Rewriting the upgrade request head.
#include "src/server/request_head.hpp"

#include <strings.h>

#include <algorithm>
#include <cstddef>
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
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string_view line = lines[i];
    std::string_view value;
    if (line.empty()) continue;  // the terminating blank line is re-added below
    if (i == 0) {                // the request line, never a header ("Authorization :/ HTTP/1.1")
      out.append(line).append("\r\n");
      continue;
    }
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

namespace {

bool is_token_char(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

PreparedHead refused(int status, std::string_view reason) { return {{}, status, reason}; }

}  // namespace

PreparedHead prepare_head(std::string_view head) {
  const std::vector<std::string_view> lines = split_lines(head);
  if (lines.empty() || lines.front().empty()) return refused(400, "no request line");
  const std::string_view request_line = lines.front();
  const size_t first_space = request_line.find(' ');
  const size_t last_space = request_line.rfind(' ');
  if (first_space == std::string_view::npos || first_space == last_space ||
      !request_line.substr(last_space + 1).starts_with("HTTP/1.")) {
    return refused(400, "a malformed request line");
  }
  size_t hosts = 0;
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string_view line = lines[i];
    if (line.empty()) continue;
    if (line.size() > kMaxHeaderLine) return refused(431, "a request header is too large");
    if (line.front() == ' ' || line.front() == '\t') return refused(400, "folded header lines are not accepted");
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0 ||
        !std::all_of(line.begin(), line.begin() + static_cast<std::ptrdiff_t>(colon), is_token_char)) {
      return refused(400, "a malformed header line");
    }
    std::string_view value;
    if (header_named(line, "host", &value)) ++hosts;
  }
  if (hosts != 1) return refused(400, "exactly one Host header is required");

  // The rewrite, then Host moved to the end.
  const std::string moved = move_bearer_subprotocol(head);
  std::string out;
  out.reserve(moved.size());
  std::string host_line;
  const std::vector<std::string_view> moved_lines = split_lines(moved);
  for (size_t i = 0; i < moved_lines.size(); ++i) {
    const std::string_view line = moved_lines[i];
    std::string_view value;
    if (line.empty()) continue;
    if (i > 0 && header_named(line, "host", &value)) {  // line 0 is the request line, even "HOST :/ HTTP/1.1"
      host_line = std::string(line);
      continue;
    }
    out.append(line).append("\r\n");
  }
  out.append(host_line).append("\r\n\r\n");
  if (out.size() > kMaxPreparedHead) return refused(431, "the request head is too large");
  return {std::move(out), 0, {}};
}

std::string refusal_response(int status, std::string_view reason) {
  const char* phrase = status == 431   ? "Request Header Fields Too Large"
                       : status == 429 ? "Too Many Requests"
                       : status == 400 ? "Bad Request"
                                       : "Error";
  const char* code = status == 431 ? "too_large" : status == 429 ? "limit_exceeded" : "bad_request";
  std::string body = "{\"error\":\"";
  body += code;
  body += "\",\"message\":\"";
  for (char c : reason) {
    if (c == '"' || c == '\\') body.push_back('\\');
    body.push_back(c);
  }
  body += "\"}";
  return "HTTP/1.1 " + std::to_string(status) + " " + phrase +
         "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n" + body;
}

}  // namespace ptyhub::server
