// A step log's bytes (colours from `ls --color`, compilers, Packer) as HTML for the build page.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace runner::serve {

// Converts a stream of log bytes, chunk by chunk, to escaped HTML text for a <pre> element:
//
//  - text is UTF-8 with every invalid sequence replaced by U+FFFD, and & < > " ' escaped;
//  - SGR sequences (ESC [ ... m) become <span class="..."> with classes of the page's style
//    sheet, never inline styles: `ab` bold, `ad` faint, `ai` italic, `au` underline, `fN` and
//    `bN` (N 0..255) the foreground and background colour in the xterm 256-colour palette.
//    30-37 and 90-97 are f0-f15, 40-47 and 100-107 b0-b15, 38;5;N and 48;5;N are fN and bN,
//    38;2;R;G;B and 48;2;R;G;B the nearest palette colour (also written with colons);
//    7 (inverse) swaps the two (`fr` and `br` stand for an inverted default colour). 0 and
//    the matching 2x, 39 and 49 codes reset;
//  - every other escape sequence (cursor moves, erase, OSC titles and links, DCS) is dropped,
//    as are control characters other than tab and newline;
//  - a carriage return not followed by a newline overwrites the line: text of the line
//    produced by the same Feed call is dropped; when part of the line went out with an
//    earlier fragment (which cannot be taken back) a newline is written instead, so progress
//    counters read as lines rather than run together. CR LF is a newline.
//
// State (colours, an escape sequence or a UTF-8 character cut between two chunks, a trailing
// carriage return) is carried from one Feed to the next. Each returned fragment is well-formed
// on its own: a span open at its end is closed there and reopened by the next fragment.
// Not thread-safe.
class AnsiToHtml {
 public:
  // The HTML for `bytes` (possibly empty, when all of it is held until the next call).
  std::string Feed(std::string_view bytes);
  // The HTML for what is still held at the end of the log: an incomplete UTF-8 character
  // becomes U+FFFD, a partial escape sequence and a trailing carriage return are dropped.
  std::string Finish();

 private:
  enum class Parse : std::uint8_t {
    kText,
    kEscape,
    kEscapeIntermediate,
    kCsi,
    kString,
    kStringEscape
  };
  struct Style {
    int fg = -1;  // palette index, -1 default
    int bg = -1;
    bool bold = false;
    bool faint = false;
    bool italic = false;
    bool underline = false;
    bool inverse = false;
  };

  void Byte(char c);
  void FlushText(bool hold_incomplete);
  void Emit(std::string_view escaped_html);
  void Newline();
  void CarriageReturn();
  void ApplySgr();
  std::string Classes() const;
  std::string TakeFragment();

  Parse parse_ = Parse::kText;
  Style style_;
  std::string text_;  // raw text bytes not yet converted
  std::string csi_;   // parameter and intermediate bytes of the CSI being read
  bool csi_overflow_ = false;
  bool pending_cr_ = false;

  // The fragment being built.
  std::string out_;
  std::string open_classes_;  // classes of the span open in out_, empty when none is
  // Where the current line starts in out_ and which span was open there, for overwrites.
  std::size_t line_start_ = 0;
  std::string line_start_classes_;
  // Whether part of the current line went out in an earlier fragment.
  bool line_sent_ = false;
};

}  // namespace runner::serve
