#include "runner/cli.h"

#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <thread>

#include "runner/atomic_file.h"
#include "runner/build_context.h"
#include "runner/console.h"
#include "runner/pipeline_loader.h"
#include "runner/plan.h"
#include "runner/report.h"
#include "runner/scheduler.h"
#include "steps/step_exec.h"
#include "steps/step_kind.h"

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
};

void PrintError(std::string_view message) {
  std::fprintf(stderr, "runner: error: %.*s\n", static_cast<int>(message.size()), message.data());
}

// Everything a command needs before it can run anything.
struct Loaded {
  Pipeline pipeline;
  BuildContext context;
  std::string state_dir;
};

std::optional<Pipeline> LoadPipeline(const Options& options, const Environment& environment) {
  auto source = ReadFile(options.pipeline);
  if (!source) {
    PrintError(source.error());
    return std::nullopt;
  }
  LoadOptions load;
  load.environment = environment;
  load.find_kind = [](std::string_view name) -> std::optional<KindInfo> {
    const StepKind* kind = FindStepKind(name);
    if (!kind) return std::nullopt;
    return KindInfo{kind->default_kill_grace, kind->validate};
  };
  for (const std::string& var : options.vars) {
    size_t eq = var.find('=');
    if (eq == std::string::npos || eq == 0) {
      PrintError(fmt::format("--var '{}': expected KEY=VALUE", var));
      return std::nullopt;
    }
    load.var_overrides.emplace_back(var.substr(0, eq), var.substr(eq + 1));
  }
  Diagnostics diags(options.pipeline, *source);
  std::optional<Pipeline> pipeline = ParsePipeline(options.pipeline, *source, load, diags);
  std::string report = diags.Format();
  if (!report.empty()) std::fputs(report.c_str(), stderr);
  if (diags.HasErrors()) return std::nullopt;
  return pipeline;
}

std::optional<Loaded> Load(const Options& options, const Environment& environment,
                           bool allocate_number) {
  std::optional<Pipeline> pipeline = LoadPipeline(options, environment);
  if (!pipeline) return std::nullopt;
  std::error_code ec;
  fs::path pipeline_dir = fs::absolute(options.pipeline, ec).parent_path();
  std::string workspace;
  if (!options.workspace.empty()) {
    workspace = fs::absolute(options.workspace, ec).lexically_normal().string();
    if (!fs::is_directory(workspace, ec)) {
      PrintError(fmt::format("--workspace {}: not a directory", options.workspace));
      return std::nullopt;
    }
  } else {
    workspace = GitTopLevel(pipeline_dir.string()).value_or(pipeline_dir.string());
  }
  if (workspace.size() > 1 && workspace.back() == '/') workspace.pop_back();
  std::string state_dir = options.state_dir.empty()
                              ? workspace + "/.runner"
                              : fs::absolute(options.state_dir, ec).lexically_normal().string();

  ContextRequest request;
  request.branch = options.branch;
  request.commit = options.commit;
  request.number = options.number;
  request.pipeline_project = pipeline->project;
  request.workspace = workspace;
  request.state_dir = state_dir;
  request.env = environment;
  request.allocate_number = allocate_number;
  auto context = DetectBuildContext(request);
  if (!context) {
    PrintError(context.error());
    return std::nullopt;
  }
  return Loaded{std::move(*pipeline), std::move(*context), state_dir};
}

int Validate(const Options& options) {
  std::optional<Pipeline> pipeline = LoadPipeline(options, CurrentEnvironment());
  if (!pipeline) return kExitUsage;
  std::printf("%s: ok (%zu steps)\n", options.pipeline.c_str(), pipeline->steps.size());
  return 0;
}

int PrintPlan(const Options& options) {
  std::optional<Loaded> loaded = Load(options, CurrentEnvironment(), false);
  if (!loaded) return kExitUsage;
  auto plan = MakePlan(loaded->pipeline, loaded->context, options.only);
  if (!plan) {
    PrintError(plan.error());
    return kExitUsage;
  }
  std::fputs(FormatPlan(*plan, loaded->context).c_str(), stdout);
  return 0;
}

int Run(const Options& options) {
  if (options.dry_run) return PrintPlan(options);
  Environment environment = CurrentEnvironment();
  std::optional<Loaded> loaded = Load(options, environment, true);
  if (!loaded) return kExitUsage;
  auto plan = MakePlan(loaded->pipeline, loaded->context, options.only);
  if (!plan) {
    PrintError(plan.error());
    return kExitUsage;
  }
  auto values = ExpandBuildValues(loaded->pipeline, loaded->context, environment);
  if (!values) {
    PrintError(values.error());
    return kExitUsage;
  }
  std::string build_dir = loaded->state_dir + "/builds/" + loaded->context.id;
  std::error_code ec;
  if (fs::exists(build_dir, ec)) {
    PrintError(fmt::format(
        "{} already exists: every build keeps its own record; pass another --build-number",
        build_dir));
    return kExitUsage;
  }
  fs::create_directories(build_dir, ec);
  if (ec) {
    PrintError(fmt::format("cannot create {}: {}", build_dir, ec.message()));
    return kExitUsage;
  }

  SecretMasker masker(values->secrets);
  std::unique_ptr<ProcessRunner> processes = MakePosixProcessRunner();
  Console console(stdout, StdoutIsTerminal(), build_dir);
  SchedulerOptions scheduler_options;
  scheduler_options.jobs = options.jobs > 0
                               ? options.jobs
                               : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  scheduler_options.build_dir = build_dir;
  scheduler_options.environment = environment;
  std::error_code exe_error;
  scheduler_options.self_exe = fs::read_symlink("/proc/self/exe", exe_error).string();
  Scheduler scheduler(loaded->pipeline, *plan, loaded->context, *values, masker, *processes,
                      console, scheduler_options);
  BuildRecord record = scheduler.Run();
  if (auto written = WriteReports(build_dir, record, masker); !written) {
    PrintError(written.error());
    return record.exit_code == 0 ? 1 : record.exit_code;
  }
  return record.exit_code;
}

void AddPipelineArgument(CLI::App* command, Options& options) {
  command->add_option("pipeline", options.pipeline, "pipeline file (default: ./pipeline.yml)");
}

void AddContextOptions(CLI::App* command, Options& options) {
  command->add_option("--only", options.only, "run these steps and the steps they need")
      ->delimiter(',');
  command->add_option("--var", options.vars, "set vars.KEY (repeatable)");
  command->add_option("--branch", options.branch, "override the detected branch");
  command->add_option("--commit", options.commit, "override the detected commit");
  command->add_option("--build-number", options.number, "override the build number");
  command->add_option("--workspace", options.workspace,
                      "where steps run (default: the git top level, else the pipeline's dir)");
  command->add_option("--state-dir", options.state_dir,
                      "build records (default: WORKSPACE/.runner)");
}

}  // namespace

int Main(int argc, char** argv) {
  // Internal: the process of a built-in step (steps/step_exec.h), started by the runner itself.
  if (argc == 2 && std::string_view(argv[1]) == "__step") return RunStepChild(CurrentEnvironment());
  CLI::App app("runner: turns a Git push into deployable build outputs", "runner");
  app.require_subcommand(1);
  Options options;

  CLI::App* run = app.add_subcommand("run", "run a pipeline");
  AddPipelineArgument(run, options);
  run->add_option("-j,--jobs", options.jobs, "most steps running at once (default: CPU count)")
      ->check(CLI::PositiveNumber);
  AddContextOptions(run, options);
  run->add_flag("--dry-run", options.dry_run, "print the plan and exit; run nothing");

  CLI::App* validate = app.add_subcommand("validate", "check a pipeline file");
  AddPipelineArgument(validate, options);
  validate->add_option("--var", options.vars, "set vars.KEY (repeatable)");

  CLI::App* plan = app.add_subcommand("plan", "show the steps in run order");
  AddPipelineArgument(plan, options);
  AddContextOptions(plan, options);

  app.add_subcommand("version", "print the version");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    PrintError(e.what());
    std::fputs("Run 'runner --help' for usage.\n", stderr);
    return kExitUsage;
  }

  if (run->parsed()) return Run(options);
  if (validate->parsed()) return Validate(options);
  if (plan->parsed()) return PrintPlan(options);
  std::printf("runner %s\n", RUNNER_VERSION);
  return 0;
}

}  // namespace runner
