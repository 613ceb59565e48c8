#include "runner/workspace_path.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "tests/test_util.h"

namespace runner {
namespace {

class WorkspacePathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    real_ = std::filesystem::canonical(temp_.path()).string();
    std::filesystem::create_directories(ws_ + "/src");
    testing::WriteTextFile(ws_ + "/src/a.txt", "a");
    testing::WriteTextFile(real_ + "/secret", "s");
  }
  testing::TempDir temp_;
  std::string real_;
  std::string ws_ = temp_ / "ws";
};

TEST_F(WorkspacePathTest, ResolvesExistingAndMissingPaths) {
  EXPECT_EQ(ResolveInWorkspace("src/a.txt", ws_, ws_).value(), real_ + "/ws/src/a.txt");
  EXPECT_EQ(ResolveInWorkspace("src/new/../b.txt", ws_, ws_).value(), real_ + "/ws/src/b.txt");
  EXPECT_EQ(ResolveInWorkspace(".", ws_ + "/src", ws_).value(), real_ + "/ws/src");
}

TEST_F(WorkspacePathTest, FollowsSymlinksBeforeJudging) {
  ASSERT_EQ(::symlink((real_ + "/secret").c_str(), (ws_ + "/link").c_str()), 0);
  ASSERT_EQ(::symlink(real_.c_str(), (ws_ + "/up").c_str()), 0);
  auto file = ResolveInWorkspace("link", ws_, ws_);
  ASSERT_FALSE(file);
  EXPECT_EQ(file.error(),
            "'link' resolves to " + real_ + "/secret, outside the workspace " + real_ + "/ws");
  EXPECT_FALSE(ResolveInWorkspace("up/new.txt", ws_, ws_));
  EXPECT_FALSE(ResolveInWorkspace("../secret", ws_, ws_));
}

TEST_F(WorkspacePathTest, DanglingLinkIsAnError) {
  ASSERT_EQ(::symlink("nowhere", (ws_ + "/dangling").c_str()), 0);
  auto result = ResolveInWorkspace("dangling/x", ws_, ws_);
  ASSERT_FALSE(result);
  EXPECT_NE(result.error().find("'dangling/x'"), std::string::npos) << result.error();
}

TEST(WorkspaceRelativeTest, InsideRelativeElseAbsolute) {
  EXPECT_EQ(WorkspaceRelative("/ws/a/../b.zip", "/ws"), "b.zip");
  EXPECT_EQ(WorkspaceRelative("/ws", "/ws/"), ".");
  EXPECT_EQ(WorkspaceRelative("/other/b.zip", "/ws"), "/other/b.zip");
  EXPECT_TRUE(IsWithin("/ws/a", "/ws"));
  EXPECT_FALSE(IsWithin("/wsx", "/ws"));
  EXPECT_TRUE(IsWithin("/anything", "/"));
}

}  // namespace
}  // namespace runner
