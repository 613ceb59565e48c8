// `runner deploy` and `runner deployments` (SPEC sections 2 and 7): the command line's side of a
// deploy, over deploy_build.h and ledger.h.
#pragma once

#include <optional>
#include <string>

#include "runner/build.h"
#include "runner/step_kind.h"

namespace runner::deploy {

struct DeployCommand {
  BuildRequest request;  // the pipeline, --workspace, --state-dir, the environment
  std::string build_id;  // empty with --pause or --resume
  std::string env;
  std::string manifest;  // --manifest URL; empty: from the build's record
  // --template and --params; unset: those of the pipeline's deploy step to this environment,
  // else template.yaml and params.json.
  std::optional<std::string> template_name;
  std::optional<std::string> params_name;
  std::optional<std::string> revision_name;  // --revision; unset: the deploy step's, else none
  std::string pause;                         // --pause ENV
  std::string resume;
  std::string reason;  // --reason, for --pause
};

// Runs `runner deploy`: exit 0 deployed (or nothing to change), 1 the deploy failed or was
// refused, 2 a usage or pipeline error, 130/143 cancelled by SIGINT/SIGTERM.
int RunDeployCommand(const DeployCommand& command, const KindRegistry& kinds);

// Runs `runner deployments [--env ENV]`: what is live where, and the history.
int RunDeploymentsCommand(const BuildRequest& request, const std::string& env,
                          const KindRegistry& kinds);

}  // namespace runner::deploy
