// Files selected by patterns, relative to a directory and confined to the workspace.
//
// A pattern is a plain file, a directory (every file below it) or a glob (`*`, `?`, `[..]`,
// `**`, as runner/glob.h; a glob selects files only and is matched against the path below its
// fixed prefix, the components before the first one with glob syntax). Symlinks are followed,
// to files and to directories; a link whose target lies outside the workspace, a dangling link
// and a link to one of its own parent directories are errors. Entries that are neither regular
// files nor directories (sockets, fifos, devices) are skipped.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "runner/result.h"

namespace runner {

struct SelectedFile {
  std::string path;        // absolute, symlinks resolved: what to read
  std::string source;      // as reached from the directory: "dist/app/main.js"
  std::string relative;    // below the pattern's fixed prefix: "app/main.js" for "dist/**/*.js"
                           // or the directory "dist"; a plain file's name alone
  bool directory = false;  // only with SelectOptions::directories
};

struct SelectOptions {
  // A directory pattern also yields itself (`relative` empty) and every directory below it,
  // each with `directory` set, so that empty directories can be recreated. A glob still
  // selects files only.
  bool directories = false;
  // Asked about every directory found below a pattern's fixed prefix (true: it and everything
  // below it are left out) and every file the pattern selects (true: left out). A plain file
  // pattern whose file is left out selects nothing, without error; a glob or a directory
  // whose files were all left out is the error "'P' matches only excluded files (N
  // excluded)". Empty: nothing is left out.
  std::function<bool(const SelectedFile&)> exclude;
};

// The files one pattern selects in `dir` (absolute), sorted by `source`. Errors name the
// pattern or the path below it: empty or absolute pattern, "'P' does not exist (in DIR)", "'P' is
// not a directory" (a file written with a trailing '/'), "'P' matches no file (in DIR)", a
// directory that holds no file, anything resolving outside `workspace` (see
// runner/workspace_path.h).
Result<std::vector<SelectedFile>> SelectFiles(std::string_view pattern, const std::string& dir,
                                              const std::string& workspace,
                                              const SelectOptions& options = {});

// Every pattern's files, each source once, sorted by `source`. The first pattern's error stops.
Result<std::vector<SelectedFile>> SelectFiles(const std::vector<std::string>& patterns,
                                              const std::string& dir, const std::string& workspace,
                                              const SelectOptions& options = {});

}  // namespace runner
