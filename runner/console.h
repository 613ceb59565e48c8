// What a build shows while it runs (SPEC section 5). On a terminal: a live status line
// (`[3/7] bake 1m12s`) and the output of any step that fails. Otherwise (Jenkins): every
// output line prefixed `[step-id] `, and a line as each step starts and ends. A line longer
// than 64 KiB is shown as several, each prefixed, so a step that never prints a newline is
// shown in bounded memory. A built-in step's progress (runner/progress.h) joins its entry in
// the status line; without a terminal it is a line of its own when first seen, then at most
// every kProgressLineInterval, and its last state as the step ends.
#pragma once

#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <string>

#include "runner/scheduler.h"

namespace runner {

class Console : public BuildObserver {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  static constexpr std::chrono::seconds kProgressLineInterval{5};

  // `out` must outlive the console; so must `warnings`, where the pipeline's warnings go.
  // `now` is the clock for elapsed times and the progress lines' rate limit.
  Console(std::FILE* out, bool terminal, std::FILE* warnings = stderr,
          Clock now = std::chrono::steady_clock::now);

  void PipelineWarnings(std::string_view text) override;
  void BuildStarted(const BuildRecord& build) override;
  void StepStarted(const StepRecord& step) override;
  void StepOutput(const StepRecord& step, std::string_view text) override;
  void StepProgress(const StepRecord& step, const Progress& progress) override;
  void StepFinished(const StepRecord& step) override;
  void BuildFinished(const BuildRecord& build) override;
  void Tick() override;
  Duration tick_interval() const override;

 private:
  void Write(std::string_view text);
  void ClearStatus();
  void DrawStatus();
  // The step's progress with its rate since the step started.
  std::string DescribeStepProgress(const std::string& id) const;
  void WriteProgressLine(const std::string& id);

  struct ShownProgress {
    Progress progress;
    std::optional<Progress> printed;  // without a terminal: the last state written as a line
    std::chrono::steady_clock::time_point printed_at;
  };

  std::FILE* out_;
  bool terminal_;
  std::FILE* warnings_;
  std::string build_dir_;  // shown so a user can find the records
  size_t total_ = 0;
  size_t finished_ = 0;
  std::map<std::string, std::chrono::steady_clock::time_point> running_;  // by step id
  std::map<std::string, std::string> partial_lines_;  // by step id, line-prefixed mode
  std::map<std::string, ShownProgress> progress_;     // by step id
  Clock now_;
  bool status_shown_ = false;
};

// Whether standard output is a terminal (and TERM is not "dumb").
bool StdoutIsTerminal();

}  // namespace runner
