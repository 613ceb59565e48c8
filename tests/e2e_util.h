// Driving the built `runner` binary from tests: run it to completion, or start it and signal
// it, with a chosen environment and working directory.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "tests/test_util.h"

namespace runner::testing {

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// A minimal environment a test controls fully (no CI variables leak in from the machine).
inline std::map<std::string, std::string> BaseEnv() {
  return {{"PATH", "/usr/local/bin:/usr/bin:/bin"},
          {"HOME", ::getenv("HOME") ? ::getenv("HOME") : "/root"},
          {"LANG", "C.UTF-8"},
          {"TERM", "dumb"}};
}

inline bool ProcessExists(pid_t pid) { return ::kill(pid, 0) == 0 || errno == EPERM; }

// The processes (other than this one) whose environment holds the entry `entry` (KEY=VALUE),
// as far as /proc lets us read.
inline std::vector<pid_t> ProcessesWithEnv(const std::string& entry) {
  std::vector<pid_t> found;
  std::error_code ignored;
  for (const auto& dir : std::filesystem::directory_iterator("/proc", ignored)) {
    std::string name = dir.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    pid_t pid = std::stoi(name);
    if (pid == ::getpid()) continue;
    std::ifstream file(dir.path() / "environ", std::ios::binary);
    std::string environ((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    // Each entry ends with a NUL; one in front makes the first entry match like the others.
    const std::string nul(1, '\0');
    if ((nul + environ).find(nul + entry + nul) != std::string::npos) found.push_back(pid);
  }
  return found;
}

// The built runner, started with stdout and stderr going to files in `dir`.
class RunnerProcess {
 public:
  RunnerProcess(const std::vector<std::string>& args, const std::string& cwd,
                const std::map<std::string, std::string>& env, const std::string& output_dir)
      : out_path_(output_dir + "/.stdout"), err_path_(output_dir + "/.stderr") {
    std::vector<std::string> argv_storage = {RUNNER_BIN};
    argv_storage.insert(argv_storage.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& arg : argv_storage) argv.push_back(arg.data());
    argv.push_back(nullptr);
    std::vector<std::string> env_storage;
    for (const auto& [key, value] : env) env_storage.push_back(key + "=" + value);
    std::vector<char*> envp;
    for (auto& entry : env_storage) envp.push_back(entry.data());
    envp.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    posix_spawn_file_actions_addopen(&actions, 2, err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());
    int error = ::posix_spawn(&pid_, RUNNER_BIN, &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    if (error != 0) ADD_FAILURE() << "cannot start " << RUNNER_BIN;
  }

  ~RunnerProcess() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }

  pid_t pid() const { return pid_; }
  void Signal(int sig) { ::kill(pid_, sig); }

  // Waits for the exit (at most `timeout`, then kills it and fails the test).
  RunResult Wait(std::chrono::milliseconds timeout = std::chrono::seconds(120)) {
    RunResult result;
    int status = 0;
    bool done = AwaitCondition([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; }, timeout);
    if (!done) {
      ADD_FAILURE() << "runner did not exit within " << timeout.count() << "ms";
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
    }
    exited_ = true;
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    result.out = ReadTextFile(out_path_);
    result.err = ReadTextFile(err_path_);
    return result;
  }

 private:
  pid_t pid_ = -1;
  bool exited_ = false;
  std::string out_path_;
  std::string err_path_;
};

inline RunResult RunRunner(const std::vector<std::string>& args, const std::string& cwd,
                           const std::map<std::string, std::string>& env = BaseEnv()) {
  RunnerProcess process(args, cwd, env, cwd);
  return process.Wait();
}

// Runs a shell command for test set-up (creating Git repositories and the like).
inline void Shell(const std::string& command) {
  int status = std::system(command.c_str());
  ASSERT_EQ(status, 0) << command;
}

// A Git repository with one commit of `files`, on branch `branch` (any name Git accepts,
// passed through the environment so that it is never shell syntax here).
inline void MakeGitRepo(const std::string& dir, const std::map<std::string, std::string>& files,
                        const std::string& branch = "main") {
  for (const auto& [path, text] : files) WriteTextFile(dir + "/" + path, text);
  ::setenv("RUNNER_TEST_BRANCH", branch.c_str(), 1);
  Shell(
      "cd '" + dir +
      "' && git -c init.defaultBranch=main init -q . && git checkout -q -b \"$RUNNER_TEST_BRANCH\" "
      "&& git add -A && GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.com GIT_COMMITTER_NAME=t "
      "GIT_COMMITTER_EMAIL=t@example.com git commit -qm initial");
  ::unsetenv("RUNNER_TEST_BRANCH");
}

// A Git repository holding a copy of the project's pipelines/ (the example service, its
// revision layout, templates and Packer files), committed at a fixed time.
void MakeExampleRepo(const std::string& dir) {
  std::filesystem::create_directories(dir);
  std::filesystem::copy(std::string(RUNNER_SOURCE_DIR) + "/pipelines", dir + "/pipelines",
                        std::filesystem::copy_options::recursive);
  std::filesystem::remove_all(dir + "/pipelines/orders/dist");
  Shell("cd '" + dir +
        "' && git -c init.defaultBranch=main init -q . && git add -A && "
        "GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.com GIT_COMMITTER_NAME=t "
        "GIT_COMMITTER_EMAIL=t@example.com GIT_AUTHOR_DATE='2026-01-02T03:04:05Z' "
        "GIT_COMMITTER_DATE='2026-01-02T03:04:05Z' git commit -qm example");
}

}  // namespace runner::testing
