// Loads a pipeline file into the typed model and validates it (SPEC sections 3 and 4).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "runner/diagnostics.h"
#include "runner/environment.h"
#include "runner/pipeline.h"

namespace runner {

class KindRegistry;  // runner/step_kind.h

// The largest pipeline file read: a reader stops at one byte more (ReadFileAtMost).
constexpr size_t kMaxPipelineBytes = size_t{1} << 20;

// A step id names its log file (logs/ID.log); a file name has at most 255 bytes.
constexpr size_t kMaxStepIdBytes = 200;

struct LoadOptions {
  // --var KEY=VALUE, in command-line order; a later one wins. A key the file does not declare
  // defines a new var.
  std::vector<std::pair<std::string, std::string>> var_overrides;
  // For validating `env.NAME` expressions: a name is known when the pipeline's `env` or this
  // environment has it.
  Environment environment;
  // The step kinds (`run`, `zip`, ...). Null: none, so every step is an error.
  const KindRegistry* kinds = nullptr;
};

// Parses `source` (the text of the file named `path`) and validates it. Every problem found is
// added to `diags` in one pass (YAML syntax errors stop the pass, since nothing after them
// can be trusted). Returns the pipeline only when there is no error.
// Never throws: every problem of the text, YAML syntax included, is a diagnostic.
std::optional<Pipeline> ParsePipeline(const std::string& path, const std::string& source,
                                      const LoadOptions& options, Diagnostics& diags);

}  // namespace runner
