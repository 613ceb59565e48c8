// Reading YAML text with yaml-cpp 0.7 safely. yaml-cpp truncates at a NUL, accepts invalid
// UTF-8 and an unclosed quote, recurses once per nesting level (a crafted file overflows the
// stack) and loops forever on some stray commas: the raw text is checked before it parses.
#pragma once

#include <yaml-cpp/yaml.h>

#include <expected>
#include <optional>
#include <string>
#include <string_view>

#include "runner/diagnostics.h"

namespace runner {

struct YamlError {
  SourceLocation where;
  std::string message;
};

// The first problem of the raw text that yaml-cpp would mishandle, if any. `what` names the
// file in messages ("a pipeline file", "appspec.yml").
std::optional<YamlError> CheckYamlText(std::string_view source, std::string_view what);

// CheckYamlText, then the first document; yaml-cpp's exceptions become errors whose messages
// say what the user got wrong.
std::expected<YAML::Node, YamlError> LoadYaml(std::string_view source, std::string_view what);

// yaml-cpp's 0-based mark as a 1-based location (unknown for a null mark).
SourceLocation LocationOf(const YAML::Mark& mark);

// The location of byte `offset`, counting from `from` (a known location at `from_offset`
// before it), so that many lookups in a large file stay linear.
SourceLocation LocationAt(std::string_view source, size_t offset, size_t from_offset = 0,
                          SourceLocation from = {1, 1});

// yaml-cpp's parser messages, said in terms of what the user got wrong.
std::string DescribeYamlError(const std::string& message);

}  // namespace runner
