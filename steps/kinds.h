// Every step kind this runner has (SPEC sections 3 and 6).
#pragma once

#include "runner/step_kind.h"

namespace runner {

// The registry of the built-in kinds, made on first use.
const KindRegistry& BuiltinKinds();

}  // namespace runner
