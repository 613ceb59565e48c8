#include "runner/serve/ansi.h"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <utility>
#include <vector>

#include "runner/serve/pages.h"

namespace runner::serve {

namespace {

constexpr char kEsc = '\x1b';
constexpr char kBel = '\x07';
constexpr char kCan = '\x18';
constexpr char kSub = '\x1a';
// Far more than any real SGR sequence; longer ones are dropped rather than buffered.
constexpr std::size_t kMaxCsi = 64;
// Larger parameters mean nothing to SGR; clamping keeps the parse free of overflow.
constexpr int kMaxParameter = 9999;

bool IsPlainText(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

// The number of bytes at the end of `text` that begin a UTF-8 character still missing its
// continuation bytes (0 when the text ends on a character boundary). Holding back more than a
// valid prefix is harmless: the bytes are validated once joined with the next chunk.
std::size_t IncompleteTail(std::string_view text) {
  for (std::size_t back = 1; back <= 3 && back <= text.size(); ++back) {
    auto c = static_cast<unsigned char>(text[text.size() - back]);
    if (c >= 0x80 && c <= 0xBF) continue;  // a continuation byte: look further back
    std::size_t length = c >= 0xC2 && c <= 0xDF   ? 2
                         : c >= 0xE0 && c <= 0xEF ? 3
                         : c >= 0xF0 && c <= 0xF4 ? 4
                                                  : 0;
    return length > back ? back : 0;
  }
  return 0;
}

// One SGR parameter with its colon-separated sub-parameters (`38:2::255:0:0`); empty ones are 0.
std::vector<int> SubParameters(std::string_view text) {
  std::vector<int> values{0};
  for (char c : text) {
    if (c == ':') {
      values.push_back(0);
    } else if (c >= '0' && c <= '9') {
      int& value = values.back();
      value = std::min(kMaxParameter, value * 10 + (c - '0'));
    }
  }
  return values;
}

// The xterm palette index nearest to an RGB colour: the 6x6x6 cube (16..231) or the grey ramp
// (232..255), whichever is closer.
int NearestPaletteColour(int r, int g, int b) {
  static constexpr std::array<int, 6> kLevels = {0, 95, 135, 175, 215, 255};
  auto nearest_level = [](int v) {
    int best = 0;
    for (int i = 1; i < 6; ++i) {
      if (std::abs(kLevels[i] - v) < std::abs(kLevels[best] - v)) best = i;
    }
    return best;
  };
  auto distance = [&](int r2, int g2, int b2) {
    return (r - r2) * (r - r2) + (g - g2) * (g - g2) + (b - b2) * (b - b2);
  };
  int ri = nearest_level(r), gi = nearest_level(g), bi = nearest_level(b);
  int cube = 16 + 36 * ri + 6 * gi + bi;
  int cube_distance = distance(kLevels[ri], kLevels[gi], kLevels[bi]);
  int grey_step = std::clamp(((r + g + b) / 3 - 8 + 5) / 10, 0, 23);
  int grey = 8 + 10 * grey_step;
  return distance(grey, grey, grey) < cube_distance ? 232 + grey_step : cube;
}

}  // namespace

std::string AnsiToHtml::Feed(std::string_view bytes) {
  std::size_t i = 0;
  while (i < bytes.size()) {
    if (parse_ == Parse::kText && !pending_cr_) {
      // Runs of plain text are the common case: take them whole.
      std::size_t end = i;
      while (end < bytes.size() && IsPlainText(static_cast<unsigned char>(bytes[end]))) ++end;
      if (end > i) {
        text_.append(bytes.substr(i, end - i));
        i = end;
        continue;
      }
    }
    Byte(bytes[i++]);
  }
  if (parse_ == Parse::kText) FlushText(true);
  return TakeFragment();
}

std::string AnsiToHtml::Finish() {
  if (parse_ == Parse::kText) FlushText(false);
  parse_ = Parse::kText;
  csi_.clear();
  pending_cr_ = false;
  return TakeFragment();
}

void AnsiToHtml::Byte(char c) {
  auto u = static_cast<unsigned char>(c);
  switch (parse_) {
    case Parse::kText:
      if (pending_cr_ && c != '\r') {
        pending_cr_ = false;
        if (c != '\n') CarriageReturn();
      }
      if (IsPlainText(u)) {
        text_ += c;
        return;
      }
      // Every control character ends the text run, so a dropped one cannot join the two
      // halves of an invalid UTF-8 sequence into a valid one.
      FlushText(false);
      if (c == '\n') {
        Newline();
      } else if (c == '\r') {
        pending_cr_ = true;
      } else if (c == kEsc) {
        parse_ = Parse::kEscape;
      }
      return;
    case Parse::kEscape:
      if (c == '[') {
        parse_ = Parse::kCsi;
        csi_.clear();
        csi_overflow_ = false;
      } else if (c == ']' || c == 'P' || c == 'X' || c == '^' || c == '_') {
        parse_ = Parse::kString;  // OSC, DCS, SOS, PM, APC: dropped up to their terminator
      } else if (u >= 0x20 && u <= 0x2f) {
        parse_ = Parse::kEscapeIntermediate;
      } else if (u >= 0x30 && u <= 0x7e) {
        parse_ = Parse::kText;  // a two-byte sequence such as ESC 7 or ESC =
      } else if (c != kEsc) {
        parse_ = Parse::kText;
        Byte(c);
      }
      return;
    case Parse::kEscapeIntermediate:
      if (u >= 0x20 && u <= 0x2f) return;
      parse_ = Parse::kText;
      if (u < 0x30 || u > 0x7e) Byte(c);
      return;
    case Parse::kCsi:
      if (u >= 0x20 && u <= 0x3f) {
        if (csi_.size() < kMaxCsi) {
          csi_ += c;
        } else {
          csi_overflow_ = true;
        }
      } else if (u >= 0x40 && u <= 0x7e) {
        parse_ = Parse::kText;
        if (c == 'm' && !csi_overflow_) ApplySgr();
      } else if (c == kEsc) {
        parse_ = Parse::kEscape;
      } else {
        parse_ = Parse::kText;  // malformed: the byte is text (or a control) again
        if (c != kCan && c != kSub) Byte(c);
      }
      return;
    case Parse::kString:
      if (c == kBel || c == kCan || c == kSub) {
        parse_ = Parse::kText;
      } else if (c == kEsc) {
        parse_ = Parse::kStringEscape;
      } else if (c == '\n') {
        // Unterminated (a title cut short): end it here rather than hide the rest of the log.
        parse_ = Parse::kText;
        Byte(c);
      }
      return;
    case Parse::kStringEscape:
      if (c == '\\') {
        parse_ = Parse::kText;  // ST
      } else {
        parse_ = Parse::kEscape;
        Byte(c);
      }
      return;
  }
}

void AnsiToHtml::FlushText(bool hold_incomplete) {
  if (text_.empty()) return;
  std::size_t keep = hold_incomplete ? IncompleteTail(text_) : 0;
  std::string_view complete = std::string_view(text_).substr(0, text_.size() - keep);
  if (!complete.empty()) Emit(HtmlEscape(complete));
  text_.erase(0, text_.size() - keep);
}

void AnsiToHtml::Emit(std::string_view escaped_html) {
  std::string classes = Classes();
  if (classes != open_classes_) {
    if (!open_classes_.empty()) out_ += "</span>";
    if (!classes.empty()) out_ += "<span class=\"" + classes + "\">";
    open_classes_ = std::move(classes);
  }
  out_ += escaped_html;
}

void AnsiToHtml::Newline() {
  // A span whose style has ended is closed before the newline rather than after it.
  if (!open_classes_.empty() && open_classes_ != Classes()) {
    out_ += "</span>";
    open_classes_.clear();
  }
  out_ += '\n';
  line_start_ = out_.size();
  line_start_classes_ = open_classes_;
  line_sent_ = false;
}

void AnsiToHtml::CarriageReturn() {
  if (line_sent_) {
    Newline();
  } else {
    out_.resize(line_start_);
    open_classes_ = line_start_classes_;
  }
}

void AnsiToHtml::ApplySgr() {
  if (!csi_.empty() && csi_[0] >= '<' && csi_[0] <= '?') return;  // a private sequence
  std::vector<std::vector<int>> parameters;
  std::size_t begin = 0;
  while (true) {
    std::size_t end = csi_.find(';', begin);
    parameters.push_back(SubParameters(std::string_view(csi_).substr(begin, end - begin)));
    if (end == std::string::npos) break;
    begin = end + 1;
  }
  auto byte_value = [](int v) { return v >= 0 && v <= 255; };
  for (std::size_t i = 0; i < parameters.size(); ++i) {
    const std::vector<int>& p = parameters[i];
    int code = p[0];
    if (code == 38 || code == 48) {
      int colour = -1;
      if (p.size() > 1) {  // 38:5:N, 38:2:R:G:B or 38:2:COLOURSPACE:R:G:B
        if (p[1] == 5 && p.size() > 2 && byte_value(p[2])) colour = p[2];
        if (p[1] == 2 && p.size() >= 5) {
          std::size_t r = p.size() >= 6 ? 3 : 2;
          if (byte_value(p[r]) && byte_value(p[r + 1]) && byte_value(p[r + 2])) {
            colour = NearestPaletteColour(p[r], p[r + 1], p[r + 2]);
          }
        }
      } else if (i + 2 < parameters.size() && parameters[i + 1][0] == 5) {
        if (byte_value(parameters[i + 2][0])) colour = parameters[i + 2][0];
        i += 2;
      } else if (i + 4 < parameters.size() && parameters[i + 1][0] == 2) {
        int r = parameters[i + 2][0], g = parameters[i + 3][0], b = parameters[i + 4][0];
        if (byte_value(r) && byte_value(g) && byte_value(b)) colour = NearestPaletteColour(r, g, b);
        i += 4;
      }
      if (colour >= 0) (code == 38 ? style_.fg : style_.bg) = colour;
      continue;
    }
    if (code == 0) {
      style_ = Style{};
    } else if (code == 1) {
      style_.bold = true;
    } else if (code == 2) {
      style_.faint = true;
    } else if (code == 3) {
      style_.italic = true;
    } else if (code == 4) {
      style_.underline = p.size() < 2 || p[1] != 0;  // 4:0 is "no underline"
    } else if (code == 7) {
      style_.inverse = true;
    } else if (code == 22) {
      style_.bold = style_.faint = false;
    } else if (code == 23) {
      style_.italic = false;
    } else if (code == 24) {
      style_.underline = false;
    } else if (code == 27) {
      style_.inverse = false;
    } else if (code >= 30 && code <= 37) {
      style_.fg = code - 30;
    } else if (code == 39) {
      style_.fg = -1;
    } else if (code >= 40 && code <= 47) {
      style_.bg = code - 40;
    } else if (code == 49) {
      style_.bg = -1;
    } else if (code >= 90 && code <= 97) {
      style_.fg = code - 90 + 8;
    } else if (code >= 100 && code <= 107) {
      style_.bg = code - 100 + 8;
    }
  }
}

std::string AnsiToHtml::Classes() const {
  std::string classes;
  auto add = [&](std::string_view name) {
    if (!classes.empty()) classes += ' ';
    classes += name;
  };
  if (style_.bold) add("ab");
  if (style_.faint) add("ad");
  if (style_.italic) add("ai");
  if (style_.underline) add("au");
  int fg = style_.inverse ? style_.bg : style_.fg;
  int bg = style_.inverse ? style_.fg : style_.bg;
  // Inverse over a default colour: the page's background as text, its text colour behind.
  if (fg >= 0) {
    add("f" + std::to_string(fg));
  } else if (style_.inverse) {
    add("fr");
  }
  if (bg >= 0) {
    add("b" + std::to_string(bg));
  } else if (style_.inverse) {
    add("br");
  }
  return classes;
}

std::string AnsiToHtml::TakeFragment() {
  if (out_.size() > line_start_) line_sent_ = true;
  if (!open_classes_.empty()) out_ += "</span>";
  open_classes_.clear();
  line_start_ = 0;
  line_start_classes_.clear();
  return std::exchange(out_, {});
}

}  // namespace runner::serve
