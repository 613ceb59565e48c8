#include "runner/pipeline_loader.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <set>
#include <string_view>

#include "runner/duration.h"
#include "runner/expression.h"
#include "runner/step_kind.h"
#include "runner/yaml.h"
#include "runner/yaml_text.h"

namespace runner {

namespace {

constexpr int kMaxRetryLimit = 100;

const std::vector<std::string> kTopKeys = {"version", "project",     "env",        "secrets",
                                           "vars",    "timeout",     "steps",      "environments",
                                           "ledger",  "cache_store", "cache_write"};
const std::vector<std::string> kStepKeys = {"id",  "name",    "needs", "when",       "env",
                                            "dir", "timeout", "retry", "kill_grace", "cache"};
const std::vector<std::string> kCacheKeys = {"inputs", "outputs", "env"};
const std::vector<std::string> kWhenKeys = {"branch", "event", "changed"};
const std::vector<std::string> kRetryKeys = {"limit", "delay"};
const std::vector<std::string> kEvents = {"push", "manual", "pull_request", "tag"};
const std::vector<std::string> kNameRoots = {"build", "vars", "env", "steps"};
const std::vector<std::string> kEnvironmentKeys = {
    "region", "stack", "role_arn", "params", "capabilities", "codedeploy", "branches", "requires"};
const std::vector<std::string> kCodeDeployKeys = {"application", "group", "config", "file_exists",
                                                  "revision_store"};
const std::vector<std::string> kFileExistsBehaviors = {"DISALLOW", "OVERWRITE", "RETAIN"};
const std::vector<std::string> kCapabilities = {"CAPABILITY_IAM", "CAPABILITY_NAMED_IAM",
                                                "CAPABILITY_AUTO_EXPAND"};

// Why a field takes no expression (Loader::NoExpression).
constexpr std::string_view kNeededFirst =
    "the runner needs its value before the build's values exist";
constexpr std::string_view kDeployReadsPublished =
    "a deploy reads only what the build published (its manifest.json), so no build value "
    "exists to expand";
constexpr std::string_view kLedgerOutsideBuilds =
    "deploys and `runner deployments` read the ledger outside any build";
constexpr std::string_view kCacheBeforeBuild =
    "the cache is looked up with the step's key, which these values are part of";

// An environment's name is a directory of the ledger (ENV/DEPLOY_ID.json).
constexpr size_t kMaxEnvironmentNameBytes = 64;
// CloudFormation's limits.
constexpr size_t kMaxStackNameBytes = 128;
constexpr size_t kMaxParameterNameBytes = 255;
constexpr size_t kMaxRoleNameBytes = 64;

bool Contains(const std::vector<std::string>& list, std::string_view word) {
  return std::ranges::find(list, word) != list.end();
}

// [A-Za-z_] then [A-Za-z0-9_] and, when `dash` is set, `-`.
bool IsIdentifier(std::string_view name, bool dash) {
  if (name.empty()) return false;
  if (!std::isalpha(static_cast<unsigned char>(name[0])) && name[0] != '_') return false;
  return std::ranges::all_of(name, [dash](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || (dash && c == '-');
  });
}

bool IsStepId(std::string_view id) {
  if (id.empty() || id[0] < 'a' || id[0] > 'z') return false;
  return std::ranges::all_of(id, [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

bool IsLower(char c) { return c >= 'a' && c <= 'z'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

// `eu-west-1`, `us-gov-west-1`, `cn-northwest-1`: 2 to 4 lowercase letters, one or more words,
// then a number. Only the shape is checked, so that a new region works without a new runner.
bool IsRegion(std::string_view region) {
  std::vector<std::string_view> parts;
  for (size_t begin = 0; begin <= region.size();) {
    size_t end = std::min(region.find('-', begin), region.size());
    parts.push_back(region.substr(begin, end - begin));
    begin = end + 1;
  }
  if (parts.size() < 3 || parts.front().size() < 2 || parts.front().size() > 4) return false;
  const std::string_view number = parts.back();
  if (number.empty() || number.size() > 2 || !std::ranges::all_of(number, IsDigit)) return false;
  return std::all_of(parts.begin(), parts.end() - 1, [](std::string_view word) {
    return !word.empty() && std::ranges::all_of(word, IsLower);
  });
}

// CloudFormation's rule: a letter, then letters, digits and '-', at most 128 characters.
bool IsStackName(std::string_view stack) {
  return !stack.empty() && stack.size() <= kMaxStackNameBytes &&
         std::isalpha(static_cast<unsigned char>(stack[0])) &&
         std::ranges::all_of(stack, [](char c) { return IsAlnum(c) || c == '-'; });
}

// arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME, as IAM allows them: a 12-digit account, a
// path of `/`-separated words, a name of letters, digits and `+=,.@_-` of at most 64.
bool IsRoleArn(std::string_view arn) {
  constexpr std::string_view kRole = ":role/";
  if (!arn.starts_with("arn:")) return false;
  std::string_view rest = arn.substr(4);
  size_t colon = rest.find(':');
  if (colon == std::string_view::npos) return false;
  std::string_view partition = rest.substr(0, colon);
  if (!partition.starts_with("aws") ||
      !std::ranges::all_of(partition, [](char c) { return IsLower(c) || c == '-'; })) {
    return false;
  }
  rest = rest.substr(colon + 1);
  if (!rest.starts_with("iam::")) return false;
  rest = rest.substr(5);
  if (rest.size() < 12 || !std::all_of(rest.begin(), rest.begin() + 12, IsDigit)) return false;
  rest = rest.substr(12);
  if (!rest.starts_with(kRole)) return false;
  std::string_view path_and_name = rest.substr(kRole.size());
  std::string_view name = path_and_name.substr(path_and_name.rfind('/') + 1);
  auto role_char = [](char c) { return IsAlnum(c) || std::string_view("+=,.@_-").contains(c); };
  if (name.empty() || name.size() > kMaxRoleNameBytes || !std::ranges::all_of(name, role_char)) {
    return false;
  }
  std::string_view path = path_and_name.substr(0, path_and_name.size() - name.size());
  if (path.find("//") != std::string_view::npos) return false;
  return std::ranges::all_of(path, [&](char c) { return role_char(c) || c == '/'; });
}

// The cycles of a directed graph (`edges[i]`: the nodes node i points to) in the order a
// depth-first search from node 0, 1, ... meets them, each once: rotated to start at its lowest
// node (the one written first), so that it reads (and is reported) once. Without recursion: a
// generated pipeline may chain thousands of steps.
std::vector<std::vector<size_t>> FindCycles(const std::vector<std::vector<size_t>>& edges) {
  enum class Color { kWhite, kGray, kBlack };
  std::vector<Color> color(edges.size(), Color::kWhite);
  std::set<std::vector<size_t>> seen;
  std::vector<std::vector<size_t>> cycles;
  for (size_t root = 0; root < edges.size(); ++root) {
    if (color[root] != Color::kWhite) continue;
    std::vector<std::pair<size_t, size_t>> stack = {{root, 0}};  // node, next edge to follow
    color[root] = Color::kGray;
    while (!stack.empty()) {
      auto& [node, next] = stack.back();
      if (next == edges[node].size()) {
        color[node] = Color::kBlack;
        stack.pop_back();
        continue;
      }
      size_t target = edges[node][next++];
      if (color[target] == Color::kWhite) {
        color[target] = Color::kGray;
        stack.emplace_back(target, 0);
        continue;
      }
      if (color[target] != Color::kGray) continue;
      std::vector<size_t> cycle;
      auto begin = std::ranges::find(stack, target, &std::pair<size_t, size_t>::first);
      for (auto it = begin; it != stack.end(); ++it) cycle.push_back(it->first);
      std::ranges::rotate(cycle, std::ranges::min_element(cycle));
      if (seen.insert(cycle).second) cycles.push_back(std::move(cycle));
    }
  }
  return cycles;
}

// The locations of a scalar's `${{` in the file, asked in increasing order of their offsets in
// the value: one pass over the scalar however many expressions it holds. The value may differ
// from the file (quotes, folding, escapes), so the Nth `${{` of the value is taken to be the Nth
// of the file from the scalar on.
class ExpressionLocator {
 public:
  ExpressionLocator(std::string_view source, const YamlNode& node, std::string_view text)
      : source_(source), node_(node), text_(text), source_at_(node.offset), where_(node.where) {}

  // The location of the `${{` at `offset` in the value.
  // REQUIRES: `offset` is not below the last one asked.
  SourceLocation At(size_t offset) {
    // An aliased node's text is at its anchor, elsewhere in the file.
    if (node_.anchor_where || lost_) return node_.where;
    for (; (text_at_ = text_.find("${{", text_at_)) <= offset; ++text_at_) {
      size_t found = source_.find("${{", seen_ == 0 ? source_at_ : source_at_ + 1);
      if (found == std::string_view::npos) {
        lost_ = true;
        return node_.where;
      }
      where_ = LocationAt(source_, found, source_at_, where_);
      source_at_ = found;
      ++seen_;
    }
    return where_;
  }

 private:
  std::string_view source_;
  const YamlNode& node_;
  std::string_view text_;
  size_t text_at_ = 0;    // where the next `${{` of the value is looked for
  size_t source_at_;      // the last `${{` found in the file (the scalar's start before any)
  size_t seen_ = 0;       // `${{` found in the file
  SourceLocation where_;  // of source_at_
  bool lost_ = false;     // the file has fewer `${{` than the value
};

// ---------------------------------------------------------------------------------------------
// The model, from the YAML tree.

std::string Describe(const YamlNode& node) {
  if (node.IsMap()) return "a mapping";
  if (node.IsList()) return "a list";
  return node.IsNull() ? "nothing" : "a string";
}

// One key of a mapping with its value.
struct Entry {
  std::string key;
  const YamlNode* key_node;
  const YamlNode* value;
};

// Where an expression is checked, which decides the names it may use.
enum class Context { kPipelineEnv, kVars, kStep };

struct StepDraft {
  const YamlNode* node = nullptr;
  size_t index = 0;  // in the file's list
  std::vector<Entry> entries;
  Step step;
  bool has_id = false;
  struct Need {
    size_t step;           // index into the drafts
    const YamlNode* node;  // null for the implicit need of the previous step
  };
  std::vector<Need> needs;

  std::string Label() const {
    return has_id ? fmt::format("step '{}'", step.id) : fmt::format("step #{}", index + 1);
  }
};

class Loader {
 public:
  Loader(const std::string& source, const LoadOptions& options, Diagnostics& diags)
      : source_(source), options_(options), diags_(diags) {}

  void Load(const YamlNode& root, Pipeline& pipeline);

 private:
  void Error(SourceLocation where, std::string message) { diags_.Error(where, std::move(message)); }

  static SourceLocation Where(const YamlNode& node) { return node.where; }
  // Reports a name that cannot be an environment variable's; `in` names the list it is in.
  bool CheckVariableName(const YamlNode& node, std::string_view name, std::string_view in = {}) {
    if (IsIdentifier(name, false)) return true;
    Error(Where(node), fmt::format("invalid environment variable name '{}'{}: use letters, "
                                   "digits and '_', not starting with a digit",
                                   name, in.empty() ? "" : fmt::format(" in '{}'", in)));
    return false;
  }

  // An empty value (`key:`) has no text of its own: point at the key instead.
  static SourceLocation ValueWhere(const Entry& entry) {
    if (entry.value->empty ||
        (entry.value->IsNull() && entry.value->where.line != entry.key_node->where.line)) {
      return Where(*entry.key_node);
    }
    return Where(*entry.value);
  }

  std::vector<Entry> Entries(const YamlNode& map);
  void UnknownKey(const Entry& entry, std::string_view place,
                  const std::vector<std::string>& candidates);
  std::optional<std::string> String(const Entry& entry);
  std::optional<std::string> String(const YamlNode& node, std::string_view what);
  // A list of strings without expressions (NoExpression with `why`); a single string too when
  // `single` is set.
  std::optional<std::vector<std::pair<std::string, const YamlNode*>>> StringList(
      const Entry& entry, bool single, std::string_view field, std::string_view why = kNeededFirst);
  std::optional<Duration> ParseDurationValue(const Entry& entry);
  std::optional<TemplateString> Template(const Entry& entry, Context context, StepDraft* step);

  std::vector<EnvEntry> ParseEnv(const Entry& entry, Context context, StepDraft* step);
  void ParseVars(const Entry& entry, Pipeline& pipeline);
  void ApplyVarOverrides(Pipeline& pipeline);
  void ParseSteps(const Entry& entry, Pipeline& pipeline);
  void ParseEnvironments(const Entry& entry, Pipeline& pipeline);
  // Adds the environments it requires to `required`, with the list item naming each.
  void ParseEnvironment(const Entry& entry, const std::vector<std::string>& names,
                        DeployEnvironment& environment,
                        std::vector<std::pair<std::string, const YamlNode*>>& required);
  // A string of an environment: no expression, not empty.
  std::optional<std::string> EnvironmentString(const Entry& entry, std::string_view field);
  void ParseEnvironmentParams(const Entry& entry, const std::string& field,
                              DeployEnvironment& environment);
  std::optional<CodeDeployTarget> ParseCodeDeploy(const Entry& entry, const std::string& field);
  // A store URL (`ledger`, `cache_store`): s3://bucket/prefix, file:///abs/dir or a directory;
  // nullopt after reporting what is wrong. `empty` says what an empty value should be instead.
  std::optional<std::string> StoreUrl(const Entry& entry, std::string_view why,
                                      std::string_view empty);
  std::optional<StepCacheConfig> ParseCache(const Entry& entry, const StepDraft& draft);
  void CheckCacheUse(const Step& step, const Entry& entry);
  void ParseStepId(StepDraft& draft);
  void ParseStepNeeds(StepDraft& draft);
  void ReportCycles();
  void ParseStepBody(StepDraft& draft);
  std::optional<WhenCondition> ParseWhen(const Entry& entry, const StepDraft& draft);
  std::optional<RetryPolicy> ParseRetry(const Entry& entry, const StepDraft& draft);
  std::optional<int> ParseRetryLimit(const Entry& entry);
  void CheckDir(const Entry& entry, std::string_view dir);
  // A kind's configuration as written, its expressions checked like a step's env, or each
  // reported with `forbidden` when the kind allows none.
  ConfigNode ToConfig(const YamlNode& node, SourceLocation where, StepDraft& draft,
                      const std::optional<std::string>& forbidden);

  // Expressions.
  void CheckTemplate(const YamlNode& node, std::string_view text, Context context, StepDraft* step);
  std::optional<std::string> CheckName(std::string_view name, Context context, StepDraft* step);
  // A value that takes no expression (runner/pipeline.h): reports one in it, saying `why`.
  // Returns whether it has none.
  bool NoExpression(const YamlNode& node, std::string_view field,
                    std::string_view why = kNeededFirst);
  bool Needs(const StepDraft& draft, size_t target);

  const std::string& source_;
  const LoadOptions& options_;
  Diagnostics& diags_;
  std::vector<std::string> pipeline_env_names_;
  std::vector<std::string> var_names_;
  std::vector<StepDraft> drafts_;
  std::vector<std::string> step_ids_;          // in file order, without duplicates
  std::map<std::string, size_t> first_by_id_;  // id -> index into drafts_ of its first step
  std::vector<unsigned> visited_;              // by Needs(): the search that last saw a step
  unsigned search_generation_ = 0;
};

std::vector<Entry> Loader::Entries(const YamlNode& map) {
  std::vector<Entry> entries;
  std::map<std::string, int> first_line;
  for (const auto& [key, value] : map.fields) {
    if (key.plain && key.tag.empty() && key.value == "<<") {
      Error(Where(key), "YAML merge keys ('<<') are not supported: write the keys out");
      continue;
    }
    if (!key.IsScalar()) {
      Error(Where(key), fmt::format("expected a key name, got {}", Describe(key)));
      continue;
    }
    auto [first, inserted] = first_line.emplace(key.value, key.where.line);
    if (!inserted) {
      Error(Where(key),
            fmt::format("duplicate key '{}' (first at line {})", key.value, first->second));
      continue;
    }
    entries.push_back({key.value, &key, &value});
  }
  return entries;
}

void Loader::UnknownKey(const Entry& entry, std::string_view place,
                        const std::vector<std::string>& candidates) {
  Error(Where(*entry.key_node), fmt::format("unknown key '{}' {}{}", entry.key, place,
                                            DidYouMeanHint(entry.key, candidates)));
}

std::optional<std::string> Loader::String(const YamlNode& node, std::string_view what) {
  if (node.IsScalar()) return node.value;
  Error(Where(node), fmt::format("expected a string for '{}', got {}", what, Describe(node)));
  return std::nullopt;
}

std::optional<std::string> Loader::String(const Entry& entry) {
  if (entry.value->IsScalar()) return entry.value->value;
  Error(ValueWhere(entry),
        fmt::format("expected a string for '{}', got {}", entry.key, Describe(*entry.value)));
  return std::nullopt;
}

std::optional<std::vector<std::pair<std::string, const YamlNode*>>> Loader::StringList(
    const Entry& entry, bool single, std::string_view field, std::string_view why) {
  std::vector<std::pair<std::string, const YamlNode*>> items;
  if (single && entry.value->IsScalar()) {
    if (!NoExpression(*entry.value, field, why)) return std::nullopt;
    items.emplace_back(entry.value->value, entry.value);
    return items;
  }
  if (!entry.value->IsList()) {
    Error(ValueWhere(entry), fmt::format("expected {} for '{}', got {}",
                                         single ? "a string or a list of strings" : "a list",
                                         entry.key, Describe(*entry.value)));
    return std::nullopt;
  }
  if (entry.value->items.empty()) {
    Error(ValueWhere(entry),
          fmt::format("'{}' is an empty list: list at least one value, or remove '{}'", entry.key,
                      entry.key));
    return std::nullopt;
  }
  bool ok = true;
  for (const YamlNode& item : entry.value->items) {
    std::optional<std::string> text = String(item, entry.key);
    if (text && NoExpression(item, field, why)) {
      items.emplace_back(*text, &item);
    } else {
      ok = false;
    }
  }
  if (!ok) return std::nullopt;
  return items;
}

std::optional<Duration> Loader::ParseDurationValue(const Entry& entry) {
  std::optional<std::string> text = String(entry);
  if (!text || !NoExpression(*entry.value, entry.key)) return std::nullopt;
  Result<Duration> duration = ParseDuration(*text);
  if (!duration) {
    Error(ValueWhere(entry), duration.error());
    return std::nullopt;
  }
  return *duration;
}

std::optional<TemplateString> Loader::Template(const Entry& entry, Context context,
                                               StepDraft* step) {
  std::optional<std::string> text = String(entry);
  if (!text) return std::nullopt;
  CheckTemplate(*entry.value, *text, context, step);
  return TemplateString{*text, Where(*entry.value)};
}

// ---- top level

void Loader::Load(const YamlNode& root, Pipeline& pipeline) {
  if (!root.IsMap()) {
    Error(Where(root), fmt::format("the top level of a pipeline file must be a mapping with "
                                   "`version: 1` and `steps:`, got {}",
                                   Describe(root)));
    return;
  }
  std::map<std::string, Entry, std::less<>> top;
  for (Entry& entry : Entries(root)) {
    if (Contains(kTopKeys, entry.key)) {
      top.emplace(entry.key, entry);
    } else {
      UnknownKey(entry, "at the top level", kTopKeys);
    }
  }
  auto find = [&](std::string_view key) -> const Entry* {
    auto it = top.find(key);
    return it == top.end() ? nullptr : &it->second;
  };

  if (const Entry* version = find("version")) {
    if (!version->value->IsScalar() || version->value->value != "1") {
      std::string got = version->value->IsScalar() ? "'" + version->value->value + "'"
                                                   : Describe(*version->value);
      Error(ValueWhere(*version),
            fmt::format("unsupported version {}: this runner reads `version: 1`", got));
    }
  } else {
    Error(Where(root), "missing `version: 1` at the top level");
  }
  if (const Entry* project = find("project")) {
    auto text = String(*project);
    if (text && NoExpression(*project->value, "project")) pipeline.project = *text;
  }
  if (const Entry* env = find("env")) {
    pipeline.env = ParseEnv(*env, Context::kPipelineEnv, nullptr);
  }
  if (const Entry* secrets = find("secrets")) {
    if (auto names = StringList(*secrets, false, "secrets")) {
      for (const auto& [name, node] : *names) {
        CheckVariableName(*node, name, "secrets");
        pipeline.secrets.push_back(name);
      }
    }
  }
  if (const Entry* vars = find("vars")) ParseVars(*vars, pipeline);
  ApplyVarOverrides(pipeline);
  if (const Entry* timeout = find("timeout")) pipeline.timeout = ParseDurationValue(*timeout);
  if (const Entry* steps = find("steps")) {
    ParseSteps(*steps, pipeline);
  } else {
    Error(Where(root), "missing `steps:` at the top level: a pipeline needs at least one step");
  }
  if (const Entry* environments = find("environments")) {
    ParseEnvironments(*environments, pipeline);
  }
  if (const Entry* ledger = find("ledger")) {
    auto url =
        StoreUrl(*ledger, kLedgerOutsideBuilds, "remove it to record deploys in STATE/deployments");
    if (url) pipeline.ledger = *url;
  }
  if (const Entry* store = find("cache_store")) {
    auto url =
        StoreUrl(*store, kNeededFirst, "remove it to use the local cache (STATE/cache) only");
    if (url) pipeline.cache_store = *url;
  }
  if (const Entry* write = find("cache_write")) {
    if (auto globs = StringList(*write, true, "cache_write")) {
      pipeline.cache_write.clear();
      for (const auto& [glob, node] : *globs) pipeline.cache_write.push_back(glob);
    }
  }
}

std::vector<EnvEntry> Loader::ParseEnv(const Entry& entry, Context context, StepDraft* step) {
  std::vector<EnvEntry> env;
  if (!entry.value->IsMap()) {
    Error(ValueWhere(entry),
          fmt::format("expected a mapping for 'env', got {} (write `env: {{NAME: value}}`)",
                      Describe(*entry.value)));
    return env;
  }
  std::vector<Entry> entries = Entries(*entry.value);
  // Names first: a step's value may name a variable set later in the same `env`.
  if (context == Context::kPipelineEnv) {
    for (const Entry& var : entries) pipeline_env_names_.push_back(var.key);
  }
  for (const Entry& var : entries) {
    CheckVariableName(*var.key_node, var.key);
    if (auto value = Template(var, context, step)) env.push_back({var.key, *value});
  }
  return env;
}

void Loader::ParseVars(const Entry& entry, Pipeline& pipeline) {
  if (!entry.value->IsMap()) {
    Error(ValueWhere(entry),
          fmt::format("expected a mapping for 'vars', got {} (write `vars: {{name: value}}`)",
                      Describe(*entry.value)));
    return;
  }
  for (const Entry& var : Entries(*entry.value)) {
    if (!IsIdentifier(var.key, true)) {
      Error(Where(*var.key_node),
            fmt::format("invalid var name '{}': use letters, digits, '_' and '-', starting with a "
                        "letter or '_'",
                        var.key));
    }
    var_names_.push_back(var.key);
    if (auto value = Template(var, Context::kVars, nullptr)) {
      pipeline.vars.push_back({var.key, *value});
    }
  }
}

void Loader::ApplyVarOverrides(Pipeline& pipeline) {
  for (const auto& [name, value] : options_.var_overrides) {
    if (!IsIdentifier(name, true)) {
      Error({}, fmt::format("invalid --var name '{}': use letters, digits, '_' and '-', starting "
                            "with a letter or '_'",
                            name));
      continue;
    }
    auto it = std::ranges::find(pipeline.vars, name, &VarEntry::name);
    if (it != pipeline.vars.end()) {
      it->value = TemplateString{value, {}};
      it->literal = true;
      continue;
    }
    if (!Contains(var_names_, name)) {
      // A typo would otherwise run the build with the file's default, silently.
      diags_.Warning({}, fmt::format("--var {}: the pipeline declares no such var{}; it is set "
                                     "anyway",
                                     name, DidYouMeanHint(name, var_names_)));
      var_names_.push_back(name);
    }
    pipeline.vars.push_back({name, TemplateString{value, {}}, true});
  }
}

// ---- steps

void Loader::ParseSteps(const Entry& entry, Pipeline& pipeline) {
  if (!entry.value->IsList()) {
    Error(ValueWhere(entry),
          fmt::format("expected a list for 'steps', got {} (write `- id: NAME` lines under "
                      "`steps:`)",
                      Describe(*entry.value)));
    return;
  }
  if (entry.value->items.empty()) {
    Error(ValueWhere(entry), "'steps' is empty: a pipeline needs at least one step");
    return;
  }
  size_t index = 0;
  for (const YamlNode& node : entry.value->items) {
    if (!node.IsMap()) {
      Error(Where(node), fmt::format("expected a mapping for step #{}, got {} (write `- id: "
                                     "NAME` and `run: SCRIPT`)",
                                     index + 1, Describe(node)));
    } else {
      StepDraft draft;
      draft.node = &node;
      draft.index = index;
      drafts_.push_back(std::move(draft));
    }
    ++index;
  }

  // Three passes, since a step's needs may name a later step and its expressions may name
  // any step among its transitive needs.
  for (StepDraft& draft : drafts_) ParseStepId(draft);
  for (StepDraft& draft : drafts_) ParseStepNeeds(draft);
  ReportCycles();
  for (StepDraft& draft : drafts_) ParseStepBody(draft);
  for (StepDraft& draft : drafts_) pipeline.steps.push_back(std::move(draft.step));
}

void Loader::ParseStepId(StepDraft& draft) {
  draft.entries = Entries(*draft.node);
  draft.step.where = Where(*draft.node);
  auto id = std::ranges::find(draft.entries, "id", &Entry::key);
  if (id == draft.entries.end()) {
    Error(draft.step.where, fmt::format("step #{} has no 'id': add `id: NAME`", draft.index + 1));
    return;
  }
  std::optional<std::string> text = String(*id);
  if (!text) return;
  draft.step.id = *text;
  draft.has_id = true;
  if (text->size() > kMaxStepIdBytes) {
    Error(ValueWhere(*id), fmt::format("step id is {} bytes long: at most {} (it names the step's "
                                       "log file, logs/ID.log)",
                                       text->size(), kMaxStepIdBytes));
  } else if (!IsStepId(*text)) {
    Error(ValueWhere(*id), fmt::format("invalid step id '{}': use lowercase letters, digits, '_' "
                                       "and '-', starting with a letter",
                                       *text));
  }
  auto [first, inserted] = first_by_id_.emplace(*text, &draft - drafts_.data());
  if (inserted) {
    step_ids_.push_back(*text);
  } else {
    Error(ValueWhere(*id), fmt::format("duplicate step id '{}' (first at line {})", *text,
                                       drafts_[first->second].step.where.line));
  }
}

void Loader::ParseStepNeeds(StepDraft& draft) {
  size_t self = &draft - drafts_.data();
  auto need = [&](size_t index, const YamlNode* node) {
    if (std::ranges::find(draft.needs, index, &StepDraft::Need::step) != draft.needs.end()) return;
    draft.needs.push_back({index, node});
    draft.step.needs.push_back(drafts_[index].step.id);
  };
  auto entry = std::ranges::find(draft.entries, "needs", &Entry::key);
  if (entry == draft.entries.end()) {
    if (self > 0 && drafts_[self - 1].has_id) {
      need(first_by_id_.at(drafts_[self - 1].step.id), nullptr);
    }
    return;
  }
  std::vector<std::pair<std::string, const YamlNode*>> ids;
  if (entry->value->IsScalar()) {
    Error(ValueWhere(*entry), fmt::format("'needs' must be a list of step ids: write `needs: [{}]`",
                                          entry->value->value));
    ids.emplace_back(entry->value->value, entry->value);
  } else if (entry->value->IsList()) {
    for (const YamlNode& item : entry->value->items) {
      if (auto id = String(item, "needs")) ids.emplace_back(*id, &item);
    }
  } else {
    Error(ValueWhere(*entry),
          fmt::format("expected a list of step ids for 'needs', got {}", Describe(*entry->value)));
  }
  for (const auto& [id, node] : ids) {
    if (draft.has_id && id == draft.step.id) {
      Error(Where(*node), fmt::format("{} needs itself", draft.Label()));
    } else if (auto it = first_by_id_.find(id); it != first_by_id_.end()) {
      need(it->second, node);
    } else {
      Error(Where(*node), fmt::format("{} needs unknown step '{}'{}", draft.Label(), id,
                                      DidYouMeanHint(id, step_ids_)));
    }
  }
}

void Loader::ReportCycles() {
  std::vector<std::vector<size_t>> edges;
  for (const StepDraft& draft : drafts_) {
    edges.emplace_back();
    for (const StepDraft::Need& need : draft.needs) edges.back().push_back(need.step);
  }
  for (const std::vector<size_t>& cycle : FindCycles(edges)) {
    std::string path;
    for (size_t member : cycle) path += drafts_[member].step.id + " -> ";
    path += drafts_[cycle.front()].step.id;
    const StepDraft& first = drafts_[cycle.front()];
    size_t second = cycle.size() > 1 ? cycle[1] : cycle.front();
    auto need = std::ranges::find(first.needs, second, &StepDraft::Need::step);
    SourceLocation where =
        need->node && !need->node->IsNull() ? Where(*need->node) : first.step.where;
    Error(where, fmt::format("dependency cycle: {}", path));
  }
}

void Loader::ParseStepBody(StepDraft& draft) {
  Step& step = draft.step;
  std::vector<const Entry*> kinds;
  const Entry* cache_entry = nullptr;
  for (const Entry& entry : draft.entries) {
    const std::string& key = entry.key;
    if (key == "id" || key == "needs") {
      continue;  // read before
    } else if (key == "name") {
      if (auto name = Template(entry, Context::kStep, &draft)) step.name = name->text;
    } else if (key == "when") {
      step.when = ParseWhen(entry, draft);
    } else if (key == "env") {
      step.env = ParseEnv(entry, Context::kStep, &draft);
    } else if (key == "dir") {
      step.dir = Template(entry, Context::kStep, &draft);
      if (step.dir) CheckDir(entry, step.dir->text);
    } else if (key == "timeout") {
      step.timeout = ParseDurationValue(entry);
    } else if (key == "kill_grace") {
      step.kill_grace = ParseDurationValue(entry);
    } else if (key == "retry") {
      if (auto retry = ParseRetry(entry, draft)) step.retry = *retry;
    } else if (key == "cache") {
      step.cache = ParseCache(entry, draft);
      cache_entry = &entry;
    } else if (const StepKind* kind = options_.kinds ? options_.kinds->Find(key) : nullptr) {
      kinds.push_back(&entry);
      step.kind = kind;
      step.config = ToConfig(*entry.value, ValueWhere(entry), draft, kind->ExpressionsForbidden());
      kind->Check(step.config, diags_);
    } else if (options_.kinds && options_.kinds->IsReserved(key)) {
      kinds.push_back(&entry);
      Error(Where(*entry.key_node),
            fmt::format("step kind '{}' is not supported by this version of runner", key));
    } else {
      std::vector<std::string> candidates = kStepKeys;
      if (options_.kinds) {
        std::vector<std::string> names = options_.kinds->Names();
        candidates.insert(candidates.end(), names.begin(), names.end());
      }
      UnknownKey(entry, "in " + draft.Label(), candidates);
    }
  }
  if (kinds.empty()) {
    std::vector<std::string> names =
        options_.kinds ? options_.kinds->Names() : std::vector<std::string>();
    Error(step.where, names.empty()
                          ? fmt::format("{} has no kind", draft.Label())
                          : fmt::format("{} has no kind: add `{}:`", draft.Label(), names.front()));
  } else if (kinds.size() > 1) {
    Error(Where(*kinds[1]->key_node),
          fmt::format("{} has more than one kind ('{}' and '{}'): give each its own step",
                      draft.Label(), kinds[0]->key, kinds[1]->key));
  }
  if (cache_entry) CheckCacheUse(step, *cache_entry);
  if (step.name.empty()) step.name = step.id;
}

ConfigNode Loader::ToConfig(const YamlNode& node, SourceLocation where, StepDraft& draft,
                            const std::optional<std::string>& forbidden) {
  ConfigNode out;
  out.where = where;
  if (node.IsMap()) {
    out.type = ConfigNode::Type::kMap;
    for (const Entry& entry : Entries(node)) {
      out.key_locations.push_back(Where(*entry.key_node));
      out.fields.emplace_back(entry.key,
                              ToConfig(*entry.value, ValueWhere(entry), draft, forbidden));
    }
  } else if (node.IsList()) {
    out.type = ConfigNode::Type::kList;
    for (const YamlNode& item : node.items) {
      out.items.push_back(ToConfig(item, Where(item), draft, forbidden));
    }
  } else {
    // `key:` with nothing after it is an empty string: the kind reports it if it must not be.
    std::string text = node.IsNull() ? "" : node.value;
    if (!forbidden) {
      if (!text.empty()) CheckTemplate(node, text, Context::kStep, &draft);
    } else if (size_t at = text.find("${{"); at != std::string::npos) {
      Error(ExpressionLocator(source_, node, text).At(at), *forbidden);
    }
    out.scalar = TemplateString{std::move(text), where};
    out.null = node.IsNull();
  }
  return out;
}

std::optional<WhenCondition> Loader::ParseWhen(const Entry& entry, const StepDraft& draft) {
  if (!entry.value->IsMap()) {
    Error(ValueWhere(entry), fmt::format("expected a mapping for 'when', got {} (write `when: "
                                         "{{branch: main}}`)",
                                         Describe(*entry.value)));
    return std::nullopt;
  }
  WhenCondition when;
  auto strings = [](const std::vector<std::pair<std::string, const YamlNode*>>& items) {
    std::vector<std::string> out;
    for (const auto& item : items) out.push_back(item.first);
    return out;
  };
  for (const Entry& condition : Entries(*entry.value)) {
    if (condition.key == "branch") {
      if (auto globs = StringList(condition, true, condition.key)) when.branches = strings(*globs);
    } else if (condition.key == "changed") {
      if (auto globs = StringList(condition, true, condition.key)) when.changed = strings(*globs);
    } else if (condition.key == "event") {
      auto events = StringList(condition, true, condition.key);
      if (!events) continue;
      for (const auto& [event, node] : *events) {
        if (!Contains(kEvents, event)) {
          Error(Where(*node), fmt::format("unknown event '{}'{}: use push, manual, pull_request "
                                          "or tag",
                                          event, DidYouMeanHint(event, kEvents)));
        }
      }
      when.events = strings(*events);
    } else {
      UnknownKey(condition, fmt::format("in 'when' of {}", draft.Label()), kWhenKeys);
    }
  }
  return when;
}

std::optional<int> Loader::ParseRetryLimit(const Entry& entry) {
  const std::string kForm = "give a count such as `retry: 2`, or `retry: {limit: 2, delay: 10s}`";
  if (!entry.value->IsScalar()) {
    Error(ValueWhere(entry), fmt::format("expected a count for '{}', got {}: {}", entry.key,
                                         Describe(*entry.value), kForm));
    return std::nullopt;
  }
  const std::string& text = entry.value->value;
  if (!NoExpression(*entry.value, entry.key)) return std::nullopt;
  if (text.empty() || text.size() > 9 ||
      !std::ranges::all_of(text, [](char c) { return c >= '0' && c <= '9'; })) {
    Error(ValueWhere(entry), fmt::format("invalid retry count '{}': {}", text, kForm));
    return std::nullopt;
  }
  int limit = std::stoi(text);
  if (limit > kMaxRetryLimit) {
    Error(ValueWhere(entry),
          fmt::format("retry limit {} is too high: at most {}", limit, kMaxRetryLimit));
    return std::nullopt;
  }
  return limit;
}

std::optional<RetryPolicy> Loader::ParseRetry(const Entry& entry, const StepDraft& draft) {
  RetryPolicy retry;
  if (!entry.value->IsMap()) {
    std::optional<int> limit = ParseRetryLimit(entry);
    if (!limit) return std::nullopt;
    retry.limit = *limit;
    return retry;
  }
  bool has_limit = false;
  bool ok = true;
  for (const Entry& field : Entries(*entry.value)) {
    if (field.key == "limit") {
      has_limit = true;
      std::optional<int> limit = ParseRetryLimit(field);
      if (limit) retry.limit = *limit;
      ok = ok && limit;
    } else if (field.key == "delay") {
      std::optional<Duration> delay = ParseDurationValue(field);
      if (delay) retry.delay = *delay;
      ok = ok && delay;
    } else {
      UnknownKey(field, fmt::format("in 'retry' of {}", draft.Label()), kRetryKeys);
    }
  }
  if (!has_limit) {
    Error(Where(*entry.value), "'retry' needs a 'limit': e.g. `retry: {limit: 2, delay: 10s}`");
    return std::nullopt;
  }
  if (!ok) return std::nullopt;
  return retry;
}

// Only the literal text can be checked here: an expression counts as one path component.
void Loader::CheckDir(const Entry& entry, std::string_view dir) {
  if (dir.empty()) {
    Error(ValueWhere(entry), "'dir' is empty: remove it to run in the workspace");
    return;
  }
  if (dir.front() == '/') {
    Error(ValueWhere(entry),
          fmt::format("'dir' must be a path relative to the workspace, got '{}'", dir));
    return;
  }
  int depth = 0;
  size_t begin = 0;
  while (begin <= dir.size()) {
    size_t end = std::min(dir.find('/', begin), dir.size());
    std::string_view part = dir.substr(begin, end - begin);
    if (part == "..") {
      if (--depth < 0) {
        Error(ValueWhere(entry), fmt::format("'dir' must stay inside the workspace, but '{}' "
                                             "goes above it with '..'",
                                             dir));
        return;
      }
    } else if (!part.empty() && part != ".") {
      ++depth;
    }
    begin = end + 1;
  }
}

// ---- environments and the ledger (SPEC section 7)

void Loader::ParseEnvironments(const Entry& entry, Pipeline& pipeline) {
  if (!entry.value->IsMap()) {
    Error(ValueWhere(entry),
          fmt::format("expected a mapping for 'environments', got {} (write `environments: "
                      "{{stg: {{region: eu-west-1, stack: orders-stg}}}}`)",
                      Describe(*entry.value)));
    return;
  }
  std::vector<Entry> entries = Entries(*entry.value);
  if (entries.empty()) {
    Error(ValueWhere(entry),
          "'environments' is empty: define at least one, or remove 'environments'");
    return;
  }
  std::vector<std::string> names;
  for (const Entry& environment : entries) names.push_back(environment.key);
  // For the cycle check: per environment, the environments it requires and where.
  std::vector<std::vector<std::pair<std::string, const YamlNode*>>> required(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    DeployEnvironment environment;
    environment.name = entries[i].key;
    environment.where = Where(*entries[i].key_node);
    if (environment.name.size() > kMaxEnvironmentNameBytes) {
      Error(environment.where,
            fmt::format("environment name is {} bytes long: at most {} (it names a directory of "
                        "the ledger)",
                        environment.name.size(), kMaxEnvironmentNameBytes));
    } else if (!IsStepId(environment.name)) {
      Error(environment.where,
            fmt::format("invalid environment name '{}': use lowercase letters, digits, '_' and "
                        "'-', starting with a letter",
                        environment.name));
    }
    ParseEnvironment(entries[i], names, environment, required[i]);
    pipeline.environments.push_back(std::move(environment));
  }

  std::map<std::pair<std::string, std::string>, std::string> by_stack;
  for (const DeployEnvironment& environment : pipeline.environments) {
    if (environment.region.empty() || environment.stack.empty()) continue;
    auto [first, inserted] =
        by_stack.emplace(std::pair(environment.region, environment.stack), environment.name);
    if (!inserted) {
      Error(environment.where,
            fmt::format("environments '{}' and '{}' both deploy stack '{}' in {}: give each its "
                        "own stack",
                        first->second, environment.name, environment.stack, environment.region));
    }
  }

  std::vector<std::vector<size_t>> edges(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    for (const auto& need : required[i]) {
      edges[i].push_back(std::ranges::find(names, need.first) - names.begin());
    }
  }
  for (const std::vector<size_t>& cycle : FindCycles(edges)) {
    std::string path;
    for (size_t member : cycle) path += names[member] + " -> ";
    path += names[cycle.front()];
    const std::string& second = names[cycle.size() > 1 ? cycle[1] : cycle.front()];
    const YamlNode* need = std::ranges::find(required[cycle.front()], second,
                                             &std::pair<std::string, const YamlNode*>::first)
                               ->second;
    Error(Where(*need), fmt::format("cycle in 'requires': {}", path));
  }
}

void Loader::ParseEnvironment(const Entry& entry, const std::vector<std::string>& names,
                              DeployEnvironment& environment,
                              std::vector<std::pair<std::string, const YamlNode*>>& required) {
  const std::string label = fmt::format("environment '{}'", environment.name);
  if (!entry.value->IsMap()) {
    Error(ValueWhere(entry), fmt::format("expected a mapping for {}, got {} (write `{}: {{region: "
                                         "eu-west-1, stack: STACK}}`)",
                                         label, Describe(*entry.value), environment.name));
    return;
  }
  bool has_region = false;
  bool has_stack = false;
  for (const Entry& field : Entries(*entry.value)) {
    const std::string path = fmt::format("environments.{}.{}", environment.name, field.key);
    if (field.key == "region") {
      has_region = true;
      auto region = EnvironmentString(field, path);
      if (!region) continue;
      if (!IsRegion(*region)) {
        Error(ValueWhere(field), fmt::format("invalid region '{}' in {}: use an AWS region such "
                                             "as eu-west-1",
                                             *region, label));
      }
      environment.region = *region;
    } else if (field.key == "stack") {
      has_stack = true;
      auto stack = EnvironmentString(field, path);
      if (!stack) continue;
      if (!IsStackName(*stack)) {
        Error(ValueWhere(field),
              fmt::format("invalid stack name '{}' in {}: CloudFormation wants a letter, then "
                          "letters, digits and '-', at most {} characters",
                          *stack, label, kMaxStackNameBytes));
      }
      environment.stack = *stack;
    } else if (field.key == "role_arn") {
      auto arn = EnvironmentString(field, path);
      if (!arn) continue;
      if (!IsRoleArn(*arn)) {
        Error(ValueWhere(field),
              fmt::format("invalid role_arn '{}' in {}: give an IAM role ARN such as "
                          "arn:aws:iam::111111111111:role/deployer",
                          *arn, label));
      }
      environment.role_arn = *arn;
    } else if (field.key == "params") {
      ParseEnvironmentParams(field, path, environment);
    } else if (field.key == "capabilities") {
      auto capabilities = StringList(field, false, path, kDeployReadsPublished);
      if (!capabilities) continue;
      for (const auto& [capability, node] : *capabilities) {
        if (!Contains(kCapabilities, capability)) {
          Error(Where(*node), fmt::format("unknown capability '{}'{}: use CAPABILITY_IAM, "
                                          "CAPABILITY_NAMED_IAM or CAPABILITY_AUTO_EXPAND",
                                          capability, DidYouMeanHint(capability, kCapabilities)));
        } else if (!Contains(environment.capabilities, capability)) {
          environment.capabilities.push_back(capability);
        }
      }
    } else if (field.key == "codedeploy") {
      environment.codedeploy = ParseCodeDeploy(field, path);
    } else if (field.key == "branches") {
      auto globs = StringList(field, true, path, kDeployReadsPublished);
      if (!globs) continue;
      for (const auto& glob : *globs) environment.branches.push_back(glob.first);
    } else if (field.key == "requires") {
      auto others = StringList(field, false, path, kDeployReadsPublished);
      if (!others) continue;
      for (const auto& [other, node] : *others) {
        if (other == environment.name) {
          Error(Where(*node), fmt::format("{} requires itself", label));
        } else if (!Contains(names, other)) {
          Error(Where(*node), fmt::format("{} requires unknown environment '{}'{}", label, other,
                                          DidYouMeanHint(other, names)));
        } else if (!Contains(environment.required, other)) {
          environment.required.push_back(other);
          required.emplace_back(other, node);
        }
      }
    } else {
      UnknownKey(field, "in " + label, kEnvironmentKeys);
    }
  }
  if (!has_region) {
    Error(environment.where, fmt::format("{} has no 'region': add `region: eu-west-1`", label));
  }
  if (!has_stack) {
    Error(environment.where, fmt::format("{} has no 'stack': add `stack: STACK_NAME`", label));
  }
}

std::optional<std::string> Loader::EnvironmentString(const Entry& entry, std::string_view field) {
  std::optional<std::string> text = String(entry);
  if (!text || !NoExpression(*entry.value, field, kDeployReadsPublished)) return std::nullopt;
  if (text->empty()) {
    Error(ValueWhere(entry), fmt::format("'{}' is empty", field));
    return std::nullopt;
  }
  return text;
}

void Loader::ParseEnvironmentParams(const Entry& entry, const std::string& field,
                                    DeployEnvironment& environment) {
  if (!entry.value->IsMap()) {
    Error(ValueWhere(entry),
          fmt::format("expected a mapping for '{}', got {} (write `params: {{Environment: "
                      "staging}}`)",
                      field, Describe(*entry.value)));
    return;
  }
  for (const Entry& param : Entries(*entry.value)) {
    if (param.key.empty() || param.key.size() > kMaxParameterNameBytes ||
        !std::ranges::all_of(param.key, IsAlnum)) {
      Error(Where(*param.key_node),
            fmt::format("invalid parameter name '{}' in '{}': CloudFormation parameter names are "
                        "letters and digits",
                        param.key, field));
    }
    if (param.value->IsNull()) {
      Error(ValueWhere(param), fmt::format("parameter '{}' in '{}' has no value: write \"\" for "
                                           "an empty one",
                                           param.key, field));
      continue;
    }
    if (!param.value->IsScalar()) {
      Error(ValueWhere(param),
            fmt::format("expected a scalar for parameter '{}' in '{}', got {} (a "
                        "CommaDelimitedList is one string: \"a,b\")",
                        param.key, field, Describe(*param.value)));
      continue;
    }
    if (NoExpression(*param.value, field + "." + param.key, kDeployReadsPublished)) {
      environment.params.emplace_back(param.key, param.value->value);
    }
  }
}

std::optional<CodeDeployTarget> Loader::ParseCodeDeploy(const Entry& entry,
                                                        const std::string& field) {
  if (!entry.value->IsMap()) {
    Error(ValueWhere(entry),
          fmt::format("expected a mapping for '{}', got {} (write `codedeploy: {{application: "
                      "APP, group: GROUP}}`)",
                      field, Describe(*entry.value)));
    return std::nullopt;
  }
  CodeDeployTarget target;
  std::set<std::string> seen;
  bool ok = true;
  for (const Entry& key : Entries(*entry.value)) {
    std::string* value = key.key == "application"      ? &target.application
                         : key.key == "group"          ? &target.group
                         : key.key == "config"         ? &target.config
                         : key.key == "file_exists"    ? &target.file_exists
                         : key.key == "revision_store" ? &target.revision_store
                                                       : nullptr;
    if (value == nullptr) {
      UnknownKey(key, fmt::format("in '{}'", field), kCodeDeployKeys);
      ok = false;
      continue;
    }
    seen.insert(key.key);
    auto text = EnvironmentString(key, field + "." + key.key);
    if (text) *value = *text;
    ok = ok && text;
    if (text && key.key == "file_exists" &&
        std::ranges::find(kFileExistsBehaviors, *text) == kFileExistsBehaviors.end()) {
      Error(ValueWhere(key), fmt::format("'{}.file_exists' is '{}': use DISALLOW, OVERWRITE or "
                                         "RETAIN (what CodeDeploy does with a file already on the "
                                         "instance that the last deployment did not put there)",
                                         field, *text));
      ok = false;
    }
    if (text && key.key == "revision_store" &&
        (!text->starts_with("s3://") || text->size() == 5 || text->at(5) == '/')) {
      Error(ValueWhere(key),
            fmt::format("'{}.revision_store' must be an S3 prefix in the environment's region, "
                        "s3://BUCKET/PREFIX/ (CodeDeploy reads revisions from S3), not '{}'",
                        field, *text));
      ok = false;
    }
  }
  for (const char* name : {"application", "group"}) {
    if (seen.contains(name)) continue;
    Error(ValueWhere(entry), fmt::format("'{}' has no '{}': add `{}: NAME`", field, name, name));
    ok = false;
  }
  if (!ok) return std::nullopt;
  return target;
}

std::optional<std::string> Loader::StoreUrl(const Entry& entry, std::string_view why,
                                            std::string_view empty) {
  std::optional<std::string> url = String(entry);
  if (!url || !NoExpression(*entry.value, entry.key, why)) return std::nullopt;
  if (url->empty()) {
    Error(ValueWhere(entry), fmt::format("'{}' is empty: {}", entry.key, empty));
    return std::nullopt;
  }
  if (size_t end = url->find("://"); end != std::string::npos) {
    const std::string scheme = url->substr(0, end);
    const std::string_view rest = std::string_view(*url).substr(end + 3);
    if (scheme != "s3" && scheme != "file") {
      const std::vector<std::string> schemes = {"s3", "file"};
      Error(ValueWhere(entry), fmt::format("unknown scheme '{}' in '{}'{}: use s3://bucket/prefix, "
                                           "file:///abs/dir or a directory",
                                           scheme, entry.key, DidYouMeanHint(scheme, schemes)));
      return std::nullopt;
    }
    if (scheme == "s3" && (rest.empty() || rest.starts_with('/'))) {
      Error(ValueWhere(entry),
            fmt::format("'{}' names no bucket: write s3://BUCKET/prefix", entry.key));
      return std::nullopt;
    }
    if (scheme == "file" && rest.empty()) {
      Error(ValueWhere(entry),
            fmt::format("'{}' names no directory: write file:///abs/dir or a path", entry.key));
      return std::nullopt;
    }
  }
  return url;
}

// ---- the step cache (SPEC section 8)

std::optional<StepCacheConfig> Loader::ParseCache(const Entry& entry, const StepDraft& draft) {
  StepCacheConfig cache;
  cache.where = ValueWhere(entry);
  if (entry.value->IsScalar() && entry.value->value == "false") {
    cache.enabled = false;
    return cache;
  }
  if (!entry.value->IsMap()) {
    Error(ValueWhere(entry),
          fmt::format(
              "expected a mapping or `false` for 'cache', got {} (write `cache: {{inputs: "
              "[\"src/**\"], outputs: [dist/app]}}`, or `cache: false`)",
              entry.value->IsScalar() ? "'" + entry.value->value + "'" : Describe(*entry.value)));
    return std::nullopt;
  }
  bool ok = true;
  for (const Entry& field : Entries(*entry.value)) {
    if (!Contains(kCacheKeys, field.key)) {
      UnknownKey(field, fmt::format("in 'cache' of {}", draft.Label()), kCacheKeys);
      ok = false;
      continue;
    }
    auto items = StringList(field, false, "cache." + field.key, kCacheBeforeBuild);
    if (!items) {
      ok = false;
      continue;
    }
    std::vector<std::string>& list = field.key == "inputs"    ? cache.inputs
                                     : field.key == "outputs" ? cache.outputs
                                                              : cache.env;
    for (const auto& [text, node] : *items) {
      std::string_view pattern = text;
      if (field.key == "inputs" && pattern.starts_with('!')) pattern.remove_prefix(1);
      if (field.key == "env" && !CheckVariableName(*node, text, "cache.env")) {
        ok = false;
      } else if (field.key != "env" && (pattern.empty() || pattern.front() == '/')) {
        Error(Where(*node),
              fmt::format("'cache.{}' takes paths relative to the step's directory, got '{}'",
                          field.key, text));
        ok = false;
      }
      list.push_back(text);
    }
  }
  if (!ok) return std::nullopt;
  return cache;
}

void Loader::CheckCacheUse(const Step& step, const Entry& entry) {
  if (!step.kind || !step.cache || !step.cache->enabled) return;
  if (step.kind->cache_use() == CacheUse::kOwn) {
    Error(ValueWhere(entry),
          fmt::format("'{}' steps cache themselves: 'cache' takes only `false` here (to "
                      "never reuse a result)",
                      step.kind_name()));
  } else if (step.kind->cache_use() == CacheUse::kNever) {
    Error(ValueWhere(entry),
          fmt::format("'{}' steps are never cached: what they do must happen in every build; "
                      "remove 'cache'",
                      step.kind_name()));
  }
}

// ---- expressions

bool Loader::NoExpression(const YamlNode& node, std::string_view field, std::string_view why) {
  size_t at = node.value.find("${{");
  if (at == std::string::npos) return true;
  Error(ExpressionLocator(source_, node, node.value).At(at),
        fmt::format("expressions are not allowed in '{}': {}; write the value itself", field, why));
  return false;
}

void Loader::CheckTemplate(const YamlNode& node, std::string_view text, Context context,
                           StepDraft* step) {
  ExpressionLocator locator(source_, node, text);
  auto parts = ParseTemplate(text);
  if (!parts) {
    Error(locator.At(parts.error().offset), parts.error().message);
    return;
  }
  for (const TemplatePart& part : *parts) {
    if (!part.is_expression) continue;
    if (auto problem = CheckName(part.text, context, step))
      Error(locator.At(part.offset), *problem);
  }
}

// A search that stops at the target: a step usually reads a step it needs directly, and a
// full closure per step would be quadratic on long chains.
bool Loader::Needs(const StepDraft& draft, size_t target) {
  ++search_generation_;
  visited_.resize(drafts_.size(), 0);
  std::vector<size_t> pending = {static_cast<size_t>(&draft - drafts_.data())};
  while (!pending.empty()) {
    size_t next = pending.back();
    pending.pop_back();
    for (const StepDraft::Need& need : drafts_[next].needs) {
      if (need.step == target) return true;
      if (visited_[need.step] == search_generation_) continue;
      visited_[need.step] = search_generation_;
      pending.push_back(need.step);
    }
  }
  return false;
}

std::optional<std::string> Loader::CheckName(std::string_view name, Context context,
                                             StepDraft* step) {
  std::vector<std::string> parts;
  for (size_t begin = 0; begin <= name.size();) {
    size_t end = std::min(name.find('.', begin), name.size());
    parts.emplace_back(name.substr(begin, end - begin));
    begin = end + 1;
  }
  const std::string& root = parts[0];
  std::string_view place = context == Context::kVars ? "a var's value" : "the pipeline's env";

  if (root == "build") {
    const std::vector<std::string>& fields = BuildFieldNames();
    if (parts.size() == 2 && Contains(fields, parts[1])) return std::nullopt;
    if (parts.size() == 2) {
      return fmt::format("unknown name '{}'{}", name, DidYouMeanHint(parts[1], fields, "build."));
    }
    return fmt::format("invalid name '{}': use build.FIELD, FIELD one of {}", name,
                       fmt::join(fields, ", "));
  }
  if (root == "vars") {
    if (context != Context::kStep) {
      return fmt::format("'{}' cannot be used in {}: it may use build.* and env.* only", name,
                         place);
    }
    if (parts.size() != 2) return fmt::format("invalid name '{}': use vars.NAME", name);
    if (Contains(var_names_, parts[1])) return std::nullopt;
    return fmt::format("unknown var '{}'{}: declare it under `vars:` or pass --var {}=VALUE", name,
                       DidYouMeanHint(parts[1], var_names_, "vars."), parts[1]);
  }
  if (root == "env") {
    if (parts.size() != 2) return fmt::format("invalid name '{}': use env.NAME", name);
    bool in_environment = options_.environment.contains(parts[1]);
    if (context == Context::kPipelineEnv) {
      if (in_environment) return std::nullopt;
      return fmt::format(
          "unknown environment variable '{}': the pipeline's env may only use "
          "variables of the runner's environment",
          name);
    }
    if (in_environment || Contains(pipeline_env_names_, parts[1])) return std::nullopt;
    return fmt::format(
        "unknown environment variable '{}'{}: set it in the pipeline's `env:` or in the runner's "
        "environment",
        name, DidYouMeanHint(parts[1], pipeline_env_names_, "env."));
  }
  if (root == "steps") {
    if (context != Context::kStep) {
      return fmt::format("'{}' cannot be used in {}: no step has run when it is set", name, place);
    }
    bool shape =
        (parts.size() == 3 && parts[2] == "status") || (parts.size() == 4 && parts[2] == "outputs");
    if (!shape) {
      return fmt::format("invalid name '{}': use steps.ID.outputs.NAME or steps.ID.status", name);
    }
    const std::string& id = parts[1];
    auto target = std::ranges::find(step_ids_, id);
    if (target == step_ids_.end()) {
      return fmt::format("unknown step '{}' in '{}'{}", id, name, DidYouMeanHint(id, step_ids_));
    }
    if (step->has_id && id == step->step.id) {
      return fmt::format("{} uses its own steps.{}: a step cannot read its own result",
                         step->Label(), id);
    }
    if (Needs(*step, first_by_id_.at(id))) return std::nullopt;
    return fmt::format("{} uses steps.{} but does not need '{}' (add it to needs)", step->Label(),
                       id, id);
  }
  return fmt::format("unknown name '{}': a name starts with build., vars., env. or steps.{}", name,
                     DidYouMeanHint(root, kNameRoots));
}

}  // namespace

std::optional<Pipeline> ParsePipeline(const std::string& path, const std::string& source,
                                      const LoadOptions& options, Diagnostics& diags) {
  const size_t errors_before = diags.ErrorCount();

  if (source.size() > kMaxPipelineBytes) {
    diags.Error({}, fmt::format("the pipeline file is {} bytes; the limit is {} bytes (1 MiB)",
                                source.size(), kMaxPipelineBytes));
    return std::nullopt;
  }
  auto documents = LoadYaml(source, "a pipeline file");
  if (!documents) {
    diags.Error(documents.error().where, documents.error().message);
    return std::nullopt;
  }
  if (documents->empty() || (*documents)[0].IsNull()) {
    diags.Error({}, "the pipeline file is empty; it needs at least `version: 1` and `steps:`");
    return std::nullopt;
  }
  if (documents->size() > 1) {
    diags.Error((*documents)[1].where,
                "a second YAML document starts here: a pipeline file holds one document");
  }
  Pipeline pipeline;
  pipeline.path = path;
  Loader(source, options, diags).Load((*documents)[0], pipeline);
  if (diags.ErrorCount() != errors_before) return std::nullopt;
  return pipeline;
}

}  // namespace runner
