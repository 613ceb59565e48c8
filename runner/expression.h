// `${{ name }}` expressions inside pipeline strings (SPEC section 3). An expression is one
// dotted name: build.branch, vars.store, env.HOME, steps.bake.outputs.ami_id, steps.bake.status.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runner/result.h"

namespace runner {

struct TemplatePart {
  bool is_expression = false;
  std::string text;   // the literal text, or the expression's name with spaces trimmed
  size_t offset = 0;  // of the part in the template (for `${{`, of the `$`)
};

// Splits `text` into literal parts and expressions. Errors (with the offset into `text` of
// the problem) for an unclosed `${{`, an empty expression, or a name that is not
// dot-separated identifiers ([A-Za-z_][A-Za-z0-9_-]*).
struct TemplateError {
  std::string message;
  size_t offset = 0;
};
std::expected<std::vector<TemplatePart>, TemplateError> ParseTemplate(std::string_view text);

// True when `text` contains `${{`.
bool HasExpression(std::string_view text);

// The fields `build.FIELD` names: project, branch, commit, short_commit, number, id, event,
// trigger, workspace.
const std::vector<std::string>& BuildFieldNames();

// Returns the value of a name, or nullopt when the name is unknown.
using NameLookup = std::function<std::optional<std::string>(std::string_view name)>;

// Replaces every expression with its value. Fails naming the first unknown name.
Result<std::string> ExpandTemplate(std::string_view text, const NameLookup& lookup);

}  // namespace runner
