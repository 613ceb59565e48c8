// Paths confined to the workspace, judged after symlinks are resolved: one behaviour for every
// step that reads or writes files the pipeline names.
#pragma once

#include <string>

#include "runner/result.h"

namespace runner {

// `path` made absolute: as is when it starts with '/', else relative to `dir` (absolute), with
// symlinks resolved: the realpath of the longest prefix that exists, then the rest normalized
// lexically ("a/../b" -> "b"), so a path that does not exist yet (an output) resolves too.
// Errors: a component that exists but cannot be resolved (a dangling link, a loop, no
// permission), naming `path` as written.
Result<std::string> ResolvePath(const std::string& path, const std::string& dir);

// Whether `path` equals `root` or lies below it; both absolute and normalized.
bool IsWithin(const std::string& path, const std::string& root);

// ResolvePath, then confirms that the result lies inside `workspace` (itself resolved the same
// way). Returns the absolute resolved path, or an error naming `path` as written, what it
// resolves to and the workspace:
// "'PATH' resolves to REAL, outside the workspace WORKSPACE".
Result<std::string> ResolveInWorkspace(const std::string& path, const std::string& dir,
                                       const std::string& workspace);

// `path` (absolute) relative to `workspace` for messages and reports: "a/b.zip" when inside
// (lexically), "." for the workspace itself, else `path` normalized.
std::string WorkspaceRelative(const std::string& path, const std::string& workspace);

}  // namespace runner
