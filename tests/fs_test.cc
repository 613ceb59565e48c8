#include "runner/fs.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>

#include "tests/test_util.h"

namespace runner {
namespace {

TEST(FsTest, ErrnoTextNamesTheError) { EXPECT_EQ(ErrnoText(ENOENT), "No such file or directory"); }

TEST(FsTest, WriteAllWritesEverythingAndReadFileReadsItBack) {
  testing::TempDir dir;
  std::string data(200000, 'x');
  {
    UniqueFd fd(::open((dir / "f").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    ASSERT_TRUE(fd.valid());
    ASSERT_TRUE(WriteAll(fd.get(), data));
  }
  EXPECT_EQ(ReadFile(dir / "f").value(), data);
}

TEST(FsTest, WriteAllReportsTheErrno) {
  UniqueFd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  auto status = WriteAll(fd.get(), "x");
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error(), "Bad file descriptor");
}

TEST(FsTest, UniqueFdClosesAndMoves) {
  int raw = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  {
    UniqueFd a(raw);
    UniqueFd b(std::move(a));
    EXPECT_FALSE(a.valid());
    EXPECT_EQ(b.get(), raw);
  }
  EXPECT_EQ(::fcntl(raw, F_GETFD), -1);
}

}  // namespace
}  // namespace runner
