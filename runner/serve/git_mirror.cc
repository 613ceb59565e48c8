#include "runner/serve/git_mirror.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <set>
#include <string_view>
#include <utility>

#include "runner/atomic_file.h"
#include "runner/backoff.h"

namespace runner::serve {

using git::Git;

namespace {

namespace fs = std::filesystem;

constexpr const char* kRemote = "origin";
constexpr const char* kBranchesRefspec = "+refs/heads/*:refs/heads/*";
constexpr const char* kTagsRefspec = "+refs/tags/*:refs/tags/*";
constexpr const char* kTokenUser = "x-access-token";
constexpr std::string_view kMask = "***";
// How often `cancelled` is polled while ResolveCommit waits between fetches.
constexpr Duration kCancelPoll = std::chrono::milliseconds(20);

// `text` with every occurrence of `secret` replaced by the mask.
std::string MaskSecret(std::string text, const std::string& secret) {
  if (secret.empty()) return text;
  for (std::size_t at = text.find(secret); at != std::string::npos;
       at = text.find(secret, at + kMask.size())) {
    text.replace(at, secret.size(), kMask);
  }
  return text;
}

bool IsFullObjectId(std::string_view sha) {
  return sha.size() == GIT_OID_HEXSZ &&
         std::all_of(sha.begin(), sha.end(), [](unsigned char c) { return std::isxdigit(c) != 0; });
}

std::string OidText(const git_oid* oid) {
  char hex[GIT_OID_HEXSZ + 1];
  Git().oid_tostr(hex, sizeof hex, oid);
  return hex;
}

// `dir` made absolute, without "." or ".." parts or a trailing slash.
fs::path AbsolutePath(const std::string& dir, std::error_code& ec) {
  fs::path path = fs::absolute(dir, ec).lexically_normal();
  return path.has_filename() ? path : path.parent_path();
}

// The URL libgit2 is given for `clone_url`: a URL of a supported scheme without credentials, or
// an existing directory's absolute path. Errors never repeat credentials.
Result<std::string> CheckCloneUrl(const std::string& clone_url) {
  std::size_t scheme_end = clone_url.find("://");
  if (scheme_end == std::string::npos) {
    std::error_code ec;
    fs::path path = AbsolutePath(clone_url, ec);
    if (clone_url.empty() || ec || !fs::is_directory(path, ec)) {
      return Fail("clone URL '" + clone_url +
                  "' is neither an https, http, git or file URL nor the path of a directory");
    }
    return path.string();
  }
  std::string scheme = clone_url.substr(0, scheme_end);
  std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  std::size_t host_start = scheme_end + 3;
  std::size_t host_end = clone_url.find_first_of("/?#", host_start);
  std::string_view authority = std::string_view(clone_url).substr(
      host_start, host_end == std::string::npos ? std::string::npos : host_end - host_start);
  std::size_t at = authority.rfind('@');
  if (at != std::string_view::npos) {
    std::string shown =
        clone_url.substr(0, host_start) + std::string(kMask) + clone_url.substr(host_start + at);
    return Fail("clone URL '" + shown +
                "' holds credentials: remove them from the URL; a token is given through the "
                "repository's token_env");
  }
  if (scheme != "https" && scheme != "http" && scheme != "git" && scheme != "file") {
    return Fail("clone URL '" + clone_url + "': scheme '" + scheme +
                "' is not supported (https, http, git or file)");
  }
  return clone_url;
}

// What the callbacks of one fetch share.
struct FetchState {
  const std::string* token;
  const std::function<bool()>* cancelled;
  bool token_sent = false;
  bool token_refused = false;  // the server asked again after the token was sent
  bool token_missing = false;  // the server asked and there is no token
  bool cancel_seen = false;
};

int ProvideToken(git_credential** out, const char* /*url*/, const char* /*username_from_url*/,
                 unsigned int allowed_types, void* payload) {
  auto* state = static_cast<FetchState*>(payload);
  if (state->token->empty()) {
    state->token_missing = true;
    return GIT_EUSER;
  }
  if (state->token_sent) {
    state->token_refused = true;
    return GIT_EUSER;
  }
  if ((allowed_types & GIT_CREDENTIAL_USERPASS_PLAINTEXT) == 0) return GIT_PASSTHROUGH;
  state->token_sent = true;
  return Git().credential_userpass_plaintext_new(out, kTokenUser, state->token->c_str());
}

bool CancelNow(FetchState* state) {
  if (*state->cancelled && (*state->cancelled)()) state->cancel_seen = true;
  return state->cancel_seen;
}

int OnTransferProgress(const git_indexer_progress* /*stats*/, void* payload) {
  return CancelNow(static_cast<FetchState*>(payload)) ? GIT_EUSER : 0;
}

int OnSidebandProgress(const char* /*text*/, int /*length*/, void* payload) {
  return CancelNow(static_cast<FetchState*>(payload)) ? GIT_EUSER : 0;
}

std::string Plural(int count, std::string_view one, std::string_view many) {
  return std::to_string(count) + " " + std::string(count == 1 ? one : many);
}

Result<git::TreePtr> TreeOf(git_commit* commit) {
  git_tree* raw = nullptr;
  if (Git().commit_tree(&raw, commit) != 0) {
    return Fail("cannot read the tree of commit " + OidText(Git().commit_id(commit)) + ": " +
                git::LastGitError());
  }
  return git::TreePtr(raw);
}

// Creates a bare repository at `dir` whole or not at all: it is made beside it and renamed into
// place, so that an interrupted Open leaves nothing a later Open would refuse.
Result<git::RepoPtr> CreateBare(const fs::path& dir, const std::string& url) {
  std::error_code ec;
  fs::create_directories(dir.parent_path(), ec);
  if (ec) return Fail("cannot create " + dir.parent_path().string() + ": " + ec.message());
  fs::path partial = dir.string() + ".partial";
  fs::remove_all(partial, ec);
  git_repository_init_options options;
  Git().repository_init_options_init(&options, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
  options.flags =
      GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_NO_REINIT | GIT_REPOSITORY_INIT_MKDIR;
  git_repository* raw = nullptr;
  if (Git().repository_init_ext(&raw, partial.c_str(), &options) != 0) {
    return Fail("cannot create the mirror " + partial.string() + ": " + git::LastGitError());
  }
  git::RepoPtr repo(raw);
  git_remote* raw_remote = nullptr;
  int rc = Git().remote_create_with_fetchspec(&raw_remote, repo.get(), kRemote, url.c_str(),
                                              kBranchesRefspec);
  git::RemotePtr remote(raw_remote);
  if (rc == 0) rc = Git().remote_add_fetch(repo.get(), kRemote, kTagsRefspec);
  if (rc != 0) {
    std::string error = git::LastGitError();
    remote.reset();
    repo.reset();
    fs::remove_all(partial, ec);
    return Fail("cannot configure the mirror " + dir.string() + " for " + url + ": " + error);
  }
  remote.reset();
  repo.reset();
  fs::rename(partial, dir, ec);
  if (ec) {
    fs::remove_all(partial, ec);
    return Fail("cannot create the mirror " + dir.string() + ": " + ec.message());
  }
  if (Git().repository_open(&raw, dir.c_str()) != 0) {
    return Fail("cannot open the mirror " + dir.string() + ": " + git::LastGitError());
  }
  return git::RepoPtr(raw);
}

}  // namespace

Result<GitMirror> GitMirror::Open(const std::string& dir, const std::string& clone_url) {
  if (Status loaded = git::EnsureLibgit2(); !loaded) {
    return Fail("cannot open the mirror " + dir + ": " + loaded.error());
  }
  Result<std::string> url = CheckCloneUrl(clone_url);
  if (!url) return Fail(url.error());
  std::error_code ec;
  fs::path path = AbsolutePath(dir, ec);
  if (ec) return Fail("mirror directory '" + dir + "': " + ec.message());

  if (!fs::exists(path, ec)) {
    Result<git::RepoPtr> repo = CreateBare(path, *url);
    if (!repo) return Fail(repo.error());
    return GitMirror(std::move(*repo), path.string(), *url);
  }
  git_repository* raw = nullptr;
  // NO_SEARCH: a directory inside some other repository must not open that one.
  if (Git().repository_open_ext(&raw, path.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr) != 0) {
    return Fail("cannot open the mirror " + path.string() +
                " (it exists but is not a Git repository; remove it to start afresh): " +
                git::LastGitError());
  }
  git::RepoPtr repo(raw);
  if (!Git().repository_is_bare(repo.get())) {
    return Fail("cannot use " + path.string() + " as a mirror: it is not a bare repository");
  }
  git_remote* raw_remote = nullptr;
  if (Git().remote_lookup(&raw_remote, repo.get(), kRemote) != 0) {
    return Fail("cannot read the remote '" + std::string(kRemote) + "' of the mirror " +
                path.string() + ": " + git::LastGitError());
  }
  git::RemotePtr remote(raw_remote);
  const char* known = Git().remote_url(remote.get());
  if ((known == nullptr || *url != known) &&
      Git().remote_set_url(repo.get(), kRemote, url->c_str()) != 0) {
    return Fail("cannot set the URL of the mirror " + path.string() + " to " + *url + ": " +
                git::LastGitError());
  }
  return GitMirror(std::move(repo), path.string(), *url);
}

Status GitMirror::Fetch(const std::string& token) { return FetchUnless(token, nullptr); }

Status GitMirror::FetchUnless(const std::string& token, const std::function<bool()>& cancelled) {
  git_remote* raw_remote = nullptr;
  if (Git().remote_lookup(&raw_remote, repo_.get(), kRemote) != 0) {
    return Fail("cannot read the remote of the mirror " + dir_ + ": " + git::LastGitError());
  }
  git::RemotePtr remote(raw_remote);

  FetchState state{.token = &token, .cancelled = &cancelled};
  git_fetch_options options;
  Git().fetch_options_init(&options, GIT_FETCH_OPTIONS_VERSION);
  options.prune = GIT_FETCH_PRUNE;
  // A token is for the configured host only; anonymous fetches follow what git follows.
  options.follow_redirects = token.empty() ? GIT_REMOTE_REDIRECT_INITIAL : GIT_REMOTE_REDIRECT_NONE;
  options.callbacks.credentials = ProvideToken;
  options.callbacks.transfer_progress = OnTransferProgress;
  options.callbacks.sideband_progress = OnSidebandProgress;
  options.callbacks.payload = &state;
  if (Git().remote_fetch(remote.get(), nullptr, &options, nullptr) == 0) return {};

  std::string where = "cannot fetch " + url_ + " into " + dir_ + ": ";
  if (state.cancel_seen) return Fail(where + "cancelled");
  if (state.token_missing) {
    return Fail(where + "the server asks for credentials and no token was given");
  }
  if (state.token_refused) {
    return Fail(where +
                "the server refused the token (it asked for credentials again after getting it); "
                "check that the token is valid and may read the repository");
  }
  return Fail(MaskSecret(where + git::LastGitError(), token));
}

Result<git::CommitPtr> GitMirror::FindCommit(const std::string& sha) {
  if (!IsFullObjectId(sha)) {
    return Fail("'" + sha + "' is not a commit id (40 hexadecimal digits) in " + url_);
  }
  git_oid oid;
  if (Git().oid_fromstr(&oid, sha.c_str()) != 0) {
    return Fail("'" + sha + "' is not a commit id: " + git::LastGitError());
  }
  return PeelCommit(oid, sha);
}

Result<git::CommitPtr> GitMirror::PeelCommit(const git_oid& oid, const std::string& name) {
  git_object* raw_object = nullptr;
  int rc = Git().object_lookup(&raw_object, repo_.get(), &oid, GIT_OBJECT_ANY);
  if (rc == GIT_ENOTFOUND) return git::CommitPtr();
  if (rc != 0) {
    return Fail("cannot read object " + name + " in the mirror " + dir_ + ": " +
                git::LastGitError());
  }
  git::ObjectPtr object(raw_object);
  git_object* raw_peeled = nullptr;
  if (Git().object_peel(&raw_peeled, object.get(), GIT_OBJECT_COMMIT) != 0) {
    return Fail(name + " in " + url_ + " is a " +
                Git().object_type2string(Git().object_type(raw_object)) +
                ", not a commit or a tag of one: " + git::LastGitError());
  }
  return git::CommitPtr(reinterpret_cast<git_commit*>(raw_peeled));
}

Result<git::CommitPtr> GitMirror::LookupCommit(const std::string& sha) {
  Result<git::CommitPtr> commit = FindCommit(sha);
  if (commit && !*commit) {
    return Fail("commit " + sha + " is not in the mirror " + dir_ + " of " + url_ +
                " (resolve it first, which fetches it)");
  }
  return commit;
}

Result<std::string> GitMirror::ResolveCommit(const std::string& sha, const std::string& token,
                                             const FetchRetry& retry,
                                             const std::function<bool()>& cancelled) {
  Duration delay = retry.first_delay;
  std::string last_error;
  auto after = [](int fetches) { return " after " + Plural(fetches, "fetch", "fetches"); };
  auto stop = [&](int fetches) {
    return Fail("cancelled while waiting for commit " + sha + " from " + url_ + after(fetches));
  };
  for (int fetches = 0;; ++fetches) {
    Result<git::CommitPtr> commit = FindCommit(sha);
    if (!commit) return Fail(commit.error());
    if (*commit) return OidText(Git().commit_id(commit->get()));
    if (fetches >= retry.attempts) {
      return Fail("commit " + sha + " is not in " + url_ + after(fetches) +
                  (last_error.empty() ? "" : "; the last one failed: " + last_error));
    }
    if (fetches > 0) {
      if (!WaitUnlessCancelled(delay, cancelled, kCancelPoll)) return stop(fetches);
      delay = std::min(delay * 2, retry.max_delay);
    }
    if (cancelled && cancelled()) return stop(fetches);
    Status fetched = FetchUnless(token, cancelled);
    if (cancelled && cancelled()) return stop(fetches + 1);
    last_error = fetched ? "" : fetched.error();
  }
}

Result<std::vector<std::string>> GitMirror::ChangedFiles(const std::string& before,
                                                         const std::string& after,
                                                         const std::string& default_branch) {
  Result<git::CommitPtr> target = LookupCommit(after);
  if (!target) return Fail(target.error());
  const git_oid* after_id = Git().commit_id(target->get());

  git::CommitPtr base;
  bool new_branch = before.empty() || before.find_first_not_of('0') == std::string::npos;
  if (!new_branch) {
    Result<git::CommitPtr> found = FindCommit(before);
    if (!found) return Fail(found.error());
    base = std::move(*found);
  }
  if (!base && !default_branch.empty()) {
    std::string ref = "refs/heads/" + default_branch;
    git_oid tip;
    int rc = Git().reference_name_to_id(&tip, repo_.get(), ref.c_str());
    if (rc != 0 && rc != GIT_ENOTFOUND) {
      return Fail("cannot read the default branch " + ref + " in the mirror " + dir_ + ": " +
                  git::LastGitError());
    }
    git_oid merge_base;
    if (rc == 0) rc = Git().merge_base(&merge_base, repo_.get(), after_id, &tip);
    if (rc != 0 && rc != GIT_ENOTFOUND) {
      return Fail("cannot find the merge base of " + after + " and " + ref + " in the mirror " +
                  dir_ + ": " + git::LastGitError());
    }
    if (rc == 0 && !Git().oid_equal(&merge_base, after_id)) {
      Result<git::CommitPtr> found = LookupCommit(OidText(&merge_base));
      if (!found) return Fail(found.error());
      base = std::move(*found);
    }
  }

  Result<git::TreePtr> to = TreeOf(target->get());
  if (!to) return Fail(to.error());
  git::TreePtr from;
  if (base) {
    Result<git::TreePtr> tree = TreeOf(base.get());
    if (!tree) return Fail(tree.error());
    from = std::move(*tree);
  }
  Result<std::vector<std::string>> paths = git::DiffPaths(repo_.get(), from.get(), to->get());
  if (!paths) {
    return Fail("cannot diff " + (base ? OidText(Git().commit_id(base.get())) : "the empty tree") +
                ".." + after + " in the mirror " + dir_ + ": " + paths.error());
  }
  return paths;
}

Result<std::string> GitMirror::RefCommit(const std::string& ref) {
  git_oid tip;
  int rc = Git().reference_name_to_id(&tip, repo_.get(), ref.c_str());
  if (rc == GIT_ENOTFOUND) return std::string();
  if (rc != 0) {
    return Fail("cannot read " + ref + " in the mirror " + dir_ + ": " + git::LastGitError());
  }
  Result<git::CommitPtr> commit = PeelCommit(tip, ref);
  if (!commit) return Fail(commit.error());
  if (!*commit) {
    return Fail(ref + " in the mirror " + dir_ + " names " + OidText(&tip) +
                ", an object the mirror does not hold");
  }
  return OidText(Git().commit_id(commit->get()));
}

Result<std::int64_t> GitMirror::CommitTime(const std::string& commit) {
  Result<git::CommitPtr> found = LookupCommit(commit);
  if (!found) return Fail(found.error());
  return static_cast<std::int64_t>(Git().commit_time(found->get()));
}

Status GitMirror::CheckoutWorktree(const std::string& commit, const std::string& dir) {
  Result<git::CommitPtr> found = LookupCommit(commit);
  if (!found) return Fail(found.error());
  git_oid id = *Git().commit_id(found->get());

  std::error_code ec;
  fs::path path = AbsolutePath(dir, ec);
  if (ec) return Fail("work tree '" + dir + "': " + ec.message());
  if (fs::symlink_status(path, ec).type() != fs::file_type::not_found) {
    return Fail("cannot make a work tree at " + path.string() + ": it already exists");
  }
  if (!fs::is_directory(path.parent_path(), ec)) {
    return Fail("cannot make a work tree at " + path.string() + ": " + path.parent_path().string() +
                " is not a directory");
  }

  std::string where = "cannot make a work tree of " + commit + " at " + path.string() + ": ";
  auto fail = [&](const std::string& message) {
    fs::remove_all(path, ec);
    return Fail(where + message);
  };

  git_repository_init_options options;
  Git().repository_init_options_init(&options, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
  options.flags = GIT_REPOSITORY_INIT_NO_REINIT | GIT_REPOSITORY_INIT_MKDIR;
  git_repository* raw = nullptr;
  if (Git().repository_init_ext(&raw, path.c_str(), &options) != 0) {
    return fail(git::LastGitError());
  }
  std::string git_dir = Git().repository_path(raw);
  Git().repository_free(raw);

  // Written before the repository is opened again, so that its object database sees them.
  std::string objects = std::string(Git().repository_path(repo_.get())) + "objects";
  if (Status written = WriteFileAtomic(git_dir + "objects/info/alternates", objects + "\n",
                                       /*sync=*/false);
      !written) {
    return fail(written.error());
  }
  if (Git().repository_open(&raw, path.c_str()) != 0) return fail(git::LastGitError());
  git::RepoPtr worktree(raw);

  git_object* raw_target = nullptr;
  if (Git().object_lookup(&raw_target, worktree.get(), &id, GIT_OBJECT_COMMIT) != 0) {
    return fail("the commit is not reachable through " + objects + ": " + git::LastGitError());
  }
  git::ObjectPtr target(raw_target);
  git_checkout_options checkout;
  Git().checkout_options_init(&checkout, GIT_CHECKOUT_OPTIONS_VERSION);
  checkout.checkout_strategy = GIT_CHECKOUT_FORCE;
  if (Git().checkout_tree(worktree.get(), target.get(), &checkout) != 0) {
    return fail("checkout failed: " + git::LastGitError());
  }
  if (Git().repository_set_head_detached(worktree.get(), &id) != 0) {
    return fail("cannot detach HEAD: " + git::LastGitError());
  }
  return {};
}

Status RemoveWorktree(const std::string& dir) {
  std::error_code ec;
  if (fs::symlink_status(dir, ec).type() == fs::file_type::not_found) return {};
  if (!fs::is_directory(fs::path(dir) / ".git", ec)) {
    return Fail("not removing " + dir + ": it is not a work tree (no .git directory in it)");
  }
  fs::remove_all(dir, ec);
  if (ec) return Fail("cannot remove the work tree " + dir + ": " + ec.message());
  return {};
}

}  // namespace runner::serve
