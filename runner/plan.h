// Which steps a build runs, in what order, and which `when` skips (SPEC sections 2 and 3).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "runner/build_context.h"
#include "runner/pipeline.h"
#include "runner/result.h"

namespace runner {

struct PlannedStep {
  const Step* step = nullptr;
  std::vector<std::string> needs;  // only needs that are themselves in the plan
  // Set when `when` rules the step out for this build, e.g. "branch 'dev' matches none of main".
  std::optional<std::string> skip_reason;
  // Set when `when.changed` could not be decided (no repository): the step runs.
  std::optional<std::string> note;
};

struct Plan {
  std::vector<PlannedStep> steps;  // a topological order, file order among equals

  const PlannedStep* Find(std::string_view id) const;
};

// `only`: ids from --only; empty means every step. The plan holds those and everything they
// need, transitively. Fails (a usage error) for an id the pipeline does not have.
// REQUIRES: `pipeline` passed validation (needs are known and acyclic).
Result<Plan> MakePlan(const Pipeline& pipeline, const BuildContext& context,
                      const std::vector<std::string>& only);

// Why `when` rules a step out for `context`, or nullopt when it runs. `note` gets a remark
// when a condition could not be decided.
std::optional<std::string> EvaluateWhen(const WhenCondition& when, const BuildContext& context,
                                        std::optional<std::string>* note);

// The plan as `runner plan` and `runner run --dry-run` print it.
std::string FormatPlan(const Plan& plan, const BuildContext& context);

}  // namespace runner
