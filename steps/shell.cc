#include "steps/shell.h"

namespace runner {

std::vector<std::string> ShellCommand(const std::string& script) {
  return {"bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script};
}

}  // namespace runner
