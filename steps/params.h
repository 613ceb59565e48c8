// The `params` step kind (SPEC section 6): writes a CloudFormation parameters file from a base
// file and the step's values, optionally checked against the stack's template.
//
// Contract decisions beyond the SPEC:
// - A `base` file's format is detected from its shape, whatever the step's `format`: a JSON
//   array is `cloudformation`; an object whose `Parameters` is an object (and whose other keys
//   are among `Tags`, `StackPolicy`) is `codepipeline`; any other object is `plain`. Every
//   parameter value must be a JSON string (CloudFormation takes only strings), and
//   `UsePreviousValue` entries are refused (the file is for create-stack).
// - Tags (from `tags:` or from a codepipeline base) and a base's `StackPolicy` are only
//   representable in the `codepipeline` format; with another format they are an error, never
//   silently dropped.
// - No parameter and no tag may have an empty value, or a key outside [A-Za-z0-9] for the
//   `cloudformation` and `codepipeline` formats (CloudFormation's rule for logical names).
// - `dest`, `base` and `template` are relative to the step's directory and must stay inside the
//   workspace after symlinks are resolved; an absolute `dest` is a validation error.
// - A JSON `base` or template nested deeper than 512 levels is refused before it is parsed.
// - With `template`, every key must be declared under `Parameters:` (did-you-mean among the
//   declared names), and each value must satisfy the parameter's constraints (see
//   CheckAgainstTemplate). A declared parameter without `Default` that gets no value is an error
//   for `cloudformation` (create-stack would fail) and a logged warning for `codepipeline` and
//   `plain`, whose consumers can supply it elsewhere (the action's ParameterOverrides,
//   `cloudformation deploy` keeping a previous value).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "runner/result.h"
#include "runner/step_kind.h"

namespace runner {

enum class ParamsFormat { kCloudFormation, kCodePipeline, kPlain };

// "cloudformation", "codepipeline", "plain"; nullopt for anything else.
std::optional<ParamsFormat> ParseParamsFormat(std::string_view name);
std::string_view ParamsFormatName(ParamsFormat format);

// Key/value pairs in the order they were first set.
class OrderedParams {
 public:
  // Sets `key`, keeping its original position when it is already present.
  void Set(const std::string& key, const std::string& value);
  const std::string* Find(std::string_view key) const;
  const std::vector<std::pair<std::string, std::string>>& entries() const { return entries_; }
  bool empty() const { return entries_.empty(); }

 private:
  std::vector<std::pair<std::string, std::string>> entries_;
};

// The configuration of a params step.
struct ParamsConfig {
  std::string dest;
  ParamsFormat format = ParamsFormat::kCloudFormation;
  std::optional<std::string> base;
  std::optional<std::string> template_path;
  OrderedParams values;
  OrderedParams tags;
};

class ParamsKind : public TypedStepKind<ParamsConfig> {
 public:
  std::string_view name() const override { return "params"; }
  // Its `template`.
  std::vector<std::string> Templates(const ConfigNode& config) const override;

 protected:
  ParamsConfig Parse(const ConfigNode& config, Diagnostics& diags) const override;
  Status Run(const ParamsConfig& config, StepIo& io) const override;
};

// The content of a parameters file in any of the three formats.
struct ParamsFile {
  ParamsFormat format = ParamsFormat::kCloudFormation;
  OrderedParams parameters;
  OrderedParams tags;                                  // codepipeline only
  std::optional<nlohmann::ordered_json> stack_policy;  // codepipeline only, kept as is
};

// Parses a parameters file, detecting its format (see above). `name` is the file name used in
// messages ("cfn/params.base.json:3:5: ..." for JSON syntax errors).
Result<ParamsFile> ParseParamsFile(std::string_view text, std::string_view name);

// The file in `format`: 2-space indented JSON, keys in order, a trailing newline. Fails when
// the content holds what `format` cannot (tags or a stack policy outside codepipeline) or a
// string that is not UTF-8.
Result<std::string> RenderParamsFile(const ParamsFile& file, ParamsFormat format);

// Empty values and bad keys (see above), every problem on its own line.
Status CheckParamsValues(const ParamsFile& file, ParamsFormat format);

// A parameter declared by a CloudFormation template; the constraints as written.
struct TemplateParameter {
  std::string name;
  std::string type = "String";
  bool has_default = false;
  bool no_echo = false;                     // NoEcho: the value is a secret, never shown
  std::vector<std::string> allowed_values;  // empty: any
  std::optional<std::string> allowed_pattern;
  std::optional<std::string> min_length, max_length;  // String types
  std::optional<std::string> min_value, max_value;    // Number types
};

// The `Parameters:` section of a JSON or YAML template (YAML with the short-form intrinsic
// tags such as !Ref, !Sub, !GetAtt). A template is JSON when its first non-blank character is
// `{`. Syntax errors name `name` with line and column.
Result<std::vector<TemplateParameter>> ParseTemplateParameters(std::string_view text,
                                                               std::string_view name);

// Checks `params` against the template's declared parameters (see above). Errors are joined
// one per line; warnings (missing values that are not errors for `format`) go to `warnings`.
// Constraints as CloudFormation applies them: for `CommaDelimitedList` and `List<...>` types
// AllowedValues and AllowedPattern (and for `List<Number>` the number check and
// MinValue/MaxValue) hold for each comma-separated item; MinLength/MaxLength (in characters)
// for the whole value of the other types; a `Number` must be an integer or a float within
// MinValue/MaxValue. AllowedPattern is Java regex matched against the whole value: it runs
// with RE2 (linear time, no recursion), and a pattern RE2 cannot compile (backreferences,
// lookaround) is an error naming the parameter. A `NoEcho` parameter's value never appears in
// a message.
Status CheckAgainstTemplate(const OrderedParams& params,
                            const std::vector<TemplateParameter>& declared,
                            std::string_view template_name, ParamsFormat format,
                            std::vector<std::string>& warnings);

}  // namespace runner
