#include "steps/deploy.h"

#include <fmt/format.h>

#include "runner/config_node.h"
#include "runner/deploy/deploy_build.h"
#include "runner/fs.h"
#include "runner/pipeline_loader.h"
#include "steps/kinds.h"
#include "steps/upload.h"

namespace runner {

namespace {

const std::vector<std::string> kConfigKeys = {"env", "manifest", "template", "params", "revision"};

// The pipeline's environments and ledger, read again from its file: the step gets its own
// configuration only.
Result<Pipeline> LoadDeploySettings(const StepIo& io) {
  auto source = ReadFileAtMost(io.pipeline(), kMaxPipelineBytes);
  if (!source) return Fail(source.error());
  LoadOptions options;
  options.environment = io.env();
  options.kinds = &BuiltinKinds();
  Diagnostics diags(io.pipeline(), *source);
  std::optional<Pipeline> pipeline = ParsePipeline(io.pipeline(), *source, options, diags);
  if (!pipeline) return Fail(diags.Format());
  return std::move(*pipeline);
}

}  // namespace

std::vector<std::string> DeployKind::secret_env() const { return UploadKind().secret_env(); }

DeployOptions DeployKind::Parse(const ConfigNode& config, Diagnostics& diags) const {
  DeployOptions options;
  if (!ExpectMap(config, "deploy", diags)) return options;
  CheckKeys(config, kConfigKeys, "deploy", diags);
  auto scalar = [&](std::string_view key, std::string& out) {
    const ConfigNode* node = config.Find(key);
    if (!node) return;
    std::string what = fmt::format("deploy.{}", key);
    if (ExpectScalar(*node, what, diags) && IsKnown(*node)) {
      if (node->scalar.text.empty()) {
        diags.Error(node->where, fmt::format("{} is empty", what));
      } else {
        out = node->scalar.text;
      }
    }
  };
  scalar("env", options.env);
  scalar("template", options.template_name);
  scalar("params", options.params_name);
  if (Require(config, "manifest", "deploy", diags)) scalar("manifest", options.manifest);
  scalar("revision", options.revision);
  return options;
}

Status DeployKind::Run(const DeployOptions& options, StepIo& io) const {
  auto pipeline = LoadDeploySettings(io);
  if (!pipeline) return Fail(pipeline.error());
  if (pipeline->environments.empty()) {
    return Fail(fmt::format("{} has no `environments:` to deploy to", io.pipeline()));
  }
  const DeployEnvironment* target = &pipeline->environments.front();
  if (!options.env.empty()) {
    auto it = std::ranges::find(pipeline->environments, options.env, &DeployEnvironment::name);
    if (it == pipeline->environments.end()) {
      return Fail(fmt::format("deploy.env: no environment '{}'", options.env));
    }
    target = &*it;
  }
  deploy::DeployBuildRequest request;
  request.environment = *target;
  request.ledger = pipeline->ledger;
  request.state_dir = Lookup(io.env(), "RUNNER_STATE_DIR").value_or(io.workspace() + "/.runner");
  request.workspace = io.workspace();
  request.manifest_url = options.manifest;
  request.template_name = options.template_name;
  request.params_name = options.params_name;
  request.revision_name = options.revision;
  request.who = deploy::DeployerName(io.env());
  request.env = io.env();
  request.log = [&io](std::string_view line) { io.Log(std::string(line) + "\n"); };
  request.cancelled = [&io] { return io.cancelled(); };
  request.kill_grace = io.kill_grace();
  auto result = deploy::DeployBuild(request);
  if (!result) return Fail(result.error());
  io.SetOutput("stack_id", result->stack.stack_id);
  io.SetOutput("status", result->stack.status);
  io.SetOutput("changed", result->stack.changed ? "true" : "false");
  io.SetOutput("deploy_id", result->entry.deploy_id);
  for (const auto& [key, value] : result->stack.outputs) io.SetOutput("output_" + key, value);
  if (!result->deployment_id.empty()) io.SetOutput("deployment_id", result->deployment_id);
  return {};
}

}  // namespace runner
