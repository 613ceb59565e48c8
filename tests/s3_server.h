// Real servers for the upload tests, on 127.0.0.1 only: s3rver (an S3-compatible server that
// verifies SigV4, installed into the build tree by the `s3rver_install` CTest fixture), the
// fault-injecting proxy tests/s3/fault_proxy.js, and the Debian AWS CLI to read objects back.
// Every process is started in its own process group and killed with it when its owner goes.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "runner/store/artifact_store.h"
#include "tests/test_util.h"

extern char** environ;

namespace runner::testing {

inline const char* kS3rverDir = S3RVER_DIR;
inline const char* kAwsCli = "/usr/bin/aws";

// A child in its own process group whose stdout goes to a file the test can poll.
class ChildProcess {
 public:
  ChildProcess(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
               const std::string& output_path)
      : output_path_(output_path) {
    std::vector<char*> args;
    for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    std::vector<std::string> env_strings;
    for (const auto& [key, value] : env) env_strings.push_back(key + "=" + value);
    std::vector<char*> envp;
    for (std::string& entry : env_strings) envp.push_back(entry.data());
    envp.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, output_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(&attr, 0);
    sigset_t all;
    sigfillset(&all);
    posix_spawnattr_setsigdefault(&attr, &all);
    if (posix_spawn(&pid_, args[0], &actions, &attr, args.data(), envp.data()) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
  ~ChildProcess() { Stop(); }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }

  // The first output line containing `needle`, waiting up to `timeout`.
  std::optional<std::string> WaitForLine(const std::string& needle,
                                         std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      std::string text = ReadTextFile(output_path_);
      size_t at = text.find(needle);
      if (at != std::string::npos) {
        size_t start = text.rfind('\n', at);
        start = start == std::string::npos ? 0 : start + 1;
        size_t end = text.find('\n', at);
        if (end != std::string::npos) return text.substr(start, end - start);
      }
      if (pid_ > 0 && ::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return std::nullopt;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return std::nullopt;
  }

  std::string output() const { return ReadTextFile(output_path_); }

  // The exit status (128 + signal when killed) once the child exits within `timeout`.
  std::optional<int> Wait(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (pid_ > 0 && std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        ::kill(-pid_, SIGKILL);
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return std::nullopt;
  }

  // SIGTERM to the group, SIGKILL after a second, and reaped.
  void Stop() {
    StopProcessGroup(pid_, std::chrono::seconds(1));
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  std::string output_path_;
};

inline std::map<std::string, std::string> NodeEnv(const std::string& home) {
  return {{"PATH", "/usr/local/bin:/usr/bin:/bin"},
          {"HOME", home},
          {"NODE_OPTIONS", "--openssl-legacy-provider"}};
}

inline std::optional<int> PortOf(const std::optional<std::string>& line) {
  if (!line) return std::nullopt;
  size_t colon = line->rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  return std::stoi(line->substr(colon + 1));
}

// s3rver on 127.0.0.1 at a free port, with the bucket `bkt`, storing into its own directory.
// Credentials S3RVER / S3RVER.
class S3rver {
 public:
  S3rver() {
    std::string run = std::string(kS3rverDir) + "/run.js";
    if (::access(run.c_str(), R_OK) != 0 ||
        ::access((std::string(kS3rverDir) + "/node_modules").c_str(), R_OK) != 0) {
      ADD_FAILURE() << "s3rver is not installed in " << kS3rverDir << ": run tests/s3/install.sh "
                    << kS3rverDir << " (the CTest fixture s3rver_install does)";
      return;
    }
    process_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{"/usr/bin/node", run, "-d", dir_ / "data", "-a", "127.0.0.1", "-p",
                                 "0", "--configure-bucket", "bkt"},
        NodeEnv(dir_.path()), dir_ / "s3rver.log");
    port_ = PortOf(process_->WaitForLine("S3rver listening on", std::chrono::seconds(20)));
    if (!port_) ADD_FAILURE() << "s3rver did not start: " << process_->output();
  }
  bool ok() const { return port_.has_value(); }
  int port() const { return port_.value_or(0); }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port()); }

 private:
  TempDir dir_;
  std::unique_ptr<ChildProcess> process_;
  std::optional<int> port_;
};

// The options of an artifact store on s3rver at `endpoint`: its credentials, us-east-1.
inline ArtifactStoreOptions S3rverStoreOptions(const std::string& endpoint) {
  ArtifactStoreOptions options;
  options.env = {{"AWS_ACCESS_KEY_ID", "S3RVER"}, {"AWS_SECRET_ACCESS_KEY", "S3RVER"}};
  options.region = "us-east-1";
  options.endpoint = endpoint;
  return options;
}

// tests/s3/fault_proxy.js in front of `target_port`, applying `rules_json`; every request is
// logged as a JSON line to log_path().
class FaultProxy {
 public:
  FaultProxy(int target_port, const std::string& rules_json) {
    std::string script = std::string(kS3rverDir) + "/fault_proxy.js";
    process_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{"/usr/bin/node", script, "--target",
                                 "127.0.0.1:" + std::to_string(target_port), "--log", log_path(),
                                 "--rules", rules_json},
        NodeEnv(dir_.path()), dir_ / "proxy.out");
    port_ = PortOf(process_->WaitForLine("fault proxy listening on", std::chrono::seconds(10)));
    if (!port_) ADD_FAILURE() << "the fault proxy did not start: " << process_->output();
  }
  bool ok() const { return port_.has_value(); }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_.value_or(0)); }
  std::string log_path() const { return dir_ / "requests.jsonl"; }

 private:
  TempDir dir_;
  std::unique_ptr<ChildProcess> process_;
  std::optional<int> port_;
};

struct CommandResult {
  int status = -1;
  std::string output;
};

// Runs the Debian AWS CLI with only the variables it needs (S3RVER's keys, no profile, no
// config file, no CA bundle), waiting up to two minutes.
inline CommandResult RunAwsCli(const std::string& endpoint, const std::vector<std::string>& args) {
  TempDir home;
  std::vector<std::string> argv = {kAwsCli, "--endpoint-url", endpoint};
  argv.insert(argv.end(), args.begin(), args.end());
  std::map<std::string, std::string> env = {{"PATH", "/usr/local/bin:/usr/bin:/bin"},
                                            {"HOME", home.path()},
                                            {"AWS_ACCESS_KEY_ID", "S3RVER"},
                                            {"AWS_SECRET_ACCESS_KEY", "S3RVER"},
                                            {"AWS_REGION", "us-east-1"},
                                            {"AWS_EC2_METADATA_DISABLED", "true"},
                                            {"AWS_PAGER", ""}};
  ChildProcess child(argv, env, home / "out");
  CommandResult result;
  result.status = child.Wait(std::chrono::minutes(2)).value_or(-1);
  result.output = child.output();
  return result;
}

}  // namespace runner::testing
