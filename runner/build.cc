#include "runner/build.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "runner/atomic_file.h"
#include "runner/fs.h"
#include "runner/glob.h"
#include "runner/masker.h"
#include "runner/pipeline_loader.h"
#include "runner/report.h"

namespace runner {

namespace {

namespace fs = std::filesystem;

std::unexpected<BuildFailure> Failure(std::string message) {
  return std::unexpected(BuildFailure{"", std::move(message)});
}

// STATE/scratch/BUILD_ID (mode 0700): the steps' hand-over files, which hold expanded
// configuration and so secrets. STATE/scratch/BUILD_ID.lock is locked while the build runs;
// before making its own, a build removes every scratch directory whose lock nobody holds: what
// a killed runner left behind.
class ScratchSpace {
 public:
  static Result<std::unique_ptr<ScratchSpace>> Create(const std::string& state_dir,
                                                      const std::string& build_id) {
    std::string root = state_dir + "/scratch";
    std::error_code ec;
    fs::create_directories(root, ec);
    if (ec) return Fail(fmt::format("cannot create {}: {}", root, ec.message()));
    RemoveAbandoned(root);
    auto space = std::unique_ptr<ScratchSpace>(new ScratchSpace());
    space->dir_ = root + "/" + build_id;
    space->lock_path_ = space->dir_ + ".lock";
    space->lock_.reset(::open(space->lock_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!space->lock_.valid() || ::flock(space->lock_.get(), LOCK_EX | LOCK_NB) != 0) {
      return Fail(fmt::format("cannot lock {}: {}", space->lock_path_, ErrnoText(errno)));
    }
    if (::mkdir(space->dir_.c_str(), 0700) != 0) {
      return Fail(fmt::format("cannot create {}: {}", space->dir_, ErrnoText(errno)));
    }
    return space;
  }

  ~ScratchSpace() {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
    ::unlink(lock_path_.c_str());
  }

  const std::string& dir() const { return dir_; }

 private:
  ScratchSpace() = default;

  static void RemoveAbandoned(const std::string& root) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(root, ec)) {
      std::string path = entry.path().string();
      if (!path.ends_with(".lock")) continue;
      UniqueFd lock(::open(path.c_str(), O_RDWR | O_CLOEXEC));
      if (!lock.valid() || ::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) continue;  // running
      std::error_code ignored;
      fs::remove_all(path.substr(0, path.size() - 5), ignored);
      ::unlink(path.c_str());
    }
  }

  std::string dir_;
  std::string lock_path_;
  UniqueFd lock_;
};

// Passes every event on to `next`, and keeps BUILD_DIR/live.json (BuildRequest::live_record).
// It masks with the build's own masker, which learns the secrets that steps' env sets before
// they start.
class LiveRecord : public BuildObserver {
 public:
  LiveRecord(BuildObserver& next, const SecretMasker& masker, std::string path)
      : next_(next), masker_(masker), path_(std::move(path)) {}

  void PipelineWarnings(std::string_view text) override { next_.PipelineWarnings(text); }
  void BuildStarted(const BuildRecord& build) override {
    record_ = build;
    Write();
    next_.BuildStarted(build);
  }
  void StepStarted(const StepRecord& step) override {
    Update(step);
    next_.StepStarted(step);
  }
  void StepOutput(const StepRecord& step, std::string_view text) override {
    next_.StepOutput(step, text);
  }
  void StepFinished(const StepRecord& step) override {
    Update(step);
    next_.StepFinished(step);
  }
  void BuildFinished(const BuildRecord& build) override { next_.BuildFinished(build); }
  void Tick() override { next_.Tick(); }
  Duration tick_interval() const override { return next_.tick_interval(); }

 private:
  void Update(const StepRecord& step) {
    for (StepRecord& entry : record_.steps) {
      if (entry.id == step.id) entry = step;
    }
    Write();
  }
  void Write() {
    BuildRecord now = record_;
    now.status = "running";
    // A view of a running build: the rename keeps it whole; no fsync for each step.
    (void)WriteFileAtomic(path_, ReportJson(now, masker_), /*sync=*/false);
  }

  BuildObserver& next_;
  const SecretMasker& masker_;
  std::string path_;
  BuildRecord record_;
};

}  // namespace

std::expected<std::pair<std::string, std::string>, BuildFailure> BuildDirectories(
    const BuildRequest& request) {
  std::error_code ec;
  fs::path pipeline_dir = fs::absolute(request.pipeline, ec).parent_path();
  std::string workspace;
  if (!request.workspace.empty()) {
    workspace = fs::absolute(request.workspace, ec).lexically_normal().string();
    if (!fs::is_directory(workspace, ec)) {
      return Failure(fmt::format("--workspace {}: not a directory", request.workspace));
    }
  } else {
    workspace = GitTopLevel(pipeline_dir.string()).value_or(pipeline_dir.string());
  }
  if (workspace.size() > 1 && workspace.back() == '/') workspace.pop_back();
  std::string state_dir = request.state_dir.empty()
                              ? workspace + "/.runner"
                              : fs::absolute(request.state_dir, ec).lexically_normal().string();
  return std::pair(workspace, state_dir);
}

std::expected<LoadedPipeline, BuildFailure> LoadPipelineFile(const BuildRequest& request,
                                                             const KindRegistry& kinds) {
  auto source = ReadFileAtMost(request.pipeline, kMaxPipelineBytes + 1);
  if (!source) return Failure(source.error());
  if (source->size() > kMaxPipelineBytes) {
    Diagnostics too_large(request.pipeline, "");
    too_large.Error({},
                    fmt::format("the pipeline file is larger than 1 MiB (the limit is {} bytes)",
                                kMaxPipelineBytes));
    return std::unexpected(BuildFailure{too_large.Format(), ""});
  }
  LoadOptions options;
  options.environment = request.environment;
  options.kinds = &kinds;
  options.var_overrides = request.vars;
  Diagnostics diags(request.pipeline, *source);
  std::optional<Pipeline> pipeline = ParsePipeline(request.pipeline, *source, options, diags);
  if (diags.HasErrors()) return std::unexpected(BuildFailure{diags.Format(), ""});
  return LoadedPipeline{std::move(*pipeline), diags.Format()};
}

std::expected<PreparedBuild, BuildFailure> PrepareBuild(const BuildRequest& request,
                                                        const KindRegistry& kinds,
                                                        bool allocate_number) {
  auto loaded = LoadPipelineFile(request, kinds);
  if (!loaded) return std::unexpected(loaded.error());
  auto dirs = BuildDirectories(request);
  if (!dirs) return std::unexpected(dirs.error());
  if (request.context) {
    dirs->first = request.context->workspace;
    if (request.state_dir.empty()) dirs->second = dirs->first + "/.runner";
  }
  ContextRequest context_request;
  context_request.branch = request.branch;
  context_request.commit = request.commit;
  context_request.number = request.number;
  context_request.pipeline_project = loaded->pipeline.project;
  context_request.workspace = dirs->first;
  context_request.state_dir = dirs->second;
  context_request.env = request.environment;
  PreparedBuild build{std::move(loaded->pipeline), {}, dirs->second, {}, {},
                      std::move(loaded->warnings)};
  // Everything that can refuse the build is decided with the next number only looked at, so
  // that a usage error takes none (SPEC section 2); only then is the number taken.
  for (bool take : {false, true}) {
    if (take && !allocate_number) break;
    context_request.allocate_number = take;
    auto context = request.context ? Result<BuildContext>(*request.context)
                                   : DetectBuildContext(context_request);
    if (!context) return Failure(context.error());
    build.context = std::move(*context);
    auto plan = MakePlan(build.pipeline, build.context, request.only);
    if (!plan) return Failure(plan.error());
    build.plan = std::move(*plan);
    std::vector<std::string> secret_env = kinds.SecretEnv();
    secret_env.insert(secret_env.end(), request.secret_env.begin(), request.secret_env.end());
    auto values = ExpandBuildValues(build.pipeline, build.context, request.environment, secret_env);
    if (!values) return Failure(values.error());
    build.values = std::move(*values);
    if (request.context) break;
  }
  return build;
}

bool WritesSharedCache(const Pipeline& pipeline, const BuildContext& context) {
  if (context.event == "pull_request") return false;
  return AnyMatch(pipeline.cache_write, context.branch);
}

std::expected<BuildRecord, BuildFailure> RunPreparedBuild(const PreparedBuild& build,
                                                          const BuildRequest& request,
                                                          ProcessRunner& processes,
                                                          BuildObserver& observer) {
  StepCacheOptions cache_options;
  cache_options.dir = build.state_dir + "/cache";
  if (!build.pipeline.cache_store.empty()) {
    ArtifactStoreOptions store_options;
    store_options.workspace = build.context.workspace;
    store_options.env = request.environment;
    auto shared = OpenArtifactStore(build.pipeline.cache_store, std::move(store_options));
    if (!shared) return Failure("cache_store: " + shared.error());
    cache_options.shared = std::move(*shared);
    cache_options.write_shared = WritesSharedCache(build.pipeline, build.context);
  }
  StepCache cache(std::move(cache_options));

  std::string build_dir = build.state_dir + "/builds/" + build.context.id;
  std::error_code ec;
  if (fs::exists(build_dir, ec)) {
    return Failure(fmt::format(
        "{} already exists: every build keeps its own record; pass another --build-number",
        build_dir));
  }
  fs::create_directories(build_dir, ec);
  if (ec) return Failure(fmt::format("cannot create {}: {}", build_dir, ec.message()));

  auto scratch = ScratchSpace::Create(build.state_dir, build.context.id);
  if (!scratch) return Failure(scratch.error());
  SecretMasker masker(build.values.secrets);
  SchedulerOptions options;
  options.jobs = request.jobs > 0
                     ? request.jobs
                     : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  options.build_dir = build_dir;
  options.scratch_dir = (*scratch)->dir();
  options.environment = request.environment;
  options.self_exe = request.self_exe;
  options.cache = &cache;
  LiveRecord live(observer, masker, build_dir + "/live.json");
  Scheduler scheduler(build.pipeline, build.plan, build.context, build.values, masker, processes,
                      request.live_record ? live : observer, options);
  BuildRecord record = scheduler.Run();
  // The cache only saves work: what goes wrong with it is a warning, never a failed build.
  for (Status kept : {cache.SaveStatData(), cache.Evict(request.cache_max)}) {
    if (!kept) observer.PipelineWarnings("runner: warning: cache: " + kept.error() + "\n");
  }
  if (auto written = WriteReports(build_dir, record, masker); !written) {
    record.records_error = written.error();
    if (record.exit_code == 0) record.exit_code = 1;
  } else if (request.live_record) {
    ::unlink((build_dir + "/live.json").c_str());
  }
  return record;
}

std::expected<BuildRecord, BuildFailure> RunBuild(const BuildRequest& request,
                                                  const KindRegistry& kinds,
                                                  ProcessRunner& processes,
                                                  BuildObserver& observer) {
  auto build = PrepareBuild(request, kinds, /*allocate_number=*/true);
  if (!build) return std::unexpected(build.error());
  if (!build->warnings.empty()) observer.PipelineWarnings(build->warnings);
  return RunPreparedBuild(*build, request, processes, observer);
}

}  // namespace runner
