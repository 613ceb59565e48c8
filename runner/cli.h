// The command line (SPEC section 2): run, validate, plan, version.
#pragma once

#include "runner/step_kind.h"

namespace runner {

// Runs the command line with the step kinds `kinds` and returns the process exit status: 0 success,
// 1 a step failed or timed out, 2 usage or pipeline error (nothing ran), 129/130/143 interrupted by
// SIGHUP/SIGINT/SIGTERM.
int Main(int argc, char** argv, const KindRegistry& kinds);

}  // namespace runner
