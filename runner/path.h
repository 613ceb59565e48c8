// Slash-separated relative paths as the steps handle them (archive paths, object keys).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace runner {

// Splits on '/', dropping empty and "." components ("./a//b/" -> {a, b}).
std::vector<std::string> SplitPath(std::string_view path);

// parts[begin, end) joined with '/'.
std::string JoinPath(const std::vector<std::string>& parts, size_t begin, size_t end);

}  // namespace runner
