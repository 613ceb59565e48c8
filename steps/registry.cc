#include <array>

#include "steps/packer.h"
#include "steps/params.h"
#include "steps/step_kind.h"
#include "steps/upload.h"
#include "steps/zip.h"

namespace runner {

namespace {

const std::array<const StepKind*, 4>& Kinds() {
  static const std::array<const StepKind*, 4> kinds = {&kZipStep, &kParamsStep, &kPackerStep,
                                                       &kUploadStep};
  return kinds;
}

}  // namespace

const StepKind* FindStepKind(std::string_view name) {
  for (const StepKind* kind : Kinds()) {
    if (kind->name == name) return kind;
  }
  return nullptr;
}

std::vector<std::string> StepKindNames() {
  std::vector<std::string> names;
  for (const StepKind* kind : Kinds()) names.emplace_back(kind->name);
  return names;
}

}  // namespace runner
