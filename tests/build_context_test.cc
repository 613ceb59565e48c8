#include "runner/build_context.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace runner {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A fresh directory, removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "build_context_test.XXXXXX").string();
    char* made = ::mkdtemp(pattern.data());
    EXPECT_NE(made, nullptr);
    path_ = fs::canonical(pattern).string();
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Runs git in `dir` with a fixed identity and no user or system configuration, arguments passed
// straight to execvp (no shell). Returns its standard output without the final newline.
std::string Git(const std::string& dir, std::initializer_list<std::string> args) {
  int out[2];
  EXPECT_EQ(::pipe(out), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::close(out[0]);
    ::close(out[1]);
    if (::chdir(dir.c_str()) != 0) ::_exit(127);
    ::setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
    ::setenv("GIT_CONFIG_GLOBAL", "/dev/null", 1);
    ::setenv("GIT_AUTHOR_NAME", "Test", 1);
    ::setenv("GIT_AUTHOR_EMAIL", "test@example.com", 1);
    ::setenv("GIT_COMMITTER_NAME", "Test", 1);
    ::setenv("GIT_COMMITTER_EMAIL", "test@example.com", 1);
    std::vector<std::string> argv = {"git", "-c", "init.defaultBranch=main", "-c",
                                     "commit.gpgsign=false"};
    argv.insert(argv.end(), args);
    std::vector<char*> c_argv;
    for (std::string& arg : argv) c_argv.push_back(arg.data());
    c_argv.push_back(nullptr);
    ::execvp("git", c_argv.data());
    ::_exit(127);
  }
  ::close(out[1]);
  std::string output;
  char chunk[4096];
  ssize_t n;
  while ((n = ::read(out[0], chunk, sizeof chunk)) > 0) output.append(chunk, n);
  ::close(out[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  std::string joined;
  for (const std::string& arg : args) joined += " " + arg;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "git" << joined;
  while (!output.empty() && output.back() == '\n') output.pop_back();
  return output;
}

void WriteFile(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << text;
}

// A repository at DIR/repo with one commit holding a.txt, b.txt, c.txt and d/e.txt.
std::string MakeRepo(const TempDir& temp) {
  std::string repo = temp.path() + "/repo";
  fs::create_directories(repo);
  Git(repo, {"init", "-q"});
  WriteFile(repo + "/a.txt", "a\n");
  WriteFile(repo + "/b.txt", "b\n");
  WriteFile(repo + "/c.txt", "a file long enough to be recognised as renamed\n");
  WriteFile(repo + "/d/e.txt", "e\n");
  Git(repo, {"add", "-A"});
  Git(repo, {"commit", "-q", "-m", "root"});
  return repo;
}

ContextRequest Request(const std::string& workspace, const TempDir& temp) {
  ContextRequest request;
  request.workspace = workspace;
  request.state_dir = temp.path() + "/state";
  return request;
}

bool AnyFileNamed(const std::string& root, const std::string& name) {
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (entry.path().filename() == name) return true;
  }
  return false;
}

TEST(SanitizeIdPartTest, KeepsSafeCharactersAndReplacesTheRest) {
  EXPECT_EQ(SanitizeIdPart("feature/login"), "feature-login");
  EXPECT_EQ(SanitizeIdPart("v1.2_rc-3"), "v1.2_rc-3");
  EXPECT_EQ(SanitizeIdPart("x$(touch PWNED)`id`\n'\""), "x--touch-PWNED--id----");
  EXPECT_EQ(SanitizeIdPart(""), "");
}

TEST(BuildContextTest, FieldReturnsEveryBuildField) {
  BuildContext context{.project = "p",
                       .branch = "b",
                       .commit = "c",
                       .short_commit = "s",
                       .number = "7",
                       .id = "i",
                       .event = "push",
                       .trigger = "local",
                       .workspace = "/w",
                       .changed_files = std::nullopt,
                       .commit_time = std::nullopt};
  EXPECT_EQ(context.Field("project"), "p");
  EXPECT_EQ(context.Field("branch"), "b");
  EXPECT_EQ(context.Field("commit"), "c");
  EXPECT_EQ(context.Field("short_commit"), "s");
  EXPECT_EQ(context.Field("number"), "7");
  EXPECT_EQ(context.Field("id"), "i");
  EXPECT_EQ(context.Field("event"), "push");
  EXPECT_EQ(context.Field("trigger"), "local");
  EXPECT_EQ(context.Field("workspace"), "/w");
  EXPECT_EQ(context.Field("changed_files"), std::nullopt);
  EXPECT_EQ(context.Field("nope"), std::nullopt);
}

TEST(DetectBuildContextTest, LocalRepositoryGivesBranchCommitAndNumber) {
  TempDir temp;
  std::string repo = MakeRepo(temp);
  std::string head = Git(repo, {"rev-parse", "HEAD"});

  Result<BuildContext> context = DetectBuildContext(Request(repo, temp));
  ASSERT_TRUE(context) << context.error();
  EXPECT_EQ(context->branch, "main");
  EXPECT_EQ(context->commit, head);
  EXPECT_EQ(context->short_commit, head.substr(0, 7));
  EXPECT_EQ(context->commit_time, std::stoll(Git(repo, {"log", "-1", "--format=%ct"})));
  EXPECT_EQ(context->number, "1");
  EXPECT_EQ(context->project, "repo");
  EXPECT_EQ(context->id, "repo-main-1");
  EXPECT_EQ(context->event, "manual");
  EXPECT_EQ(context->trigger, "local");
  EXPECT_EQ(context->workspace, repo);

  Git(repo, {"checkout", "-q", "-b", "feature/login"});
  ContextRequest request = Request(repo + "/d", temp);
  request.pipeline_project = "orders";
  context = DetectBuildContext(request);
  ASSERT_TRUE(context) << context.error();
  EXPECT_EQ(context->branch, "feature/login");
  EXPECT_EQ(context->number, "2");
  EXPECT_EQ(context->project, "orders");
  EXPECT_EQ(context->id, "orders-feature-login-2");
}

TEST(DetectBuildContextTest, DetachedHead) {
  TempDir temp;
  std::string repo = MakeRepo(temp);
  std::string head = Git(repo, {"rev-parse", "HEAD"});
  Git(repo, {"checkout", "-q", "--detach", "HEAD"});

  Result<BuildContext> context = DetectBuildContext(Request(repo, temp));
  ASSERT_TRUE(context) << context.error();
  EXPECT_EQ(context->branch, "detached");
  EXPECT_EQ(context->commit, head);
}

TEST(DetectBuildContextTest, UnbornBranchKeepsItsName) {
  TempDir temp;
  std::string repo = temp.path() + "/fresh";
  fs::create_directories(repo);
  Git(repo, {"init", "-q"});
  Git(repo, {"checkout", "-q", "-b", "start"});

  Result<BuildContext> context = DetectBuildContext(Request(repo, temp));
  ASSERT_TRUE(context) << context.error();
  EXPECT_EQ(context->branch, "start");
  EXPECT_EQ(context->commit, "");
  EXPECT_EQ(context->short_commit, "");
  EXPECT_EQ(context->changed_files, std::nullopt);
  EXPECT_EQ(context->commit_time, std::nullopt);
}

TEST(DetectBuildContextTest, ChangedFilesOfASecondCommit) {
  TempDir temp;
  std::string repo = MakeRepo(temp);
  std::string root = Git(repo, {"rev-parse", "HEAD"});
  WriteFile(repo + "/a.txt", "a changed\n");
  WriteFile(repo + "/d/new.txt", "new\n");
  Git(repo, {"rm", "-q", "b.txt"});
  Git(repo, {"mv", "c.txt", "renamed.txt"});
  Git(repo, {"add", "-A"});
  Git(repo, {"commit", "-q", "-m", "second"});

  Result<BuildContext> context = DetectBuildContext(Request(repo, temp));
  ASSERT_TRUE(context) << context.error();
  ASSERT_TRUE(context->changed_files);
  EXPECT_THAT(*context->changed_files,
              ElementsAre("a.txt", "b.txt", "c.txt", "d/new.txt", "renamed.txt"));

  // The context's commit, not HEAD, decides: here the root commit, whose every file counts.
  ContextRequest request = Request(repo, temp);
  request.commit = root;
  context = DetectBuildContext(request);
  ASSERT_TRUE(context) << context.error();
  EXPECT_EQ(context->commit, root);
  ASSERT_TRUE(context->changed_files);
  EXPECT_THAT(*context->changed_files, ElementsAre("a.txt", "b.txt", "c.txt", "d/e.txt"));
}

TEST(DetectBuildContextTest, RootCommitListsAllFiles) {
  TempDir temp;
  std::string repo = MakeRepo(temp);
  Result<BuildContext> context = DetectBuildContext(Request(repo, temp));
  ASSERT_TRUE(context) << context.error();
  ASSERT_TRUE(context->changed_files);
  EXPECT_THAT(*context->changed_files, ElementsAre("a.txt", "b.txt", "c.txt", "d/e.txt"));
}

TEST(DetectBuildContextTest, UnknownCommitHasNoChangedFiles) {
  TempDir temp;
  std::string repo = MakeRepo(temp);
  ContextRequest request = Request(repo, temp);
  request.commit = "0123456789abcdef0123456789abcdef01234567";
  Result<BuildContext> context = DetectBuildContext(request);
  ASSERT_TRUE(context) << context.error();
  EXPECT_EQ(context->commit, "0123456789abcdef0123456789abcdef01234567");
  EXPECT_EQ(context->short_commit, "0123456");
  EXPECT_EQ(context->changed_files, std::nullopt);
}

TEST(DetectBuildContextTest, NoRepository) {
  TempDir temp;
  if (GitTopLevel(temp.path())) GTEST_SKIP() << "the temporary directory is inside a repository";
  std::string workspace = temp.path() + "/plain";
  fs::create_directories(workspace);

  Result<BuildContext> context = DetectBuildContext(Request(workspace, temp));
  ASSERT_TRUE(context) << context.error();
  EXPECT_EQ(context->branch, "unknown");
  EXPECT_EQ(context->commit, "");
  EXPECT_EQ(context->short_commit, "");
  EXPECT_EQ(context->changed_files, std::nullopt);
  EXPECT_EQ(context->project, "plain");
  EXPECT_EQ(context->id, "plain-unknown-1");
  EXPECT_EQ(context->trigger, "local");
  EXPECT_EQ(context->event, "manual");
}

TEST(DetectBuildContextTest, HostileBranchNamesStayInert) {
  TempDir temp;
  std::string repo = MakeRepo(temp);
  ContextRequest request = Request(repo, temp);
  request.pipeline_project = "proj";
  request.branch = "feature/x$(touch PWNED)";
  Result<BuildContext> context = DetectBuildContext(request);
  ASSERT_TRUE(context) << context.error();
  EXPECT_EQ(context->branch, "feature/x$(touch PWNED)");
  EXPECT_EQ(context->id, "proj-feature-x--touch-PWNED--1");

  // Git forbids spaces in branch names, but not the rest of a command substitution.
  Git(repo, {"checkout", "-q", "-b", "x$(touch${IFS}PWNED)`id`"});
  request.branch.reset();
  context = DetectBuildContext(request);
  ASSERT_TRUE(context) << context.error();
  EXPECT_EQ(context->branch, "x$(touch${IFS}PWNED)`id`");
  EXPECT_EQ(context->id, "proj-x--touch--IFS-PWNED--id--2");

  request.branch = "x$(touch PWNED)`id`\n'\"";
  context = DetectBuildContext(request);
  ASSERT_TRUE(context) << context.error();
  EXPECT_EQ(context->id, "proj-x--touch-PWNED--id-----3");

  EXPECT_FALSE(AnyFileNamed(temp.path(), "PWNED"));
  EXPECT_FALSE(fs::exists("PWNED"));
}

TEST(DetectBuildContextTest, Jenkins) {
  TempDir temp;
  std::string repo = MakeRepo(temp);
  ContextRequest request = Request(repo, temp);
  request.env = {{"BUILD_NUMBER", "158"},
                 {"JOB_NAME", "folder/orders"},
                 {"GIT_BRANCH", "origin/feature/login"},
                 {"GIT_COMMIT", "abcdef0123456789abcdef0123456789abcdef01"}};
  Result<BuildContext> context = DetectBuildContext(request);
  ASSERT_TRUE(context) << context.error();
  EXPECT_EQ(context->project, "orders");
  EXPECT_EQ(context->branch, "feature/login");
  EXPECT_EQ(context->commit, "abcdef0123456789abcdef0123456789abcdef01");
  EXPECT_EQ(context->short_commit, "abcdef0");
  EXPECT_EQ(context->number, "158");
  EXPECT_EQ(context->id, "orders-feature-login-158");
  EXPECT_EQ(context->trigger, "jenkins");
  EXPECT_EQ(context->event, "push");
  // A commit the local clone lacks has no known changes.
  EXPECT_EQ(context->changed_files, std::nullopt);
  // CI numbers leave the local counter alone.
  EXPECT_EQ(PeekBuildNumber(request.state_dir).value(), 1);

  request.env = {{"BUILD_NUMBER", "9"},
                 {"JENKINS_URL", "http://ci/"},
                 {"BRANCH_NAME", "PR-4"},
                 {"CHANGE_ID", "4"}};
  request.pipeline_project = "shop";
  context = DetectBuildContext(request);
  ASSERT_TRUE(context) << context.error();
  EXPECT_EQ(context->branch, "PR-4");
  EXPECT_EQ(context->event, "pull_request");
  EXPECT_EQ(context->project, "shop");
  // Fields Jenkins left empty come from the local repository.
  EXPECT_EQ(context->commit, Git(repo, {"rev-parse", "HEAD"}));
  EXPECT_TRUE(context->changed_files);

  request.env = {{"BUILD_NUMBER", "10"}, {"JENKINS_URL", "http://ci/"}, {"TAG_NAME", "v1"}};
  context = DetectBuildContext(request);
  ASSERT_TRUE(context) << context.error();
  EXPECT_EQ(context->event, "tag");
  EXPECT_EQ(context->branch, "main");

  // BUILD_NUMBER alone is not Jenkins.
  request.env = {{"BUILD_NUMBER", "11"}};
  context = DetectBuildContext(request);
  ASSERT_TRUE(context) << context.error();
  EXPECT_EQ(context->trigger, "local");
  EXPECT_EQ(context->number, "1");
}

TEST(DetectBuildContextTest, GitHubActions) {
  TempDir temp;
  std::string repo = MakeRepo(temp);
  ContextRequest request = Request(repo, temp);
  request.env = {{"GITHUB_ACTIONS", "true"},
                 {"GITHUB_RUN_NUMBER", "42"},
                 {"GITHUB_SHA", "1234567890abcdef1234567890abcdef12345678"},
                 {"GITHUB_REF_NAME", "release/2.0"},
                 {"GITHUB_EVENT_NAME", "push"}};
  request.pipeline_project = "orders";
  Result<BuildContext> context = DetectBuildContext(request);
  ASSERT_TRUE(context) << context.error();
  EXPECT_EQ(context->branch, "release/2.0");
  EXPECT_EQ(context->commit, "1234567890abcdef1234567890abcdef12345678");
  EXPECT_EQ(context->number, "42");
  EXPECT_EQ(context->id, "orders-release-2.0-42");
  EXPECT_EQ(context->trigger, "github-actions");
  EXPECT_EQ(context->event, "push");

  const std::pair<std::string, std::string> kEvents[] = {{"pull_request", "pull_request"},
                                                         {"pull_request_target", "pull_request"},
                                                         {"workflow_dispatch", "manual"},
                                                         {"schedule", "manual"},
                                                         {"release", "manual"}};
  for (const auto& [name, event] : kEvents) {
    request.env["GITHUB_EVENT_NAME"] = name;
    context = DetectBuildContext(request);
    ASSERT_TRUE(context) << context.error();
    EXPECT_EQ(context->event, event) << name;
  }

  request.env["GITHUB_EVENT_NAME"] = "push";
  request.env["GITHUB_REF_TYPE"] = "tag";
  request.env["GITHUB_REF_NAME"] = "v2.0.0";
  context = DetectBuildContext(request);
  ASSERT_TRUE(context) << context.error();
  EXPECT_EQ(context->event, "tag");
  EXPECT_EQ(context->branch, "v2.0.0");
}

TEST(DetectBuildContextTest, FlagsOverrideEnvironment) {
  TempDir temp;
  std::string repo = MakeRepo(temp);
  ContextRequest request = Request(repo, temp);
  request.env = {{"BUILD_NUMBER", "158"},
                 {"JOB_NAME", "folder/orders"},
                 {"GIT_BRANCH", "origin/feature/login"},
                 {"GIT_COMMIT", "abcdef0123456789abcdef0123456789abcdef01"}};
  request.branch = "hotfix";
  request.commit = Git(repo, {"rev-parse", "HEAD"});
  request.number = "7";
  Result<BuildContext> context = DetectBuildContext(request);
  ASSERT_TRUE(context) << context.error();
  EXPECT_EQ(context->branch, "hotfix");
  EXPECT_EQ(context->commit, *request.commit);
  EXPECT_EQ(context->number, "7");
  EXPECT_EQ(context->id, "orders-hotfix-7");
  EXPECT_EQ(context->trigger, "jenkins");
  EXPECT_TRUE(context->changed_files);
}

TEST(DetectBuildContextTest, BadNumbersAreErrors) {
  TempDir temp;
  ContextRequest request = Request(temp.path(), temp);
  request.env = {{"BUILD_NUMBER", "abc"}, {"JENKINS_URL", "http://ci/"}};
  Result<BuildContext> context = DetectBuildContext(request);
  ASSERT_FALSE(context);
  EXPECT_EQ(context.error(), "BUILD_NUMBER is 'abc': expected a positive whole number");

  for (const char* bad : {"", "0", "-3", "1.5", "12abc", " 12", "99999999999999999999"}) {
    request.env = {{"BUILD_NUMBER", bad}, {"JOB_NAME", "x"}};
    EXPECT_FALSE(DetectBuildContext(request)) << "'" << bad << "'";
  }

  request.env = {{"GITHUB_ACTIONS", "true"}, {"GITHUB_RUN_NUMBER", "0"}};
  context = DetectBuildContext(request);
  ASSERT_FALSE(context);
  EXPECT_THAT(context.error(), HasSubstr("GITHUB_RUN_NUMBER is '0'"));

  request.env = {};
  request.number = "x1";
  context = DetectBuildContext(request);
  ASSERT_FALSE(context);
  EXPECT_THAT(context.error(), HasSubstr("--build-number is 'x1'"));
  // A failed detection does not use up a local number.
  EXPECT_FALSE(fs::exists(request.state_dir + "/build-number"));
}

TEST(BuildNumberTest, PersistsAndCounts) {
  TempDir temp;
  std::string state = temp.path() + "/deep/state";
  EXPECT_EQ(PeekBuildNumber(state).value(), 1);
  EXPECT_EQ(NextBuildNumber(state).value(), 1);
  EXPECT_EQ(NextBuildNumber(state).value(), 2);
  EXPECT_EQ(NextBuildNumber(state).value(), 3);
  EXPECT_EQ(PeekBuildNumber(state).value(), 4);
  EXPECT_EQ(PeekBuildNumber(state).value(), 4);
  EXPECT_EQ(NextBuildNumber(state).value(), 4);

  std::ifstream in(state + "/build-number");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "4\n");
  // Only the number and its lock are left behind, no temporary files.
  std::set<std::string> names;
  for (const auto& entry : fs::directory_iterator(state)) {
    names.insert(entry.path().filename().string());
  }
  EXPECT_EQ(names, (std::set<std::string>{"build-number", "build-number.lock"}));
}

TEST(BuildNumberTest, PeekDoesNotAllocate) {
  TempDir temp;
  std::string workspace = temp.path() + "/ws";
  fs::create_directories(workspace);
  ContextRequest request = Request(workspace, temp);
  request.allocate_number = false;
  Result<BuildContext> context = DetectBuildContext(request);
  ASSERT_TRUE(context) << context.error();
  EXPECT_EQ(context->number, "1");
  context = DetectBuildContext(request);
  ASSERT_TRUE(context) << context.error();
  EXPECT_EQ(context->number, "1");
  EXPECT_FALSE(fs::exists(request.state_dir + "/build-number"));

  request.allocate_number = true;
  EXPECT_EQ(DetectBuildContext(request)->number, "1");
  EXPECT_EQ(DetectBuildContext(request)->number, "2");
  request.allocate_number = false;
  EXPECT_EQ(DetectBuildContext(request)->number, "3");
  EXPECT_EQ(PeekBuildNumber(request.state_dir).value(), 3);
}

TEST(BuildNumberTest, GarbageFileIsAnError) {
  TempDir temp;
  std::string state = temp.path() + "/state";
  WriteFile(state + "/build-number", "twelve\n");
  Result<std::int64_t> next = NextBuildNumber(state);
  ASSERT_FALSE(next);
  EXPECT_THAT(next.error(), HasSubstr(state + "/build-number"));
  EXPECT_THAT(next.error(), HasSubstr("twelve"));
  ASSERT_FALSE(PeekBuildNumber(state));

  // Left as it was.
  std::ifstream in(state + "/build-number");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "twelve\n");
}

TEST(BuildNumberTest, ConcurrentProcessesNeverShareANumber) {
  constexpr int kProcesses = 8;
  constexpr int kEach = 20;
  TempDir temp;
  std::string state = temp.path() + "/state";
  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      std::ofstream out(temp.path() + "/taken." + std::to_string(p));
      for (int i = 0; i < kEach; ++i) {
        Result<std::int64_t> number = NextBuildNumber(state);
        if (!number) ::_exit(1);
        out << *number << "\n";
      }
      out.close();
      ::_exit(out ? 0 : 1);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  std::vector<std::int64_t> all;
  for (int p = 0; p < kProcesses; ++p) {
    std::ifstream in(temp.path() + "/taken." + std::to_string(p));
    std::int64_t n;
    while (in >> n) all.push_back(n);
  }
  std::sort(all.begin(), all.end());
  std::vector<std::int64_t> expected(kProcesses * kEach);
  for (std::size_t i = 0; i < expected.size(); ++i) expected[i] = static_cast<std::int64_t>(i) + 1;
  EXPECT_EQ(all, expected);
  EXPECT_EQ(PeekBuildNumber(state).value(), kProcesses * kEach + 1);
}

TEST(GitTopLevelTest, FindsTheWorkTree) {
  TempDir temp;
  std::string repo = MakeRepo(temp);
  EXPECT_EQ(GitTopLevel(repo), repo);
  EXPECT_EQ(GitTopLevel(repo + "/d"), repo);

  std::string bare = temp.path() + "/bare.git";
  fs::create_directories(bare);
  Git(bare, {"init", "-q", "--bare"});
  EXPECT_EQ(GitTopLevel(bare), std::nullopt);

  if (!GitTopLevel(temp.path())) {
    std::string plain = temp.path() + "/plain";
    fs::create_directories(plain);
    EXPECT_EQ(GitTopLevel(plain), std::nullopt);
  }
}

}  // namespace
}  // namespace runner

namespace runner {
namespace {

TEST(BuildContextJsonTest, RoundTripsEveryField) {
  BuildContext context;
  context.project = "orders";
  context.branch = "main";
  context.commit = "0123456789abcdef";
  context.short_commit = "0123456";
  context.number = "7";
  context.id = "orders-main-7";
  context.event = "push";
  context.trigger = "cli";
  context.workspace = "/ws";
  context.changed_files = std::vector<std::string>{"a.txt"};
  context.commit_time = 1700000000;
  nlohmann::ordered_json json = BuildContextToJson(context);
  EXPECT_EQ(json.begin().key(), "project");
  EXPECT_EQ(json["changed_files"], nlohmann::ordered_json::array({"a.txt"}));
  Result<BuildContext> back = BuildContextFromJson(json);
  ASSERT_TRUE(back) << back.error();
  EXPECT_EQ(BuildContextToJson(*back), json);
}

TEST(BuildContextJsonTest, UnknownsAreNullAndErrorsNameTheField) {
  BuildContext context;
  nlohmann::ordered_json json = BuildContextToJson(context);
  EXPECT_TRUE(json["commit_time"].is_null());
  EXPECT_FALSE(BuildContextFromJson(json)->changed_files);
  json["number"] = 7;
  EXPECT_EQ(BuildContextFromJson(json).error(), "build context: 'number' must be a string");
  json.erase("number");
  EXPECT_EQ(BuildContextFromJson(json).error(), "build context: missing 'number'");
}

}  // namespace
}  // namespace runner
