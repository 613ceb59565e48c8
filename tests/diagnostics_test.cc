#include "runner/diagnostics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace runner {
namespace {

TEST(DiagnosticsTest, FormatsFileLineColumnSourceAndCaret) {
  Diagnostics diags("pipeline.yml", "version: 1\nsteps:\n  - id: bake\n    neds: [a]\n");
  diags.Error({4, 5}, "unknown key 'neds' in step 'bake' (did you mean 'needs'?)");
  EXPECT_EQ(diags.Format(),
            "pipeline.yml:4:5: error: unknown key 'neds' in step 'bake' (did you mean 'needs'?)\n"
            "    neds: [a]\n"
            "    ^\n");
  EXPECT_TRUE(diags.HasErrors());
}

TEST(DiagnosticsTest, UnknownPositionHasNoSourceLines) {
  Diagnostics diags("pipeline.yml", "version: 1\n");
  diags.Error({}, "the pipeline file is empty");
  EXPECT_EQ(diags.Format(), "pipeline.yml: error: the pipeline file is empty\n");
}

TEST(DiagnosticsTest, KnownLineWithoutColumnQuotesTheLineWithoutCaret) {
  Diagnostics diags("p.yml", "a: 1\nb: 2\n");
  diags.Error({2, 0}, "bad");
  EXPECT_EQ(diags.Format(), "p.yml:2: error: bad\nb: 2\n");
}

TEST(DiagnosticsTest, CaretKeepsTabsOfTheSourceLine) {
  Diagnostics diags("p.yml", "a:\n\t\tx y\n");
  diags.Error({2, 5}, "here");
  EXPECT_EQ(diags.Format(), "p.yml:2:5: error: here\n\t\tx y\n\t\t  ^\n");
}

TEST(DiagnosticsTest, CaretCountsMultiByteCharactersOnce) {
  // Columns count bytes: "é" is two bytes, so column 5 is the `x` after "é: ".
  Diagnostics diags("p.yml", "\xc3\xa9: x\n");
  diags.Error({1, 5}, "here");
  EXPECT_EQ(diags.Format(), "p.yml:1:5: error: here\n\xc3\xa9: x\n   ^\n");
}

TEST(DiagnosticsTest, StripsCarriageReturnOfTheQuotedLine) {
  Diagnostics diags("p.yml", "a: 1\r\nb: 2\r\n");
  diags.Error({2, 4}, "bad");
  EXPECT_EQ(diags.Format(), "p.yml:2:4: error: bad\nb: 2\n   ^\n");
}

TEST(DiagnosticsTest, LineBeyondTheSourceIsReportedWithoutQuote) {
  Diagnostics diags("p.yml", "a: 1\n");
  diags.Error({9, 1}, "bad");
  EXPECT_EQ(diags.Format(), "p.yml:9:1: error: bad\n");
}

TEST(DiagnosticsTest, SortsByPositionAndKeepsOrderOfEqualPositions) {
  Diagnostics diags("p.yml", "a\nb\nc\n");
  diags.Error({3, 1}, "third");
  diags.Error({1, 1}, "first");
  diags.Error({2, 1}, "second-a");
  diags.Warning({2, 1}, "second-b");
  diags.Error({}, "no place");
  EXPECT_EQ(diags.Format(),
            "p.yml: error: no place\n"
            "p.yml:1:1: error: first\na\n^\n"
            "p.yml:2:1: error: second-a\nb\n^\n"
            "p.yml:2:1: warning: second-b\nb\n^\n"
            "p.yml:3:1: error: third\nc\n^\n");
}

TEST(DiagnosticsTest, WarningsAloneAreNotErrors) {
  Diagnostics diags("p.yml", "");
  diags.Warning({}, "careful");
  EXPECT_FALSE(diags.HasErrors());
  EXPECT_EQ(diags.Format(), "p.yml: warning: careful\n");
  EXPECT_EQ(diags.diagnostics().size(), 1u);
  EXPECT_EQ(diags.file(), "p.yml");
}

TEST(DiagnosticsSuggestTest, SuggestsTyposWithinAThirdOfTheLength) {
  std::vector<std::string> keys = {"id", "name", "needs", "when", "env", "timeout", "retry"};
  EXPECT_EQ(SuggestClosest("neds", keys), "needs");
  EXPECT_EQ(SuggestClosest("nedes", keys), "needs");  // transposition counts as one edit
  EXPECT_EQ(SuggestClosest("timout", keys), "timeout");
  EXPECT_EQ(SuggestClosest("Needs", keys), "needs");  // case-insensitive
  EXPECT_EQ(SuggestClosest("ENV", keys), "env");
}

TEST(DiagnosticsSuggestTest, NoSuggestionWhenTooFar) {
  std::vector<std::string> keys = {"needs", "when", "timeout"};
  EXPECT_EQ(SuggestClosest("image", keys), "");
  EXPECT_EQ(SuggestClosest("x", {"id"}), "");  // one edit allowed, two needed
  EXPECT_EQ(SuggestClosest("d", {"id"}), "id");
  EXPECT_EQ(SuggestClosest("anything", {}), "");
  EXPECT_EQ(SuggestClosest(std::string(100000, 'a'), keys), "");
}

TEST(DiagnosticsSuggestTest, LongWordsAreNotCompared) {
  // Two 30,000-character ids would need a 900-million-cell table.
  std::string id(30000, 'a');
  std::string other = id;
  other.back() = 'b';
  EXPECT_EQ(SuggestClosest(id, {other}), "");
  std::string name(kMaxSuggestLength, 'a');
  EXPECT_EQ(SuggestClosest(name + "b", {name, name + "bc"}), "");
  EXPECT_EQ(SuggestClosest(name.substr(1) + "b", {name}), name);
}

TEST(DiagnosticsSuggestTest, PrefersTheClosestThenTheFirst) {
  EXPECT_EQ(SuggestClosest("branc", {"branches", "branch"}), "branch");
  EXPECT_EQ(SuggestClosest("ab", {"ax", "ay"}), "ax");
}

}  // namespace
}  // namespace runner

namespace runner {
namespace {

TEST(DiagnosticsTest, FormatsTheFirstHundredThenACount) {
  std::string source;
  for (int i = 0; i < 150; ++i) source += "k" + std::to_string(i) + ": x\n";
  Diagnostics diags("p.yml", source);
  for (int i = 149; i >= 0; --i) diags.Error({i + 1, 1}, "unknown key");
  EXPECT_EQ(diags.ErrorCount(), 150u);
  EXPECT_EQ(diags.diagnostics().size(), 150u);
  std::string text = diags.Format();
  EXPECT_THAT(text, ::testing::HasSubstr("p.yml:100:1: error: unknown key\n"));
  EXPECT_THAT(text, ::testing::Not(::testing::HasSubstr("p.yml:101:1:")));
  EXPECT_THAT(text, ::testing::EndsWith("k99: x\n^\np.yml: and 50 more errors and warnings\n"));
}

TEST(DiagnosticsTest, LongLinesAreQuotedAsAWindowAroundTheColumn) {
  std::string line = std::string(1000, 'a') + "BAD" + std::string(1000, 'b');
  Diagnostics diags("p.yml", line + "\n");
  diags.Error({1, 1001}, "here");
  diags.Error({1, 1}, "start");
  std::string window = "..." + std::string(80, 'a') + "BAD" + std::string(77, 'b') + "...";
  EXPECT_EQ(diags.Format(), "p.yml:1:1: error: start\n" + line.substr(0, 160) + "...\n^\n" +
                                "p.yml:1:1001: error: here\n" + window + "\n" +
                                std::string(83, ' ') + "^\n");
}

TEST(DidYouMeanHintTest, FormatsTheClosestOrNothing) {
  EXPECT_EQ(DidYouMeanHint("levle", {"level", "dest"}), " (did you mean 'level'?)");
  EXPECT_EQ(DidYouMeanHint("projct", {"project"}, "build."), " (did you mean 'build.project'?)");
  EXPECT_EQ(DidYouMeanHint("zzzzzz", {"level"}), "");
}

}  // namespace
}  // namespace runner
