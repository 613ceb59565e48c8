#include "runner/scheduler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "runner/build.h"
#include "tests/fake_process_runner.h"
#include "tests/test_kinds.h"
#include "tests/test_util.h"

namespace runner {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Pair;

class RecordingObserver : public BuildObserver {
 public:
  std::vector<std::string> events;
  void BuildStarted(const BuildRecord&) override { events.push_back("build-started"); }
  void StepStarted(const StepRecord& step) override { events.push_back("start " + step.id); }
  void StepOutput(const StepRecord& step, std::string_view text) override {
    output[step.id] += text;
  }
  void StepFinished(const StepRecord& step) override {
    events.push_back(std::string("end ") + step.id + " " + std::string(StatusName(step.status)));
  }
  void BuildFinished(const BuildRecord&) override { events.push_back("build-finished"); }
  std::map<std::string, std::string> output;
};

class SchedulerTest : public ::testing::Test {
 protected:
  BuildRecord Run(const std::string& yaml, int jobs = 4) {
    testing::WriteTextFile(dir_ / "pipeline.yml", yaml);
    BuildRequest request;
    request.pipeline = dir_ / "pipeline.yml";
    request.only = only_;
    request.jobs = jobs;
    request.environment = environment_;
    request.state_dir = dir_ / "state";
    BuildContext context;
    context.project = "orders";
    context.branch = branch_;
    context.number = "7";
    context.id = "orders-" + branch_ + "-7";
    context.event = "push";
    context.workspace = dir_.path();
    context.changed_files = std::vector<std::string>{"src/main.cc"};
    request.context = context;
    auto record = RunBuild(request, testing::ShellOnlyKinds(), fake_, observer_);
    EXPECT_TRUE(record.has_value()) << record.error().diagnostics << record.error().message;
    if (!record) return {};
    build_dir_ = record->dir;
    return *record;
  }

  static const StepRecord& Step(const BuildRecord& build, const std::string& id) {
    for (const StepRecord& step : build.steps) {
      if (step.id == id) return step;
    }
    static StepRecord none;
    ADD_FAILURE() << "no step " << id;
    return none;
  }

  std::string Log(const std::string& id) {
    return testing::ReadTextFile(build_dir_ + "/logs/" + id + ".log");
  }

  testing::TempDir dir_;
  Environment environment_{{"PATH", "/usr/bin:/bin"}, {"HOME", "/root"}};
  std::string branch_ = "main";
  std::vector<std::string> only_;
  std::string build_dir_;
  FakeProcessRunner fake_;
  RecordingObserver observer_;
};

TEST_F(SchedulerTest, PlainListRunsInFileOrder) {
  BuildRecord build = Run(R"(version: 1
steps:
  - {id: a, run: "true"}
  - {id: b, run: "true"}
  - {id: c, run: "true"}
)");
  EXPECT_EQ(build.status, "success");
  EXPECT_EQ(build.exit_code, 0);
  EXPECT_THAT(fake_.start_order, ElementsAre("a", "b", "c"));
  EXPECT_EQ(fake_.max_running, 1);
}

TEST_F(SchedulerTest, IndependentStepsRunInParallelUpToTheJobLimit) {
  BuildRecord build = Run(R"(version: 1
steps:
  - {id: a, needs: [], run: "true"}
  - {id: b, needs: [], run: "true"}
  - {id: c, needs: [], run: "true"}
  - {id: d, needs: [], run: "true"}
  - {id: e, needs: [], run: "true"}
)",
                          2);
  EXPECT_EQ(build.status, "success");
  EXPECT_EQ(fake_.max_running, 2);
  EXPECT_EQ(fake_.started.size(), 5u);
}

TEST_F(SchedulerTest, ShellStepGetsBashCommandAndBuildEnvironment) {
  Run(R"(version: 1
env: {GOFLAGS: -trimpath}
steps:
  - id: compile
    env: {MODE: release}
    run: make all
)");
  ASSERT_EQ(fake_.started.size(), 1u);
  const ProcessSpec& spec = fake_.started[0];
  EXPECT_THAT(spec.argv,
              ElementsAre("bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", "make all"));
  EXPECT_EQ(spec.cwd, dir_.path());
  EXPECT_EQ(FakeProcessRunner::Env(spec, "GOFLAGS"), "-trimpath");
  EXPECT_EQ(FakeProcessRunner::Env(spec, "MODE"), "release");
  EXPECT_EQ(FakeProcessRunner::Env(spec, "RUNNER_BUILD_ID"), "orders-main-7");
  EXPECT_EQ(FakeProcessRunner::Env(spec, "RUNNER_STEP"), "compile");
  EXPECT_EQ(FakeProcessRunner::Env(spec, "RUNNER_BRANCH"), "main");
  EXPECT_EQ(FakeProcessRunner::Env(spec, "PATH"), "/usr/bin:/bin");
  EXPECT_EQ(spec.kill_grace, std::chrono::seconds(10));
}

// Each variable once, whatever sets it: the step's env over the pipeline's over the runner's,
// and the runner's own values over all of them (a nested runner inherits the outer step's).
TEST_F(SchedulerTest, StepEnvironmentHasEachVariableOnceWithTheRunnersValuesLast) {
  environment_["RUNNER_STEP"] = "outer";
  environment_["RUNNER_OUTPUT"] = "/outer/out";
  environment_["MODE"] = "from-runner";
  environment_["LEVEL"] = "from-runner";
  environment_["AAA"] = "first";
  environment_["ZZZ"] = "last";
  Run(R"(version: 1
env: {MODE: from-pipeline, LEVEL: from-pipeline}
steps:
  - id: plain
    run: "true"
  - id: own
    env: {LEVEL: from-step, RUNNER_PROJECT: spoofed, A: new-first, ZZZZ: new-last}
    run: "true"
)");
  ASSERT_EQ(fake_.started.size(), 2u);
  for (const ProcessSpec& spec : fake_.started) {
    std::vector<std::string> names;
    for (const std::string& entry : spec.env) names.push_back(entry.substr(0, entry.find('=')));
    std::vector<std::string> sorted = names;
    std::ranges::sort(sorted);
    EXPECT_EQ(std::ranges::adjacent_find(sorted), sorted.end()) << "a variable twice";
    EXPECT_EQ(FakeProcessRunner::Env(spec, "MODE"), "from-pipeline");
    EXPECT_EQ(FakeProcessRunner::Env(spec, "RUNNER_PROJECT"), "orders");
    EXPECT_EQ(FakeProcessRunner::Env(spec, "AAA"), "first");
    EXPECT_EQ(FakeProcessRunner::Env(spec, "ZZZ"), "last");
    EXPECT_NE(FakeProcessRunner::Env(spec, "RUNNER_OUTPUT"), "/outer/out");
  }
  const ProcessSpec& plain = fake_.started[0];
  const ProcessSpec& own = fake_.started[1];
  EXPECT_EQ(FakeProcessRunner::Env(plain, "RUNNER_STEP"), "plain");
  EXPECT_EQ(FakeProcessRunner::Env(plain, "LEVEL"), "from-pipeline");
  EXPECT_EQ(FakeProcessRunner::Env(own, "RUNNER_STEP"), "own");
  EXPECT_EQ(FakeProcessRunner::Env(own, "LEVEL"), "from-step");
  EXPECT_EQ(FakeProcessRunner::Env(own, "A"), "new-first");
  EXPECT_EQ(FakeProcessRunner::Env(own, "ZZZZ"), "new-last");
}

TEST_F(SchedulerTest, FailedNeedSkipsDependantsWhileIndependentStepsFinish) {
  fake_.script["build"] = {FakeAttempt().Prints("boom\n").Exits(2)};
  BuildRecord build = Run(R"(version: 1
steps:
  - {id: build, needs: [], run: "false"}
  - {id: test, needs: [build], run: "true"}
  - {id: publish, needs: [test], run: "true"}
  - {id: lint, needs: [], run: "true"}
)");
  EXPECT_EQ(build.status, "failed");
  EXPECT_EQ(build.exit_code, 1);
  EXPECT_EQ(Step(build, "build").status, StepStatus::kFailed);
  EXPECT_EQ(Step(build, "build").exit_code, 2);
  EXPECT_EQ(Step(build, "build").message, "exit code 2");
  EXPECT_EQ(Step(build, "test").status, StepStatus::kSkipped);
  EXPECT_EQ(Step(build, "test").message, "need 'build' failed");
  EXPECT_EQ(Step(build, "publish").status, StepStatus::kSkipped);
  EXPECT_EQ(Step(build, "lint").status, StepStatus::kSuccess);
  EXPECT_EQ(Log("build"), "boom\n");
}

TEST_F(SchedulerTest, StepSkippedByWhenSatisfiesItsDependants) {
  branch_ = "feature-x";
  BuildRecord build = Run(R"(version: 1
steps:
  - {id: a, run: "true", when: {branch: main}}
  - {id: b, run: "true"}
  - {id: c, run: "true", when: {changed: ["docs/**"]}}
  - {id: d, run: "true", when: {changed: ["src/**"], event: [push]}}
)");
  EXPECT_EQ(build.status, "success");
  EXPECT_EQ(Step(build, "a").status, StepStatus::kSkipped);
  EXPECT_THAT(Step(build, "a").message, HasSubstr("branch 'feature-x'"));
  EXPECT_EQ(Step(build, "b").status, StepStatus::kSuccess);
  EXPECT_EQ(Step(build, "c").status, StepStatus::kSkipped);
  EXPECT_EQ(Step(build, "d").status, StepStatus::kSuccess);
  EXPECT_THAT(fake_.start_order, ElementsAre("b", "d"));
}

TEST_F(SchedulerTest, RetryRunsAgainAfterFailureUntilSuccess) {
  fake_.script["flaky"] = {FakeAttempt().Prints("try 1\n").Exits(1),
                           FakeAttempt().Prints("try 2\n").Exits(1),
                           FakeAttempt().Prints("try 3\n")};
  BuildRecord build = Run(R"(version: 1
steps:
  - {id: flaky, run: "true", retry: {limit: 2, delay: 10ms}}
)");
  EXPECT_EQ(build.status, "success");
  EXPECT_EQ(Step(build, "flaky").attempts, 3);
  std::string log = Log("flaky");
  EXPECT_THAT(log, HasSubstr("try 1\n"));
  EXPECT_THAT(log, HasSubstr("runner: attempt 1 exit code 1; retrying in"));
  EXPECT_THAT(log, HasSubstr("runner: attempt 3 of 3\ntry 3\n"));
}

TEST_F(SchedulerTest, RetryGivesUpAfterTheLimit) {
  fake_.script["flaky"] = {FakeAttempt().Exits(1)};
  BuildRecord build = Run(R"(version: 1
steps:
  - {id: flaky, run: "true", retry: 1}
)");
  EXPECT_EQ(Step(build, "flaky").status, StepStatus::kFailed);
  EXPECT_EQ(Step(build, "flaky").attempts, 2);
}

TEST_F(SchedulerTest, StepTimeoutTerminatesAndRecordsTimedOut) {
  fake_.script["slow"] = {FakeAttempt().Hangs()};
  BuildRecord build = Run(R"(version: 1
steps:
  - {id: slow, run: "sleep 100", timeout: 50ms}
  - {id: after, run: "true"}
)");
  EXPECT_EQ(build.status, "failed");
  EXPECT_EQ(build.exit_code, 1);
  EXPECT_EQ(Step(build, "slow").status, StepStatus::kTimedOut);
  EXPECT_THAT(fake_.terminated, ElementsAre(Pair("slow", SIGTERM)));
  EXPECT_EQ(Step(build, "after").status, StepStatus::kSkipped);
  EXPECT_THAT(Log("slow"), HasSubstr("runner: timed out after"));
}

TEST_F(SchedulerTest, BuildTimeoutStopsRunningStepsAndCancelsTheRest) {
  fake_.script["slow"] = {FakeAttempt().Hangs()};
  BuildRecord build = Run(R"(version: 1
timeout: 50ms
steps:
  - {id: slow, run: "sleep 100"}
  - {id: after, run: "true"}
)");
  EXPECT_EQ(build.status, "timed_out");
  EXPECT_EQ(build.exit_code, 1);
  EXPECT_EQ(Step(build, "slow").status, StepStatus::kTimedOut);
  EXPECT_EQ(Step(build, "after").status, StepStatus::kCancelled);
}

TEST_F(SchedulerTest, SignalCancelsRunningAndPendingSteps) {
  fake_.script["slow"] = {FakeAttempt().Hangs()};
  fake_.on_wait = [sent = false](FakeProcessRunner& fake) mutable {
    if (!sent && fake.running() == 1) {
      fake.pending_signals.push_back(SIGTERM);
      sent = true;
    }
  };
  BuildRecord build = Run(R"(version: 1
steps:
  - {id: slow, run: "sleep 100"}
  - {id: after, run: "true"}
)");
  EXPECT_EQ(build.status, "cancelled");
  EXPECT_EQ(build.exit_code, 143);
  EXPECT_THAT(fake_.terminated, ElementsAre(Pair("slow", SIGTERM)));
  EXPECT_EQ(Step(build, "slow").status, StepStatus::kCancelled);
  EXPECT_EQ(Step(build, "after").status, StepStatus::kCancelled);
  EXPECT_THAT(fake_.start_order, ElementsAre("slow"));
}

TEST_F(SchedulerTest, SecondSigintKillsAtOnce) {
  fake_.script["stubborn"] = {FakeAttempt().Hangs(true)};
  fake_.on_wait = [count = 0](FakeProcessRunner& fake) mutable {
    if (fake.running() == 1 && count < 2) {
      fake.pending_signals.push_back(SIGINT);
      ++count;
    }
  };
  BuildRecord build = Run(R"(version: 1
steps:
  - {id: stubborn, run: "sleep 100", kill_grace: 1h}
)");
  EXPECT_EQ(build.exit_code, 130);
  EXPECT_THAT(fake_.terminated, ElementsAre(Pair("stubborn", SIGINT)));
  EXPECT_THAT(fake_.killed, ElementsAre("stubborn"));
  EXPECT_EQ(Step(build, "stubborn").status, StepStatus::kCancelled);
}

TEST_F(SchedulerTest, OutputsFlowIntoLaterStepsEnv) {
  fake_.script["bake"] = {
      FakeAttempt().WritesOutputs("ami_id=ami-123\nnotes<<EOF\nline one\nline two\nEOF\n")};
  BuildRecord build = Run(R"(version: 1
steps:
  - {id: bake, run: "true"}
  - id: params
    env:
      AMI: "${{ steps.bake.outputs.ami_id }}"
      NOTES: "${{ steps.bake.outputs.notes }}"
      STATUS: "${{ steps.bake.status }}"
    run: "true"
)");
  EXPECT_EQ(build.status, "success");
  EXPECT_THAT(Step(build, "bake").outputs,
              ElementsAre(Pair("ami_id", "ami-123"), Pair("notes", "line one\nline two")));
  ASSERT_EQ(fake_.started.size(), 2u);
  EXPECT_EQ(FakeProcessRunner::Env(fake_.started[1], "AMI"), "ami-123");
  EXPECT_EQ(FakeProcessRunner::Env(fake_.started[1], "NOTES"), "line one\nline two");
  EXPECT_EQ(FakeProcessRunner::Env(fake_.started[1], "STATUS"), "success");
}

TEST_F(SchedulerTest, MissingOutputFailsTheStepInsteadOfPassingAnEmptyValue) {
  BuildRecord build = Run(R"(version: 1
steps:
  - {id: bake, run: "true"}
  - {id: params, env: {AMI: "${{ steps.bake.outputs.ami_id }}"}, run: "true"}
)");
  EXPECT_EQ(build.status, "failed");
  EXPECT_EQ(Step(build, "params").status, StepStatus::kFailed);
  EXPECT_EQ(Step(build, "params").message, "env AMI: step 'bake' (success) has no output 'ami_id'");
  EXPECT_EQ(fake_.started.size(), 1u);
}

TEST_F(SchedulerTest, MalformedOutputFileFailsTheStep) {
  fake_.script["bake"] = {FakeAttempt().WritesOutputs("this is not an output\n")};
  BuildRecord build = Run(R"(version: 1
steps:
  - {id: bake, run: "true"}
)");
  EXPECT_EQ(Step(build, "bake").status, StepStatus::kFailed);
  EXPECT_THAT(Step(build, "bake").message, HasSubstr("RUNNER_OUTPUT line 1"));
}

TEST_F(SchedulerTest, SecretsAreMaskedInLogsOutputsAndMessages) {
  environment_["DB_PASSWORD"] = "hunter2-very-secret";
  fake_.script["leak"] = {FakeAttempt()
                              .Prints("password is hunter2-very-secret\n")
                              .WritesOutputs("pw=hunter2-very-secret\n")};
  BuildRecord build = Run(R"(version: 1
secrets: [DB_PASSWORD]
steps:
  - {id: leak, run: "true"}
)");
  EXPECT_EQ(Log("leak"), "password is ***\n");
  EXPECT_EQ(observer_.output["leak"], "password is ***\n");
  EXPECT_EQ(Step(build, "leak").log_tail, "password is ***\n");
}

TEST_F(SchedulerTest, OnlyRunsTheNamedStepsAndTheirNeeds) {
  only_ = {"test"};
  BuildRecord build = Run(R"(version: 1
steps:
  - {id: compile, run: "true"}
  - {id: test, run: "true"}
  - {id: publish, run: "true"}
  - {id: lint, needs: [], run: "true"}
)");
  EXPECT_THAT(fake_.start_order, ElementsAre("compile", "test"));
  EXPECT_EQ(build.steps.size(), 2u);
}

TEST_F(SchedulerTest, VarsAndDirAreExpanded) {
  BuildRecord build = Run(R"(version: 1
vars: {store: "file:///srv/store", sub: "svc"}
steps:
  - id: publish
    dir: "services/${{ vars.sub }}"
    env: {TO: "${{ vars.store }}/${{ build.branch }}/${{ build.id }}/"}
    run: "true"
)");
  EXPECT_EQ(build.status, "success");
  EXPECT_EQ(FakeProcessRunner::Env(fake_.started[0], "TO"),
            "file:///srv/store/main/orders-main-7/");
  EXPECT_EQ(fake_.started[0].cwd, dir_.path() + "/services/svc");
}

TEST_F(SchedulerTest, DirExpandingOutsideTheWorkspaceFailsTheStep) {
  BuildRecord build = Run(R"(version: 1
vars: {up: "../.."}
steps:
  - {id: escape, dir: "sub/${{ vars.up }}", run: "true"}
)");
  EXPECT_EQ(Step(build, "escape").status, StepStatus::kFailed);
  EXPECT_THAT(Step(build, "escape").message, HasSubstr("is outside the workspace"));
  EXPECT_TRUE(fake_.started.empty());
}

TEST_F(SchedulerTest, SecretsAreMaskedWhereverTheirValueIsSet) {
  // From the runner's environment, from the pipeline's env, and from a step's env fed by an
  // earlier step's output (a login's token): each is masked in the logs, the console, the
  // outputs and the records.
  environment_["FROM_RUNNER"] = "runner-env-secret";
  fake_.script["login"] = {FakeAttempt().WritesOutputs("token=tok-from-login-42\n")};
  for (const char* id : {"use", "again"}) {
    fake_.script[id] = {FakeAttempt()
                            .Prints("t=tok-from-login-42 p=pipeline-env-secret "
                                    "r=runner-env-secret u=tok%2Dfrom%2Dlogin%2D42\n")
                            .WritesOutputs("echo=tok-from-login-42\n")};
  }
  BuildRecord build = Run(R"(version: 1
env: {FROM_PIPELINE: pipeline-env-secret}
secrets: [FROM_RUNNER, FROM_PIPELINE, TOKEN]
steps:
  - {id: login, run: "true"}
  - {id: use, env: {TOKEN: "${{ steps.login.outputs.token }}"}, run: "true"}
  - {id: again, run: "true"}
)");
  EXPECT_EQ(build.status, "success");
  EXPECT_EQ(FakeProcessRunner::Env(fake_.started[1], "TOKEN"), "tok-from-login-42");
  for (const char* id : {"use", "again"}) {
    EXPECT_EQ(Log(id), "t=*** p=*** r=*** u=***\n") << id;
    EXPECT_EQ(observer_.output[id], "t=*** p=*** r=*** u=***\n") << id;
  }
  std::string records = testing::ReadTextFile(build_dir_ + "/report.json") +
                        testing::ReadTextFile(build_dir_ + "/junit.xml");
  EXPECT_THAT(records, Not(HasSubstr("tok-from-login")));
  EXPECT_THAT(records, HasSubstr("\"token\": \"***\""));
  EXPECT_THAT(records, HasSubstr("\"echo\": \"***\""));
}

TEST_F(SchedulerTest, AStepThatNeverPrintsANewlineKeepsABoundedTail) {
  environment_["PW"] = "pw-secret";
  std::string line;
  for (int i = 0; i < 200000; ++i) line += i % 1000 == 0 ? "pw-secret" : "a";
  fake_.script["long"] = {FakeAttempt().Prints(line).Exits(1)};
  BuildRecord build = Run("version: 1\nsecrets: [PW]\nsteps:\n  - {id: long, run: \"true\"}\n");
  SecretMasker masker({"pw-secret"});
  std::string masked = masker.Mask(line);
  EXPECT_EQ(Log("long"), masked);
  EXPECT_EQ(Step(build, "long").log_tail, masked.substr(masked.size() - 16 * 1024));
}

// SPEC section 3: expressions may appear in any string value but `run`, a step's `name` too.
TEST_F(SchedulerTest, StepNamesAreExpandedWhenTheStepStarts) {
  fake_.script["login"] = {FakeAttempt().WritesOutputs("user=ci\n")};
  BuildRecord build = Run(R"(version: 1
vars: {stage: stg}
steps:
  - {id: login, name: "log in on ${{ build.branch }}", run: "true"}
  - {id: deploy, name: "deploy to ${{ vars.stage }} as ${{ steps.login.outputs.user }}", run: "true"}
  - {id: plain, run: "true"}
)");
  EXPECT_EQ(Step(build, "login").name, "log in on main");
  EXPECT_EQ(Step(build, "deploy").name, "deploy to stg as ci");
  EXPECT_EQ(Step(build, "plain").name, "plain");
}

// Issue 9, item 7: a step's `dir` stays inside the workspace after expansion and symlinks.
TEST_F(SchedulerTest, DirOutsideTheWorkspaceFailsTheStepBeforeItStarts) {
  std::filesystem::create_directories(dir_ / "inside/sub");
  std::filesystem::create_directory_symlink("/tmp", dir_ / "out");
  std::filesystem::create_directory_symlink(dir_ / "inside", dir_ / "in");
  auto run_in = [&](const std::string& dir) {
    fake_.started.clear();
    std::filesystem::remove_all(dir_ / "state");
    return Run("version: 1\nvars: {d: \"" + dir +
               "\"}\nsteps:\n  - id: a\n    dir: \"${{ vars.d }}\"\n    run: \"true\"\n");
  };
  for (std::string dir : {"..", "/etc", "out", "out/x", "inside/../../x"}) {
    BuildRecord build = run_in(dir);
    EXPECT_EQ(Step(build, "a").status, StepStatus::kFailed) << dir;
    EXPECT_THAT(Step(build, "a").message, HasSubstr("dir '" + dir + "'")) << dir;
    EXPECT_THAT(Step(build, "a").message, HasSubstr("outside the workspace")) << dir;
    EXPECT_TRUE(fake_.started.empty()) << dir;
  }
  for (std::string dir : {"inside/sub", "in/sub", "inside/../inside"}) {
    BuildRecord build = run_in(dir);
    EXPECT_EQ(Step(build, "a").status, StepStatus::kSuccess) << dir << Step(build, "a").message;
    ASSERT_EQ(fake_.started.size(), 1u) << dir;
    std::string expected = dir == "inside/../inside" ? "inside" : "inside/sub";
    EXPECT_EQ(fake_.started[0].cwd, std::filesystem::canonical(dir_ / expected).string()) << dir;
  }
}

}  // namespace
}  // namespace runner
