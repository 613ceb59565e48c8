#include "runner/step_kind.h"

#include <algorithm>

namespace runner {

void KindRegistry::Add(std::unique_ptr<StepKind> kind) { kinds_.push_back(std::move(kind)); }

void KindRegistry::Reserve(std::string name) { reserved_.push_back(std::move(name)); }

const StepKind* KindRegistry::Find(std::string_view name) const {
  for (const auto& kind : kinds_) {
    if (kind->name() == name) return kind.get();
  }
  return nullptr;
}

bool KindRegistry::IsReserved(std::string_view name) const {
  return std::ranges::find(reserved_, name) != reserved_.end();
}

std::vector<std::string> KindRegistry::Names() const {
  std::vector<std::string> names;
  for (const auto& kind : kinds_) names.emplace_back(kind->name());
  names.insert(names.end(), reserved_.begin(), reserved_.end());
  return names;
}

std::vector<std::string> KindRegistry::SecretEnv() const {
  std::vector<std::string> names;
  for (const auto& kind : kinds_) {
    for (std::string& name : kind->secret_env()) {
      if (std::ranges::find(names, name) == names.end()) names.push_back(std::move(name));
    }
  }
  return names;
}

}  // namespace runner
