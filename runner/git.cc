#include "runner/git.h"

#include <filesystem>
#include <set>

#include "runner/lazy_library.h"

namespace runner::git {

namespace {

// The soname of the libgit2 built against: its ABI changes with every minor version.
constexpr const char* kLibrary = "libgit2.so." LIBGIT2_SOVERSION;
constexpr const char* kPackage = "libgit2-" LIBGIT2_SOVERSION;

Result<Libgit2> Load() {
  Result<Libgit2> library =
      LoadLazyLibrary<Libgit2>(kLibrary, kPackage, [](SymbolBinder& binder, Libgit2& git) {
#define RUNNER_LIBGIT2_BIND(name) binder.Bind(git.name, "git_" #name);
        RUNNER_LIBGIT2_ENTRY_POINTS(RUNNER_LIBGIT2_BIND)
#undef RUNNER_LIBGIT2_BIND
      });
  if (library && library->libgit2_init() < 0) {
    return Fail(std::string("cannot initialize ") + kLibrary);
  }
  return library;
}

const Result<Libgit2>& Loaded() {
  static const Result<Libgit2> library = Load();  // once, also when it failed
  return library;
}

}  // namespace

Status EnsureLibgit2() {
  if (!Loaded()) return Fail(Loaded().error());
  return {};
}

const Libgit2& Git() { return Loaded().value(); }

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
  const git_error* error = Git().error_last();
  return error != nullptr && error->message != nullptr ? error->message : "unknown libgit2 error";
}

Result<std::vector<std::string>> DiffPaths(git_repository* repo, git_tree* from, git_tree* to) {
  git_diff* raw_diff = nullptr;
  if (Git().diff_tree_to_tree(&raw_diff, repo, from, to, nullptr) != 0) return Fail(LastGitError());
  DiffPtr diff(raw_diff);
  // Without rename detection a rename is a deletion and an addition: both names, as promised.
  std::set<std::string> paths;
  std::size_t count = Git().diff_num_deltas(diff.get());
  for (std::size_t i = 0; i < count; ++i) {
    const git_diff_delta* delta = Git().diff_get_delta(diff.get(), i);
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
