#include "runner/pipeline.h"

namespace runner {

namespace {
template <class... Fs>
struct Overloaded : Fs... {
  using Fs::operator()...;
};
}  // namespace

std::string_view Step::kind() const {
  return std::visit(Overloaded{[](const RunAction&) { return std::string_view("run"); }}, action);
}

const Step* Pipeline::FindStep(std::string_view id) const {
  for (const Step& step : steps) {
    if (step.id == id) return &step;
  }
  return nullptr;
}

Duration DefaultKillGrace(const Step& step) {
  if (step.kill_grace) return *step.kill_grace;
  return std::chrono::seconds(10);
}

}  // namespace runner
