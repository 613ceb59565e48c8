// The deploy ledger (SPEC section 7): what was deployed where, by whom and how it went, as one
// JSON object per deploy at ENV/DEPLOY_ID.json in an artifact store (the pipeline's `ledger:`,
// S3 or a directory; default STATE/deployments), so that every machine that deploys sees one
// history. An entry is written once and never replaced. Pausing and resuming an environment
// are entries of its history too, beside ENV/paused.json, which says whether it is paused now.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runner/build_record.h"
#include "runner/result.h"
#include "runner/step_outputs.h"
#include "runner/store/artifact_store.h"

namespace runner::deploy {

enum class DeployOutcome {
  kSuccess,
  kFailed,
  kCancelled,
  kNoChange,  // the change set was empty: the stack already was what the build describes
  kPaused,    // an entry written by Ledger::Pause, not a deploy
  kResumed,   // an entry written by Ledger::Resume, not a deploy
};

// "success", "failed", "cancelled", "no-change", "paused", "resumed".
std::string_view OutcomeName(DeployOutcome outcome);

struct LedgerEntry {
  std::string env;
  // DeployId(started, build_id), e.g. "20261201T130501.042Z-orders-main-158": ids sort by time.
  // A pause or resume has DeployId(started, "pause") or (started, "resume").
  std::string deploy_id;
  std::string build_id;  // empty for a pause or resume
  std::string project;
  std::string branch;
  std::string commit;
  std::string who;  // USER@HOST, or the CI's user
  WallTime started;
  WallTime finished;
  DeployOutcome outcome = DeployOutcome::kFailed;
  bool changed = false;  // the stack was changed
  Outputs outputs;       // the stack's outputs
  std::string message;   // why a deploy failed or was cancelled; why an environment was paused
};

struct PauseState {
  std::string who;
  WallTime since;
  std::string reason;
};

// One environment as `runner deployments` shows it.
struct EnvironmentHistory {
  std::string env;
  std::vector<LedgerEntry> entries;  // oldest first
  std::optional<PauseState> paused;
};

// "YYYYMMDDTHHMMSSZ-BUILD_ID" of `started` in UTC.
std::string DeployId(WallTime started, std::string_view build_id);

// Reads and writes one ledger. Every read goes to the store: what another machine recorded a
// moment ago is seen. Errors name the store object concerned; an entry that cannot be read
// (not JSON, a field missing or of the wrong type, a name that does not match its content) is
// an error, never skipped: a history with a hole could let a `requires` pass that should not.
class Ledger {
 public:
  // The ledger at `url` (the pipeline's `ledger:`: s3://bucket/prefix, file:///abs/dir or a
  // directory relative to options.workspace); empty: STATE_DIR/deployments. `now` (for tests;
  // default the system clock) dates pauses and resumes.
  static Result<Ledger> Open(std::string_view url, const std::string& state_dir,
                             ArtifactStoreOptions options, std::function<WallTime()> now = nullptr);

  // The store's URL, ending in '/'.
  const std::string& url() const { return store_->url(); }

  // Writes ENV/DEPLOY_ID.json. Fails when one is there already (an entry is never overwritten:
  // checked first, then written with PutIfAbsent so that a race is lost, not won twice), and
  // on an entry that does not hold together: env not `[a-z][a-z0-9_-]*`, deploy_id not
  // DeployId(started, build_id), no build_id or who, finished before started, or a pause or
  // resume outcome (those are written by Pause and Resume).
  Status Record(const LedgerEntry& entry);

  // Every entry of `env`, pauses and resumes included, oldest first (by `started`, then id).
  Result<std::vector<LedgerEntry>> History(const std::string& env);
  // The latest deploy of `env` that succeeded or found nothing to change; nullopt when none.
  Result<std::optional<LedgerEntry>> Live(const std::string& env);
  // Whether `build_id` was deployed to `env` with success or no change (for `requires`).
  Result<bool> Succeeded(const std::string& env, const std::string& build_id);

  // Stops deploys to `env`: writes ENV/paused.json, then a `paused` entry whose message is
  // `reason`. Fails when `env` is paused already (saying by whom and why) or `reason` is empty.
  Status Pause(const std::string& env, const std::string& who, const std::string& reason);
  // Allows deploys to `env` again: writes a `resumed` entry, then ENV/paused.json as not
  // paused (a store has no delete, and the last resume stays readable). Fails when `env` is not
  // paused. Either order leaves `env` paused when the second write fails.
  Status Resume(const std::string& env, const std::string& who);
  // Whether `env` is paused, and since when, by whom and why.
  Result<std::optional<PauseState>> Paused(const std::string& env);

  // History and Paused together.
  Result<EnvironmentHistory> Read(const std::string& env);

 private:
  Ledger(std::unique_ptr<ArtifactStore> store, std::function<WallTime()> now)
      : store_(std::move(store)), now_(std::move(now)) {}

  // Writes `entry` at its name unless something is there.
  Status Write(const LedgerEntry& entry);
  // A pause or resume entry of `env` dated now.
  LedgerEntry Event(const std::string& env, const std::string& who, DeployOutcome outcome,
                    std::string message) const;

  std::unique_ptr<ArtifactStore> store_;
  std::function<WallTime()> now_;
};

// What `runner deployments [--env ENV]` prints: per environment, in the order given, a line
// with the live build (or that nothing is live), a pause shown loudly with how to resume, and
// the history as a table (when, build, outcome, who, changed, message), oldest first. Times are
// UTC, to the second. Environments are separated by a blank line.
std::string FormatDeployments(const std::vector<EnvironmentHistory>& environments);

}  // namespace runner::deploy
