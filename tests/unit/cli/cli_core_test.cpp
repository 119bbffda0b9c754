// The pure parts of the command-line client (cli/): URLs, options, detach keys, the output cursor, the
// git progress view and base64.
#include <doctest/doctest.h>

#include "cli/base64_encode.hpp"
#include "cli/detach_keys.hpp"
#include "cli/endpoint.hpp"
#include "cli/options.hpp"
#include "cli/output_cursor.hpp"
#include "cli/progress_view.hpp"
#include "src/protocol/base64.hpp"

using namespace ptyhub::cli;

TEST_CASE("cli endpoint: ws and wss and unix and IPv6 and the errors") {
  std::string why;
  auto ws = parse_endpoint("ws://127.0.0.1:7700/ws", &why);
  REQUIRE(ws);
  CHECK(ws->kind == Endpoint::Kind::tcp);
  CHECK_FALSE(ws->tls);
  CHECK(ws->host == "127.0.0.1");
  CHECK(ws->port == 7700);
  CHECK(ws->path == "/ws");
  auto wss = parse_endpoint("wss://term.example.org/term/ws", &why);
  REQUIRE(wss);
  CHECK(wss->tls);
  CHECK(wss->port == 443);
  CHECK(wss->path == "/term/ws");
  auto bare = parse_endpoint("ws://localhost", &why);
  REQUIRE(bare);
  CHECK(bare->port == 80);
  CHECK(bare->path == "/ws");
  auto v6 = parse_endpoint("ws://[::1]:9000/ws", &why);
  REQUIRE(v6);
  CHECK(v6->host == "::1");
  CHECK(v6->port == 9000);
  auto unix_socket = parse_endpoint("unix:/run/ptyhub/ptyhub.sock", &why);
  REQUIRE(unix_socket);
  CHECK(unix_socket->kind == Endpoint::Kind::unix_socket);
  CHECK(unix_socket->socket_path == "/run/ptyhub/ptyhub.sock");
  CHECK(unix_socket->path == "/ws");

  for (const char* bad : {"http://127.0.0.1:7700/ws", "ws://", "ws://host:", "ws://host:0", "ws://host:70000",
                          "ws://host:12ab", "unix:relative.sock", "ws://[::1", "127.0.0.1:7700"}) {
    INFO(bad);
    why.clear();
    CHECK_FALSE(parse_endpoint(bad, &why));
    CHECK_FALSE(why.empty());
  }
}

TEST_CASE("cli options: commands and operands and options with values and git options and the usage errors") {
  std::string why;
  auto attach = parse_options({"attach", "abc", "--url", "ws://h:1/ws", "--detach-keys=ctrl-p,ctrl-q"}, &why);
  REQUIRE(attach);
  CHECK(attach->command == "attach");
  CHECK(attach->operands == std::vector<std::string>{"abc"});
  CHECK(*attach->url == "ws://h:1/ws");
  CHECK(*attach->detach_keys == "ctrl-p,ctrl-q");

  auto run = parse_options({"run", "--", "sh", "-c", "exit 7"}, &why);
  REQUIRE(run);
  CHECK(run->after_dashes == std::vector<std::string>{"sh", "-c", "exit 7"});

  auto git = parse_options({"git", "pull", "repo", "--ff-only", "--follow"}, &why);
  REQUIRE(git);
  CHECK(git->git_operation == "pull");
  CHECK(git->operands == std::vector<std::string>{"repo", "--ff-only"});
  CHECK(git->follow);

  auto timeout = parse_options({"--resume-timeout", "2.5", "ls", "--json"}, &why);
  REQUIRE(timeout);
  CHECK(*timeout->resume_timeout == doctest::Approx(2.5));
  CHECK(timeout->json);

  CHECK_FALSE(parse_options({"frobnicate"}, &why));
  CHECK(why.find("unknown command") != std::string::npos);
  CHECK_FALSE(parse_options({"ls", "--bogus"}, &why));
  CHECK_FALSE(parse_options({"ls", "--url"}, &why));
  CHECK_FALSE(parse_options({"git", "rebase"}, &why));
  CHECK_FALSE(parse_options({"ls", "--resume-timeout", "-1"}, &why));
  CHECK(help_text("attach").find("ptyhub attach") != std::string::npos);
  CHECK(help_text("").find("Exit status") != std::string::npos);
}

TEST_CASE("cli detach keys: parsing and matching") {
  std::string why;
  CHECK(*parse_detach_keys("ctrl-\\,d", &why) == std::string("\x1c" "d"));
  CHECK(*parse_detach_keys("ctrl-p,ctrl-q", &why) == std::string("\x10\x11"));
  CHECK(*parse_detach_keys("ctrl-a,,", &why) == std::string("\x01,"));
  CHECK_FALSE(parse_detach_keys("ctrl-1", &why));
  CHECK_FALSE(parse_detach_keys("shift-x", &why));

  DetachMatcher matcher(std::string("\x1c" "d"));
  auto plain = matcher.feed("ls\r");
  CHECK(plain.forward == "ls\r");
  CHECK_FALSE(plain.detached);
  auto held = matcher.feed("a\x1c");  // the first key is held back …
  CHECK(held.forward == "a");
  auto broken = matcher.feed("x");    // … and sent when the sequence breaks
  CHECK(broken.forward == "\x1cx");
  auto repeated = matcher.feed("\x1c\x1c" "d" "tail");  // a repeated first key restarts the match
  CHECK(repeated.forward == "\x1c");
  CHECK(repeated.detached);
  auto split = matcher.feed("\x1c");
  CHECK(split.forward.empty());
  CHECK(matcher.feed("d").detached);  // across reads
  DetachMatcher none{std::string()};
  CHECK(none.feed("\x1c" "d").forward == "\x1c" "d");
}

TEST_CASE("cli output cursor: duplicates dropped and overlaps cut and holes counted") {
  OutputCursor cursor;
  CHECK(cursor.accept(0, 5, "hello") == "hello");
  CHECK(cursor.next() == 5);
  CHECK(cursor.accept(0, 5, "hello").empty());    // a replay of what was shown
  CHECK(cursor.accept(3, 8, "lo wo") == " wo");   // overlapping: only the new part
  CHECK(cursor.next() == 8);
  CHECK(cursor.accept(10, 12, "xy") == "xy");     // a hole of 2 bytes
  CHECK(cursor.lost() == 2);
  CHECK(cursor.accept(12, 11, "").empty());       // malformed
  CHECK(cursor.accept(12, 14, "abc").empty());    // length does not match
  cursor.gap(12, 20);
  CHECK(cursor.next() == 20);
  CHECK(cursor.lost() == 10);
}

TEST_CASE("cli progress view: bars on a terminal and lines otherwise") {
  GitProgress half{"Receiving objects", 5, 10, 50};
  CHECK(progress_bar(half, 10) == "Receiving objects    [#####-----]  50% (5/10)");
  GitProgress counting{"Counting objects", 42, std::nullopt, std::nullopt};
  CHECK(progress_bar(counting, 10) == "Counting objects     42");

  ProgressView tty(true);
  CHECK(tty.update(half).starts_with("\rReceiving objects"));
  GitProgress full{"Receiving objects", 10, 10, 100};
  CHECK(tty.update(full).find("100% (10/10)") != std::string::npos);
  GitProgress resolving{"Resolving deltas", 1, 2, 50};
  CHECK(tty.update(resolving).starts_with("\n\r"));  // a new phase on a new line
  CHECK(tty.finish() == "\n");

  ProgressView lines(false);
  CHECK(lines.update(half).empty());  // progress within a phase is not printed
  CHECK(lines.update(full) == "Receiving objects: 100% (10/10)\n");
  CHECK(lines.update(full).empty());  // nor repeated
  CHECK(lines.update(counting).empty());
  CHECK(lines.finish() == "Counting objects: 42\n");
}

TEST_CASE("cli base64: round trip through the protocol's decoder") {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  for (size_t length : {0u, 1u, 2u, 3u, 4u, 5u, 256u}) {
    const std::string bytes = all.substr(0, length);
    auto decoded = ptyhub::protocol::base64_decode(base64_encode(bytes));
    REQUIRE(decoded);
    CHECK(*decoded == bytes);
  }
  CHECK(base64_encode(std::string("\x00\xff\x1b[2J", 6)) == "AP8bWzJK");
}
