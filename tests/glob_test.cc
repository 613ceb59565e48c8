#include "runner/glob.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace runner {
namespace {

TEST(GlobMatchTest, LiteralsMatchExactly) {
  EXPECT_TRUE(GlobMatch("main", "main"));
  EXPECT_FALSE(GlobMatch("main", "main2"));
  EXPECT_FALSE(GlobMatch("main", "mai"));
  EXPECT_TRUE(GlobMatch("", ""));
  EXPECT_FALSE(GlobMatch("", "a"));
}

TEST(GlobMatchTest, StarStopsAtSlash) {
  EXPECT_TRUE(GlobMatch("feature/*", "feature/login"));
  EXPECT_FALSE(GlobMatch("feature/*", "feature/login/v2"));
  EXPECT_TRUE(GlobMatch("feature/*", "feature/"));
  EXPECT_TRUE(GlobMatch("*.go", "main.go"));
  EXPECT_FALSE(GlobMatch("*.go", "cmd/main.go"));
  EXPECT_TRUE(GlobMatch("release-*-rc*", "release-1.2-rc3"));
  EXPECT_TRUE(GlobMatch("*", ""));
}

TEST(GlobMatchTest, DoubleStarCrossesSlashes) {
  EXPECT_TRUE(GlobMatch("feature/**", "feature/login/v2"));
  EXPECT_TRUE(GlobMatch("src/**.c", "src/a/b/c.c"));
  EXPECT_TRUE(GlobMatch("**", "a/b/c"));
  EXPECT_FALSE(GlobMatch("feature/**", "hotfix/x"));
}

TEST(GlobMatchTest, DoubleStarSlashAlsoMatchesNothing) {
  EXPECT_TRUE(GlobMatch("**/*.go", "main.go"));
  EXPECT_TRUE(GlobMatch("**/*.go", "cmd/app/main.go"));
  EXPECT_TRUE(GlobMatch("src/**/*.go", "src/main.go"));
  EXPECT_TRUE(GlobMatch("src/**/*.go", "src/a/b/main.go"));
  EXPECT_FALSE(GlobMatch("src/**/*.go", "srcx/main.go"));
  EXPECT_FALSE(GlobMatch("src/**/*.go", "src/main.c"));
  EXPECT_FALSE(GlobMatch("**/x", "ax"));  // `**/` consumes whole directories only
  EXPECT_TRUE(GlobMatch("**/x", "a/x"));
  EXPECT_TRUE(GlobMatch("a/**/b/**/c", "a/b/c"));
  EXPECT_TRUE(GlobMatch("a/**/b/**/c", "a/x/b/y/z/c"));
}

TEST(GlobMatchTest, QuestionMarkIsOneCharacterButNotSlash) {
  EXPECT_TRUE(GlobMatch("v?", "v1"));
  EXPECT_FALSE(GlobMatch("v?", "v"));
  EXPECT_FALSE(GlobMatch("v?", "v12"));
  EXPECT_FALSE(GlobMatch("a?b", "a/b"));
}

TEST(GlobMatchTest, CharacterClasses) {
  EXPECT_TRUE(GlobMatch("v[0-9]", "v7"));
  EXPECT_FALSE(GlobMatch("v[0-9]", "vx"));
  EXPECT_TRUE(GlobMatch("[abc]x", "bx"));
  EXPECT_FALSE(GlobMatch("[abc]x", "dx"));
  EXPECT_TRUE(GlobMatch("[!a]x", "bx"));
  EXPECT_FALSE(GlobMatch("[!a]x", "ax"));
  EXPECT_FALSE(GlobMatch("a[!x]b", "a/b"));
  EXPECT_TRUE(GlobMatch("[]]", "]"));
  EXPECT_TRUE(GlobMatch("[a-]", "-"));
  EXPECT_TRUE(GlobMatch("[", "["));  // an unclosed class is literal
  EXPECT_TRUE(GlobMatch("a[b", "a[b"));
}

TEST(GlobMatchTest, BackslashEscapes) {
  EXPECT_TRUE(GlobMatch("\\*", "*"));
  EXPECT_FALSE(GlobMatch("\\*", "x"));
  EXPECT_TRUE(GlobMatch("a\\?", "a?"));
  EXPECT_FALSE(GlobMatch("a\\?", "ab"));
  EXPECT_TRUE(GlobMatch("\\[x]", "[x]"));
}

TEST(GlobMatchTest, PathologicalPatternsAreFast) {
  std::string pattern;
  for (int i = 0; i < 50; ++i) pattern += "*a";
  pattern += "b";
  std::string text(5000, 'a');
  std::string double_star;
  for (int i = 0; i < 50; ++i) double_star += "**/a";
  double_star += "b";
  std::string path;
  for (int i = 0; i < 2000; ++i) path += "a/";

  auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(GlobMatch(pattern, text));
  EXPECT_TRUE(GlobMatch(pattern, text + "b"));
  EXPECT_FALSE(GlobMatch(double_star, path));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
}

TEST(HasGlobSyntaxTest, TellsPatternsFromPlainNames) {
  EXPECT_TRUE(HasGlobSyntax("*.yaml"));
  EXPECT_TRUE(HasGlobSyntax("scripts/**"));
  EXPECT_TRUE(HasGlobSyntax("file?.txt"));
  EXPECT_TRUE(HasGlobSyntax("[ab].txt"));
  EXPECT_FALSE(HasGlobSyntax("dist/app.zip"));
  EXPECT_FALSE(HasGlobSyntax("name with spaces+=&.txt"));
}

}  // namespace
}  // namespace runner
