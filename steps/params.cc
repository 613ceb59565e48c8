#include "steps/params.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <re2/re2.h>

#include <algorithm>
#include <chrono>
#include <exception>

#include "runner/atomic_file.h"
#include "runner/config_node.h"
#include "runner/expression.h"
#include "runner/fs.h"
#include "runner/sha256.h"
#include "runner/utf8.h"
#include "runner/workspace_path.h"
#include "runner/yaml_text.h"

namespace runner {

namespace {

const std::vector<std::string> kConfigKeys = {"dest",   "format", "base",
                                              "values", "tags",   "template"};
const std::vector<std::string> kFormatNames = {"cloudformation", "codepipeline", "plain"};
const std::vector<std::string> kCodePipelineKeys = {"Parameters", "Tags", "StackPolicy"};
const std::vector<std::string> kCloudFormationEntryKeys = {"ParameterKey", "ParameterValue",
                                                           "UsePreviousValue"};

using Json = nlohmann::ordered_json;

std::string JoinLines(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& line : lines) {
    if (!out.empty()) out += '\n';
    out += line;
  }
  return out;
}

// CloudFormation's rule for logical names, parameters included: ASCII letters and digits.
bool IsLogicalName(std::string_view name) {
  return !name.empty() && name.size() <= 255 && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  });
}

std::string_view JsonTypeName(const Json& value) {
  if (value.is_object()) return "an object";
  if (value.is_array()) return "an array";
  if (value.is_string()) return "a string";
  if (value.is_boolean()) return "a boolean";
  if (value.is_number()) return "a number";
  return "null";
}

// nlohmann reports the 1-based offset of the last byte it read; turn it into line and column
// so that JSON errors point where YAML and pipeline errors do.
SourceLocation LocationOfByte(std::string_view text, std::size_t byte) {
  std::size_t end = std::min(byte == 0 ? 0 : byte - 1, text.size());
  SourceLocation where{1, 1};
  std::size_t line_start = 0;
  for (std::size_t i = 0; i < end; ++i) {
    if (text[i] == '\n') {
      ++where.line;
      line_start = i + 1;
    }
  }
  where.column = static_cast<int>(end - line_start) + 1;
  return where;
}

// nlohmann's parser recurses once per nesting level: a file nested 100,000 deep would
// overflow the stack. Real parameter files and templates nest a handful of levels.
constexpr std::size_t kMaxJsonNesting = 512;

// The offset of the first `[` or `{` (outside strings) that opens a level deeper than
// kMaxJsonNesting; nullopt when there is none.
std::optional<std::size_t> TooDeepAt(std::string_view text) {
  std::size_t depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonNesting) return i;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return std::nullopt;
}

Result<Json> ParseJson(std::string_view text, std::string_view name) {
  if (std::optional<std::size_t> at = TooDeepAt(text)) {
    SourceLocation where = LocationOfByte(text, *at + 1);
    return Fail(
        fmt::format("{}:{}:{}: invalid JSON: nested deeper than {} levels of arrays and "
                    "objects; a parameters file or template never needs that many",
                    name, where.line, where.column, kMaxJsonNesting));
  }
  try {
    return Json::parse(text);
  } catch (const Json::parse_error& e) {
    // what() is "[json.exception.parse_error.101] parse error at line 3, column 8: DETAIL".
    std::string detail = e.what();
    if (std::size_t pos = detail.find("column "); pos != std::string::npos) {
      if (std::size_t colon = detail.find(": ", pos); colon != std::string::npos) {
        detail = detail.substr(colon + 2);
      }
    }
    SourceLocation where = LocationOfByte(text, e.byte);
    return Fail(fmt::format("{}:{}:{}: invalid JSON: {}", name, where.line, where.column, detail));
  } catch (const std::exception& e) {
    return Fail(fmt::format("{}: invalid JSON: {}", name, e.what()));
  }
}

// An object of strings (plain parameters, codepipeline Parameters or Tags) into `out`.
Status ReadStringObject(const Json& object, std::string_view name, std::string_view what,
                        OrderedParams& out) {
  std::vector<std::string> errors;
  for (const auto& [key, value] : object.items()) {
    if (!value.is_string()) {
      std::string hint = value.is_number() || value.is_boolean()
                             ? fmt::format(" (write \"{}\")", value.dump())
                             : std::string();
      errors.push_back(fmt::format("{}: {} '{}' must be a string, got {}{}", name, what, key,
                                   JsonTypeName(value), hint));
      continue;
    }
    out.Set(key, value.get<std::string>());
  }
  if (!errors.empty()) return Fail(JoinLines(errors));
  return {};
}

Status ReadCloudFormationArray(const Json& array, std::string_view name, OrderedParams& out) {
  std::vector<std::string> errors;
  std::size_t index = 0;
  for (const Json& entry : array) {
    ++index;
    std::string where = fmt::format("{}: entry {}", name, index);
    if (!entry.is_object()) {
      errors.push_back(
          fmt::format("{} must be an object {{\"ParameterKey\": ..., "
                      "\"ParameterValue\": ...}}, got {}",
                      where, JsonTypeName(entry)));
      continue;
    }
    for (const auto& [key, value] : entry.items()) {
      if (std::find(kCloudFormationEntryKeys.begin(), kCloudFormationEntryKeys.end(), key) ==
          kCloudFormationEntryKeys.end()) {
        errors.push_back(fmt::format("{}: unknown key '{}'{}", where, key,
                                     DidYouMeanHint(key, kCloudFormationEntryKeys)));
      }
    }
    auto key = entry.find("ParameterKey");
    if (key == entry.end() || !key->is_string()) {
      errors.push_back(fmt::format("{}: 'ParameterKey' must be a string", where));
      continue;
    }
    std::string key_text = key->get<std::string>();
    // The file is for create-stack, where there is no previous value to keep.
    if (entry.contains("UsePreviousValue")) {
      errors.push_back(
          fmt::format("{} ('{}'): UsePreviousValue is not supported; give "
                      "ParameterValue",
                      where, key_text));
      continue;
    }
    auto value = entry.find("ParameterValue");
    if (value == entry.end() || !value->is_string()) {
      errors.push_back(
          fmt::format("{} ('{}'): 'ParameterValue' must be a string{}", where, key_text,
                      value == entry.end() ? "" : ", got " + std::string(JsonTypeName(*value))));
      continue;
    }
    if (out.Find(key_text)) {
      errors.push_back(fmt::format("{}: parameter '{}' appears more than once", where, key_text));
      continue;
    }
    out.Set(key_text, value->get<std::string>());
  }
  if (!errors.empty()) return Fail(JoinLines(errors));
  return {};
}

// A JSON scalar as the text CloudFormation compares: a string as is, a number as written.
std::string JsonScalarText(const Json& value) {
  return value.is_string() ? value.get<std::string>() : value.dump();
}

// One scalar field of a parameter's declaration, from a JSON or a YAML template.
void SetParameterField(TemplateParameter& parameter, std::string_view field, std::string text) {
  if (field == "Type") {
    parameter.type = std::move(text);
  } else if (field == "NoEcho") {
    parameter.no_echo = text == "true" || text == "True" || text == "TRUE";
  } else if (field == "AllowedPattern") {
    parameter.allowed_pattern = std::move(text);
  } else if (field == "MinLength") {
    parameter.min_length = std::move(text);
  } else if (field == "MaxLength") {
    parameter.max_length = std::move(text);
  } else if (field == "MinValue") {
    parameter.min_value = std::move(text);
  } else if (field == "MaxValue") {
    parameter.max_value = std::move(text);
  }
}

Result<std::vector<TemplateParameter>> ParametersFromJson(const Json& root, std::string_view name) {
  if (!root.is_object()) {
    return Fail(fmt::format("{}: a template must be an object, got {}", name, JsonTypeName(root)));
  }
  std::vector<TemplateParameter> out;
  auto section = root.find("Parameters");
  if (section == root.end()) return out;
  if (!section->is_object()) {
    return Fail(
        fmt::format("{}: 'Parameters' must be an object, got {}", name, JsonTypeName(*section)));
  }
  for (const auto& [key, body] : section->items()) {
    TemplateParameter parameter;
    parameter.name = key;
    if (body.is_object()) {
      for (const auto& [field, value] : body.items()) {
        if (field == "Default") {
          parameter.has_default = true;
        } else if (field == "AllowedValues" && value.is_array()) {
          for (const Json& item : value) parameter.allowed_values.push_back(JsonScalarText(item));
        } else if (value.is_primitive()) {
          SetParameterField(parameter, field, JsonScalarText(value));
        }
      }
    }
    out.push_back(std::move(parameter));
  }
  return out;
}

// "NAME:LINE:COL: message", or "NAME: message" where the place is unknown.
std::string AtPlace(std::string_view name, SourceLocation where, std::string_view message) {
  if (where.line == 0) return fmt::format("{}: {}", name, message);
  return fmt::format("{}:{}:{}: {}", name, where.line, where.column, message);
}

// A short-form tag (`!Ref`, `!GetAtt`, ...) is kept as the node's tag over the node parsed as
// usual, so the intrinsic functions elsewhere in a template need no special handling; only
// `Parameters` is read, and its fields are plain scalars and lists.
Result<std::vector<TemplateParameter>> ParametersFromYaml(std::string_view text,
                                                          std::string_view name) {
  std::vector<TemplateParameter> out;
  auto documents = LoadYaml(text, name);
  if (!documents) return Fail(AtPlace(name, documents.error().where, documents.error().message));
  if (documents->empty() || !documents->front().IsMap()) {
    return Fail(fmt::format("{}: a template must be a mapping with 'Resources'", name));
  }
  const YamlNode* section = documents->front().Find("Parameters");
  if (!section || section->IsNull()) return out;
  if (!section->IsMap()) {
    return Fail(AtPlace(name, section->where, "'Parameters' must be a mapping"));
  }
  for (const auto& [key, body] : section->fields) {
    TemplateParameter parameter;
    parameter.name = key.value;
    for (const auto& [field, value] : body.fields) {
      if (field.value == "Default") {
        parameter.has_default = true;
      } else if (field.value == "AllowedValues" && value.IsList()) {
        for (const YamlNode& item : value.items) {
          if (item.IsScalar()) parameter.allowed_values.push_back(item.value);
        }
      } else if (value.IsScalar()) {
        SetParameterField(parameter, field.value, value.value);
      }
    }
    out.push_back(std::move(parameter));
  }
  return out;
}

// A JSON file holds UTF-8 text only; a value that is not (Latin-1 from a tool's output, say)
// is refused by name. The value is never quoted: it may be a NoEcho parameter's.
std::optional<std::string> Utf8Problem(std::string_view key, std::string_view value,
                                       std::string_view noun) {
  if (!IsValidUtf8(key)) {
    return fmt::format(
        "params: a {} name is not valid UTF-8: a parameters file is JSON, which "
        "holds UTF-8 text only",
        noun);
  }
  if (IsValidUtf8(value)) return std::nullopt;
  return fmt::format(
      "params: {} '{}' is not valid UTF-8 text (value not shown): a parameters "
      "file is JSON, which holds UTF-8 only; convert the value where it is made "
      "(for example with iconv -f latin1 -t utf-8)",
      noun, key);
}

// `path` (as written, relative to the step's dir) resolved, symlinks included, and confined
// to the workspace.
Result<std::string> Resolve(const StepIo& io, const std::string& path, std::string_view what) {
  auto resolved = ResolveInWorkspace(path, io.dir(), io.workspace());
  if (!resolved) {
    return Fail(fmt::format("params.{}: {}: params reads and writes only files in the workspace",
                            what, resolved.error()));
  }
  return resolved;
}

}  // namespace

Status ParamsKind::Run(const ParamsConfig& config, StepIo& io) const {
  ParamsFormat format = config.format;
  ParamsFile result;
  result.format = format;
  if (config.base) {
    const std::string& base_name = *config.base;
    auto path = Resolve(io, base_name, "base");
    if (!path) return Fail(path.error());
    auto text = ReadFile(*path);
    if (!text)
      return Fail(fmt::format("params.base: cannot read '{}': {}", base_name, text.error()));
    auto parsed = ParseParamsFile(*text, base_name);
    if (!parsed) return Fail(parsed.error());
    if (format != ParamsFormat::kCodePipeline) {
      if (!parsed->tags.empty()) {
        return Fail(
            fmt::format("params.base: '{}' has Tags, which only format codepipeline can "
                        "hold (this step writes {})",
                        base_name, ParamsFormatName(format)));
      }
      if (parsed->stack_policy) {
        return Fail(
            fmt::format("params.base: '{}' has a StackPolicy, which only format "
                        "codepipeline can hold (this step writes {})",
                        base_name, ParamsFormatName(format)));
      }
    }
    result.parameters = std::move(parsed->parameters);
    result.tags = std::move(parsed->tags);
    result.stack_policy = std::move(parsed->stack_policy);
  }
  for (const auto& [key, value] : config.values.entries()) result.parameters.Set(key, value);
  for (const auto& [key, value] : config.tags.entries()) result.tags.Set(key, value);

  if (Status checked = CheckParamsValues(result, format); !checked) return checked;

  if (config.template_path) {
    const std::string& name = *config.template_path;
    auto path = Resolve(io, name, "template");
    if (!path) return Fail(path.error());
    auto text = ReadFile(*path);
    if (!text)
      return Fail(fmt::format("params.template: cannot read '{}': {}", name, text.error()));
    auto declared = ParseTemplateParameters(*text, name);
    if (!declared) return Fail(declared.error());
    std::vector<std::string> warnings;
    Status checked = CheckAgainstTemplate(result.parameters, *declared, name, format, warnings);
    for (const std::string& warning : warnings) io.Log("warning: " + warning + "\n");
    if (!checked) return checked;
  }

  auto rendered = RenderParamsFile(result, format);
  if (!rendered) return Fail(rendered.error());
  if (io.cancelled()) return Fail("params: cancelled before writing");
  auto resolved = Resolve(io, config.dest, "dest");
  if (!resolved) return Fail(resolved.error());
  const std::string& path = *resolved;
  if (Status written = WriteFileAtomic(path, *rendered); !written) {
    return Fail(fmt::format("params: cannot write '{}': {}", config.dest, written.error()));
  }
  std::string sha256 = Sha256Hex(*rendered);
  io.SetOutput("path", config.dest);
  io.SetOutput("sha256", sha256);
  Artifact artifact;
  artifact.path = WorkspaceRelative(path, io.workspace());
  artifact.size = rendered->size();
  artifact.sha256 = sha256;
  io.AddArtifact(artifact);
  io.Log(fmt::format(
      "wrote {} ({}, {} parameters{})\n", config.dest, ParamsFormatName(format),
      result.parameters.entries().size(),
      result.tags.empty() ? "" : fmt::format(", {} tags", result.tags.entries().size())));
  return {};
}

namespace {

SourceLocation KeyLocation(const ConfigNode& map, std::string_view key) {
  for (std::size_t i = 0; i < map.fields.size(); ++i) {
    if (map.fields[i].first == key) {
      return i < map.key_locations.size() ? map.key_locations[i] : map.where;
    }
  }
  return map.where;
}

// A scalar that must not be empty; its text.
std::string NonEmptyScalar(const ConfigNode& node, std::string_view what, Diagnostics& diags) {
  if (!ExpectScalar(node, what, diags)) return {};
  if (node.scalar.text.empty()) diags.Error(node.where, fmt::format("'{}' is empty", what));
  return node.scalar.text;
}

// A `values` or `tags` map into `out`: scalars, not empty, keys CloudFormation accepts. `noun`
// names an entry of the file ("parameter", "tag").
void ReadStringMap(const ConfigNode& map, std::string_view what, std::string_view noun,
                   bool logical_names, OrderedParams& out, Diagnostics& diags) {
  if (!ExpectMap(map, what, diags)) return;
  for (std::size_t i = 0; i < map.fields.size(); ++i) {
    const auto& [key, value] = map.fields[i];
    SourceLocation key_where = i < map.key_locations.size() ? map.key_locations[i] : map.where;
    if (logical_names && !IsLogicalName(key)) {
      diags.Error(key_where, fmt::format("'{}' in {} is not a CloudFormation parameter name "
                                         "(letters and digits only)",
                                         key, what));
    }
    std::string name = fmt::format("{}.{}", what, key);
    if (!ExpectScalar(value, name, diags)) continue;
    // Empty as written, or an expression that produced nothing.
    if (value.scalar.text.empty()) {
      diags.Error(value.where.line > 0 ? value.where : key_where,
                  fmt::format("'{}' is empty, so {} '{}' is empty: CloudFormation would get an "
                              "empty value",
                              name, noun, key));
    }
    out.Set(key, value.scalar.text);
  }
}

}  // namespace

std::vector<std::string> ParamsKind::Templates(const ConfigNode& config) const {
  const ConfigNode* path = config.Find("template");
  if (path == nullptr || path->type != ConfigNode::Type::kScalar || !IsKnown(*path)) return {};
  return {path->scalar.text};
}

ParamsConfig ParamsKind::Parse(const ConfigNode& config, Diagnostics& diags) const {
  ParamsConfig out;
  if (!ExpectMap(config, "params", diags)) return out;
  CheckKeys(config, kConfigKeys, "params", diags);
  if (const ConfigNode* dest = Require(config, "dest", "params", diags)) {
    out.dest = NonEmptyScalar(*dest, "params.dest", diags);
    if (out.dest.starts_with('/')) {
      diags.Error(dest->where,
                  fmt::format("params.dest '{}' is absolute: write a path relative to the step's "
                              "directory, inside the workspace",
                              out.dest));
    }
  }
  // False when the format is not known before the run (an expression) or is wrong.
  bool format_known = true;
  if (const ConfigNode* node = config.Find("format")) {
    format_known = false;
    if (ExpectScalar(*node, "params.format", diags) && IsKnown(*node)) {
      if (auto parsed = ParseParamsFormat(node->scalar.text)) {
        out.format = *parsed;
        format_known = true;
      } else {
        diags.Error(
            node->where,
            fmt::format("unknown params.format '{}'{}: use one of cloudformation, "
                        "codepipeline, plain",
                        node->scalar.text, DidYouMeanHint(node->scalar.text, kFormatNames)));
      }
    }
  }
  if (const ConfigNode* base = config.Find("base")) {
    out.base = NonEmptyScalar(*base, "params.base", diags);
  }
  if (const ConfigNode* template_node = config.Find("template")) {
    out.template_path = NonEmptyScalar(*template_node, "params.template", diags);
  }
  const ConfigNode* values = config.Find("values");
  if (values) {
    ReadStringMap(*values, "params.values", "parameter",
                  format_known && out.format != ParamsFormat::kPlain, out.values, diags);
  }
  if (const ConfigNode* tags = config.Find("tags")) {
    if (format_known && out.format != ParamsFormat::kCodePipeline) {
      diags.Error(KeyLocation(config, "tags"),
                  fmt::format("params.tags: only format codepipeline holds tags (this step "
                              "writes {}): remove 'tags' or set 'format: codepipeline'",
                              ParamsFormatName(out.format)));
    } else {
      ReadStringMap(*tags, "params.tags", "tag", false, out.tags, diags);
    }
  }
  if (!values && !config.Find("base")) {
    diags.Error(config.where, "params: give 'values', 'base', or both");
  } else if (values && values->type == ConfigNode::Type::kMap && values->fields.empty() &&
             !config.Find("base")) {
    diags.Error(values->where, "params.values is empty and there is no 'base': nothing to write");
  }
  return out;
}

std::optional<ParamsFormat> ParseParamsFormat(std::string_view name) {
  if (name == "cloudformation") return ParamsFormat::kCloudFormation;
  if (name == "codepipeline") return ParamsFormat::kCodePipeline;
  if (name == "plain") return ParamsFormat::kPlain;
  return std::nullopt;
}

std::string_view ParamsFormatName(ParamsFormat format) {
  switch (format) {
    case ParamsFormat::kCloudFormation:
      return "cloudformation";
    case ParamsFormat::kCodePipeline:
      return "codepipeline";
    case ParamsFormat::kPlain:
      return "plain";
  }
  return "?";
}

void OrderedParams::Set(const std::string& key, const std::string& value) {
  for (auto& entry : entries_) {
    if (entry.first == key) {
      entry.second = value;
      return;
    }
  }
  entries_.emplace_back(key, value);
}

const std::string* OrderedParams::Find(std::string_view key) const {
  for (const auto& entry : entries_) {
    if (entry.first == key) return &entry.second;
  }
  return nullptr;
}

Result<ParamsFile> ParseParamsFile(std::string_view text, std::string_view name) {
  auto root = ParseJson(text, name);
  if (!root) return Fail(root.error());
  ParamsFile file;
  if (root->is_array()) {
    file.format = ParamsFormat::kCloudFormation;
    if (Status read = ReadCloudFormationArray(*root, name, file.parameters); !read) {
      return Fail(read.error());
    }
    return file;
  }
  if (!root->is_object()) {
    return Fail(
        fmt::format("{}: not a parameters file: expected an array (cloudformation) or an "
                    "object (codepipeline, plain), got {}",
                    name, JsonTypeName(*root)));
  }
  auto parameters = root->find("Parameters");
  if (parameters != root->end() && parameters->is_object()) {
    file.format = ParamsFormat::kCodePipeline;
    std::vector<std::string> errors;
    for (const auto& [key, value] : root->items()) {
      if (std::find(kCodePipelineKeys.begin(), kCodePipelineKeys.end(), key) ==
          kCodePipelineKeys.end()) {
        errors.push_back(
            fmt::format("{}: unknown key '{}' in a codepipeline template "
                        "configuration{}",
                        name, key, DidYouMeanHint(key, kCodePipelineKeys)));
      }
    }
    if (Status read = ReadStringObject(*parameters, name, "parameter", file.parameters); !read) {
      errors.push_back(read.error());
    }
    if (auto tags = root->find("Tags"); tags != root->end()) {
      if (!tags->is_object()) {
        errors.push_back(
            fmt::format("{}: 'Tags' must be an object, got {}", name, JsonTypeName(*tags)));
      } else if (Status read = ReadStringObject(*tags, name, "tag", file.tags); !read) {
        errors.push_back(read.error());
      }
    }
    if (auto policy = root->find("StackPolicy"); policy != root->end()) {
      file.stack_policy = *policy;
    }
    if (!errors.empty()) return Fail(JoinLines(errors));
    return file;
  }
  file.format = ParamsFormat::kPlain;
  if (Status read = ReadStringObject(*root, name, "parameter", file.parameters); !read) {
    return Fail(read.error());
  }
  return file;
}

Result<std::string> RenderParamsFile(const ParamsFile& file, ParamsFormat format) {
  if (format != ParamsFormat::kCodePipeline && (!file.tags.empty() || file.stack_policy)) {
    return Fail(fmt::format("format {} cannot hold tags or a stack policy: use codepipeline",
                            ParamsFormatName(format)));
  }
  Json root;
  switch (format) {
    case ParamsFormat::kCloudFormation:
      root = Json::array();
      for (const auto& [key, value] : file.parameters.entries()) {
        Json entry = Json::object();
        entry["ParameterKey"] = key;
        entry["ParameterValue"] = value;
        root.push_back(std::move(entry));
      }
      break;
    case ParamsFormat::kCodePipeline: {
      root = Json::object();
      Json& parameters = root["Parameters"] = Json::object();
      for (const auto& [key, value] : file.parameters.entries()) parameters[key] = value;
      Json& tags = root["Tags"] = Json::object();
      for (const auto& [key, value] : file.tags.entries()) tags[key] = value;
      if (file.stack_policy) root["StackPolicy"] = *file.stack_policy;
      break;
    }
    case ParamsFormat::kPlain:
      root = Json::object();
      for (const auto& [key, value] : file.parameters.entries()) root[key] = value;
      break;
  }
  try {
    return root.dump(2) + "\n";
  } catch (const std::exception& e) {
    // nlohmann refuses strings that are not UTF-8 (type_error 316).
    return Fail(fmt::format("cannot write the parameters as JSON: {}", e.what()));
  }
}

Status CheckParamsValues(const ParamsFile& file, ParamsFormat format) {
  std::vector<std::string> errors;
  bool logical_names = format != ParamsFormat::kPlain;
  for (const auto& [key, value] : file.parameters.entries()) {
    if (key.empty()) {
      errors.push_back("params: a parameter has an empty name");
      continue;
    }
    if (logical_names && !IsLogicalName(key)) {
      errors.push_back(
          fmt::format("params: '{}' is not a CloudFormation parameter name "
                      "(letters and digits only)",
                      key));
    }
    if (value.empty()) {
      errors.push_back(
          fmt::format("params: parameter '{}' is empty; refusing to write a "
                      "parameters file with an empty value (did the expression or "
                      "base file that sets it produce nothing?)",
                      key));
    }
    if (std::optional<std::string> problem = Utf8Problem(key, value, "parameter")) {
      errors.push_back(*problem);
    }
  }
  for (const auto& [key, value] : file.tags.entries()) {
    if (key.empty()) errors.push_back("params: a tag has an empty name");
    if (value.empty()) errors.push_back(fmt::format("params: tag '{}' is empty", key));
    if (std::optional<std::string> problem = Utf8Problem(key, value, "tag")) {
      errors.push_back(*problem);
    }
  }
  if (!errors.empty()) return Fail(JoinLines(errors));
  return {};
}

Result<std::vector<TemplateParameter>> ParseTemplateParameters(std::string_view text,
                                                               std::string_view name) {
  std::size_t start = 0;
  if (text.starts_with("\xEF\xBB\xBF")) start = 3;
  while (start < text.size() && (text[start] == ' ' || text[start] == '\t' || text[start] == '\n' ||
                                 text[start] == '\r')) {
    ++start;
  }
  if (start < text.size() && text[start] == '{') {
    auto root = ParseJson(text, name);
    if (!root) return Fail(root.error());
    return ParametersFromJson(*root, name);
  }
  return ParametersFromYaml(text, name);
}

namespace {

// A CloudFormation Number: an integer or a float.
std::optional<double> ParseCfnNumber(std::string_view text) {
  static const RE2 kNumber(R"([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)");
  if (!RE2::FullMatch(text, kNumber)) return std::nullopt;
  return std::strtod(std::string(text).c_str(), nullptr);
}

// Characters of a UTF-8 value (its code points; bytes when it is not UTF-8).
std::size_t CharacterCount(std::string_view text) {
  return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

bool IsListType(std::string_view type) {
  return type == "CommaDelimitedList" || type.starts_with("List<");
}

bool IsNumberType(std::string_view type) { return type == "Number" || type == "List<Number>"; }

// Checks one value against `parameter`'s constraints, appending a message per problem. No
// message quotes a NoEcho parameter's value.
void CheckParameterValue(const TemplateParameter& parameter, const std::string& value,
                         std::string_view template_name, std::vector<std::string>& errors) {
  auto shown = [&](std::string_view item, std::size_t index, bool whole) {
    std::string subject = whole ? fmt::format("'{}'", parameter.name)
                                : fmt::format("'{}' item {}", parameter.name, index);
    if (parameter.no_echo) return subject + " (NoEcho: value not shown)";
    return fmt::format("{} is '{}'", subject, item);
  };
  auto bound = [&](const std::optional<std::string>& text,
                   std::string_view what) -> std::optional<double> {
    if (!text) return std::nullopt;
    std::optional<double> number = ParseCfnNumber(*text);
    if (!number) {
      errors.push_back(
          fmt::format("params: '{}' in {} has {} '{}', which is not a number: fix "
                      "the template",
                      parameter.name, template_name, what, *text));
    }
    return number;
  };
  std::optional<double> min_value = bound(parameter.min_value, "MinValue");
  std::optional<double> max_value = bound(parameter.max_value, "MaxValue");
  std::optional<double> min_length = bound(parameter.min_length, "MinLength");
  std::optional<double> max_length = bound(parameter.max_length, "MaxLength");

  std::optional<RE2> pattern;
  if (parameter.allowed_pattern) {
    RE2::Options options;
    options.set_log_errors(false);
    pattern.emplace(*parameter.allowed_pattern, options);
    if (!pattern->ok()) {
      errors.push_back(fmt::format(
          "params: '{}': its AllowedPattern '{}' in {} cannot be checked: {} (patterns run with "
          "RE2, which has no backreferences or lookaround; write an equivalent pattern)",
          parameter.name, *parameter.allowed_pattern, template_name, pattern->error()));
      pattern.reset();
    }
  }

  bool list = IsListType(parameter.type);
  bool number = IsNumberType(parameter.type);
  std::vector<std::string_view> items;
  if (list) {
    for (std::size_t begin = 0;;) {
      std::size_t comma = value.find(',', begin);
      items.push_back(std::string_view(value).substr(begin, comma - begin));
      if (comma == std::string::npos) break;
      begin = comma + 1;
    }
  } else {
    items.push_back(value);
  }
  for (std::size_t i = 0; i < items.size(); ++i) {
    std::string_view item = items[i];
    std::string subject = shown(item, i + 1, !list);
    if (!parameter.allowed_values.empty() &&
        std::find(parameter.allowed_values.begin(), parameter.allowed_values.end(), item) ==
            parameter.allowed_values.end()) {
      errors.push_back(fmt::format("params: {}, not one of the AllowedValues in {}: {}", subject,
                                   template_name, fmt::join(parameter.allowed_values, ", ")));
    }
    if (pattern && !RE2::FullMatch(item, *pattern)) {
      errors.push_back(fmt::format("params: {}, which does not match its AllowedPattern '{}' in {}",
                                   subject, *parameter.allowed_pattern, template_name));
    }
    if (!number) continue;
    std::optional<double> parsed = ParseCfnNumber(item);
    if (!parsed) {
      errors.push_back(fmt::format("params: {}, which is not a number (its Type is {} in {})",
                                   subject, parameter.type, template_name));
    } else if ((min_value && *parsed < *min_value) || (max_value && *parsed > *max_value)) {
      errors.push_back(fmt::format("params: {}, outside its range in {}: MinValue {}, MaxValue {}",
                                   subject, template_name, parameter.min_value.value_or("none"),
                                   parameter.max_value.value_or("none")));
    }
  }
  if (!list && !number) {
    auto length = static_cast<double>(CharacterCount(value));
    if ((min_length && length < *min_length) || (max_length && length > *max_length)) {
      errors.push_back(fmt::format(
          "params: {}, {} characters long, outside its length limits in {}: MinLength {}, "
          "MaxLength {}",
          shown(value, 0, true), CharacterCount(value), template_name,
          parameter.min_length.value_or("none"), parameter.max_length.value_or("none")));
    }
  }
}

}  // namespace

Status CheckAgainstTemplate(const OrderedParams& params,
                            const std::vector<TemplateParameter>& declared,
                            std::string_view template_name, ParamsFormat format,
                            std::vector<std::string>& warnings) {
  std::vector<std::string> names;
  for (const TemplateParameter& parameter : declared) names.push_back(parameter.name);
  std::vector<std::string> errors;
  for (const auto& [key, value] : params.entries()) {
    auto found = std::find_if(declared.begin(), declared.end(),
                              [&](const TemplateParameter& p) { return p.name == key; });
    if (found == declared.end()) {
      if (names.empty()) {
        errors.push_back(
            fmt::format("params: '{}' is not a parameter of {}, which declares no "
                        "parameters",
                        key, template_name));
      } else {
        errors.push_back(fmt::format("params: '{}' is not a parameter of {}{}", key, template_name,
                                     DidYouMeanHint(key, names)));
      }
      continue;
    }
    CheckParameterValue(*found, value, template_name, errors);
  }
  for (const TemplateParameter& parameter : declared) {
    if (parameter.has_default || params.Find(parameter.name)) continue;
    std::string message = fmt::format("parameter '{}' of {} has no Default and no value",
                                      parameter.name, template_name);
    if (format == ParamsFormat::kCloudFormation) {
      errors.push_back(
          fmt::format("params: {}: create-stack would fail; add it to values or "
                      "base, or give it a Default",
                      message));
    } else {
      warnings.push_back(message + ": it must be given where this file is used");
    }
  }
  if (!errors.empty()) return Fail(JoinLines(errors));
  return {};
}

}  // namespace runner
