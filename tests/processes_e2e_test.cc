// No process of a build outlives the runner (SPEC section 5): not one that left its step's
// process group (setsid, set -m, a daemon's double fork), not on SIGHUP, and not when the runner
// itself is killed with SIGKILL. Every process of a step carries a marker in its environment
// (the step's `env`), so the test finds them wherever they went.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/e2e_util.h"

namespace runner::testing {
namespace {

using ::testing::HasSubstr;

namespace fs = std::filesystem;

class ProcessesTest : public ::testing::Test {
 protected:
  void SetUp() override { fs::create_directories(dir_ / "out"); }
  // Whatever happened, nothing the test started stays behind.
  void TearDown() override {
    for (pid_t pid : ProcessesWithEnv(marker_)) ::kill(pid, SIGKILL);
  }

  // A pipeline of one step `work` running `script`, every process of it carrying the marker;
  // the runner's environment is BaseEnv() with `env` added.
  std::unique_ptr<RunnerProcess> Start(const std::string& script,
                                       const std::string& kill_grace = "2s",
                                       const std::map<std::string, std::string>& env = {}) {
    std::string indented;
    for (size_t start = 0; start < script.size();) {
      size_t end = script.find('\n', start);
      if (end == std::string::npos) end = script.size();
      indented += "      " + script.substr(start, end - start) + "\n";
      start = end + 1;
    }
    WriteTextFile(dir_ / "pipeline.yml",
                  "version: 1\nproject: p\nsteps:\n  - id: work\n"
                  "    kill_grace: " +
                      kill_grace + "\n    env: {" + marker_.substr(0, marker_.find('=')) + ": " +
                      marker_.substr(marker_.find('=') + 1) + "}\n    run: |\n" + indented);
    std::map<std::string, std::string> runner_env = BaseEnv();
    runner_env.insert(env.begin(), env.end());
    return std::make_unique<RunnerProcess>(
        std::vector<std::string>{"run", "--branch", "main", "--build-number", "1"}, dir_.path(),
        runner_env, dir_ / "out");
  }
  bool NoneLeft() {
    return AwaitCondition([&] { return ProcessesWithEnv(marker_).empty(); },
                          std::chrono::seconds(10));
  }
  nlohmann::json Report() {
    return nlohmann::json::parse(ReadTextFile(dir_ / ".runner/builds/p-main-1/report.json"));
  }

  TempDir dir_;
  // Unique to this test run: the temporary directory's name.
  std::string marker_ = "RUNNER_TEST_MARK=" + fs::path(dir_.path()).filename().string();
};

TEST_F(ProcessesTest, SetsidProcessDoesNotOutliveItsStep) {
  auto runner = Start("setsid sleep 1000 > /dev/null 2>&1 &\necho started");
  RunResult result = runner->Wait(std::chrono::seconds(30));
  EXPECT_EQ(result.exit_code, 0) << result.out << result.err;
  EXPECT_TRUE(NoneLeft()) << ::testing::PrintToString(ProcessesWithEnv(marker_));
  EXPECT_EQ(Report()["steps"][0]["status"], "success");
}

TEST_F(ProcessesTest, JobControlBackgroundJobDoesNotOutliveItsStep) {
  auto runner = Start("set -m\nsleep 1000 > /dev/null 2>&1 &\necho started");
  RunResult result = runner->Wait(std::chrono::seconds(30));
  EXPECT_EQ(result.exit_code, 0) << result.out << result.err;
  EXPECT_TRUE(NoneLeft()) << ::testing::PrintToString(ProcessesWithEnv(marker_));
}

TEST_F(ProcessesTest, DoubleForkedDaemonDoesNotOutliveItsStep) {
  // The daemon's way: a new session whose leader forks the daemon and exits.
  auto runner = Start(
      "setsid sh -c 'sleep 1000 > /dev/null 2>&1 & echo $! > daemon.pid' &\nwait\n"
      "test -s daemon.pid");
  RunResult result = runner->Wait(std::chrono::seconds(30));
  EXPECT_EQ(result.exit_code, 0) << result.out << result.err;
  EXPECT_TRUE(NoneLeft()) << ::testing::PrintToString(ProcessesWithEnv(marker_));
}

// What a step left running outside its process group is stopped when the step ends, not when
// the runner does: the next step no longer sees it.
TEST_F(ProcessesTest, ADaemonOfAStepIsStoppedBeforeTheNextStepStarts) {
  const std::string mark_name = marker_.substr(0, marker_.find('='));
  const std::string mark_value = marker_.substr(marker_.find('=') + 1);
  WriteTextFile(
      dir_ / "pipeline.yml",
      "version: 1\nproject: p\nsteps:\n"
      "  - id: start\n    kill_grace: 2s\n    env: {" +
          mark_name + ": " + mark_value +
          "}\n    run: |\n"
          "      setsid sh -c 'sleep 1000 > /dev/null 2>&1 & echo $! > daemon.pid' &\n"
          "      wait\n"
          "  - id: check\n    needs: [start]\n    run: |\n"
          "      test -s daemon.pid\n"
          "      if kill -0 \"$(cat daemon.pid)\" 2>/dev/null; then echo alive; exit 1; fi\n");
  RunnerProcess runner({"run", "--branch", "main", "--build-number", "1"}, dir_.path(), BaseEnv(),
                       dir_ / "out");
  RunResult result = runner.Wait(std::chrono::seconds(30));
  EXPECT_EQ(result.exit_code, 0) << result.out << result.err;
  EXPECT_TRUE(NoneLeft()) << ::testing::PrintToString(ProcessesWithEnv(marker_));
}

TEST_F(ProcessesTest, SighupCancelsTheBuildAndExits129) {
  auto runner = Start("setsid sleep 1000 > /dev/null 2>&1 &\ntouch started\nsleep 1000");
  ASSERT_TRUE(AwaitCondition([&] { return fs::exists(dir_ / "started"); }));
  runner->Signal(SIGHUP);
  RunResult result = runner->Wait(std::chrono::seconds(30));
  EXPECT_EQ(result.exit_code, 129) << result.out << result.err;
  EXPECT_THAT(result.out, HasSubstr("cancelled by SIGHUP"));
  EXPECT_TRUE(NoneLeft()) << ::testing::PrintToString(ProcessesWithEnv(marker_));
  auto report = Report();
  EXPECT_EQ(report["status"], "cancelled");
  EXPECT_EQ(report["steps"][0]["status"], "cancelled");
  EXPECT_EQ(report["steps"][0]["message"], "cancelled by SIGHUP");
}

TEST_F(ProcessesTest, SigkillOfTheRunnerLeavesNoProcessBehind) {
  auto runner = Start(
      "sleep 1000 > /dev/null 2>&1 &\nsetsid sleep 1000 > /dev/null 2>&1 &\n"
      "trap 'echo trapped > trapped' TERM\ntouch started\nwait");
  ASSERT_TRUE(AwaitCondition([&] { return fs::exists(dir_ / "started"); }));
  // bash, its sleep and the setsid'd one.
  ASSERT_TRUE(AwaitCondition([&] { return ProcessesWithEnv(marker_).size() == 3; }))
      << ::testing::PrintToString(ProcessesWithEnv(marker_));
  runner->Signal(SIGKILL);
  RunResult result = runner->Wait(std::chrono::seconds(10));
  EXPECT_EQ(result.exit_code, 128 + SIGKILL);
  EXPECT_TRUE(NoneLeft()) << ::testing::PrintToString(ProcessesWithEnv(marker_));
  // The watchdog sent SIGTERM first: the step's trap ran.
  EXPECT_TRUE(AwaitCondition([&] { return fs::exists(dir_ / "trapped"); }));
}

// A runner run by a step carries that step's token, as every process of the step does; its
// watchdog does not (nor any of its environment): the outer runner would otherwise count it as
// one of the step's processes, to wait for and to stop.
TEST_F(ProcessesTest, TheWatchdogCarriesNoTokenOfAnOuterRunner) {
  auto runner =
      Start(R"(others=0
for child in $(cat /proc/$PPID/task/*/children); do
  [ "$child" = $$ ] && continue
  others=$((others + 1))
  if tr '\0' '\n' < /proc/$child/environ | grep -q '^RUNNER_PROCESS_COOKIE=\|^RUNNER_TEST_MARK='; then
    echo "the runner's child $child carries a token"; exit 1
  fi
done
[ "$others" = 1 ])",
            "2s",
            {{"RUNNER_PROCESS_COOKIE", "0123456789abcdef.1"},
             {marker_.substr(0, marker_.find('=')), marker_.substr(marker_.find('=') + 1)}});
  RunResult result = runner->Wait(std::chrono::seconds(30));
  EXPECT_EQ(result.exit_code, 0) << result.out << result.err;
}

// A bake SIGKILLed with the runner must still be let clean up what it made in AWS: the watchdog
// gives the step its own kill_grace, not a short one of its own.
TEST_F(ProcessesTest, SigkillOfTheRunnerStillGivesTheStepItsKillGrace) {
  // `started` once both processes exist: the watchdog's SIGTERM reaches those it finds, and one
  // forked after it (a `sleep 1000` started late) would get only the SIGKILL at the grace's end,
  // after this test stops waiting.
  auto runner = Start(
      "trap 'sleep 3; echo cleaned > cleaned; exit 1' TERM\nsleep 1000 &\ntouch started\nwait",
      "20s");
  ASSERT_TRUE(AwaitCondition([&] { return fs::exists(dir_ / "started"); }));
  runner->Signal(SIGKILL);
  RunResult result = runner->Wait(std::chrono::seconds(10));
  EXPECT_EQ(result.exit_code, 128 + SIGKILL);
  EXPECT_TRUE(
      AwaitCondition([&] { return fs::exists(dir_ / "cleaned"); }, std::chrono::seconds(15)));
  EXPECT_TRUE(NoneLeft()) << ::testing::PrintToString(ProcessesWithEnv(marker_));
}

}  // namespace
}  // namespace runner::testing
