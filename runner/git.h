// The libgit2 helpers the build context and `runner serve`'s mirrors share: set-up, error
// text, owning pointers, and the paths two trees differ in.
#pragma once

#include <git2.h>

#include <memory>
#include <string>
#include <vector>

#include "runner/result.h"

namespace runner::git {

// Sets up libgit2's global state once per process. Thread-safe. It is never shut down, because
// other threads may still be using it at exit.
void EnsureLibgit2();

// Whether `dir` or a directory above it may hold a Git repository: a `.git` entry, or a bare
// repository's HEAD, objects and refs. False: libgit2 would find none there, so a caller need
// not set it up (which parses the system's CA certificates, a cost paid on every run).
bool MayHoldRepository(const std::string& dir);

// libgit2's message for the last failure on this thread ("unknown libgit2 error" when it set
// none).
std::string LastGitError();

// Owners of libgit2 objects, freed with the matching git_*_free.
template <class T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using RepoPtr = std::unique_ptr<git_repository, Deleter<git_repository, git_repository_free>>;
using RefPtr = std::unique_ptr<git_reference, Deleter<git_reference, git_reference_free>>;
using ObjectPtr = std::unique_ptr<git_object, Deleter<git_object, git_object_free>>;
using CommitPtr = std::unique_ptr<git_commit, Deleter<git_commit, git_commit_free>>;
using TreePtr = std::unique_ptr<git_tree, Deleter<git_tree, git_tree_free>>;
using DiffPtr = std::unique_ptr<git_diff, Deleter<git_diff, git_diff_free>>;
using RemotePtr = std::unique_ptr<git_remote, Deleter<git_remote, git_remote_free>>;

// The paths that differ between `from` (null: the empty tree) and `to`, sorted and unique:
// added, modified and deleted files, and both names of a renamed one. The error is libgit2's
// message alone: the caller says what was diffed.
Result<std::vector<std::string>> DiffPaths(git_repository* repo, git_tree* from, git_tree* to);

}  // namespace runner::git
