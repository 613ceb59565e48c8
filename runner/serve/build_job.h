// One build of `runner serve`, run as `runner __build JOB_FILE`: a process of its own per
// build, so that a build is cancelled with a signal (its steps get their kill_grace), and a
// crash in one build never takes the server or another build with it. The job file holds the
// whole build context from the webhook (SPEC section 4): nothing is detected, no number taken.
#pragma once

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "runner/build_context.h"
#include "runner/result.h"
#include "runner/serve/build_queue.h"
#include "runner/serve/git_mirror.h"
#include "runner/serve/github_status.h"
#include "runner/serve/serve_config.h"
#include "runner/step_kind.h"

namespace runner::serve {

struct BuildJob {
  std::string pipeline;   // absolute, inside context.workspace
  std::string state_dir;  // absolute: the server's; the record goes to STATE/builds/BUILD_ID
  BuildContext context;
  std::vector<std::string> secret_env;  // variables masked like secrets (the repo's token)
  int jobs = 0;                         // steps at once; 0: one per CPU
};

nlohmann::ordered_json BuildJobToJson(const BuildJob& job);
Result<BuildJob> BuildJobFromJson(const nlohmann::ordered_json& json);

// Fetches the commit of `entry` into `mirror` (polling `cancelled`), checks it out in a fresh
// work tree at `worktree` (one left there by a stopped build is removed first), and makes the
// job that builds it with its record under `state_dir`: the whole context from the push, the
// changed files from Git, the repository's token masked.
Result<BuildJob> PrepareJob(GitMirror& mirror, const QueueEntry& entry, const RepoConfig& repo,
                            const std::string& worktree, const std::string& state_dir,
                            const std::function<bool()>& cancelled);

// What a build child's environment is: the server's own without the webhook secrets and the
// admin token; the repositories' tokens stay (a build may fetch with them) and are masked.
std::vector<std::string> BuildEnvironment(const ServeConfig& config,
                                          const Environment& environment);

// The commit status of a queued build: `state`, linked to its page below `base_url`, described
// as "PROJECT #NUMBER: WHAT", in the context runner/PROJECT.
CommitStatus EntryCommitStatus(const QueueEntry& entry, std::string state, std::string_view what,
                               const std::string& base_url);
// The commit status state of a build's result: success, failure (failed, timed_out) or error.
std::string CommitState(std::string_view result);

// Writes the job file (mode 0600, atomically).
Status WriteBuildJob(const std::string& path, const BuildJob& job);

// The body of `runner __build JOB_FILE`: runs the build with a live record (live.json), the
// console in its non-terminal form on stdout. Exit codes as `runner run`'s.
int RunBuildJob(const std::string& job_file, const KindRegistry& kinds);

// How long a cancelled build child gets before SIGKILL: longer than any step's kill_grace
// (packer's 10 minutes), since the child passes the signal on and waits for its steps.
inline constexpr auto kBuildChildGrace = std::chrono::minutes(12);

// Why a build child that ended without a report.json failed: its exit code and the end of its
// output, kept at `console_path`.
std::string NoRecordReason(int exit_code, const std::string& console_path);

}  // namespace runner::serve
