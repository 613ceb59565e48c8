// Glob matching for branch names and file paths.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace runner {

// `*` matches any run of characters but `/`; `**` matches any run including `/` (and `**/`
// also matches nothing, so `**/*.go` matches `main.go`); `?` one character but `/`;
// `[abc]`, `[a-z]`, `[!a]` classes. Everything else is literal; `\` escapes the next
// character.
bool GlobMatch(std::string_view pattern, std::string_view text);

// Whether any of `globs` matches `text`.
bool AnyMatch(const std::vector<std::string>& globs, std::string_view text);

// Whether `text` holds glob syntax (`*`, `?`, `[`, `\`), i.e. is not a plain name.
bool HasGlobSyntax(std::string_view text);

}  // namespace runner
