// Reading YAML text with yaml-cpp 0.7 safely. yaml-cpp truncates at a NUL, accepts invalid
// UTF-8 and an unclosed quote, recurses once per nesting level (a crafted file overflows the
// stack) and loops forever, allocating, on stray commas next to tags, anchors and quotes: the
// raw text is checked, then read by libyaml (runner/yaml.h), before yaml-cpp sees it. New
// readers use runner/yaml.h alone.
#pragma once

#include <yaml-cpp/yaml.h>

#include <expected>
#include <optional>
#include <string>
#include <string_view>

#include "runner/diagnostics.h"
#include "runner/yaml.h"

namespace runner {

// The first problem of the raw text that yaml-cpp would mishandle, if any. `what` names the
// file in messages ("a pipeline file", "appspec.yml").
std::optional<YamlError> CheckYamlText(std::string_view source, std::string_view what);

// CheckYamlText, then every document read by ParseYamlDocuments (which stops what makes
// yaml-cpp loop or balloon), then the first document by yaml-cpp; yaml-cpp's exceptions become
// errors whose messages say what the user got wrong.
std::expected<YAML::Node, YamlError> LoadYaml(std::string_view source, std::string_view what);

// yaml-cpp's 0-based mark as a 1-based location (unknown for a null mark).
SourceLocation LocationOf(const YAML::Mark& mark);

// yaml-cpp's parser messages, said in terms of what the user got wrong.
std::string DescribeYamlError(const std::string& message);

}  // namespace runner
