// Built-in step kinds (SPEC section 6): zip, params, packer, upload.
//
// A built-in step runs like a shell step, as a child process in its own process group: the
// runner starts itself as `runner __step` with the step's expanded configuration, so that
// cancellation, kill_grace, logs, masking and "no child outlives the runner" are the same for
// every kind. The child calls the kind's Execute.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "runner/build_context.h"
#include "runner/build_record.h"
#include "runner/config_node.h"
#include "runner/diagnostics.h"
#include "runner/environment.h"
#include "runner/pipeline.h"
#include "runner/result.h"

namespace runner {

// What an executing built-in step can reach.
class StepIo {
 public:
  virtual ~StepIo() = default;
  // A line (or lines) for the step's log and the console; masked by the runner.
  virtual void Log(std::string_view text) = 0;
  // An output, available to later steps as steps.ID.outputs.NAME.
  virtual void SetOutput(const std::string& name, const std::string& value) = 0;
  virtual void AddArtifact(const Artifact& artifact) = 0;
  // True once the step was told to stop (SIGINT/SIGTERM): stop soon and clean up.
  virtual bool cancelled() const = 0;
  // The step's working directory (the workspace, or its `dir`), absolute.
  virtual const std::string& dir() const = 0;
  virtual const std::string& workspace() const = 0;
  virtual const BuildContext& build() const = 0;
  // The step's environment (the runner's, the pipeline's and the step's env, RUNNER_*).
  virtual const Environment& env() const = 0;
};

struct StepKind {
  std::string_view name;
  Duration default_kill_grace;
  // Checks the configuration as written: keys, types, required fields, values that can be
  // checked before anything runs. Every problem goes to `diags`.
  void (*validate)(const ConfigNode& config, Diagnostics& diags);
  // Runs the step. `config` is the configuration with expressions expanded: maps are
  // objects (in file order), lists arrays, every scalar a string. An error fails the step
  // with that message.
  Status (*execute)(const nlohmann::ordered_json& config, StepIo& io);
};

// The kind named `name`, or nullptr.
const StepKind* FindStepKind(std::string_view name);

// Every kind, for messages ("add one of run, zip, ...").
std::vector<std::string> StepKindNames();

}  // namespace runner
