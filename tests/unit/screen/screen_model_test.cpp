// The screen model (src/screen/screen_model.*): a snapshot written into a fresh model reproduces the
// screen cell for cell, with the cursor, the modes and the alternate screen, at every cut of a stream —
// and the two stay equal when the rest of the stream follows. A snapshot never holds a query.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "src/screen/screen_model.hpp"

namespace ptyhub::screen {
namespace {

// Why two models differ ("" when they show the same).
std::string difference(const ScreenModel& a, const ScreenModel& b) {
  if (a.rows() != b.rows() || a.cols() != b.cols()) return "size";
  for (int row = 0; row < a.rows(); ++row) {
    for (int col = 0; col < a.cols(); ++col) {
      if (!(a.cell(row, col) == b.cell(row, col))) {
        return "cell " + std::to_string(row) + "," + std::to_string(col) + " pen '" + a.cell(row, col).pen + "' vs '" +
               b.cell(row, col).pen + "'";
      }
    }
  }
  if (a.cursor_row() != b.cursor_row() || a.cursor_col() != b.cursor_col()) {
    return "cursor " + std::to_string(a.cursor_row()) + "," + std::to_string(a.cursor_col()) + " vs " +
           std::to_string(b.cursor_row()) + "," + std::to_string(b.cursor_col());
  }
  if (a.alt_screen() != b.alt_screen()) return "alternate screen";
  if (a.cursor_visible() != b.cursor_visible()) return "cursor visibility";
  if (a.title() != b.title()) return "title";
  if (a.modes() != b.modes()) return "modes";
  if (a.history().size() != b.history().size()) return "history lines";
  return "";
}

// Cuts `stream` at every `step`-th byte: the snapshot's screen equals the original's, and so it stays
// after the rest of the stream. Returns the first difference found.
std::string check_cuts(const std::string& stream, uint16_t cols, uint16_t rows, size_t step = 1) {
  for (size_t cut = 0; cut <= stream.size(); cut += step) {
    ScreenModel a(cols, rows, 100);
    a.feed(std::string_view(stream).substr(0, cut));
    ScreenModel b(cols, rows, 100);
    b.feed(a.snapshot());
    if (std::string why = difference(a, b); !why.empty()) return "at " + std::to_string(cut) + ": " + why;
    a.feed(std::string_view(stream).substr(cut));
    b.feed(std::string_view(stream).substr(cut));
    if (std::string why = difference(a, b); !why.empty()) return "after continuing from " + std::to_string(cut) + ": " + why;
  }
  return "";
}

TEST_CASE("screen model: colours, attributes, wide and combining characters and the pen survive every cut") {
  std::string s = "plain \x1b[1;31mbold red\x1b[0m \x1b[38;5;208m256\x1b[48;2;10;20;30mrgb bg\x1b[0m\r\n";
  s += "\x1b[3;4mitalic underline\x1b[24;7m reverse\x1b[27;9m strike\x1b[0m\r\n";
  s += "wide: \xe4\xb8\xad\xe6\x96\x87 emoji: \xf0\x9f\x98\x80 combining: e\xcc\x81\r\n";
  s += "\x1b[44m\x1b[K blue to the end\x1b[0m\r\n";  // BCE: the erased cells keep the blue background
  s += "\x1b[32mgreen pen left on";
  CHECK(check_cuts(s, 40, 8) == "");
}

TEST_CASE("screen model: the alternate screen with a scroll region, origin mode, modes, keypad, title and charset") {
  std::string s = "normal screen line 1\r\nline 2 \x1b[33myellow\x1b[0m\r\n";
  s += "\x1b]2;my title\x07";
  s += "\x1b[?1049h\x1b[H\x1b[2J";
  s += "\x1b[?1h\x1b=\x1b[?2004h\x1b[?1006h\x1b[?1002h";
  s += "\x1b[2;6r\x1b[?6h\x1b[1;1Hin region\r\n\n\n\n\n\nscrolled";
  s += "\x1b(0lqqk\x1b(B text \x1b(0";
  s += "\x1b[?25l\x1b[4 q";
  CHECK(check_cuts(s, 30, 8) == "");
  // And leaving the alternate screen brings the normal one back on both.
  CHECK(check_cuts(s + "\x1b[?6l\x1b[r\x1b[?1049l after", 30, 8, 7) == "");
}

TEST_CASE("screen model: scrollback, a full last column (pending wrap) and a resize") {
  std::string s;
  for (int i = 0; i < 30; ++i) s += "line " + std::to_string(i) + " \x1b[36mcyan\x1b[0m\r\n";
  s += std::string(20, 'x');  // exactly the width: the next character wraps
  CHECK(check_cuts(s, 20, 5) == "");
  CHECK(check_cuts(s + "y", 20, 5, 13) == "");
}

TEST_CASE("screen model: a snapshot holds no query, even when the stream asked many") {
  const std::string queries = "\x1b[c\x1b[>c\x1b[6n\x1b[5n\x1b]10;?\x07\x1b]11;?\x1b\\\x1b[?2004$p\x1b[18t";
  ScreenModel model(80, 24, 100);
  model.feed("before " + queries + " after\r\n" + queries);
  const std::string snapshot = model.snapshot();
  for (const std::string& query : {std::string("\x1b[c"), std::string("\x1b[>c"), std::string("\x1b[6n"),
                                   std::string("\x1b[5n"), std::string("?\x07"), std::string("$p"), std::string("\x1b[18t")}) {
    CHECK_MESSAGE(snapshot.find(query) == std::string::npos, "found a query in the snapshot");
  }
  CHECK(snapshot.find("before") != std::string::npos);
  CHECK(snapshot.find("after") != std::string::npos);
}

TEST_CASE("screen model: an escape sequence or a character cut at the end is finished by the live bytes") {
  ScreenModel a(20, 4, 10);
  a.feed("ok \x1b[38;5;");
  ScreenModel b(20, 4, 10);
  b.feed(a.snapshot());
  a.feed("196mred \xe4\xb8");
  b.feed("196mred \xe4\xb8");
  ScreenModel c(20, 4, 10);
  c.feed(a.snapshot());
  for (ScreenModel* m : {&a, &b, &c}) m->feed("\xad!");
  CHECK(difference(a, b) == "");
  CHECK(difference(a, c) == "");
  CHECK(a.cell(0, 3).pen == "38;5;196");
  CHECK(a.cell(0, 7).chars == U"\u4e2d");
  CHECK(a.memory_bytes() > 0);
}

}  // namespace
}  // namespace ptyhub::screen
