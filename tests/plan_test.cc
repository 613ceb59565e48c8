#include "runner/plan.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "runner/pipeline_loader.h"
#include "tests/test_kinds.h"

namespace runner {
namespace {

using ::testing::HasSubstr;

class PlanTest : public ::testing::Test {
 protected:
  void Load(const std::string& yaml) {
    Diagnostics diags("pipeline.yml", yaml);
    auto pipeline = ParsePipeline("pipeline.yml", yaml, testing::ShellOnlyLoadOptions(), diags);
    ASSERT_TRUE(pipeline) << diags.Format();
    pipeline_ = std::move(*pipeline);
    context_.id = "p-main-1";
    context_.branch = "main";
    context_.event = "push";
  }
  std::vector<std::string> Order(const Plan& plan) {
    std::vector<std::string> ids;
    for (const PlannedStep& step : plan.steps) ids.push_back(step.step->id);
    return ids;
  }
  Pipeline pipeline_;
  BuildContext context_;
};

TEST_F(PlanTest, OrdersByNeedsKeepingFileOrderAmongEquals) {
  Load(R"(version: 1
steps:
  - {id: publish, needs: [zip, params], run: x}
  - {id: compile, needs: [], run: x}
  - {id: zip, needs: [compile], run: x}
  - {id: params, needs: [], run: x}
)");
  auto plan = MakePlan(pipeline_, context_, {});
  ASSERT_TRUE(plan);
  EXPECT_EQ(Order(*plan), (std::vector<std::string>{"compile", "zip", "params", "publish"}));
}

TEST_F(PlanTest, OnlyKeepsTransitiveNeeds) {
  Load(R"(version: 1
steps:
  - {id: a, run: x}
  - {id: b, run: x}
  - {id: c, run: x}
  - {id: d, needs: [a], run: x}
)");
  auto plan = MakePlan(pipeline_, context_, {"b", "d"});
  ASSERT_TRUE(plan);
  EXPECT_EQ(Order(*plan), (std::vector<std::string>{"a", "b", "d"}));
}

TEST_F(PlanTest, OnlyWithUnknownStepIsAnError) {
  Load("version: 1\nsteps:\n  - {id: compile, run: x}\n");
  auto plan = MakePlan(pipeline_, context_, {"compil"});
  ASSERT_FALSE(plan);
  EXPECT_EQ(plan.error(), "--only: no step 'compil' in pipeline.yml (did you mean 'compile'?)");
}

TEST_F(PlanTest, WhenBranchEventAndChanged) {
  context_.branch = "feature/login";
  context_.event = "push";
  context_.changed_files = std::vector<std::string>{"src/app/main.go", "README.md"};
  WhenCondition when;
  when.branches = std::vector<std::string>{"main", "release/*"};
  EXPECT_EQ(EvaluateWhen(when, context_, nullptr),
            "branch 'feature/login' matches none of main, release/*");
  when.branches = std::vector<std::string>{"feature/*"};
  EXPECT_EQ(EvaluateWhen(when, context_, nullptr), std::nullopt);
  when.events = std::vector<std::string>{"tag"};
  EXPECT_EQ(EvaluateWhen(when, context_, nullptr), "event 'push' is not one of tag");
  when.events.reset();
  when.changed = std::vector<std::string>{"docs/**"};
  EXPECT_EQ(EvaluateWhen(when, context_, nullptr), "no changed file matches docs/**");
  when.changed = std::vector<std::string>{"src/**/*.go"};
  EXPECT_EQ(EvaluateWhen(when, context_, nullptr), std::nullopt);
}

TEST_F(PlanTest, UnknownChangedFilesRunTheStepWithANote) {
  WhenCondition when;
  when.changed = std::vector<std::string>{"docs/**"};
  std::optional<std::string> note;
  EXPECT_EQ(EvaluateWhen(when, context_, &note), std::nullopt);
  EXPECT_THAT(note.value_or(""), HasSubstr("changed files unknown"));
}

TEST_F(PlanTest, FormatShowsNeedsAndSkips) {
  Load(R"(version: 1
steps:
  - {id: compile, run: x}
  - {id: deploy, run: x, when: {branch: release}}
)");
  auto plan = MakePlan(pipeline_, context_, {});
  ASSERT_TRUE(plan);
  EXPECT_EQ(FormatPlan(*plan, context_),
            "build p-main-1 (branch main, commit unknown, event push)\n"
            "  1. compile (run)\n"
            "  2. deploy (run)  needs: compile  [skipped: branch 'main' matches none of "
            "release]\n");
}

}  // namespace
}  // namespace runner
