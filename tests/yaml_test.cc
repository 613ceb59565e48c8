#include "runner/yaml.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "runner/pipeline_loader.h"
#include "runner/yaml_text.h"

namespace runner {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

YamlNode One(std::string_view text) {
  auto documents = ParseYamlDocuments(text, "a test file");
  EXPECT_TRUE(documents.has_value()) << (documents ? "" : documents.error().message);
  if (!documents || documents->size() != 1) throw std::runtime_error("not one document");
  return (*documents)[0];
}

YamlError Fails(std::string_view text) {
  auto documents = ParseYamlDocuments(text, "a test file");
  EXPECT_FALSE(documents.has_value());
  if (documents) throw std::runtime_error("parsed");
  return documents.error();
}

// Runs `body` in a child process, so that a hang or a crash fails the test instead of stopping
// the suite. Returns whether the child finished by itself and exited 0 within `limit` (generous:
// the point is "finishes", not how fast).
bool FinishesInAChild(const std::function<bool()>& body,
                      std::chrono::seconds limit = std::chrono::seconds(20)) {
  pid_t pid = ::fork();
  if (pid == 0) ::_exit(body() ? 0 : 1);
  auto deadline = std::chrono::steady_clock::now() + limit;
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

TEST(YamlTest, ScalarsListsAndMapsWithByteLocations) {
  YamlNode root = One("a: 1\n\xc3\xa9t\xc3\xa9: [x, 'y']\nc:\n  - |\n    text\n");
  ASSERT_TRUE(root.IsMap());
  ASSERT_EQ(root.fields.size(), 3u);
  EXPECT_EQ(root.fields[0].first.value, "a");
  EXPECT_EQ(root.fields[0].second.value, "1");
  EXPECT_TRUE(root.fields[0].second.plain);
  const YamlNode& list = root.fields[1].second;
  ASSERT_TRUE(list.IsList());
  // Columns count bytes: "été" is five.
  EXPECT_EQ(list.where.line, 2);
  EXPECT_EQ(list.where.column, 8);
  EXPECT_EQ(list.items[1].value, "y");
  EXPECT_FALSE(list.items[1].plain);
  EXPECT_EQ(list.items[1].where.column, 12);
  EXPECT_EQ(list.items[1].offset, 16u);
  EXPECT_EQ(root.Find("c")->items[0].value, "text\n");
  EXPECT_EQ(root.Find("nope"), nullptr);
}

TEST(YamlTest, NullsAndEmptyValues) {
  YamlNode root = One("a:\nb: ~\nc: null\nd: ''\ne: !!str null\n");
  EXPECT_TRUE(root.Find("a")->IsNull());
  EXPECT_TRUE(root.Find("a")->empty);
  EXPECT_TRUE(root.Find("b")->IsNull());
  EXPECT_FALSE(root.Find("b")->empty);
  EXPECT_TRUE(root.Find("c")->IsNull());
  EXPECT_TRUE(root.Find("d")->IsScalar());
  EXPECT_TRUE(root.Find("e")->IsScalar());
}

TEST(YamlTest, ShortFormTagsAndATaggedPlainScalarOnTwoLines) {
  // A CloudFormation template: yaml-cpp 0.7 rejected the wrapped `!Sub` ("end of map not found").
  YamlNode root =
      One("Description:\n  !Sub ${AWS::StackName} app\n  continued\nId: !Ref AmiId\nList: !Split "
          "[',', x]\n");
  EXPECT_EQ(root.Find("Description")->tag, "!Sub");
  EXPECT_EQ(root.Find("Description")->value, "${AWS::StackName} app continued");
  EXPECT_EQ(root.Find("Description")->where.line, 2);
  EXPECT_EQ(root.Find("Id")->tag, "!Ref");
  EXPECT_EQ(root.Find("List")->tag, "!Split");
  EXPECT_TRUE(root.Find("List")->IsList());
}

TEST(YamlTest, AnAliasIsItsAnchorsNodeLocatedAtTheAlias) {
  YamlNode root = One("a: &x {k: v}\nb: *x\n");
  const YamlNode& b = *root.Find("b");
  ASSERT_TRUE(b.IsMap());
  EXPECT_EQ(b.Find("k")->value, "v");
  EXPECT_EQ(b.where.line, 2);
  EXPECT_EQ(b.where.column, 4);
  ASSERT_TRUE(b.anchor_where.has_value());
  EXPECT_EQ(b.anchor_where->line, 1);
  EXPECT_EQ(b.anchor_where->column, 4);
  YamlError unknown = Fails("a: *nope\n");
  EXPECT_EQ(unknown.message, "unknown alias '*nope': no anchor '&nope' before it");
  EXPECT_EQ(unknown.where.column, 4);
}

TEST(YamlTest, DocumentsAndEmptyText) {
  EXPECT_TRUE(ParseYamlDocuments("", "f")->empty());
  EXPECT_TRUE(ParseYamlDocuments("# only a comment\n", "f")->empty());
  auto two = ParseYamlDocuments("a: 1\n---\nb: 2\n", "f");
  ASSERT_EQ(two->size(), 2u);
  EXPECT_EQ((*two)[1].where.line, 3);
  // Anchors belong to their document.
  EXPECT_EQ(Fails("a: &x 1\n---\nb: *x\n").message, "unknown alias '*x': no anchor '&x' before it");
}

TEST(YamlTest, ProblemsAreSaidInTheUsersTerms) {
  EXPECT_EQ(Fails("a: \"abc\n").message, "unclosed quote: this string has no closing \"");
  EXPECT_EQ(Fails("a: b\n c: d\n").message,
            "invalid YAML: unexpected ':': check the indentation, or quote a value that contains "
            "': '");
  YamlError tag = Fails("!,");
  EXPECT_THAT(tag.message, StartsWith("invalid YAML: "));
  EXPECT_EQ(tag.where.line, 1);
  EXPECT_EQ(Fails("a: \"x\\0y\"\n").message,
            "NUL character in a value (an escape such as \"\\0\"): a test file must not hold NUL");
  EXPECT_EQ(Fails(std::string("a: x\0y\n", 7)).message,
            "NUL byte in the file: a test file must be UTF-8 text");
  EXPECT_THAT(Fails("a: caf\xe9\n").message, HasSubstr("invalid UTF-8 (byte 0xe9)"));
}

TEST(YamlTest, LimitsOnDepthAndNodes) {
  YamlError deep = Fails(std::string(100000, '['));
  EXPECT_EQ(deep.message, "nesting deeper than 64 levels of lists and mappings");
  EXPECT_EQ(deep.where.column, 65);
  std::string laughs = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 10; ++i) {
    std::string alias = "*a" + std::to_string(i - 1);
    laughs += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int k = 0; k < 10; ++k) laughs += (k ? ", " : "") + alias;
    laughs += "]\n";
  }
  YamlError bomb = Fails(laughs);
  EXPECT_THAT(bomb.message, HasSubstr("an alias repeats every value of its anchor"));
  auto small = ParseYamlDocuments("a: &a [x, x]\nb: [*a, *a]\n", "f", {.max_nodes = 13});
  EXPECT_TRUE(small.has_value());
  EXPECT_FALSE(ParseYamlDocuments("a: &a [x, x]\nb: [*a, *a, *a]\n", "f", {.max_nodes = 13}));
}

// Tiny files that made yaml-cpp 0.7 loop for ever or allocate gigabytes, and other hostile
// inputs: each is an error of every reader, in a child that must finish.
TEST(YamlTest, HostileInputsAreErrorsThatFinish) {
  std::string laughs = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 12; ++i) {
    laughs += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int k = 0; k < 10; ++k) laughs += (k ? ", *a" : "*a") + std::to_string(i - 1);
    laughs += "]\n";
  }
  std::string deep_block;
  for (int i = 0; i < 100000; ++i) deep_block += "- ";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"tag then comma", "!,"},
      {"anchor then comma", "&a ,"},
      {"quote then comma", "\"x\" ,\n"},
      {"flow then comma", "[a],\n"},
      {"tag, flow, comma", "!t [a] ,\n"},
      {"tagged comma value", "version: 1\nsteps: !t ,\n"},
      {"alias then comma", "a: &x 1\nb: *x ,\n"},
      {"anchors and commas", "- &a ,\n- !b ,&c\n- '\n,*a ,!x ,\"y\" ,\n"},
      {"billion laughs", laughs},
      {"deep flow", "a: " + std::string(100000, '[')},
      {"deep balanced", std::string(100000, '[') + std::string(100000, ']')},
      {"deep block", deep_block + "x\n"},
      {"unclosed double quote", "a: \"abc\n"},
      {"unclosed single quote", "a: 'abc\n"},
      {"NUL", std::string("a: b\0c\n", 7)},
      {"NUL escape", "a: \"b\\0c\"\n"},
  };
  for (const auto& [name, text] : cases) {
    EXPECT_TRUE(FinishesInAChild([&] { return !ParseYamlDocuments(text, "f").has_value(); }))
        << name;
    EXPECT_TRUE(FinishesInAChild([&] { return !LoadYaml(text, "f").has_value(); })) << name;
    EXPECT_TRUE(FinishesInAChild([&] {
      Diagnostics diags("pipeline.yml", text);
      return !ParsePipeline("pipeline.yml", text, {}, diags) && diags.HasErrors() &&
             !diags.Format().empty();
    })) << name;
  }
}

TEST(YamlTest, LoadYamlChecksTheTextThenReadsEveryDocument) {
  auto loaded = LoadYaml("a: !Ref B\n---\nc: d\n", "t.yaml");
  ASSERT_TRUE(loaded.has_value());
  ASSERT_EQ(loaded->size(), 2u);
  EXPECT_EQ(loaded->front().Find("a")->value, "B");
  EXPECT_EQ(loaded->front().Find("a")->tag, "!Ref");
  EXPECT_EQ(loaded->front().Find("a")->where.line, 1);
  // The text check's message, where the bracket opens; libyaml's would be at the end.
  auto unclosed = LoadYaml("a: [x\nb: c\n", "t.yaml");
  ASSERT_FALSE(unclosed.has_value());
  EXPECT_EQ(unclosed.error().message, "unclosed '[': no matching ']'");
  EXPECT_EQ(unclosed.error().where.line, 1);
  EXPECT_EQ(unclosed.error().where.column, 4);
  auto bad = LoadYaml("!,", "t.yaml");
  ASSERT_FALSE(bad.has_value());
  EXPECT_THAT(bad.error().message, StartsWith("invalid YAML: "));
}

// The CodeDeploy agent keeps the last of two equal keys; its check reports both, so the tree
// keeps every field, repeated keys included, in file order.
TEST(YamlTest, RepeatedKeysAreKeptInFileOrder) {
  YamlNode root = One("os: linux\nversion: 0.0\nos: windows\n");
  ASSERT_EQ(root.fields.size(), 3u);
  EXPECT_EQ(root.fields[0].first.value, "os");
  EXPECT_EQ(root.fields[0].second.value, "linux");
  EXPECT_EQ(root.fields[2].first.value, "os");
  EXPECT_EQ(root.fields[2].first.where.line, 3);
  EXPECT_EQ(root.fields[2].second.value, "windows");
  EXPECT_EQ(root.Find("os")->value, "linux");
}

}  // namespace
}  // namespace runner
