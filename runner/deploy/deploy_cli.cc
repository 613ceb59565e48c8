#include "runner/deploy/deploy_cli.h"

#include <fmt/format.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "runner/config_node.h"
#include "runner/deploy/deploy_build.h"
#include "runner/deploy/ledger.h"
#include "runner/diagnostics.h"
#include "runner/fs.h"

namespace runner::deploy {

namespace {

constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

std::atomic<int> g_signal{0};

void OnSignal(int sig) {
  int expected = 0;
  g_signal.compare_exchange_strong(expected, sig);
}

int Error(std::string_view message, int code) {
  std::fprintf(stderr, "runner: error: %.*s\n", static_cast<int>(message.size()), message.data());
  return code;
}

// The pipeline, loaded and checked, and its workspace and state directory.
struct Loaded {
  Pipeline pipeline;
  std::string workspace;
  std::string state_dir;
};

std::optional<Loaded> Load(const BuildRequest& request, const KindRegistry& kinds) {
  auto loaded = LoadPipelineFile(request, kinds);
  if (!loaded) {
    std::fputs(loaded.error().diagnostics.c_str(), stderr);
    if (!loaded.error().message.empty()) Error(loaded.error().message, kExitUsage);
    return std::nullopt;
  }
  auto dirs = BuildDirectories(request);
  if (!dirs) {
    Error(dirs.error().message, kExitUsage);
    return std::nullopt;
  }
  return Loaded{std::move(loaded->pipeline), dirs->first, dirs->second};
}

const DeployEnvironment* FindEnvironment(const Pipeline& pipeline, const std::string& name) {
  for (const DeployEnvironment& env : pipeline.environments) {
    if (env.name == name) return &env;
  }
  std::vector<std::string> names;
  for (const DeployEnvironment& env : pipeline.environments) names.push_back(env.name);
  Error(pipeline.environments.empty()
            ? fmt::format("{} has no `environments:` to deploy to", pipeline.path)
            : fmt::format("no environment '{}' in {}{}", name, pipeline.path,
                          DidYouMeanHint(name, names)),
        kExitUsage);
  return nullptr;
}

// The manifest_url output of the build's upload step, from its record.
Result<std::string> ManifestOfRecord(const std::string& state_dir, const std::string& build_id) {
  std::string path = state_dir + "/builds/" + build_id + "/report.json";
  auto text = ReadFile(path);
  if (!text) {
    return Fail(fmt::format("no record of build {} here ({}); pass --manifest URL", build_id,
                            text.error()));
  }
  auto report = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (report.is_discarded()) return Fail(fmt::format("{}: not valid JSON", path));
  for (const auto& step : report.value("steps", nlohmann::json::array())) {
    auto outputs = step.value("outputs", nlohmann::json::object());
    if (outputs.contains("manifest_url") && outputs["manifest_url"].is_string()) {
      return outputs["manifest_url"].get<std::string>();
    }
  }
  return Fail(
      fmt::format("build {} published nothing (no step of it has a manifest_url); pass "
                  "--manifest URL",
                  build_id));
}

// A literal of the deploy step's configuration, or `fallback`.
std::string DeployStepValue(const Pipeline& pipeline, const DeployEnvironment& target,
                            std::string_view key, std::string fallback) {
  for (const Step& step : pipeline.steps) {
    if (step.kind == nullptr || step.kind->name() != "deploy") continue;
    const ConfigNode* env = step.config.Find("env");
    bool ours = env ? env->scalar.text == target.name : &target == &pipeline.environments.front();
    const ConfigNode* value = step.config.Find(key);
    if (ours && value && value->type == ConfigNode::Type::kScalar && IsKnown(*value)) {
      return value->scalar.text;
    }
  }
  return fallback;
}

Result<Ledger> OpenLedger(const Loaded& loaded, const Environment& env) {
  ArtifactStoreOptions options;
  options.workspace = loaded.workspace;
  options.env = env;
  return Ledger::Open(loaded.pipeline.ledger, loaded.state_dir, options);
}

}  // namespace

int RunDeployCommand(const DeployCommand& command, const KindRegistry& kinds) {
  std::optional<Loaded> loaded = Load(command.request, kinds);
  if (!loaded) return kExitUsage;
  const Environment& env = command.request.environment;
  if (!command.pause.empty() || !command.resume.empty()) {
    const std::string& name = command.pause.empty() ? command.resume : command.pause;
    if (!FindEnvironment(loaded->pipeline, name)) return kExitUsage;
    auto ledger = OpenLedger(*loaded, env);
    if (!ledger) return Error(ledger.error(), kExitFailed);
    Status done = command.pause.empty() ? ledger->Resume(name, DeployerName(env))
                                        : ledger->Pause(name, DeployerName(env), command.reason);
    if (!done) return Error(done.error(), kExitFailed);
    std::printf(
        "%s: %s\n", name.c_str(),
        command.pause.empty() ? "deploys allowed again" : "paused: no deploy until --resume");
    return 0;
  }
  if (command.build_id.empty() || command.env.empty()) {
    return Error(
        "runner deploy BUILD_ID --env ENV [PIPELINE]: a build and an environment are needed",
        kExitUsage);
  }
  const DeployEnvironment* target = FindEnvironment(loaded->pipeline, command.env);
  if (!target) return kExitUsage;
  DeployBuildRequest request;
  request.environment = *target;
  request.ledger = loaded->pipeline.ledger;
  request.state_dir = loaded->state_dir;
  request.workspace = loaded->workspace;
  if (command.manifest.empty()) {
    auto manifest = ManifestOfRecord(loaded->state_dir, command.build_id);
    if (!manifest) return Error(manifest.error(), kExitFailed);
    request.manifest_url = *manifest;
  } else {
    request.manifest_url = command.manifest;
  }
  request.template_name = command.template_name.value_or(
      DeployStepValue(loaded->pipeline, *target, "template", "template.yaml"));
  request.params_name = command.params_name.value_or(
      DeployStepValue(loaded->pipeline, *target, "params", "params.json"));
  request.revision_name =
      command.revision_name.value_or(DeployStepValue(loaded->pipeline, *target, "revision", ""));
  request.who = DeployerName(env);
  request.env = env;
  request.log = [](std::string_view line) {
    std::fwrite(line.data(), 1, line.size(), stdout);
    if (!line.ends_with('\n')) std::fputc('\n', stdout);
    std::fflush(stdout);
  };
  struct sigaction action {};
  action.sa_handler = OnSignal;
  sigemptyset(&action.sa_mask);
  struct sigaction old_int {
  }, old_term{};
  sigaction(SIGINT, &action, &old_int);
  sigaction(SIGTERM, &action, &old_term);
  request.cancelled = [] { return g_signal.load() != 0; };
  auto result = DeployBuild(request);
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  if (!result) {
    Error(result.error(), kExitFailed);
    return g_signal.load() != 0 ? 128 + g_signal.load() : kExitFailed;
  }
  std::printf("%s: %s %s (%s), stack %s\n", target->name.c_str(), result->entry.build_id.c_str(),
              result->stack.changed ? "deployed" : "already live, nothing changed",
              result->stack.status.c_str(), target->stack.c_str());
  for (const auto& [key, value] : result->stack.outputs) {
    std::printf("  output %s = %s\n", key.c_str(), value.c_str());
  }
  if (!result->deployment_id.empty()) {
    std::printf("  CodeDeploy deployment %s succeeded\n", result->deployment_id.c_str());
  }
  return 0;
}

int RunDeploymentsCommand(const BuildRequest& request, const std::string& env,
                          const KindRegistry& kinds) {
  std::optional<Loaded> loaded = Load(request, kinds);
  if (!loaded) return kExitUsage;
  if (!env.empty() && !FindEnvironment(loaded->pipeline, env)) return kExitUsage;
  auto ledger = OpenLedger(*loaded, request.environment);
  if (!ledger) return Error(ledger.error(), kExitFailed);
  std::vector<EnvironmentHistory> histories;
  for (const DeployEnvironment& environment : loaded->pipeline.environments) {
    if (!env.empty() && environment.name != env) continue;
    auto history = ledger->Read(environment.name);
    if (!history) return Error(history.error(), kExitFailed);
    histories.push_back(std::move(*history));
  }
  std::fputs(FormatDeployments(histories).c_str(), stdout);
  return 0;
}

}  // namespace runner::deploy
