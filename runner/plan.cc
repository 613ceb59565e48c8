#include "runner/plan.h"

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <map>
#include <queue>
#include <set>

#include "runner/diagnostics.h"
#include "runner/glob.h"

namespace runner {

namespace {

std::string Join(const std::vector<std::string>& items, std::string_view separator) {
  std::string out;
  for (const std::string& item : items) {
    if (!out.empty()) out += separator;
    out += item;
  }
  return out;
}

}  // namespace

const PlannedStep* Plan::Find(std::string_view id) const {
  for (const PlannedStep& planned : steps) {
    if (planned.step->id == id) return &planned;
  }
  return nullptr;
}

std::optional<std::string> EvaluateWhen(const WhenCondition& when, const BuildContext& context,
                                        std::optional<std::string>* note) {
  if (when.branches && !AnyMatch(*when.branches, context.branch)) {
    return fmt::format("branch '{}' matches none of {}", context.branch,
                       Join(*when.branches, ", "));
  }
  if (when.events &&
      std::find(when.events->begin(), when.events->end(), context.event) == when.events->end()) {
    return fmt::format("event '{}' is not one of {}", context.event, Join(*when.events, ", "));
  }
  if (when.changed) {
    if (!context.changed_files) {
      // Not knowing what changed must not silently drop a step: build it.
      if (note) *note = "changed files unknown (no Git repository): runs";
      return std::nullopt;
    }
    bool any = std::any_of(context.changed_files->begin(), context.changed_files->end(),
                           [&](const std::string& path) { return AnyMatch(*when.changed, path); });
    if (!any) return fmt::format("no changed file matches {}", Join(*when.changed, ", "));
  }
  return std::nullopt;
}

Result<Plan> MakePlan(const Pipeline& pipeline, const BuildContext& context,
                      const std::vector<std::string>& only) {
  std::set<std::string, std::less<>> selected;
  if (only.empty()) {
    for (const Step& step : pipeline.steps) selected.insert(step.id);
  } else {
    std::vector<std::string> ids;
    for (const Step& step : pipeline.steps) ids.push_back(step.id);
    std::vector<std::string> work;
    for (const std::string& id : only) {
      if (!pipeline.FindStep(id)) {
        return Fail(fmt::format("--only: no step '{}' in {}{}", id, pipeline.path,
                                DidYouMeanHint(id, ids)));
      }
      work.push_back(id);
    }
    while (!work.empty()) {
      std::string id = work.back();
      work.pop_back();
      if (!selected.insert(id).second) continue;
      for (const std::string& need : pipeline.FindStep(id)->needs) work.push_back(need);
    }
  }

  // Kahn's algorithm, always taking the earliest ready step in file order (a min-heap of file
  // positions), so a plain list keeps its order.
  const std::vector<Step>& steps = pipeline.steps;
  std::map<std::string_view, size_t> position;
  for (size_t i = 0; i < steps.size(); ++i) position.emplace(steps[i].id, i);
  std::vector<size_t> unplaced_needs(steps.size(), 0);
  std::vector<std::vector<size_t>> dependents(steps.size());
  std::priority_queue<size_t, std::vector<size_t>, std::greater<>> ready;
  for (size_t i = 0; i < steps.size(); ++i) {
    if (!selected.contains(steps[i].id)) continue;
    for (const std::string& need : steps[i].needs) {
      ++unplaced_needs[i];
      dependents[position.at(need)].push_back(i);
    }
    if (unplaced_needs[i] == 0) ready.push(i);
  }
  Plan plan;
  while (!ready.empty()) {
    size_t i = ready.top();
    ready.pop();
    const Step& step = steps[i];
    PlannedStep planned;
    planned.step = &step;
    planned.needs = step.needs;
    if (step.when) planned.skip_reason = EvaluateWhen(*step.when, context, &planned.note);
    plan.steps.push_back(std::move(planned));
    for (size_t dependent : dependents[i]) {
      if (--unplaced_needs[dependent] == 0) ready.push(dependent);
    }
  }
  if (plan.steps.size() < selected.size()) return Fail("the pipeline's needs form a cycle");
  return plan;
}

std::string FormatPlan(const Plan& plan, const BuildContext& context) {
  std::string out =
      fmt::format("build {} (branch {}, commit {}, event {})\n", context.id, context.branch,
                  context.short_commit.empty() ? "unknown" : context.short_commit, context.event);
  size_t index = 0;
  for (const PlannedStep& planned : plan.steps) {
    ++index;
    out += fmt::format("{:>3}. {} ({})", index, planned.step->id, planned.step->kind_name());
    if (!planned.needs.empty()) out += "  needs: " + Join(planned.needs, ", ");
    if (planned.skip_reason) out += "  [skipped: " + *planned.skip_reason + "]";
    if (planned.note) out += "  [" + *planned.note + "]";
    out += '\n';
  }
  return out;
}

}  // namespace runner
