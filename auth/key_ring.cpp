// Building the key ring from options and picking the key for a token by kid or by kind.
#include "auth/key_ring.hpp"

namespace ptyhub::auth {

KeyRing::KeyRing(std::string hmac_secret, const std::vector<PublicKey>& keys) : secret_(std::move(hmac_secret)) {
  entries_.reserve(keys.size());
  for (const PublicKey& key : keys) add(key);
}

void KeyRing::add(const PublicKey& key) {
  const auto fail = [&](std::string problem) {
    if (error_.empty()) error_ = "key \"" + key.kid + "\": " + problem;
  };
  if (key.kid.empty()) return fail("empty kid");
  for (const Entry& entry : entries_) {
    if (entry.kid == key.kid) return fail("duplicate kid");
  }
  std::string problem;
  KeyKind kind{};
  PkeyPtr parsed = read_public_pem(key.pem, kind, problem);
  if (!parsed) return fail(problem);
  if (!key.alg.empty()) {
    const JwsAlgorithm* alg = find_jws_algorithm(key.alg);
    if (alg == nullptr || alg->kind != kind) {
      return fail("alg " + key.alg + " does not suit a " + std::string(key_kind_name(kind)) + " key");
    }
  }
  entries_.push_back(Entry{key.kid, key.alg, kind, std::move(parsed)});
}

std::optional<std::string_view> KeyRing::select(const JwsAlgorithm& alg, const std::string* kid, KeyRef& out) const {
  if (kid != nullptr) return select_by_kid(alg, *kid, out);
  return select_by_kind(alg, out);
}

std::optional<std::string_view> KeyRing::select_by_kid(const JwsAlgorithm& alg, const std::string& kid,
                                                       KeyRef& out) const {
  for (const Entry& entry : entries_) {
    if (entry.kid != kid) continue;
    if (entry.kind != alg.kind || (!entry.alg.empty() && entry.alg != alg.name)) return "alg does not match key";
    out.key = entry.key.get();
    return std::nullopt;
  }
  return "unknown kid";
}

std::optional<std::string_view> KeyRing::select_by_kind(const JwsAlgorithm& alg, KeyRef& out) const {
  if (alg.kind == KeyKind::hmac) {
    if (secret_.empty()) return "alg does not match key";
    out.secret = secret_;
    return std::nullopt;
  }
  const Entry* found = nullptr;
  for (const Entry& entry : entries_) {
    if (entry.kind != alg.kind) continue;
    if (found != nullptr) return "kid required";
    found = &entry;
  }
  if (found == nullptr || (!found->alg.empty() && found->alg != alg.name)) return "alg does not match key";
  out.key = found->key.get();
  return std::nullopt;
}

}  // namespace ptyhub::auth
