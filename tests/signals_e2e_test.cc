// Real signals to the built binary: running steps' process groups get the signal, SIGKILL
// follows the grace, the records are still written, and no process is left behind.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/e2e_util.h"

namespace runner::testing {
namespace {

using ::testing::HasSubstr;

namespace fs = std::filesystem;

class SignalsTest : public ::testing::Test {
 protected:
  void SetUp() override { fs::create_directories(dir_ / "out"); }

  std::unique_ptr<RunnerProcess> Start(const std::string& yaml) {
    WriteTextFile(dir_ / "pipeline.yml", yaml);
    return std::make_unique<RunnerProcess>(
        std::vector<std::string>{"run", "--branch", "main", "--build-number", "1"}, dir_.path(),
        env_, dir_ / "out");
  }
  bool AwaitFile(const std::string& name) {
    return AwaitCondition(
        [&] { return fs::exists(dir_ / name) && fs::file_size(dir_ / name) > 0; });
  }
  pid_t PidFrom(const std::string& name) { return std::stoi(ReadTextFile(dir_ / name)); }
  nlohmann::json Report() {
    return nlohmann::json::parse(ReadTextFile(dir_ / ".runner/builds/p-main-1/report.json"));
  }

  TempDir dir_;
  std::map<std::string, std::string> env_ = BaseEnv();
};

TEST_F(SignalsTest, SigtermReachesTheStepGroupAndRecordsAreWritten) {
  auto runner = Start(R"(version: 1
project: p
steps:
  - id: work
    run: |
      trap 'echo cleaned > cleaned; exit 1' TERM
      sleep 1000 & echo $! > bg.pid
      echo $$ > step.pid
      wait
  - {id: after, run: "touch after"}
)");
  ASSERT_TRUE(AwaitFile("step.pid"));
  ASSERT_TRUE(AwaitFile("bg.pid"));
  pid_t step = PidFrom("step.pid");
  pid_t background = PidFrom("bg.pid");
  runner->Signal(SIGTERM);
  RunResult result = runner->Wait(std::chrono::seconds(30));
  EXPECT_EQ(result.exit_code, 143);
  EXPECT_EQ(ReadTextFile(dir_ / "cleaned"), "cleaned\n");
  EXPECT_FALSE(ProcessExists(step));
  EXPECT_FALSE(ProcessExists(background));
  EXPECT_FALSE(fs::exists(dir_ / "after"));
  auto report = Report();
  EXPECT_EQ(report["status"], "cancelled");
  EXPECT_EQ(report["steps"][0]["status"], "cancelled");
  EXPECT_EQ(report["steps"][1]["status"], "cancelled");
}

TEST_F(SignalsTest, SigintExits130) {
  auto runner = Start(R"(version: 1
project: p
steps:
  - {id: work, run: "echo $$ > step.pid; sleep 1000"}
)");
  ASSERT_TRUE(AwaitFile("step.pid"));
  runner->Signal(SIGINT);
  RunResult result = runner->Wait(std::chrono::seconds(30));
  EXPECT_EQ(result.exit_code, 130);
  EXPECT_FALSE(ProcessExists(PidFrom("step.pid")));
  EXPECT_EQ(Report()["steps"][0]["status"], "cancelled");
}

TEST_F(SignalsTest, StepIgnoringTheSignalIsKilledAfterItsGrace) {
  auto runner = Start(R"(version: 1
project: p
steps:
  - id: stubborn
    kill_grace: 500ms
    run: |
      trap '' TERM
      echo $$ > step.pid
      while true; do sleep 0.1; done
)");
  ASSERT_TRUE(AwaitFile("step.pid"));
  auto start = std::chrono::steady_clock::now();
  runner->Signal(SIGTERM);
  RunResult result = runner->Wait(std::chrono::seconds(30));
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(result.exit_code, 143);
  EXPECT_GE(took, std::chrono::milliseconds(400));
  EXPECT_LT(took, std::chrono::seconds(10));
  EXPECT_FALSE(ProcessExists(PidFrom("step.pid")));
  EXPECT_EQ(Report()["steps"][0]["exit_code"], 137);
}

TEST_F(SignalsTest, SecondSigintKillsAtOnce) {
  auto runner = Start(R"(version: 1
project: p
steps:
  - id: slow-cleanup
    kill_grace: 1h
    run: |
      trap 'echo x > cleaning; sleep 1000' INT
      echo $$ > step.pid
      while true; do sleep 0.1; done
)");
  ASSERT_TRUE(AwaitFile("step.pid"));
  runner->Signal(SIGINT);
  ASSERT_TRUE(AwaitFile("cleaning"));
  runner->Signal(SIGINT);
  RunResult result = runner->Wait(std::chrono::seconds(30));
  EXPECT_EQ(result.exit_code, 130);
  EXPECT_FALSE(ProcessExists(PidFrom("step.pid")));
}

TEST_F(SignalsTest, BackgroundChildrenDoNotOutliveTheirStep) {
  auto runner = Start(R"(version: 1
project: p
steps:
  - id: leaves-child
    kill_grace: 1s
    run: |
      sleep 1000 &
      echo $! > bg.pid
      echo done
  - {id: next, run: "touch next"}
)");
  RunResult result = runner->Wait(std::chrono::seconds(30));
  EXPECT_EQ(result.exit_code, 0) << result.out;
  EXPECT_TRUE(fs::exists(dir_ / "next"));
  EXPECT_FALSE(ProcessExists(PidFrom("bg.pid")));
  EXPECT_EQ(Report()["steps"][0]["status"], "success");
}

TEST_F(SignalsTest, ChildrenGetDefaultSignalsEvenWhenTheRunnerInheritsThemIgnored) {
  // As when started with `&` from a non-interactive shell: SIGINT ignored, and an ignored
  // signal survives exec.
  struct sigaction ignore {
  }, old{};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGINT, &ignore, &old);
  auto runner = Start(R"(version: 1
project: p
steps:
  - {id: work, run: "echo $$ > step.pid; exec sleep 1000"}
)");
  ::sigaction(SIGINT, &old, nullptr);
  ASSERT_TRUE(AwaitFile("step.pid"));
  pid_t sleeper = PidFrom("step.pid");
  // A Ctrl-C aimed at the step's process group alone: the sleep must die of it, or the build
  // would hang here.
  ::kill(-sleeper, SIGINT);
  RunResult result = runner->Wait(std::chrono::seconds(10));
  EXPECT_FALSE(ProcessExists(sleeper));
  EXPECT_EQ(result.exit_code, 1) << result.out;
  EXPECT_EQ(Report()["steps"][0]["exit_code"], 130);
}

}  // namespace
}  // namespace runner::testing
