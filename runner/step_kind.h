// The step contract (SPEC sections 3 and 6): what a step kind (`run`, `zip`, `packer`, ...)
// is to the core. The core names no kind: each kind is a StepKind registered in a KindRegistry
// (steps/kinds.cc holds one registration line per kind), and the loader, the scheduler and
// `runner __step` reach kinds only through it.
//
// Every step runs as a child process in its own process group. A kind either names a program
// to run directly (`run` runs bash), or is executed by the runner itself started as
// `runner __step` (runner/step_protocol.h), which calls the kind's Execute. So cancellation,
// kill_grace, logs, masking and "no child outlives the runner" are one mechanism for all.
//
// One schema per kind: a kind reads its configuration once, in Parse, into typed options.
// `validate` calls Parse on the configuration as written, where a scalar holding an expression
// is not known yet (IsKnown is false: check its type, not its value); the run calls the same
// Parse on the expanded configuration, where every scalar is known. A message keeps the
// file:line:col of the value it is about in both.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runner/build_context.h"
#include "runner/build_record.h"
#include "runner/diagnostics.h"
#include "runner/environment.h"
#include "runner/pipeline.h"
#include "runner/process.h"
#include "runner/progress.h"
#include "runner/result.h"

namespace runner {

inline constexpr Duration kDefaultKillGrace = std::chrono::seconds(10);

// How the step cache (SPEC section 8) applies to a kind.
enum class CacheUse {
  kGeneric,  // `cache: {inputs, outputs, env}` keys and restores the step (runner/cache)
  kOwn,      // the kind caches itself (packer: AMI tags); only `cache: false` is accepted
  kNever,    // an effect every build must have (publishing, deploying): `cache:` is an error
};

// What an executing step reaches (inside `runner __step`).
class StepIo {
 public:
  virtual ~StepIo() = default;
  // Text for the step's log and the console; masked by the runner.
  virtual void Log(std::string_view text) = 0;
  // An output, available to later steps as steps.ID.outputs.NAME.
  virtual void SetOutput(const std::string& name, const std::string& value) = 0;
  virtual void AddArtifact(const Artifact& artifact) = 0;
  // True once the step was told to stop (SIGINT, SIGTERM or SIGHUP): stop soon and clean up.
  virtual bool cancelled() const = 0;
  // The step's working directory (the workspace, or its `dir`), absolute.
  virtual const std::string& dir() const = 0;
  virtual const std::string& workspace() const = 0;
  virtual const BuildContext& build() const = 0;
  // The step's environment (the runner's, the pipeline's and the step's env, RUNNER_*).
  virtual const Environment& env() const = 0;
  // The pipeline file, as messages name it.
  virtual const std::string& pipeline() const = 0;
  // The kill grace the runner gives this step after a signal, for a kind that must pass a
  // grace on to what it runs.
  virtual Duration kill_grace() const = 0;
  // Where a kind starts the programs it runs itself (packer): the core's supervision, which
  // also owns the process's SIGINT and SIGTERM (cancelled() is true once one arrived).
  virtual ProcessRunner& processes() = 0;
  // How far the step is, for the console (runner/progress.h): call as often as convenient,
  // from any thread; what reaches the console is rate-limited. No secret belongs in it.
  virtual void ReportProgress(const Progress& progress) { (void)progress; }
};

class StepKind {
 public:
  virtual ~StepKind() = default;

  // The step key that selects the kind ("zip").
  virtual std::string_view name() const = 0;
  // Between a cancelled step's signal and SIGKILL, unless the step sets `kill_grace`.
  virtual Duration default_kill_grace() const { return kDefaultKillGrace; }
  virtual CacheUse cache_use() const { return CacheUse::kGeneric; }
  // Environment variables whose values this kind reads as credentials: masked in every build,
  // whether or not the pipeline lists them in `secrets`.
  virtual std::vector<std::string> secret_env() const { return {}; }
  // A message when expressions are not allowed anywhere in this kind's configuration (the
  // loader reports it at each expression); nullopt when they are.
  virtual std::optional<std::string> ExpressionsForbidden() const { return std::nullopt; }

  // Checks the configuration; every problem goes to `diags`, at the node it is about.
  virtual void Check(const ConfigNode& config, Diagnostics& diags) const = 0;

  // The CloudFormation templates the configuration names whose paths are known without a
  // build (relative to the step's directory): `runner validate` lints them (SPEC section 7).
  virtual std::vector<std::string> Templates(const ConfigNode& config) const {
    (void)config;
    return {};
  }

  // The program a step of this kind runs directly (argv, looked up on the step's PATH), from
  // its expanded configuration; nullopt: the step runs as `runner __step`, which calls Execute.
  virtual std::optional<std::vector<std::string>> Command(const ConfigNode& config) const {
    (void)config;
    return std::nullopt;
  }
  // Runs the step inside `runner __step`; `config` is expanded. An error fails the step with
  // that message.
  virtual Status Execute(const ConfigNode& config, StepIo& io) const = 0;
};

// A kind whose configuration is read by one Parse into `Options` (see the top of this file).
template <class Options>
class TypedStepKind : public StepKind {
 public:
  void Check(const ConfigNode& config, Diagnostics& diags) const final { Parse(config, diags); }

  Status Execute(const ConfigNode& config, StepIo& io) const final {
    Diagnostics diags(io.pipeline(), "");
    Options options = Parse(config, diags);
    if (diags.HasErrors()) return Fail(diags.Format());
    std::string warnings = diags.Format();
    if (!warnings.empty()) io.Log(warnings);
    return Run(options, io);
  }

 protected:
  // The options, with every problem reported to `diags`. Only used when no error was reported
  // and every scalar was known.
  virtual Options Parse(const ConfigNode& config, Diagnostics& diags) const = 0;
  virtual Status Run(const Options& options, StepIo& io) const = 0;
};

// The kinds a runner knows. Not thread-safe to modify; read-only use is.
class KindRegistry {
 public:
  // REQUIRES: no kind of the same name was added.
  void Add(std::unique_ptr<StepKind> kind);
  template <class Kind>
  void Add() {
    Add(std::make_unique<Kind>());
  }
  // A key the contract reserves for a kind this version does not have ("deploy"): a step
  // naming it gets "not supported by this version" rather than "unknown key".
  void Reserve(std::string name);

  const StepKind* Find(std::string_view name) const;
  bool IsReserved(std::string_view name) const;
  // Every kind's name, in registration order, then the reserved ones.
  std::vector<std::string> Names() const;
  // Every kind's secret_env(), without repeats.
  std::vector<std::string> SecretEnv() const;

 private:
  std::vector<std::unique_ptr<StepKind>> kinds_;
  std::vector<std::string> reserved_;
};

}  // namespace runner
