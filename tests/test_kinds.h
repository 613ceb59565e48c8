// Step kinds for tests of the core: `run` only, the other kinds' names reserved (so naming one
// is "not supported" rather than a typo), as for a runner built without them.
#pragma once

#include "runner/pipeline_loader.h"
#include "runner/step_kind.h"
#include "steps/shell.h"

namespace runner::testing {

inline const KindRegistry& ShellOnlyKinds() {
  static const KindRegistry kinds = [] {
    KindRegistry registry;
    registry.Add<ShellKind>();
    for (const char* name : {"zip", "packer", "params", "upload", "deploy"}) {
      registry.Reserve(name);
    }
    return registry;
  }();
  return kinds;
}

inline LoadOptions ShellOnlyLoadOptions() {
  LoadOptions options;
  options.kinds = &ShellOnlyKinds();
  return options;
}

}  // namespace runner::testing
