// The tree the pipeline loader hands a kind's Check, built from a YAML snippet, so that a kind's
// checks are tested with the locations a user would see (1-based); and the expanded tree the
// scheduler hands its Execute.
#pragma once

#include <yaml-cpp/yaml.h>

#include "runner/pipeline.h"

namespace runner::testing {

inline ConfigNode ConfigFromYaml(const YAML::Node& node) {
  ConfigNode out;
  out.where = {node.Mark().line + 1, node.Mark().column + 1};
  if (node.IsMap()) {
    out.type = ConfigNode::Type::kMap;
    for (const auto& field : node) {
      out.fields.emplace_back(field.first.Scalar(), ConfigFromYaml(field.second));
      out.key_locations.push_back({field.first.Mark().line + 1, field.first.Mark().column + 1});
    }
  } else if (node.IsSequence()) {
    out.type = ConfigNode::Type::kList;
    for (const auto& item : node) out.items.push_back(ConfigFromYaml(item));
  } else {
    out.scalar.text = node.IsNull() ? "" : node.Scalar();
    out.scalar.where = out.where;
    out.null = node.IsNull();
  }
  return out;
}

inline void MarkExpanded(ConfigNode& node) {
  node.expanded = true;
  for (ConfigNode& item : node.items) MarkExpanded(item);
  for (auto& [key, value] : node.fields) MarkExpanded(value);
}

// A configuration as Execute gets it: `text` is YAML (JSON is YAML too), every scalar final.
inline ConfigNode ExpandedConfig(const std::string& text) {
  ConfigNode node = ConfigFromYaml(YAML::Load(text));
  MarkExpanded(node);
  return node;
}

}  // namespace runner::testing
