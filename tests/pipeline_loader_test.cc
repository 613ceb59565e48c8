#include "runner/pipeline_loader.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <string>

#include "steps/kinds.h"
#include "tests/test_kinds.h"

namespace runner {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;
using ::testing::HasSubstr;
using ::testing::Not;

// The formatted diagnostics of a file that must not load.
std::string Errors(const std::string& source,
                   const LoadOptions& options = testing::ShellOnlyLoadOptions()) {
  Diagnostics diags("pipeline.yml", source);
  std::optional<Pipeline> pipeline = ParsePipeline("pipeline.yml", source, options, diags);
  EXPECT_FALSE(pipeline.has_value());
  EXPECT_TRUE(diags.HasErrors());
  return diags.Format();
}

// The pipeline of a file that must load without a diagnostic.
Pipeline Load(const std::string& source,
              const LoadOptions& options = testing::ShellOnlyLoadOptions()) {
  Diagnostics diags("pipeline.yml", source);
  std::optional<Pipeline> pipeline = ParsePipeline("pipeline.yml", source, options, diags);
  EXPECT_EQ(diags.Format(), "");
  // Thrown so that the test stops (GoogleTest reports it) instead of indexing an empty model.
  if (!pipeline) throw std::runtime_error("the pipeline did not load");
  return *pipeline;
}

// The pipeline of a file that loads with exactly the warnings `warnings` (formatted).
Pipeline LoadWithWarnings(const std::string& source, const LoadOptions& options,
                          const std::string& warnings) {
  Diagnostics diags("pipeline.yml", source);
  std::optional<Pipeline> pipeline = ParsePipeline("pipeline.yml", source, options, diags);
  EXPECT_FALSE(diags.HasErrors());
  EXPECT_EQ(diags.Format(), warnings);
  if (!pipeline) throw std::runtime_error("the pipeline did not load");
  return *pipeline;
}

// A valid file with `steps` as given.
std::string WithSteps(const std::string& steps) { return "version: 1\nsteps:\n" + steps; }

// ---- a valid file

TEST(PipelineLoaderTest, LoadsTheWholeModel) {
  Pipeline p = Load(R"(version: 1
project: orders
env: {GOFLAGS: -trimpath, LEVEL: 3, DEBUG: true}
secrets: [DB_PASSWORD, API_TOKEN]
vars: {store: "file://.runner/store", region: eu-west-1}
timeout: 45m
steps:
  - id: compile
    run: go build ./...
  - id: test
    name: "unit tests on ${{ build.branch }}"
    needs: [compile]
    when:
      branch: [main, "release/*"]
      event: push
      changed: ["**/*.go"]
    env:
      STORE: "${{ vars.store }}/${{ build.id }}"
      FLAGS: ${{ env.GOFLAGS }}
    dir: services/orders
    timeout: 1h30m
    retry: {limit: 2, delay: 10s}
    kill_grace: 30s
    run: |
      go test ./...
      echo "$STORE"
  - id: publish
    retry: 3
    env: {AMI: "${{ steps.test.outputs.ami_id }}", RESULT: "${{ steps.compile.status }}"}
    run: ./publish.sh
)");
  EXPECT_EQ(p.path, "pipeline.yml");
  EXPECT_EQ(p.version, 1);
  EXPECT_EQ(p.project, "orders");
  ASSERT_EQ(p.env.size(), 3u);
  EXPECT_EQ(p.env[0].name, "GOFLAGS");
  EXPECT_EQ(p.env[0].value.text, "-trimpath");
  EXPECT_EQ(p.env[1].value.text, "3");     // numbers as written
  EXPECT_EQ(p.env[2].value.text, "true");  // booleans as written
  EXPECT_EQ(p.env[0].value.where.line, 3);
  EXPECT_EQ(p.env[0].value.where.column, 16);
  EXPECT_EQ(p.secrets, (std::vector<std::string>{"DB_PASSWORD", "API_TOKEN"}));
  ASSERT_EQ(p.vars.size(), 2u);
  EXPECT_EQ(p.vars[0].name, "store");
  EXPECT_EQ(p.vars[0].value.text, "file://.runner/store");
  EXPECT_EQ(p.timeout, Duration(minutes(45)));
  ASSERT_EQ(p.steps.size(), 3u);

  const Step& compile = p.steps[0];
  EXPECT_EQ(compile.id, "compile");
  EXPECT_EQ(compile.name, "compile");  // defaults to the id
  EXPECT_EQ(compile.where.line, 8);
  EXPECT_EQ(compile.where.column, 5);
  EXPECT_TRUE(compile.needs.empty());
  EXPECT_EQ(compile.kind_name(), "run");
  EXPECT_EQ(compile.config.scalar.text, "go build ./...");
  EXPECT_EQ(compile.retry.limit, 0);
  EXPECT_FALSE(compile.timeout);
  EXPECT_FALSE(compile.when);

  const Step& test = p.steps[1];
  EXPECT_EQ(test.name, "unit tests on ${{ build.branch }}");  // expanded later, at run time
  EXPECT_EQ(test.needs, (std::vector<std::string>{"compile"}));
  ASSERT_TRUE(test.when);
  EXPECT_EQ(test.when->branches, (std::vector<std::string>{"main", "release/*"}));
  EXPECT_EQ(test.when->events, (std::vector<std::string>{"push"}));
  EXPECT_EQ(test.when->changed, (std::vector<std::string>{"**/*.go"}));
  ASSERT_EQ(test.env.size(), 2u);
  EXPECT_EQ(test.env[0].value.text, "${{ vars.store }}/${{ build.id }}");
  ASSERT_TRUE(test.dir);
  EXPECT_EQ(test.dir->text, "services/orders");
  EXPECT_EQ(test.timeout, Duration(minutes(90)));
  EXPECT_EQ(test.retry.limit, 2);
  EXPECT_EQ(test.retry.delay, Duration(seconds(10)));
  EXPECT_EQ(test.kill_grace, Duration(seconds(30)));
  EXPECT_EQ(test.config.scalar.text, "go test ./...\necho \"$STORE\"\n");

  const Step& publish = p.steps[2];
  EXPECT_EQ(publish.needs, (std::vector<std::string>{"test"}));  // absent: the previous step
  EXPECT_EQ(publish.retry.limit, 3);
  EXPECT_EQ(publish.retry.delay, Duration(0));
}

TEST(PipelineLoaderTest, EmptyNeedsMeansNoDependency) {
  Pipeline p = Load(WithSteps("  - id: a\n    run: x\n  - id: b\n    needs: []\n    run: y\n"));
  EXPECT_TRUE(p.steps[1].needs.empty());
}

TEST(PipelineLoaderTest, NeedsMayNameALaterStep) {
  Pipeline p = Load(
      WithSteps("  - id: a\n    needs: [b]\n    run: x\n  - id: b\n    needs: []\n    run: y\n"));
  EXPECT_EQ(p.steps[0].needs, (std::vector<std::string>{"b"}));
}

TEST(PipelineLoaderTest, CommentsAnchorsAndFlowStyleAreFine) {
  Pipeline p = Load(R"(# the orders pipeline
version: 1   # always 1
env: &common {A: "1"}
steps: [{id: a, run: "echo [x] {y} 'z'", env: *common}, {id: b, run: 'it''s # not a comment'}]
)");
  ASSERT_EQ(p.steps.size(), 2u);
  EXPECT_EQ(p.steps[1].config.scalar.text, "it's # not a comment");
  EXPECT_EQ(p.steps[0].env[0].name, "A");
}

// ---- var overrides

TEST(PipelineLoaderTest, VarOverridesReplaceAndAddInOrder) {
  LoadOptions options = testing::ShellOnlyLoadOptions();
  options.var_overrides = {{"store", "s3://b"}, {"extra", "1"}, {"extra", "2"}};
  Pipeline p = LoadWithWarnings(
      WithSteps("  - id: a\n    env: {X: \"${{ vars.extra }}\"}\n    run: x\n")
          .insert(0, "vars: {store: file://s, keep: k}\n"),
      options,
      "pipeline.yml: warning: --var extra: the pipeline declares no such var; it is set "
      "anyway\n");
  ASSERT_EQ(p.vars.size(), 3u);
  EXPECT_EQ(p.vars[0].name, "store");
  EXPECT_EQ(p.vars[0].value.text, "s3://b");
  EXPECT_EQ(p.vars[1].value.text, "k");
  EXPECT_EQ(p.vars[2].name, "extra");
  EXPECT_EQ(p.vars[2].value.text, "2");
  EXPECT_EQ(p.vars[2].value.where.line, 0);  // not from the file
}

TEST(PipelineLoaderTest, BadVarOverrideNameIsAnError) {
  LoadOptions options = testing::ShellOnlyLoadOptions();
  options.var_overrides = {{"bad name", "1"}};
  EXPECT_EQ(Errors(WithSteps("  - id: a\n    run: x\n"), options),
            "pipeline.yml: error: invalid --var name 'bad name': use letters, digits, '_' and "
            "'-', starting with a letter or '_'\n");
}

// SPEC section 2: a --var value is a literal, never an expression (so a value from a job's
// parameters cannot read the runner's secrets).
TEST(PipelineLoaderTest, VarOverrideValueIsALiteral) {
  LoadOptions options = testing::ShellOnlyLoadOptions();
  for (std::string value : {"${{ build.brnch }}", "${{ env.AWS_SECRET_ACCESS_KEY }}", "${{"}) {
    options.var_overrides = {{"store", value}};
    Pipeline p =
        Load(WithSteps("  - id: a\n    run: x\n").insert(0, "vars: {store: x}\n"), options);
    ASSERT_EQ(p.vars.size(), 1u);
    EXPECT_EQ(p.vars[0].value.text, value);
    EXPECT_TRUE(p.vars[0].literal);
  }
}

TEST(PipelineLoaderTest, UndeclaredVarOverrideIsAWarningWithASuggestion) {
  LoadOptions options = testing::ShellOnlyLoadOptions();
  options.var_overrides = {{"stor", "y"}};
  Pipeline p = LoadWithWarnings(
      WithSteps("  - id: a\n    run: x\n").insert(0, "vars: {store: x}\n"), options,
      "pipeline.yml: warning: --var stor: the pipeline declares no such var (did you mean "
      "'store'?); it is set anyway\n");
  EXPECT_EQ(p.vars.size(), 2u);
}

// ---- YAML syntax

TEST(PipelineLoaderTest, EmptyFile) {
  const std::string kMessage =
      "pipeline.yml: error: the pipeline file is empty; it needs at least `version: 1` and "
      "`steps:`\n";
  EXPECT_EQ(Errors(""), kMessage);
  EXPECT_EQ(Errors("# only a comment\n\n   # another\n"), kMessage);
  EXPECT_EQ(Errors("---\n"), kMessage);
}

TEST(PipelineLoaderTest, TopLevelMustBeAMapping) {
  EXPECT_EQ(Errors("- id: a\n  run: x\n"),
            "pipeline.yml:1:1: error: the top level of a pipeline file must be a mapping with "
            "`version: 1` and `steps:`, got a list\n"
            "- id: a\n"
            "^\n");
  EXPECT_THAT(Errors("just text\n"), HasSubstr("pipeline.yml:1:1: error: the top level of a "
                                               "pipeline file must be a mapping with `version: "
                                               "1` and `steps:`, got a string\n"));
}

TEST(PipelineLoaderTest, TabIndentation) {
  EXPECT_EQ(Errors("version: 1\nsteps:\n\t- id: a\n"),
            "pipeline.yml:3:1: error: tab used for indentation: YAML indents with spaces only\n"
            "\t- id: a\n"
            "^\n");
  EXPECT_THAT(Errors("version: 1\nsteps:\n  - id: a\n  \trun: x\n"),
              HasSubstr("pipeline.yml:4:3: error: tab used for indentation"));
}

TEST(PipelineLoaderTest, TabsInsideBlockScalarsAndQuotesAreFine) {
  Pipeline p =
      Load(WithSteps("  - id: a\n    run: |\n      if true; then\n      \techo hi\n      fi\n"));
  EXPECT_EQ(p.steps[0].config.scalar.text, "if true; then\n\techo hi\nfi\n");
}

TEST(PipelineLoaderTest, BadIndentation) {
  EXPECT_EQ(Errors("version: 1\nsteps:\n  - id: a\n     run: x\n"),
            "pipeline.yml:4:9: error: invalid YAML: unexpected ':': check the indentation, or "
            "quote a value that contains ': '\n"
            "     run: x\n"
            "        ^\n");
  EXPECT_EQ(Errors("version: 1\nsteps:\n  - id: a\n    run: x\n   - id: b\n"),
            "pipeline.yml:5:4: error: invalid YAML: bad indentation: this line does not line up "
            "with the lines above it\n"
            "   - id: b\n"
            "   ^\n");
}

TEST(PipelineLoaderTest, UnclosedQuote) {
  EXPECT_EQ(Errors("version: 1\nsteps:\n  - id: a\n    run: \"echo hi\n  - id: b\n"),
            "pipeline.yml:4:10: error: unclosed quote: this string has no closing \"\n"
            "    run: \"echo hi\n"
            "         ^\n");
  EXPECT_THAT(Errors("version: 1\nproject: 'orders\n"),
              HasSubstr("pipeline.yml:2:10: error: unclosed quote: this string has no closing '"));
}

TEST(PipelineLoaderTest, QuotesInsidePlainScalarsAreText) {
  Pipeline p = Load(WithSteps("  - id: a\n    run: echo it's \"fine\n"));
  EXPECT_EQ(p.steps[0].config.scalar.text, "echo it's \"fine");
}

TEST(PipelineLoaderTest, UnclosedBrackets) {
  EXPECT_EQ(Errors("version: 1\nsecrets: [A, B\nsteps: []\n"),
            "pipeline.yml:2:10: error: unclosed '[': no matching ']'\n"
            "secrets: [A, B\n"
            "         ^\n");
  EXPECT_THAT(Errors("version: 1\nenv: {A: 1\n"),
              HasSubstr("pipeline.yml:2:6: error: unclosed '{': no matching '}'"));
}

TEST(PipelineLoaderTest, StrayClosingBracket) {
  EXPECT_THAT(Errors("version: 1\nsecrets: [A]]\n"),
              HasSubstr("pipeline.yml:2:13: error: invalid YAML: closing bracket without an "
                        "opening one"));
}

TEST(PipelineLoaderTest, CommaOutsideBracketsIsAnErrorNotAHang) {
  // yaml-cpp 0.7 allocates without end on these.
  EXPECT_EQ(Errors(",*d\n"),
            "pipeline.yml:1:1: error: unexpected ',' outside brackets: quote a value that starts "
            "with ','\n"
            ",*d\n"
            "^\n");
  EXPECT_THAT(Errors("# c\n---\n  ,a\n"), HasSubstr("pipeline.yml:3:3: error: unexpected ','"));
  EXPECT_THAT(Errors("[a]\n,b\n"), HasSubstr("pipeline.yml:2:1: error: unexpected ','"));
  EXPECT_THAT(Errors("version: 1\nproject: ,x\n"),
              HasSubstr("pipeline.yml:2:10: error: unexpected ','"));
  Pipeline p = Load(WithSteps("  - id: a\n    run: echo a,b , c\n    env: {A: \",x\"}\n"));
  EXPECT_EQ(p.steps[0].env[0].value.text, ",x");
}

TEST(PipelineLoaderTest, HugeFileIsRefusedBeforeParsing) {
  std::string source = "version: 1\n# " + std::string(1 << 20, 'x') + "\n";
  EXPECT_EQ(Errors(source),
            "pipeline.yml: error: the pipeline file is 1048590 bytes; the limit is 1048576 bytes "
            "(1 MiB)\n");
}

TEST(PipelineLoaderTest, DeepFlowNestingIsRefusedNotACrash) {
  std::string source = "version: 1\nsteps: " + std::string(100000, '[') + "\n";
  EXPECT_EQ(Errors(source).substr(0, 83),
            "pipeline.yml:2:70: error: nesting deeper than 64 levels of lists and mappings\n"
            "steps");
  EXPECT_THAT(Errors("a: " + std::string(100000, '{')),
              HasSubstr("error: nesting deeper than 64 levels"));
  std::string balanced = "a: " + std::string(5000, '[') + std::string(5000, ']') + "\n";
  EXPECT_THAT(Errors(balanced), HasSubstr("error: nesting deeper than 64 levels"));
}

TEST(PipelineLoaderTest, DeepBlockNestingIsRefusedNotACrash) {
  std::string dashes;
  for (int i = 0; i < 10000; ++i) dashes += "- ";
  EXPECT_THAT(Errors("a:\n  " + dashes + "x\n"),
              HasSubstr("pipeline.yml:2:127: error: nesting deeper than 64 levels"));
  std::string indented = "a:\n";
  for (int i = 1; i < 100; ++i) indented += std::string(i, ' ') + "k" + std::to_string(i) + ":\n";
  EXPECT_THAT(Errors(indented), HasSubstr("pipeline.yml:64:67: error: nesting deeper than 64 "
                                          "levels of lists and mappings"));
}

TEST(PipelineLoaderTest, DeepNestingThroughIndicatorsIsRefused) {
  std::string questions;
  for (int i = 0; i < 1000; ++i) questions += "? ";
  EXPECT_THAT(Errors(questions + "x\n"),
              HasSubstr("pipeline.yml:1:127: error: nesting deeper than 64 levels"));
  std::string colons;
  for (int i = 0; i < 1000; ++i) colons += ": ";
  EXPECT_THAT(Errors(colons + "x\n"), HasSubstr("error: nesting deeper than 64 levels"));
  EXPECT_THAT(Errors("--- " + std::string(1000, '[')),
              HasSubstr("pipeline.yml:1:69: error: nesting deeper than 64 levels"));
  EXPECT_THAT(Errors("a: !!seq " + std::string(1000, '[')),
              HasSubstr("pipeline.yml:1:72: error: nesting deeper than 64 levels"));
}

TEST(PipelineLoaderTest, DuplicateKeys) {
  EXPECT_EQ(Errors("version: 1\nversion: 1\nsteps:\n  - id: a\n    run: x\n"),
            "pipeline.yml:2:1: error: duplicate key 'version' (first at line 1)\n"
            "version: 1\n"
            "^\n");
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    run: x\n    env: {A: 1, A: 2}\n")),
              HasSubstr("pipeline.yml:5:17: error: duplicate key 'A' (first at line 5)"));
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    run: x\n    run: y\n")),
              HasSubstr("pipeline.yml:5:5: error: duplicate key 'run' (first at line 4)"));
}

TEST(PipelineLoaderTest, NulByte) {
  std::string source = std::string("version: 1\nproject: a") + '\0' + "b\n";
  EXPECT_EQ(Errors(source),
            "pipeline.yml:2:11: error: NUL byte in the file: a pipeline file must "
            "be UTF-8 text\nproject: a" +
                std::string(1, '\0') + "b\n          ^\n");
}

TEST(PipelineLoaderTest, InvalidUtf8) {
  EXPECT_THAT(Errors("version: 1\nproject: caf\xe9\n"),
              HasSubstr("pipeline.yml:2:13: error: invalid UTF-8 (byte 0xe9): a pipeline file "
                        "must be UTF-8 text"));
  Pipeline p = Load(WithSteps("  - id: a\n    run: echo caf\xc3\xa9 \xe2\x9c\x93\n"));
  EXPECT_EQ(p.steps[0].config.scalar.text, "echo caf\xc3\xa9 \xe2\x9c\x93");
}

TEST(PipelineLoaderTest, SecondDocument) {
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    run: x\n---\nversion: 1\n")),
              HasSubstr("pipeline.yml:6:1: error: a second YAML document starts here: a pipeline "
                        "file holds one document"));
}

// ---- top level

TEST(PipelineLoaderTest, UnknownTopLevelKey) {
  EXPECT_EQ(Errors(WithSteps("  - id: a\n    run: x\n") + "vras: {a: 1}\n"),
            "pipeline.yml:5:1: error: unknown key 'vras' at the top level (did you mean "
            "'vars'?)\n"
            "vras: {a: 1}\n"
            "^\n");
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    run: x\n") + "image: alpine\n"),
              HasSubstr("error: unknown key 'image' at the top level\n"));
}

TEST(PipelineLoaderTest, VersionIsRequiredAndMustBeOne) {
  EXPECT_EQ(Errors("steps:\n  - id: a\n    run: x\n"),
            "pipeline.yml:1:1: error: missing `version: 1` at the top level\n"
            "steps:\n"
            "^\n");
  EXPECT_EQ(Errors("version: 2\nsteps:\n  - id: a\n    run: x\n"),
            "pipeline.yml:1:10: error: unsupported version '2': this runner reads `version: 1`\n"
            "version: 2\n"
            "         ^\n");
  EXPECT_THAT(Errors("version: [1]\nsteps:\n  - id: a\n    run: x\n"),
              HasSubstr("pipeline.yml:1:10: error: unsupported version a list: this runner "
                        "reads `version: 1`"));
}

TEST(PipelineLoaderTest, StepsAreRequiredAndNotEmpty) {
  EXPECT_EQ(Errors("version: 1\n"),
            "pipeline.yml:1:1: error: missing `steps:` at the top level: a pipeline needs at "
            "least one step\n"
            "version: 1\n"
            "^\n");
  EXPECT_THAT(Errors("version: 1\nsteps: []\n"),
              HasSubstr("pipeline.yml:2:8: error: 'steps' is empty: a pipeline needs at least "
                        "one step"));
  EXPECT_THAT(Errors("version: 1\nsteps:\n"),
              HasSubstr("pipeline.yml:2:1: error: expected a list for 'steps', got nothing"));
  EXPECT_THAT(Errors("version: 1\nsteps: {id: a}\n"),
              HasSubstr("pipeline.yml:2:8: error: expected a list for 'steps', got a mapping"));
  EXPECT_THAT(Errors("version: 1\nsteps:\n  - echo hi\n"),
              HasSubstr("pipeline.yml:3:5: error: expected a mapping for step #1, got a string"));
}

TEST(PipelineLoaderTest, ProjectMustBeAString) {
  EXPECT_THAT(Errors("version: 1\nproject: {a: 1}\nsteps:\n  - id: a\n    run: x\n"),
              HasSubstr("pipeline.yml:2:10: error: expected a string for 'project', got a "
                        "mapping\n"));
}

TEST(PipelineLoaderTest, EnvValuesMustBeScalars) {
  EXPECT_EQ(
      Errors("version: 1\nenv:\n  A: [1, 2]\n  B:\n    c: d\nsteps:\n  - id: a\n    run: x\n"),
      "pipeline.yml:3:6: error: expected a string for 'A', got a list\n"
      "  A: [1, 2]\n"
      "     ^\n"
      "pipeline.yml:5:5: error: expected a string for 'B', got a mapping\n"
      "    c: d\n"
      "    ^\n");
  EXPECT_THAT(Errors("version: 1\nenv:\n  A:\nsteps:\n  - id: a\n    run: x\n"),
              HasSubstr("pipeline.yml:3:3: error: expected a string for 'A', got nothing"));
  EXPECT_THAT(Errors("version: 1\nenv: [A]\nsteps:\n  - id: a\n    run: x\n"),
              HasSubstr("pipeline.yml:2:6: error: expected a mapping for 'env', got a list"));
}

TEST(PipelineLoaderTest, EnvNames) {
  EXPECT_THAT(
      Errors("version: 1\nenv: {9LIVES: x, A-B: y, _OK: z}\nsteps:\n  - id: a\n    run: x\n"),
      HasSubstr("pipeline.yml:2:7: error: invalid environment variable name '9LIVES': "
                "use letters, digits and '_', not starting with a digit\n"));
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    env: {A-B: y}\n    run: x\n")),
              HasSubstr("pipeline.yml:4:11: error: invalid environment variable name 'A-B'"));
}

TEST(PipelineLoaderTest, Secrets) {
  EXPECT_THAT(Errors("version: 1\nsecrets: DB_PASSWORD\nsteps:\n  - id: a\n    run: x\n"),
              HasSubstr("pipeline.yml:2:10: error: expected a list for 'secrets', got a string"));
  EXPECT_THAT(Errors("version: 1\nsecrets: [OK, bad-name]\nsteps:\n  - id: a\n    run: x\n"),
              HasSubstr("pipeline.yml:2:15: error: invalid environment variable name 'bad-name' "
                        "in 'secrets'"));
}

TEST(PipelineLoaderTest, Vars) {
  EXPECT_THAT(Errors("version: 1\nvars: {a: {b: c}}\nsteps:\n  - id: a\n    run: x\n"),
              HasSubstr("pipeline.yml:2:11: error: expected a string for 'a', got a mapping"));
  EXPECT_THAT(Errors("version: 1\nvars: {9a: x}\nsteps:\n  - id: a\n    run: x\n"),
              HasSubstr("pipeline.yml:2:8: error: invalid var name '9a'"));
  EXPECT_THAT(Errors("version: 1\nvars: [a]\nsteps:\n  - id: a\n    run: x\n"),
              HasSubstr("pipeline.yml:2:7: error: expected a mapping for 'vars', got a list"));
}

TEST(PipelineLoaderTest, PipelineTimeout) {
  EXPECT_EQ(Errors("version: 1\ntimeout: 45\nsteps:\n  - id: a\n    run: x\n"),
            "pipeline.yml:2:10: error: invalid duration '45': write a number and a unit (h, m, s "
            "or ms), e.g. 90s, 10m, 1h30m, 500ms\n"
            "timeout: 45\n"
            "         ^\n");
}

// ---- steps

TEST(PipelineLoaderTest, UnknownStepKeySuggests) {
  EXPECT_EQ(Errors(WithSteps("  - id: a\n    run: x\n  - id: bake\n    neds: [a]\n    run: y\n")),
            "pipeline.yml:6:5: error: unknown key 'neds' in step 'bake' (did you mean 'needs'?)\n"
            "    neds: [a]\n"
            "    ^\n");
  EXPECT_THAT(Errors(WithSteps("  - run: y\n    foo: 1\n")),
              HasSubstr("pipeline.yml:4:5: error: unknown key 'foo' in step #1\n"));
}

TEST(PipelineLoaderTest, StepIdIsRequired) {
  EXPECT_EQ(Errors(WithSteps("  - name: build\n    run: x\n")),
            "pipeline.yml:3:5: error: step #1 has no 'id': add `id: NAME`\n"
            "  - name: build\n"
            "    ^\n");
}

TEST(PipelineLoaderTest, StepIdPattern) {
  const std::string kRule = "use lowercase letters, digits, '_' and '-', starting with a letter";
  EXPECT_THAT(Errors(WithSteps("  - id: Bake\n    run: x\n")),
              HasSubstr("pipeline.yml:3:9: error: invalid step id 'Bake': " + kRule + "\n"));
  EXPECT_THAT(Errors(WithSteps("  - id: 1st\n    run: x\n")),
              HasSubstr("error: invalid step id '1st': " + kRule));
  EXPECT_THAT(Errors(WithSteps("  - id: a.b\n    run: x\n")),
              HasSubstr("error: invalid step id 'a.b': " + kRule));
  EXPECT_THAT(Errors(WithSteps("  - id: [a]\n    run: x\n")),
              HasSubstr("pipeline.yml:3:9: error: expected a string for 'id', got a list"));
  Load(WithSteps("  - id: a1_b-c\n    run: x\n"));
}

TEST(PipelineLoaderTest, DuplicateStepIdNamesTheFirst) {
  EXPECT_EQ(Errors(WithSteps("  - id: a\n    run: x\n  - id: a\n    run: y\n")),
            "pipeline.yml:5:9: error: duplicate step id 'a' (first at line 3)\n"
            "  - id: a\n"
            "        ^\n");
}

TEST(PipelineLoaderTest, FutureKindsAreNotSupportedYet) {
  EXPECT_EQ(Errors(WithSteps("  - id: package\n    zip: {dest: dist/app.zip}\n")),
            "pipeline.yml:4:5: error: step kind 'zip' is not supported by this version of runner\n"
            "    zip: {dest: dist/app.zip}\n"
            "    ^\n");
  for (const char* kind : {"packer", "params", "upload", "deploy"}) {
    EXPECT_THAT(Errors(WithSteps(std::string("  - id: s\n    ") + kind + ": {}\n")),
                HasSubstr(std::string("pipeline.yml:4:5: error: step kind '") + kind +
                          "' is not supported by this version of runner\n"));
  }
}

TEST(PipelineLoaderTest, StepWithoutKind) {
  EXPECT_EQ(Errors(WithSteps("  - id: a\n    name: nothing to do\n")),
            "pipeline.yml:3:5: error: step 'a' has no kind: add `run:`\n"
            "  - id: a\n"
            "    ^\n");
}

TEST(PipelineLoaderTest, StepWithTwoKinds) {
  std::string errors = Errors(WithSteps("  - id: a\n    run: x\n    zip: {}\n"));
  EXPECT_THAT(errors, HasSubstr("pipeline.yml:5:5: error: step kind 'zip' is not supported by "
                                "this version of runner\n"));
  EXPECT_THAT(errors, HasSubstr("pipeline.yml:5:5: error: step 'a' has more than one kind ('run' "
                                "and 'zip'): give each its own step\n"));
}

TEST(PipelineLoaderTest, RunMustBeANonEmptyString) {
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    run: \"\"\n")),
              HasSubstr("pipeline.yml:4:10: error: 'run' is empty: give the script to run\n"));
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    run:\n")),
              HasSubstr("pipeline.yml:4:5: error: expected a string for 'run', got nothing\n"));
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    run: [make, test]\n")),
              HasSubstr("pipeline.yml:4:10: error: expected a string for 'run', got a list\n"));
}

TEST(PipelineLoaderTest, ExpressionInRunIsRefused) {
  const std::string kMessage =
      "error: expressions are not allowed in 'run' (a pushed branch name or commit message must "
      "never become shell code): pass the value through the step's `env:` and use $NAME "
      "instead\n";
  EXPECT_EQ(Errors(WithSteps("  - id: a\n    run: echo ${{ build.branch }}\n")),
            "pipeline.yml:4:15: " + kMessage + "    run: echo ${{ build.branch }}\n" +
                "              ^\n");
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    run: \"echo ${{ build.branch }}\"\n")),
              HasSubstr("pipeline.yml:4:16: " + kMessage));
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    run: |\n      make\n      echo ${{ x\n")),
              HasSubstr("pipeline.yml:6:12: " + kMessage));
}

TEST(PipelineLoaderTest, NeedsMustBeAList) {
  EXPECT_EQ(Errors(WithSteps("  - id: a\n    run: x\n  - id: b\n    needs: a\n    run: y\n")),
            "pipeline.yml:6:12: error: 'needs' must be a list of step ids: write `needs: [a]`\n"
            "    needs: a\n"
            "           ^\n");
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    needs: {x: 1}\n    run: y\n")),
              HasSubstr("pipeline.yml:4:12: error: expected a list of step ids for 'needs', got "
                        "a mapping"));
}

TEST(PipelineLoaderTest, NeedsUnknownStepSuggests) {
  EXPECT_EQ(Errors(WithSteps(
                "  - id: compile\n    run: x\n  - id: b\n    needs: [complie]\n    run: y\n")),
            "pipeline.yml:6:13: error: step 'b' needs unknown step 'complie' (did you mean "
            "'compile'?)\n"
            "    needs: [complie]\n"
            "            ^\n");
}

TEST(PipelineLoaderTest, NeedsItself) {
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    needs: [a]\n    run: x\n")),
              HasSubstr("pipeline.yml:4:13: error: step 'a' needs itself\n"));
}

TEST(PipelineLoaderTest, DependencyCycle) {
  EXPECT_EQ(Errors(WithSteps("  - id: a\n    needs: [c]\n    run: x\n"
                             "  - id: b\n    needs: [a]\n    run: x\n"
                             "  - id: c\n    needs: [b]\n    run: x\n")),
            "pipeline.yml:4:13: error: dependency cycle: a -> c -> b -> a\n"
            "    needs: [c]\n"
            "            ^\n");
}

TEST(PipelineLoaderTest, CycleThroughAnImplicitNeed) {
  // b needs a by default (the step before it), a needs b explicitly.
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    needs: [b]\n    run: x\n  - id: b\n    run: y\n")),
              HasSubstr("pipeline.yml:4:13: error: dependency cycle: a -> b -> a\n"));
}

TEST(PipelineLoaderTest, EachCycleIsReportedOnce) {
  std::string errors = Errors(
      WithSteps("  - id: a\n    needs: [b]\n    run: x\n  - id: b\n    needs: [a]\n    run: y\n"
                "  - id: c\n    needs: [d]\n    run: x\n  - id: d\n    needs: [c]\n    run: y\n"));
  EXPECT_THAT(errors, HasSubstr("pipeline.yml:4:13: error: dependency cycle: a -> b -> a\n"));
  EXPECT_THAT(errors, HasSubstr("pipeline.yml:10:13: error: dependency cycle: c -> d -> c\n"));
  EXPECT_EQ(errors.find("dependency cycle: b"), std::string::npos);
}

TEST(PipelineLoaderTest, LongChainsDoNotOverflowTheStack) {
  std::string steps;
  for (int i = 0; i < 20000; ++i) steps += "  - {id: s" + std::to_string(i) + ", run: x}\n";
  Pipeline p = Load(WithSteps(steps));
  EXPECT_EQ(p.steps.back().needs, (std::vector<std::string>{"s19998"}));
}

TEST(PipelineLoaderTest, LargeFilesWithManyStepsAndErrorsStayFast) {
  // Every step reads the first step's status (a search through the whole chain) and has a bad
  // expression (a located error): quadratic work here would take minutes.
  std::string steps = "  - {id: s0, run: x}\n";
  for (int i = 1; i < 12000; ++i) {
    steps += "  - {id: s" + std::to_string(i) +
             ", run: x, env: {A: \"${{ steps.s0.status }}\", B: \"${{ build.x }}\"}}\n";
  }
  std::string source = WithSteps(steps);
  ASSERT_LT(source.size(), size_t{1} << 20);
  auto start = std::chrono::steady_clock::now();
  // Format shows the first Diagnostics::kMaxShown: look at every diagnostic instead.
  Diagnostics diags("pipeline.yml", source);
  EXPECT_FALSE(ParsePipeline("pipeline.yml", source, testing::ShellOnlyLoadOptions(), diags));
  std::string errors;
  for (const Diagnostic& d : diags.diagnostics()) {
    errors +=
        fmt::format("pipeline.yml:{}:{}: error: {}\n", d.where.line, d.where.column, d.message);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_THAT(errors, HasSubstr("pipeline.yml:12002:65: error: unknown name 'build.x'"));
  EXPECT_THAT(errors, Not(HasSubstr("does not need")));
}

TEST(PipelineLoaderTest, When) {
  EXPECT_EQ(Errors(WithSteps("  - id: a\n    run: x\n    when: {branhc: main}\n")),
            "pipeline.yml:5:12: error: unknown key 'branhc' in 'when' of step 'a' (did you mean "
            "'branch'?)\n"
            "    when: {branhc: main}\n"
            "           ^\n");
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    run: x\n    when: {event: [push, psh]}\n")),
              HasSubstr("pipeline.yml:5:26: error: unknown event 'psh' (did you mean 'push'?): "
                        "use push, manual, pull_request or tag\n"));
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    run: x\n    when: {event: nightly}\n")),
              HasSubstr("pipeline.yml:5:19: error: unknown event 'nightly': use push, manual, "
                        "pull_request or tag\n"));
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    run: x\n    when: main\n")),
              HasSubstr("pipeline.yml:5:11: error: expected a mapping for 'when', got a string"));
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    run: x\n    when: {branch: {a: b}}\n")),
              HasSubstr("pipeline.yml:5:20: error: expected a string or a list of strings for "
                        "'branch', got a mapping"));
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    run: x\n    when: {changed: [[a]]}\n")),
              HasSubstr("pipeline.yml:5:22: error: expected a string for 'changed', got a list"));
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    run: x\n    when: {branch: []}\n")),
              HasSubstr("pipeline.yml:5:20: error: 'branch' is an empty list"));
  Pipeline p = Load(WithSteps(
      "  - id: a\n    run: x\n    when: {branch: main, event: [tag, manual, pull_request]}\n"));
  EXPECT_EQ(p.steps[0].when->branches, (std::vector<std::string>{"main"}));
  EXPECT_FALSE(p.steps[0].when->changed);
}

TEST(PipelineLoaderTest, Dir) {
  EXPECT_EQ(Errors(WithSteps("  - id: a\n    run: x\n    dir: /etc\n")),
            "pipeline.yml:5:10: error: 'dir' must be a path relative to the workspace, got "
            "'/etc'\n"
            "    dir: /etc\n"
            "         ^\n");
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    run: x\n    dir: a/../../b\n")),
              HasSubstr("pipeline.yml:5:10: error: 'dir' must stay inside the workspace, but "
                        "'a/../../b' goes above it with '..'\n"));
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    run: x\n    dir: ..\n")),
              HasSubstr("error: 'dir' must stay inside the workspace"));
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    run: x\n    dir: \"\"\n")),
              HasSubstr("pipeline.yml:5:10: error: 'dir' is empty"));
  Pipeline p = Load(WithSteps("  - id: a\n    run: x\n    dir: a/../b/./${{ build.branch }}\n"));
  EXPECT_EQ(p.steps[0].dir->text, "a/../b/./${{ build.branch }}");
  EXPECT_EQ(p.steps[0].dir->where.line, 5);
}

TEST(PipelineLoaderTest, StepDurations) {
  const std::string kForm =
      "write a number and a unit (h, m, s or ms), e.g. 90s, 10m, 1h30m, 500ms\n";
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    run: x\n    timeout: 10x\n")),
              HasSubstr("pipeline.yml:5:14: error: invalid duration '10x': " + kForm));
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    run: x\n    kill_grace: 10\n")),
              HasSubstr("pipeline.yml:5:17: error: invalid duration '10': " + kForm));
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    run: x\n    timeout: {m: 1}\n")),
              HasSubstr("pipeline.yml:5:14: error: expected a string for 'timeout', got a "
                        "mapping"));
  Pipeline p = Load(WithSteps("  - id: a\n    run: x\n    kill_grace: 500ms\n"));
  EXPECT_EQ(p.steps[0].kill_grace, Duration(500));
}

TEST(PipelineLoaderTest, Retry) {
  const std::string kForm = "give a count such as `retry: 2`, or `retry: {limit: 2, delay: 10s}`\n";
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    run: x\n    retry: -1\n")),
              HasSubstr("pipeline.yml:5:12: error: invalid retry count '-1': " + kForm));
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    run: x\n    retry: two\n")),
              HasSubstr("pipeline.yml:5:12: error: invalid retry count 'two': " + kForm));
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    run: x\n    retry: 101\n")),
              HasSubstr("pipeline.yml:5:12: error: retry limit 101 is too high: at most 100\n"));
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    run: x\n    retry: {limit: 2, dealy: 1s}\n")),
              HasSubstr("pipeline.yml:5:23: error: unknown key 'dealy' in 'retry' of step 'a' "
                        "(did you mean 'delay'?)\n"));
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    run: x\n    retry: {delay: 1s}\n")),
              HasSubstr("pipeline.yml:5:12: error: 'retry' needs a 'limit'"));
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    run: x\n    retry: {limit: 1, delay: 5}\n")),
              HasSubstr("pipeline.yml:5:30: error: invalid duration '5'"));
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    run: x\n    retry: [1]\n")),
              HasSubstr("pipeline.yml:5:12: error: expected a count for 'retry', got a list"));
  Pipeline p = Load(WithSteps("  - id: a\n    run: x\n    retry: 100\n"));
  EXPECT_EQ(p.steps[0].retry.limit, 100);
}

// ---- expressions

TEST(PipelineLoaderTest, UnknownBuildFieldSuggests) {
  EXPECT_EQ(Errors(WithSteps("  - id: a\n    run: x\n    env: {B: \"x-${{ build.brnch }}\"}\n")),
            "pipeline.yml:5:17: error: unknown name 'build.brnch' (did you mean "
            "'build.branch'?)\n"
            "    env: {B: \"x-${{ build.brnch }}\"}\n"
            "                ^\n");
}

TEST(PipelineLoaderTest, UnknownRootSuggests) {
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    run: x\n    name: ${{ var.x }}\n")),
              HasSubstr("pipeline.yml:5:11: error: unknown name 'var.x': a name starts with "
                        "build., vars., env. or steps. (did you mean 'vars'?)\n"));
}

TEST(PipelineLoaderTest, MalformedExpressions) {
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    run: x\n    name: \"a ${{ build.id\"\n")),
              HasSubstr("pipeline.yml:5:14: error: unclosed '${{': add '}}' after the name\n"));
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    run: x\n    name: \"${{ a + b }}\"\n")),
              HasSubstr("pipeline.yml:5:12: error: invalid expression 'a + b'"));
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    run: x\n    name: \"${{ build }}\"\n")),
              HasSubstr("error: invalid name 'build': use build.FIELD, FIELD one of project, "
                        "branch, commit, short_commit, number, id, event, trigger, workspace\n"));
}

TEST(PipelineLoaderTest, EveryBadExpressionInAValueIsReported) {
  std::string errors =
      Errors(WithSteps("  - id: a\n    run: x\n    name: \"${{ build.x }} ${{ build.y }}\"\n"));
  EXPECT_THAT(errors, HasSubstr("pipeline.yml:5:12: error: unknown name 'build.x'"));
  EXPECT_THAT(errors, HasSubstr("pipeline.yml:5:27: error: unknown name 'build.y'"));
}

TEST(PipelineLoaderTest, Vars_NamesMustBeDeclared) {
  EXPECT_EQ(Errors("version: 1\nvars: {store: x}\n" +
                   std::string("steps:\n  - id: a\n    run: x\n    dir: ${{ vars.stor }}\n")),
            "pipeline.yml:6:10: error: unknown var 'vars.stor' (did you mean 'vars.store'?): "
            "declare it under `vars:` or pass --var stor=VALUE\n"
            "    dir: ${{ vars.stor }}\n"
            "         ^\n");
  LoadOptions options = testing::ShellOnlyLoadOptions();
  options.var_overrides = {{"stor", "y"}};
  LoadWithWarnings(
      "version: 1\nvars: {store: x}\nsteps:\n  - id: a\n    run: x\n    dir: ${{ vars.stor }}\n",
      options,
      "pipeline.yml: warning: --var stor: the pipeline declares no such var (did you mean "
      "'store'?); it is set anyway\n");
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    run: x\n    dir: ${{ vars.a.b }}\n")),
              HasSubstr("error: invalid name 'vars.a.b': use vars.NAME"));
}

TEST(PipelineLoaderTest, EnvNamesMustBeKnown) {
  LoadOptions options = testing::ShellOnlyLoadOptions();
  options.environment = {{"HOME", "/root"}};
  Load(
      "version: 1\nenv: {A: x}\nsteps:\n  - id: a\n    run: x\n"
      "    env: {B: \"${{ env.A }}\", C: \"${{ env.HOME }}\"}\n",
      options);
  EXPECT_THAT(
      Errors("version: 1\nenv: {GOFLAGS: x}\nsteps:\n  - id: a\n    run: x\n"
             "    env: {B: \"${{ env.GOFLAG }}\"}\n",
             options),
      HasSubstr("pipeline.yml:6:15: error: unknown environment variable 'env.GOFLAG' (did you "
                "mean 'env.GOFLAGS'?): set it in the pipeline's `env:` or in the runner's "
                "environment\n"));
}

TEST(PipelineLoaderTest, PipelineEnvUsesOnlyTheRunnersEnvironment) {
  LoadOptions options = testing::ShellOnlyLoadOptions();
  options.environment = {{"HOME", "/root"}};
  Load("version: 1\nenv: {A: \"${{ env.HOME }}/x\"}\nsteps:\n  - id: a\n    run: x\n", options);
  EXPECT_THAT(Errors("version: 1\nenv: {A: x, B: \"${{ env.A }}\"}\nsteps:\n  - id: a\n    run: "
                     "x\n",
                     options),
              HasSubstr("pipeline.yml:2:17: error: unknown environment variable 'env.A': the "
                        "pipeline's env may only use variables of the runner's environment\n"));
}

TEST(PipelineLoaderTest, VarsAndPipelineEnvCannotUseStepsOrVars) {
  std::string errors = Errors(
      "version: 1\n"
      "env: {A: \"${{ vars.x }}\", B: \"${{ steps.a.status }}\"}\n"
      "vars: {x: \"${{ vars.y }}\", y: \"${{ steps.a.outputs.o }}\", z: \"${{ build.id }}\"}\n"
      "steps:\n  - id: a\n    run: x\n");
  EXPECT_THAT(errors, HasSubstr("pipeline.yml:2:11: error: 'vars.x' cannot be used in the "
                                "pipeline's env: it may use build.* and env.* only\n"));
  EXPECT_THAT(errors, HasSubstr("pipeline.yml:2:31: error: 'steps.a.status' cannot be used in "
                                "the pipeline's env: no step has run when it is set\n"));
  EXPECT_THAT(errors, HasSubstr("pipeline.yml:3:12: error: 'vars.y' cannot be used in a var's "
                                "value: it may use build.* and env.* only\n"));
  EXPECT_THAT(errors, HasSubstr("pipeline.yml:3:32: error: 'steps.a.outputs.o' cannot be used in "
                                "a var's value: no step has run when it is set\n"));
}

TEST(PipelineLoaderTest, StepsExpressionsNeedTheStep) {
  const std::string kSteps =
      "  - id: build\n    run: x\n"
      "  - id: other\n    needs: []\n    run: x\n"
      "  - id: bake\n    needs: [build]\n    run: x\n";
  // Transitive: deploy needs bake, which needs build.
  Load(WithSteps(kSteps + "  - id: deploy\n    needs: [bake]\n    run: x\n"
                          "    env: {A: \"${{ steps.build.outputs.path }}\"}\n"));
  EXPECT_EQ(Errors(WithSteps(kSteps + "  - id: deploy\n    needs: [bake]\n    run: x\n"
                                      "    env: {A: \"${{ steps.other.status }}\"}\n")),
            "pipeline.yml:14:15: error: step 'deploy' uses steps.other but does not need 'other' "
            "(add it to needs)\n"
            "    env: {A: \"${{ steps.other.status }}\"}\n"
            "              ^\n");
}

TEST(PipelineLoaderTest, StepsExpressionShapeAndIds) {
  const std::string kSteps = "  - id: build\n    run: x\n  - id: next\n    run: x\n";
  EXPECT_THAT(Errors(WithSteps(kSteps + "    name: ${{ steps.biuld.status }}\n")),
              HasSubstr("pipeline.yml:7:11: error: unknown step 'biuld' in 'steps.biuld.status' "
                        "(did you mean 'build'?)\n"));
  EXPECT_THAT(Errors(WithSteps(kSteps + "    name: ${{ steps.build.outputs }}\n")),
              HasSubstr("error: invalid name 'steps.build.outputs': use steps.ID.outputs.NAME or "
                        "steps.ID.status\n"));
  EXPECT_THAT(Errors(WithSteps(kSteps + "    name: ${{ steps.build.result }}\n")),
              HasSubstr("error: invalid name 'steps.build.result'"));
  EXPECT_THAT(Errors(WithSteps(kSteps + "    name: ${{ steps.next.status }}\n")),
              HasSubstr("error: step 'next' uses its own steps.next: a step cannot read its own "
                        "result\n"));
}

TEST(PipelineLoaderTest, ExpressionColumnInPlainAndMultiLineScalars) {
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    run: x\n    dir: a/${{ vars.x }}\n")),
              HasSubstr("pipeline.yml:5:12: error: unknown var 'vars.x'"));
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    run: x\n    name: 'it''s ${{ vars.x }}'\n")),
              HasSubstr("pipeline.yml:5:18: error: unknown var 'vars.x'"));
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    run: x\n    name: >\n      first\n"
                               "      then ${{ vars.x }}\n")),
              HasSubstr("pipeline.yml:7:12: error: unknown var 'vars.x'"));
}

// ---- all at once

TEST(PipelineLoaderTest, ReportsEveryErrorInOnePass) {
  std::string errors = Errors(R"(version: 1
timeout: 10
steps:
  - id: compile
    run: go build
  - id: bake
    neds: [compile]
    run: echo ${{ build.branch }}
  - id: publish
    needs: [bkae]
    upload: {to: s3://bucket}
)");
  EXPECT_EQ(errors,
            "pipeline.yml:2:10: error: invalid duration '10': write a number and a unit (h, m, s "
            "or ms), e.g. 90s, 10m, 1h30m, 500ms\n"
            "timeout: 10\n"
            "         ^\n"
            "pipeline.yml:7:5: error: unknown key 'neds' in step 'bake' (did you mean 'needs'?)\n"
            "    neds: [compile]\n"
            "    ^\n"
            "pipeline.yml:8:15: error: expressions are not allowed in 'run' (a pushed branch name "
            "or commit message must never become shell code): pass the value through the step's "
            "`env:` and use $NAME instead\n"
            "    run: echo ${{ build.branch }}\n"
            "              ^\n"
            "pipeline.yml:10:13: error: step 'publish' needs unknown step 'bkae' (did you mean "
            "'bake'?)\n"
            "    needs: [bkae]\n"
            "            ^\n"
            "pipeline.yml:11:5: error: step kind 'upload' is not supported by this version of "
            "runner\n"
            "    upload: {to: s3://bucket}\n"
            "    ^\n");
}

TEST(PipelineLoaderTest, NeverThrowsOnOddInput) {
  for (const char* source :
       {"&a [*a]", "*x", "!!binary x", "? [a]\n: b\n", "{[a]: b}", "version: 1\nsteps: [[]]\n",
        "version: 1\nsteps: [{}]\n", "%YAML 1.2\n---\nversion: 1\n", "\xef\xbb\xbfversion: 1\n",
        "version: 1\nsteps:\n  - id: a\n    run: x\n    ? [k]\n    : v\n", "'", "\"\\", "[", "}",
        "a: |\n", "a: >-\n  x\n", ":", "- - - -", "version: 1\r\nsteps: []\r\n"}) {
    Diagnostics diags("pipeline.yml", source);
    EXPECT_NO_THROW(ParsePipeline("pipeline.yml", source, testing::ShellOnlyLoadOptions(), diags))
        << source;
    EXPECT_TRUE(diags.HasErrors()) << source;
  }
}

TEST(PipelineLoaderTest, ExpressionsAreRefusedWhereTheRunnerNeedsTheValueFirst) {
  const std::string kWhy =
      "the runner needs its value before the build's values exist; write the value itself";
  EXPECT_THAT(
      Errors(WithSteps("  - id: a\n    run: x\n    timeout: ${{ vars.t }}\n")),
      HasSubstr("pipeline.yml:5:14: error: expressions are not allowed in 'timeout': " + kWhy));
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    run: x\n    retry: \"${{ vars.n }}\"\n")),
              HasSubstr("pipeline.yml:5:13: error: expressions are not allowed in 'retry'"));
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    run: x\n    retry: {limit: 1, delay: "
                               "\"${{ vars.d }}\"}\n")),
              HasSubstr("pipeline.yml:5:31: error: expressions are not allowed in 'delay'"));
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    run: x\n    when: {branch: [main, "
                               "\"${{ vars.b }}\"]}\n")),
              HasSubstr("pipeline.yml:5:28: error: expressions are not allowed in 'branch'"));
  EXPECT_THAT(Errors("version: 1\ntimeout: ${{ vars.t }}\nsteps:\n  - {id: a, run: x}\n"),
              HasSubstr("pipeline.yml:2:10: error: expressions are not allowed in 'timeout'"));
  EXPECT_THAT(Errors("version: 1\nproject: ${{ build.branch }}\nsteps:\n  - {id: a, run: x}\n"),
              HasSubstr("pipeline.yml:2:10: error: expressions are not allowed in 'project'"));
}

TEST(PipelineLoaderTest, MergeKeysAreNotSupported) {
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    run: x\n    env:\n      <<: {A: 1}\n")),
              HasSubstr("pipeline.yml:6:7: error: YAML merge keys ('<<') are not supported: "
                        "write the keys out"));
}

TEST(PipelineLoaderTest, AnErrorThroughAnAliasPointsAtTheAlias) {
  std::string source =
      "version: 1\nvars: {t: &t [1, 2]}\nsteps:\n  - id: a\n    run: x\n    timeout: *t\n";
  EXPECT_THAT(Errors(source),
              HasSubstr("pipeline.yml:6:14: error: expected a string for 'timeout', got a list"));
}

TEST(PipelineLoaderTest, NulInAValueIsRefusedAtTheValue) {
  EXPECT_EQ(Errors("version: 1\nproject: \"a\\0b\"\n"),
            "pipeline.yml:2:10: error: NUL character in a value (an escape such as \"\\0\"): a "
            "pipeline file must not hold NUL\n"
            "project: \"a\\0b\"\n"
            "         ^\n");
}

TEST(PipelineLoaderTest, StepIdMustFitAFileName) {
  std::string id(kMaxStepIdBytes + 1, 'a');
  EXPECT_THAT(Errors(WithSteps("  - id: " + id + "\n    run: x\n")),
              HasSubstr("pipeline.yml:3:9: error: step id is 201 bytes long: at most 200 (it "
                        "names the step's log file, logs/ID.log)"));
  Load(WithSteps("  - id: " + id.substr(1) + "\n    run: x\n"));
}

TEST(PipelineLoaderTest, ATaggedPlainScalarOnTwoLinesLoads) {
  Pipeline p = Load(WithSteps("  - id: a\n    run:\n      !!str echo one\n      two\n"));
  EXPECT_EQ(p.steps[0].config.scalar.text, "echo one two");
}

TEST(PipelineLoaderTest, ManyErrorsOnOneLongLineStayFast) {
  // 1 MiB on one line: every unknown key would quote the whole line, and every unknown name
  // located from the start of its scalar.
  std::string keys = "{version: 1, steps: [{id: a, run: x}]";
  for (int i = 0; keys.size() < 900000; ++i) keys += ", k" + std::to_string(i) + ": 1";
  keys += "}\n";
  std::string names = "version: 1\nsteps:\n  - id: a\n    run: x\n    env: {A: \"";
  for (int i = 0; i < 100000; ++i) names += "${{ x.y }}";
  names += "\"}\n";
  for (const std::string& source : {keys, names}) {
    auto start = std::chrono::steady_clock::now();
    std::string errors = Errors(source);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
    EXPECT_THAT(errors, HasSubstr("more errors and warnings\n"));
    EXPECT_LT(errors.size(), size_t{100000});
  }
}

// ---- environments and the ledger (SPEC section 7)

// A valid file with `tail` (environments:, ledger:) after its one step.
std::string WithEnvironments(const std::string& tail) {
  return "version: 1\nsteps:\n  - id: a\n    run: x\n" + tail;
}

TEST(PipelineLoaderTest, LoadsEnvironmentsAndTheLedger) {
  Pipeline p = Load(WithEnvironments(R"(environments:
  stg:
    region: eu-west-1
    stack: orders-stg
    role_arn: arn:aws:iam::111111111111:role/deployer
    params: {Environment: staging, Size: 3, Empty: ""}
    capabilities: [CAPABILITY_IAM, CAPABILITY_AUTO_EXPAND]
    codedeploy: {application: orders, group: orders-stg, config: CodeDeployDefault.OneAtATime}
    branches: [main, "release/*"]
  prd:
    region: us-gov-west-1
    stack: orders-prd
    role_arn: arn:aws-us-gov:iam::222222222222:role/ops/deploy.er+1
    codedeploy: {application: orders, group: orders-prd, revision_store: "s3://gov-revs/orders/",
                 file_exists: RETAIN}
    branches: main
    requires: [stg]
ledger: s3://deploys/orders
)"));
  ASSERT_EQ(p.environments.size(), 2u);
  const DeployEnvironment& stg = p.environments[0];
  EXPECT_EQ(stg.name, "stg");
  EXPECT_EQ(stg.where.line, 6);
  EXPECT_EQ(stg.where.column, 3);
  EXPECT_EQ(stg.region, "eu-west-1");
  EXPECT_EQ(stg.stack, "orders-stg");
  EXPECT_EQ(stg.role_arn, "arn:aws:iam::111111111111:role/deployer");
  EXPECT_EQ(stg.params, (std::vector<std::pair<std::string, std::string>>{
                            {"Environment", "staging"}, {"Size", "3"}, {"Empty", ""}}));
  EXPECT_EQ(stg.capabilities,
            (std::vector<std::string>{"CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"}));
  ASSERT_TRUE(stg.codedeploy);
  EXPECT_EQ(stg.codedeploy->application, "orders");
  EXPECT_EQ(stg.codedeploy->group, "orders-stg");
  EXPECT_EQ(stg.codedeploy->config, "CodeDeployDefault.OneAtATime");
  EXPECT_EQ(stg.branches, (std::vector<std::string>{"main", "release/*"}));
  EXPECT_TRUE(stg.required.empty());

  const DeployEnvironment& prd = p.environments[1];
  EXPECT_EQ(prd.name, "prd");
  EXPECT_EQ(prd.region, "us-gov-west-1");
  EXPECT_EQ(prd.role_arn, "arn:aws-us-gov:iam::222222222222:role/ops/deploy.er+1");
  EXPECT_TRUE(prd.params.empty());
  EXPECT_TRUE(prd.capabilities.empty());
  ASSERT_TRUE(prd.codedeploy);
  EXPECT_EQ(prd.codedeploy->config, "");  // the group's own
  EXPECT_EQ(prd.codedeploy->revision_store, "s3://gov-revs/orders/");
  EXPECT_EQ(stg.codedeploy->revision_store, "");  // the build's own object
  EXPECT_EQ(prd.codedeploy->file_exists, "RETAIN");
  EXPECT_EQ(stg.codedeploy->file_exists, "");  // CodeDeploy's default
  EXPECT_EQ(prd.branches, (std::vector<std::string>{"main"}));
  EXPECT_EQ(prd.required, (std::vector<std::string>{"stg"}));
  EXPECT_EQ(p.ledger, "s3://deploys/orders");

  Pipeline minimal = Load(WithEnvironments("environments: {dev: {region: eu-west-1, stack: d}}\n"));
  ASSERT_EQ(minimal.environments.size(), 1u);
  EXPECT_FALSE(minimal.environments[0].codedeploy);
  EXPECT_TRUE(minimal.environments[0].branches.empty());  // every branch
  EXPECT_EQ(minimal.ledger, "");                          // STATE/deployments
  EXPECT_TRUE(Load(WithSteps("  - id: a\n    run: x\n")).environments.empty());

  EXPECT_THAT(Errors(WithEnvironments("environments:\n  dev:\n    region: eu-west-1\n"
                                      "    stack: d\n    codedeploy: {application: a, group: g, "
                                      "revision_store: /tmp/revs}\n")),
              HasSubstr("pipeline.yml:9:60: error: 'environments.dev.codedeploy.revision_store' "
                        "must be an S3 prefix in the environment's region, s3://BUCKET/PREFIX/ "
                        "(CodeDeploy reads revisions from S3), not '/tmp/revs'"));
  EXPECT_THAT(Errors(WithEnvironments("environments:\n  dev:\n    region: eu-west-1\n"
                                      "    stack: d\n    codedeploy: {application: a, group: g, "
                                      "file_exists: overwrite}\n")),
              HasSubstr("'environments.dev.codedeploy.file_exists' is 'overwrite': use DISALLOW, "
                        "OVERWRITE or RETAIN"));
}

TEST(PipelineLoaderTest, EveryEnvironmentErrorInOnePass) {
  EXPECT_EQ(Errors(WithEnvironments(R"(environments:
  Stg:
    regoin: eu-west-1
    stack: 1orders
    role_arn: arn:aws:iam::1111:role/deployer
    capabilities: [CAPABILITY_IAMM]
    params: {Size: [1, 2], "Bad-Name": x, Missing: }
    codedeploy: {application: orders, grop: g}
  prd:
    region: eu_west_1
    stack: orders-prd
    requires: [stgg, prd]
)")),
            "pipeline.yml:6:3: error: invalid environment name 'Stg': use lowercase letters, "
            "digits, '_' and '-', starting with a letter\n"
            "  Stg:\n"
            "  ^\n"
            "pipeline.yml:6:3: error: environment 'Stg' has no 'region': add `region: "
            "eu-west-1`\n"
            "  Stg:\n"
            "  ^\n"
            "pipeline.yml:7:5: error: unknown key 'regoin' in environment 'Stg' (did you mean "
            "'region'?)\n"
            "    regoin: eu-west-1\n"
            "    ^\n"
            "pipeline.yml:8:12: error: invalid stack name '1orders' in environment 'Stg': "
            "CloudFormation wants a letter, then letters, digits and '-', at most 128 "
            "characters\n"
            "    stack: 1orders\n"
            "           ^\n"
            "pipeline.yml:9:15: error: invalid role_arn 'arn:aws:iam::1111:role/deployer' in "
            "environment 'Stg': give an IAM role ARN such as "
            "arn:aws:iam::111111111111:role/deployer\n"
            "    role_arn: arn:aws:iam::1111:role/deployer\n"
            "              ^\n"
            "pipeline.yml:10:20: error: unknown capability 'CAPABILITY_IAMM' (did you mean "
            "'CAPABILITY_IAM'?): use CAPABILITY_IAM, CAPABILITY_NAMED_IAM or "
            "CAPABILITY_AUTO_EXPAND\n"
            "    capabilities: [CAPABILITY_IAMM]\n"
            "                   ^\n"
            "pipeline.yml:11:20: error: expected a scalar for parameter 'Size' in "
            "'environments.Stg.params', got a list (a CommaDelimitedList is one string: "
            "\"a,b\")\n"
            "    params: {Size: [1, 2], \"Bad-Name\": x, Missing: }\n"
            "                   ^\n"
            "pipeline.yml:11:28: error: invalid parameter name 'Bad-Name' in "
            "'environments.Stg.params': CloudFormation parameter names are letters and digits\n"
            "    params: {Size: [1, 2], \"Bad-Name\": x, Missing: }\n"
            "                           ^\n"
            "pipeline.yml:11:43: error: parameter 'Missing' in 'environments.Stg.params' has no "
            "value: write \"\" for an empty one\n"
            "    params: {Size: [1, 2], \"Bad-Name\": x, Missing: }\n"
            "                                          ^\n"
            "pipeline.yml:12:17: error: 'environments.Stg.codedeploy' has no 'group': add "
            "`group: NAME`\n"
            "    codedeploy: {application: orders, grop: g}\n"
            "                ^\n"
            "pipeline.yml:12:39: error: unknown key 'grop' in 'environments.Stg.codedeploy' (did "
            "you mean 'group'?)\n"
            "    codedeploy: {application: orders, grop: g}\n"
            "                                      ^\n"
            "pipeline.yml:14:13: error: invalid region 'eu_west_1' in environment 'prd': use an "
            "AWS region such as eu-west-1\n"
            "    region: eu_west_1\n"
            "            ^\n"
            "pipeline.yml:16:16: error: environment 'prd' requires unknown environment 'stgg' "
            "(did you mean 'Stg'?)\n"
            "    requires: [stgg, prd]\n"
            "               ^\n"
            "pipeline.yml:16:22: error: environment 'prd' requires itself\n"
            "    requires: [stgg, prd]\n"
            "                     ^\n");
}

TEST(PipelineLoaderTest, EnvironmentShapes) {
  auto load = [](const std::string& fields) {
    return WithEnvironments("environments:\n  stg: {" + fields + "}\n");
  };
  for (const std::string region :
       {"eu-west-1", "us-east-2", "ap-southeast-4", "us-gov-east-1", "us-iso-east-1",
        "cn-northwest-1", "eusc-de-east-1", "il-central-1"}) {
    EXPECT_EQ(Load(load("region: " + region + ", stack: s")).environments[0].region, region);
  }
  for (const std::string region : {"eu-west", "EU-WEST-1", "eu-west-1a", "e-west-1", "eu--1",
                                   "euwest1", "eu-west-123", "eu-west-"}) {
    EXPECT_THAT(Errors(load("region: " + region + ", stack: s")),
                HasSubstr("error: invalid region '" + region + "'"));
  }
  std::string longest(128, 'a');
  for (const std::string stack : {"a", "Orders-Stg-2", longest.c_str()}) {
    Load(load("region: eu-west-1, stack: " + stack));
  }
  for (const std::string& stack :
       std::vector<std::string>{"-a", "a_b", "a.b", "2a", longest + "a"}) {
    EXPECT_THAT(Errors(load("region: eu-west-1, stack: \"" + stack + "\"")),
                HasSubstr("error: invalid stack name '" + stack + "'"));
  }
  for (const std::string& arn : std::vector<std::string>{
           "arn:aws:iam::123456789012:role/r", "arn:aws-cn:iam::123456789012:role/a/b/Name_1=,.@-",
           "arn:aws:iam::123456789012:role/" + std::string(64, 'r')}) {
    EXPECT_EQ(Load(load("region: eu-west-1, stack: s, role_arn: \"" + arn + "\""))
                  .environments[0]
                  .role_arn,
              arn);
  }
  for (const std::string& arn : std::vector<std::string>{
           "arn:aws:iam::123456789012:user/u", "arn:aws:iam:eu-west-1:123456789012:role/r",
           "arn:aws:iam::12345678901a:role/r", "arn:aws:iam::1234567890123:role/r",
           "arn:aws:iam::123456789012:role/", "arn:aws:iam::123456789012:role/a//r",
           "arn:gcp:iam::123456789012:role/r", "arn:aws:sts::123456789012:role/r",
           "arn:aws:iam::123456789012:role/r r",
           "arn:aws:iam::123456789012:role/" + std::string(65, 'r'), "deployer"}) {
    EXPECT_THAT(Errors(load("region: eu-west-1, stack: s, role_arn: \"" + arn + "\"")),
                HasSubstr("error: invalid role_arn '" + arn + "'"));
  }
  EXPECT_THAT(Errors(load("region: eu-west-1")),
              HasSubstr("pipeline.yml:6:3: error: environment 'stg' has no 'stack': add `stack: "
                        "STACK_NAME`"));
  EXPECT_THAT(Errors(load("region: \"\", stack: s")),
              HasSubstr("error: 'environments.stg.region' is empty"));
  EXPECT_THAT(Errors(load("region: [eu-west-1], stack: s")),
              HasSubstr("error: expected a string for 'region', got a list"));
  EXPECT_THAT(Errors(load("region: eu-west-1, stack: s, codedeploy: orders")),
              HasSubstr("error: expected a mapping for 'environments.stg.codedeploy', got a "
                        "string (write `codedeploy: {application: APP, group: GROUP}`)"));
  EXPECT_THAT(Errors(load("region: eu-west-1, stack: s, params: [a]")),
              HasSubstr("error: expected a mapping for 'environments.stg.params', got a list"));
  EXPECT_THAT(Errors(load("region: eu-west-1, stack: s, requires: stg")),
              HasSubstr("error: expected a list for 'requires', got a string"));
  EXPECT_THAT(Errors(load("region: eu-west-1, stack: s, branches: []")),
              HasSubstr("error: 'branches' is an empty list"));
  EXPECT_THAT(Errors(WithEnvironments("environments:\n  stg:\n")),
              HasSubstr("pipeline.yml:6:3: error: expected a mapping for environment 'stg', got "
                        "nothing (write `stg: {region: eu-west-1, stack: STACK}`)"));
  EXPECT_THAT(Errors(WithEnvironments("environments: {}\n")),
              HasSubstr("error: 'environments' is empty"));
  EXPECT_THAT(Errors(WithEnvironments("environments: [stg]\n")),
              HasSubstr("pipeline.yml:5:15: error: expected a mapping for 'environments', got a "
                        "list"));
  EXPECT_THAT(Errors(WithEnvironments("environments:\n  " + std::string(65, 'e') +
                                      ": {region: eu-west-1, stack: s}\n")),
              HasSubstr("error: environment name is 65 bytes long: at most 64"));
  EXPECT_THAT(Errors(WithEnvironments("enviroments: {}\n")),
              HasSubstr("pipeline.yml:5:1: error: unknown key 'enviroments' at the top level "
                        "(did you mean 'environments'?)"));
}

TEST(PipelineLoaderTest, TwoEnvironmentsOnOneStackAreAnError) {
  EXPECT_THAT(Errors(WithEnvironments(R"(environments:
  stg: {region: eu-west-1, stack: orders}
  prd: {region: eu-west-1, stack: orders}
  dr: {region: eu-central-1, stack: orders}
)")),
              HasSubstr("pipeline.yml:7:3: error: environments 'stg' and 'prd' both deploy stack "
                        "'orders' in eu-west-1: give each its own stack"));
}

TEST(PipelineLoaderTest, RequiresCyclesAreReportedOnce) {
  EXPECT_EQ(Errors(WithEnvironments(R"(environments:
  dev: {region: eu-west-1, stack: d, requires: [prd]}
  stg: {region: eu-west-1, stack: s, requires: [dev]}
  prd: {region: eu-west-1, stack: p, requires: [stg]}
  qa: {region: eu-west-1, stack: q, requires: [dev]}
)")),
            "pipeline.yml:6:49: error: cycle in 'requires': dev -> prd -> stg -> dev\n"
            "  dev: {region: eu-west-1, stack: d, requires: [prd]}\n"
            "                                                ^\n");
  EXPECT_THAT(Errors(WithEnvironments(R"(environments:
  a: {region: eu-west-1, stack: a, requires: [b]}
  b: {region: eu-west-1, stack: b, requires: [a]}
)")),
              HasSubstr("pipeline.yml:6:47: error: cycle in 'requires': a -> b -> a\n"));
}

TEST(PipelineLoaderTest, ExpressionsAreRefusedInEnvironmentsAndTheLedger) {
  const std::string kWhy =
      "a deploy reads only what the build published (its manifest.json), so no build value "
      "exists to expand; write the value itself";
  std::string errors = Errors(WithEnvironments(R"(environments:
  stg:
    region: "${{ vars.region }}"
    stack: orders-${{ build.branch }}
    params: {Version: "${{ build.id }}"}
    branches: ["${{ build.branch }}"]
    codedeploy: {application: orders, group: "g-${{ vars.x }}"}
ledger: s3://b/${{ vars.y }}
)"));
  EXPECT_THAT(errors, HasSubstr("pipeline.yml:7:14: error: expressions are not allowed in "
                                "'environments.stg.region': " +
                                kWhy));
  EXPECT_THAT(errors, HasSubstr("pipeline.yml:8:19: error: expressions are not allowed in "
                                "'environments.stg.stack': " +
                                kWhy));
  EXPECT_THAT(errors, HasSubstr("pipeline.yml:9:24: error: expressions are not allowed in "
                                "'environments.stg.params.Version': " +
                                kWhy));
  EXPECT_THAT(errors, HasSubstr("pipeline.yml:10:17: error: expressions are not allowed in "
                                "'environments.stg.branches': " +
                                kWhy));
  EXPECT_THAT(errors, HasSubstr("pipeline.yml:11:49: error: expressions are not allowed in "
                                "'environments.stg.codedeploy.group': " +
                                kWhy));
  EXPECT_THAT(errors, HasSubstr("pipeline.yml:12:16: error: expressions are not allowed in "
                                "'ledger': deploys and `runner deployments` read the ledger "
                                "outside any build; write the value itself"));
  EXPECT_THAT(errors, Not(HasSubstr("invalid")));  // one error per value
}

TEST(PipelineLoaderTest, LedgerLocations) {
  for (const std::string ledger : {"s3://bkt/deploys/orders", "s3://bkt", "file:///srv/ledger",
                                   "file://rel/dir", ".runner/deployments", "/srv/ledger"}) {
    EXPECT_EQ(Load(WithEnvironments("ledger: " + ledger + "\n")).ledger, ledger);
  }
  EXPECT_EQ(Errors(WithEnvironments("ledger: s4://bkt/x\n")),
            "pipeline.yml:5:9: error: unknown scheme 's4' in 'ledger' (did you mean 's3'?): use "
            "s3://bucket/prefix, file:///abs/dir or a directory\n"
            "ledger: s4://bkt/x\n"
            "        ^\n");
  EXPECT_THAT(Errors(WithEnvironments("ledger: s3:///x\n")),
              HasSubstr("error: 'ledger' names no bucket: write s3://BUCKET/prefix"));
  EXPECT_THAT(Errors(WithEnvironments("ledger: file://\n")),
              HasSubstr("error: 'ledger' names no directory"));
  EXPECT_THAT(Errors(WithEnvironments("ledger: \"\"\n")),
              HasSubstr("error: 'ledger' is empty: remove it to record deploys in "
                        "STATE/deployments"));
  EXPECT_THAT(Errors(WithEnvironments("ledger: [a]\n")),
              HasSubstr("error: expected a string for 'ledger', got a list"));
}

// ---- the step cache (SPEC section 8)

TEST(PipelineLoaderTest, ReadsTheStepCacheAndTheSharedStore) {
  Pipeline p = Load(R"(version: 1
cache_store: s3://bkt/cache/
cache_write: [main, "release/*"]
steps:
  - id: compile
    cache:
      inputs: ["src/**", "!**/*.md"]
      outputs: [dist/app]
      env: [CC]
    run: make
  - id: bake
    cache: false
    run: make image
  - id: plain
    run: true
)");
  EXPECT_EQ(p.cache_store, "s3://bkt/cache/");
  EXPECT_EQ(p.cache_write, (std::vector<std::string>{"main", "release/*"}));
  ASSERT_TRUE(p.steps[0].cache.has_value());
  EXPECT_TRUE(p.steps[0].cache->enabled);
  EXPECT_EQ(p.steps[0].cache->inputs, (std::vector<std::string>{"src/**", "!**/*.md"}));
  EXPECT_EQ(p.steps[0].cache->outputs, std::vector<std::string>{"dist/app"});
  EXPECT_EQ(p.steps[0].cache->env, std::vector<std::string>{"CC"});
  ASSERT_TRUE(p.steps[1].cache.has_value());
  EXPECT_FALSE(p.steps[1].cache->enabled);
  EXPECT_FALSE(p.steps[2].cache.has_value());

  Pipeline defaults = Load(WithSteps("  - {id: a, run: x}\n"));
  EXPECT_EQ(defaults.cache_store, "");
  EXPECT_EQ(defaults.cache_write, std::vector<std::string>{"main"});
}

TEST(PipelineLoaderTest, BadCacheValuesAreErrorsAtTheirPlace) {
  EXPECT_EQ(Errors(WithSteps("  - id: a\n    run: x\n    cache: {inputs: [src], outptus: [d]}\n")),
            "pipeline.yml:5:28: error: unknown key 'outptus' in 'cache' of step 'a' (did you mean "
            "'outputs'?)\n"
            "    cache: {inputs: [src], outptus: [d]}\n"
            "                           ^\n");
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    run: x\n    cache: true\n")),
              HasSubstr("pipeline.yml:5:12: error: expected a mapping or `false` for 'cache', "
                        "got 'true'"));
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    run: x\n    cache: {inputs: [/etc/passwd]}\n")),
              HasSubstr("pipeline.yml:5:22: error: 'cache.inputs' takes paths relative to the "
                        "step's directory, got '/etc/passwd'"));
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    run: x\n    cache: {env: [1CC]}\n")),
              HasSubstr("pipeline.yml:5:19: error: invalid environment variable name '1CC' in "
                        "'cache.env'"));
  EXPECT_THAT(Errors(WithSteps("  - id: a\n    run: x\n    cache: {inputs: \"${{ vars.x }}\"}\n")),
              HasSubstr("error: expected a list for 'inputs', got a string"));
  EXPECT_THAT(
      Errors(WithSteps("  - id: a\n    run: x\n    cache: {inputs: [\"${{ build.id }}\"]}\n")),
      HasSubstr("error: expressions are not allowed in 'cache.inputs'"));
  EXPECT_THAT(Errors("version: 1\ncache_store: s4://x\nsteps:\n  - {id: a, run: x}\n"),
              HasSubstr("pipeline.yml:2:14: error: unknown scheme 's4' in 'cache_store'"));
  EXPECT_THAT(Errors("version: 1\ncache_write: []\nsteps:\n  - {id: a, run: x}\n"),
              HasSubstr("pipeline.yml:2:14: error: 'cache_write' is an empty list"));
}

TEST(PipelineLoaderTest, KindsThatPublishOrCacheThemselvesRefuseTheGenericCache) {
  LoadOptions options;
  options.kinds = &BuiltinKinds();
  EXPECT_THAT(Errors(WithSteps("  - id: up\n    upload: {to: s3://b/p/, files: [a]}\n"
                               "    cache: {inputs: [a]}\n"),
                     options),
              HasSubstr("pipeline.yml:5:12: error: 'upload' steps are never cached"));
  EXPECT_THAT(Errors(WithSteps("  - id: bake\n    packer: {template: t.pkr.hcl}\n"
                               "    cache: {inputs: [a]}\n"),
                     options),
              HasSubstr("pipeline.yml:5:12: error: 'packer' steps cache themselves: 'cache' takes "
                        "only `false` here"));
  Pipeline p = Load(
      WithSteps("  - id: bake\n    packer: {template: t.pkr.hcl}\n    cache: false\n"), options);
  EXPECT_FALSE(p.steps[0].cache->enabled);
}

}  // namespace
}  // namespace runner
