#include "runner/step_outputs.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace runner {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

TEST(StepOutputsTest, ParsesNameValueLines) {
  auto outputs = ParseStepOutputs("ami_id=ami-123\nempty=\nurl=http://x/?a=b\n");
  ASSERT_TRUE(outputs) << outputs.error();
  EXPECT_THAT(*outputs, ElementsAre(Pair("ami_id", "ami-123"), Pair("empty", ""),
                                    Pair("url", "http://x/?a=b")));
}

TEST(StepOutputsTest, ParsesHeredocBlocks) {
  auto outputs = ParseStepOutputs("notes<<EOF\nline 1\n\nline=3\nEOF\nafter=1\n");
  ASSERT_TRUE(outputs) << outputs.error();
  EXPECT_THAT(*outputs, ElementsAre(Pair("notes", "line 1\n\nline=3"), Pair("after", "1")));
}

TEST(StepOutputsTest, LaterValueReplacesEarlierInPlace) {
  auto outputs = ParseStepOutputs("a=1\nb=2\na=3\n");
  ASSERT_TRUE(outputs);
  EXPECT_THAT(*outputs, ElementsAre(Pair("a", "3"), Pair("b", "2")));
}

TEST(StepOutputsTest, CrlfLineEndingsAreAccepted) {
  auto outputs = ParseStepOutputs("a=1\r\nb<<X\r\nv\r\nX\r\n");
  ASSERT_TRUE(outputs);
  EXPECT_THAT(*outputs, ElementsAre(Pair("a", "1"), Pair("b", "v")));
}

// Found by tests/fuzz/step_outputs_fuzz.cc: `runner __step` writes a value as an LF block, and
// a CR at the end of one of its lines was taken for a CRLF line ending and dropped.
TEST(StepOutputsTest, CrInsideAnLfBlockIsPartOfTheValue) {
  auto outputs = ParseStepOutputs("v<<EOF\nend\r\nmid\rdle\r\nEOF\n");
  ASSERT_TRUE(outputs) << outputs.error();
  EXPECT_THAT(*outputs, ElementsAre(Pair("v", "end\r\nmid\rdle\r")));
}

TEST(StepOutputsTest, ErrorsNameTheLine) {
  EXPECT_EQ(ParseStepOutputs("a=1\nnot an output\n").error(),
            "RUNNER_OUTPUT line 2: expected NAME=VALUE or NAME<<DELIMITER, got 'not an output'");
  EXPECT_EQ(ParseStepOutputs("bad name=1\n").error(),
            "RUNNER_OUTPUT line 1: bad output name 'bad name'");
  EXPECT_EQ(ParseStepOutputs("x<<EOF\nnever closed\n").error(),
            "RUNNER_OUTPUT line 1: no closing 'EOF' for output 'x'");
  EXPECT_EQ(ParseStepOutputs("x<<\n").error(), "RUNNER_OUTPUT line 1: 'x<<' needs a delimiter");
}

}  // namespace
}  // namespace runner
