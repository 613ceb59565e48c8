// The command line (SPEC section 2): run, validate, plan, version.
#pragma once

namespace runner {

// Runs the command line and returns the process exit status: 0 success, 1 a step failed or
// timed out, 2 usage or pipeline error (nothing ran), 130/143 interrupted by SIGINT/SIGTERM.
int Main(int argc, char** argv);

}  // namespace runner
