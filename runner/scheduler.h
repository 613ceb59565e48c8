// Runs a plan (SPEC sections 3 and 5): ready steps in parallel up to the job limit, needs,
// `when`, timeouts, retries, cancellation on signals, outputs between steps, per-step logs.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "runner/build_context.h"
#include "runner/build_record.h"
#include "runner/cache/step_cache.h"
#include "runner/environment.h"
#include "runner/masker.h"
#include "runner/pipeline.h"
#include "runner/plan.h"
#include "runner/process.h"
#include "runner/progress.h"
#include "runner/result.h"

namespace runner {

// Receives what a build does as it happens (the console implements it).
class BuildObserver {
 public:
  virtual ~BuildObserver() = default;
  // The pipeline's warnings (formatted diagnostics), before the build starts.
  virtual void PipelineWarnings(std::string_view text) { (void)text; }
  virtual void BuildStarted(const BuildRecord& build) = 0;
  virtual void StepStarted(const StepRecord& step) = 0;
  // Output of a running step, already masked.
  virtual void StepOutput(const StepRecord& step, std::string_view text) = 0;
  // A built-in step's progress record changed (read every tick_interval() and once as the step
  // ends, before StepFinished); its text already masked.
  virtual void StepProgress(const StepRecord& step, const Progress& progress) {
    (void)step;
    (void)progress;
  }
  virtual void StepFinished(const StepRecord& step) = 0;
  virtual void BuildFinished(const BuildRecord& build) = 0;
  // Called at least every tick_interval() while steps run (for a live status line).
  virtual void Tick() {}
  virtual Duration tick_interval() const { return std::chrono::hours(1); }
};

// Values computed once per build from the pipeline: vars and the pipeline's env, with their
// expressions expanded (they may use build.* and the runner's env.*).
struct BuildValues {
  std::vector<std::pair<std::string, std::string>> vars;
  std::vector<std::pair<std::string, std::string>> env;
  // The names of `secrets:` and of the credentials the kinds read, and their values (the
  // pipeline's env and the runner's). A step's env that sets one of these names adds its value
  // to the build's masker before the step starts.
  std::vector<std::string> secret_names;
  std::vector<std::string> secrets;
};
// `credentials`: the variables the kinds read as credentials (KindRegistry::SecretEnv).
Result<BuildValues> ExpandBuildValues(const Pipeline& pipeline, const BuildContext& context,
                                      const Environment& environment,
                                      const std::vector<std::string>& credentials);

struct SchedulerOptions {
  int jobs = 1;
  std::string build_dir;  // STATE/builds/BUILD_ID; logs go to build_dir/logs
  // A private directory (mode 0700) for the steps' hand-over files, which are removed as each
  // step ends.
  std::string scratch_dir;
  Environment environment;  // the runner's own
  std::string self_exe;     // this binary, which runs built-in steps as `runner __step`
  // The step cache (SPEC section 8); null: every step runs.
  StepCache* cache = nullptr;
};

class Scheduler {
 public:
  // All references must outlive the scheduler. The masker learns the secrets that steps' env
  // sets, so the records written after Run() must be masked with it.
  Scheduler(const Pipeline& pipeline, const Plan& plan, const BuildContext& context,
            const BuildValues& values, SecretMasker& masker, ProcessRunner& processes,
            BuildObserver& observer, SchedulerOptions options);
  ~Scheduler();

  // Runs the build to the end (or until cancelled) and returns its record.
  BuildRecord Run();

 private:
  struct Active;

  void StartReadySteps();
  void Launch(size_t index);
  // The step's record and log on its first attempt, its Active on a retry; nullptr when the
  // step failed at once (its log could not be created).
  Active* BeginAttempt(size_t index);
  // Expands a step's string value; fails naming the unknown name or the missing output.
  Result<std::string> Expand(std::string_view text);
  Result<std::string> StepDirectory(const Step& step);
  Environment BuildVariables() const;
  // What a step's environment sets over shared_env_: its own `env`, then the RUNNER_* values.
  Result<Environment> StepEnvironment(const Step& step, const std::string& scratch);
  // What an attempt of a step runs with: its directory, environment and expanded configuration.
  struct StepSetup {
    std::string cwd;
    Environment env;  // over shared_env_
    ConfigNode config;
  };
  // A variable of the step's environment, or nullopt when unset.
  std::optional<std::string> StepVariable(const StepSetup& setup, std::string_view name) const;
  Result<StepSetup> PrepareStep(const Step& step, Active& active);
  // What to start for this attempt, with its scratch files created.
  Result<ProcessSpec> StepProcess(const Step& step, Active& active, StepSetup setup);
  void CreateOutputFile(const std::string& path, Status& status);
  void RecycleOutputFile(const std::string& path);
  // What a cached step's key covers, from its setup.
  StepKeyParts CacheKeyParts(const Step& step, const StepSetup& setup) const;
  // Keys a cached step and, on a hit, finishes it from the cache: true when it did.
  bool RestoreFromCache(size_t index, Active& active, const StepSetup& setup);
  // Stores a step that succeeded and was keyed.
  void StoreInCache(size_t index, Active& active);
  void HandleEvent(const ProcessEvent& event);
  void FinishAttempt(size_t index, int exit_code);
  void FinishStep(size_t index, StepStatus status, std::string message);
  void CheckDeadlines();
  // Hands a changed progress record of a built-in step to the observer.
  void ReadProgress(Active& active);
  void Stop(int signal);
  std::optional<std::string> LookupName(std::string_view name);
  Active* FindActive(int process_id);
  Active* FindActiveStep(size_t index);
  void AppendLog(size_t index, std::string_view text);
  // Keeps the end of the step's masked output for its record.
  void AppendTail(StepRecord& record, std::string_view masked, size_t keep);
  // Appends masked text to the step's log; the first failure is kept for its record.
  void WriteLog(Active& active, std::string_view text);

  const Pipeline& pipeline_;
  const Plan& plan_;
  const BuildContext& context_;
  const BuildValues& values_;
  SecretMasker& masker_;
  ProcessRunner& processes_;
  BuildObserver& observer_;
  SchedulerOptions options_;

  // What every step's environment starts from, made once: the runner's own environment, the
  // pipeline's `env` and the build's RUNNER_* values; and the same as KEY=VALUE strings.
  Environment shared_env_;
  std::vector<std::string> shared_envp_;
  std::vector<std::string> spare_outputs_;  // finished steps' emptied .out files
  BuildRecord record_;
  std::map<std::string, size_t, std::less<>> index_by_id_;  // into plan_.steps and record_.steps
  std::vector<std::vector<size_t>> needs_;                  // per plan step: its needs' indexes
  std::vector<std::vector<size_t>> dependants_;             // per plan step: the steps that need it
  std::vector<bool> satisfied_;  // per plan step: finished so that dependants may run
  // The pending steps that may have become ready, or bound to be skipped, since they were last
  // looked at: at first every step, then the dependants of each step that finishes. Only these
  // are looked at, so that a build's scheduling is not quadratic in its steps.
  std::set<size_t> candidates_;
  std::vector<std::unique_ptr<Active>> active_;
  std::chrono::steady_clock::time_point next_progress_read_;
  int stop_signal_ = 0;
  bool build_timed_out_ = false;
  std::string lookup_error_;
};

}  // namespace runner
