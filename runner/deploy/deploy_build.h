// A deploy of a published build to one environment (SPEC section 7): from the build's own
// bytes, checked against its manifest.json, through the checks that refuse a deploy before any
// AWS call (branches, pause, requires, the blue-green lint), the CloudFormation stack deploy
// (stack_deploy.h), and an entry in the ledger whatever the outcome.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "runner/aws/http.h"
#include "runner/deploy/ledger.h"
#include "runner/deploy/stack_deploy.h"
#include "runner/environment.h"
#include "runner/pipeline.h"
#include "runner/result.h"

namespace runner::deploy {

struct DeployBuildRequest {
  DeployEnvironment environment;
  std::string ledger;     // the pipeline's `ledger:` (empty: STATE/deployments)
  std::string state_dir;  // absolute
  std::string workspace;  // absolute: a relative ledger or local store is below it
  // The build's manifest.json: an s3:// or file:// URL, or a path.
  std::string manifest_url;
  std::string template_name;  // object names in the manifest
  std::string params_name;    // empty: the template's defaults and the environment's params
  // The CodeDeploy revision's object name; empty: none. Needs the environment's `codedeploy:`
  // and the object in S3. Deployed once the stack is.
  std::string revision_name;
  std::string who;  // USER@HOST, for the ledger
  Environment env;  // credentials, endpoints (AWS_ENDPOINT_URL...)
  std::function<void(std::string_view)> log;
  std::function<bool()> cancelled;
  Duration kill_grace = std::chrono::minutes(10);
  Duration poll_interval = std::chrono::seconds(2);
};

struct DeployBuildResult {
  StackDeployResult stack;
  std::string deployment_id;  // the CodeDeploy deployment's; empty without a revision
  LedgerEntry entry;          // as recorded
};

// Deploys the build. Every refusal and failure is an error with the reason; a deploy that
// reached CloudFormation is in the ledger either way (the error then says so too). A build
// baked in several regions gives the environment the AMI of its region (TakeRegionalAmis in
// the .cc); a revision goes to CodeDeploy from the environment's `revision_store` when it has
// one, copied there first.
Result<DeployBuildResult> DeployBuild(const DeployBuildRequest& request);

// Who deploys: $USER (or $LOGNAME) @ the host name.
std::string DeployerName(const Environment& env);

}  // namespace runner::deploy
