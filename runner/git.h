// The libgit2 helpers the build context and `runner serve`'s mirrors share: the library,
// loaded on first use (runner/lazy_library.h), error text, owning pointers, and the paths two
// trees differ in. A runner that opens no repository (a build outside any Git work tree, a
// `runner __step` child) does not map libgit2, which cost 2.3 ms of every start linked.
#pragma once

#include <git2.h>

#include <memory>
#include <string>
#include <vector>

#include "runner/result.h"

namespace runner::git {

// The libgit2 functions runner calls, named as libgit2 names them without `git_`.
#define RUNNER_LIBGIT2_ENTRY_POINTS(X) \
  X(buf_dispose)                       \
  X(checkout_options_init)             \
  X(checkout_tree)                     \
  X(commit_free)                       \
  X(commit_id)                         \
  X(commit_parent)                     \
  X(commit_parentcount)                \
  X(commit_time)                       \
  X(commit_tree)                       \
  X(credential_userpass_plaintext_new) \
  X(diff_free)                         \
  X(diff_get_delta)                    \
  X(diff_num_deltas)                   \
  X(diff_tree_to_tree)                 \
  X(error_last)                        \
  X(fetch_options_init)                \
  X(libgit2_init)                      \
  X(merge_base)                        \
  X(object_free)                       \
  X(object_id)                         \
  X(object_lookup)                     \
  X(object_peel)                       \
  X(object_type)                       \
  X(object_type2string)                \
  X(oid_equal)                         \
  X(oid_fromstr)                       \
  X(oid_tostr)                         \
  X(reference_free)                    \
  X(reference_lookup)                  \
  X(reference_name_to_id)              \
  X(reference_symbolic_target)         \
  X(reference_type)                    \
  X(remote_add_fetch)                  \
  X(remote_create_with_fetchspec)      \
  X(remote_fetch)                      \
  X(remote_free)                       \
  X(remote_lookup)                     \
  X(remote_set_url)                    \
  X(remote_url)                        \
  X(repository_discover)               \
  X(repository_free)                   \
  X(repository_head_detached)          \
  X(repository_init_ext)               \
  X(repository_init_options_init)      \
  X(repository_is_bare)                \
  X(repository_open)                   \
  X(repository_open_ext)               \
  X(repository_path)                   \
  X(repository_set_head_detached)      \
  X(repository_workdir)                \
  X(revparse_single)                   \
  X(tree_free)

struct Libgit2 {
#define RUNNER_LIBGIT2_ENTRY_POINT(name) decltype(&::git_##name) name;
  RUNNER_LIBGIT2_ENTRY_POINTS(RUNNER_LIBGIT2_ENTRY_POINT)
#undef RUNNER_LIBGIT2_ENTRY_POINT
};

// Loads libgit2 (the soname of the headers built against) and sets up its global state, once per
// process; thread-safe. It is never shut down, because other threads may still be using it at
// exit. Fails "cannot load libgit2.so.1.5 (Debian's libgit2-1.5): why", the same each call.
Status EnsureLibgit2();

// The loaded library. REQUIRES: EnsureLibgit2() succeeded (so every call made with a libgit2
// object, which only libgit2 hands out, may use it).
const Libgit2& Git();

// Whether `dir` or a directory above it may hold a Git repository: a `.git` entry, or a bare
// repository's HEAD, objects and refs. False: libgit2 would find none there, so a caller need
// not set it up (which parses the system's CA certificates, a cost paid on every run).
bool MayHoldRepository(const std::string& dir);

// libgit2's message for the last failure on this thread ("unknown libgit2 error" when it set
// none).
std::string LastGitError();

// Owners of libgit2 objects, freed with the matching git_*_free.
template <auto Libgit2::*Free>
struct Deleter {
  template <class T>
  void operator()(T* p) const {
    (Git().*Free)(p);
  }
};
using RepoPtr = std::unique_ptr<git_repository, Deleter<&Libgit2::repository_free>>;
using RefPtr = std::unique_ptr<git_reference, Deleter<&Libgit2::reference_free>>;
using ObjectPtr = std::unique_ptr<git_object, Deleter<&Libgit2::object_free>>;
using CommitPtr = std::unique_ptr<git_commit, Deleter<&Libgit2::commit_free>>;
using TreePtr = std::unique_ptr<git_tree, Deleter<&Libgit2::tree_free>>;
using DiffPtr = std::unique_ptr<git_diff, Deleter<&Libgit2::diff_free>>;
using RemotePtr = std::unique_ptr<git_remote, Deleter<&Libgit2::remote_free>>;

// The paths that differ between `from` (null: the empty tree) and `to`, sorted and unique:
// added, modified and deleted files, and both names of a renamed one. The error is libgit2's
// message alone: the caller says what was diffed.
Result<std::vector<std::string>> DiffPaths(git_repository* repo, git_tree* from, git_tree* to);

}  // namespace runner::git
