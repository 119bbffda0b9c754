// core/log: the JSON string escaper, the text and JSON renderings of a line, and journal entries in
// the native protocol (as bytes, and as a datagram received on a socket standing in for the journal's).
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/log.hpp"

namespace ptyhub::log {
namespace {

using Json = nlohmann::json;
using namespace std::string_literals;

// Parses a JSON text the way a log reader would (strict: invalid UTF-8 throws).
Json parse(const std::string& text) { return Json::parse(text); }

std::string decoded(const std::string& value) { return parse(json_string(value)).get<std::string>(); }

TEST_CASE("json_string: quotes, backslashes and control characters are escaped") {
  CHECK(json_string("") == "\"\"");
  CHECK(json_string("plain text") == "\"plain text\"");
  CHECK(json_string("say \"hi\"") == "\"say \\\"hi\\\"\"");
  CHECK(json_string("a\\b") == "\"a\\\\b\"");
  CHECK(json_string("line\nnext\r\t") == "\"line\\u000anext\\u000d\\u0009\"");
  CHECK(json_string("\x1b[31m\x7f") == "\"\\u001b[31m\\u007f\"");
  CHECK(json_string("nul\0byte"s) == "\"nul\\u0000byte\"");
  for (const std::string& value : {"say \"hi\""s, "a\\b"s, "line\nnext\r\t"s, "nul\0byte"s, "\x01\x1f"s}) {
    CHECK(decoded(value) == value);
  }
}

TEST_CASE("json_string: valid UTF-8 is kept, each invalid byte becomes U+FFFD") {
  const std::string valid = "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xEF\xBF\xBF \xF4\x8F\xBF\xBF";
  CHECK(json_string(valid) == "\"" + valid + "\"");
  const std::string fffd = "\xEF\xBF\xBD";
  CHECK(json_string("a\xFF" "b") == "\"a" + fffd + "b\"");                      // never a UTF-8 byte
  CHECK(json_string("\x80") == "\"" + fffd + "\"");                             // a lone continuation
  CHECK(json_string("\xC3") == "\"" + fffd + "\"");                             // cut short at the end
  CHECK(json_string("\xE2\x82" "x") == "\"" + fffd + fffd + "x\"");             // cut short before ASCII
  CHECK(json_string("\xC0\xAF") == "\"" + fffd + fffd + "\"");                  // overlong '/'
  CHECK(json_string("\xE0\x80\xAF") == "\"" + fffd + fffd + fffd + "\"");       // overlong, 3 bytes
  CHECK(json_string("\xED\xA0\x80") == "\"" + fffd + fffd + fffd + "\"");       // a surrogate
  CHECK(json_string("\xF4\x90\x80\x80") == "\"" + fffd + fffd + fffd + fffd + "\"");  // above U+10FFFF
  CHECK(json_string("\xF5\x80") == "\"" + fffd + fffd + "\"");
  // Whatever the bytes, the result parses as a JSON string.
  std::string every_byte;
  for (int c = 0; c < 256; ++c) every_byte.push_back(static_cast<char>(c));
  for (size_t start = 0; start < every_byte.size(); start += 3) {
    const std::string piece = every_byte.substr(start) + every_byte.substr(0, start);
    CHECK_NOTHROW(parse(json_string(piece)));
  }
}

TEST_CASE("text_body: the message, then each field as key=\"value\" (a word unquoted)") {
  const Field fields[] = {{"event", "auth.ok", true}, {"user", "eve\" x=\"y\nz"}, {"peer", "127.0.0.1:5000"}};
  CHECK(text_body("audit", fields) == "audit event=auth.ok user=\"eve\\\" x=\\\"y?z\" peer=\"127.0.0.1:5000\"");
  CHECK(text_body("ptyhubd ready", {}) == "ptyhubd ready");
}

TEST_CASE("json_line: one object with time, level, message and the fields, whatever the values") {
  const Field fields[] = {{"event", "auth.failed", true}, {"user", "\xFF\"\n"}, {"terminal", "t-1"}};
  const std::string line = json_line("2026-11-26T14:00:00.000Z", Level::warn, "audit\n", fields);
  CHECK(line.find('\n') == std::string::npos);
  const Json object = parse(line);
  REQUIRE(object.is_object());
  CHECK(object.size() == 6);
  CHECK(object["time"] == "2026-11-26T14:00:00.000Z");
  CHECK(object["level"] == "warn");
  CHECK(object["message"] == "audit\n");
  CHECK(object["event"] == "auth.failed");
  CHECK(object["user"] == "\xEF\xBF\xBD\"\n");
  CHECK(object["terminal"] == "t-1");
  CHECK(line.starts_with("{\"time\":\"2026-11-26T14:00:00.000Z\",\"level\":\"warn\",\"message\":"));
  CHECK(parse(json_line("t", Level::debug, "m", {})) == Json{{"time", "t"}, {"level", "debug"}, {"message", "m"}});
}

TEST_CASE("journal_entry: KEY=value lines, a value with a newline in the binary form") {
  const Field fields[] = {{"event", "auth.ok", true}, {"user", "alice"}, {"peer", "a\nb"}};
  const std::string entry = journal_entry(Level::error, "audit", fields);
  const std::string expected = "MESSAGE=audit event=auth.ok user=\"alice\" peer=\"a?b\"\n"
                               "PRIORITY=3\n"
                               "SYSLOG_IDENTIFIER=ptyhubd\n"
                               "PTYHUB_EVENT=auth.ok\n"
                               "PTYHUB_USER=alice\n"
                               "PTYHUB_PEER\n\x03\0\0\0\0\0\0\0a\nb\n"s;
  CHECK(entry == expected);
  CHECK(journal_entry(Level::debug, "two\nlines", {}) ==
        "MESSAGE\n\x09\0\0\0\0\0\0\0two\nlines\nPRIORITY=7\nSYSLOG_IDENTIFIER=ptyhubd\n"s);
  const Field odd[] = {{"git-repo.x", "r"}};
  CHECK(journal_entry(Level::info, "m", odd).find("\nPTYHUB_GIT_REPO_X=r\n") != std::string::npos);
}

TEST_CASE("json format with a journal socket: each line is one datagram holding the entry") {
  char dir_template[] = "/tmp/ptyhub-log-test-XXXXXX";
  REQUIRE(mkdtemp(dir_template) != nullptr);
  const std::string path = std::string(dir_template) + "/journal.socket";
  const int receiver = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(receiver >= 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  REQUIRE(bind(receiver, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);

  set_format(Format::json);
  set_level(Level::info);
  set_journal_socket(path);
  info("terminal created", {{"terminal", "t-7"}, {"user", "bob"}});
  debug("not at this level");
  set_journal_socket("");
  set_format(Format::text);

  std::vector<char> buffer(4096);
  const ssize_t n = recv(receiver, buffer.data(), buffer.size(), MSG_DONTWAIT);
  REQUIRE(n > 0);
  const Field fields[] = {{"terminal", "t-7"}, {"user", "bob"}};
  CHECK(std::string(buffer.data(), static_cast<size_t>(n)) == journal_entry(Level::info, "terminal created", fields));
  CHECK(recv(receiver, buffer.data(), buffer.size(), MSG_DONTWAIT) < 0);  // the debug line was not sent
  close(receiver);
  std::filesystem::remove_all(dir_template);
}

// Runs `body` with stderr sent to a file; returns what was written to it.
template <class Body>
std::string capture_stderr(const std::string& path, Body body) {
  std::fflush(stderr);
  const int saved = dup(STDERR_FILENO);
  const int file = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  REQUIRE(saved >= 0);
  REQUIRE(file >= 0);
  dup2(file, STDERR_FILENO);
  close(file);
  body();
  std::fflush(stderr);
  dup2(saved, STDERR_FILENO);
  close(saved);
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TEST_CASE("under journald: text lines get a priority prefix, json entries the journal refuses go to stderr") {
  char dir_template[] = "/tmp/ptyhub-log-test-XXXXXX";
  REQUIRE(mkdtemp(dir_template) != nullptr);
  const std::string path = std::string(dir_template) + "/stderr";
  set_level(Level::info);
  const std::string written = capture_stderr(path, [&] {
    struct stat st {};
    REQUIRE(fstat(STDERR_FILENO, &st) == 0);
    const std::string stream = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
    setenv("JOURNAL_STREAM", (stream + "0").c_str(), 1);  // another inode: not the journal
    init_from_environment();
    info("not journal");
    setenv("JOURNAL_STREAM", stream.c_str(), 1);
    init_from_environment();
    info("to the journal", {{"user", "alice"}});
    set_format(Format::json);
    set_journal_socket(std::string(dir_template) + "/no-journal-here");  // the send fails
    warn("refused entry", {{"terminal", "t-2"}});
    set_format(Format::text);
    unsetenv("JOURNAL_STREAM");
    init_from_environment();
  });
  std::filesystem::remove_all(dir_template);
  const size_t first_end = written.find('\n');
  REQUIRE(first_end != std::string::npos);
  CHECK(written.substr(0, first_end).ends_with("Z info not journal"));
  const std::string rest = written.substr(first_end + 1);
  REQUIRE(rest.starts_with("<6>to the journal user=\"alice\"\n<4>{"));
  const Json refused = parse(rest.substr(rest.find("<4>") + 3));
  CHECK(refused["level"] == "warn");
  CHECK(refused["message"] == "refused entry");
  CHECK(refused["terminal"] == "t-2");
}

TEST_CASE("parse_format") {
  Format format = Format::text;
  CHECK(parse_format("json", &format));
  CHECK(format == Format::json);
  CHECK(parse_format("text", &format));
  CHECK(format == Format::text);
  CHECK_FALSE(parse_format("JSON", &format));
  CHECK_FALSE(parse_format("", &format));
}

}  // namespace
}  // namespace ptyhub::log
