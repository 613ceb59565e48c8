// Both sides of a built-in step's process (steps/step_kind.h): the runner writes the step's
// expanded configuration to a file, and `runner __step` reads it and runs the kind.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "runner/build_context.h"
#include "runner/build_record.h"
#include "runner/environment.h"
#include "runner/result.h"

namespace runner {

// The environment variables through which the runner and `runner __step` talk.
inline constexpr char kStepConfigVar[] = "RUNNER_STEP_CONFIG";   // the request (JSON)
inline constexpr char kStepArtifactsVar[] = "RUNNER_ARTIFACTS";  // JSON lines, one artifact each
inline constexpr char kStepErrorVar[] = "RUNNER_STEP_ERROR";     // why the step failed

// The request `runner __step` reads.
nlohmann::ordered_json StepRequest(const std::string& kind, const std::string& dir,
                                   const BuildContext& build, const nlohmann::ordered_json& config);

// The child side: runs the kind the request names. Returns the exit status: 0 success,
// 1 failure (the message in RUNNER_STEP_ERROR and the log), 128+N when stopped by signal N.
int RunStepChild(const Environment& env);

// The runner side, after the child exited successfully: the artifacts it recorded (none when the
// file is absent). Fails naming the file for a malformed record.
Result<std::vector<Artifact>> ReadStepArtifacts(const std::string& path);

}  // namespace runner
