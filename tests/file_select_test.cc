#include "runner/file_select.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "tests/test_util.h"

namespace runner {
namespace {

class FileSelectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : {"dist/app.js", "dist/lib/util.js", "dist/lib/readme.md", "top.txt"}) {
      testing::WriteTextFile(ws_ + "/" + name, name);
    }
  }
  std::vector<std::string> Relative(const std::string& pattern) {
    auto files = SelectFiles(pattern, ws_, ws_);
    EXPECT_TRUE(files) << files.error();
    std::vector<std::string> out;
    for (const SelectedFile& file : files.value_or(std::vector<SelectedFile>{})) {
      out.push_back(file.relative);
    }
    return out;
  }
  testing::TempDir temp_;
  std::string ws_ = temp_ / "ws";
};

TEST_F(FileSelectTest, FileDirectoryAndGlob) {
  EXPECT_EQ(Relative("dist/app.js"), (std::vector<std::string>{"app.js"}));
  EXPECT_EQ(Relative("dist"), (std::vector<std::string>{"app.js", "lib/readme.md", "lib/util.js"}));
  EXPECT_EQ(Relative("dist/*.js"), (std::vector<std::string>{"app.js"}));
  EXPECT_EQ(Relative("dist/**/*.js"), (std::vector<std::string>{"app.js", "lib/util.js"}));
  EXPECT_EQ(Relative("*/lib/?ti[l].js"), (std::vector<std::string>{"dist/lib/util.js"}));
  auto files = SelectFiles("dist/**/*.js", ws_, ws_).value();
  EXPECT_EQ(files[1].source, "dist/lib/util.js");
  EXPECT_EQ(files[1].path, std::filesystem::canonical(ws_ + "/dist/lib/util.js").string());
}

TEST_F(FileSelectTest, ListIsSortedAndEachSourceOnce) {
  auto files = SelectFiles(std::vector<std::string>{"top.txt", "dist/*.js", "dist"}, ws_, ws_);
  ASSERT_TRUE(files) << files.error();
  std::vector<std::string> sources;
  for (const SelectedFile& file : *files) sources.push_back(file.source);
  EXPECT_EQ(sources, (std::vector<std::string>{"dist/app.js", "dist/lib/readme.md",
                                               "dist/lib/util.js", "top.txt"}));
}

TEST_F(FileSelectTest, ErrorsNameThePattern) {
  EXPECT_EQ(SelectFiles("nope", ws_, ws_).error(), "'nope' does not exist (in " + ws_ + ")");
  EXPECT_EQ(SelectFiles("*.zip", ws_, ws_).error(), "'*.zip' matches no file (in " + ws_ + ")");
  EXPECT_EQ(SelectFiles("top.txt/", ws_, ws_).error(), "'top.txt/' is not a directory");
}

TEST_F(FileSelectTest, ConfinedToTheWorkspace) {
  testing::WriteTextFile(temp_ / "secret", "s");
  ASSERT_EQ(::symlink((temp_ / "secret").c_str(), (ws_ + "/dist/link").c_str()), 0);
  auto files = SelectFiles("dist", ws_, ws_);
  ASSERT_FALSE(files);
  EXPECT_NE(files.error().find("outside the workspace"), std::string::npos) << files.error();
  EXPECT_FALSE(SelectFiles("../secret", ws_ + "/dist", ws_));
}

TEST_F(FileSelectTest, SymlinkLoopIsAnError) {
  ASSERT_EQ(::symlink("..", (ws_ + "/dist/lib/up").c_str()), 0);
  auto files = SelectFiles("dist", ws_, ws_);
  ASSERT_FALSE(files);
  EXPECT_NE(files.error().find("a loop"), std::string::npos) << files.error();
}

TEST_F(FileSelectTest, DirectoriesAreReportedForDirectoryPatternsOnly) {
  std::filesystem::create_directories(ws_ + "/dist/empty");
  SelectOptions options;
  options.directories = true;
  auto files = SelectFiles("dist", ws_, ws_, options);
  ASSERT_TRUE(files) << files.error();
  std::vector<std::string> directories;
  for (const SelectedFile& file : *files) {
    if (file.directory) directories.push_back(file.source);
  }
  EXPECT_EQ(directories, (std::vector<std::string>{"dist", "dist/empty", "dist/lib"}));
  EXPECT_EQ(files->front().relative, "");
  files = SelectFiles("dist/**/*.js", ws_, ws_, options);
  ASSERT_TRUE(files) << files.error();
  EXPECT_TRUE(std::none_of(files->begin(), files->end(),
                           [](const SelectedFile& file) { return file.directory; }));
}

TEST_F(FileSelectTest, ExcludeLeavesOutFilesAndWholeDirectories) {
  SelectOptions options;
  std::vector<std::string> asked;
  options.exclude = [&](const SelectedFile& file) {
    asked.push_back(file.source);
    return file.source == "dist/lib" || file.source == "top.txt";
  };
  auto files = SelectFiles("dist", ws_, ws_, options);
  ASSERT_TRUE(files) << files.error();
  ASSERT_EQ(files->size(), 1u);
  EXPECT_EQ(files->front().source, "dist/app.js");
  EXPECT_EQ(asked, (std::vector<std::string>{"dist/app.js", "dist/lib"}));

  files = SelectFiles("top.txt", ws_, ws_, options);
  ASSERT_TRUE(files) << files.error();
  EXPECT_TRUE(files->empty()) << "a named file that is excluded selects nothing";

  options.exclude = [](const SelectedFile& file) { return file.source.ends_with(".js"); };
  EXPECT_EQ(SelectFiles("dist/**/*.js", ws_, ws_, options).error(),
            "'dist/**/*.js' matches only excluded files (2 excluded)");
}

TEST_F(FileSelectTest, ErrorsBelowThePatternNameTheSourcePath) {
  testing::WriteTextFile(temp_ / "secret", "s");
  ASSERT_EQ(::symlink((temp_ / "secret").c_str(), (ws_ + "/dist/lib/link").c_str()), 0);
  auto files = SelectFiles("dist", ws_, ws_);
  ASSERT_FALSE(files);
  EXPECT_TRUE(files.error().starts_with("'dist/lib/link' resolves to ")) << files.error();
}

}  // namespace
}  // namespace runner
