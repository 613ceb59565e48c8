#include "runner/build_context.h"

#include <fcntl.h>
#include <git2.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <utility>

#include "runner/atomic_file.h"
#include "runner/fs.h"
#include "runner/git.h"

namespace runner {
namespace {

constexpr std::string_view kNumberFile = "build-number";
constexpr std::string_view kLockFile = "build-number.lock";
constexpr std::size_t kShortCommitLength = 7;

// The string members, in declaration order, under the names BuildContextToJson gives them.
constexpr std::pair<std::string_view, std::string BuildContext::*> kStringFields[] = {
    {"project", &BuildContext::project},     {"branch", &BuildContext::branch},
    {"commit", &BuildContext::commit},       {"short_commit", &BuildContext::short_commit},
    {"number", &BuildContext::number},       {"id", &BuildContext::id},
    {"event", &BuildContext::event},         {"trigger", &BuildContext::trigger},
    {"workspace", &BuildContext::workspace},
};

using git::CommitPtr;
using git::EnsureLibgit2;
using git::Git;
using git::LastGitError;
using git::MayHoldRepository;
using git::ObjectPtr;
using git::RefPtr;
using git::RepoPtr;
using git::TreePtr;

struct Buf {
  git_buf buf = GIT_BUF_INIT;
  ~Buf() { Git().buf_dispose(&buf); }
};

std::string Errno(std::string_view what, const std::string& path) {
  return std::string(what) + " " + path + ": " + ErrnoText(errno);
}

// A whole non-negative decimal number, nothing else.
std::optional<std::int64_t> ParseWholeNumber(std::string_view text) {
  if (text.empty()) return std::nullopt;
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 0) return std::nullopt;
  // from_chars accepts a leading '-'; value < 0 catches it, "-0" is caught here.
  if (text.front() == '-') return std::nullopt;
  return value;
}

Result<std::string> PositiveNumber(std::string_view source, const std::string& value) {
  std::optional<std::int64_t> number = ParseWholeNumber(value);
  if (!number || *number <= 0) {
    return Fail(std::string(source) + " is '" + value + "': expected a positive whole number");
  }
  return std::to_string(*number);
}

Result<std::int64_t> ReadNumberFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return 0;
    return Fail(Errno("cannot open", path));
  }
  std::string text;
  char chunk[256];
  for (;;) {
    ssize_t n = ::read(fd.get(), chunk, sizeof chunk);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Fail(Errno("cannot read", path));
    }
    if (n == 0) break;
    text.append(chunk, static_cast<std::size_t>(n));
    if (text.size() > 64) break;  // no valid counter is this long
  }
  std::string_view trimmed = text;
  while (!trimmed.empty() && (trimmed.back() == '\n' || trimmed.back() == ' ' ||
                              trimmed.back() == '\r' || trimmed.back() == '\t')) {
    trimmed.remove_suffix(1);
  }
  std::optional<std::int64_t> number = ParseWholeNumber(trimmed);
  if (!number) {
    return Fail(path + " contains '" + std::string(trimmed.substr(0, 32)) +
                "', not a build number: fix it (one whole number) or delete it to start at 1");
  }
  return *number;
}

// Holds an exclusive flock on STATE_DIR/build-number.lock until destroyed.
Result<UniqueFd> LockState(const std::string& state_dir) {
  std::error_code ec;
  std::filesystem::create_directories(state_dir, ec);
  if (ec) return Fail("cannot create state directory " + state_dir + ": " + ec.message());
  std::string lock_path = state_dir + "/" + std::string(kLockFile);
  UniqueFd fd(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd.valid()) return Fail(Errno("cannot open", lock_path));
  while (::flock(fd.get(), LOCK_EX) != 0) {
    if (errno != EINTR) return Fail(Errno("cannot lock", lock_path));
  }
  // Closing the descriptor releases the lock.
  return fd;
}

std::string StripTrailingSlashes(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

std::string LastComponent(std::string_view path) {
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  std::size_t slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

// What a CI system says about the build; empty fields are left to the local repository.
struct CiInfo {
  std::string branch;
  std::string commit;
  std::optional<std::string> number;
  std::string event;
  std::string trigger;
};

std::string NonEmpty(const Environment& env, std::string_view name) {
  return Lookup(env, name).value_or("");
}

Result<std::optional<CiInfo>> DetectCi(const Environment& env) {
  std::optional<std::string> build_number = Lookup(env, "BUILD_NUMBER");
  if (build_number && (Lookup(env, "JENKINS_URL") || Lookup(env, "JOB_NAME"))) {
    CiInfo ci;
    Result<std::string> number = PositiveNumber("BUILD_NUMBER", *build_number);
    if (!number) return Fail(number.error());
    ci.number = *number;
    ci.commit = NonEmpty(env, "GIT_COMMIT");
    ci.branch = NonEmpty(env, "GIT_BRANCH");
    if (ci.branch.starts_with("origin/")) ci.branch.erase(0, std::string_view("origin/").size());
    if (ci.branch.empty()) ci.branch = NonEmpty(env, "BRANCH_NAME");
    ci.trigger = "jenkins";
    if (Lookup(env, "CHANGE_ID")) {
      ci.event = "pull_request";
    } else if (Lookup(env, "TAG_NAME")) {
      ci.event = "tag";
    } else {
      ci.event = "push";
    }
    return ci;
  }
  if (Lookup(env, "GITHUB_ACTIONS")) {
    CiInfo ci;
    if (std::optional<std::string> run = Lookup(env, "GITHUB_RUN_NUMBER")) {
      Result<std::string> number = PositiveNumber("GITHUB_RUN_NUMBER", *run);
      if (!number) return Fail(number.error());
      ci.number = *number;
    }
    ci.commit = NonEmpty(env, "GITHUB_SHA");
    ci.branch = NonEmpty(env, "GITHUB_REF_NAME");
    ci.trigger = "github-actions";
    std::string event = NonEmpty(env, "GITHUB_EVENT_NAME");
    if (NonEmpty(env, "GITHUB_REF_TYPE") == "tag") {
      ci.event = "tag";
    } else if (event == "push") {
      ci.event = "push";
    } else if (event == "pull_request" || event == "pull_request_target") {
      ci.event = "pull_request";
    } else {
      ci.event = "manual";
    }
    return ci;
  }
  return std::nullopt;
}

// The repository containing `dir`, null when there is none.
Result<RepoPtr> OpenRepository(const std::string& dir) {
  if (!MayHoldRepository(dir)) return RepoPtr();
  if (Status loaded = EnsureLibgit2(); !loaded) {
    return Fail("cannot open the Git repository at " + dir + ": " + loaded.error());
  }
  git_repository* raw = nullptr;
  int rc = Git().repository_open_ext(&raw, dir.c_str(), 0, nullptr);
  RepoPtr repo(raw);
  if (rc == GIT_ENOTFOUND) return RepoPtr();
  if (rc != 0) return Fail("cannot open the Git repository at " + dir + ": " + LastGitError());
  return repo;
}

// The branch HEAD is on: its short name, even when it has no commit yet; "detached" when HEAD
// points straight at a commit.
Result<std::string> HeadBranch(git_repository* repo) {
  int detached = Git().repository_head_detached(repo);
  if (detached == 1) return std::string("detached");
  git_reference* raw = nullptr;
  if (Git().reference_lookup(&raw, repo, "HEAD") != 0) {
    return Fail("cannot read HEAD of the Git repository: " + LastGitError());
  }
  RefPtr head(raw);
  if (Git().reference_type(head.get()) != GIT_REFERENCE_SYMBOLIC) return std::string("detached");
  std::string target = Git().reference_symbolic_target(head.get());
  constexpr std::string_view kHeads = "refs/heads/";
  if (target.starts_with(kHeads)) return target.substr(kHeads.size());
  return target;
}

// HEAD's full SHA, empty on an unborn branch.
std::string HeadCommit(git_repository* repo) {
  git_oid oid;
  if (Git().reference_name_to_id(&oid, repo, "HEAD") != 0) return "";
  char hex[GIT_OID_HEXSZ + 1];
  Git().oid_tostr(hex, sizeof hex, &oid);
  return hex;
}

// The commit named `commit` (HEAD when empty), or null when the repository does not have it.
CommitPtr FindCommit(git_repository* repo, const std::string& commit) {
  git_object* raw_object = nullptr;
  if (Git().revparse_single(&raw_object, repo, commit.empty() ? "HEAD" : commit.c_str()) != 0) {
    return nullptr;
  }
  ObjectPtr object(raw_object);
  git_object* raw_peeled = nullptr;
  if (Git().object_peel(&raw_peeled, object.get(), GIT_OBJECT_COMMIT) != 0) return nullptr;
  return CommitPtr(reinterpret_cast<git_commit*>(raw_peeled));
}

// Files `target` changed against its first parent; every file of a root commit.
Result<std::vector<std::string>> ChangedFiles(git_repository* repo, git_commit* target,
                                              const std::string& commit) {
  git_tree* raw_tree = nullptr;
  if (Git().commit_tree(&raw_tree, target) != 0) {
    return Fail("cannot read the tree of commit " + commit + ": " + LastGitError());
  }
  TreePtr tree(raw_tree);
  // A root commit is diffed against the empty tree, so every file it holds counts as changed.
  TreePtr parent_tree;
  if (Git().commit_parentcount(target) > 0) {
    git_commit* raw_parent = nullptr;
    if (Git().commit_parent(&raw_parent, target, 0) != 0) {
      return Fail("cannot read the parent of commit " + commit + ": " + LastGitError());
    }
    CommitPtr parent(raw_parent);
    git_tree* raw_parent_tree = nullptr;
    if (Git().commit_tree(&raw_parent_tree, parent.get()) != 0) {
      return Fail("cannot read the parent tree of commit " + commit + ": " + LastGitError());
    }
    parent_tree.reset(raw_parent_tree);
  }

  Result<std::vector<std::string>> paths = git::DiffPaths(repo, parent_tree.get(), tree.get());
  if (!paths) return Fail("cannot diff commit " + commit + ": " + paths.error());
  return paths;
}

}  // namespace

std::optional<std::string> BuildContext::Field(std::string_view field) const {
  if (field == "project") return project;
  if (field == "branch") return branch;
  if (field == "commit") return commit;
  if (field == "short_commit") return short_commit;
  if (field == "number") return number;
  if (field == "id") return id;
  if (field == "event") return event;
  if (field == "trigger") return trigger;
  if (field == "workspace") return workspace;
  return std::nullopt;
}

std::string SanitizeIdPart(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    bool keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                c == '.' || c == '_' || c == '-';
    if (!keep) c = '-';
  }
  return out;
}

std::string BuildId(std::string_view project, std::string_view branch, std::string_view number) {
  return SanitizeIdPart(project) + "-" + SanitizeIdPart(branch) + "-" + std::string(number);
}

Result<std::int64_t> NextBuildNumber(const std::string& state_dir) {
  Result<UniqueFd> lock = LockState(state_dir);
  if (!lock) return Fail(lock.error());
  std::string path = state_dir + "/" + std::string(kNumberFile);
  Result<std::int64_t> current = ReadNumberFile(path);
  if (!current) return current;
  std::int64_t next = *current + 1;
  // The directory is synced too: the rename itself must survive a crash, or a number could
  // be handed out twice.
  if (Status written = WriteFileAtomic(path, std::to_string(next) + "\n", /*sync=*/true,
                                       /*sync_directory=*/true);
      !written) {
    return Fail(written.error());
  }
  return next;
}

nlohmann::ordered_json BuildContextToJson(const BuildContext& context) {
  nlohmann::ordered_json json = nlohmann::ordered_json::object();
  for (const auto& [name, member] : kStringFields) json[std::string(name)] = context.*member;
  json["changed_files"] = context.changed_files ? nlohmann::ordered_json(*context.changed_files)
                                                : nlohmann::ordered_json(nullptr);
  json["commit_time"] = context.commit_time ? nlohmann::ordered_json(*context.commit_time)
                                            : nlohmann::ordered_json(nullptr);
  return json;
}

Result<BuildContext> BuildContextFromJson(const nlohmann::ordered_json& json) {
  if (!json.is_object()) return Fail("build context: expected an object, got " + json.dump());
  BuildContext context;
  for (const auto& [name, member] : kStringFields) {
    auto it = json.find(std::string(name));
    if (it == json.end()) return Fail("build context: missing '" + std::string(name) + "'");
    if (!it->is_string()) {
      return Fail("build context: '" + std::string(name) + "' must be a string");
    }
    context.*member = it->get<std::string>();
  }
  if (auto it = json.find("changed_files"); it != json.end() && !it->is_null()) {
    if (!it->is_array()) return Fail("build context: 'changed_files' must be a list of strings");
    std::vector<std::string> files;
    for (const auto& file : *it) {
      if (!file.is_string()) {
        return Fail("build context: 'changed_files' must be a list of strings");
      }
      files.push_back(file.get<std::string>());
    }
    context.changed_files = std::move(files);
  }
  if (auto it = json.find("commit_time"); it != json.end() && !it->is_null()) {
    if (!it->is_number_integer())
      return Fail("build context: 'commit_time' must be a whole number");
    context.commit_time = it->get<std::int64_t>();
  }
  return context;
}

Result<std::int64_t> PeekBuildNumber(const std::string& state_dir) {
  Result<std::int64_t> current = ReadNumberFile(state_dir + "/" + std::string(kNumberFile));
  if (!current) return current;
  return *current + 1;
}

std::optional<std::string> GitTopLevel(const std::string& dir) {
  // Without libgit2 the build context, which opens the same repository, says why.
  if (!MayHoldRepository(dir) || !EnsureLibgit2()) return std::nullopt;
  Buf found;
  if (Git().repository_discover(&found.buf, dir.c_str(), 0, nullptr) != 0) return std::nullopt;
  git_repository* raw = nullptr;
  if (Git().repository_open(&raw, found.buf.ptr) != 0) return std::nullopt;
  RepoPtr repo(raw);
  const char* workdir = Git().repository_workdir(repo.get());
  if (workdir == nullptr) return std::nullopt;
  return StripTrailingSlashes(workdir);
}

Result<BuildContext> DetectBuildContext(const ContextRequest& request) {
  BuildContext context;
  context.workspace = request.workspace;

  Result<std::optional<CiInfo>> ci = DetectCi(request.env);
  if (!ci) return Fail(ci.error());

  Result<RepoPtr> repo = OpenRepository(request.workspace);
  if (!repo) return Fail(repo.error());

  // Branch and commit: the flag, then CI, then the local repository.
  if (request.branch) {
    context.branch = *request.branch;
  } else if (*ci && !(*ci)->branch.empty()) {
    context.branch = (*ci)->branch;
  } else if (*repo) {
    Result<std::string> branch = HeadBranch(repo->get());
    if (!branch) return Fail(branch.error());
    context.branch = *branch;
  } else {
    context.branch = "unknown";
  }
  if (request.commit) {
    context.commit = *request.commit;
  } else if (*ci && !(*ci)->commit.empty()) {
    context.commit = (*ci)->commit;
  } else if (*repo) {
    context.commit = HeadCommit(repo->get());
  }
  context.short_commit = context.commit.substr(0, kShortCommitLength);

  if (*repo) {
    if (CommitPtr target = FindCommit(repo->get(), context.commit)) {
      Result<std::vector<std::string>> changed =
          ChangedFiles(repo->get(), target.get(), context.commit);
      if (!changed) return Fail(changed.error());
      context.changed_files = std::move(*changed);
      context.commit_time = Git().commit_time(target.get());
    }
  }

  context.event = *ci ? (*ci)->event : "manual";
  context.trigger = *ci ? (*ci)->trigger : "local";

  if (!request.pipeline_project.empty()) {
    context.project = request.pipeline_project;
  } else if (std::string job = LastComponent(NonEmpty(request.env, "JOB_NAME")); !job.empty()) {
    context.project = job;
  } else {
    context.project = LastComponent(request.workspace);
  }

  // Last, so that a run failing detection above does not use up a local number.
  if (request.number) {
    Result<std::string> number = PositiveNumber("--build-number", *request.number);
    if (!number) return Fail(number.error());
    context.number = *number;
  } else if (*ci && (*ci)->number) {
    context.number = *(*ci)->number;
  } else {
    Result<std::int64_t> number = request.allocate_number ? NextBuildNumber(request.state_dir)
                                                          : PeekBuildNumber(request.state_dir);
    if (!number) return Fail(number.error());
    context.number = std::to_string(*number);
  }

  context.id = BuildId(context.project, context.branch, context.number);

  return context;
}

}  // namespace runner
