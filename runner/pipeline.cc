#include "runner/pipeline.h"

namespace runner {

namespace {
template <class... Fs>
struct Overloaded : Fs... {
  using Fs::operator()...;
};
}  // namespace

std::string_view Step::kind() const {
  return std::visit(Overloaded{[](const RunAction&) { return std::string_view("run"); },
                               [](const KindAction& kind) { return std::string_view(kind.kind); }},
                    action);
}

const Step* Pipeline::FindStep(std::string_view id) const {
  for (const Step& step : steps) {
    if (step.id == id) return &step;
  }
  return nullptr;
}

Duration DefaultKillGrace(const Step& step) {
  if (step.kill_grace) return *step.kill_grace;
  if (const auto* kind = std::get_if<KindAction>(&step.action)) return kind->default_kill_grace;
  return std::chrono::seconds(10);
}

}  // namespace runner
