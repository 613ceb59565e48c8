// The tree the pipeline loader hands a kind's Check, built from a YAML snippet, so that a kind's
// checks are tested with the locations a user would see (1-based); and the expanded tree the
// scheduler hands its Execute.
#pragma once

#include <gtest/gtest.h>

#include <string_view>

#include "runner/pipeline.h"
#include "runner/yaml.h"

namespace runner::testing {

inline ConfigNode ConfigFromYaml(const YamlNode& node) {
  ConfigNode out;
  out.where = node.where;
  if (node.IsMap()) {
    out.type = ConfigNode::Type::kMap;
    for (const auto& [key, value] : node.fields) {
      out.fields.emplace_back(key.value, ConfigFromYaml(value));
      out.key_locations.push_back(key.where);
    }
  } else if (node.IsList()) {
    out.type = ConfigNode::Type::kList;
    for (const YamlNode& item : node.items) out.items.push_back(ConfigFromYaml(item));
  } else {
    out.null = node.IsNull();
    out.scalar.text = out.null ? "" : node.value;
    out.scalar.where = out.where;
  }
  return out;
}

// The first document of `text`, which the test means to be valid YAML; or, with `key`, the
// value of that field of it.
inline ConfigNode ConfigFromYaml(std::string_view text, std::string_view key = {}) {
  auto documents = ParseYamlDocuments(text, "a test snippet");
  if (!documents || documents->empty()) {
    ADD_FAILURE() << "not a YAML document: " << text;
    return {};
  }
  const YamlNode* node = key.empty() ? &documents->front() : documents->front().Find(key);
  if (!node) {
    ADD_FAILURE() << "no '" << key << "' in: " << text;
    return {};
  }
  return ConfigFromYaml(*node);
}

inline void MarkExpanded(ConfigNode& node) {
  node.expanded = true;
  for (ConfigNode& item : node.items) MarkExpanded(item);
  for (auto& [key, value] : node.fields) MarkExpanded(value);
}

// A configuration as Execute gets it: `text` is YAML (JSON is YAML too), every scalar final.
inline ConfigNode ExpandedConfig(std::string_view text) {
  ConfigNode node = ConfigFromYaml(text);
  MarkExpanded(node);
  return node;
}

}  // namespace runner::testing
