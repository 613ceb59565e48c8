#include "runner/cli.h"

#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "runner/build.h"
#include "runner/console.h"
#include "runner/deploy/cfn_lint.h"
#include "runner/deploy/deploy_cli.h"
#include "runner/diagnostics.h"
#include "runner/process.h"
#include "runner/serve/build_job.h"
#include "runner/serve/server.h"
#include "runner/step_protocol.h"
#include "runner/worker/worker.h"
#include "steps/upload.h"

namespace runner {

namespace {

namespace fs = std::filesystem;

constexpr int kExitUsage = 2;

struct Options {
  std::string pipeline = "pipeline.yml";
  int jobs = 0;
  std::vector<std::string> only;
  std::vector<std::string> vars;
  std::optional<std::string> branch;
  std::optional<std::string> commit;
  std::optional<std::string> number;
  std::string workspace;
  std::string state_dir;
  bool dry_run = false;
  std::string cache_max;  // empty: the default
  bool rebake = false;
};

std::string SelfExe();

void PrintError(std::string_view message) {
  std::fprintf(stderr, "runner: error: %.*s\n", static_cast<int>(message.size()), message.data());
}

int ReportFailure(const BuildFailure& failure) {
  std::fputs(failure.diagnostics.c_str(), stderr);
  if (!failure.message.empty()) PrintError(failure.message);
  return kExitUsage;
}

// The build request of the command line; nullopt (after saying why) for a bad --var.
std::optional<BuildRequest> MakeRequest(const Options& options) {
  BuildRequest request;
  request.pipeline = options.pipeline;
  for (const std::string& var : options.vars) {
    size_t eq = var.find('=');
    if (eq == std::string::npos || eq == 0) {
      PrintError(fmt::format("--var '{}': expected KEY=VALUE", var));
      return std::nullopt;
    }
    request.vars.emplace_back(var.substr(0, eq), var.substr(eq + 1));
  }
  request.only = options.only;
  request.branch = options.branch;
  request.commit = options.commit;
  request.number = options.number;
  request.workspace = options.workspace;
  request.state_dir = options.state_dir;
  request.jobs = options.jobs;
  if (!options.cache_max.empty()) {
    auto bytes = ParseByteSize(options.cache_max);
    if (!bytes) {
      PrintError(fmt::format("--cache-max '{}': {}", options.cache_max, bytes.error()));
      return std::nullopt;
    }
    request.cache_max = *bytes;
  }
  request.environment = CurrentEnvironment();
  // Read by the packer kind: the one kind that skips work by itself.
  if (options.rebake) request.environment["RUNNER_REBAKE"] = "1";
  request.self_exe = SelfExe();
  return request;
}

std::string SelfExe() {
  std::error_code ignored;
  return fs::read_symlink("/proc/self/exe", ignored).string();
}

// `runner serve` (`worker` false) or `runner worker`; `queue` non-empty overrides the file's.
int Serve(const std::string& config_file, const std::string& queue, bool worker) {
  auto config = serve::LoadServeConfig(config_file, CurrentEnvironment(), queue);
  if (!config) {
    std::fputs(config.error().c_str(), stderr);
    return kExitUsage;
  }
  return worker ? worker::RunWorker(*config, SelfExe()) : serve::RunServe(*config, SelfExe());
}

int Validate(const Options& options, const KindRegistry& kinds) {
  std::optional<BuildRequest> request = MakeRequest(options);
  if (!request) return kExitUsage;
  auto loaded = LoadPipelineFile(*request, kinds);
  if (!loaded) return ReportFailure(loaded.error());
  std::fputs(loaded->warnings.c_str(), stderr);
  auto dirs = BuildDirectories(*request);
  if (!dirs) return ReportFailure(dirs.error());
  // The blue-green lint of every template the steps name (SPEC section 7).
  bool lint_errors = false;
  for (const Step& step : loaded->pipeline.steps) {
    fs::path dir = dirs->first;
    if (step.dir) dir /= step.dir->text;
    for (const std::string& name : step.kind->Templates(step.config)) {
      auto lint = deploy::LintTemplateFile((dir / name).lexically_normal().string());
      if (!lint) {
        PrintError(fmt::format("step '{}': {}", step.id, lint.error()));
        lint_errors = true;
        continue;
      }
      std::fputs(lint->text.c_str(), stderr);
      lint_errors = lint_errors || lint->errors;
    }
  }
  if (lint_errors) return kExitUsage;
  std::printf("%s: ok (%zu steps)\n", options.pipeline.c_str(), loaded->pipeline.steps.size());
  return 0;
}

int PrintPlan(const Options& options, const KindRegistry& kinds) {
  std::optional<BuildRequest> request = MakeRequest(options);
  if (!request) return kExitUsage;
  auto build = PrepareBuild(*request, kinds, /*allocate_number=*/false);
  if (!build) return ReportFailure(build.error());
  std::fputs(build->warnings.c_str(), stderr);
  std::fputs(FormatPlan(build->plan, build->context).c_str(), stdout);
  return 0;
}

int Run(const Options& options, const KindRegistry& kinds) {
  if (options.dry_run) return PrintPlan(options, kinds);
  std::optional<BuildRequest> request = MakeRequest(options);
  if (!request) return kExitUsage;
  std::unique_ptr<ProcessRunner> processes = MakePosixProcessRunner(/*with_watchdog=*/true);
  Console console(stdout, StdoutIsTerminal());
  auto record = RunBuild(*request, kinds, *processes, console);
  if (!record) return ReportFailure(record.error());
  if (!record->records_error.empty()) PrintError(record->records_error);
  return record->exit_code;
}

void AddPipelineArgument(CLI::App* command, Options& options) {
  command->add_option("pipeline", options.pipeline, "pipeline file (default: ./pipeline.yml)");
}

void AddVarOption(CLI::App* command, Options& options) {
  command->add_option("--var", options.vars, "set vars.KEY to VALUE, a literal (repeatable)")
      ->type_name("KEY=VALUE")
      ->allow_extra_args(false);
}

void AddContextOptions(CLI::App* command, Options& options) {
  // One value per occurrence, so `--var x=1 other.yml` leaves other.yml the pipeline.
  command->add_option("--only", options.only, "run these steps and the steps they need")
      ->delimiter(',')
      ->allow_extra_args(false);
  AddVarOption(command, options);
  command->add_option("--branch", options.branch, "override the detected branch");
  command->add_option("--commit", options.commit, "override the detected commit");
  command->add_option("--build-number", options.number, "override the build number");
  command->add_option("--workspace", options.workspace,
                      "where steps run (default: the git top level, else the pipeline's dir)");
  command->add_option("--state-dir", options.state_dir,
                      "build records (default: WORKSPACE/.runner)");
}

}  // namespace

int Main(int argc, char** argv, const KindRegistry& kinds) {
  // Internal: the process of a step run as `runner __step` (runner/step_protocol.h).
  if (argc == 2 && std::string_view(argv[1]) == "__step") {
    return RunStepChild(CurrentEnvironment(), kinds);
  }
  // Internal: one build of `runner serve` (runner/serve/build_job.h).
  if (argc == 3 && std::string_view(argv[1]) == "__build")
    return serve::RunBuildJob(argv[2], kinds);
  CLI::App app("runner: turns a Git push into deployable build outputs", "runner");
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("runner ") + RUNNER_VERSION);
  app.footer(
      "Exit status: 0 every step succeeded or was skipped; 1 a step failed or timed out; 2 usage "
      "or pipeline error (nothing ran, no build number used); 129, 130, 143 stopped by SIGHUP, "
      "SIGINT, SIGTERM.\n"
      "Pipeline format: the README's 'Pipeline file' section; `runner validate FILE` checks a "
      "file and names every problem with its line and column.");
  Options options;

  CLI::App* run = app.add_subcommand("run", "run a pipeline");
  AddPipelineArgument(run, options);
  CLI::Option* jobs =
      run->add_option("-j,--jobs", options.jobs, "most steps running at once (default: CPU count)");
  AddContextOptions(run, options);
  run->add_flag("--dry-run", options.dry_run, "print the plan and exit; run nothing");
  run->add_option("--cache-max", options.cache_max,
                  "the most the local step cache (STATE/cache) keeps, e.g. 2GiB (default: 5GiB)")
      ->type_name("SIZE");
  run->add_flag("--rebake", options.rebake,
                "bake every packer step's image even when AMIs of the same bake exist "
                "(RUNNER_REBAKE=1 in the steps' environment)");

  CLI::App* validate = app.add_subcommand("validate", "check a pipeline file");
  AddPipelineArgument(validate, options);
  AddVarOption(validate, options);

  CLI::App* plan = app.add_subcommand("plan", "show the steps in run order");
  AddPipelineArgument(plan, options);
  AddContextOptions(plan, options);

  std::string serve_config = "serve.yml";
  CLI::App* serve = app.add_subcommand("serve", "build GitHub pushes, with build pages (webhooks)");
  serve->add_option("--config", serve_config, "the server's configuration (default: ./serve.yml)");
  std::string serve_queue;
  serve->add_option("--queue", serve_queue,
                    "send builds to this queue for `runner worker` (an SQS FIFO queue URL or "
                    "file:///DIR) instead of running them; overrides the file's `queue:`");
  CLI::App* worker =
      app.add_subcommand("worker", "take builds from the shared queue of `runner serve --queue`");
  worker->add_option("--config", serve_config,
                     "the server's configuration, with `queue:` and `records:` (default: "
                     "./serve.yml)");

  deploy::DeployCommand deploy_command;
  std::vector<std::string> deploy_args;  // [BUILD_ID] [PIPELINE]
  CLI::App* deploy = app.add_subcommand(
      "deploy", "deploy a published build to an environment (a rollback: an older build)");
  deploy->add_option("args", deploy_args, "BUILD_ID [PIPELINE]")->expected(0, 2);
  deploy->add_option("--env", deploy_command.env, "the environment (pipeline's environments:)");
  deploy->add_option("--manifest", deploy_command.manifest,
                     "the build's manifest.json URL (default: from the build's record)");
  deploy->add_option("--template", deploy_command.template_name,
                     "the template's name in the build (default: template.yaml)");
  deploy->add_option("--params", deploy_command.params_name,
                     "the parameters file's name in the build (default: params.json)");
  deploy->add_option("--revision", deploy_command.revision_name,
                     "the CodeDeploy revision's name in the build (default: the deploy step's)");
  deploy->add_option("--pause", deploy_command.pause, "stop every deploy to ENV");
  deploy->add_option("--resume", deploy_command.resume, "allow deploys to ENV again");
  deploy->add_option("--reason", deploy_command.reason, "why, for --pause");
  deploy->add_option("--workspace", options.workspace, "the pipeline's workspace");
  deploy->add_option("--state-dir", options.state_dir,
                     "build records (default: WORKSPACE/.runner)");

  std::string deployments_env;
  CLI::App* deployments =
      app.add_subcommand("deployments", "what is deployed where, and the history");
  AddPipelineArgument(deployments, options);
  deployments->add_option("--env", deployments_env, "one environment only");
  deployments->add_option("--state-dir", options.state_dir,
                          "build records (default: WORKSPACE/.runner)");

  app.add_subcommand("version", "print the version");

  if (argc >= 2 && argv[1][0] != '-') {
    std::vector<std::string> names;
    for (const CLI::App* command : app.get_subcommands({})) names.push_back(command->get_name());
    if (std::ranges::find(names, argv[1]) == names.end()) {
      PrintError(fmt::format("unknown command '{}'{}", argv[1], DidYouMeanHint(argv[1], names)));
      std::fputs("Run 'runner --help' for usage.\n", stderr);
      return kExitUsage;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    PrintError(e.what());
    std::fputs("Run 'runner --help' for usage.\n", stderr);
    return kExitUsage;
  }

  if (jobs->count() > 0 && options.jobs < 1) {
    PrintError(fmt::format("--jobs must be at least 1, got {}", options.jobs));
    return kExitUsage;
  }
  if (run->parsed()) return Run(options, kinds);
  if (validate->parsed()) return Validate(options, kinds);
  if (plan->parsed()) return PrintPlan(options, kinds);
  if (serve->parsed()) return Serve(serve_config, serve_queue, /*worker=*/false);
  if (worker->parsed()) return Serve(serve_config, "", /*worker=*/true);
  if (deploy->parsed()) {
    if (deploy_command.pause.empty() && deploy_command.resume.empty() && !deploy_args.empty()) {
      deploy_command.build_id = deploy_args[0];
    }
    size_t pipeline_at = deploy_command.build_id.empty() ? 0 : 1;
    if (deploy_args.size() > pipeline_at) options.pipeline = deploy_args[pipeline_at];
    auto request = MakeRequest(options);
    if (!request) return kExitUsage;
    deploy_command.request = std::move(*request);
    return deploy::RunDeployCommand(deploy_command, kinds);
  }
  if (deployments->parsed()) {
    auto request = MakeRequest(options);
    if (!request) return kExitUsage;
    return deploy::RunDeploymentsCommand(*request, deployments_env, kinds);
  }
  std::printf("runner %s\n", RUNNER_VERSION);
  return 0;
}

}  // namespace runner
