// Test keys made with the `openssl` command line in a temporary directory (removed when the test process
// exits), and signatures made by the command line, so the verifier is checked against a signer that is
// not auth/'s own. A key is generated on first use, once per process. Single-threaded, like doctest.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace ptyhub::auth::test {

enum class KeyType { rsa2048, rsa1024, ec_p256, ec_p384, ed25519 };

struct TestKey {
  std::string name;  // also the kid the tests give it
  KeyType type;
  std::string private_path;
  std::string public_path;
  std::string private_pem;
  std::string public_pem;  // "BEGIN PUBLIC KEY", as `openssl pkey -pubout` writes it
};

// Known names: "rsa-a", "rsa-b" (2048 bits), "rsa-1024", "ec-a", "ec-b" (P-256), "ec-p384", "ed-a", "ed-b".
const TestKey& test_key(std::string_view name);

// A new empty directory inside the process's temporary directory.
std::string fresh_dir(std::string_view name);
bool write_file(const std::string& path, std::string_view text);

// The command line's JWS signature of `signing_input`: RS256 by `openssl dgst -sha256 -sign`, ES256 the
// same turned from DER into r||s through `openssl asn1parse`, EdDSA by `openssl pkeyutl -sign -rawin`.
std::string cli_signature(const TestKey& key, std::string_view signing_input);
// An ES256 signature as the DER ECDSA-Sig-Value `openssl dgst` writes (not the JWS form).
std::string cli_der_signature(const TestKey& key, std::string_view signing_input);

// The key's public JWK (with "kid": name), from the command line's view of the key: the RSA modulus
// printed by `openssl rsa -modulus`, the EC point and Ed25519 key bytes at the end of the DER form.
nlohmann::json public_jwk(const TestKey& key);

}  // namespace ptyhub::auth::test
