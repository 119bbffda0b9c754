// JWT verification in stages, each returning the first reason to reject: size and shape, header,
// algorithm and key, signature (before the payload is trusted), then the claims.
#include "auth/jwt.hpp"

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "auth/base64url.hpp"
#include "auth/jws_algorithm.hpp"
#include "auth/key_ring.hpp"
#include "auth/signature.hpp"

namespace ptyhub::auth {
namespace {

using json = nlohmann::json;
// A rejection reason (a static string), or nullopt when the stage passed.
using Error = std::optional<std::string_view>;

// Reasons for a part that must be base64url of a JSON object.
struct PartReasons {
  std::string_view encoding;
  std::string_view json;
  std::string_view object;
};
constexpr PartReasons kHeaderReasons{"bad header encoding", "header not json", "header not an object"};
constexpr PartReasons kPayloadReasons{"bad payload encoding", "payload not json", "payload not an object"};

struct TokenParts {
  std::string_view header;
  std::string_view payload;
  std::string_view signature;
  std::string_view signing_input;  // "header.payload", the text the signature covers
};

int64_t saturating_add(int64_t a, int64_t b) {
  int64_t sum = 0;
  if (!__builtin_add_overflow(a, b, &sum)) return sum;
  return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
}

std::optional<TokenParts> split_token(std::string_view token) {
  const size_t first = token.find('.');
  if (first == std::string_view::npos) return std::nullopt;
  const size_t second = token.find('.', first + 1);
  if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos) {
    return std::nullopt;
  }
  return TokenParts{token.substr(0, first), token.substr(first + 1, second - first - 1), token.substr(second + 1),
                    token.substr(0, second)};
}

Error decode_object(std::string_view part, const PartReasons& reasons, json& out) {
  const std::optional<std::string> text = base64url_decode(part);
  if (!text) return reasons.encoding;
  out = json::parse(*text, nullptr, false);
  if (out.is_discarded()) return reasons.json;
  if (!out.is_object()) return reasons.object;
  return std::nullopt;
}

bool is_none(std::string_view name) {
  if (name.size() != 4) return false;
  for (size_t i = 0; i < 4; ++i) {
    if ((name[i] | 0x20) != "none"[i]) return false;
  }
  return true;
}

Error read_algorithm(const json& header, const JwsAlgorithm*& alg) {
  const auto it = header.find("alg");
  if (it == header.end()) return "missing alg";
  if (!it->is_string()) return "unsupported alg";
  const std::string& name = it->get_ref<const std::string&>();
  if (is_none(name)) return "alg none rejected";
  alg = find_jws_algorithm(name);
  if (alg == nullptr) return "unsupported alg";
  // No header extension is understood, so any critical one must be refused (RFC 7515 §4.1.11).
  if (header.contains("crit")) return "unsupported crit header";
  return std::nullopt;
}

// `kid` is optional; when present it must be a string. `kid` stays nullptr when absent.
Error read_kid(const json& header, const std::string*& kid) {
  const auto it = header.find("kid");
  if (it == header.end()) return std::nullopt;
  if (!it->is_string()) return "invalid kid";
  kid = &it->get_ref<const std::string&>();
  return std::nullopt;
}

Error select_key(const KeyRing& keys, const json& header, const JwsAlgorithm*& alg, KeyRef& key) {
  if (auto error = read_algorithm(header, alg)) return error;
  const std::string* kid = nullptr;
  if (auto error = read_kid(header, kid)) return error;
  return keys.select(*alg, kid, key);
}

Error check_signature(const JwsAlgorithm& alg, const KeyRef& key, const TokenParts& parts) {
  const std::optional<std::string> given = base64url_decode(parts.signature);
  if (!given) return "bad signature encoding";
  const bool ok = alg.kind == KeyKind::hmac ? hmac_verify(alg, key.secret, parts.signing_input, *given)
                                            : verify_signature(alg, key.key, parts.signing_input, *given);
  if (!ok) return "bad signature";
  return std::nullopt;
}

// A NumericDate: an integer, or a float rounded down. nullopt when not a number or out of range.
std::optional<int64_t> numeric_date(const json& value) {
  if (value.is_number_unsigned()) {
    const auto v = value.get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(v);
  }
  if (value.is_number_integer()) return value.get<int64_t>();
  if (!value.is_number_float()) return std::nullopt;
  const double v = std::floor(value.get<double>());
  constexpr double kLimit = 9.0e18;  // inside int64_t, far beyond any real date
  if (!std::isfinite(v) || v < -kLimit || v > kLimit) return std::nullopt;
  return static_cast<int64_t>(v);
}

// Reads an optional date claim; a present claim that is not a number is `invalid`.
Error read_date(const json& payload, const char* key, std::string_view invalid, std::optional<int64_t>& out) {
  const auto it = payload.find(key);
  if (it == payload.end()) return std::nullopt;
  out = numeric_date(*it);
  if (!out) return invalid;
  return std::nullopt;
}

Error read_subject_and_dates(const json& payload, Claims& claims) {
  const auto sub = payload.find("sub");
  if (sub == payload.end()) return "missing sub";
  if (!sub->is_string() || sub->get_ref<const std::string&>().empty()) return "invalid sub";
  claims.sub = sub->get<std::string>();

  std::optional<int64_t> exp;
  if (auto error = read_date(payload, "exp", "invalid exp", exp)) return error;
  if (!exp) return "missing exp";
  claims.exp = *exp;
  if (auto error = read_date(payload, "nbf", "invalid nbf", claims.nbf)) return error;
  return read_date(payload, "iat", "invalid iat", claims.iat);
}

Error check_dates(const Claims& claims, int64_t leeway, int64_t now) {
  if (saturating_add(claims.exp, leeway) <= now) return "token expired";
  if (claims.nbf && saturating_add(*claims.nbf, -leeway) > now) return "token not yet valid";
  if (claims.iat && saturating_add(*claims.iat, -leeway) > now) return "token issued in the future";
  return std::nullopt;
}

Error read_issuer(const json& payload, const std::optional<std::string>& wanted, Claims& claims) {
  const auto it = payload.find("iss");
  if (it == payload.end()) return wanted ? Error{"missing iss"} : std::nullopt;
  if (!it->is_string()) return "invalid iss";
  claims.iss = it->get<std::string>();
  if (wanted && *claims.iss != *wanted) return "issuer mismatch";
  return std::nullopt;
}

// `aud` is a string or an array of strings; a configured audience must be one of them.
Error read_audience(const json& payload, const std::optional<std::string>& wanted, Claims& claims) {
  const auto it = payload.find("aud");
  if (it == payload.end()) return wanted ? Error{"missing aud"} : std::nullopt;
  std::vector<std::string_view> values;
  if (it->is_string()) {
    values.push_back(it->get_ref<const std::string&>());
  } else if (it->is_array()) {
    for (const json& item : *it) {
      if (!item.is_string()) return "invalid aud";
      values.push_back(item.get_ref<const std::string&>());
    }
  } else {
    return "invalid aud";
  }
  if (!values.empty()) claims.aud = std::string(values.front());
  if (!wanted) return std::nullopt;
  for (std::string_view value : values) {
    if (value == *wanted) return std::nullopt;
  }
  return "audience mismatch";
}

void split_scope_string(std::string_view text, std::vector<std::string>& out) {
  while (!text.empty()) {
    const size_t space = text.find(' ');
    const std::string_view name = text.substr(0, space);
    if (!name.empty()) out.emplace_back(name);
    if (space == std::string_view::npos) break;
    text.remove_prefix(space + 1);
  }
}

// `scope` (space-separated string) wins over `scp` (array of strings) when both are present.
Error read_scopes(const json& payload, std::vector<std::string>& scopes) {
  if (const auto scope = payload.find("scope"); scope != payload.end()) {
    if (!scope->is_string()) return "invalid scope";
    split_scope_string(scope->get_ref<const std::string&>(), scopes);
    return std::nullopt;
  }
  const auto scp = payload.find("scp");
  if (scp == payload.end()) return std::nullopt;
  if (!scp->is_array()) return "invalid scp";
  for (const json& item : *scp) {
    if (!item.is_string()) return "invalid scp";
    if (!item.get_ref<const std::string&>().empty()) scopes.push_back(item.get<std::string>());
  }
  return std::nullopt;
}

Error read_claims(const VerifierOptions& options, const json& payload, int64_t now, Claims& claims) {
  if (auto error = read_subject_and_dates(payload, claims)) return error;
  if (auto error = check_dates(claims, options.leeway_seconds, now)) return error;
  if (auto error = read_issuer(payload, options.issuer, claims)) return error;
  if (auto error = read_audience(payload, options.audience, claims)) return error;
  return read_scopes(payload, claims.scopes);
}

Error check_token(const VerifierOptions& options, const KeyRing* keys, std::string_view token, int64_t now,
                  Claims& claims) {
  if (token.size() > kMaxTokenBytes) return "token too large";
  if (keys != nullptr && !keys->error().empty()) return "bad key configuration";
  if (keys == nullptr || keys->empty()) return "no key configured";
  const std::optional<TokenParts> parts = split_token(token);
  if (!parts) return "malformed token";
  json header;
  if (auto error = decode_object(parts->header, kHeaderReasons, header)) return error;
  const JwsAlgorithm* alg = nullptr;
  KeyRef key;
  if (auto error = select_key(*keys, header, alg, key)) return error;
  if (auto error = check_signature(*alg, key, *parts)) return error;
  json payload;
  if (auto error = decode_object(parts->payload, kPayloadReasons, payload)) return error;
  return read_claims(options, payload, now, claims);
}

// A token made of `signing_input` and `signature`; empty when signing failed.
std::string join_signature(std::string_view signing_input, const std::string& signature) {
  if (signature.empty()) return {};
  std::string token(signing_input);
  token += '.';
  token += base64url_encode(signature);
  return token;
}

}  // namespace

JwtVerifier::JwtVerifier(VerifierOptions options)
    : options_(std::move(options)), keys_(std::make_unique<const KeyRing>(options_.hmac_secret, options_.public_keys)) {
  if (options_.leeway_seconds < 0) options_.leeway_seconds = 0;
}

JwtVerifier::JwtVerifier(const JwtVerifier& other) : JwtVerifier(other.options_) {}

JwtVerifier& JwtVerifier::operator=(const JwtVerifier& other) {
  if (this != &other) *this = JwtVerifier(other);
  return *this;
}

JwtVerifier::JwtVerifier(JwtVerifier&& other) noexcept = default;
JwtVerifier& JwtVerifier::operator=(JwtVerifier&& other) noexcept = default;
JwtVerifier::~JwtVerifier() = default;

VerifyResult JwtVerifier::verify(std::string_view token, int64_t now_seconds) const {
  VerifyResult result;
  if (const Error error = check_token(options_, keys_.get(), token, now_seconds, result.claims)) {
    result.claims = Claims{};
    result.reason = std::string(*error);
    return result;
  }
  result.ok = true;
  return result;
}

const std::string& JwtVerifier::key_error() const {
  static const std::string kNone;
  return keys_ ? keys_->error() : kNone;
}

std::string sign_encoded(HmacAlgorithm alg, std::string_view secret, std::string_view signing_input) {
  std::string token(signing_input);
  token += '.';
  token += base64url_encode(hmac_sign(hmac_jws_algorithm(alg), secret, signing_input));
  return token;
}

std::string sign_jwt(HmacAlgorithm alg, std::string_view secret, std::string_view header_json,
                     std::string_view payload_json) {
  return sign_encoded(alg, secret, base64url_encode(header_json) + "." + base64url_encode(payload_json));
}

std::string mint_token(std::string_view secret, std::string_view sub, std::string_view scope, int64_t now_seconds,
                       int64_t ttl_seconds) {
  const json header = {{"alg", "HS256"}, {"typ", "JWT"}};
  const json payload = {
      {"sub", std::string(sub)},
      {"scope", std::string(scope)},
      {"iat", now_seconds},
      {"exp", saturating_add(now_seconds, ttl_seconds)},
  };
  // Invalid UTF-8 in `sub`/`scope` is replaced rather than thrown on.
  const auto dump = [](const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); };
  return sign_jwt(HmacAlgorithm::hs256, secret, dump(header), dump(payload));
}

std::string sign_encoded_with_private_key(std::string_view alg, std::string_view private_key_pem,
                                          std::string_view signing_input) {
  const JwsAlgorithm* algorithm = find_jws_algorithm(alg);
  if (algorithm == nullptr || algorithm->kind == KeyKind::hmac) return {};
  std::string problem;
  KeyKind kind{};
  const PkeyPtr key = read_private_pem(private_key_pem, kind, problem);
  if (!key || kind != algorithm->kind) return {};
  return join_signature(signing_input, sign_with_key(*algorithm, key.get(), signing_input));
}

std::string sign_jwt_with_private_key(std::string_view alg, std::string_view private_key_pem,
                                      std::string_view header_json, std::string_view payload_json) {
  return sign_encoded_with_private_key(alg, private_key_pem,
                                       base64url_encode(header_json) + "." + base64url_encode(payload_json));
}

}  // namespace ptyhub::auth
