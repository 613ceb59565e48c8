// YAML files read with the raw-text checks in front of libyaml (runner/yaml.h). The checks give
// the messages users act on for the usual mistakes (a tab in the indentation, an unclosed quote
// or bracket, a stray ',' where a value starts) at the place the mistake begins, where
// libyaml's would name its parser state or the end of the file.
#pragma once

#include <expected>
#include <optional>
#include <string_view>
#include <vector>

#include "runner/yaml.h"

namespace runner {

// The first problem of the raw text, if any: CheckYamlEncoding's, then the structure checks
// above. `what` names the file in messages ("a pipeline file", "appspec.yml").
std::optional<YamlError> CheckYamlText(std::string_view source, std::string_view what);

// CheckYamlText, then every document read by ParseYamlDocuments with the default limits.
std::expected<std::vector<YamlNode>, YamlError> LoadYaml(std::string_view source,
                                                         std::string_view what);

}  // namespace runner
