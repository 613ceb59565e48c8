#include "runner/pipeline.h"

#include "runner/step_kind.h"

namespace runner {

std::string_view Step::kind_name() const { return kind ? kind->name() : std::string_view(); }

const Step* Pipeline::FindStep(std::string_view id) const {
  for (const Step& step : steps) {
    if (step.id == id) return &step;
  }
  return nullptr;
}

Duration KillGrace(const Step& step) {
  if (step.kill_grace) return *step.kill_grace;
  return step.kind ? step.kind->default_kill_grace() : kDefaultKillGrace;
}

}  // namespace runner
