#include "runner/deploy/cfn_lint.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <charconv>
#include <compare>
#include <map>
#include <optional>
#include <vector>

#include "runner/fs.h"
#include "runner/yaml_text.h"

namespace runner::deploy {

namespace {

constexpr std::string_view kAutoScalingGroup = "AWS::AutoScaling::AutoScalingGroup";

// A key of a mapping and its value.
struct Field {
  const YamlNode* key;
  const YamlNode* value;
};

// The field `name` of `map` (nullptr or not a mapping: none).
std::optional<Field> FindField(const YamlNode* map, std::string_view name) {
  if (!map || !map->IsMap()) return std::nullopt;
  for (const auto& [key, value] : map->fields) {
    if (key.IsScalar() && key.value == name) return Field{&key, &value};
  }
  return std::nullopt;
}

// A property as CloudFormation reads it: a null value (`DesiredCapacity:` and nothing) sets
// nothing.
std::optional<Field> FindProperty(const YamlNode* map, std::string_view name) {
  std::optional<Field> field = FindField(map, name);
  if (field && field->value->IsNull()) return std::nullopt;
  return field;
}

// A call of an intrinsic function: a short-form tag (`!Ref`, `!If`; libyaml resolves the core
// tags such as `!!str` to `tag:yaml.org,2002:str`) or a mapping of one `Ref` or `Fn::` key.
bool IsIntrinsic(const YamlNode& node) {
  if (node.tag.starts_with('!')) return true;
  if (!node.IsMap() || node.fields.size() != 1) return false;
  const YamlNode& key = node.fields.front().first;
  return key.IsScalar() && (key.value == "Ref" || key.value.starts_with("Fn::"));
}

// The name a Ref refers to (`!Ref P`, {"Ref": "P"}), or nullptr when `node` is not a Ref.
const std::string* RefName(const YamlNode& node) {
  if (node.tag == "!Ref") return node.IsScalar() ? &node.value : nullptr;
  if (node.tag.empty() && node.IsMap() && node.fields.size() == 1) {
    const auto& [key, value] = node.fields.front();
    if (key.IsScalar() && key.value == "Ref" && value.IsScalar() && value.tag.empty()) {
      return &value.value;
    }
  }
  return nullptr;
}

// A literal integer, written as a number or a string.
std::optional<long long> LiteralInteger(const YamlNode& node) {
  if (!node.IsScalar() || IsIntrinsic(node)) return std::nullopt;
  const std::string& text = node.value;
  long long number = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return number;
}

// What the lint knows of a value.
struct Operand {
  std::optional<long long> number;  // the literal, or the Default of `parameter`
  std::string parameter;            // the template parameter a Ref names
};

// A known value as messages show it: "2", "2, the Default of parameter 'P'", "parameter 'P'".
std::string Describe(const Operand& operand) {
  if (!operand.number) return fmt::format("parameter '{}'", operand.parameter);
  if (operand.parameter.empty()) return std::to_string(*operand.number);
  return fmt::format("{}, the Default of parameter '{}'", *operand.number, operand.parameter);
}

// How `a` compares with `b`, when the template tells: two Refs to one parameter are equal
// whatever its value.
std::optional<std::strong_ordering> Compare(const Operand& a, const Operand& b) {
  if (!a.parameter.empty() && a.parameter == b.parameter) return std::strong_ordering::equal;
  if (a.number && b.number) return *a.number <=> *b.number;
  return std::nullopt;
}

std::string_view KindOf(const YamlNode& node) {
  if (node.IsNull()) return "nothing";
  if (node.IsList()) return "a list";
  if (node.IsMap()) return "a mapping";
  return "a scalar";
}

class TemplateLint {
 public:
  TemplateLint(const YamlNode& root, Diagnostics& diags) : diags_(diags) {
    std::optional<Field> parameters = FindField(&root, "Parameters");
    if (!parameters || !parameters->value->IsMap()) return;
    for (const auto& [name, body] : parameters->value->fields) {
      if (!name.IsScalar()) continue;
      std::optional<Field> value = FindProperty(&body, "Default");
      defaults_.emplace(name.value, value ? value->value : nullptr);
    }
  }

  // A resource `name: body` of the Resources mapping.
  void Resource(const YamlNode& name, const YamlNode& body) {
    std::optional<Field> type = FindField(&body, "Type");
    if (!name.IsScalar() || !type || type->value->value != kAutoScalingGroup) return;
    const YamlNode* properties = nullptr;
    if (std::optional<Field> field = FindField(&body, "Properties")) {
      const YamlNode& value = *field->value;
      if (IsIntrinsic(value) || (!value.IsMap() && !value.IsNull())) return;
      properties = field->value;
    }
    std::optional<Field> update_policy = FindProperty(&body, "UpdatePolicy");
    std::optional<Field> rolling =
        FindProperty(update_policy ? update_policy->value : nullptr, "AutoScalingRollingUpdate");
    if (rolling && rolling->value->IsMap() && !IsIntrinsic(*rolling->value)) {
      RollingUpdate(name.value, properties, *rolling);
    }
    TerminationPolicies(name, properties);
  }

 private:
  Operand Evaluate(const std::optional<Field>& field) const {
    if (!field) return {};
    if (const std::string* name = RefName(*field->value)) {
      auto found = defaults_.find(*name);
      if (found == defaults_.end()) return {};
      Operand operand;
      operand.parameter = *name;
      if (found->second) operand.number = LiteralInteger(*found->second);
      return operand;
    }
    Operand operand;
    operand.number = LiteralInteger(*field->value);
    return operand;
  }

  void RollingUpdate(const std::string& group, const YamlNode* properties, const Field& rolling) {
    if (std::optional<Field> desired = FindProperty(properties, "DesiredCapacity")) {
      diags_.Error(desired->key->where,
                   fmt::format("resource '{}': DesiredCapacity with an AutoScalingRollingUpdate "
                               "policy resets the group's live capacity on every deploy; remove it "
                               "and let the group keep its size",
                               group));
    }
    Operand min_size = Evaluate(FindProperty(properties, "MinSize"));
    Operand max_size = Evaluate(FindProperty(properties, "MaxSize"));

    std::optional<Field> in_service = FindProperty(rolling.value, "MinInstancesInService");
    if (!in_service) {
      diags_.Error(rolling.key->where,
                   fmt::format("resource '{}': AutoScalingRollingUpdate has no "
                               "MinInstancesInService, so a deploy may take every instance out of "
                               "service at once (it defaults to 0); add MinInstancesInService: "
                               "!Ref a Number parameter, which the deployer sets from the group's "
                               "live capacity",
                               group));
    } else {
      Operand minimum = Evaluate(in_service);
      SourceLocation where = in_service->key->where;
      if (minimum.parameter.empty()) {
        diags_.Warning(where, fmt::format("resource '{}': MinInstancesInService is not a Ref to a "
                                          "template parameter, so the deployer cannot set it from "
                                          "the group's live capacity; declare a Number parameter "
                                          "and write MinInstancesInService: !Ref it",
                                          group));
      }
      if (minimum.number == 0) {
        diags_.Error(
            where,
            fmt::format("resource '{}': MinInstancesInService ({}) lets a deploy take every "
                        "instance out of service at once; {}",
                        group, Describe(minimum),
                        minimum.parameter.empty()
                            ? "make it a Ref to a Number parameter, which the deployer sets from "
                              "the group's live capacity"
                            : fmt::format("give parameter '{}' a Default of at least 1 (the "
                                          "deployer sets it from the group's live capacity)",
                                          minimum.parameter)));
      }
      if (std::optional<std::strong_ordering> order = Compare(minimum, max_size);
          order && std::is_gteq(*order)) {
        diags_.Error(where, fmt::format("resource '{}': MinInstancesInService ({}) is at or above "
                                        "MaxSize ({}): CloudFormation requires it below MaxSize "
                                        "and fails the update; lower it or raise MaxSize",
                                        group, Describe(minimum), Describe(max_size)));
      }
      if (std::optional<std::strong_ordering> order = Compare(minimum, min_size);
          order && std::is_eq(*order)) {
        diags_.Warning(
            where, fmt::format("resource '{}': MinInstancesInService ({}) equals MinSize ({}), so "
                               "a deploy of a group scaled out above MinSize takes instances out "
                               "of service down to MinSize; set it from the group's live capacity "
                               "(a parameter of its own, which the deployer sets)",
                               group, Describe(minimum), Describe(min_size)));
      }
    }

    std::optional<Field> batch = FindProperty(rolling.value, "MaxBatchSize");
    if (!batch) {
      diags_.Warning(rolling.key->where,
                     fmt::format("resource '{}': AutoScalingRollingUpdate has no MaxBatchSize, so "
                                 "CloudFormation replaces one instance at a time; set MaxBatchSize "
                                 "to MaxSize (the same value or parameter) so that a deploy brings "
                                 "up the new instances in as few batches as MaxSize allows",
                                 group));
      return;
    }
    Operand size = Evaluate(batch);
    if (std::optional<std::strong_ordering> order = Compare(size, max_size);
        order && std::is_neq(*order)) {
      diags_.Warning(batch->key->where,
                     fmt::format("resource '{}': MaxBatchSize ({}) differs from MaxSize ({}), so a "
                                 "deploy replaces the instances in more batches than MaxSize "
                                 "allows; set it to MaxSize (the same value or parameter)",
                                 group, Describe(size), Describe(max_size)));
    }
  }

  void TerminationPolicies(const YamlNode& name, const YamlNode* properties) {
    std::string_view oldest = FindProperty(properties, "LaunchConfigurationName")
                                  ? "OldestLaunchConfiguration"
                                  : "OldestLaunchTemplate";
    std::string_view risk =
        "so a scale-in after a deploy may terminate new instances before the old ones";
    std::optional<Field> policies = FindProperty(properties, "TerminationPolicies");
    if (!policies) {
      diags_.Warning(name.where, fmt::format("resource '{}': no TerminationPolicies, {}; add "
                                             "TerminationPolicies: [{}, OldestInstance]",
                                             name.value, risk, oldest));
      return;
    }
    const YamlNode& list = *policies->value;
    if (!list.IsList()) return;  // an intrinsic function, or not a list: cfn-lint's business
    std::vector<std::string_view> first;  // the first two policies
    for (const YamlNode& item : list.items) {
      if (first.size() == 2) break;
      if (!item.IsScalar() || IsIntrinsic(item)) return;
      first.push_back(item.value);
    }
    if (first.size() == 2 &&
        (first[0] == "OldestLaunchConfiguration" || first[0] == "OldestLaunchTemplate") &&
        first[1] == "OldestInstance") {
      return;
    }
    std::string written =
        first.empty() ? "is empty" : fmt::format("starts with {}", fmt::join(first, ", "));
    diags_.Warning(policies->key->where,
                   fmt::format("resource '{}': TerminationPolicies {}, {}; start it with {}, "
                               "OldestInstance",
                               name.value, written, risk, oldest));
  }

  Diagnostics& diags_;
  // Each template parameter's Default, nullptr when it has none.
  std::map<std::string, const YamlNode*, std::less<>> defaults_;
};

}  // namespace

void LintTemplate(std::string_view source, Diagnostics& diags) {
  auto documents = LoadYaml(source, "a CloudFormation template");
  if (!documents) {
    diags.Error(documents.error().where, documents.error().message);
    return;
  }
  if (documents->empty() || documents->front().IsNull()) {
    diags.Error({1, 1},
                "the template is empty: a CloudFormation template is a mapping with "
                "'Resources'");
    return;
  }
  const YamlNode& root = documents->front();
  if (!root.IsMap()) {
    diags.Error(root.where,
                fmt::format("a CloudFormation template is a mapping with 'Resources', not {}",
                            KindOf(root)));
    return;
  }
  std::optional<Field> resources = FindField(&root, "Resources");
  if (!resources) {
    diags.Error(root.where,
                "the template has no 'Resources': a CloudFormation template declares "
                "its resources under 'Resources'");
    return;
  }
  const YamlNode& section = *resources->value;
  if (!section.IsMap()) {
    diags.Error(section.IsNull() ? resources->key->where : section.where,
                fmt::format("'Resources' must be a mapping of resource names to resources, not {}",
                            KindOf(section)));
    return;
  }
  TemplateLint lint(root, diags);
  for (const auto& [name, body] : section.fields) lint.Resource(name, body);
}

Result<std::vector<RollingGroup>> RollingUpdateGroups(std::string_view source) {
  auto documents = LoadYaml(source, "a CloudFormation template");
  if (!documents) return Fail(documents.error().message);
  std::vector<RollingGroup> groups;
  if (documents->empty()) return groups;
  std::optional<Field> resources = FindField(&documents->front(), "Resources");
  if (!resources || !resources->value->IsMap()) return groups;
  for (const auto& [name, body] : resources->value->fields) {
    std::optional<Field> type = FindField(&body, "Type");
    if (!name.IsScalar() || !type || type->value->value != kAutoScalingGroup) continue;
    std::optional<Field> update_policy = FindProperty(&body, "UpdatePolicy");
    std::optional<Field> rolling =
        FindProperty(update_policy ? update_policy->value : nullptr, "AutoScalingRollingUpdate");
    std::optional<Field> min_in_service =
        FindProperty(rolling ? rolling->value : nullptr, "MinInstancesInService");
    if (!min_in_service) continue;
    if (const std::string* parameter = RefName(*min_in_service->value)) {
      groups.push_back({name.value, *parameter});
    }
  }
  return groups;
}

Result<LintResult> LintTemplateFile(const std::string& path) {
  auto text = ReadFileAtMost(path, kMaxTemplateBytes + 1);
  if (!text) return Fail(text.error());
  if (text->size() > kMaxTemplateBytes) {
    return Fail(
        fmt::format("{}: larger than {} MiB, which no CloudFormation template is (the "
                    "limit is 1 MB)",
                    path, kMaxTemplateBytes >> 20));
  }
  Diagnostics diags(path, *text);
  LintTemplate(*text, diags);
  return LintResult{diags.Format(), diags.HasErrors()};
}

}  // namespace runner::deploy
