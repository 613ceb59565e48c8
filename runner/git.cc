#include "runner/git.h"

#include <filesystem>
#include <set>

namespace runner::git {

void EnsureLibgit2() {
  static const int kInitialized = git_libgit2_init();
  (void)kInitialized;
}

bool MayHoldRepository(const std::string& dir) {
  std::error_code ec;
  std::filesystem::path at = std::filesystem::absolute(dir, ec);
  if (ec) return true;
  auto exists = [](const std::filesystem::path& path) {
    std::error_code ignored;
    return std::filesystem::exists(std::filesystem::symlink_status(path, ignored));
  };
  while (true) {
    if (exists(at / ".git") ||
        (exists(at / "HEAD") && exists(at / "objects") && exists(at / "refs"))) {
      return true;
    }
    if (!at.has_relative_path()) return false;
    at = at.parent_path();
  }
}

std::string LastGitError() {
  const git_error* error = git_error_last();
  return error != nullptr && error->message != nullptr ? error->message : "unknown libgit2 error";
}

Result<std::vector<std::string>> DiffPaths(git_repository* repo, git_tree* from, git_tree* to) {
  git_diff* raw_diff = nullptr;
  if (git_diff_tree_to_tree(&raw_diff, repo, from, to, nullptr) != 0) return Fail(LastGitError());
  DiffPtr diff(raw_diff);
  // Without rename detection a rename is a deletion and an addition: both names, as promised.
  std::set<std::string> paths;
  std::size_t count = git_diff_num_deltas(diff.get());
  for (std::size_t i = 0; i < count; ++i) {
    const git_diff_delta* delta = git_diff_get_delta(diff.get(), i);
    if (delta->old_file.path != nullptr && delta->status != GIT_DELTA_ADDED) {
      paths.insert(delta->old_file.path);
    }
    if (delta->new_file.path != nullptr && delta->status != GIT_DELTA_DELETED) {
      paths.insert(delta->new_file.path);
    }
  }
  return std::vector<std::string>(paths.begin(), paths.end());
}

}  // namespace runner::git
