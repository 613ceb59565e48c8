// The Git side of `runner serve` (SPEC section 9): a bare mirror per repository that each push
// is fetched into with libgit2, the commit the push names, the files it changed, and a fresh
// work tree to build it in.
#pragma once

#include <git2.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "runner/git.h"
#include "runner/pipeline.h"
#include "runner/result.h"

namespace runner::serve {

// How long ResolveCommit keeps fetching while the pushed commit is missing: GitHub may deliver
// the webhook before the commit can be fetched.
struct FetchRetry {
  int attempts = 6;                                // fetches in all while the commit is missing
  Duration first_delay = std::chrono::seconds(1);  // wait before the second fetch
  Duration max_delay = std::chrono::seconds(30);   // the wait doubles up to this
};

// A bare mirror of one repository (its branches and tags) in a directory of its own, and the
// work trees built from it. Move-only; one per repository. Not thread-safe: the caller serialises
// the calls on one mirror (different mirrors may be used from different threads).
//
// Every `commit` or `sha` argument is a full 40-digit hexadecimal object id; an annotated tag's
// id stands for the commit it points at. Errors name the mirror's URL or directory and the id,
// and include libgit2's message; a token never appears in them.
class GitMirror {
 public:
  GitMirror(GitMirror&&) = default;
  GitMirror& operator=(GitMirror&&) = default;
  GitMirror(const GitMirror&) = delete;
  GitMirror& operator=(const GitMirror&) = delete;

  // Opens the bare mirror at `dir`, or creates it (and missing parents) when `dir` does not
  // exist; an existing directory that is not a bare Git repository is refused. `clone_url` is an
  // https, http, git or file URL, or the path of a repository (made absolute). A URL with
  // credentials in it (`user:pass@`, `token@`) is refused, without repeating them: tokens go
  // through Fetch only. The mirror remembers the URL as its remote `origin` (an existing
  // mirror's is updated when it differs).
  static Result<GitMirror> Open(const std::string& dir, const std::string& clone_url);

  // Fetches +refs/heads/*:refs/heads/* and +refs/tags/*:refs/tags/*, pruning branches and tags
  // the remote no longer has; an existing mirror fetches only what it lacks. `token` empty:
  // anonymous. A token is handed to libgit2 only in its credential callback (user
  // "x-access-token", the token as password), only when the server asks for credentials, and at
  // most once per fetch: a server that asks again has refused it. With a token, no redirect to
  // another host is followed. The token never reaches a URL, the mirror's config, FETCH_HEAD,
  // the refs, their logs or an error message.
  Status Fetch(const std::string& token);

  // The commit that `sha` names (a commit, or an annotated tag peeled to its commit). While the
  // mirror lacks it, fetches up to `retry.attempts` times, the first at once and then after
  // waits that start at `retry.first_delay` and double up to `retry.max_delay` (right after a
  // push the commit may not be there yet). `cancelled` is polled during the waits and fetches;
  // when it holds, the call returns an error at once. The errors name the sha and the fetches
  // made (and the last fetch's error).
  Result<std::string> ResolveCommit(const std::string& sha, const std::string& token,
                                    const FetchRetry& retry,
                                    const std::function<bool()>& cancelled);

  // The paths changed from `before` to `after` (both in the mirror), sorted and unique: added,
  // modified and deleted files, and both names of a renamed one. `before` empty or all zeros (a
  // new branch), or missing from the mirror (a force push over history never fetched): against
  // the merge base of `after` and refs/heads/`default_branch`. When there is nothing to compare
  // against (no such branch, no merge base, or `after` already on it, as on the default
  // branch's own first push): every file of `after`.
  Result<std::vector<std::string>> ChangedFiles(const std::string& before, const std::string& after,
                                                const std::string& default_branch);

  // The commit `ref` (refs/heads/NAME) points at in the mirror, as of the last fetch; empty when
  // the mirror has no such ref.
  Result<std::string> RefCommit(const std::string& ref);

  // The committer time of `commit`, in seconds since the epoch.
  Result<std::int64_t> CommitTime(const std::string& commit);

  // Makes a fresh work tree at `dir`, which must not exist (its parent must): a non-bare Git
  // repository whose HEAD is detached at exactly `commit` (never a branch tip), with its files
  // and index checked out, so that `git status` is clean there. Its objects are borrowed from
  // the mirror (objects/info/alternates; nothing is copied), so the mirror must stay in place
  // and must not be pruned while the work tree exists. It has no remote. On failure nothing is
  // left at `dir`.
  Status CheckoutWorktree(const std::string& commit, const std::string& dir);

 private:
  GitMirror(git::RepoPtr repo, std::string dir, std::string url)
      : repo_(std::move(repo)), dir_(std::move(dir)), url_(std::move(url)) {}

  // Fetch, aborted when `cancelled` holds.
  Status FetchUnless(const std::string& token, const std::function<bool()>& cancelled);
  // The commit `sha` names, null when the mirror lacks the object; an error when `sha` is not a
  // full object id or names something that is not a commit.
  Result<git::CommitPtr> FindCommit(const std::string& sha);
  // FindCommit's lookup and peel, for an id already parsed; `name` (the id or the ref that gave
  // it) names it in errors.
  Result<git::CommitPtr> PeelCommit(const git_oid& oid, const std::string& name);
  // As FindCommit, but a missing object is an error too.
  Result<git::CommitPtr> LookupCommit(const std::string& sha);

  git::RepoPtr repo_;
  std::string dir_;  // absolute
  std::string url_;  // as given, or a path made absolute
};

// Removes a work tree made by CheckoutWorktree: the whole directory. A directory without a
// `.git` directory in it is refused (not removed); one that does not exist is fine.
Status RemoveWorktree(const std::string& dir);

}  // namespace runner::serve
