// Who and what a build is for (SPEC section 4): project, branch, commit, number, id, event,
// trigger, and the files the commit changed.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runner/environment.h"
#include "runner/result.h"

namespace runner {

struct BuildContext {
  std::string project;
  std::string branch;
  std::string commit;        // full SHA, or empty when unknown
  std::string short_commit;  // first 7 characters of commit
  std::string number;        // decimal
  std::string id;            // {project}-{branch}-{number}, sanitized
  std::string event;         // push, manual, pull_request, tag
  std::string trigger;       // cli, jenkins, github-actions, webhook, local
  std::string workspace;     // absolute path
  // Paths (relative to the repository root) the commit changed against its first parent; all
  // files of a root commit; nullopt when unknown (no repository).
  std::optional<std::vector<std::string>> changed_files;
  // The commit's committer time (seconds since the epoch), when the repository has it: the
  // timestamp of reproducible outputs unless SOURCE_DATE_EPOCH is set.
  std::optional<std::int64_t> commit_time;

  // The value of `build.FIELD` for expressions (`project`, `branch`, ...), nullopt if no such
  // field.
  std::optional<std::string> Field(std::string_view field) const;
};

struct ContextRequest {
  // From the command line; each wins over every other source.
  std::optional<std::string> branch;
  std::optional<std::string> commit;
  std::optional<std::string> number;
  std::string pipeline_project;  // the file's `project:`, may be empty
  std::string workspace;         // absolute
  std::string state_dir;         // absolute; where the local build number is kept
  Environment env;
  // Whether to take (and persist) a new local build number. `plan` and `--dry-run` do not;
  // they show the number the next run would get.
  bool allocate_number = true;
};

// Detection, first match wins, per field: command-line flags; Jenkins (BUILD_NUMBER and
// JENKINS_URL or JOB_NAME); GitHub Actions (GITHUB_ACTIONS); the local Git repository at
// `workspace` (read with libgit2), with a build number kept in `state_dir`.
Result<BuildContext> DetectBuildContext(const ContextRequest& request);

// The context as one JSON object, the one serialization (step requests, records, manifests):
// every field under its member name, in declaration order; `changed_files` an array of strings
// and `commit_time` a number, each null when unknown.
nlohmann::ordered_json BuildContextToJson(const BuildContext& context);

// The inverse of BuildContextToJson. The string fields are required; `changed_files` and
// `commit_time` may be absent or null. Unknown keys are ignored. Errors name the field:
// "build context: 'number' must be a string".
Result<BuildContext> BuildContextFromJson(const nlohmann::ordered_json& json);

// Every character outside [A-Za-z0-9._-] turned into '-'.
std::string SanitizeIdPart(std::string_view text);

// A build's id (SPEC section 4): `{project}-{branch}-{number}`, project and branch sanitized.
std::string BuildId(std::string_view project, std::string_view branch, std::string_view number);

// Takes the next local build number from STATE_DIR/build-number under an exclusive lock, so
// that two runs at once never get the same number. The first is 1.
Result<std::int64_t> NextBuildNumber(const std::string& state_dir);

// The number the next NextBuildNumber would return, without taking it.
Result<std::int64_t> PeekBuildNumber(const std::string& state_dir);

// The top level of the Git work tree containing `dir`, or nullopt when not in one.
std::optional<std::string> GitTopLevel(const std::string& dir);

}  // namespace runner
