// The `run` step kind: a bash script (SPEC section 3).
#pragma once

#include <string>
#include <vector>

namespace runner {

// The command line of a `run` step: bash without start-up files, failing on the first error
// and on any failed command of a pipe.
std::vector<std::string> ShellCommand(const std::string& script);

}  // namespace runner
