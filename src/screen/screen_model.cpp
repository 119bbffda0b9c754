// ScreenModel: libvterm plus the scanner that tracks what libvterm keeps to itself; the snapshot encoder.
#include "src/screen/screen_model.hpp"

#include <vterm.h>

#include <algorithm>
#include <cstdio>

namespace ptyhub::screen {

// A copy of a screen's cells and its cursor.
struct ScreenModel::Grid {
  int rows = 0;
  int cols = 0;
  std::vector<VTermScreenCell> cells;
  VTermPos cursor{0, 0};
  bool cursor_visible = true;
  bool cursor_blink = true;
  int cursor_shape = VTERM_PROP_CURSORSHAPE_BLOCK;
};

namespace {

constexpr size_t kMaxPending = 4096;  // an unfinished sequence longer than this is not re-emitted
// The DEC private modes re-emitted from our own tracking (libvterm reports the others as properties).
constexpr int kTrackedModes[] = {1, 6, 7, 1004, 1005, 1006, 1015, 2004};

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp <= 0x10FFFF) {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

void append_color(std::string& out, const VTermColor& color, bool foreground) {
  if (foreground ? VTERM_COLOR_IS_DEFAULT_FG(&color) : VTERM_COLOR_IS_DEFAULT_BG(&color)) return;
  if (!out.empty()) out += ';';
  if (VTERM_COLOR_IS_INDEXED(&color)) {
    const int idx = color.indexed.idx;
    if (idx < 8) out += std::to_string((foreground ? 30 : 40) + idx);
    else if (idx < 16) out += std::to_string((foreground ? 90 : 100) + idx - 8);
    else out += (foreground ? "38;5;" : "48;5;") + std::to_string(idx);
  } else {
    out += (foreground ? "38;2;" : "48;2;") + std::to_string(color.rgb.red) + ";" + std::to_string(color.rgb.green) +
           ";" + std::to_string(color.rgb.blue);
  }
}

// The SGR parameters of a pen ("" for the default pen).
std::string pen_text(const VTermScreenCellAttrs& attrs, const VTermColor& fg, const VTermColor& bg) {
  std::string out;
  const auto add = [&out](const char* p) {
    if (!out.empty()) out += ';';
    out += p;
  };
  if (attrs.bold) add("1");
  if (attrs.italic) add("3");
  if (attrs.underline == VTERM_UNDERLINE_SINGLE) add("4");
  if (attrs.underline == VTERM_UNDERLINE_DOUBLE) add("21");
  if (attrs.underline == VTERM_UNDERLINE_CURLY) add("4:3");
  if (attrs.blink) add("5");
  if (attrs.reverse) add("7");
  if (attrs.strike) add("9");
  if (attrs.font > 0 && attrs.font <= 9) add(std::to_string(10 + attrs.font).c_str());
  append_color(out, fg, true);
  append_color(out, bg, false);
  return out;
}

std::string cell_pen(const VTermScreenCell& cell) { return pen_text(cell.attrs, cell.fg, cell.bg); }

std::string sgr(const std::string& pen) { return pen.empty() ? "\x1b[0m" : "\x1b[0;" + pen + "m"; }

// East Asian wide and emoji ranges: what a terminal draws two columns wide (no locale needed).
bool is_wide(uint32_t cp) {
  return (cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0xA4CF && cp != 0x303F) ||
         (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0xFE30 && cp <= 0xFE4F) ||
         (cp >= 0xFF00 && cp <= 0xFF60) || (cp >= 0xFFE0 && cp <= 0xFFE6) || (cp >= 0x1F300 && cp <= 0x1F64F) ||
         (cp >= 0x1F900 && cp <= 0x1F9FF) || (cp >= 0x20000 && cp <= 0x3FFFD);
}

// libvterm's right half of a wide character.
constexpr uint32_t kContinuation = 0xFFFFFFFF;

// Whether a cell was never written or was erased.
bool blank(const VTermScreenCell& cell) { return cell.chars[0] == 0 && cell.width != 0; }

// Cells as the snapshot draws them: the pen only when it changes, runs of erased cells as a cursor move
// (or ECH with their pen, which keeps a coloured background), trailing default blanks trimmed. The line
// starts and ends with the default pen.
std::string encode_cells(const VTermScreenCell* cells, int cols) {
  std::string out;
  std::string pen;  // the pen in effect on the receiving terminal
  int col = 0;
  while (col < cols) {
    const VTermScreenCell& cell = cells[col];
    if (blank(cell)) {
      const std::string run_pen = cell_pen(cell);
      int run = 1;
      while (col + run < cols && blank(cells[col + run]) && cell_pen(cells[col + run]) == run_pen) ++run;
      bool rest_blank = true;
      for (int c = col + run; c < cols && rest_blank; ++c) rest_blank = blank(cells[c]) && cell_pen(cells[c]).empty();
      if (run_pen.empty() && rest_blank) break;  // trailing default blanks: nothing to draw
      if (!run_pen.empty()) {
        if (pen != run_pen) out += sgr(pen = run_pen);
        out += "\x1b[" + std::to_string(run) + "X";
      }
      if (col + run < cols) out += "\x1b[" + std::to_string(run) + "C";
      col += run;
      continue;
    }
    const std::string cell_p = cell_pen(cell);
    if (cell_p != pen) out += sgr(pen = cell_p);
    if (cell.chars[0] == kContinuation || cell.width == 0) {  // the right half of a wide character left alone
      out += ' ';
      ++col;
      continue;
    }
    for (int i = 0; i < VTERM_MAX_CHARS_PER_CELL && cell.chars[i] != 0; ++i) append_utf8(out, cell.chars[i]);
    // libvterm reports width 2 for a narrow character written over a wide one's left half.
    const int width = cell.width == 2 && is_wide(cell.chars[0]) ? 2 : 1;
    col += width;
  }
  if (!pen.empty()) out += "\x1b[0m";
  return out;
}

// Removes the control characters a title must not carry into the snapshot.
std::string printable(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) out += c;
  }
  return out;
}

}  // namespace

struct VTermCallbacks {
  static int settermprop(VTermProp prop, VTermValue* value, void* user) {
    auto* self = static_cast<ScreenModel*>(user);
    switch (prop) {
      case VTERM_PROP_CURSORVISIBLE: self->cursor_visible_ = value->boolean != 0; break;
      case VTERM_PROP_CURSORBLINK: self->cursor_blink_ = value->boolean != 0; break;
      case VTERM_PROP_ALTSCREEN:
        self->alt_screen_ = value->boolean != 0;
        if (!self->alt_screen_) self->saved_normal_.reset();
        break;
      case VTERM_PROP_TITLE: self->title_ = value->string != nullptr ? value->string : ""; break;
      case VTERM_PROP_REVERSE: self->reverse_video_ = value->boolean != 0; break;
      case VTERM_PROP_CURSORSHAPE: self->cursor_shape_ = value->number; break;
      case VTERM_PROP_MOUSE: self->mouse_ = value->number; break;
      default: break;
    }
    return 1;
  }

  static int pushline(int cols, const VTermScreenCell* cells, void* user) {
    auto* self = static_cast<ScreenModel*>(user);
    if (self->scrollback_lines_ == 0) return 1;
    std::string line = encode_cells(cells, cols);
    self->history_bytes_ += line.size();
    self->history_.push_back(std::move(line));
    while (self->history_.size() > self->scrollback_lines_) {
      self->history_bytes_ -= self->history_.front().size();
      self->history_.pop_front();
    }
    return 1;
  }

  static int damage(VTermRect, void*) { return 1; }
};

namespace {

// The model answers nothing: what the emulator would send back (query answers) is dropped.
void discard_output(const char*, size_t, void*) {}

const VTermScreenCallbacks kScreenCallbacks = {
    &VTermCallbacks::damage, nullptr, nullptr, &VTermCallbacks::settermprop, nullptr, nullptr, &VTermCallbacks::pushline,
    nullptr};

}  // namespace

void ScreenModel::Deleter::operator()(VTerm* vt) const { vterm_free(vt); }

ScreenModel::ScreenModel(uint16_t cols, uint16_t rows, size_t scrollback_lines)
    : cols_(std::max<uint16_t>(cols, 1)), rows_(std::max<uint16_t>(rows, 1)), scrollback_lines_(scrollback_lines) {
  vt_.reset(vterm_new(rows_, cols_));
  vterm_set_utf8(vt_.get(), 1);
  vterm_output_set_callback(vt_.get(), &discard_output, nullptr);
  screen_ = vterm_obtain_screen(vt_.get());
  state_ = vterm_obtain_state(vt_.get());
  vterm_screen_set_callbacks(screen_, &kScreenCallbacks, this);
  vterm_screen_enable_altscreen(screen_, 1);
  vterm_screen_reset(screen_, 1);
  reset_tracking();
}

ScreenModel::~ScreenModel() = default;

void ScreenModel::reset_tracking() {
  modes_.clear();
  modes_[7] = true;  // autowrap is on at start
  keypad_application_ = false;
  g0_line_drawing_ = g1_line_drawing_ = shifted_out_ = false;
  scroll_top_ = 0;
  scroll_bottom_ = -1;
}

void ScreenModel::feed(std::string_view bytes) {
  segment_ = std::move(utf8_held_);  // an incomplete character held back last time comes first
  utf8_held_.clear();
  scan(bytes);
  // An incomplete UTF-8 character at the very end waits for its next bytes (libvterm 0.1.4 would
  // decode a split character as U+FFFD).
  if (scan_ == Scan::ground) {
    size_t lead = segment_.size();
    for (size_t back = 1; back <= 3 && back <= segment_.size(); ++back) {
      const auto c = static_cast<unsigned char>(segment_[segment_.size() - back]);
      if ((c & 0xC0) == 0x80) continue;  // a continuation byte: look further back
      if (c >= 0xC0) {
        const size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
        if (need > back) lead = segment_.size() - back;
      }
      break;
    }
    utf8_held_ = segment_.substr(lead);
    segment_.resize(lead);
  }
  if (!segment_.empty()) vterm_input_write(vt_.get(), segment_.data(), segment_.size());
  segment_.clear();
}

void ScreenModel::scan(std::string_view bytes) {
  for (char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    switch (scan_) {
      case Scan::ground:
        if (c == 0x1b) {
          scan_ = Scan::esc;
          pending_.assign(1, ch);
        } else if (c == 0x0e) {
          shifted_out_ = true;
        } else if (c == 0x0f) {
          shifted_out_ = false;
        }
        break;
      case Scan::esc:
        pending_ += ch;
        if (c == 0x1b) {
          pending_.assign(1, ch);
        } else if (c == '[') {
          scan_ = Scan::csi;
          csi_params_.clear();
        } else if (c == ']' || c == 'P' || c == '_' || c == '^' || c == 'X') {
          scan_ = Scan::string;
        } else if (c >= 0x20 && c <= 0x2f) {
          scan_ = Scan::esc_intermediate;
          esc_intermediate_ = ch;
        } else if (c >= 0x30) {
          on_esc_final(ch);
          scan_ = Scan::ground;
          pending_.clear();
        }
        break;
      case Scan::esc_intermediate:
        pending_ += ch;
        if (c == 0x1b) {
          scan_ = Scan::esc;
          pending_.assign(1, ch);
        } else if (c >= 0x30 && c <= 0x7e) {
          if (esc_intermediate_ == '(') g0_line_drawing_ = c == '0';
          if (esc_intermediate_ == ')') g1_line_drawing_ = c == '0';
          scan_ = Scan::ground;
          pending_.clear();
        }
        break;
      case Scan::csi:
        if (c == 0x1b) {
          scan_ = Scan::esc;
          pending_.assign(1, ch);
          break;
        }
        pending_ += ch;
        if (c >= 0x40 && c <= 0x7e) {
          on_csi_final(ch);  // may hand libvterm the bytes before this one first (alternate screen)
          scan_ = Scan::ground;
          pending_.clear();
        } else if (c >= 0x20 && c <= 0x3f && csi_params_.size() < 256) {
          csi_params_ += ch;
        }
        break;
      case Scan::string:
        if (pending_.size() < kMaxPending) pending_ += ch;
        if (c == 0x07) {
          scan_ = Scan::ground;
          pending_.clear();
        } else if (c == 0x1b) {
          scan_ = Scan::string_esc;
        }
        break;
      case Scan::string_esc:
        if (c == '\\') {
          scan_ = Scan::ground;
          pending_.clear();
        } else {
          scan_ = Scan::esc;  // ESC not followed by '\': a new sequence starts (the string was cut)
          pending_.assign(1, '\x1b');
          scan(std::string_view(&ch, 1));  // this byte as the first after that ESC (it goes to segment_ there)
          continue;
        }
        break;
    }
    segment_ += ch;
  }
}

void ScreenModel::on_esc_final(char final_byte) {
  if (final_byte == '=') keypad_application_ = true;
  else if (final_byte == '>') keypad_application_ = false;
  else if (final_byte == 'c') reset_tracking();  // RIS
}

void ScreenModel::on_csi_final(char final_byte) {
  const bool priv = !csi_params_.empty() && csi_params_[0] == '?';
  std::vector<int> params;
  {
    int value = -1;
    for (size_t i = priv ? 1 : 0; i < csi_params_.size(); ++i) {
      const char c = csi_params_[i];
      if (c >= '0' && c <= '9') {
        value = (value < 0 ? 0 : value) * 10 + (c - '0');
        if (value > 100000) value = 100000;
      } else if (c == ';') {
        params.push_back(value);
        value = -1;
      } else {
        return;  // an intermediate or another marker: not one of ours (DECSTR is handled below)
      }
    }
    params.push_back(value);
  }
  if (priv && (final_byte == 'h' || final_byte == 'l')) {
    const bool set = final_byte == 'h';
    for (int mode : params) {
      if (set && !alt_screen_ && (mode == 47 || mode == 1047 || mode == 1049)) {
        // The normal screen is copied before libvterm switches away from it (it cannot be read after).
        if (!segment_.empty()) vterm_input_write(vt_.get(), segment_.data(), segment_.size());
        segment_.clear();
        saved_normal_ = std::make_unique<Grid>(capture_grid());
      }
      if (std::find(std::begin(kTrackedModes), std::end(kTrackedModes), mode) != std::end(kTrackedModes)) {
        if (set || mode == 7) modes_[mode] = set;  // 7 is on by default; the others are listed while set
        else modes_.erase(mode);
      }
    }
    return;
  }
  if (!priv && final_byte == 'r') {  // DECSTBM
    const int top = params.size() > 0 && params[0] > 0 ? params[0] - 1 : 0;
    const int bottom = params.size() > 1 && params[1] > 0 ? params[1] - 1 : rows_ - 1;
    if (top < bottom && bottom < rows_) {
      scroll_top_ = top;
      scroll_bottom_ = bottom == rows_ - 1 ? -1 : bottom;
    }
  }
}

ScreenModel::Grid ScreenModel::capture_grid() const {
  Grid grid;
  grid.rows = rows_;
  grid.cols = cols_;
  grid.cells.resize(static_cast<size_t>(rows_) * cols_);
  for (int row = 0; row < rows_; ++row) {
    for (int col = 0; col < cols_; ++col) {
      vterm_screen_get_cell(screen_, VTermPos{row, col}, &grid.cells[static_cast<size_t>(row) * cols_ + col]);
    }
  }
  vterm_state_get_cursorpos(state_, &grid.cursor);
  grid.cursor_visible = cursor_visible_;
  grid.cursor_blink = cursor_blink_;
  grid.cursor_shape = cursor_shape_;
  return grid;
}

std::string ScreenModel::encode_row(const Grid& grid, int row) const {
  return encode_cells(&grid.cells[static_cast<size_t>(row) * grid.cols], grid.cols);
}

void ScreenModel::resize(uint16_t cols, uint16_t rows) {
  cols = std::max<uint16_t>(cols, 1);
  rows = std::max<uint16_t>(rows, 1);
  if (cols == cols_ && rows == rows_) return;
  cols_ = cols;
  rows_ = rows;
  vterm_set_size(vt_.get(), rows_, cols_);
  saved_normal_.reset();  // its size no longer matches; the snapshot then shows the alternate screen only
  scroll_top_ = 0;
  scroll_bottom_ = -1;
}

std::string ScreenModel::snapshot() const {
  std::string out = "\x1b" "c";  // RIS: a used terminal starts afresh
  for (const std::string& line : history_) out += line + "\r\n";
  const Grid active = capture_grid();
  const auto draw = [&out](const Grid& grid) {
    for (int row = 0; row < grid.rows; ++row) {
      if (row > 0) out += "\r\n";
      out += encode_cells(&grid.cells[static_cast<size_t>(row) * grid.cols], grid.cols);
    }
  };
  const auto cup = [&out](int row, int col) { out += "\x1b[" + std::to_string(row + 1) + ";" + std::to_string(col + 1) + "H"; };
  const auto cursor_style = [&out](int shape, bool blink) {
    int n = 1;
    if (shape == VTERM_PROP_CURSORSHAPE_BLOCK) n = blink ? 1 : 2;
    else if (shape == VTERM_PROP_CURSORSHAPE_UNDERLINE) n = blink ? 3 : 4;
    else if (shape == VTERM_PROP_CURSORSHAPE_BAR_LEFT) n = blink ? 5 : 6;
    out += "\x1b[" + std::to_string(n) + " q";
  };
  if (alt_screen_ && saved_normal_) {
    // The normal screen beneath, with the cursor and its style as 1049 saves them, then the alternate one.
    draw(*saved_normal_);
    cup(saved_normal_->cursor.row, saved_normal_->cursor.col);
    cursor_style(saved_normal_->cursor_shape, saved_normal_->cursor_blink);
    out += saved_normal_->cursor_visible ? "\x1b[?25h" : "\x1b[?25l";
    out += "\x1b[?1049h\x1b[H";
    draw(active);
  } else if (alt_screen_) {
    out += "\x1b[?1049h\x1b[H";
    draw(active);
  } else {
    draw(active);
  }
  for (const auto& [mode, set] : modes_) {
    if (mode == 7) {
      if (!set) out += "\x1b[?7l";
    } else if (set && mode != 6) {
      out += "\x1b[?" + std::to_string(mode) + "h";
    }
  }
  if (reverse_video_) out += "\x1b[?5h";
  if (mouse_ == VTERM_PROP_MOUSE_CLICK) out += "\x1b[?1000h";
  if (mouse_ == VTERM_PROP_MOUSE_DRAG) out += "\x1b[?1002h";
  if (mouse_ == VTERM_PROP_MOUSE_MOVE) out += "\x1b[?1003h";
  if (keypad_application_) out += "\x1b=";
  if (g0_line_drawing_) out += "\x1b(0";
  if (g1_line_drawing_) out += "\x1b)0";
  if (shifted_out_) out += "\x0e";
  if (scroll_top_ > 0 || scroll_bottom_ >= 0) {
    out += "\x1b[" + std::to_string(scroll_top_ + 1) + ";" + std::to_string((scroll_bottom_ < 0 ? rows_ - 1 : scroll_bottom_) + 1) + "r";
  }
  const bool origin = modes_.count(6) != 0 && modes_.at(6);
  if (origin) out += "\x1b[?6h";
  VTermPos cursor = active.cursor;
  // After a character in the last column a terminal waits to wrap; drawing that cell again restores the
  // wait (the model cannot tell it from a cursor placed there: docs/snapshots.md).
  const VTermScreenCell& last = active.cells[static_cast<size_t>(cursor.row) * cols_ + cursor.col];
  const bool rewrap = cursor.col == cols_ - 1 && !blank(last) && last.width == 1 && last.chars[0] != 0 &&
                      last.chars[0] != kContinuation &&
                      (modes_.count(7) == 0 || modes_.at(7));
  cup(cursor.row - (origin ? scroll_top_ : 0), cursor.col);
  if (rewrap) {
    const std::string pen = cell_pen(last);
    if (!pen.empty()) out += sgr(pen);
    for (int i = 0; i < VTERM_MAX_CHARS_PER_CELL && last.chars[i] != 0; ++i) append_utf8(out, last.chars[i]);
    out += "\x1b[0m";
  }
  cursor_style(cursor_shape_, cursor_blink_);
  if (!cursor_visible_) out += "\x1b[?25l";
  if (!title_.empty()) out += "\x1b]2;" + printable(title_) + "\x07";
  // The pen the next output draws with.
  VTermScreenCellAttrs attrs{};
  VTermValue value;
  if (vterm_state_get_penattr(state_, VTERM_ATTR_BOLD, &value)) attrs.bold = value.boolean ? 1 : 0;
  if (vterm_state_get_penattr(state_, VTERM_ATTR_UNDERLINE, &value)) attrs.underline = static_cast<unsigned>(value.number) & 3;
  if (vterm_state_get_penattr(state_, VTERM_ATTR_ITALIC, &value)) attrs.italic = value.boolean ? 1 : 0;
  if (vterm_state_get_penattr(state_, VTERM_ATTR_BLINK, &value)) attrs.blink = value.boolean ? 1 : 0;
  if (vterm_state_get_penattr(state_, VTERM_ATTR_REVERSE, &value)) attrs.reverse = value.boolean ? 1 : 0;
  if (vterm_state_get_penattr(state_, VTERM_ATTR_STRIKE, &value)) attrs.strike = value.boolean ? 1 : 0;
  VTermColor fg{}, bg{};
  fg.type = VTERM_COLOR_DEFAULT_FG;
  bg.type = VTERM_COLOR_DEFAULT_BG;
  if (vterm_state_get_penattr(state_, VTERM_ATTR_FOREGROUND, &value)) fg = value.color;
  if (vterm_state_get_penattr(state_, VTERM_ATTR_BACKGROUND, &value)) bg = value.color;
  const std::string pen = pen_text(attrs, fg, bg);
  if (!pen.empty()) out += sgr(pen);
  // What the output left unfinished: the live bytes that follow complete it.
  if (scan_ != Scan::ground && pending_.size() < kMaxPending) out += pending_;
  out += utf8_held_;
  return out;
}

size_t ScreenModel::memory_bytes() const {
  const size_t cells = static_cast<size_t>(rows_) * cols_;
  return 2 * cells * 36 + history_bytes_ + history_.size() * sizeof(std::string) +
         (saved_normal_ ? cells * sizeof(VTermScreenCell) : 0) + pending_.size();
}

ScreenModel::Cell ScreenModel::cell(int row, int col) const {
  VTermScreenCell c{};
  vterm_screen_get_cell(screen_, VTermPos{row, col}, &c);
  Cell out;
  for (int i = 0; i < VTERM_MAX_CHARS_PER_CELL && c.chars[i] != 0; ++i) out.chars += static_cast<char32_t>(c.chars[i]);
  out.width = c.width;
  out.pen = cell_pen(c);
  return out;
}

int ScreenModel::cursor_row() const {
  VTermPos pos;
  vterm_state_get_cursorpos(state_, &pos);
  return pos.row;
}

int ScreenModel::cursor_col() const {
  VTermPos pos;
  vterm_state_get_cursorpos(state_, &pos);
  return pos.col;
}

}  // namespace ptyhub::screen
