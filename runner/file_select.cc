#include "runner/file_select.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <memory>

#include "runner/fs.h"
#include "runner/glob.h"
#include "runner/path.h"
#include "runner/workspace_path.h"

namespace runner {

namespace {

std::string Join(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  return a + "/" + b;
}

struct Walker {
  const std::string& dir;
  const std::string& workspace;
  const SelectOptions& options;
  std::string_view pattern;  // the glob below the prefix; empty: every file
  size_t depth = 0;          // components of `pattern`
  bool any_depth = false;    // `pattern` has `**`
  std::vector<SelectedFile>& out;
  size_t excluded = 0;  // files the pattern selected that `options.exclude` left out

  bool Excluded(const SelectedFile& file) { return options.exclude && options.exclude(file); }

  // A file the pattern selects, unless excluded.
  void Select(SelectedFile file) {
    if (Excluded(file)) {
      ++excluded;
      return;
    }
    out.push_back(std::move(file));
  }

  // `real` is `source`'s resolved path, a directory; `relative` its path below the prefix.
  Status Walk(const std::string& real, const std::string& source, const std::string& relative) {
    std::unique_ptr<DIR, int (*)(DIR*)> handle(::opendir(real.c_str()), ::closedir);
    if (!handle) return Fail("cannot read directory '" + source + "': " + ErrnoText(errno));
    std::vector<std::string> names;
    while (struct dirent* item = ::readdir(handle.get())) {
      std::string_view name = item->d_name;
      if (name != "." && name != "..") names.emplace_back(name);
    }
    handle.reset();
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) {
      std::string child_source = Join(source, name);
      std::string child_relative = Join(relative, name);
      // `real` is resolved and inside the workspace, so an entry of it that is no symlink is
      // too: only a link needs resolving (a readlink per component of its path).
      std::string child = real + "/" + name;
      struct stat st;
      if (::lstat(child.c_str(), &st) != 0) {
        return Fail("cannot stat '" + child_source + "': " + ErrnoText(errno));
      }
      if (S_ISLNK(st.st_mode)) {
        // Resolved by its whole source path, so that a message names the path the user sees.
        Result<std::string> target = ResolveInWorkspace(child_source, dir, workspace);
        if (!target) return Fail(target.error());
        child = std::move(*target);
        if (::stat(child.c_str(), &st) != 0) {
          return Fail("'" + child_source + "' points to nothing: " + ErrnoText(errno));
        }
      }
      if (S_ISDIR(st.st_mode)) {
        // A link to a directory above it would be walked forever.
        if (IsWithin(real, child)) {
          return Fail("symlink '" + child_source + "' points to its own parent " + child +
                      ": a loop");
        }
        SelectedFile found{child, child_source, child_relative, true};
        if (Excluded(found)) continue;
        if (!pattern.empty() && !any_depth && SplitPath(child_relative).size() >= depth) continue;
        if (options.directories && pattern.empty()) out.push_back(found);
        if (Status walked = Walk(child, child_source, child_relative); !walked) return walked;
      } else if (S_ISREG(st.st_mode)) {
        if (!pattern.empty() && !GlobMatch(pattern, child_relative)) continue;
        Select({child, child_source, child_relative});
      }
    }
    return {};
  }
};

}  // namespace

Result<std::vector<SelectedFile>> SelectFiles(std::string_view pattern, const std::string& dir,
                                              const std::string& workspace,
                                              const SelectOptions& options) {
  std::string quoted = "'" + std::string(pattern) + "'";
  if (pattern.empty()) return Fail("an empty pattern selects nothing");
  if (pattern.starts_with('/')) return Fail(quoted + " must be relative to " + dir);
  std::vector<std::string> parts = SplitPath(pattern);
  size_t fixed = 0;
  while (fixed < parts.size() && !HasGlobSyntax(parts[fixed])) ++fixed;
  std::string prefix = JoinPath(parts, 0, fixed);
  std::string rest = JoinPath(parts, fixed, parts.size());
  std::vector<SelectedFile> out;
  Walker walker{
      dir, workspace, options, rest, parts.size() - fixed, rest.find("**") != std::string::npos,
      out};

  // Confined before anything else is asked, so that whether a path outside the workspace
  // exists is never told ("../../etc/pass*" is outside, not "matches no file").
  Result<std::string> real = ResolveInWorkspace(prefix.empty() ? "." : prefix, dir, workspace);
  if (!real) return Fail(real.error());
  struct stat st;
  std::string abs = prefix.empty() ? dir : dir + "/" + prefix;
  bool exists = ::lstat(abs.c_str(), &st) == 0;
  if (!exists && rest.empty()) return Fail(quoted + " does not exist (in " + dir + ")");
  if (exists) {
    if (::stat(real->c_str(), &st) != 0) {
      return Fail(quoted + " points to nothing: " + ErrnoText(errno));
    }
    if (S_ISDIR(st.st_mode)) {
      if (options.directories && rest.empty()) out.push_back({*real, prefix, "", true});
      if (Status walked = walker.Walk(*real, prefix, ""); !walked) return Fail(walked.error());
    } else if (rest.empty()) {
      if (pattern.ends_with('/')) return Fail(quoted + " is not a directory");
      if (!S_ISREG(st.st_mode)) return Fail(quoted + " is not a regular file or directory");
      walker.Select({*real, prefix, parts.back()});
      return out;
    }
  }
  if (out.empty() && walker.excluded > 0) {
    return Fail(quoted + " matches only excluded files (" + std::to_string(walker.excluded) +
                " excluded)");
  }
  if (out.empty()) {
    if (rest.empty()) return Fail("directory " + quoted + " holds no file");
    return Fail(quoted + " matches no file (in " + dir + ")");
  }
  return out;
}

Result<std::vector<SelectedFile>> SelectFiles(const std::vector<std::string>& patterns,
                                              const std::string& dir, const std::string& workspace,
                                              const SelectOptions& options) {
  std::vector<SelectedFile> all;
  for (const std::string& pattern : patterns) {
    Result<std::vector<SelectedFile>> files = SelectFiles(pattern, dir, workspace, options);
    if (!files) return files;
    all.insert(all.end(), files->begin(), files->end());
  }
  std::stable_sort(all.begin(), all.end(), [](const SelectedFile& a, const SelectedFile& b) {
    return a.source < b.source;
  });
  all.erase(std::unique(
                all.begin(), all.end(),
                [](const SelectedFile& a, const SelectedFile& b) { return a.source == b.source; }),
            all.end());
  return all;
}

}  // namespace runner
