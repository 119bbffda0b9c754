// The `openssl` command line driven through std::system, its output read back from files.
#include "tests/unit/auth/test_keys.hpp"

#include <doctest/doctest.h>
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "auth/base64url.hpp"

namespace ptyhub::auth::test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// The process's temporary directory, removed with everything in it when the process exits.
class ScratchDir {
 public:
  ScratchDir() {
    char pattern[] = "/tmp/ptyhub-auth-test-XXXXXX";
    const char* made = mkdtemp(pattern);
    path_ = made != nullptr ? made : "";
  }
  ~ScratchDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

const std::string& scratch() {
  static ScratchDir dir;
  REQUIRE_FALSE(dir.path().empty());
  return dir.path();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void run(const std::string& command) {
  INFO("command: " << command);
  REQUIRE(std::system(command.c_str()) == 0);
}

std::string hex_to_bytes(std::string_view hex) {
  std::string bytes;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    bytes += static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16));
  }
  return bytes;
}

std::string trimmed(std::string text) {
  const size_t end = text.find_last_not_of(" \r\n\t");
  text.erase(end == std::string::npos ? 0 : end + 1);
  const size_t start = text.find_first_not_of(" \t");
  return start == std::string::npos ? std::string() : text.substr(start);
}

const char* generate_options(KeyType type) {
  switch (type) {
    case KeyType::rsa2048: return "-algorithm RSA -pkeyopt rsa_keygen_bits:2048";
    case KeyType::rsa1024: return "-algorithm RSA -pkeyopt rsa_keygen_bits:1024";
    case KeyType::ec_p256: return "-algorithm EC -pkeyopt ec_paramgen_curve:P-256";
    case KeyType::ec_p384: return "-algorithm EC -pkeyopt ec_paramgen_curve:P-384";
    case KeyType::ed25519: return "-algorithm ed25519";
  }
  return "";
}

KeyType type_of(std::string_view name) {
  if (name == "rsa-1024") return KeyType::rsa1024;
  if (name == "ec-p384") return KeyType::ec_p384;
  if (name.starts_with("rsa")) return KeyType::rsa2048;
  if (name.starts_with("ec")) return KeyType::ec_p256;
  REQUIRE(name.starts_with("ed"));
  return KeyType::ed25519;
}

TestKey generate(std::string_view name) {
  TestKey key{std::string(name), type_of(name), {}, {}, {}, {}};
  key.private_path = scratch() + "/" + key.name + ".key";
  key.public_path = scratch() + "/" + key.name + ".pub";
  run(std::string("openssl genpkey -quiet ") + generate_options(key.type) + " -out " + key.private_path);
  run("openssl pkey -in " + key.private_path + " -pubout -out " + key.public_path);
  key.private_pem = read_file(key.private_path);
  key.public_pem = read_file(key.public_path);
  return key;
}

// Writes `signing_input` to a file and signs it with `openssl dgst -sha256`; the raw output bytes.
std::string dgst_signature(const TestKey& key, std::string_view signing_input) {
  const std::string input = scratch() + "/input.txt";
  const std::string output = scratch() + "/signature.bin";
  REQUIRE(write_file(input, signing_input));
  if (key.type == KeyType::ed25519) {
    run("openssl pkeyutl -sign -rawin -inkey " + key.private_path + " -in " + input + " -out " + output);
  } else {
    run("openssl dgst -sha256 -sign " + key.private_path + " -out " + output + " " + input);
  }
  return read_file(output);
}

// The two INTEGERs of a DER ECDSA-Sig-Value as printed by `openssl asn1parse`, each as 32 bytes.
std::string der_to_raw_with_asn1parse(const std::string& der_path) {
  const std::string listing = scratch() + "/asn1.txt";
  run("openssl asn1parse -inform DER -in " + der_path + " > " + listing);
  std::istringstream lines(read_file(listing));
  std::string raw;
  for (std::string line; std::getline(lines, line);) {
    if (line.find("INTEGER") == std::string::npos) continue;
    std::string hex = trimmed(line.substr(line.rfind(':') + 1));
    if (hex.size() > 64) hex = hex.substr(hex.size() - 64);  // a leading 00 keeps r/s positive
    raw += hex_to_bytes(std::string(64 - hex.size(), '0') + hex);
  }
  REQUIRE(raw.size() == 64);
  return raw;
}

std::string public_der(const TestKey& key) {
  const std::string output = scratch() + "/" + key.name + ".der";
  run("openssl pkey -pubin -in " + key.public_path + " -outform DER -out " + output);
  return read_file(output);
}

json rsa_jwk(const TestKey& key) {
  const std::string listing = scratch() + "/modulus.txt";
  run("openssl rsa -pubin -in " + key.public_path + " -noout -modulus -text > " + listing + " 2>/dev/null");
  const std::string text = read_file(listing);
  REQUIRE(text.find("Exponent: 65537 (0x10001)") != std::string::npos);
  const size_t start = text.find("Modulus=");
  REQUIRE(start != std::string::npos);
  const std::string hex = trimmed(text.substr(start + 8, text.find('\n', start) - start - 8));
  return {{"kty", "RSA"}, {"n", base64url_encode(hex_to_bytes(hex))}, {"e", "AQAB"}};
}

}  // namespace

const TestKey& test_key(std::string_view name) {
  static std::map<std::string, TestKey, std::less<>> keys;
  auto it = keys.find(name);
  if (it == keys.end()) it = keys.emplace(std::string(name), generate(name)).first;
  return it->second;
}

std::string fresh_dir(std::string_view name) {
  const std::string path = scratch() + "/" + std::string(name);
  std::error_code ec;
  fs::remove_all(path, ec);
  REQUIRE(fs::create_directories(path, ec));
  return path;
}

bool write_file(const std::string& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  return static_cast<bool>(out);
}

std::string cli_signature(const TestKey& key, std::string_view signing_input) {
  const std::string signature = dgst_signature(key, signing_input);
  if (key.type != KeyType::ec_p256) return signature;
  return der_to_raw_with_asn1parse(scratch() + "/signature.bin");
}

std::string cli_der_signature(const TestKey& key, std::string_view signing_input) {
  REQUIRE(key.type == KeyType::ec_p256);
  return dgst_signature(key, signing_input);
}

json public_jwk(const TestKey& key) {
  json jwk;
  if (key.type == KeyType::rsa2048 || key.type == KeyType::rsa1024) {
    jwk = rsa_jwk(key);
  } else if (key.type == KeyType::ec_p256) {
    const std::string der = public_der(key);  // SubjectPublicKeyInfo ending in 04 || x || y
    REQUIRE(der.size() == 91);
    REQUIRE(der[26] == '\x04');
    jwk = {{"kty", "EC"}, {"crv", "P-256"}, {"x", base64url_encode(der.substr(27, 32))},
           {"y", base64url_encode(der.substr(59, 32))}};
  } else {
    REQUIRE(key.type == KeyType::ed25519);
    const std::string der = public_der(key);  // SubjectPublicKeyInfo ending in the 32 key bytes
    REQUIRE(der.size() == 44);
    jwk = {{"kty", "OKP"}, {"crv", "Ed25519"}, {"x", base64url_encode(der.substr(12))}};
  }
  jwk["kid"] = key.name;
  return jwk;
}

}  // namespace ptyhub::auth::test
