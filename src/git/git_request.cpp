// Building git commands from requests: the schema, per-operation option tables, ref, pathspec and URL
// rules, and path confinement to repos_root (resolve with realpath, then check).
#include "src/git/git_request.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <optional>
#include <span>

namespace ptyhub::git {
namespace {

using json = nlohmann::json;

constexpr const char* kBadMessage = "bad_message";
constexpr const char* kForbidden = "forbidden";
constexpr const char* kNotFound = "not_found";
constexpr const char* kUnavailable = "unavailable";

constexpr size_t kMaxArgs = 64;
constexpr size_t kMaxArgBytes = 4096;
constexpr size_t kMaxPathBytes = 4096;
constexpr size_t kMaxRefBytes = 255;
constexpr size_t kMaxCountDigits = 9;
constexpr size_t kMaxGitFileBytes = 4096;

// ---------------------------------------------------------------------------------------------------
// Operation and option tables.

enum class Value { none, count, ref_name };

// An allowed option: `name` is what goes into argv ("--depth=N" for long names, "-b" "NAME" for short
// ones); `alias` is another spelling the client may use.
struct OptionSpec {
  std::string_view name;
  std::string_view alias;
  Value value;
};

// How an operation's positional arguments are read and where they go.
enum class Shape { clone, remote, revisions, status, checkout, branch };

struct OperationSpec {
  std::string_view name;
  Shape shape;
  std::span<const OptionSpec> options;
};

constexpr OptionSpec kCloneOptions[] = {
    {"--depth", "", Value::count},  {"--branch", "-b", Value::ref_name}, {"--single-branch", "", Value::none},
    {"--no-tags", "", Value::none}, {"--bare", "", Value::none},         {"--progress", "", Value::none},
    {"--quiet", "-q", Value::none},
};
constexpr OptionSpec kFetchOptions[] = {
    {"--all", "", Value::none},    {"--prune", "-p", Value::none},  {"--tags", "-t", Value::none},
    {"--depth", "", Value::count}, {"--progress", "", Value::none}, {"--dry-run", "", Value::none},
};
constexpr OptionSpec kPullOptions[] = {
    {"--ff-only", "", Value::none},
    {"--rebase", "-r", Value::none},
    {"--no-rebase", "", Value::none},
    {"--progress", "", Value::none},
};
constexpr OptionSpec kPushOptions[] = {
    {"--tags", "", Value::none},
    {"--force-with-lease", "", Value::none},
    {"--progress", "", Value::none},
    {"--dry-run", "", Value::none},
};
constexpr OptionSpec kStatusOptions[] = {
    {"--short", "-s", Value::none},
    {"--branch", "-b", Value::none},
    {"--porcelain", "", Value::none},
};
constexpr OptionSpec kLogOptions[] = {
    {"--oneline", "", Value::none},
    {"--max-count", "-n", Value::count},
    {"--graph", "", Value::none},
    {"--decorate", "", Value::none},
};
constexpr OptionSpec kDiffOptions[] = {
    {"--stat", "", Value::none},
    {"--name-only", "", Value::none},
    {"--cached", "--staged", Value::none},
};
constexpr OptionSpec kCheckoutOptions[] = {
    {"-b", "", Value::ref_name},
};
constexpr OptionSpec kBranchOptions[] = {
    {"--list", "-l", Value::none},
    {"-a", "--all", Value::none},
    {"-v", "--verbose", Value::none},
    {"-d", "--delete", Value::none},
};

constexpr std::array<OperationSpec, 9> kOperations{{
    {"clone", Shape::clone, kCloneOptions},
    {"fetch", Shape::remote, kFetchOptions},
    {"pull", Shape::remote, kPullOptions},
    {"push", Shape::remote, kPushOptions},
    {"status", Shape::status, kStatusOptions},
    {"log", Shape::revisions, kLogOptions},
    {"diff", Shape::revisions, kDiffOptions},
    {"checkout", Shape::checkout, kCheckoutOptions},
    {"branch", Shape::branch, kBranchOptions},
}};

const OperationSpec* find_operation(std::string_view name) {
  for (const OperationSpec& op : kOperations) {
    if (op.name == name) return &op;
  }
  return nullptr;
}

const OptionSpec* find_option(const OperationSpec& op, std::string_view name) {
  for (const OptionSpec& spec : op.options) {
    if (spec.name == name || (!spec.alias.empty() && spec.alias == name)) return &spec;
  }
  return nullptr;
}

bool uses_url(Shape shape) { return shape == Shape::clone || shape == Shape::remote; }
bool takes_pathspecs(Shape shape) { return shape == Shape::revisions || shape == Shape::status; }

// ---------------------------------------------------------------------------------------------------
// Errors and small string rules.

bool fail(GitRequestError* error, const char* code, std::string message, std::string field) {
  if (error != nullptr) *error = {code, std::move(message), std::move(field)};
  return false;
}

std::string arg_field(size_t index) { return "data.args." + std::to_string(index); }

bool is_control(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7f;
}

bool has_control(std::string_view text) { return std::any_of(text.begin(), text.end(), is_control); }

// Calls `visit` on each '/'-separated component (empty ones included); stops when it returns false.
template <typename Visit>
bool each_component(std::string_view path, Visit visit) {
  size_t start = 0;
  while (true) {
    const size_t slash = path.find('/', start);
    if (!visit(path.substr(start, slash == std::string_view::npos ? slash : slash - start))) return false;
    if (slash == std::string_view::npos) return true;
    start = slash + 1;
  }
}

bool is_count(std::string_view text) {
  if (text.empty() || text.size() > kMaxCountDigits) return false;
  return std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// One side of a revision: a ref name or "@", then any ~N / ^N suffixes (N up to 6 digits, optional).
bool is_valid_revision_side(std::string_view side) {
  const size_t cut = side.find_first_of("~^");
  const std::string_view base = side.substr(0, cut);
  if (base != "@" && !is_valid_ref_name(base)) return false;
  if (cut == std::string_view::npos) return true;
  size_t digits = 0;
  for (char c : side.substr(cut)) {
    if (c == '~' || c == '^') {
      digits = 0;
    } else if (c < '0' || c > '9' || ++digits > 6) {
      return false;
    }
  }
  return true;
}

// A pathspec placed after "--": relative, no ".." component, no pathspec magic (leading ':').
bool is_valid_pathspec(std::string_view path) {
  if (path.empty() || path.size() > kMaxPathBytes || has_control(path)) return false;
  if (path.front() == '/' || path.front() == ':') return false;
  return each_component(path, [](std::string_view c) { return c != ".."; });
}

// ---------------------------------------------------------------------------------------------------
// Filesystem lookups.

std::optional<std::string> real_path(const std::string& path) {
  char buffer[PATH_MAX];
  if (::realpath(path.c_str(), buffer) == nullptr) return std::nullopt;
  return std::string(buffer);
}

bool is_directory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// `path` strictly below `root`; both already resolved.
bool is_inside(const std::string& path, const std::string& root) {
  if (root == "/") return path.size() > 1 && path.front() == '/';
  return path.size() > root.size() && path.compare(0, root.size(), root) == 0 && path[root.size()] == '/';
}

std::string join(const std::string& dir, std::string_view name) {
  return (dir == "/" ? std::string() : dir) + "/" + std::string(name);
}

bool is_empty_directory(const std::string& path) {
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) return false;
  bool empty = true;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string_view name = entry->d_name;
    if (name != "." && name != "..") {
      empty = false;
      break;
    }
  }
  ::closedir(dir);
  return empty;
}

// A relative path whose ".." components climb above its start, before any symlink is considered.
bool climbs_out(std::string_view relative) {
  int depth = 0;
  return each_component(relative, [&depth](std::string_view c) {
           if (c.empty() || c == ".") return true;
           depth += c == ".." ? -1 : 1;
           return depth >= 0;
         }) == false;
}

enum class RepoCheck { ok, not_repository, outside };

// The target of a `.git` file ("gitdir: <path>") must be inside `root` too.
RepoCheck check_git_file(const std::string& git_file, const std::string& dir, const std::string& root) {
  const int fd = ::open(git_file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return RepoCheck::not_repository;
  std::string content(kMaxGitFileBytes, '\0');
  const ssize_t n = ::read(fd, content.data(), content.size());
  ::close(fd);
  if (n <= 0) return RepoCheck::not_repository;
  content.resize(static_cast<size_t>(n));
  constexpr std::string_view kPrefix = "gitdir: ";
  if (content.compare(0, kPrefix.size(), kPrefix) != 0) return RepoCheck::not_repository;
  std::string target = content.substr(kPrefix.size(), content.find_first_of("\r\n") - kPrefix.size());
  if (target.empty() || target.find('\0') != std::string::npos) return RepoCheck::not_repository;
  const auto resolved = real_path(target.front() == '/' ? target : join(dir, target));
  if (!resolved || !is_directory(*resolved)) return RepoCheck::not_repository;
  return is_inside(*resolved, root) ? RepoCheck::ok : RepoCheck::outside;
}

// `dir` (resolved, inside `root`) is the top of a repository whose git directory is inside `root`:
// a `.git` directory, a `.git` symlink or file pointing inside, or a bare repository.
RepoCheck check_repository(const std::string& dir, const std::string& root) {
  const std::string dot_git = join(dir, ".git");
  struct stat st {};
  if (::lstat(dot_git.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return RepoCheck::ok;
    if (S_ISREG(st.st_mode)) return check_git_file(dot_git, dir, root);
    if (!S_ISLNK(st.st_mode)) return RepoCheck::not_repository;
    const auto target = real_path(dot_git);
    if (!target || !is_directory(*target)) return RepoCheck::not_repository;
    return is_inside(*target, root) ? RepoCheck::ok : RepoCheck::outside;
  }
  struct stat head {};
  const bool bare = ::stat(join(dir, "HEAD").c_str(), &head) == 0 && S_ISREG(head.st_mode) &&
                    is_directory(join(dir, "objects")) && is_directory(join(dir, "refs"));
  return bare ? RepoCheck::ok : RepoCheck::not_repository;
}

// ---------------------------------------------------------------------------------------------------
// The request after the schema checks.

struct Context {
  std::string root;                    // realpath of repos_root
  std::vector<std::string> protocols;  // allowed, lower-case, without ext and fd
};

struct Fields {
  const OperationSpec* op = nullptr;
  std::string repo;
  std::vector<std::string> args;
  std::optional<std::string> url;
};

struct Arg {
  std::string text;
  size_t index;  // in data.args
};

struct ParsedArgs {
  std::vector<std::string> options;     // canonical, in the order given
  std::vector<std::string_view> names;  // canonical names of the options given
  std::vector<Arg> positionals;
  std::vector<Arg> pathspecs;  // after "--"

  bool has(std::string_view name) const { return std::find(names.begin(), names.end(), name) != names.end(); }
};

// Resolves `path` (absolute, or relative to the root) to a repository inside the root. `field` names
// the request member it came from.
bool resolve_repository(const Context& ctx, const std::string& path, const std::string& field, std::string* out,
                        GitRequestError* error) {
  const auto resolved = real_path(path.front() == '/' ? path : join(ctx.root, path));
  if (!resolved) return fail(error, kNotFound, "no repository there", field);
  if (!is_inside(*resolved, ctx.root)) return fail(error, kForbidden, "the path resolves outside repos_root", field);
  switch (check_repository(*resolved, ctx.root)) {
    case RepoCheck::ok:
      *out = *resolved;
      return true;
    case RepoCheck::outside:
      return fail(error, kForbidden, "the repository's git directory is outside repos_root", field);
    case RepoCheck::not_repository:
      break;
  }
  return fail(error, kNotFound, "not the top directory of a git repository", field);
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// Public rules.

const std::vector<std::string>& git_operations() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const OperationSpec& op : kOperations) out.emplace_back(op.name);
    return out;
  }();
  return names;
}

bool is_valid_ref_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxRefBytes || name == "@") return false;
  if (name.front() == '-' || name.front() == '+' || name.front() == '/') return false;
  if (name.back() == '/' || name.back() == '.') return false;
  if (name.find("..") != std::string_view::npos || name.find("@{") != std::string_view::npos) return false;
  constexpr std::string_view kForbiddenChars = " ~^:?*[\\";
  for (char c : name) {
    if (is_control(c) || kForbiddenChars.find(c) != std::string_view::npos) return false;
  }
  return each_component(name, [](std::string_view c) {
    constexpr std::string_view kLock = ".lock";
    if (c.empty() || c.front() == '.') return false;
    return !(c.size() >= kLock.size() && c.substr(c.size() - kLock.size()) == kLock);
  });
}

bool is_valid_revision(std::string_view revision) {
  if (revision.empty() || revision.size() > kMaxRefBytes) return false;
  size_t dots = revision.find("...");
  size_t width = 3;
  if (dots == std::string_view::npos) {
    dots = revision.find("..");
    width = 2;
  }
  if (dots == std::string_view::npos) return is_valid_revision_side(revision);
  const std::string_view left = revision.substr(0, dots);
  const std::string_view right = revision.substr(dots + width);
  if (left.empty() && right.empty()) return false;
  return (left.empty() || is_valid_revision_side(left)) && (right.empty() || is_valid_revision_side(right));
}

std::vector<std::string> compose_git_environment(const std::vector<std::string>& inherited, const GitCommand& command) {
  std::vector<std::string> out;
  for (const std::string& entry : inherited) {
    const size_t eq = entry.find('=');
    if (eq == std::string::npos || eq == 0) continue;
    const std::string_view name = std::string_view(entry).substr(0, eq);
    if (name.starts_with("GIT_")) continue;
    const bool overridden =
        std::any_of(command.env.begin(), command.env.end(), [name](const auto& kv) { return kv.first == name; });
    if (!overridden) out.push_back(entry);
  }
  for (const auto& [name, value] : command.env) out.push_back(name + "=" + value);
  return out;
}

namespace {

// ---------------------------------------------------------------------------------------------------
// Schema (bad_message) checks.

bool read_operation(const json& data, Fields* fields, GitRequestError* error) {
  const auto it = data.find("operation");
  if (it == data.end() || !it->is_string()) {
    return fail(error, kBadMessage, "operation is required and must be a string", "data.operation");
  }
  fields->op = find_operation(it->get_ref<const std::string&>());
  if (fields->op == nullptr) {
    return fail(error, kBadMessage,
                "operation must be one of clone, fetch, pull, push, status, log, diff, checkout, branch",
                "data.operation");
  }
  return true;
}

bool read_repo(const json& data, Fields* fields, GitRequestError* error) {
  const auto it = data.find("repo");
  if (it == data.end() || !it->is_string()) {
    return fail(error, kBadMessage, "repo is required and must be a string", "data.repo");
  }
  fields->repo = it->get<std::string>();
  if (fields->repo.empty()) return fail(error, kBadMessage, "repo must not be empty", "data.repo");
  if (fields->repo.size() > kMaxPathBytes) return fail(error, kBadMessage, "repo is too long", "data.repo");
  return true;
}

bool read_args(const json& data, Fields* fields, GitRequestError* error) {
  const auto it = data.find("args");
  if (it == data.end() || it->is_null()) return true;
  if (!it->is_array()) return fail(error, kBadMessage, "args must be an array of strings", "data.args");
  if (it->size() > kMaxArgs) return fail(error, kBadMessage, "args has too many items", "data.args");
  for (size_t i = 0; i < it->size(); ++i) {
    const json& item = (*it)[i];
    if (!item.is_string()) return fail(error, kBadMessage, "args items must be strings", arg_field(i));
    if (item.get_ref<const std::string&>().size() > kMaxArgBytes) {
      return fail(error, kBadMessage, "args item is too long", arg_field(i));
    }
    fields->args.push_back(item.get<std::string>());
  }
  return true;
}

bool read_url(const json& data, Fields* fields, GitRequestError* error) {
  const auto it = data.find("url");
  const bool present = it != data.end() && !it->is_null();
  const Shape shape = fields->op->shape;
  if (!present) {
    if (shape == Shape::clone) return fail(error, kBadMessage, "clone needs url", "data.url");
    return true;
  }
  if (!uses_url(shape)) return fail(error, kBadMessage, "url is only used by clone, fetch, pull and push", "data.url");
  if (!it->is_string() || it->get_ref<const std::string&>().empty()) {
    return fail(error, kBadMessage, "url must be a non-empty string", "data.url");
  }
  if (it->get_ref<const std::string&>().size() > kMaxArgBytes) {
    return fail(error, kBadMessage, "url is too long", "data.url");
  }
  fields->url = it->get<std::string>();
  return true;
}

bool read_fields(const json& data, Fields* fields, GitRequestError* error) {
  if (!data.is_object()) return fail(error, kBadMessage, "data must be an object", "data");
  return read_operation(data, fields, error) && read_repo(data, fields, error) && read_args(data, fields, error) &&
         read_url(data, fields, error);
}

// ---------------------------------------------------------------------------------------------------
// Options.

bool valid_value(Value kind, std::string_view value) {
  switch (kind) {
    case Value::count:
      return is_count(value);
    case Value::ref_name:
      return is_valid_ref_name(value);
    case Value::none:
      break;
  }
  return false;
}

// Reads the option at args[*i] (and its value, which may be the next item), appending its canonical
// spelling. Anything not on the operation's list is refused.
bool parse_option(const OperationSpec& op, const std::vector<std::string>& args, size_t* i, ParsedArgs* parsed,
                  GitRequestError* error) {
  const size_t index = *i;
  const std::string_view arg = args[index];
  std::string_view name = arg;
  std::optional<std::string_view> inline_value;
  const bool long_option = arg.starts_with("--");
  const size_t split = long_option ? arg.find('=') : (arg.size() > 2 ? 2 : std::string_view::npos);
  if (split != std::string_view::npos) {
    name = arg.substr(0, split);
    inline_value = arg.substr(long_option ? split + 1 : split);
  }
  const OptionSpec* spec = find_option(op, name);
  // "-b=x" would name the branch "=x": refused as ambiguous, like a flag given a value.
  const bool short_with_equals = !long_option && inline_value && inline_value->starts_with('=');
  if (spec == nullptr || (spec->value == Value::none && inline_value) || short_with_equals) {
    return fail(error, kForbidden, "this option is not allowed for " + std::string(op.name), arg_field(index));
  }
  parsed->names.push_back(spec->name);
  if (spec->value == Value::none) {
    if (!(spec->name == "--progress" && uses_url(op.shape))) parsed->options.emplace_back(spec->name);
    return true;
  }
  size_t value_index = index;
  if (!inline_value) {
    if (index + 1 >= args.size()) {
      return fail(error, kBadMessage, std::string(spec->name) + " needs a value", arg_field(index));
    }
    value_index = ++*i;
    inline_value = args[value_index];
  }
  if (!valid_value(spec->value, *inline_value)) {
    return fail(error, kForbidden, "invalid value for " + std::string(spec->name), arg_field(value_index));
  }
  if (spec->name.starts_with("--")) {
    parsed->options.push_back(std::string(spec->name) + "=" + std::string(*inline_value));
  } else {
    parsed->options.emplace_back(spec->name);
    parsed->options.emplace_back(*inline_value);
  }
  return true;
}

bool parse_args(const OperationSpec& op, const std::vector<std::string>& args, ParsedArgs* parsed,
                GitRequestError* error) {
  bool pathspecs = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (pathspecs) {
      parsed->pathspecs.push_back({arg, i});
    } else if (arg == "--") {
      if (!takes_pathspecs(op.shape)) {
        return fail(error, kForbidden, std::string(op.name) + " takes no pathspecs", arg_field(i));
      }
      pathspecs = true;
    } else if (arg.size() > 1 && arg.front() == '-') {
      if (!parse_option(op, args, &i, parsed, error)) return false;
    } else {
      parsed->positionals.push_back({arg, i});
    }
  }
  return true;
}

// ---------------------------------------------------------------------------------------------------
// URLs.

bool is_scheme_char(char c, bool first) {
  const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  if (first) return alpha;
  return alpha || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool is_allowed(const Context& ctx, const std::string& protocol) {
  return std::find(ctx.protocols.begin(), ctx.protocols.end(), protocol) != ctx.protocols.end();
}

bool refuse_protocol(const std::string& protocol, GitRequestError* error) {
  return fail(error, kForbidden, "URL protocol '" + protocol + "' is not allowed", "data.url");
}

// "user@host" (or "[host" of a bracketed scp-like URL): a host that ssh would read as an option is refused.
bool check_host(std::string_view authority, GitRequestError* error) {
  const size_t at = authority.rfind('@');
  std::string_view host = at == std::string_view::npos ? authority : authority.substr(at + 1);
  if (!host.empty() && host.front() == '[') host.remove_prefix(1);
  if (host.empty() || host.front() == '-') return fail(error, kForbidden, "the URL's host is not valid", "data.url");
  return true;
}

// Decodes %XX escapes as git does for file:// URLs; false on a malformed escape or a NUL.
bool percent_decode(std::string_view text, std::string* out) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  out->clear();
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out->push_back(text[i]);
      continue;
    }
    if (i + 2 >= text.size() || hex(text[i + 1]) < 0 || hex(text[i + 2]) < 0) return false;
    const int byte = hex(text[i + 1]) * 16 + hex(text[i + 2]);
    if (byte == 0) return false;
    out->push_back(static_cast<char>(byte));
    i += 2;
  }
  return true;
}

// A local repository (a plain path or a file:// URL): must resolve inside the root; git is given the
// resolved absolute path.
bool check_local_url(const Context& ctx, const std::string& path, std::string* argv_value, GitRequestError* error) {
  if (!is_allowed(ctx, "file")) return refuse_protocol("file", error);
  if (path.front() != '/' && climbs_out(path)) {
    return fail(error, kForbidden, "the path resolves outside repos_root", "data.url");
  }
  return resolve_repository(ctx, path, "data.url", argv_value, error);
}

// "<scheme>://…": the scheme must be allowed; ssh-like hosts must not look like options.
bool check_scheme_url(const Context& ctx, const std::string& url, size_t scheme_len, std::string* argv_value,
                      bool* local, GitRequestError* error) {
  std::string protocol = lower(std::string_view(url).substr(0, scheme_len));
  if (protocol == "git+ssh" || protocol == "ssh+git") protocol = "ssh";
  if (!is_allowed(ctx, protocol)) return refuse_protocol(protocol, error);
  const std::string_view rest = std::string_view(url).substr(scheme_len + 3);
  if (protocol == "file") {
    std::string path;
    if (rest.empty() || rest.front() != '/' || !percent_decode(rest, &path)) {
      return fail(error, kForbidden, "a file URL must be file:///absolute/path", "data.url");
    }
    *local = true;
    return check_local_url(ctx, path, argv_value, error);
  }
  if (!check_host(rest.substr(0, rest.find('/')), error)) return false;
  *argv_value = url;
  return true;
}

// Checks `url` and gives the text to put in argv (the URL itself, or a resolved local path).
bool check_url(const Context& ctx, const std::string& url, std::string* argv_value, bool* local,
               GitRequestError* error) {
  if (url.front() == '-') return fail(error, kForbidden, "a URL must not start with '-'", "data.url");
  if (has_control(url)) return fail(error, kForbidden, "the URL has control characters", "data.url");
  size_t scheme_len = 0;
  while (scheme_len < url.size() && is_scheme_char(url[scheme_len], scheme_len == 0)) ++scheme_len;
  const std::string_view after = std::string_view(url).substr(scheme_len);
  if (scheme_len > 0 && after.starts_with("::")) {
    // A remote helper ("ext::", "fd::", "<name>::<address>").
    const std::string helper = lower(std::string_view(url).substr(0, scheme_len));
    if (helper == "ext" || helper == "fd" || !is_allowed(ctx, helper)) return refuse_protocol(helper, error);
    *argv_value = url;
    return true;
  }
  if (scheme_len > 0 && after.starts_with("://"))
    return check_scheme_url(ctx, url, scheme_len, argv_value, local, error);
  const size_t colon = url.find(':');
  const size_t slash = url.find('/');
  if (colon != std::string::npos && (slash == std::string::npos || colon < slash)) {
    // scp-like "user@host:path" is ssh.
    if (!is_allowed(ctx, "ssh")) return refuse_protocol("ssh", error);
    if (!check_host(std::string_view(url).substr(0, colon), error)) return false;
    *argv_value = url;
    return true;
  }
  *local = true;
  return check_local_url(ctx, url, argv_value, error);
}

// ---------------------------------------------------------------------------------------------------
// The repository path.

// Lexical checks on `repo` before anything is resolved.
bool check_repo_text(const std::string& repo, GitRequestError* error) {
  if (has_control(repo)) return fail(error, kForbidden, "repo has control characters", "data.repo");
  if (repo.front() == '/') return fail(error, kForbidden, "repo must be relative to repos_root", "data.repo");
  if (climbs_out(repo)) return fail(error, kForbidden, "repo climbs out of repos_root", "data.repo");
  return true;
}

// The clone destination: its parent must exist and resolve inside the root (or be the root); the new
// directory must not exist yet, or be an empty directory, and must not be a symlink.
bool resolve_clone_destination(const Context& ctx, const std::string& repo, std::string* out, GitRequestError* error) {
  std::string_view trimmed = repo;
  while (trimmed.size() > 1 && trimmed.back() == '/') trimmed.remove_suffix(1);
  const size_t slash = trimmed.rfind('/');
  const std::string_view name = slash == std::string_view::npos ? trimmed : trimmed.substr(slash + 1);
  if (name.empty() || name == "." || name == "..") {
    return fail(error, kForbidden, "repo must end with the name of the new directory", "data.repo");
  }
  const std::string_view parent = slash == std::string_view::npos ? std::string_view() : trimmed.substr(0, slash);
  const auto real_parent = real_path(parent.empty() ? ctx.root : join(ctx.root, parent));
  if (!real_parent || !is_directory(*real_parent)) {
    return fail(error, kNotFound, "the parent directory of repo does not exist", "data.repo");
  }
  if (*real_parent != ctx.root && !is_inside(*real_parent, ctx.root)) {
    return fail(error, kForbidden, "repo resolves outside repos_root", "data.repo");
  }
  const std::string destination = join(*real_parent, name);
  struct stat st {};
  if (::lstat(destination.c_str(), &st) == 0) {
    if (S_ISLNK(st.st_mode)) return fail(error, kForbidden, "the destination is a symlink", "data.repo");
    if (!S_ISDIR(st.st_mode) || !is_empty_directory(destination)) {
      return fail(error, kForbidden, "the destination already exists and is not an empty directory", "data.repo");
    }
  }
  *out = destination;
  return true;
}

// ---------------------------------------------------------------------------------------------------
// Positional arguments of each shape, appended to argv after the options.

bool check_each(const std::vector<Arg>& items, bool (*valid)(std::string_view), const char* message,
                GitRequestError* error) {
  for (const Arg& item : items) {
    if (!valid(item.text)) return fail(error, kForbidden, message, arg_field(item.index));
  }
  return true;
}

void append(std::vector<std::string>* argv, const std::vector<Arg>& items) {
  for (const Arg& item : items) argv->push_back(item.text);
}

// A remote named in args. git reads a name that is not a configured remote as a path relative to the
// repository, which could lead out of repos_root (a symlink in the work tree); so a name with '/', or
// one that exists there as <name> or <name>.git, is refused. Local sources come in through `url`.
bool check_remote_name(const std::string& repo, const Arg& remote, GitRequestError* error) {
  struct stat st {};
  if (remote.text.find('/') != std::string::npos || ::lstat(join(repo, remote.text).c_str(), &st) == 0 ||
      ::lstat(join(repo, remote.text + ".git").c_str(), &st) == 0) {
    return fail(error, kForbidden, "a remote must be a configured remote's name (give local repositories as url)",
                arg_field(remote.index));
  }
  return true;
}

// fetch / pull / push: [remote name | url] [ref…], after --end-of-options.
bool append_remote(const ParsedArgs& parsed, const std::string* url, const std::string& repo,
                   std::vector<std::string>* argv, GitRequestError* error) {
  if (!check_each(parsed.positionals, is_valid_ref_name,
                  "remote and ref names must be plain names (no refspecs, ':' or leading '+')", error)) {
    return false;
  }
  if (url == nullptr && !parsed.positionals.empty() && !check_remote_name(repo, parsed.positionals[0], error)) {
    return false;
  }
  argv->push_back("--end-of-options");
  if (url != nullptr) argv->push_back(*url);
  append(argv, parsed.positionals);
  return true;
}

// log / diff: revisions after --end-of-options, pathspecs after "--" (always written, so that git
// never reads a revision as a path or switches diff to --no-index).
bool append_revisions(const ParsedArgs& parsed, std::vector<std::string>* argv, GitRequestError* error) {
  if (!check_each(parsed.positionals, is_valid_revision, "not a valid revision", error) ||
      !check_each(parsed.pathspecs, is_valid_pathspec, "not an allowed pathspec", error)) {
    return false;
  }
  argv->push_back("--end-of-options");
  append(argv, parsed.positionals);
  argv->push_back("--");
  append(argv, parsed.pathspecs);
  return true;
}

// status: every positional is a pathspec, written after "--".
bool append_status(const ParsedArgs& parsed, std::vector<std::string>* argv, GitRequestError* error) {
  if (!check_each(parsed.positionals, is_valid_pathspec, "not an allowed pathspec", error) ||
      !check_each(parsed.pathspecs, is_valid_pathspec, "not an allowed pathspec", error)) {
    return false;
  }
  argv->push_back("--");
  append(argv, parsed.positionals);
  append(argv, parsed.pathspecs);
  return true;
}

// checkout: one revision (optional with -b), then "--" so that it is never read as a path. git 2.39's
// checkout does not understand --end-of-options; the revision rules already exclude a leading '-'.
bool append_checkout(const ParsedArgs& parsed, std::vector<std::string>* argv, GitRequestError* error) {
  const bool new_branch = parsed.has("-b");
  const auto& refs = parsed.positionals;
  if (refs.size() > 1) return fail(error, kBadMessage, "checkout takes one ref", arg_field(refs[1].index));
  if (refs.empty() && !new_branch) return fail(error, kBadMessage, "checkout needs a ref or -b NAME", "data.args");
  if (!check_each(refs, is_valid_revision, "not a valid revision", error)) return false;
  append(argv, refs);
  argv->push_back("--");
  return true;
}

// branch: with -d, names to delete; otherwise an optional new name and start point (or list patterns).
bool append_branch(const ParsedArgs& parsed, std::vector<std::string>* argv, GitRequestError* error) {
  const auto& names = parsed.positionals;
  if (parsed.has("-d")) {
    if (names.empty()) return fail(error, kBadMessage, "branch -d needs a branch name", "data.args");
    if (!check_each(names, is_valid_ref_name, "not a valid branch name", error)) return false;
  } else {
    if (names.size() > 2)
      return fail(error, kBadMessage, "branch takes a name and a start point", arg_field(names[2].index));
    if (!names.empty() && !is_valid_ref_name(names[0].text)) {
      return fail(error, kForbidden, "not a valid branch name", arg_field(names[0].index));
    }
    if (names.size() == 2 && !is_valid_revision(names[1].text)) {
      return fail(error, kForbidden, "not a valid revision", arg_field(names[1].index));
    }
  }
  argv->push_back("--end-of-options");
  append(argv, names);
  return true;
}

// ---------------------------------------------------------------------------------------------------
// Assembly.

std::vector<std::string> allowed_protocols(const std::vector<std::string>& configured) {
  std::vector<std::string> out;
  for (const std::string& item : configured) {
    const std::string name = lower(item);
    bool valid = !name.empty();
    for (size_t i = 0; valid && i < name.size(); ++i) valid = is_scheme_char(name[i], i == 0);
    if (!valid || name == "ext" || name == "fd") continue;
    if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
  }
  return out;
}

// The variables every git command gets. The system and global configuration files stay in effect
// (GIT_CONFIG_NOSYSTEM is not set): they are the administrator's, and the only place for credential
// helpers, proxies and ssh settings; compose_git_environment() drops every inherited GIT_* variable.
std::vector<std::pair<std::string, std::string>> command_env(const Context& ctx) {
  std::string protocols;
  for (const std::string& name : ctx.protocols) protocols += (protocols.empty() ? "" : ":") + name;
  std::vector<std::pair<std::string, std::string>> env = {
      {"GIT_TERMINAL_PROMPT", "0"},       // never ask for credentials on the PTY
      {"GIT_ALLOW_PROTOCOL", protocols},  // overrides protocol.*.allow from every configuration
      {"GIT_PAGER", "cat"},
      {"PAGER", "cat"},
      {"GIT_ASKPASS", ""},               // empty: git skips core.askPass and SSH_ASKPASS
      {"SSH_ASKPASS_REQUIRE", "never"},  // and ssh launches no askpass program either
      {"GIT_EDITOR", ":"},               // ":" is git's no-op editor (a pull that merges)
      {"GIT_SEQUENCE_EDITOR", ":"},
      {"GIT_MERGE_AUTOEDIT", "no"},
      {"LC_ALL", "C.UTF-8"},  // progress lines in English for the progress parser
      {"LANGUAGE", ""},
  };
  // Repository discovery never climbs to repos_root or above (a ':' would split the list).
  if (ctx.root.find(':') == std::string::npos) env.emplace_back("GIT_CEILING_DIRECTORIES", ctx.root);
  return env;
}

// Resolves the repository (or clone destination) and sets the command's paths.
bool resolve_paths(const Context& ctx, const Fields& fields, GitCommand* command, GitRequestError* error) {
  if (!check_repo_text(fields.repo, error)) return false;
  if (fields.op->shape == Shape::clone) {
    if (!resolve_clone_destination(ctx, fields.repo, &command->repo_path, error)) return false;
    command->cwd = ctx.root;
    return true;
  }
  if (!resolve_repository(ctx, fields.repo, "data.repo", &command->repo_path, error)) return false;
  command->cwd = command->repo_path;
  return true;
}

bool append_positionals(const Fields& fields, const ParsedArgs& parsed, const std::string* url, bool local_url,
                        GitCommand* command, GitRequestError* error) {
  std::vector<std::string>* argv = &command->argv;
  switch (fields.op->shape) {
    case Shape::clone:
      if (!parsed.positionals.empty()) {
        return fail(error, kForbidden, "clone takes its source from url and its destination from repo",
                    arg_field(parsed.positionals[0].index));
      }
      if (local_url) argv->push_back("--no-local");  // the git transport, not a copy of the source's files
      argv->insert(argv->end(), {"--", *url, command->repo_path});
      return true;
    case Shape::remote:
      return append_remote(parsed, url, command->repo_path, argv, error);
    case Shape::revisions:
      return append_revisions(parsed, argv, error);
    case Shape::status:
      return append_status(parsed, argv, error);
    case Shape::checkout:
      return append_checkout(parsed, argv, error);
    case Shape::branch:
      return append_branch(parsed, argv, error);
  }
  return false;
}

}  // namespace

bool build_git_command(const json& data, const GitPolicy& policy, GitCommand* out, GitRequestError* error) {
  if (policy.repos_root.empty()) return fail(error, kUnavailable, "git is disabled", "");
  const auto root = real_path(policy.repos_root);
  if (!root || !is_directory(*root)) return fail(error, kUnavailable, "repos_root is not accessible", "");
  Fields fields;
  if (!read_fields(data, &fields, error)) return false;
  const Context ctx{*root, allowed_protocols(policy.allowed_protocols)};
  ParsedArgs parsed;
  if (!parse_args(*fields.op, fields.args, &parsed, error)) return false;
  std::string url;
  bool local_url = false;
  if (fields.url && !check_url(ctx, *fields.url, &url, &local_url, error)) return false;
  GitCommand command;
  command.operation = std::string(fields.op->name);
  if (!resolve_paths(ctx, fields, &command, error)) return false;
  command.argv = {"git", command.operation};
  if (uses_url(fields.op->shape)) command.argv.push_back("--progress");
  command.argv.insert(command.argv.end(), parsed.options.begin(), parsed.options.end());
  if (!append_positionals(fields, parsed, fields.url ? &url : nullptr, local_url, &command, error)) return false;
  command.env = command_env(ctx);
  *out = std::move(command);
  return true;
}

}  // namespace ptyhub::git
