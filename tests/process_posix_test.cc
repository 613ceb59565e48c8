// The real process runner, with real processes, real bash and real signals.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runner/process.h"

namespace runner {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using ::testing::HasSubstr;

std::vector<std::string> CurrentEnv() {
  std::vector<std::string> env;
  for (char** entry = environ; *entry != nullptr; ++entry) env.emplace_back(*entry);
  return env;
}

bool GroupExists(pid_t pgid) { return kill(-pgid, 0) == 0 || errno != ESRCH; }
bool ProcessExists(pid_t pid) { return kill(pid, 0) == 0 || errno != ESRCH; }

class ProcessPosixTest : public ::testing::Test {
 protected:
  void TearDown() override {
    for (const auto& dir : temp_dirs_) std::filesystem::remove_all(dir);
  }

  ProcessSpec Bash(const std::string& script) {
    ProcessSpec spec;
    spec.argv = {"bash", "--noprofile", "--norc", "-c", script};
    spec.env = CurrentEnv();
    return spec;
  }

  int Start(const ProcessSpec& spec) {
    Result<int> id = runner_->Start(spec);
    EXPECT_TRUE(id.has_value()) << id.error();
    return id.value_or(-1);
  }

  std::string TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "process_test.XXXXXX").string();
    std::string dir = mkdtemp(pattern.data());
    temp_dirs_.push_back(dir);
    return dir;
  }

  // Calls Wait until `done()` holds or `limit` passes; records every event. True if `done()`.
  bool WaitUntil(const std::function<bool()>& done, std::chrono::milliseconds limit = 10s) {
    auto give_up = Clock::now() + limit;
    while (!done()) {
      auto now = Clock::now();
      if (now >= give_up) return false;
      for (auto& event : runner_->Wait(std::min(give_up, now + 1s))) {
        switch (event.type) {
          case ProcessEvent::Type::kOutput:
            EXPECT_FALSE(exit_codes_.contains(event.id)) << "output after kDone";
            output_[event.id] += event.data;
            if (event.stream == ProcessEvent::Stream::kStderr) stderr_[event.id] += event.data;
            break;
          case ProcessEvent::Type::kDone:
            EXPECT_FALSE(exit_codes_.contains(event.id)) << "kDone twice for " << event.id;
            exit_codes_[event.id] = event.exit_code;
            left_running_[event.id] = event.left_running;
            break;
          case ProcessEvent::Type::kSignal:
            signals_.push_back(event.signal);
            break;
        }
      }
    }
    return true;
  }

  bool WaitDone(int id, std::chrono::milliseconds limit = 10s) {
    return WaitUntil([&] { return exit_codes_.contains(id); }, limit);
  }

  bool WaitOutput(int id, const std::string& text, std::chrono::milliseconds limit = 10s) {
    return WaitUntil([&] { return output_[id].find(text) != std::string::npos; }, limit);
  }

  std::unique_ptr<ProcessRunner> runner_ = MakePosixProcessRunner();
  std::map<int, std::string> output_;  // both streams
  std::map<int, std::string> stderr_;  // kStderr events only
  std::map<int, int> exit_codes_;
  std::map<int, bool> left_running_;
  std::vector<int> signals_;
  std::vector<std::string> temp_dirs_;
};

TEST_F(ProcessPosixTest, MergesStdoutAndStderrInOrder) {
  int id = Start(Bash("echo one; echo two >&2; echo three; echo four >&2"));
  ASSERT_TRUE(WaitDone(id));
  EXPECT_EQ(output_[id], "one\ntwo\nthree\nfour\n");
  EXPECT_EQ(exit_codes_[id], 0);
  EXPECT_EQ(runner_->running(), 0);
}

TEST_F(ProcessPosixTest, WakeFromAnotherThreadEndsAWaitEarly) {
  int id = Start(Bash("sleep 30"));
  std::thread waker([&] { runner_->Wake(); });
  auto before = Clock::now();
  std::vector<ProcessEvent> events = runner_->Wait(before + 20s);
  waker.join();
  EXPECT_LT(Clock::now() - before, 10s) << "Wake did not end the wait";
  EXPECT_TRUE(events.empty());
  runner_->Kill(id);
  ASSERT_TRUE(WaitDone(id));
}

TEST_F(ProcessPosixTest, ReportsExitCodes) {
  int ok = Start(Bash("exit 0"));
  int three = Start(Bash("exit 3"));
  int killed = Start(Bash("kill -KILL $$"));
  EXPECT_EQ(runner_->running(), 3);
  ASSERT_TRUE(WaitUntil([&] { return exit_codes_.size() == 3; }));
  EXPECT_EQ(exit_codes_[ok], 0);
  EXPECT_EQ(exit_codes_[three], 3);
  EXPECT_EQ(exit_codes_[killed], 128 + SIGKILL);
}

TEST_F(ProcessPosixTest, StdinIsDevNull) {
  ProcessSpec spec;
  spec.argv = {"cat"};
  spec.env = CurrentEnv();
  int id = Start(spec);
  ASSERT_TRUE(WaitDone(id, 5s));
  EXPECT_EQ(output_[id], "");
  EXPECT_EQ(exit_codes_[id], 0);
}

TEST_F(ProcessPosixTest, AppliesEnvironmentAndNothingElse) {
  setenv("PROCESS_TEST_FROM_RUNNER", "leaked", 1);
  ProcessSpec spec = Bash("echo \"$GREETING/${PROCESS_TEST_FROM_RUNNER:-unset}\"");
  spec.env = {"PATH=/usr/bin:/bin", "GREETING=hello"};
  int id = Start(spec);
  unsetenv("PROCESS_TEST_FROM_RUNNER");
  ASSERT_TRUE(WaitDone(id));
  EXPECT_EQ(output_[id], "hello/unset\n");
}

TEST_F(ProcessPosixTest, AppliesWorkingDirectory) {
  std::string dir = TempDir();
  ProcessSpec spec = Bash("pwd -P");
  spec.cwd = dir;
  int id = Start(spec);
  ASSERT_TRUE(WaitDone(id));
  EXPECT_EQ(output_[id], std::filesystem::canonical(dir).string() + "\n");
}

TEST_F(ProcessPosixTest, LooksProgramUpOnTheChildsPath) {
  std::string dir = TempDir();
  std::string tool = dir + "/process-test-tool";
  std::ofstream(tool) << "#!/bin/sh\necho tool ran in \"$(pwd -P)\"\n";
  chmod(tool.c_str(), 0755);

  ProcessSpec spec;
  spec.argv = {"process-test-tool"};
  spec.env = {"PATH=/nonexistent:" + dir + ":/usr/bin:/bin"};
  int by_path = Start(spec);

  // A relative path with a '/' is relative to the child's working directory.
  spec.argv = {"./process-test-tool"};
  spec.cwd = dir;
  int relative = Start(spec);

  ASSERT_TRUE(WaitUntil([&] { return exit_codes_.size() == 2; }));
  std::string expected = "tool ran in " + std::filesystem::canonical(dir).string() + "\n";
  EXPECT_EQ(output_[relative], expected);
  EXPECT_THAT(output_[by_path], HasSubstr("tool ran in"));
  EXPECT_EQ(exit_codes_[by_path], 0);
}

// The search is remembered per PATH: a program that is removed is searched for again, and
// another PATH finds its own.
TEST_F(ProcessPosixTest, ProgramFoundOnPathIsSearchedAgainOnceRemoved) {
  std::string first = TempDir() + "/first";
  std::string second = TempDir() + "/second";
  for (const std::string& dir : {first, second}) {
    std::filesystem::create_directories(dir);
    std::ofstream(dir + "/process-test-tool") << "#!/bin/sh\necho " << dir << "\n";
    chmod((dir + "/process-test-tool").c_str(), 0755);
  }
  auto run = [&](const std::string& path) {
    ProcessSpec spec;
    spec.argv = {"process-test-tool"};
    spec.env = {"PATH=" + path};
    int id = Start(spec);
    EXPECT_TRUE(WaitDone(id));
    return output_[id];
  };
  const std::string both = first + ":" + second + ":/usr/bin:/bin";
  EXPECT_EQ(run(both), first + "\n");
  EXPECT_EQ(run(both), first + "\n");
  EXPECT_EQ(run(second + ":/usr/bin:/bin"), second + "\n");
  std::filesystem::remove(first + "/process-test-tool");
  EXPECT_EQ(run(both), second + "\n");
}

TEST_F(ProcessPosixTest, UnknownProgramIsAnError) {
  ProcessSpec spec;
  spec.argv = {"process-test-no-such-program"};
  spec.env = {"PATH=/usr/bin:/bin"};
  Result<int> id = runner_->Start(spec);
  ASSERT_FALSE(id.has_value());
  EXPECT_THAT(id.error(), HasSubstr("process-test-no-such-program"));
  EXPECT_THAT(id.error(), HasSubstr("PATH=/usr/bin:/bin"));

  spec.argv = {"/nonexistent/tool"};
  id = runner_->Start(spec);
  ASSERT_FALSE(id.has_value());
  EXPECT_THAT(id.error(), HasSubstr("/nonexistent/tool"));

  // Found, but PATH in the runner's own environment must not matter.
  spec.argv = {"bash", "-c", "true"};
  spec.env = {"PATH=/nonexistent"};
  EXPECT_FALSE(runner_->Start(spec).has_value());
  EXPECT_EQ(runner_->running(), 0);
}

TEST_F(ProcessPosixTest, ProgramThatCannotBeExecutedIsAnError) {
  std::string tool = TempDir() + "/bad-interpreter";
  std::ofstream(tool) << "#!/nonexistent/interpreter\n";
  chmod(tool.c_str(), 0755);
  ProcessSpec spec;
  spec.argv = {tool};
  Result<int> id = runner_->Start(spec);
  if (id.has_value()) {
    // Only where posix_spawn cannot report exec errors (valgrind runs it as a plain fork).
    ASSERT_TRUE(WaitDone(*id));
    EXPECT_NE(exit_codes_[*id], 0);
    return;
  }
  EXPECT_THAT(id.error(), HasSubstr(tool));
  EXPECT_EQ(runner_->running(), 0);
  // The failed child was reaped: nothing is reported for it.
  EXPECT_TRUE(runner_->Wait(Clock::now() + 20ms).empty());
}

TEST_F(ProcessPosixTest, MissingWorkingDirectoryIsAnError) {
  ProcessSpec spec = Bash("true");
  spec.cwd = "/nonexistent/process-test-dir";
  Result<int> id = runner_->Start(spec);
  ASSERT_FALSE(id.has_value());
  EXPECT_THAT(id.error(), HasSubstr("/nonexistent/process-test-dir"));
  EXPECT_EQ(runner_->running(), 0);
}

TEST_F(ProcessPosixTest, RunsInItsOwnProcessGroup) {
  // Field 5 of /proc/PID/stat is the process group.
  int id = Start(Bash("echo $$ $(cut -d' ' -f5 /proc/$$/stat)"));
  ASSERT_TRUE(WaitDone(id));
  std::istringstream line(output_[id]);
  pid_t pid = 0, pgid = 0;
  line >> pid >> pgid;
  EXPECT_GT(pid, 0);
  EXPECT_EQ(pgid, pid);
  EXPECT_NE(pgid, getpgrp());
}

TEST_F(ProcessPosixTest, ChildHasNoBlockedOrIgnoredSignals) {
  sigset_t block, old_mask;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &block, &old_mask);
  struct sigaction ignore {
  }, old_action;
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGUSR2, &ignore, &old_action);
  ProcessSpec spec;
  spec.argv = {"cat", "/proc/self/status"};
  spec.env = CurrentEnv();
  int id = Start(spec);
  sigaction(SIGUSR2, &old_action, nullptr);
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);

  ASSERT_TRUE(WaitDone(id));
  EXPECT_THAT(output_[id], HasSubstr("SigBlk:\t0000000000000000\n"));
  // glibc's two internal signals (32 and 33, below SIGRTMIN, never used by programs) are not
  // for programs to set, nor for this test to check; every other signal must be at its default.
  size_t at = output_[id].find("SigIgn:\t");
  ASSERT_NE(at, std::string::npos);
  uint64_t ignored = std::stoull(output_[id].substr(at + 8, 16), nullptr, 16);
  constexpr uint64_t kGlibcInternal = (uint64_t{1} << (32 - 1)) | (uint64_t{1} << (33 - 1));
  EXPECT_EQ(ignored & ~kGlibcInternal, 0u) << std::hex << ignored;
}

TEST_F(ProcessPosixTest, SigintKillsChildEvenWhenRunnerIgnoresIt) {
  // As when the runner is started with `&` from a script: SIGINT ignored, inherited over exec.
  struct sigaction ignore {
  }, old_action;
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGINT, &ignore, &old_action);
  ProcessSpec spec;
  spec.argv = {"sleep", "30"};
  spec.env = CurrentEnv();
  int id = Start(spec);
  sigaction(SIGINT, &old_action, nullptr);

  runner_->Terminate(id, SIGINT);
  ASSERT_TRUE(WaitDone(id, 5s));
  EXPECT_EQ(exit_codes_[id], 128 + SIGINT);
}

TEST_F(ProcessPosixTest, StopsWhatTheLeaderLeftRunning) {
  ProcessSpec spec = Bash("sleep 1000 & echo $$ $!");
  spec.kill_grace = 5s;
  auto start = Clock::now();
  int id = Start(spec);
  ASSERT_TRUE(WaitDone(id, 4s));
  // SIGTERM at once, not SIGKILL after the grace.
  EXPECT_LT(Clock::now() - start, 3s);
  EXPECT_EQ(exit_codes_[id], 0);
  std::istringstream line(output_[id]);
  pid_t leader = 0, sleeper = 0;
  line >> leader >> sleeper;
  ASSERT_GT(sleeper, 0);
  EXPECT_FALSE(GroupExists(leader));
  // Reaped, not a zombie: kill() succeeds on zombies.
  EXPECT_FALSE(ProcessExists(sleeper));
}

TEST_F(ProcessPosixTest, KillsLeftoversIgnoringSigtermAfterGrace) {
  ProcessSpec spec = Bash("trap '' TERM; sleep 1000 & trap - TERM; echo $$ $!");
  spec.kill_grace = 300ms;
  auto start = Clock::now();
  int id = Start(spec);
  ASSERT_TRUE(WaitDone(id, 5s));
  EXPECT_GE(Clock::now() - start, 300ms);
  std::istringstream line(output_[id]);
  pid_t leader = 0, sleeper = 0;
  line >> leader >> sleeper;
  ASSERT_GT(sleeper, 0);
  EXPECT_FALSE(GroupExists(leader));
  EXPECT_FALSE(ProcessExists(sleeper));
}

TEST_F(ProcessPosixTest, TerminateLetsTheStepCleanUp) {
  std::string file = TempDir() + "/cleaned";
  // `wait`, not a foreground sleep: bash runs a trap only once its foreground child has ended,
  // and a child still between fork and exec would catch the signal with bash's handler.
  ProcessSpec spec =
      Bash("trap 'echo cleaned > " + file + "; exit 5' TERM; sleep 1000 & echo ready; wait");
  spec.kill_grace = 5s;
  int id = Start(spec);
  ASSERT_TRUE(WaitOutput(id, "ready"));
  runner_->Terminate(id, SIGTERM);
  ASSERT_TRUE(WaitDone(id, 4s));
  EXPECT_EQ(exit_codes_[id], 5);
  std::ifstream in(file);
  std::string content;
  std::getline(in, content);
  EXPECT_EQ(content, "cleaned");
}

TEST_F(ProcessPosixTest, TerminateKillsAfterGraceWhenSigtermIgnored) {
  ProcessSpec spec = Bash("trap '' TERM; echo $$; sleep 1000");
  spec.kill_grace = 300ms;
  int id = Start(spec);
  ASSERT_TRUE(WaitOutput(id, "\n"));
  pid_t leader = std::stoi(output_[id]);
  auto start = Clock::now();
  runner_->Terminate(id, SIGTERM);
  runner_->Terminate(id, SIGTERM);  // repeating must not postpone the SIGKILL
  ASSERT_TRUE(WaitDone(id, 5s));
  EXPECT_GE(Clock::now() - start, 300ms);
  EXPECT_EQ(exit_codes_[id], 128 + SIGKILL);
  EXPECT_FALSE(GroupExists(leader));
}

TEST_F(ProcessPosixTest, InterruptSignalsTheLeaderAloneThenKillsTheGroupAfterGrace) {
  std::string file = TempDir() + "/member";
  // The member records a SIGTERM it gets; the leader reports its own and goes on, so only
  // SIGKILL ends them. The leader's trap is set before the member can say it is ready.
  ProcessSpec spec = Bash("trap 'echo leader-term' TERM; bash -c \"trap 'echo got-term > " + file +
                          "' TERM; echo ready; while :; do sleep 0.05; done\" & "
                          "while :; do wait; done");
  spec.kill_grace = 500ms;
  int id = Start(spec);
  ASSERT_TRUE(WaitOutput(id, "ready"));
  runner_->Interrupt(id, SIGTERM);
  ASSERT_TRUE(WaitOutput(id, "leader-term"));
  ASSERT_TRUE(WaitDone(id, 5s));
  EXPECT_EQ(exit_codes_[id], 128 + SIGKILL);
  EXPECT_FALSE(std::filesystem::exists(file)) << "the group's member got the leader's signal";
}

TEST_F(ProcessPosixTest, KillStopsTheWholeGroupAtOnce) {
  ProcessSpec spec = Bash("sleep 1000 & echo $$ $!; sleep 1000");
  int id = Start(spec);  // default grace of 10s: only an immediate SIGKILL is fast
  ASSERT_TRUE(WaitOutput(id, "\n"));
  runner_->Kill(id);
  runner_->Kill(id);
  ASSERT_TRUE(WaitDone(id, 3s));
  EXPECT_EQ(exit_codes_[id], 128 + SIGKILL);
  std::istringstream line(output_[id]);
  pid_t leader = 0, sleeper = 0;
  line >> leader >> sleeper;
  EXPECT_FALSE(GroupExists(leader));
  EXPECT_FALSE(ProcessExists(sleeper));
  // After kDone: harmless no-ops.
  runner_->Kill(id);
  runner_->Terminate(id, SIGTERM);
  runner_->Kill(12345);
}

TEST_F(ProcessPosixTest, EscapedDescendantHoldingThePipeDoesNotHang) {
  // setsid, and a daemon's double fork: a new session whose leader forks and exits.
  for (const char* script :
       {"setsid sleep 1000 & echo $!", "setsid sh -c 'sleep 1000 & echo $!' & wait"}) {
    SCOPED_TRACE(script);
    int id = Start(Bash(script));
    ASSERT_TRUE(WaitDone(id, 3s));
    pid_t escaped = std::stoi(output_[id]);
    ASSERT_GT(escaped, 0);
    // It left the group but carries the cookie: stopped with the step.
    EXPECT_FALSE(ProcessExists(escaped));
    // Whatever happened, the test must not leave it behind.
    kill(escaped, SIGKILL);
    waitpid(escaped, nullptr, 0);
  }
}

TEST_F(ProcessPosixTest, CookieAddsATokenToTheInheritedOne) {
  ProcessSpec spec = Bash("echo \"$RUNNER_PROCESS_COOKIE\"");
  spec.env = {"PATH=/usr/bin:/bin", "RUNNER_PROCESS_COOKIE=outer.1"};
  int id = Start(spec);
  ASSERT_TRUE(WaitDone(id));
  EXPECT_THAT(output_[id], ::testing::MatchesRegex("outer\\.1 [0-9a-f]{16}\\.[0-9]+\n"));
}

TEST_F(ProcessPosixTest, SighupIsAnEvent) {
  raise(SIGHUP);
  ASSERT_TRUE(WaitUntil([&] { return signals_.size() == 1; }, 5s));
  EXPECT_EQ(signals_, (std::vector<int>{SIGHUP}));
  EXPECT_EQ(runner_->received_signal(), SIGHUP);
}

TEST_F(ProcessPosixTest, WriteBeyondTheFileSizeLimitFailsInsteadOfKilling) {
  std::string path = TempDir() + "/big";
  struct rlimit old_limit;
  getrlimit(RLIMIT_FSIZE, &old_limit);
  struct rlimit limit = old_limit;
  limit.rlim_cur = 1;
  setrlimit(RLIMIT_FSIZE, &limit);
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ssize_t written = write(fd, "ab", 2);
  ssize_t beyond = write(fd, "c", 1);
  int error = errno;
  setrlimit(RLIMIT_FSIZE, &old_limit);
  close(fd);
  EXPECT_EQ(written, 1);
  EXPECT_EQ(beyond, -1);
  EXPECT_EQ(error, EFBIG);
}

TEST_F(ProcessPosixTest, SignalsToTheRunnerAreEvents) {
  raise(SIGTERM);
  std::vector<ProcessEvent> events = runner_->Wait(Clock::now() + 5s);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, ProcessEvent::Type::kSignal);
  EXPECT_EQ(events[0].signal, SIGTERM);

  kill(getpid(), SIGINT);
  kill(getpid(), SIGINT);
  ASSERT_TRUE(WaitUntil([&] { return signals_.size() == 2; }, 5s));
  EXPECT_EQ(signals_, (std::vector<int>{SIGINT, SIGINT}));
}

TEST_F(ProcessPosixTest, WaitWithNothingRunningReturnsAtDeadline) {
  auto start = Clock::now();
  std::vector<ProcessEvent> events = runner_->Wait(start + 100ms);
  auto elapsed = Clock::now() - start;
  EXPECT_TRUE(events.empty());
  EXPECT_GE(elapsed, 100ms);
  EXPECT_LT(elapsed, 1s);
}

TEST_F(ProcessPosixTest, WaitReturnsAtDeadlineWhileProcessesRun) {
  ProcessSpec spec = Bash("sleep 1000");
  int id = Start(spec);
  auto start = Clock::now();
  std::vector<ProcessEvent> events = runner_->Wait(start + 100ms);
  auto elapsed = Clock::now() - start;
  EXPECT_TRUE(events.empty());
  EXPECT_GE(elapsed, 100ms);
  EXPECT_LT(elapsed, 1s);
  EXPECT_EQ(runner_->running(), 1);
  runner_->Kill(id);
  ASSERT_TRUE(WaitDone(id, 3s));
}

TEST_F(ProcessPosixTest, ManyParallelProcessesAreEachDoneOnce) {
  constexpr int kCount = 50;
  std::map<int, int> index_of;
  for (int i = 0; i < kCount; ++i) {
    index_of[Start(Bash("echo " + std::to_string(i) + "; exit " + std::to_string(i % 7)))] = i;
  }
  EXPECT_EQ(runner_->running(), kCount);
  ASSERT_TRUE(WaitUntil([&] { return static_cast<int>(exit_codes_.size()) == kCount; }, 20s));
  EXPECT_EQ(runner_->running(), 0);
  for (const auto& [id, i] : index_of) {
    EXPECT_EQ(output_[id], std::to_string(i) + "\n");
    EXPECT_EQ(exit_codes_[id], i % 7);
  }
  // Nothing more arrives afterwards.
  EXPECT_TRUE(runner_->Wait(Clock::now() + 50ms).empty());
}

TEST_F(ProcessPosixTest, CapturesLargeOutputWhole) {
  ProcessSpec spec;
  spec.argv = {"seq", "1", "1500000"};  // about 10 MB
  spec.env = CurrentEnv();
  int id = Start(spec);
  ASSERT_TRUE(WaitDone(id, 20s));
  std::string expected;
  for (int i = 1; i <= 1500000; ++i) expected += std::to_string(i) + "\n";
  EXPECT_EQ(output_[id].size(), expected.size());
  EXPECT_TRUE(output_[id] == expected);
}

TEST_F(ProcessPosixTest, DestructorKillsAndReapsEverything) {
  int id = Start(Bash("sleep 1000 & echo $$ $!; sleep 1000"));
  ASSERT_TRUE(WaitOutput(id, "\n"));
  std::istringstream line(output_[id]);
  pid_t leader = 0, sleeper = 0;
  line >> leader >> sleeper;
  runner_.reset();
  EXPECT_FALSE(GroupExists(leader));
  EXPECT_FALSE(ProcessExists(leader));
  EXPECT_FALSE(ProcessExists(sleeper));
  // Dispositions are restored: SIGCHLD back to default.
  struct sigaction current;
  sigaction(SIGCHLD, nullptr, &current);
  EXPECT_EQ(current.sa_handler, SIG_DFL);
  // And another runner can be made.
  runner_ = MakePosixProcessRunner();
}

TEST_F(ProcessPosixTest, SeparateStderrKeepsTheStreamsApart) {
  ProcessSpec spec = Bash("echo one; echo two >&2; echo three; echo four >&2");
  spec.separate_stderr = true;
  int id = Start(spec);
  ASSERT_TRUE(WaitDone(id));
  EXPECT_EQ(stderr_[id], "two\nfour\n");
  std::string out = output_[id];
  for (const char* line : {"two\n", "four\n"}) out.erase(out.find(line), std::string(line).size());
  EXPECT_EQ(out, "one\nthree\n");
  EXPECT_EQ(exit_codes_[id], 0);
  // Merged by default: all of it arrives as stdout.
  int merged = Start(Bash("echo err >&2"));
  ASSERT_TRUE(WaitDone(merged));
  EXPECT_EQ(output_[merged], "err\n");
  EXPECT_EQ(stderr_[merged], "");
}

TEST_F(ProcessPosixTest, WithoutOwnGroupStaysInTheCallersGroup) {
  ProcessSpec spec = Bash("cut -d' ' -f5 /proc/$$/stat");
  spec.own_process_group = false;
  int id = Start(spec);
  ASSERT_TRUE(WaitDone(id));
  EXPECT_EQ(std::stoi(output_[id]), getpgrp());
  EXPECT_FALSE(left_running_[id]);
}

TEST_F(ProcessPosixTest, WithoutOwnGroupWaitsForWhatItLeftRunning) {
  std::string file = TempDir() + "/cleaned";
  // The leftover becomes our child (we are a subreaper) and is waited for, not signalled.
  ProcessSpec spec = Bash("(sleep 1; echo cleaned > " + file + ") >/dev/null 2>&1 & exit 4");
  spec.own_process_group = false;
  spec.kill_grace = 5s;
  int id = Start(spec);
  ASSERT_TRUE(WaitDone(id, 4s));
  EXPECT_EQ(exit_codes_[id], 4);
  EXPECT_FALSE(left_running_[id]);
  EXPECT_TRUE(std::filesystem::exists(file));
}

TEST_F(ProcessPosixTest, WithoutOwnGroupLeavesLeftoversAfterTheGrace) {
  ProcessSpec spec = Bash("sleep 1000 >/dev/null 2>&1 & echo $!");
  spec.own_process_group = false;
  spec.kill_grace = 300ms;
  auto start = Clock::now();
  int id = Start(spec);
  ASSERT_TRUE(WaitDone(id, 5s));
  EXPECT_GE(Clock::now() - start, 300ms);
  EXPECT_TRUE(left_running_[id]);
  pid_t leftover = std::stoi(output_[id]);
  // Not signalled: it shares our group, which is its owner's to stop.
  EXPECT_TRUE(ProcessExists(leftover));
  kill(leftover, SIGKILL);
  waitpid(leftover, nullptr, 0);
}

TEST_F(ProcessPosixTest, WithoutOwnGroupWaitsWithoutBoundOnceSignalled) {
  std::string file = TempDir() + "/cleaned";
  ProcessSpec spec = Bash("(sleep 1; echo cleaned > " + file + ") >/dev/null 2>&1 &");
  spec.own_process_group = false;
  spec.kill_grace = 100ms;
  int id = Start(spec);
  // As if the caller's group had been signalled: what is left is cleaning up.
  raise(SIGTERM);
  ASSERT_TRUE(WaitDone(id, 5s));
  EXPECT_FALSE(left_running_[id]);
  EXPECT_TRUE(std::filesystem::exists(file));
  EXPECT_EQ(signals_, (std::vector<int>{SIGTERM}));
}

TEST_F(ProcessPosixTest, WithoutOwnGroupNothingStartsAfterASignal) {
  raise(SIGINT);
  ProcessSpec spec = Bash("exit 0");
  spec.own_process_group = false;
  Result<int> id = runner_->Start(spec);
  ASSERT_FALSE(id);
  EXPECT_THAT(id.error(), HasSubstr("the runner received SIGINT before it started"));
  EXPECT_EQ(runner_->running(), 0);
  // A process with a group of its own still starts (the caller may need one to clean up).
  ProcessSpec own = Bash("exit 0");
  ASSERT_TRUE(WaitDone(Start(own)));
}

TEST_F(ProcessPosixTest, WithoutOwnGroupTerminateAndKillReachTheProcessAlone) {
  ProcessSpec spec = Bash("echo ready; sleep 1000");
  spec.own_process_group = false;
  int id = Start(spec);
  ASSERT_TRUE(WaitOutput(id, "ready"));
  runner_->Kill(id);  // were it sent to the group, this test would die of it
  ASSERT_TRUE(WaitDone(id, 3s));
  EXPECT_EQ(exit_codes_[id], 128 + SIGKILL);
}

volatile sig_atomic_t g_handler_ran = 0;

TEST_F(ProcessPosixTest, DestructorRaisesACaughtSignalForAPreviousHandler) {
  runner_.reset();
  struct sigaction action {
  }, old_action;
  action.sa_handler = [](int) { g_handler_ran = 1; };
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, &old_action);
  runner_ = MakePosixProcessRunner();
  raise(SIGINT);
  ASSERT_TRUE(WaitUntil([&] { return !signals_.empty(); }, 5s));
  EXPECT_EQ(g_handler_ran, 0);  // the runner had the signal
  runner_.reset();
  EXPECT_EQ(g_handler_ran, 1);  // and passed it on
  sigaction(SIGINT, &old_action, nullptr);
  // At the default disposition it is not raised again: SignalsToTheRunnerAreEvents survives
  // its own SIGTERM.
  runner_ = MakePosixProcessRunner();
}

}  // namespace
}  // namespace runner
