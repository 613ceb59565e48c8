// Checks of a built-in step kind's configuration (ConfigNode, in runner/pipeline.h).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "runner/diagnostics.h"
#include "runner/expression.h"
#include "runner/pipeline.h"

namespace runner {

// Helpers for a kind's Validate. Each reports a problem to `diags` at the node and returns
// false (or nullopt) on it. `what` names the value in messages, e.g. "zip.dest".
bool ExpectScalar(const ConfigNode& node, std::string_view what, Diagnostics& diags);
bool ExpectList(const ConfigNode& node, std::string_view what, Diagnostics& diags);
bool ExpectMap(const ConfigNode& node, std::string_view what, Diagnostics& diags);
// Unknown keys of a map, each with a did-you-mean among `allowed`.
void CheckKeys(const ConfigNode& map, const std::vector<std::string>& allowed,
               std::string_view what, Diagnostics& diags);
// A required field: reports "what: missing 'key'" at the map when absent.
const ConfigNode* Require(const ConfigNode& map, std::string_view key, std::string_view what,
                          Diagnostics& diags);
// A scalar holding a whole number in [min, max], unless it is an expression (checked at run).
std::optional<std::int64_t> ExpectInteger(const ConfigNode& node, std::string_view what,
                                          std::int64_t min, std::int64_t max, Diagnostics& diags);
// `true` or `false`.
std::optional<bool> ExpectBool(const ConfigNode& node, std::string_view what, Diagnostics& diags);
// A scalar or a list of scalars, as a list.
std::optional<std::vector<const ConfigNode*>> ExpectScalarOrList(const ConfigNode& node,
                                                                 std::string_view what,
                                                                 Diagnostics& diags);

// Every scalar of the tree, for expression checks.
void CollectScalars(const ConfigNode& node, std::vector<const TemplateString*>& out);

// Whether a scalar's value is final: the tree was expanded, or its text holds no expression.
// A kind checks the value of a known scalar; of an unknown one only its type (SPEC section 3:
// `validate` runs before any value exists).
bool IsKnown(const ConfigNode& node);

// The tree with every scalar's expressions replaced through `lookup`, marked expanded, every
// location kept. Fails with "KEY.KEY[N]: why" for the first scalar that cannot be expanded.
Result<ConfigNode> ExpandConfig(const ConfigNode& node, const NameLookup& lookup);

// The tree as JSON and back, locations included: how a step's configuration reaches
// `runner __step`. ConfigFromJson fails on anything ConfigToJson does not write.
nlohmann::ordered_json ConfigToJson(const ConfigNode& node);
Result<ConfigNode> ConfigFromJson(const nlohmann::ordered_json& json);

}  // namespace runner
