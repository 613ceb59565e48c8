// The typed model of a pipeline file (SPEC section 3), as produced by the loader. Every value
// that came from the file keeps its location, so later checks can point at it.
//
// Expressions (`${{ }}`): a TemplateString may hold them, checked by `validate` and expanded by
// the scheduler. A field held as a plain value is one the runner needs before the build's
// values exist (planning, `when`, limits): `validate` reports an expression in it as "expressions
// are not allowed in 'FIELD'". Those are `project`, both `timeout`s, `kill_grace`, `retry`
// (count, `limit`, `delay`), `when` (`branch`, `event`, `changed`) and `secrets`. The
// pipeline's `env` may use build.* and env.* only (it is expanded before vars); `vars` the same.
// `environments` and `ledger` (SPEC section 7) hold no expression at all: a deploy reads only
// what the build published, long after the build's values are gone.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "runner/diagnostics.h"

namespace runner {

using Duration = std::chrono::milliseconds;

// A string from the pipeline file that may contain `${{ name }}` expressions.
struct TemplateString {
  std::string text;
  SourceLocation where;  // of the scalar's first character
};

struct EnvEntry {
  std::string name;
  TemplateString value;
};

struct VarEntry {
  std::string name;
  TemplateString value;
  bool literal = false;  // from --var: a value, never an expression (SPEC section 2)
};

// All present conditions must hold. An absent condition always holds.
struct WhenCondition {
  std::optional<std::vector<std::string>> branches;  // globs
  std::optional<std::vector<std::string>> events;    // push, manual, pull_request, tag
  std::optional<std::vector<std::string>> changed;   // globs against changed file paths
};

struct RetryPolicy {
  int limit = 0;  // extra attempts after the first
  Duration delay{0};
};

// A step kind's configuration (`run:`, `zip:`, `packer:`, ...) as written in the pipeline: a
// tree of scalars, lists and maps that keeps every location. The loader hands it to the kind to
// check; the scheduler expands its expressions (Expand in runner/config_node.h) for the run.
struct ConfigNode {
  enum class Type { kScalar, kList, kMap };
  Type type = Type::kScalar;
  SourceLocation where;
  TemplateString scalar;          // kScalar
  bool null = false;              // kScalar: nothing was written (`key:`); its text is empty
  std::vector<ConfigNode> items;  // kList
  std::vector<std::pair<std::string, ConfigNode>> fields;  // kMap, in file order
  std::vector<SourceLocation> key_locations;               // kMap, one per field
  // The tree's expressions were expanded: every scalar is a final value, even one that holds
  // `${{` (a step output may).
  bool expanded = false;

  // The field `key` of a map, or nullptr.
  const ConfigNode* Find(std::string_view key) const;
};

// Where a deploy sends the build's CodeDeploy revision (SPEC section 7).
struct CodeDeployTarget {
  std::string application;
  std::string group;
  std::string config;  // empty: the deployment group's own configuration
  // `file_exists`: DISALLOW, OVERWRITE or RETAIN, for files on an instance that the previous
  // deployment did not put there; empty: CodeDeploy's default (DISALLOW).
  std::string file_exists;
  // `revision_store: s3://bucket/prefix/`: an S3 prefix in the environment's region (and
  // account) that the revision is copied to first, since CodeDeploy reads a revision only from
  // a bucket in its instances' region; empty: deploy the build's own object.
  std::string revision_store;
};

// An entry of `environments:` (SPEC section 7), checked by the loader: the name is
// `[a-z][a-z0-9_-]*`, region and stack are set and well-formed, every required environment
// exists and `requires` has no cycle.
struct DeployEnvironment {
  std::string name;
  std::string region;
  std::string stack;     // CloudFormation stack name
  std::string role_arn;  // empty: the deployer's own credentials, no AssumeRole
  std::vector<std::pair<std::string, std::string>> params;  // overrides, in file order
  std::vector<std::string> capabilities;                    // CAPABILITY_IAM, ...
  std::optional<CodeDeployTarget> codedeploy;
  std::vector<std::string> branches;  // globs (runner/glob.h); empty: every branch
  // `requires:`: environments where the build must have been deployed successfully first.
  std::vector<std::string> required;
  SourceLocation where;  // of the environment's name
};

// A step's `cache:` (SPEC section 8). `cache: false` is `enabled` false and nothing else.
struct StepCacheConfig {
  bool enabled = true;
  // Files whose path, exec bit and content are part of the key: patterns as runner/file_select.h
  // reads them, relative to the step's directory; one starting with `!` leaves out what it
  // matches.
  std::vector<std::string> inputs;
  std::vector<std::string> outputs;  // files and directories restored on a hit
  std::vector<std::string> env;      // variables whose values are part of the key
  SourceLocation where;              // of the value of `cache:`
};

class StepKind;  // runner/step_kind.h

struct Step {
  std::string id;
  std::string name;  // defaults to id; its expressions are expanded as the step starts
  SourceLocation where;
  std::vector<std::string> needs;  // resolved: an absent `needs` is the previous step
  std::optional<WhenCondition> when;
  std::vector<EnvEntry> env;
  std::optional<TemplateString> dir;
  std::optional<Duration> timeout;
  RetryPolicy retry;
  std::optional<Duration> kill_grace;    // nullopt: the kind's default
  std::optional<StepCacheConfig> cache;  // nullopt: no `cache:` (the generic cache is not used)
  const StepKind* kind = nullptr;        // from the registry the loader was given
  ConfigNode config;                     // the value of the kind's key

  // The kind's name: "run", "zip", ...
  std::string_view kind_name() const;
};

struct Pipeline {
  std::string path;  // as given on the command line
  int version = 1;
  std::string project;  // empty when the file does not set it
  std::vector<EnvEntry> env;
  std::vector<std::string> secrets;  // environment variable names
  std::vector<VarEntry> vars;        // file values with --var overrides applied
  std::optional<Duration> timeout;
  std::vector<Step> steps;                      // in file order
  std::vector<DeployEnvironment> environments;  // in file order
  // Where deploys are recorded (`ledger:`): s3://bucket/prefix, file:///abs/dir or a
  // directory (relative to the workspace). Empty: STATE/deployments.
  std::string ledger;
  // The shared step cache (`cache_store:`, SPEC section 8): a store URL as `ledger`. Empty: the
  // local cache (STATE/cache) only.
  std::string cache_store;
  // `cache_write:`: branch globs whose builds write to cache_store.
  std::vector<std::string> cache_write = {"main"};

  const Step* FindStep(std::string_view id) const;
};

// The grace between a cancelled step's signal and SIGKILL: its `kill_grace`, else its kind's.
Duration KillGrace(const Step& step);

}  // namespace runner
