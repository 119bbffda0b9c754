// Fuzzes the git layer (src/git): the progress parser over arbitrary PTY output cut into arbitrary
// chunks, the ref and revision rules, and build_git_command() over arbitrary request data against a
// repos_root holding repositories, a symlink and a `.git` file that point outside it.
// Properties: nothing crashes; progress is the same however the bytes are chunked, percent is 0..100;
// a command that passes starts `git <operation>`, every argument before the first "--end-of-options" or
// "--" that starts with '-' is one of the allowed options (nothing like --upload-pack, -c or --exec),
// every absolute path in it and its repo and cwd resolve inside repos_root, and no URL names the ext/fd
// helpers or a host that ssh would read as an option.
#include <fuzzer/FuzzedDataProvider.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_check.hpp"
#include "src/git/git_progress.hpp"
#include "src/git/git_request.hpp"

namespace {

namespace fs = std::filesystem;
using namespace ptyhub::git;

// A repos_root with: repo/ (a .git directory), bare/ (a bare repository), empty/, link -> ../outside
// (a repository outside), gitfile/ (a .git file naming ../outside/.git). Removed at exit.
struct Fixture {
  std::string base;
  std::string root;

  Fixture() {
    char pattern[] = "/tmp/ptyhub-git-fuzz-XXXXXX";
    FUZZ_CHECK(mkdtemp(pattern) != nullptr);
    base = fs::canonical(pattern).string();
    root = base + "/root";
    fs::create_directories(root + "/repo/.git");
    fs::create_directories(root + "/bare/objects");
    fs::create_directories(root + "/bare/refs");
    std::ofstream(root + "/bare/HEAD") << "ref: refs/heads/main\n";
    fs::create_directories(root + "/empty");
    fs::create_directories(base + "/outside/.git");
    fs::create_directory_symlink("../outside", root + "/link");
    fs::create_directories(root + "/gitfile");
    std::ofstream(root + "/gitfile/.git") << "gitdir: " << base << "/outside/.git\n";
  }
  ~Fixture() {
    std::error_code ignored;
    fs::remove_all(base, ignored);
  }
};

const Fixture& fixture() {
  static const Fixture instance;
  return instance;
}

// Every option spelling build_git_command may put before the separator (canonical forms).
const std::set<std::string>& allowed_options() {
  static const std::set<std::string> options = {
      "--progress", "--single-branch", "--no-tags", "--bare", "--quiet", "--branch", "--all", "--prune",
      "--tags", "--dry-run", "--ff-only", "--rebase", "--no-rebase", "--force-with-lease", "--short",
      "--porcelain", "--oneline", "--graph", "--decorate", "--stat", "--name-only", "--cached", "--list",
      "-a", "-v", "-d", "-b", "--depth", "--max-count", "--no-local", "-s", "-n", "-q", "-p", "-t", "-r",
      "-l", "--verbose", "--delete", "--staged"};
  return options;
}

// Inside `root` (strictly below it, or the root itself when `or_root`).
bool inside(const std::string& path, const std::string& root, bool or_root) {
  if (or_root && path == root) return true;
  return path.size() > root.size() + 1 && path.starts_with(root) && path[root.size()] == '/';
}

// A URL that passed: no ext/fd helper, no host ssh would read as an option.
void check_url(const std::string& arg) {
  // A scheme as the rules read one (and git's url.c): a letter, then letters, digits, '+', '-' or '.'.
  // Anything else before a ':' is the host of an scp-like address ("+ile://--x/…": host "+ile").
  size_t scheme = 0;
  while (scheme < arg.size() &&
         (std::isalpha(uint8_t(arg[scheme])) ||
          (scheme > 0 && (std::isdigit(uint8_t(arg[scheme])) || std::string_view("+-.").find(arg[scheme]) != std::string_view::npos)))) {
    ++scheme;
  }
  std::string helper = arg.substr(0, scheme);
  std::transform(helper.begin(), helper.end(), helper.begin(), [](unsigned char c) { return std::tolower(c); });
  if (arg.compare(scheme, 2, "::") == 0) FUZZ_CHECK(helper != "ext" && helper != "fd");
  std::string_view authority;
  if (arg.compare(scheme, 3, "://") == 0) {
    authority = std::string_view(arg).substr(scheme + 3);
    authority = authority.substr(0, authority.find('/'));
  } else if (const size_t colon = arg.find(':'); colon != std::string::npos && colon < arg.find('/')) {
    authority = std::string_view(arg).substr(0, colon);  // scp-like user@host:path
  } else {
    return;
  }
  if (const size_t at = authority.rfind('@'); at != std::string_view::npos) authority.remove_prefix(at + 1);
  if (!authority.empty() && authority.front() == '[') authority.remove_prefix(1);
  FUZZ_CHECK(authority.empty() || authority.front() != '-');
}

// The command of a request that passed.
void check_command(const GitCommand& command, const std::string& root) {
  const auto& ops = git_operations();
  FUZZ_CHECK(command.argv.size() >= 2 && command.argv[0] == "git" && command.argv[1] == command.operation);
  FUZZ_CHECK(std::find(ops.begin(), ops.end(), command.operation) != ops.end());
  FUZZ_CHECK(inside(command.repo_path, root, false));
  FUZZ_CHECK(inside(command.cwd, root, true));
  // Only clone, fetch, pull and push take a URL; elsewhere what follows "--" is a pathspec.
  const bool uses_url = command.operation == "clone" || command.operation == "fetch" || command.operation == "pull" ||
                        command.operation == "push";
  bool separated = false;
  for (size_t i = 2; i < command.argv.size(); ++i) {
    const std::string& arg = command.argv[i];
    if (arg == "--" || arg == "--end-of-options") separated = true;
    if (!separated && arg.starts_with("-")) {
      FUZZ_CHECK(allowed_options().count(arg.substr(0, arg.find('='))) == 1);
    }
    if (arg.starts_with("/")) FUZZ_CHECK(inside(arg, root, false));
    if (separated && uses_url) check_url(arg);  // the URL, and refs or the destination (never URL-like)
  }
}

// The progress parser: the same updates whether the output comes whole or in pieces.
void fuzz_progress(FuzzedDataProvider& input) {
  std::vector<std::string> chunks;
  while (input.remaining_bytes() > 0) chunks.push_back(input.ConsumeRandomLengthString(512));
  std::string whole;
  for (const std::string& chunk : chunks) whole += chunk;

  GitProgressParser pieces;
  std::vector<GitProgress> from_pieces;
  for (const std::string& chunk : chunks) {
    auto out = pieces.feed(chunk);
    from_pieces.insert(from_pieces.end(), out.begin(), out.end());
  }
  auto tail = pieces.finish();
  from_pieces.insert(from_pieces.end(), tail.begin(), tail.end());

  GitProgressParser once;
  std::vector<GitProgress> from_whole = once.feed(whole);
  tail = once.finish();
  from_whole.insert(from_whole.end(), tail.begin(), tail.end());

  FUZZ_CHECK(from_pieces == from_whole);
  for (const GitProgress& p : from_whole) {
    FUZZ_CHECK(!p.phase.empty());
    if (p.percent) FUZZ_CHECK(*p.percent >= 0 && *p.percent <= 100);
  }
  if (!chunks.empty()) (void)parse_git_progress_line(chunks.front());
}

// A ref or revision that passes never reads as an option and holds no control character.
void fuzz_names(std::string_view text) {
  for (bool valid : {is_valid_ref_name(text), is_valid_revision(text)}) {
    if (!valid) continue;
    FUZZ_CHECK(!text.empty() && text.front() != '-');
    FUZZ_CHECK(std::none_of(text.begin(), text.end(), [](char c) { return uint8_t(c) < 0x20 || c == 0x7f; }));
  }
}

// A request's data, as JSON text.
void fuzz_request(std::string_view text) {
  const nlohmann::json data = nlohmann::json::parse(text, nullptr, false);
  if (data.is_discarded()) return;
  GitPolicy policy;
  policy.repos_root = fixture().root;
  GitCommand command;
  GitRequestError error;
  if (build_git_command(data, policy, &command, &error)) {
    check_command(command, fixture().root);
  } else {
    FUZZ_CHECK(!error.code.empty());
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)fixture();
  return 0;
}

// The first byte picks what the rest is.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(bytes) + 1, size - 1);
  switch (bytes[0] % 3) {
    case 0: {
      FuzzedDataProvider input(bytes + 1, size - 1);
      fuzz_progress(input);
      break;
    }
    case 1: fuzz_names(rest); break;
    default: fuzz_request(rest); break;
  }
  return 0;
}
