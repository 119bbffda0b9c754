// Loading public keys from PEM files, directories of PEM files and JWKS files. Every failure becomes
// "<path>: <problem>"; nothing is handed out until every path has loaded.
#include "auth/public_key.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <system_error>

#include "auth/key_kind.hpp"

namespace ptyhub::auth {
namespace {

namespace fs = std::filesystem;

struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

// Keys loaded so far, and the file each kid came from (to name both files of a duplicate).
struct Loader {
  std::vector<PublicKey> keys;
  std::map<std::string, std::string, std::less<>> source_of_kid;
  std::string error;

  bool fail(const fs::path& path, std::string problem) {
    error = path.string() + ": " + problem;
    return false;
  }
};

std::string errno_text(int error) { return std::generic_category().message(error); }

bool read_key_file(const fs::path& path, std::string& text, std::string& problem) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  if (ec) {
    problem = ec.message();
    return false;
  }
  if (size > kMaxKeyFileBytes) {
    problem = "larger than " + std::to_string(kMaxKeyFileBytes) + " bytes";
    return false;
  }
  const FilePtr file(std::fopen(path.c_str(), "rb"));
  if (!file) {
    problem = errno_text(errno);
    return false;
  }
  text.assign(static_cast<size_t>(size), '\0');
  const size_t read = std::fread(text.data(), 1, text.size(), file.get());
  text.resize(read);
  if (std::ferror(file.get()) != 0) {
    problem = "read error";
    return false;
  }
  return true;
}

bool add_key(Loader& loader, const fs::path& path, PublicKey key) {
  if (key.kid.empty()) return loader.fail(path, "empty kid");
  const auto [it, inserted] = loader.source_of_kid.emplace(key.kid, path.string());
  if (!inserted) return loader.fail(path, "duplicate kid \"" + key.kid + "\" (also in " + it->second + ")");
  loader.keys.push_back(std::move(key));
  return true;
}

bool load_pem_file(Loader& loader, const fs::path& path) {
  std::string text, problem;
  if (!read_key_file(path, text, problem)) return loader.fail(path, problem);
  KeyKind kind{};
  const PkeyPtr key = read_public_pem(text, kind, problem);
  if (!key) return loader.fail(path, problem);
  std::string pem = write_public_pem(key.get());
  if (pem.empty()) return loader.fail(path, "cannot encode the key as PEM");
  return add_key(loader, path, PublicKey{path.stem().string(), std::move(pem), {}});
}

bool load_jwks_file(Loader& loader, const fs::path& path) {
  std::string text, problem;
  if (!read_key_file(path, text, problem)) return loader.fail(path, problem);
  std::vector<PublicKey> keys;
  if (!parse_jwks(text, &keys, &problem)) return loader.fail(path, problem);
  for (PublicKey& key : keys) {
    if (!add_key(loader, path, std::move(key))) return false;
  }
  return true;
}

// The regular files `*.pem` directly inside `dir`, sorted by name.
bool list_pem_files(Loader& loader, const fs::path& dir, std::vector<fs::path>& files) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
    std::error_code status_ec;
    if (it->path().extension() == ".pem" && it->is_regular_file(status_ec)) files.push_back(it->path());
  }
  if (ec) return loader.fail(dir, ec.message());
  std::sort(files.begin(), files.end());
  return true;
}

bool load_directory(Loader& loader, const fs::path& dir) {
  std::vector<fs::path> files;
  if (!list_pem_files(loader, dir, files)) return false;
  if (files.empty()) return loader.fail(dir, "no *.pem file in the directory");
  for (const fs::path& file : files) {
    if (!load_pem_file(loader, file)) return false;
  }
  return true;
}

bool load_path(Loader& loader, const fs::path& path) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (ec) return loader.fail(path, ec.message());
  if (status.type() == fs::file_type::not_found) return loader.fail(path, errno_text(ENOENT));
  if (fs::is_directory(status)) return load_directory(loader, path);
  if (!fs::is_regular_file(status)) return loader.fail(path, "not a regular file or a directory");
  if (path.extension() == ".json") return load_jwks_file(loader, path);
  return load_pem_file(loader, path);
}

}  // namespace

bool load_public_keys(const std::vector<std::string>& paths, std::vector<PublicKey>* out, std::string* error) {
  Loader loader;
  for (const std::string& path : paths) {
    if (path.empty()) {
      *error = "empty key path";
      return false;
    }
    if (!load_path(loader, fs::path(path))) {
      *error = std::move(loader.error);
      return false;
    }
  }
  *out = std::move(loader.keys);
  return true;
}

}  // namespace ptyhub::auth
