// The `deploy` step kind (SPEC sections 6 and 7): hands a build published by an earlier step
// to one environment of the pipeline's `environments:`, as `runner deploy` does
// (runner/deploy/deploy_build.h).
//
// Contract decisions beyond the SPEC:
// - `manifest` (required): the build's manifest.json, usually
//   "${{ steps.publish.outputs.manifest_url }}"; the deploy reads only what it lists.
// - `env` defaults to the first environment; `template` to template.yaml, `params` to
//   params.json (object names in the manifest).
// - `revision`: the CodeDeploy revision's object name; the environment needs `codedeploy:` and
//   the build an s3:// store. The stack is deployed first, then the revision.
// - Outputs: `stack_id`, `status`, `changed` (true or false), `deploy_id`, `output_KEY` for
//   each stack output, and `deployment_id` with a revision.
#pragma once

#include <string>

#include "runner/step_kind.h"

namespace runner {

struct DeployOptions {
  std::string env;  // empty: the first environment
  std::string manifest;
  std::string template_name = "template.yaml";
  std::string params_name = "params.json";
  std::string revision;  // empty: none
};

class DeployKind : public TypedStepKind<DeployOptions> {
 public:
  std::string_view name() const override { return "deploy"; }
  // A cancelled update is rolled back and followed (SPEC section 7).
  Duration default_kill_grace() const override { return std::chrono::minutes(10); }
  // Deploying is the effect of the build: never skipped.
  CacheUse cache_use() const override { return CacheUse::kNever; }
  std::vector<std::string> secret_env() const override;

 protected:
  DeployOptions Parse(const ConfigNode& config, Diagnostics& diags) const override;
  Status Run(const DeployOptions& options, StepIo& io) const override;
};

}  // namespace runner
