// The build library: one entry point that runs a build of a pipeline file (SPEC sections 2 to
// 5) for any caller: `runner run`, `runner serve`, the tests. It loads and checks the pipeline,
// detects the build context, plans, expands the build's values, runs the steps through a
// ProcessRunner while a BuildObserver watches, and writes the records. It prints nothing and
// exits nothing: everything comes back as values.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "runner/build_context.h"
#include "runner/build_record.h"
#include "runner/cache/step_cache.h"
#include "runner/environment.h"
#include "runner/pipeline.h"
#include "runner/plan.h"
#include "runner/process.h"
#include "runner/result.h"
#include "runner/scheduler.h"
#include "runner/step_kind.h"

namespace runner {

struct BuildRequest {
  std::string pipeline;  // the pipeline file, as messages name it
  // --var KEY=VALUE, in command-line order (a later one wins); each value a literal.
  std::vector<std::pair<std::string, std::string>> vars;
  std::vector<std::string> only;  // step ids; empty: every step
  // The whole build context, given by the caller (a webhook's payload, a test): nothing is
  // detected and no build number taken. Its workspace is the build's.
  std::optional<BuildContext> context;
  // Otherwise, overrides of the detected build context.
  std::optional<std::string> branch;
  std::optional<std::string> commit;
  std::optional<std::string> number;
  std::string workspace;  // empty: the Git top level of the pipeline's directory, else that dir
  std::string state_dir;  // empty: WORKSPACE/.runner
  int jobs = 0;           // steps at once; 0: one per CPU
  Environment environment;
  // More variables whose values are masked everywhere, as `secrets:` are (a server's tokens).
  std::vector<std::string> secret_env;
  // Keep STATE/builds/BUILD_ID/live.json, the record so far in report.json's form with the
  // build's status `running` (SPEC section 5), rewritten whole as the build and each step start
  // and end, and removed once report.json is written: what a build page shows of a running
  // build. It is a view only: a failure to write it does not fail the build.
  bool live_record = false;
  std::string self_exe;  // this binary, for kinds that run as `runner __step`
  // The most the local step cache (STATE/cache) keeps after the build; least recently used
  // entries go first (SPEC section 8).
  std::uint64_t cache_max = kDefaultCacheMaxBytes;
};

// Why a build did not start: the pipeline's diagnostics (formatted, may be empty) and, for a
// problem outside the file, a message. Either way nothing ran and no build number was taken.
struct BuildFailure {
  std::string diagnostics;
  std::string message;
};

// The workspace and state directory of a build of `request` (both absolute): --workspace, else
// the Git top level of the pipeline's directory, else that directory.
std::expected<std::pair<std::string, std::string>, BuildFailure> BuildDirectories(
    const BuildRequest& request);

// A pipeline file read and checked, with its warnings (formatted diagnostics).
struct LoadedPipeline {
  Pipeline pipeline;
  std::string warnings;
};
std::expected<LoadedPipeline, BuildFailure> LoadPipelineFile(const BuildRequest& request,
                                                             const KindRegistry& kinds);

// A build resolved before anything runs: what `runner plan` shows and `run` executes.
struct PreparedBuild {
  Pipeline pipeline;
  BuildContext context;
  std::string state_dir;  // absolute
  Plan plan;              // points into `pipeline`: keep them together
  BuildValues values;     // vars, env and secrets, expanded
  std::string warnings;   // the pipeline's, formatted
};

// `allocate_number`: take a build number (a run) or only show the next one (plan, dry run).
// Nothing that fails here takes a number.
std::expected<PreparedBuild, BuildFailure> PrepareBuild(const BuildRequest& request,
                                                        const KindRegistry& kinds,
                                                        bool allocate_number);

// Whether a build writes to the pipeline's shared cache: its branch matches `cache_write`, and
// it is not a pull request's (whose branch name its author chose, a fork's `main` too).
bool WritesSharedCache(const Pipeline& pipeline, const BuildContext& context);

// Runs a prepared build: creates STATE/builds/BUILD_ID (refused when it exists, since every
// build keeps its own record), runs the plan, and writes report.json and junit.xml. A record
// that could not be written fails the build (exit code 1 at least) with the reason in
// `records_error`.
std::expected<BuildRecord, BuildFailure> RunPreparedBuild(const PreparedBuild& build,
                                                          const BuildRequest& request,
                                                          ProcessRunner& processes,
                                                          BuildObserver& observer);

// PrepareBuild, then RunPreparedBuild: the one call a caller needs. The observer's
// PipelineWarnings() gets the pipeline's warnings first.
std::expected<BuildRecord, BuildFailure> RunBuild(const BuildRequest& request,
                                                  const KindRegistry& kinds,
                                                  ProcessRunner& processes,
                                                  BuildObserver& observer);

}  // namespace runner
