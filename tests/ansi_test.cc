#include "runner/serve/ansi.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace runner::serve {
namespace {

std::string Convert(std::string_view bytes) {
  AnsiToHtml converter;
  std::string html = converter.Feed(bytes);
  return html + converter.Finish();
}

// Each fragment of a conversion, for checks that every one is well-formed alone.
std::vector<std::string> Fragments(const std::vector<std::string_view>& chunks) {
  AnsiToHtml converter;
  std::vector<std::string> fragments;
  for (std::string_view chunk : chunks) fragments.push_back(converter.Feed(chunk));
  fragments.push_back(converter.Finish());
  return fragments;
}

std::string Join(const std::vector<std::string>& fragments) {
  std::string all;
  for (const std::string& fragment : fragments) all += fragment;
  return all;
}

// Whether every <span ...> has its </span> and no </span> comes before its <span.
bool Balanced(std::string_view html) {
  int depth = 0;
  for (std::size_t i = 0; i < html.size(); ++i) {
    if (html.compare(i, 5, "<span") == 0) ++depth;
    if (html.compare(i, 7, "</span>") == 0 && --depth < 0) return false;
  }
  return depth == 0;
}

TEST(AnsiTest, PlainTextIsEscaped) {
  EXPECT_EQ(Convert("a < b && c > \"d\" 'e'\n"),
            "a &lt; b &amp;&amp; c &gt; &quot;d&quot; &#39;e&#39;\n");
  EXPECT_EQ(Convert("<script>alert(1)</script>"), "&lt;script&gt;alert(1)&lt;/script&gt;");
}

TEST(AnsiTest, ForegroundBackgroundAndReset) {
  EXPECT_EQ(Convert("\x1b[31mred\x1b[0m plain"), "<span class=\"f1\">red</span> plain");
  EXPECT_EQ(Convert("\x1b[92mbright\x1b[39m"), "<span class=\"f10\">bright</span>");
  EXPECT_EQ(Convert("\x1b[44mbg\x1b[49mx"), "<span class=\"b4\">bg</span>x");
  EXPECT_EQ(Convert("\x1b[103mbg"), "<span class=\"b11\">bg</span>");
  EXPECT_EQ(Convert("\x1b[1;32mok\x1b[m done"), "<span class=\"ab f2\">ok</span> done");
  // A colour change closes the span and opens another; bold survives a colour change.
  EXPECT_EQ(Convert("\x1b[1m\x1b[31ma\x1b[34mb\x1b[22mc"),
            "<span class=\"ab f1\">a</span><span class=\"ab f4\">b</span>"
            "<span class=\"f4\">c</span>");
}

TEST(AnsiTest, PaletteAndTrueColour) {
  EXPECT_EQ(Convert("\x1b[38;5;208mx"), "<span class=\"f208\">x</span>");
  EXPECT_EQ(Convert("\x1b[48;5;17mx"), "<span class=\"b17\">x</span>");
  // Pure red is cube colour 196; a mid grey is on the grey ramp.
  EXPECT_EQ(Convert("\x1b[38;2;255;0;0mx"), "<span class=\"f196\">x</span>");
  EXPECT_EQ(Convert("\x1b[48;2;128;128;128mx"), "<span class=\"b244\">x</span>");
  EXPECT_EQ(Convert("\x1b[38:2::255:0:0mx"), "<span class=\"f196\">x</span>");
  EXPECT_EQ(Convert("\x1b[38:5:33mx"), "<span class=\"f33\">x</span>");
  // Out of range values change nothing; the parameters after them still apply.
  EXPECT_EQ(Convert("\x1b[38;5;300;1mx"), "<span class=\"ab\">x</span>");
  EXPECT_EQ(Convert("\x1b[38;2;999;0;0mx"), "x");
}

TEST(AnsiTest, InverseSwapsColours) {
  EXPECT_EQ(Convert("\x1b[31;7mx\x1b[27my"),
            "<span class=\"fr b1\">x</span><span class=\"f1\">y</span>");
}

TEST(AnsiTest, OtherSequencesAndControlsAreDropped) {
  // Cursor moves, erase line, a private mode, an OSC title (BEL and ST ended), a hyperlink,
  // a charset switch, BEL and backspace.
  EXPECT_EQ(Convert("\x1b[2K\x1b[1A\x1b[?25lA\x1b]0;title\x07"
                    "B\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\\x1b(BC\x07\x08\n"),
            "ABlinkC\n");
  // An unterminated title ends at the newline instead of hiding the rest of the log.
  EXPECT_EQ(Convert("\x1b]0;title\nnext"), "\nnext");
  EXPECT_EQ(Convert("tab\there"), "tab\there");
}

TEST(AnsiTest, SequenceSplitAcrossFeeds) {
  auto fragments = Fragments({"a\x1b[3", "1mred\x1b", "[0mplain"});
  EXPECT_EQ(fragments[0], "a");
  EXPECT_EQ(fragments[1], "<span class=\"f1\">red</span>");
  EXPECT_EQ(fragments[2], "plain");
  // Split in every place, a byte at a time: the same result as in one piece.
  std::string input = "x\x1b[1;38;5;99mbold\x1b]0;t\x1b\\ \xE2\x82\xAC \x1b[0m!\n";
  std::vector<std::string_view> bytes;
  for (std::size_t i = 0; i < input.size(); ++i)
    bytes.push_back(std::string_view(input).substr(i, 1));
  std::string whole = Convert(input);
  EXPECT_EQ(whole, "x<span class=\"ab f99\">bold \xE2\x82\xAC </span>!\n");
  std::string joined = Join(Fragments(bytes));
  // Fragments close and reopen their spans: the text and classes are the same.
  auto strip_repeats = [](std::string html) {
    for (std::size_t at; (at = html.find("</span><span class=\"ab f99\">")) != std::string::npos;) {
      html.erase(at, std::string_view("</span><span class=\"ab f99\">").size());
    }
    return html;
  };
  EXPECT_EQ(strip_repeats(joined), whole);
}

TEST(AnsiTest, Utf8SplitAcrossFeedsAndInvalidBytes) {
  // The euro sign's three bytes in three chunks come out whole, once.
  auto fragments = Fragments({"\xE2", "\x82", "\xAC!"});
  EXPECT_EQ(fragments[0], "");
  EXPECT_EQ(fragments[1], "");
  EXPECT_EQ(fragments[2], "\xE2\x82\xAC!");
  // Invalid bytes become U+FFFD; so does a character cut off at the end of the log.
  EXPECT_EQ(Convert("a\xFF"
                    "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(Convert("a\xE2\x82"), "a\xEF\xBF\xBD");
  // An escape sequence inside a character leaves its first half invalid.
  EXPECT_EQ(Convert("\xE2\x82\x1b[1m\xAC"), "\xEF\xBF\xBD<span class=\"ab\">\xEF\xBF\xBD</span>");
}

TEST(AnsiTest, SpansAreBalancedInEveryFragment) {
  auto fragments = Fragments({"\x1b[31mred and", " still red\n", "\x1b[1mbold", "\x1b[0m", "x"});
  ASSERT_EQ(fragments.size(), 6u);
  for (const std::string& fragment : fragments) EXPECT_TRUE(Balanced(fragment)) << fragment;
  EXPECT_EQ(fragments[0], "<span class=\"f1\">red and</span>");
  EXPECT_EQ(fragments[1], "<span class=\"f1\"> still red\n</span>");
  EXPECT_EQ(fragments[2], "<span class=\"ab f1\">bold</span>");
  EXPECT_EQ(fragments[3], "");
  EXPECT_EQ(fragments[4], "x");
}

TEST(AnsiTest, CarriageReturnOverwritesTheLine) {
  // Within one chunk only the last version of a line is kept; CR LF is a newline.
  EXPECT_EQ(Convert("start\n 10%\r 50%\r100%\ndone\r\n"), "start\n100%\ndone\n");
  // The overwritten text's colour is gone with it, the current colour stays.
  EXPECT_EQ(Convert("\x1b[31mold\r\x1b[32mnew"), "<span class=\"f2\">new</span>");
  EXPECT_EQ(Convert("keep\r\r\n"), "keep\n");
  // What went out with an earlier fragment cannot be taken back: a new line instead.
  auto fragments = Fragments({"10%", "\r20%", "\r30%\r40%\n"});
  EXPECT_EQ(fragments[0], "10%");
  EXPECT_EQ(fragments[1], "\n20%");
  EXPECT_EQ(fragments[2], "\n40%\n");
  // A CR at the end of one chunk and LF at the start of the next is still a newline.
  EXPECT_EQ(Join(Fragments({"line\r", "\nnext"})), "line\nnext");
}

}  // namespace
}  // namespace runner::serve
