#include "runner/progress.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/test_util.h"

namespace runner {
namespace {

using ::testing::Optional;
using testing::ReadTextFile;
using testing::TempDir;

TEST(ProgressTest, RecordsRoundTrip) {
  for (const Progress& progress : {Progress{"sent", 5, 10}, Progress{"baking", 0, 0},
                                   Progress{"two words", 1ull << 40, 1ull << 41}}) {
    EXPECT_THAT(DecodeProgress(EncodeProgress(progress)), Optional(progress));
  }
}

TEST(ProgressTest, AnythingElseIsNoRecord) {
  for (std::string_view text : {"", "5 10 sent", "x 10 sent\n", "5 sent\n", "5 10 a\nb\n",
                                "-1 10 sent\n", "99999999999999999999999 1 sent\n"}) {
    EXPECT_EQ(DecodeProgress(text), std::nullopt) << text;
  }
}

TEST(ProgressTest, DescribesBytesAndRateOrTheWorkAlone) {
  Progress upload{"sent", 512 * 1024 * 1024, 1024 * 1024 * 1024};
  EXPECT_EQ(DescribeProgress(upload, std::chrono::seconds(4)),
            "512.0 MiB of 1.00 GiB sent, 128.0 MiB/s");
  EXPECT_EQ(DescribeProgress(upload, std::nullopt), "512.0 MiB of 1.00 GiB sent");
  EXPECT_EQ(DescribeProgress(Progress{"sent", 0, 100}, std::chrono::seconds(0)),
            "0 B of 100 B sent");
  EXPECT_EQ(DescribeProgress(Progress{"baking", 0, 0}, std::chrono::seconds(9)), "baking");
}

TEST(ProgressTest, WriterKeepsTheLatestRecordWholeAndAlwaysTheFinalOne) {
  TempDir dir;
  std::string path = dir / "step.progress";
  ProgressWriter writer(path, std::chrono::hours(1));
  writer.Update(Progress{"sent", 0, 300});
  EXPECT_THAT(DecodeProgress(ReadTextFile(path)), Optional(Progress{"sent", 0, 300}));
  // Within the interval: not written, until the bytes reach the total.
  writer.Update(Progress{"sent", 100, 300});
  EXPECT_THAT(DecodeProgress(ReadTextFile(path)), Optional(Progress{"sent", 0, 300}));
  writer.Update(Progress{"sent", 300, 300});
  EXPECT_THAT(DecodeProgress(ReadTextFile(path)), Optional(Progress{"sent", 300, 300}));
}

TEST(ProgressTest, WriterWithoutAPathDoesNothing) {
  ProgressWriter writer("");
  writer.Update(Progress{"sent", 1, 2});  // no crash, no file
}

}  // namespace
}  // namespace runner
