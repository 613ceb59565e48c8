// Force-included in the fuzz build only (clang 19 with libstdc++ 12). runner/pipeline.h's
// ConfigNode holds std::vector<std::pair<std::string, ConfigNode>>; clang instantiates
// std::pair<std::string, ConfigNode> while ConfigNode is still incomplete, and pair's
// conditionally explicit default constructor asks whether ConfigNode is implicitly default
// constructible, which loops back into the pair ("template argument must be a complete class").
// GCC accepts the header. Answering the question up front (ConfigNode is an aggregate with
// default member initializers, so the answer is yes) breaks the loop.
// TODO: remove once runner/pipeline.h declares ConfigNode's special members itself.
#pragma once

#include <type_traits>

namespace runner {
struct ConfigNode;
}

namespace std {
template <>
struct __is_implicitly_default_constructible<runner::ConfigNode> : true_type {};
}  // namespace std
