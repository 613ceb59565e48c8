#include "steps/shell.h"

#include "runner/config_node.h"

namespace runner {

std::optional<std::string> ShellKind::ExpressionsForbidden() const {
  return "expressions are not allowed in 'run' (a pushed branch name or commit message must "
         "never become shell code): pass the value through the step's `env:` and use $NAME "
         "instead";
}

void ShellKind::Check(const ConfigNode& config, Diagnostics& diags) const {
  if (config.null) {
    diags.Error(config.where, "expected a string for 'run', got nothing");
    return;
  }
  if (!ExpectScalar(config, "run", diags)) return;
  if (config.scalar.text.find_first_not_of(" \t\r\n") == std::string::npos) {
    diags.Error(config.where, "'run' is empty: give the script to run");
  }
}

std::optional<std::vector<std::string>> ShellKind::Command(const ConfigNode& config) const {
  return ShellCommand(config.scalar.text);
}

Status ShellKind::Execute(const ConfigNode&, StepIo&) const {
  return Fail("a 'run' step runs bash directly, not through `runner __step`");
}

std::vector<std::string> ShellCommand(const std::string& script) {
  return {"bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script};
}

}  // namespace runner
