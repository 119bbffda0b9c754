// Fuzzes what the server edge reads from a new connection before libwebsockets does (src/server): the
// end of the request head, the head check and bearer-subprotocol rewrite, the Origin policy, forwarded
// headers and IP addresses. Properties: nothing crashes; a prepared head is complete, within the size
// limit, carries no `bearer.` subprotocol entry and is prepared again to itself; a refusal is 400 or
// 431; an address parsed prints as text that parses back to it.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_check.hpp"
#include "src/server/forwarded.hpp"
#include "src/server/origin_policy.hpp"
#include "src/server/request_head.hpp"

namespace {

using namespace ptyhub::server;

// The value of the first header `name` (case-insensitive) in `head`, or "".
std::string header(std::string_view head, std::string_view name) {
  size_t pos = 0;
  while (pos < head.size()) {
    size_t end = head.find("\r\n", pos);
    if (end == std::string_view::npos) end = head.size();
    const std::string_view line = head.substr(pos, end - pos);
    pos = end + 2;
    if (line.size() <= name.size() || line[name.size()] != ':') continue;
    bool same = true;
    for (size_t i = 0; i < name.size() && same; ++i) same = std::tolower(uint8_t(line[i])) == std::tolower(uint8_t(name[i]));
    if (!same) continue;
    std::string_view value = line.substr(name.size() + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    return std::string(value);
  }
  return "";
}

// True when some Sec-WebSocket-Protocol header of `head` still has an entry starting with "bearer.".
bool has_bearer_entry(std::string_view head) {
  const std::string_view name = "sec-websocket-protocol:";
  size_t pos = 0;
  while (pos < head.size()) {
    size_t end = head.find("\r\n", pos);
    if (end == std::string_view::npos) end = head.size();
    std::string_view line = head.substr(pos, end - pos);
    pos = end + 2;
    if (line.size() < name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < name.size() && same; ++i) same = std::tolower(uint8_t(line[i])) == name[i];
    if (!same) continue;
    line.remove_prefix(name.size());
    while (!line.empty()) {
      const size_t comma = line.find(',');
      std::string_view item = line.substr(0, comma);
      while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
      if (item.starts_with("bearer.")) return true;
      if (comma == std::string_view::npos) break;
      line.remove_prefix(comma + 1);
    }
  }
  return false;
}

// An address that parses prints canonically and parses back to the same bytes.
void check_address(std::string_view text) {
  if (const auto address = IpAddress::parse(text)) {
    const auto again = IpAddress::parse_plain(address->text());
    FUZZ_CHECK(again.has_value());
    FUZZ_CHECK(again->bytes == address->bytes && again->v4 == address->v4);
  }
}

const TrustedProxies& trusted() {
  static const TrustedProxies proxies = [] {
    TrustedProxies p;
    std::string error;
    FUZZ_CHECK(p.parse({"127.0.0.1", "10.0.0.0/8", "2001:db8::/32", "unix"}, &error));
    return p;
  }();
  return proxies;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(bytes), size);
  const auto length = request_head_length(input);
  if (length) FUZZ_CHECK(*length <= size && *length >= 4 && input.substr(*length - 4, 4) == "\r\n\r\n");
  const std::string_view head = length ? input.substr(0, *length) : input;

  (void)move_bearer_subprotocol(head);
  const PreparedHead prepared = prepare_head(head);
  if (prepared.status != 0) {
    FUZZ_CHECK(prepared.status == 400 || prepared.status == 431);
    FUZZ_CHECK(!prepared.reason.empty());
    (void)refusal_response(prepared.status, prepared.reason);
  } else if (length) {
    FUZZ_CHECK(prepared.head.size() <= kMaxPreparedHead);
    FUZZ_CHECK(request_head_length(prepared.head) == prepared.head.size());
    FUZZ_CHECK(!has_bearer_entry(prepared.head));
    const PreparedHead again = prepare_head(prepared.head);
    FUZZ_CHECK(again.status == 0 && again.head == prepared.head);
  }

  const std::string host = header(head, "Host");
  const std::string origin = header(head, "Origin");
  (void)origin_allowed(origin, host, {"https://app.example.com", "http://localhost:3000"});
  (void)origin_allowed(origin, host, {}, "https");

  ForwardingHeaders forwarding{header(head, "Forwarded"), header(head, "X-Forwarded-For"),
                               header(head, "X-Forwarded-Proto"), header(head, "X-Forwarded-Host")};
  for (std::string_view peer : {"127.0.0.1", "", "192.0.2.7", "2001:db8::1"}) {
    const ClientAddress client = resolve_client(peer, forwarding, trusted());
    if (client.forwarded) check_address(client.address);
  }
  check_address(header(head, "X-Real-IP"));
  check_address(input.substr(0, 64));
  return 0;
}
