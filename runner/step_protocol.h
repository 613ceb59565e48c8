// The `runner __step` protocol (runner/step_kind.h): how the runner hands a step of a kind
// without a Command to the runner itself, started as `runner __step` in the step's process
// group, and how it gets the step's outcome back.
//
// The runner writes the request (kind, directory, pipeline file, kill grace, build context and
// the expanded configuration with its locations) to a mode-0600 file named by
// RUNNER_STEP_CONFIG, as MessagePack: any bytes reach the kind as they are (a Latin-1 branch
// name, a step output that is not UTF-8), which JSON text could not carry. The child appends
// outputs to RUNNER_OUTPUT (as a shell step does), artifacts as JSON lines to RUNNER_ARTIFACTS and,
// on failure, its message to RUNNER_STEP_ERROR; it rewrites its progress record
// (runner/progress.h) at RUNNER_PROGRESS, which the runner reads while the step runs.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "runner/build_context.h"
#include "runner/build_record.h"
#include "runner/environment.h"
#include "runner/pipeline.h"
#include "runner/result.h"
#include "runner/step_kind.h"

namespace runner {

// The environment variables through which the runner and `runner __step` talk.
inline constexpr char kStepConfigVar[] = "RUNNER_STEP_CONFIG";   // the request (JSON)
inline constexpr char kStepArtifactsVar[] = "RUNNER_ARTIFACTS";  // JSON lines, one artifact each
inline constexpr char kStepErrorVar[] = "RUNNER_STEP_ERROR";     // why the step failed

struct StepRequest {
  std::string kind;
  std::string dir;       // absolute working directory
  std::string pipeline;  // the pipeline file, as messages name it
  Duration kill_grace{0};
  BuildContext build;
  ConfigNode config;  // expanded
};

std::string EncodeStepRequest(const StepRequest& request);
Result<StepRequest> DecodeStepRequest(std::string_view bytes);

// The child side: runs the kind the request names. Returns the exit status: 0 success,
// 1 failure (the message in RUNNER_STEP_ERROR and the log), 128+N when stopped by signal N.
// It owns the process's signals (through a ProcessRunner, see runner/process.h) while the kind
// runs: kinds install no handlers of their own.
int RunStepChild(const Environment& env, const KindRegistry& kinds);

// The runner side, after the child exited successfully: the artifacts it recorded (none when the
// file is absent). Fails naming the file for a malformed record.
Result<std::vector<Artifact>> ReadStepArtifacts(const std::string& path);

}  // namespace runner
