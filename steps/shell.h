// The `run` step kind (SPEC section 3): a bash script, run directly as the step's process.
#pragma once

#include <string>
#include <vector>

#include "runner/step_kind.h"

namespace runner {

class ShellKind : public StepKind {
 public:
  std::string_view name() const override { return "run"; }
  std::optional<std::string> ExpressionsForbidden() const override;
  void Check(const ConfigNode& config, Diagnostics& diags) const override;
  std::optional<std::vector<std::string>> Command(const ConfigNode& config) const override;
  // Never called: the step runs its Command.
  Status Execute(const ConfigNode& config, StepIo& io) const override;
};

// The command line of a `run` step: bash without start-up files, failing on the first error
// and on any failed command of a pipe.
std::vector<std::string> ShellCommand(const std::string& script);

}  // namespace runner
