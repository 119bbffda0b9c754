// ScreenModel: a terminal's screen kept on the server (libvterm 0.1.4) so that a late joiner gets the
// screen as bytes instead of a replay of the output (docs/protocol.md §6, "Snapshots").
//
// feed() takes the output bytes in order; snapshot() returns a byte sequence that, written to a fresh
// terminal of the model's size, reproduces its screen — cells with colours and attributes, wide and
// combining characters, the cursor (position, shape, blink, visibility), the alternate screen with the
// normal screen beneath it, the scroll region, the modes that change what keys, paste and the mouse send,
// the keypad mode, the G0 character set, the title, the current pen, up to `scrollback_lines` lines of
// history — and then any escape or UTF-8 sequence the output left unfinished, so that the live bytes that
// follow continue it. A snapshot never contains a query (DA, DSR, DECRQM, OSC colour queries): the model
// itself never answers anything (its output is discarded).
//
// libvterm does not expose everything that needs to be re-emitted (the normal screen under the alternate
// one, DEC private modes, the scroll region, the keypad mode, the character set, the pending sequence), so
// a small scanner of our own reads the same bytes beside it (docs/snapshots.md lists what is tracked, and
// the gaps accepted). Pure: no I/O, no libuv. Not thread-safe; one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct VTerm;
struct VTermScreen;
struct VTermState;

namespace ptyhub::screen {

class ScreenModel {
 public:
  ScreenModel(uint16_t cols, uint16_t rows, size_t scrollback_lines);
  ~ScreenModel();
  ScreenModel(const ScreenModel&) = delete;
  ScreenModel& operator=(const ScreenModel&) = delete;

  // The next output bytes, in order, split anywhere.
  void feed(std::string_view bytes);
  // The terminal was resized (history lines keep their width: no reflow).
  void resize(uint16_t cols, uint16_t rows);
  // Bytes for a fresh terminal of cols() x rows() (it starts with RIS, so a used one is reset first).
  std::string snapshot() const;

  uint16_t cols() const { return cols_; }
  uint16_t rows() const { return rows_; }
  // What the model holds: libvterm's two grids, the history lines, the saved normal screen (estimate).
  size_t memory_bytes() const;

  // The parts of a cell the snapshot writes (for tests comparing two screens).
  struct Cell {
    std::u32string chars;
    int width = 1;
    std::string pen;  // the SGR parameters that draw it ("" = default)
    bool operator==(const Cell&) const = default;
  };
  // The active screen's cell at (row, col); for comparisons.
  Cell cell(int row, int col) const;
  int cursor_row() const;
  int cursor_col() const;
  bool alt_screen() const { return alt_screen_; }
  bool cursor_visible() const { return cursor_visible_; }
  const std::string& title() const { return title_; }
  // The tracked DEC private modes that are set (number -> true), for comparisons.
  const std::map<int, bool>& modes() const { return modes_; }
  const std::deque<std::string>& history() const { return history_; }

 private:
  struct Deleter {
    void operator()(VTerm* vt) const;
  };
  // One row of cells as the snapshot draws it (SGR changes, runs of blanks as CUF/ECH).
  struct Grid;
  std::string encode_row(const Grid& grid, int row) const;
  Grid capture_grid() const;
  void scan(std::string_view bytes);
  void on_csi_final(char final_byte);
  void on_esc_final(char final_byte);
  void reset_tracking();
  friend struct VTermCallbacks;  // libvterm's callbacks (screen_model.cpp)

  std::unique_ptr<VTerm, Deleter> vt_;
  VTermScreen* screen_ = nullptr;
  VTermState* state_ = nullptr;
  uint16_t cols_;
  uint16_t rows_;
  size_t scrollback_lines_;
  std::deque<std::string> history_;  // encoded lines, oldest first
  size_t history_bytes_ = 0;

  // Tracked beside libvterm.
  std::map<int, bool> modes_;     // DEC private modes set by CSI ? n h / l (only those re-emitted)
  bool keypad_application_ = false;
  bool g0_line_drawing_ = false;
  bool g1_line_drawing_ = false;
  bool shifted_out_ = false;      // SO: G1 in use
  int scroll_top_ = 0;            // DECSTBM, 0-based, inclusive
  int scroll_bottom_ = -1;        // -1: the last row
  bool alt_screen_ = false;
  bool cursor_visible_ = true;
  bool cursor_blink_ = true;
  int cursor_shape_ = 1;          // VTERM_PROP_CURSORSHAPE_*
  int mouse_ = 0;                 // VTERM_PROP_MOUSE_*
  bool reverse_video_ = false;
  std::string title_;
  // The normal screen as it was when the alternate one was entered.
  std::unique_ptr<Grid> saved_normal_;

  // The scanner: where it is in an escape sequence, and the bytes since it last was in the ground state.
  enum class Scan { ground, esc, esc_intermediate, csi, string, string_esc };
  Scan scan_ = Scan::ground;
  std::string pending_;      // an unfinished sequence (re-emitted after a snapshot)
  std::string csi_params_;   // parameter and intermediate bytes of the CSI being read
  char esc_intermediate_ = 0;
  std::string utf8_held_;    // an incomplete UTF-8 character at the end of the last feed, held back
  std::string segment_;      // bytes scanned but not yet given to libvterm
};

}  // namespace ptyhub::screen
