#include "runner/cache/file_digests.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "runner/sha256.h"
#include "tests/test_util.h"

namespace runner {
namespace {

using testing::ReadTextFile;
using testing::TempDir;
using testing::WriteTextFile;

// Sets the file's mtime an hour back: older than the racy window, as a checked-out tree is.
void MakeOld(const std::string& path) {
  timespec times[2];
  ::clock_gettime(CLOCK_REALTIME, &times[0]);
  times[0].tv_sec -= 3600;
  times[1] = times[0];
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
}

class FileDigestsTest : public ::testing::Test {
 protected:
  std::string StatData() const { return dir_ / "cache/stat-data"; }
  // A first build that reads `file` and saves the stat data.
  void FirstBuild(const std::string& file) {
    FileDigests digests(StatData());
    ASSERT_TRUE(digests.Digest(file).has_value());
    ASSERT_TRUE(digests.Save().has_value());
  }

  TempDir dir_;
};

TEST_F(FileDigestsTest, AnUnchangedFileIsNotReadAgain) {
  std::string file = dir_ / "src/a.c";
  WriteTextFile(file, "int main() {}\n");
  ::chmod(file.c_str(), 0755);
  MakeOld(file);
  FirstBuild(file);

  FileDigests digests(StatData());
  auto digest = digests.Digest(file);
  ASSERT_TRUE(digest.has_value()) << digest.error();
  EXPECT_EQ(digests.files_read(), 0u);
  EXPECT_EQ(digest->sha256, Sha256Hex("int main() {}\n"));
  EXPECT_EQ(digest->mode, 0755u);
  EXPECT_EQ(digest->size, 14u);
}

TEST_F(FileDigestsTest, NewContentUnderTheOldMtimeAndSizeIsReadAgain) {
  std::string file = dir_ / "a.txt";
  WriteTextFile(file, "one\n");
  MakeOld(file);
  struct stat before {};
  ::stat(file.c_str(), &before);
  FirstBuild(file);
  // Same size, mtime put back: only the ctime (and the racy rule) can tell.
  WriteTextFile(file, "two\n");
  timespec times[2] = {before.st_atim, before.st_mtim};
  ::utimensat(AT_FDCWD, file.c_str(), times, 0);

  FileDigests digests(StatData());
  auto digest = digests.Digest(file);
  ASSERT_TRUE(digest.has_value());
  EXPECT_EQ(digests.files_read(), 1u);
  EXPECT_EQ(digest->sha256, Sha256Hex("two\n"));
}

TEST_F(FileDigestsTest, AModeChangeIsSeen) {
  std::string file = dir_ / "run.sh";
  WriteTextFile(file, "echo\n");
  MakeOld(file);
  FirstBuild(file);
  ::chmod(file.c_str(), 0755);

  FileDigests digests(StatData());
  auto digest = digests.Digest(file);
  ASSERT_TRUE(digest.has_value());
  EXPECT_EQ(digest->mode, 0755u);
}

TEST_F(FileDigestsTest, AFileModifiedJustBeforeItWasReadIsReadAgain) {
  // Written now: a write in the same timestamp tick as the read could hide under the same
  // stat data (racy Git), so the remembered digest is not trusted.
  std::string file = dir_ / "fresh.txt";
  WriteTextFile(file, "fresh\n");
  FirstBuild(file);

  FileDigests digests(StatData());
  ASSERT_TRUE(digests.Digest(file).has_value());
  EXPECT_EQ(digests.files_read(), 1u);
}

TEST_F(FileDigestsTest, MalformedStatDataStartsEmpty) {
  std::string file = dir_ / "a.txt";
  WriteTextFile(file, "a\n");
  MakeOld(file);
  WriteTextFile(StatData(), "runner-stat-data 1\n1 2 3 garbage\n" + std::string(300, 'x'));
  FileDigests digests(StatData());
  auto digest = digests.Digest(file);
  ASSERT_TRUE(digest.has_value());
  EXPECT_EQ(digest->sha256, Sha256Hex("a\n"));
  EXPECT_EQ(digests.files_read(), 1u);
  ASSERT_TRUE(digests.Save().has_value());
  EXPECT_NE(ReadTextFile(StatData()).find(file), std::string::npos);
}

TEST_F(FileDigestsTest, AMissingFileIsAnErrorNamingIt) {
  FileDigests digests(StatData());
  auto digest = digests.Digest(dir_ / "gone.txt");
  ASSERT_FALSE(digest.has_value());
  EXPECT_NE(digest.error().find("gone.txt"), std::string::npos);
}

}  // namespace
}  // namespace runner
