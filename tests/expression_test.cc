#include "runner/expression.h"

#include <gtest/gtest.h>

#include <map>

namespace runner {
namespace {

TEST(ExpressionParseTest, SplitsLiteralsAndExpressions) {
  auto parts = ParseTemplate("s3://${{ vars.store }}/${{build.id}}/x");
  ASSERT_TRUE(parts);
  ASSERT_EQ(parts->size(), 5u);
  EXPECT_FALSE((*parts)[0].is_expression);
  EXPECT_EQ((*parts)[0].text, "s3://");
  EXPECT_EQ((*parts)[0].offset, 0u);
  EXPECT_TRUE((*parts)[1].is_expression);
  EXPECT_EQ((*parts)[1].text, "vars.store");
  EXPECT_EQ((*parts)[1].offset, 5u);
  EXPECT_EQ((*parts)[2].text, "/");
  EXPECT_EQ((*parts)[2].offset, 22u);
  EXPECT_TRUE((*parts)[3].is_expression);
  EXPECT_EQ((*parts)[3].text, "build.id");
  EXPECT_EQ((*parts)[3].offset, 23u);
  EXPECT_EQ((*parts)[4].text, "/x");
}

TEST(ExpressionParseTest, PlainTextIsOneLiteralAndEmptyTextNoPart) {
  auto parts = ParseTemplate("just text, $HOME and ${HOME} and {{ x }}");
  ASSERT_TRUE(parts);
  ASSERT_EQ(parts->size(), 1u);
  EXPECT_FALSE((*parts)[0].is_expression);
  EXPECT_TRUE(ParseTemplate("")->empty());
}

TEST(ExpressionParseTest, AcceptsStepOutputNamesWithDashes) {
  auto parts = ParseTemplate("${{ steps.build-app.outputs.ami_id }}");
  ASSERT_TRUE(parts);
  EXPECT_EQ((*parts)[0].text, "steps.build-app.outputs.ami_id");
}

TEST(ExpressionParseTest, UnclosedExpression) {
  auto parts = ParseTemplate("a ${{ build.id");
  ASSERT_FALSE(parts);
  EXPECT_EQ(parts.error().message, "unclosed '${{': add '}}' after the name");
  EXPECT_EQ(parts.error().offset, 2u);
}

TEST(ExpressionParseTest, EmptyExpression) {
  auto parts = ParseTemplate("x${{  }}");
  ASSERT_FALSE(parts);
  EXPECT_EQ(parts.error().message,
            "empty expression '${{ }}': write a name such as ${{ build.id }}");
  EXPECT_EQ(parts.error().offset, 1u);
}

TEST(ExpressionParseTest, RejectsAnythingButADottedName) {
  for (const char* text : {"${{ a || b }}", "${{ a..b }}", "${{ .a }}", "${{ a. }}", "${{ 1a }}",
                           "${{ a.b c }}", "${{ a['b'] }}"}) {
    auto parts = ParseTemplate(text);
    ASSERT_FALSE(parts) << text;
    EXPECT_EQ(parts.error().offset, 0u);
    EXPECT_TRUE(parts.error().message.starts_with("invalid expression '")) << text;
  }
  EXPECT_EQ(ParseTemplate("${{ a || b }}").error().message,
            "invalid expression 'a || b': an expression is one dotted name such as build.branch "
            "or vars.store");
}

TEST(ExpressionHasTest, FindsTheOpeningOnly) {
  EXPECT_TRUE(HasExpression("echo ${{ build.id }}"));
  EXPECT_TRUE(HasExpression("${{"));
  EXPECT_FALSE(HasExpression("echo ${HOME} $((1+2))"));
}

TEST(ExpressionBuildFieldsTest, ListsTheContractFields) {
  EXPECT_EQ(BuildFieldNames(),
            (std::vector<std::string>{"project", "branch", "commit", "short_commit", "number", "id",
                                      "event", "trigger", "workspace"}));
}

TEST(ExpressionExpandTest, ReplacesEveryExpression) {
  std::map<std::string, std::string, std::less<>> values = {{"build.id", "orders-main-7"},
                                                            {"vars.store", "s3://b"}};
  NameLookup lookup = [&](std::string_view name) -> std::optional<std::string> {
    auto it = values.find(name);
    if (it == values.end()) return std::nullopt;
    return it->second;
  };
  EXPECT_EQ(ExpandTemplate("${{ vars.store }}/${{ build.id }}/", lookup), "s3://b/orders-main-7/");
  EXPECT_EQ(ExpandTemplate("no expressions", lookup), "no expressions");
  auto unknown = ExpandTemplate("${{ build.id }} ${{ vars.nope }} ${{ vars.gone }}", lookup);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error(), "unknown name 'vars.nope' in '${{ vars.nope }}'");
  EXPECT_EQ(ExpandTemplate("${{ x", lookup).error(), "unclosed '${{': add '}}' after the name");
}

TEST(ExpressionExpandTest, ValuesAreNotExpandedAgain) {
  NameLookup lookup = [](std::string_view) -> std::optional<std::string> {
    return "${{ vars.x }}";
  };
  EXPECT_EQ(ExpandTemplate("a${{ vars.y }}b", lookup), "a${{ vars.x }}b");
}

}  // namespace
}  // namespace runner
