// The typed model of a pipeline file (SPEC section 3), as produced by the loader. Every value
// that came from the file keeps its location, so later checks can point at it.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
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

// `run:` a bash script.
struct RunAction {
  std::string script;
};

// A built-in step kind's configuration (`zip:`, `packer:`, ...) as written in the pipeline:
// a tree of scalars, lists and maps that keeps every location. The loader hands it to the kind
// to validate; the scheduler expands its expressions and passes it on as JSON.
struct ConfigNode {
  enum class Type { kScalar, kList, kMap };
  Type type = Type::kScalar;
  SourceLocation where;
  TemplateString scalar;                                   // kScalar (as written)
  std::vector<ConfigNode> items;                           // kList
  std::vector<std::pair<std::string, ConfigNode>> fields;  // kMap, in file order
  std::vector<SourceLocation> key_locations;               // kMap, one per field

  // The field `key` of a map, or nullptr.
  const ConfigNode* Find(std::string_view key) const;
};

// A built-in step (SPEC section 6), run by steps/step_kind.h's StepKind of that name.
struct KindAction {
  std::string kind;
  ConfigNode config;
  Duration default_kill_grace{10000};
};

using StepAction = std::variant<RunAction, KindAction>;

struct Step {
  std::string id;
  std::string name;  // defaults to id
  SourceLocation where;
  std::vector<std::string> needs;  // resolved: an absent `needs` is the previous step
  std::optional<WhenCondition> when;
  std::vector<EnvEntry> env;
  std::optional<TemplateString> dir;
  std::optional<Duration> timeout;
  RetryPolicy retry;
  std::optional<Duration> kill_grace;  // nullopt: the kind's default
  StepAction action;

  // "run", later "zip", "packer", ...
  std::string_view kind() const;
};

struct Pipeline {
  std::string path;  // as given on the command line
  int version = 1;
  std::string project;  // empty when the file does not set it
  std::vector<EnvEntry> env;
  std::vector<std::string> secrets;  // environment variable names
  std::vector<VarEntry> vars;        // file values with --var overrides applied
  std::optional<Duration> timeout;
  std::vector<Step> steps;  // in file order

  const Step* FindStep(std::string_view id) const;
};

// Default grace between a cancelled step's signal and SIGKILL.
Duration DefaultKillGrace(const Step& step);

}  // namespace runner
