// A StepIo that records what a built-in step does, for testing kinds without the runner.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <map>

#include "runner/step_kind.h"

namespace runner {

class FakeStepIo : public StepIo {
 public:
  explicit FakeStepIo(std::string dir) : dir_(dir), workspace_(std::move(dir)) {
    build_.project = "orders";
    build_.branch = "main";
    build_.commit = "0123456789abcdef0123456789abcdef01234567";
    build_.short_commit = "0123456";
    build_.number = "7";
    build_.id = "orders-main-7";
    build_.event = "push";
    build_.trigger = "local";
    build_.workspace = workspace_;
    env_ = {{"PATH", "/usr/local/bin:/usr/bin:/bin"}};
  }

  void Log(std::string_view text) override { log.append(text); }
  void SetOutput(const std::string& name, const std::string& value) override {
    outputs[name] = value;
  }
  void AddArtifact(const Artifact& artifact) override { artifacts.push_back(artifact); }
  bool cancelled() const override { return cancel; }
  const std::string& dir() const override { return dir_; }
  const std::string& workspace() const override { return workspace_; }
  const BuildContext& build() const override { return build_; }
  const Environment& env() const override { return env_; }
  const std::string& pipeline() const override { return pipeline_; }
  Duration kill_grace() const override { return grace; }
  // REQUIRES: `process_runner` was set by the test.
  ProcessRunner& processes() override {
    if (!process_runner) {
      std::fputs("FakeStepIo: the test set no process_runner\n", stderr);
      std::abort();
    }
    return *process_runner;
  }

  std::string log;
  std::map<std::string, std::string> outputs;
  std::vector<Artifact> artifacts;
  bool cancel = false;
  Duration grace = std::chrono::seconds(10);
  ProcessRunner* process_runner = nullptr;
  BuildContext build_;
  Environment env_;

 private:
  std::string dir_;
  std::string workspace_;
  std::string pipeline_ = "pipeline.yml";
};

}  // namespace runner
