#include "runner/atomic_file.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "tests/test_util.h"

namespace runner {
namespace {

size_t CountEntries(const std::string& dir) {
  size_t count = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir)) ++count;
  return count;
}

TEST(AtomicFileTest, WritesWholeFileAndCreatesParents) {
  testing::TempDir dir;
  ASSERT_TRUE(WriteFileAtomic(dir / "a/b/report.json", "{}\n"));
  EXPECT_EQ(testing::ReadTextFile(dir / "a/b/report.json"), "{}\n");
  EXPECT_EQ(CountEntries(dir / "a/b"), 1u);
}

TEST(AtomicFileTest, UncommittedWriterLeavesNothing) {
  testing::TempDir dir;
  {
    AtomicFileWriter writer;
    ASSERT_TRUE(writer.Open(dir / "log.txt"));
    writer.Append("half");
  }
  EXPECT_EQ(CountEntries(dir.path()), 0u);
}

TEST(AtomicFileTest, ReplacesExistingFileOnlyOnCommit) {
  testing::TempDir dir;
  testing::WriteTextFile(dir / "params.json", "old");
  AtomicFileWriter writer;
  ASSERT_TRUE(writer.Open(dir / "params.json"));
  writer.Append("new");
  EXPECT_EQ(testing::ReadTextFile(dir / "params.json"), "old");
  ASSERT_TRUE(writer.Commit());
  EXPECT_EQ(testing::ReadTextFile(dir / "params.json"), "new");
  EXPECT_EQ(CountEntries(dir.path()), 1u);
}

TEST(AtomicFileTest, ErrorsNameThePath) {
  testing::TempDir dir;
  testing::WriteTextFile(dir / "file", "x");
  auto status = WriteFileAtomic(dir / "file/child", "x");
  ASSERT_FALSE(status);
  EXPECT_NE(status.error().find(dir / "file"), std::string::npos) << status.error();
  auto missing = ReadFile(dir / "missing");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error(), "cannot read " + (dir / "missing") + ": No such file or directory");
}

}  // namespace
}  // namespace runner
