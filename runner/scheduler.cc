#include "runner/scheduler.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>

#include "runner/atomic_file.h"
#include "runner/config_node.h"
#include "runner/duration.h"
#include "runner/expression.h"
#include "runner/fs.h"
#include "runner/step_protocol.h"
#include "runner/workspace_path.h"

namespace runner {

namespace {

using SteadyTime = std::chrono::steady_clock::time_point;
using std::chrono::steady_clock;

constexpr size_t kTailBytes = 16 * 1024;

bool IsTerminal(StepStatus status) {
  return status != StepStatus::kPending && status != StepStatus::kRunning;
}

std::pair<std::string_view, std::string_view> SplitFirst(std::string_view name) {
  size_t dot = name.find('.');
  if (dot == std::string_view::npos) return {name, {}};
  return {name.substr(0, dot), name.substr(dot + 1)};
}

std::optional<std::string> FindValue(const std::vector<std::pair<std::string, std::string>>& list,
                                     std::string_view name) {
  for (const auto& [key, value] : list) {
    if (key == name) return value;
  }
  return std::nullopt;
}

// A hand-over file only the runner's user can read: the request holds the expanded
// configuration, secrets included.
void CreatePrivateFile(const std::string& path, std::string_view contents, Status& status) {
  if (!status) return;
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd.valid()) {
    status = Fail("cannot create " + path + ": " + ErrnoText(errno));
    return;
  }
  if (auto written = WriteAll(fd.get(), contents); !written) {
    status = Fail("cannot write " + path + ": " + written.error());
  }
}

// What `runner __step` is handed, besides .out, which every step has.
constexpr const char* kStepProtocolSuffixes[] = {".request", ".artifacts", ".error", ".progress"};

}  // namespace

// A step that has started and not finished: running, or waiting for its next attempt.
struct Scheduler::Active {
  size_t index = 0;
  int process_id = -1;
  UniqueFd log;  // logs/ID.log, written as the step runs (`tail -f` follows it)
  std::unique_ptr<SecretMasker::Stream> stream;
  // SCRATCH/ID: the prefix of the files through which the step hands back its outputs (.out)
  // and, through `runner __step`, gets its request (.request) and hands back its artifacts and
  // error.
  std::string scratch;
  SteadyTime attempt_started;
  std::optional<SteadyTime> deadline;        // the step's timeout for this attempt
  std::optional<SteadyTime> retry_at;        // waiting for the next attempt
  StepStatus ending = StepStatus::kPending;  // kTimedOut or kCancelled once decided
  std::string log_error;                     // the first write to the log that failed
  // Started as `runner __step`, which reports artifacts and errors through scratch files.
  bool through_step_protocol = false;
  std::string cwd;                       // the step's directory, resolved
  std::optional<std::string> cache_key;  // the step was keyed and missed: stored on success
  std::optional<Progress> progress;      // the last record read
};

Result<BuildValues> ExpandBuildValues(const Pipeline& pipeline, const BuildContext& context,
                                      const Environment& environment,
                                      const std::vector<std::string>& credentials) {
  BuildValues values;
  NameLookup lookup = [&](std::string_view name) -> std::optional<std::string> {
    auto [scope, rest] = SplitFirst(name);
    if (scope == "build") return context.Field(rest);
    if (scope == "env") return Lookup(environment, rest);
    return std::nullopt;
  };
  for (const VarEntry& var : pipeline.vars) {
    auto value =
        var.literal ? Result<std::string>(var.value.text) : ExpandTemplate(var.value.text, lookup);
    if (!value) return Fail("vars." + var.name + ": " + value.error());
    values.vars.emplace_back(var.name, *value);
  }
  for (const EnvEntry& entry : pipeline.env) {
    auto value = ExpandTemplate(entry.value.text, lookup);
    if (!value) return Fail("env." + entry.name + ": " + value.error());
    values.env.emplace_back(entry.name, *value);
  }
  // The credentials the kinds read are secret whether or not the pipeline says so.
  values.secret_names = credentials;
  values.secret_names.insert(values.secret_names.end(), pipeline.secrets.begin(),
                             pipeline.secrets.end());
  // Both: a step may see either, and a value printed is a value leaked.
  for (const std::string& name : values.secret_names) {
    if (auto value = FindValue(values.env, name)) values.secrets.push_back(*value);
    if (auto from_env = Lookup(environment, name)) values.secrets.push_back(*from_env);
  }
  return values;
}

Scheduler::Scheduler(const Pipeline& pipeline, const Plan& plan, const BuildContext& context,
                     const BuildValues& values, SecretMasker& masker, ProcessRunner& processes,
                     BuildObserver& observer, SchedulerOptions options)
    : pipeline_(pipeline),
      plan_(plan),
      context_(context),
      values_(values),
      masker_(masker),
      processes_(processes),
      observer_(observer),
      options_(std::move(options)) {
  record_.context = context;
  record_.dir = options_.build_dir;
  for (const PlannedStep& planned : plan_.steps) {
    StepRecord step;
    step.id = planned.step->id;
    step.name = planned.step->name.empty() ? planned.step->id : planned.step->name;
    step.kind = std::string(planned.step->kind_name());
    index_by_id_.emplace(step.id, record_.steps.size());
    record_.steps.push_back(std::move(step));
  }
  satisfied_.assign(record_.steps.size(), false);
  shared_env_ = options_.environment;
  for (const auto& [key, value] : values_.env) shared_env_.insert_or_assign(key, value);
  // Reproducible outputs (zip timestamps, compilers that honour it) take the commit's time.
  if (context_.commit_time && !shared_env_.contains("SOURCE_DATE_EPOCH")) {
    shared_env_.insert_or_assign("SOURCE_DATE_EPOCH", std::to_string(*context_.commit_time));
  }
  for (auto& [key, value] : BuildVariables()) shared_env_.insert_or_assign(key, std::move(value));
  shared_envp_ = ToEnvp(shared_env_);
  dependants_.resize(plan_.steps.size());
  for (const PlannedStep& planned : plan_.steps) {
    std::vector<size_t>& needs = needs_.emplace_back();
    for (const std::string& need : planned.needs) {
      needs.push_back(index_by_id_.at(need));
      dependants_[needs.back()].push_back(needs_.size() - 1);
    }
    candidates_.insert(candidates_.end(), needs_.size() - 1);
  }
}

Scheduler::~Scheduler() = default;

BuildRecord Scheduler::Run() {
  record_.started = std::chrono::system_clock::now();
  SteadyTime start = steady_clock::now();
  std::optional<SteadyTime> build_deadline;
  if (pipeline_.timeout) build_deadline = start + *pipeline_.timeout;
  observer_.BuildStarted(record_);
  // Made once: a step whose log cannot be created fails, naming it.
  std::error_code ec;
  std::filesystem::create_directories(options_.build_dir + "/logs", ec);

  for (;;) {
    if (!stop_signal_ && !build_timed_out_) StartReadySteps();
    bool done = std::all_of(record_.steps.begin(), record_.steps.end(),
                            [](const StepRecord& step) { return IsTerminal(step.status); });
    if (done && active_.empty()) break;

    SteadyTime now = steady_clock::now();
    SteadyTime wake = now + observer_.tick_interval();
    if (build_deadline && !build_timed_out_) wake = std::min(wake, *build_deadline);
    for (const auto& active : active_) {
      if (active->deadline && active->ending == StepStatus::kPending) {
        wake = std::min(wake, *active->deadline);
      }
      if (active->retry_at) wake = std::min(wake, *active->retry_at);
    }
    for (const ProcessEvent& event : processes_.Wait(wake)) HandleEvent(event);

    now = steady_clock::now();
    if (build_deadline && now >= *build_deadline && !build_timed_out_ && !stop_signal_) {
      build_timed_out_ = true;
      for (StepRecord& step : record_.steps) {
        if (step.status == StepStatus::kPending) {
          step.status = StepStatus::kCancelled;
          step.message = "not started: the build timed out";
        }
      }
      for (const auto& active : active_) {
        AppendLog(active->index,
                  fmt::format("runner: the build's timeout ({}) passed; stopping this step\n",
                              FormatDuration(*pipeline_.timeout)));
        active->ending = StepStatus::kTimedOut;
        active->retry_at.reset();
        if (active->process_id >= 0) processes_.Terminate(active->process_id, SIGTERM);
      }
    }
    CheckDeadlines();
    if (now >= next_progress_read_) {
      next_progress_read_ = now + observer_.tick_interval();
      for (const auto& active : active_) ReadProgress(*active);
    }
    observer_.Tick();
  }

  record_.finished = std::chrono::system_clock::now();
  bool failed = std::any_of(record_.steps.begin(), record_.steps.end(), [](const StepRecord& s) {
    return s.status == StepStatus::kFailed || s.status == StepStatus::kTimedOut;
  });
  if (stop_signal_) {
    record_.status = "cancelled";
    record_.exit_code = 128 + stop_signal_;
  } else if (build_timed_out_) {
    record_.status = "timed_out";
    record_.exit_code = 1;
  } else {
    record_.status = failed ? "failed" : "success";
    record_.exit_code = failed ? 1 : 0;
  }
  // A build whose logs are not whole is no clean success (SPEC section 5).
  bool lost_log = std::any_of(record_.steps.begin(), record_.steps.end(),
                              [](const StepRecord& s) { return !s.log_error.empty(); });
  if (lost_log && record_.exit_code == 0) record_.exit_code = 1;
  observer_.BuildFinished(record_);
  return record_;
}

void Scheduler::StartReadySteps() {
  // Repeats because skipping a step can make its dependants ready in the same pass.
  for (bool changed = true; changed;) {
    changed = false;
    // In order, as a scan of every step would go; a step that finishes adds its dependants,
    // which this pass reaches when they come after it and the next pass when they come before.
    for (auto it = candidates_.begin(); it != candidates_.end(); it = candidates_.erase(it)) {
      const size_t i = *it;
      StepRecord& step = record_.steps[i];
      if (step.status != StepStatus::kPending) continue;
      const PlannedStep& planned = plan_.steps[i];
      std::optional<size_t> unmet;
      bool waiting = false;
      for (size_t j : needs_[i]) {
        if (!IsTerminal(record_.steps[j].status)) {
          waiting = true;
        } else if (!satisfied_[j] && !unmet) {
          unmet = j;
        }
      }
      if (unmet) {
        const StepRecord& need = record_.steps[*unmet];
        FinishStep(i, StepStatus::kSkipped,
                   fmt::format("need '{}' {}", need.id, StatusName(need.status)));
        changed = true;
        continue;
      }
      if (waiting) continue;
      if (planned.skip_reason) {
        satisfied_[i] = true;
        FinishStep(i, StepStatus::kSkipped, *planned.skip_reason);
        changed = true;
        continue;
      }
      if (static_cast<int>(active_.size()) >= options_.jobs) return;
      Launch(i);
      changed = true;
    }
  }
}

std::optional<std::string> Scheduler::LookupName(std::string_view name) {
  auto [scope, rest] = SplitFirst(name);
  if (scope == "build") return context_.Field(rest);
  if (scope == "vars") return FindValue(values_.vars, rest);
  if (scope == "env") {
    if (auto value = FindValue(values_.env, rest)) return value;
    return Lookup(options_.environment, rest);
  }
  if (scope != "steps") return std::nullopt;
  auto [id, field] = SplitFirst(rest);
  auto found = index_by_id_.find(id);
  if (found == index_by_id_.end()) return std::nullopt;
  const StepRecord& need = record_.steps[found->second];
  if (field == "status") return std::string(StatusName(need.status));
  auto [outputs, output] = SplitFirst(field);
  if (outputs != "outputs") return std::nullopt;
  for (const auto& [key, value] : need.outputs) {
    if (key == output) return value;
  }
  // An output that is not there must stop the step: passing on an empty AMI id is exactly the
  // mistake this tool exists to prevent.
  lookup_error_ =
      fmt::format("step '{}' ({}) has no output '{}'", need.id, StatusName(need.status), output);
  return std::nullopt;
}

Scheduler::Active* Scheduler::BeginAttempt(size_t index) {
  const Step& step = *plan_.steps[index].step;
  StepRecord& record = record_.steps[index];
  if (record.status != StepStatus::kPending) return FindActiveStep(index);  // a retry
  auto owned = std::make_unique<Active>();
  owned->index = index;
  owned->stream = std::make_unique<SecretMasker::Stream>(masker_);
  Active* active = owned.get();
  active_.push_back(std::move(owned));
  record.status = StepStatus::kRunning;
  record.started = std::chrono::system_clock::now();
  record.log = "logs/" + step.id + ".log";
  std::string log_path = options_.build_dir + "/" + record.log;
  active->log.reset(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!active->log.valid()) {
    std::string why = fmt::format("cannot create {}: {}", log_path, ErrnoText(errno));
    record.log.clear();
    FinishStep(index, StepStatus::kFailed, why);
    return nullptr;
  }
  // A name's expressions were checked by the loader; what they name is known once the step's
  // needs are done. One that still cannot be expanded is shown as written.
  if (auto name = Expand(record.name)) record.name = std::move(*name);
  observer_.StepStarted(record);
  return active;
}

Result<std::string> Scheduler::Expand(std::string_view text) {
  lookup_error_.clear();
  auto value = ExpandTemplate(text, [&](std::string_view name) { return LookupName(name); });
  if (!value) return Fail(lookup_error_.empty() ? value.error() : lookup_error_);
  return value;
}

Result<std::string> Scheduler::StepDirectory(const Step& step) {
  const std::string& workspace = context_.workspace;
  if (!step.dir) return workspace;
  auto dir = Expand(step.dir->text);
  if (!dir) return Fail("dir: " + dir.error());
  // The loader checks `dir` as written; an expression can still expand to `..` or `/`, and a
  // symlink can lead out.
  auto real = ResolvePath(*dir, workspace);
  if (!real) return Fail("dir: " + real.error());
  auto root = ResolvePath(workspace, workspace);
  if (!root) return Fail("dir: " + root.error());
  if (!IsWithin(*real, *root)) {
    return Fail(fmt::format("dir '{}' is outside the workspace {} (it resolves to {})", *dir,
                            workspace, *real));
  }
  return real;
}

// The RUNNER_* values a step's own `env` cannot change.
Environment Scheduler::BuildVariables() const {
  return {
      {"RUNNER_PROJECT", context_.project},
      {"RUNNER_BRANCH", context_.branch},
      {"RUNNER_COMMIT", context_.commit},
      {"RUNNER_BUILD_NUMBER", context_.number},
      {"RUNNER_BUILD_ID", context_.id},
      {"RUNNER_WORKSPACE", context_.workspace},
      // STATE, of STATE/builds/BUILD_ID: where a deploy's default ledger is (SPEC section 7).
      {"RUNNER_STATE_DIR",
       std::filesystem::path(options_.build_dir).parent_path().parent_path().string()},
  };
}

Result<Environment> Scheduler::StepEnvironment(const Step& step, const std::string& scratch) {
  Environment env;
  for (const EnvEntry& entry : step.env) {
    auto value = Expand(entry.value.text);
    if (!value) return Fail(fmt::format("env {}: {}", entry.name, value.error()));
    // A secret that an earlier step handed over (a login's token) is masked before this step
    // can print it.
    if (std::ranges::find(values_.secret_names, entry.name) != values_.secret_names.end()) {
      masker_.Add(*value);
    }
    env.insert_or_assign(entry.name, *value);
  }
  if (!step.env.empty()) {
    for (auto& [key, value] : BuildVariables()) env.insert_or_assign(key, std::move(value));
  }
  env.insert_or_assign("RUNNER_STEP", step.id);
  env.insert_or_assign("RUNNER_OUTPUT", scratch + ".out");
  // A kind that caches itself (packer) reads it to never reuse a result (SPEC section 8).
  if (step.cache && !step.cache->enabled) env.insert_or_assign("RUNNER_CACHE", "off");
  return env;
}

std::optional<std::string> Scheduler::StepVariable(const StepSetup& setup,
                                                   std::string_view name) const {
  if (auto value = Lookup(setup.env, name)) return value;
  return Lookup(shared_env_, name);
}

Result<Scheduler::StepSetup> Scheduler::PrepareStep(const Step& step, Active& active) {
  // Emptied for every attempt: outputs come from the attempt that succeeded.
  active.scratch = options_.scratch_dir + "/" + step.id;
  auto cwd = StepDirectory(step);
  if (!cwd) return Fail(cwd.error());
  auto env = StepEnvironment(step, active.scratch);
  if (!env) return Fail(env.error());
  lookup_error_.clear();
  auto config = ExpandConfig(step.config, [&](std::string_view name) { return LookupName(name); });
  if (!config) {
    return Fail(std::string(step.kind_name()) + "." +
                (lookup_error_.empty() ? config.error() : lookup_error_));
  }
  active.cwd = *cwd;
  return StepSetup{std::move(*cwd), std::move(*env), std::move(*config)};
}

Result<ProcessSpec> Scheduler::StepProcess(const Step& step, Active& active, StepSetup setup) {
  const std::string& scratch = active.scratch;
  Status created;
  CreateOutputFile(scratch + ".out", created);
  ProcessSpec spec;
  std::optional<std::vector<std::string>> command = step.kind->Command(setup.config);
  active.through_step_protocol = !command;
  if (command) {
    spec.argv = std::move(*command);
  } else {
    StepRequest request{
        std::string(step.kind_name()), setup.cwd, pipeline_.path, KillGrace(step), context_,
        std::move(setup.config)};
    setup.env.insert_or_assign(kStepConfigVar, scratch + ".request");
    setup.env.insert_or_assign(kStepArtifactsVar, scratch + ".artifacts");
    setup.env.insert_or_assign(kStepErrorVar, scratch + ".error");
    setup.env.insert_or_assign(kStepProgressVar, scratch + ".progress");
    ::unlink((scratch + ".progress").c_str());  // an earlier attempt's
    active.progress.reset();
    CreatePrivateFile(scratch + ".artifacts", "", created);
    CreatePrivateFile(scratch + ".error", "", created);
    CreatePrivateFile(scratch + ".request", EncodeStepRequest(request), created);
    spec.argv = {options_.self_exe, "__step"};
  }
  if (!created) return Fail(created.error());
  spec.env = ToEnvp(shared_envp_, setup.env);
  spec.cwd = std::move(setup.cwd);
  spec.kill_grace = KillGrace(step);
  return spec;
}

// A finished step's .out, emptied, is the next step's: no file is made or removed per step.
// Where ext4 runs without a journal, each file made skips, one by one, every inode freed in the
// last minute, so making and removing one per step made a long build quadratic.
void Scheduler::CreateOutputFile(const std::string& path, Status& status) {
  if (!spare_outputs_.empty()) {
    // Not over an earlier attempt's file: that one is emptied where it is.
    if (::renameat2(AT_FDCWD, spare_outputs_.back().c_str(), AT_FDCWD, path.c_str(),
                    RENAME_NOREPLACE) == 0) {
      spare_outputs_.pop_back();
      return;
    }
    if (errno != EEXIST) spare_outputs_.pop_back();  // gone, or a file system without it
  }
  CreatePrivateFile(path, "", status);
}

// Only the file the runner made, as it made it: a step may have replaced it by a link (to a
// file it must not empty) or shared it; then it is removed.
void Scheduler::RecycleOutputFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  struct stat st;
  bool reusable = fd.valid() && ::fstat(fd.get(), &st) == 0 && S_ISREG(st.st_mode) &&
                  st.st_nlink == 1 && (st.st_mode & 07777) == 0600 &&
                  (st.st_size == 0 || ::ftruncate(fd.get(), 0) == 0);
  if (reusable) {
    spare_outputs_.push_back(path);
  } else {
    ::unlink(path.c_str());
  }
}

void Scheduler::Launch(size_t index) {
  const Step& step = *plan_.steps[index].step;
  Active* active = BeginAttempt(index);
  if (!active) return;
  StepRecord& record = record_.steps[index];
  active->retry_at.reset();
  active->ending = StepStatus::kPending;
  ++record.attempts;
  if (record.attempts > 1) {
    AppendLog(index,
              fmt::format("runner: attempt {} of {}\n", record.attempts, step.retry.limit + 1));
  }
  active->attempt_started = steady_clock::now();
  if (step.timeout) active->deadline = active->attempt_started + *step.timeout;

  auto setup = PrepareStep(step, *active);
  if (setup && record.attempts == 1 && RestoreFromCache(index, *active, *setup)) return;
  auto spec = setup ? StepProcess(step, *active, std::move(*setup))
                    : Result<ProcessSpec>(Fail(setup.error()));
  auto started = spec ? processes_.Start(std::move(*spec)) : Result<int>(Fail(spec.error()));
  if (!started) {
    AppendLog(index, "runner: " + started.error() + "\n");
    FinishStep(index, StepStatus::kFailed, started.error());
    return;
  }
  active->process_id = *started;
}

StepKeyParts Scheduler::CacheKeyParts(const Step& step, const StepSetup& setup) const {
  StepKeyParts parts;
  parts.kind = step.kind_name();
  parts.config = &setup.config;
  auto workspace = ResolvePath(context_.workspace, context_.workspace);
  parts.dir = WorkspaceRelative(setup.cwd, workspace.value_or(context_.workspace));
  std::vector<std::string> names;
  for (const auto& [name, value] : values_.env) names.push_back(name);
  for (const EnvEntry& entry : step.env) names.push_back(entry.name);
  for (const std::string& name : names) {
    bool seen = std::ranges::find(parts.env, name, &std::pair<std::string, std::string>::first) !=
                parts.env.end();
    if (!seen) parts.env.emplace_back(name, StepVariable(setup, name).value_or(""));
  }
  for (const std::string& name : step.cache->env) {
    parts.declared_env.emplace_back(name, StepVariable(setup, name));
  }
  parts.inputs = step.cache->inputs;
  return parts;
}

bool Scheduler::RestoreFromCache(size_t index, Active& active, const StepSetup& setup) {
  const Step& step = *plan_.steps[index].step;
  if (!options_.cache || !step.cache || !step.cache->enabled ||
      step.kind->cache_use() != CacheUse::kGeneric) {
    return false;
  }
  StepKeyParts parts = CacheKeyParts(step, setup);
  FileDigests& digests = options_.cache->digests();
  std::uint64_t read_before = digests.files_read();
  SteadyTime keying = steady_clock::now();
  auto key = StepKey(parts, setup.cwd, context_.workspace, digests);
  if (!key) {
    AppendLog(index, "runner: cache: not used: " + key.error() + "\n");
    return false;
  }
  auto took = std::chrono::duration_cast<std::chrono::microseconds>(steady_clock::now() - keying);
  std::string keyed =
      fmt::format("{} input files read, the others known by their stat data; {:.1f} ms",
                  digests.files_read() - read_before, took.count() / 1000.0);
  StepRecord& record = record_.steps[index];
  active.cache_key = *key;
  record.cache = StepCacheRecord{false, *key, "", {}};
  auto hit = options_.cache->Restore(*key, setup.cwd, context_.workspace,
                                     [&](std::string_view text) { AppendLog(index, text); });
  if (!hit) {
    AppendLog(index, fmt::format("runner: cache miss {} ({})\n", *key, keyed));
    return false;
  }
  AppendLog(index, fmt::format("runner: cache hit {} (from {}, stored by {}; {}): the step did not "
                               "run; the log of that run follows\n",
                               *key, hit->store, hit->entry.build, keyed));
  AppendLog(index, hit->log);
  record.outputs = std::move(hit->entry.outputs);
  record.artifacts = std::move(hit->entry.artifacts);
  record.cache->hit = true;
  record.cache->from = hit->entry.build;
  record.exit_code = 0;
  active.cache_key.reset();
  FinishStep(index, StepStatus::kSuccess, "");
  return true;
}

void Scheduler::StoreInCache(size_t index, Active& active) {
  StepRecord& record = record_.steps[index];
  if (!active.cache_key || !record.log_error.empty()) return;
  const Step& step = *plan_.steps[index].step;
  auto note = [&](std::string_view text) {
    std::string masked = masker_.Mask(text);
    WriteLog(active, masked);
    AppendTail(record, masked, 2 * kTailBytes);
  };
  // An entry is a file that outlives the build: a secret must not reach it, and an output that
  // holds one cannot be stored masked (a later step needs the value).
  for (const auto& [name, value] : record.outputs) {
    if (masker_.Mask(value) != value) {
      note("runner: cache: not stored: output '" + name + "' holds a secret\n");
      return;
    }
  }
  auto log = ReadFile(options_.build_dir + "/" + record.log);
  if (!log) {
    note("runner: cache: not stored: " + log.error() + "\n");
    return;
  }
  CacheEntry entry{*active.cache_key, step.id, context_.id, record.outputs,
                   record.artifacts,  {},      {}};
  record.cache->stored = options_.cache->Store(std::move(entry), step.cache->outputs, *log,
                                               active.cwd, context_.workspace, note);
}

Scheduler::Active* Scheduler::FindActiveStep(size_t index) {
  for (auto& active : active_) {
    if (active->index == index) return active.get();
  }
  return nullptr;
}

Scheduler::Active* Scheduler::FindActive(int process_id) {
  for (auto& active : active_) {
    if (active->process_id == process_id) return active.get();
  }
  return nullptr;
}

void Scheduler::AppendLog(size_t index, std::string_view text) {
  if (Active* active = FindActiveStep(index)) {
    std::string masked = active->stream->Feed(text);
    WriteLog(*active, masked);
    StepRecord& record = record_.steps[index];
    AppendTail(record, masked, 2 * kTailBytes);
    observer_.StepOutput(record, masked);
  }
}

void Scheduler::AppendTail(StepRecord& record, std::string_view masked, size_t keep) {
  // Never more than `keep` bytes, whatever one piece holds (a step may print 300 MB on a line).
  if (masked.size() >= kTailBytes) {
    record.log_tail.assign(masked.substr(masked.size() - kTailBytes));
  } else {
    record.log_tail += masked;
  }
  if (record.log_tail.size() > keep) {
    record.log_tail.erase(0, record.log_tail.size() - kTailBytes);
  }
}

void Scheduler::WriteLog(Active& active, std::string_view text) {
  if (text.empty() || !active.log_error.empty()) return;
  if (auto written = WriteAll(active.log.get(), text); !written) {
    active.log_error = fmt::format("the log {}/{} is incomplete: {}", options_.build_dir,
                                   record_.steps[active.index].log, written.error());
  }
}

void Scheduler::HandleEvent(const ProcessEvent& event) {
  switch (event.type) {
    case ProcessEvent::Type::kOutput:
      if (Active* active = FindActive(event.id)) AppendLog(active->index, event.data);
      break;
    case ProcessEvent::Type::kDone:
      if (Active* active = FindActive(event.id)) {
        active->process_id = -1;
        FinishAttempt(active->index, event.exit_code);
      }
      break;
    case ProcessEvent::Type::kSignal:
      Stop(event.signal);
      break;
  }
}

void Scheduler::Stop(int signal) {
  if (stop_signal_) {
    // A second signal: the user does not want to wait for the grace period.
    for (const auto& active : active_) {
      if (active->process_id >= 0) processes_.Kill(active->process_id);
    }
    return;
  }
  stop_signal_ = signal;
  std::string why = "cancelled by " + DescribeSignal(signal);
  for (StepRecord& step : record_.steps) {
    if (step.status == StepStatus::kPending) {
      step.status = StepStatus::kCancelled;
      step.message = "not started: " + why;
    }
  }
  std::vector<size_t> waiting;
  for (const auto& active : active_) {
    active->ending = StepStatus::kCancelled;
    if (active->process_id >= 0) {
      processes_.Terminate(active->process_id, signal);
    } else {
      waiting.push_back(active->index);
    }
  }
  // Steps waiting for a retry have nothing running, so they end now.
  for (size_t index : waiting) FinishStep(index, StepStatus::kCancelled, why);
}

void Scheduler::CheckDeadlines() {
  SteadyTime now = steady_clock::now();
  std::vector<size_t> retry;
  for (const auto& active : active_) {
    if (active->retry_at && now >= *active->retry_at && !stop_signal_ && !build_timed_out_) {
      retry.push_back(active->index);
    }
    if (active->process_id >= 0 && active->deadline && now >= *active->deadline &&
        active->ending == StepStatus::kPending) {
      active->ending = StepStatus::kTimedOut;
      const Step& step = *plan_.steps[active->index].step;
      AppendLog(active->index, fmt::format("runner: timed out after {}; sending SIGTERM\n",
                                           FormatDuration(*step.timeout)));
      processes_.Terminate(active->process_id, SIGTERM);
    }
  }
  // Launch may finish a step at once and so change active_: start retries after the scan.
  for (size_t index : retry) Launch(index);
}

void Scheduler::ReadProgress(Active& active) {
  if (!active.through_step_protocol) return;
  auto text = ReadFile(active.scratch + ".progress");
  std::optional<Progress> progress = text ? DecodeProgress(*text) : std::nullopt;
  if (!progress || progress == active.progress) return;
  active.progress = progress;
  progress->what = masker_.Mask(progress->what);
  observer_.StepProgress(record_.steps[active.index], *progress);
}

void Scheduler::FinishAttempt(size_t index, int exit_code) {
  Active* active = FindActiveStep(index);
  StepRecord& record = record_.steps[index];
  const Step& step = *plan_.steps[index].step;
  record.exit_code = exit_code;

  StepStatus status = active->ending;
  std::string message;
  bool built_in = active->through_step_protocol;
  const std::string& scratch = active->scratch;
  if (status == StepStatus::kCancelled) {
    message = "cancelled by " + DescribeSignal(stop_signal_);
  } else if (status == StepStatus::kTimedOut) {
    message = build_timed_out_ ? "the build timed out"
                               : "timed out after " + FormatDuration(*step.timeout);
  } else if (exit_code != 0) {
    status = StepStatus::kFailed;
    // A built-in step says why it failed; a shell step's log does.
    auto error = built_in ? ReadFile(scratch + ".error") : Result<std::string>("");
    message = error && !error->empty() ? *error : fmt::format("exit code {}", exit_code);
  } else {
    auto text = ReadFile(scratch + ".out");
    auto outputs = text ? ParseStepOutputs(*text) : Result<Outputs>(Fail(text.error()));
    auto artifacts =
        built_in ? ReadStepArtifacts(scratch + ".artifacts") : Result<std::vector<Artifact>>();
    if (outputs && artifacts) {
      record.outputs = std::move(*outputs);
      record.artifacts = std::move(*artifacts);
      status = StepStatus::kSuccess;
    } else {
      status = StepStatus::kFailed;
      message = outputs ? artifacts.error() : outputs.error();
      AppendLog(index, "runner: " + message + "\n");
    }
  }

  bool may_retry = (status == StepStatus::kFailed || status == StepStatus::kTimedOut) &&
                   !build_timed_out_ && !stop_signal_ && record.attempts <= step.retry.limit;
  if (may_retry) {
    AppendLog(index, fmt::format("runner: attempt {} {}; retrying in {}\n", record.attempts,
                                 message, FormatDuration(step.retry.delay)));
    active->retry_at = std::chrono::steady_clock::now() + step.retry.delay;
    active->deadline.reset();
    return;
  }
  FinishStep(index, status, message);
}

void Scheduler::FinishStep(size_t index, StepStatus status, std::string message) {
  StepRecord& record = record_.steps[index];
  record.status = status;
  record.message = masker_.Mask(message);
  if (status == StepStatus::kSuccess) satisfied_[index] = true;
  candidates_.insert(dependants_[index].begin(), dependants_[index].end());
  auto it = std::find_if(active_.begin(), active_.end(),
                         [&](const auto& active) { return active->index == index; });
  if (it == active_.end()) {
    // Never started (skipped): nothing to finish but the record.
    observer_.StepFinished(record);
    return;
  }
  Active& active = **it;
  std::string rest = active.stream->Finish();
  WriteLog(active, rest);
  AppendTail(record, rest, kTailBytes);
  if (!rest.empty()) observer_.StepOutput(record, rest);
  record.log_error = active.log_error;
  ReadProgress(active);
  if (status == StepStatus::kSuccess) StoreInCache(index, active);
  if (!active.scratch.empty()) {
    RecycleOutputFile(active.scratch + ".out");
    if (active.through_step_protocol) {
      for (const char* suffix : kStepProtocolSuffixes) ::unlink((active.scratch + suffix).c_str());
    }
  }
  record.finished = std::chrono::system_clock::now();
  active_.erase(it);
  observer_.StepFinished(record);
}

}  // namespace runner
