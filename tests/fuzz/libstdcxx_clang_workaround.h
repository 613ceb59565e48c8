// Force-included in the fuzz build only (clang 19 with libstdc++ 12). runner/pipeline.h's
// ConfigNode holds std::vector<std::pair<std::string, ConfigNode>>; clang instantiates
// std::pair<std::string, ConfigNode> while ConfigNode is still incomplete, and pair's
// conditionally explicit default constructor asks whether ConfigNode is implicitly default
// constructible, which loops back into the pair ("template argument must be a complete class").
// GCC accepts the header. Answering the question up front (ConfigNode is an aggregate with
// default member initializers, so the answer is yes) breaks the loop.
// To remove: hold the fields of both as a named struct declared after the node.
#pragma once

#include <type_traits>

namespace runner {
struct ConfigNode;
struct YamlNode;  // runner/yaml.h: std::vector<std::pair<YamlNode, YamlNode>>, the same loop
}  // namespace runner

namespace std {
template <>
struct __is_implicitly_default_constructible<runner::ConfigNode> : true_type {};
template <>
struct __is_implicitly_default_constructible<runner::YamlNode> : true_type {};
}  // namespace std
