#include "runner/workspace_path.h"

#include <cerrno>
#include <cstdlib>
#include <filesystem>

#include "runner/fs.h"

namespace runner {

namespace fs = std::filesystem;

Result<std::string> ResolvePath(const std::string& path, const std::string& dir) {
  fs::path absolute = (path.starts_with('/') ? fs::path(path) : fs::path(dir) / path);
  absolute = absolute.lexically_normal();
  if (absolute.has_relative_path() && absolute.filename().empty())
    absolute = absolute.parent_path();
  // Walk back from the whole path to the longest prefix that exists. Only a prefix missing
  // (ENOENT, ENOTDIR) moves on; any other failure means the path cannot be judged.
  fs::path existing = absolute;
  fs::path rest;
  for (;;) {
    char* resolved = ::realpath(existing.c_str(), nullptr);
    if (resolved != nullptr) {
      fs::path real(resolved);
      std::free(resolved);
      return (rest.empty() ? real : real / rest).lexically_normal().string();
    }
    int err = errno;
    std::error_code ec;
    bool is_link = fs::is_symlink(existing, ec);
    if ((err != ENOENT && err != ENOTDIR) || is_link || !existing.has_relative_path()) {
      return Fail("cannot resolve '" + path + "' (" + absolute.string() + "): " + ErrnoText(err));
    }
    rest = rest.empty() ? existing.filename() : existing.filename() / rest;
    existing = existing.parent_path();
  }
}

bool IsWithin(const std::string& path, const std::string& root) {
  if (root == "/") return path.starts_with('/');
  return path == root ||
         (path.size() > root.size() && path.starts_with(root) && path[root.size()] == '/');
}

Result<std::string> ResolveInWorkspace(const std::string& path, const std::string& dir,
                                       const std::string& workspace) {
  Result<std::string> real_workspace = ResolvePath(workspace, "/");
  if (!real_workspace) return real_workspace;
  Result<std::string> real = ResolvePath(path, dir);
  if (!real) return real;
  if (!IsWithin(*real, *real_workspace)) {
    return Fail("'" + path + "' resolves to " + *real + ", outside the workspace " +
                *real_workspace);
  }
  return real;
}

std::string WorkspaceRelative(const std::string& path, const std::string& workspace) {
  fs::path normal = fs::path(path).lexically_normal();
  fs::path relative = normal.lexically_relative(fs::path(workspace).lexically_normal());
  if (relative.empty() || *relative.begin() == "..") return normal.string();
  return relative.string();
}

}  // namespace runner
