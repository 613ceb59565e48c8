#include "runner/serve/git_mirror.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <future>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "runner/fs.h"
#include "runner/spawn.h"
#include "tests/e2e_util.h"
#include "tests/test_util.h"

namespace runner::serve {
namespace {

namespace fs = std::filesystem;
using runner::testing::AwaitCondition;
using runner::testing::ReadTextFile;
using runner::testing::StopProcessGroup;
using runner::testing::TempDir;
using runner::testing::WriteTextFile;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kZeros = "0000000000000000000000000000000000000000";
constexpr const char* kToken = "ghs_t0ken-for-the-test-3f9a1c";
constexpr std::int64_t kCommitTime = 1700000123;

const std::function<bool()> kNeverCancelled = [] { return false; };

// Short waits, so that a test of the retries takes a fraction of a second.
FetchRetry QuickRetry(int attempts) {
  return FetchRetry{.attempts = attempts,
                    .first_delay = std::chrono::milliseconds(50),
                    .max_delay = std::chrono::milliseconds(100)};
}

// A child process (git daemon, the HTTP server) in its own process group, its output in a file;
// stopped with the whole group and reaped when the owner goes.
class Server {
 public:
  Server(const std::vector<std::string>& argv, const std::vector<std::string>& env,
         const std::string& log_path)
      : log_path_(log_path) {
    UniqueFd log(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    Result<std::string> program = FindProgram(argv[0], "/usr/bin:/bin", "");
    if (!program) {
      ADD_FAILURE() << program.error();
      return;
    }
    SpawnRequest request;
    request.program = *program;
    request.argv = argv;
    request.env = env;
    request.new_process_group = true;
    request.stdout_fd = log.get();
    request.stderr_fd = log.get();
    Result<pid_t> pid = Spawn(request);
    if (!pid) {
      ADD_FAILURE() << pid.error();
      return;
    }
    pid_ = *pid;
  }
  // What is left in the group (upload-pack, http-backend) is killed too.
  ~Server() { StopProcessGroup(pid_, std::chrono::seconds(2)); }
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  std::string log() const { return ReadTextFile(log_path_); }
  // How many lines of the log contain `needle`.
  int CountInLog(const std::string& needle) const {
    std::string text = log();
    int count = 0;
    for (std::size_t at = text.find(needle); at != std::string::npos;
         at = text.find(needle, at + 1)) {
      ++count;
    }
    return count;
  }

 private:
  pid_t pid_ = -1;
  std::string log_path_;
};

bool Accepts(int port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return ::connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
}

// A port that was free a moment ago on 127.0.0.1 (git daemon cannot be given port 0).
int FreePort() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  socklen_t size = sizeof address;
  EXPECT_EQ(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&address), &size), 0);
  return ntohs(address.sin_port);
}

// The number of objects in a pack, from its index (version 2: the last fan-out entry).
std::uint32_t ObjectsInPack(const std::string& idx_path) {
  std::string idx = ReadTextFile(idx_path);
  constexpr std::size_t kLastFanout = 8 + 255 * 4;
  if (idx.size() < kLastFanout + 4) return 0;
  std::uint32_t count = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    count = (count << 8) | static_cast<unsigned char>(idx[kLastFanout + i]);
  }
  return count;
}

std::set<std::string> PackIndexes(const std::string& git_dir) {
  std::set<std::string> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(git_dir + "/objects/pack", ec)) {
    if (entry.path().extension() == ".idx") found.insert(entry.path().string());
  }
  return found;
}

class GitMirrorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    served_ = temp_ / "served";
    source_ = served_ + "/src";
    fs::create_directories(source_);
    // c1 (root, tagged `light`) <- c2 (tagged v1) <- c3 on main; feature branches off c2.
    Git(source_, {"init", "-q", "-b", "main"});
    WriteTextFile(source_ + "/a.txt", "a one\n");
    WriteTextFile(source_ + "/b.txt", "b one\n");
    WriteTextFile(source_ + "/old.txt", "a file long enough to be recognised when renamed\n");
    WriteTextFile(source_ + "/gone.txt", "deleted by c2\n");
    WriteTextFile(source_ + "/dir/c.txt", "c\n");
    c1_ = Commit("c1");
    Git(source_, {"tag", "light"});
    WriteTextFile(source_ + "/a.txt", "a two\n");
    Git(source_, {"mv", "old.txt", "new.txt"});
    Git(source_, {"rm", "-q", "gone.txt"});
    WriteTextFile(source_ + "/d.txt", "d\n");
    c2_ = Commit("c2", {"GIT_COMMITTER_DATE=@" + std::to_string(kCommitTime) + " +0000"});
    Git(source_, {"tag", "-a", "v1", "-m", "release one"});
    Git(source_, {"checkout", "-q", "-b", "feature"});
    WriteTextFile(source_ + "/feature.txt", "feature\n");
    f1_ = Commit("f1");
    Git(source_, {"checkout", "-q", "main"});
    WriteTextFile(source_ + "/b.txt", "b three\n");
    c3_ = Commit("c3");

    int port = FreePort();
    daemon_ = std::make_unique<Server>(
        std::vector<std::string>{"git", "daemon", "--export-all", "--base-path=" + served_,
                                 "--listen=127.0.0.1", "--port=" + std::to_string(port),
                                 "--reuseaddr", "--verbose", "--informative-errors", served_},
        GitEnv(), temp_ / "daemon.log");
    ASSERT_TRUE(AwaitCondition([&] { return Accepts(port); })) << daemon_->log();
    url_ = "git://127.0.0.1:" + std::to_string(port) + "/src";
  }

  void TearDown() override { daemon_.reset(); }

  std::vector<std::string> GitEnv(const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> env = {"PATH=/usr/bin:/bin",
                                    "HOME=" + temp_.path(),
                                    "LANG=C.UTF-8",
                                    "GIT_CONFIG_NOSYSTEM=1",
                                    "GIT_CONFIG_GLOBAL=/dev/null",
                                    "GIT_AUTHOR_NAME=Test",
                                    "GIT_AUTHOR_EMAIL=test@example.com",
                                    "GIT_COMMITTER_NAME=Test",
                                    "GIT_COMMITTER_EMAIL=test@example.com"};
    env.insert(env.end(), extra.begin(), extra.end());
    return env;
  }

  // Runs git in `dir` (no shell); its standard output without the final newline, or nullopt
  // when it fails.
  std::optional<std::string> TryGit(const std::string& dir, const std::vector<std::string>& args,
                                    const std::vector<std::string>& extra_env = {}) const {
    std::vector<std::string> argv = {"git", "-C", dir, "-c", "commit.gpgsign=false"};
    argv.insert(argv.end(), args.begin(), args.end());
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return std::nullopt;
    UniqueFd read_end(pipe_fds[0]);
    UniqueFd write_end(pipe_fds[1]);
    SpawnRequest request;
    request.program = "/usr/bin/git";
    request.argv = argv;
    request.env = GitEnv(extra_env);
    request.stdout_fd = write_end.get();
    request.stderr_fd = 2;
    Result<pid_t> pid = Spawn(request);
    write_end.reset();
    if (!pid) return std::nullopt;
    std::string out;
    char chunk[4096];
    for (ssize_t n; (n = ::read(read_end.get(), chunk, sizeof chunk)) != 0;) {
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) break;
      out.append(chunk, static_cast<std::size_t>(n));
    }
    int status = 0;
    ::waitpid(*pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return std::nullopt;
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
  }

  std::string Git(const std::string& dir, const std::vector<std::string>& args,
                  const std::vector<std::string>& extra_env = {}) const {
    std::optional<std::string> out = TryGit(dir, args, extra_env);
    std::string joined;
    for (const std::string& arg : args) joined += " " + arg;
    EXPECT_TRUE(out) << "git" << joined << " in " << dir;
    return out.value_or("");
  }

  // Commits everything in the source repository; the new commit's id.
  std::string Commit(const std::string& message, const std::vector<std::string>& extra_env = {}) {
    Git(source_, {"add", "-A"});
    Git(source_, {"commit", "-q", "-m", message}, extra_env);
    return Git(source_, {"rev-parse", "HEAD"});
  }

  // A mirror of the daemon's repository, opened and fetched once.
  GitMirror FetchedMirror(const std::string& name = "mirror") {
    Result<GitMirror> mirror = GitMirror::Open(temp_ / name, url_);
    EXPECT_TRUE(mirror) << mirror.error();
    Status fetched = mirror->Fetch("");
    EXPECT_TRUE(fetched) << fetched.error();
    return std::move(*mirror);
  }

  // The connections the daemon has finished with, once it has logged the end of every one it
  // accepted (a fetch can return before the daemon reaps the upload-pack that served it).
  int ServedConnections() const {
    int served = 0;
    EXPECT_TRUE(AwaitCondition([&] {
      served = daemon_->CountInLog("Disconnected");
      return served == daemon_->CountInLog("Connection from");
    })) << daemon_->log();
    return served;
  }

  // The mirror's refs as NAME -> id.
  std::map<std::string, std::string> Refs(const std::string& git_dir) const {
    std::map<std::string, std::string> refs;
    std::string text = Git(git_dir, {"for-each-ref", "--format=%(refname) %(objectname)"});
    for (std::size_t begin = 0; begin < text.size();) {
      std::size_t end = text.find('\n', begin);
      if (end == std::string::npos) end = text.size();
      std::string line = text.substr(begin, end - begin);
      std::size_t space = line.find(' ');
      refs[line.substr(0, space)] = line.substr(space + 1);
      begin = end + 1;
    }
    return refs;
  }

  TempDir temp_;
  std::string served_;
  std::string source_;
  std::string url_;
  std::string c1_, c2_, c3_, f1_;
  std::unique_ptr<Server> daemon_;
};

TEST_F(GitMirrorTest, BuildsExactlyThePushedCommitAfterTheBranchMovedOn) {
  GitMirror mirror = FetchedMirror();
  // The push was of c2; main has moved on to c3 since.
  Result<std::string> commit = mirror.ResolveCommit(c2_, "", QuickRetry(2), kNeverCancelled);
  ASSERT_TRUE(commit) << commit.error();
  EXPECT_EQ(*commit, c2_);
  std::string worktree = temp_ / "build-1";
  Status made = mirror.CheckoutWorktree(*commit, worktree);
  ASSERT_TRUE(made) << made.error();

  EXPECT_EQ(Git(worktree, {"rev-parse", "HEAD"}), c2_);
  EXPECT_EQ(TryGit(worktree, {"symbolic-ref", "-q", "HEAD"}), std::nullopt) << "HEAD is detached";
  EXPECT_EQ(Git(worktree, {"status", "--porcelain", "--untracked-files=all"}), "");
  EXPECT_EQ(Git(worktree, {"log", "--format=%s"}), "c2\nc1");
  EXPECT_EQ(ReadTextFile(worktree + "/a.txt"), "a two\n");
  EXPECT_EQ(ReadTextFile(worktree + "/b.txt"), "b one\n") << "c3's change must not be there";
  EXPECT_TRUE(fs::exists(worktree + "/new.txt"));
  EXPECT_FALSE(fs::exists(worktree + "/old.txt"));
  EXPECT_FALSE(fs::exists(worktree + "/gone.txt"));
  EXPECT_EQ(ReadTextFile(worktree + "/dir/c.txt"), "c\n");
  // Objects borrowed from the mirror, not copied; no remote to leak anything through.
  EXPECT_EQ(ReadTextFile(worktree + "/.git/objects/info/alternates"),
            fs::canonical(temp_ / "mirror").string() + "/objects\n");
  EXPECT_TRUE(PackIndexes(worktree + "/.git").empty());
  EXPECT_EQ(Git(worktree, {"remote"}), "");

  EXPECT_EQ(Refs(temp_ / "mirror"), (std::map<std::string, std::string>{
                                        {"refs/heads/feature", f1_},
                                        {"refs/heads/main", c3_},
                                        {"refs/tags/light", c1_},
                                        {"refs/tags/v1", Git(source_, {"rev-parse", "v1"})},
                                    }));
  Result<std::int64_t> time = mirror.CommitTime(c2_);
  ASSERT_TRUE(time) << time.error();
  EXPECT_EQ(*time, kCommitTime);
}

TEST_F(GitMirrorTest, AnAnnotatedTagResolvesToItsCommit) {
  GitMirror mirror = FetchedMirror();
  std::string tag = Git(source_, {"rev-parse", "v1"});
  ASSERT_NE(tag, c2_);
  Result<std::string> commit = mirror.ResolveCommit(tag, "", QuickRetry(1), kNeverCancelled);
  ASSERT_TRUE(commit) << commit.error();
  EXPECT_EQ(*commit, c2_);

  std::string tree = Git(source_, {"rev-parse", c2_ + "^{tree}"});
  Result<std::string> not_commit = mirror.ResolveCommit(tree, "", QuickRetry(1), kNeverCancelled);
  ASSERT_FALSE(not_commit);
  EXPECT_THAT(not_commit.error(), HasSubstr(tree + " in " + url_ + " is a tree, not a commit"));
  Result<std::string> branch = mirror.ResolveCommit("main", "", QuickRetry(1), kNeverCancelled);
  ASSERT_FALSE(branch);
  EXPECT_THAT(branch.error(), HasSubstr("'main' is not a commit id (40 hexadecimal digits)"));
}

TEST_F(GitMirrorTest, ARefNamesTheCommitItOrItsTagPointsAt) {
  GitMirror mirror = FetchedMirror();
  Result<std::string> main = mirror.RefCommit("refs/heads/main");
  ASSERT_TRUE(main) << main.error();
  EXPECT_EQ(*main, c3_);
  Result<std::string> annotated = mirror.RefCommit("refs/tags/v1");
  ASSERT_TRUE(annotated) << annotated.error();
  EXPECT_EQ(*annotated, c2_) << "the tag object's commit, not the tag";
  Result<std::string> missing = mirror.RefCommit("refs/heads/nothing");
  ASSERT_TRUE(missing) << missing.error();
  EXPECT_EQ(*missing, "");

  // A ref to a tree (made in the mirror by hand) is no commit to build.
  std::string tree = Git(source_, {"rev-parse", c2_ + "^{tree}"});
  Git(temp_ / "mirror", {"update-ref", "refs/tags/odd", tree});
  Result<std::string> odd = mirror.RefCommit("refs/tags/odd");
  ASSERT_FALSE(odd);
  EXPECT_THAT(odd.error(), HasSubstr("refs/tags/odd in " + url_ + " is a tree, not a commit"));
}

TEST_F(GitMirrorTest, RetriesUntilThePushedCommitCanBeFetched) {
  GitMirror mirror = FetchedMirror();
  // The commit exists elsewhere (the pusher's clone) before the source repository has it.
  std::string clone = temp_ / "clone";
  Git(temp_.path(), {"clone", "-q", source_, clone});
  WriteTextFile(clone + "/late.txt", "late\n");
  Git(clone, {"add", "late.txt"});
  Git(clone, {"commit", "-q", "-m", "late"});
  std::string late = Git(clone, {"rev-parse", "HEAD"});
  int served = ServedConnections();
  int requests = daemon_->CountInLog("Request upload-pack");

  auto resolved = std::async(std::launch::async, [&] {
    return mirror.ResolveCommit(late, "", QuickRetry(20), kNeverCancelled);
  });
  // After the first fetch has been served without the commit, it appears.
  ASSERT_TRUE(AwaitCondition([&] { return daemon_->CountInLog("Disconnected") > served; }));
  Git(clone, {"push", "-q", "origin", "HEAD:refs/heads/late"});
  Result<std::string> commit = resolved.get();
  ASSERT_TRUE(commit) << commit.error();
  EXPECT_EQ(*commit, late);
  EXPECT_GE(daemon_->CountInLog("Request upload-pack") - requests, 2) << daemon_->log();
}

TEST_F(GitMirrorTest, GivesUpNamingTheShaAfterTheAttempts) {
  GitMirror mirror = FetchedMirror();
  int before = daemon_->CountInLog("Request upload-pack");
  const std::string missing = "0123456789abcdef0123456789abcdef01234567";
  Result<std::string> commit = mirror.ResolveCommit(missing, "", QuickRetry(3), kNeverCancelled);
  ASSERT_FALSE(commit);
  EXPECT_EQ(commit.error(), "commit " + missing + " is not in " + url_ + " after 3 fetches");
  EXPECT_EQ(daemon_->CountInLog("Request upload-pack") - before, 3);
}

TEST_F(GitMirrorTest, CancellingStopsTheWaitingEarly) {
  GitMirror mirror = FetchedMirror();
  const std::string missing = "89abcdef0123456789abcdef0123456789abcdef";
  int before = ServedConnections();
  std::atomic<bool> cancel{false};
  // Without the cancel the waits alone would take minutes.
  FetchRetry slow{.attempts = 6,
                  .first_delay = std::chrono::seconds(30),
                  .max_delay = std::chrono::seconds(60)};
  auto resolved = std::async(std::launch::async, [&] {
    return mirror.ResolveCommit(missing, "", slow, [&] { return cancel.load(); });
  });
  ASSERT_TRUE(AwaitCondition([&] { return daemon_->CountInLog("Disconnected") > before; }));
  auto cancelled_at = std::chrono::steady_clock::now();
  cancel = true;
  ASSERT_EQ(resolved.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_LT(std::chrono::steady_clock::now() - cancelled_at, std::chrono::seconds(1));
  Result<std::string> commit = resolved.get();
  ASSERT_FALSE(commit);
  EXPECT_EQ(commit.error(),
            "cancelled while waiting for commit " + missing + " from " + url_ + " after 1 fetch");
}

TEST_F(GitMirrorTest, ChangedFilesOfPushesAndNewBranches) {
  // An orphan branch: a root commit with nothing in common with main.
  Git(source_, {"checkout", "-q", "--orphan", "pages"});
  Git(source_, {"rm", "-rq", "--cached", "."});
  fs::remove_all(source_ + "/dir");
  for (const char* file : {"a.txt", "b.txt", "new.txt", "d.txt"}) fs::remove(source_ + "/" + file);
  WriteTextFile(source_ + "/index.html", "<p>hi</p>\n");
  WriteTextFile(source_ + "/site/style.css", "p {}\n");
  std::string root = Commit("pages");
  Git(source_, {"checkout", "-q", "main"});
  GitMirror mirror = FetchedMirror();

  auto changed = [&](const std::string& before, const std::string& after,
                     const std::string& default_branch) {
    Result<std::vector<std::string>> files = mirror.ChangedFiles(before, after, default_branch);
    EXPECT_TRUE(files) << files.error();
    return files.value_or(std::vector<std::string>{"(error)"});
  };
  // A push: a modification, a rename (both names), a deletion and an addition.
  EXPECT_THAT(changed(c1_, c2_, "main"),
              ElementsAre("a.txt", "d.txt", "gone.txt", "new.txt", "old.txt"));
  EXPECT_THAT(changed(c2_, c3_, "main"), ElementsAre("b.txt"));
  // A new branch: against its merge base with the default branch (c2), not main's tip (c3).
  EXPECT_THAT(changed(kZeros, f1_, "main"), ElementsAre("feature.txt"));
  EXPECT_THAT(changed("", f1_, "main"), ElementsAre("feature.txt"));
  // `before` never fetched (a force push): as for a new branch.
  EXPECT_THAT(changed("fedcba9876543210fedcba9876543210fedcba98", f1_, "main"),
              ElementsAre("feature.txt"));
  // Nothing to compare against: every file.
  EXPECT_THAT(changed(kZeros, root, "main"), ElementsAre("index.html", "site/style.css"));
  EXPECT_THAT(changed(kZeros, f1_, "trunk"),
              ElementsAre("a.txt", "b.txt", "d.txt", "dir/c.txt", "feature.txt", "new.txt"));
  EXPECT_THAT(changed(kZeros, c1_, "main"),
              ElementsAre("a.txt", "b.txt", "dir/c.txt", "gone.txt", "old.txt"))
      << "the default branch's own first push";

  Result<std::vector<std::string>> missing = mirror.ChangedFiles(c1_, std::string(40, 'e'), "main");
  ASSERT_FALSE(missing);
  EXPECT_THAT(missing.error(),
              HasSubstr("commit " + std::string(40, 'e') + " is not in the mirror"));
}

TEST_F(GitMirrorTest, FileUrlsAndPathsWork) {
  for (const std::string& url : {"file://" + source_, source_}) {
    SCOPED_TRACE(url);
    std::string name = url.starts_with("file:") ? "by-url" : "by-path";
    Result<GitMirror> mirror = GitMirror::Open(temp_ / name, url);
    ASSERT_TRUE(mirror) << mirror.error();
    Status fetched = mirror->Fetch("");
    ASSERT_TRUE(fetched) << fetched.error();
    Result<std::string> commit = mirror->ResolveCommit(c2_, "", QuickRetry(1), kNeverCancelled);
    ASSERT_TRUE(commit) << commit.error();
    Status made = mirror->CheckoutWorktree(*commit, temp_ / (name + "-build"));
    ASSERT_TRUE(made) << made.error();
    EXPECT_EQ(Git(temp_ / (name + "-build"), {"rev-parse", "HEAD"}), c2_);
  }
  // The repository moved: the existing mirror follows the new URL.
  Result<GitMirror> moved = GitMirror::Open(temp_ / "by-path", url_);
  ASSERT_TRUE(moved) << moved.error();
  EXPECT_EQ(Git(temp_ / "by-path", {"config", "remote.origin.url"}), url_);
  Status fetched = moved->Fetch("");
  EXPECT_TRUE(fetched) << fetched.error();
}

TEST_F(GitMirrorTest, RefusesCredentialsInTheUrlAndWhatIsNotARepository) {
  for (const std::string& url : {std::string("https://user:s3cret@github.com/acme/orders.git"),
                                 std::string("https://s3cret@github.com/acme/orders.git"),
                                 std::string("http://x-access-token:s3cret@127.0.0.1:1/src")}) {
    Result<GitMirror> mirror = GitMirror::Open(temp_ / "mirror", url);
    ASSERT_FALSE(mirror) << url;
    EXPECT_THAT(mirror.error(), HasSubstr("holds credentials"));
    EXPECT_THAT(mirror.error(), Not(HasSubstr("s3cret")));
  }
  EXPECT_FALSE(fs::exists(temp_ / "mirror"));

  Result<GitMirror> ssh = GitMirror::Open(temp_ / "mirror", "ssh://github.com/acme/orders.git");
  ASSERT_FALSE(ssh);
  EXPECT_THAT(ssh.error(), HasSubstr("scheme 'ssh' is not supported"));
  Result<GitMirror> nowhere = GitMirror::Open(temp_ / "mirror", temp_ / "no-such-repo");
  ASSERT_FALSE(nowhere);
  EXPECT_THAT(nowhere.error(), HasSubstr("nor the path of a directory"));
  WriteTextFile(temp_ / "not-a-mirror/notes.txt", "mine\n");
  Result<GitMirror> occupied = GitMirror::Open(temp_ / "not-a-mirror", url_);
  ASSERT_FALSE(occupied);
  EXPECT_THAT(occupied.error(), HasSubstr("is not a Git repository"));
  EXPECT_EQ(ReadTextFile(temp_ / "not-a-mirror/notes.txt"), "mine\n");
}

// Every file under `dir` (the mirror: config, FETCH_HEAD, refs, logs, packs) as one string.
std::string EverythingUnder(const std::string& dir) {
  std::string all;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) all += entry.path().string() + "\n" + ReadTextFile(entry.path());
  }
  return all;
}

TEST_F(GitMirrorTest, TheTokenGoesOnlyThroughTheCredentialCallback) {
  auto start_http = [&](const std::string& name, const std::vector<std::string>& extra) {
    std::vector<std::string> argv = {"python3", RUNNER_SOURCE_DIR "/tests/git/http_git_server.py",
                                     "--root",  served_,
                                     "--log",   temp_ / (name + ".log")};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto server = std::make_unique<Server>(argv, GitEnv({std::string("GIT_TEST_TOKEN=") + kToken}),
                                           temp_ / (name + ".out"));
    std::string port;
    EXPECT_TRUE(AwaitCondition([&] {
      std::string out = ReadTextFile(temp_ / (name + ".out"));
      std::size_t at = out.find("listening on 127.0.0.1:");
      std::size_t end = out.find('\n', at);
      if (at == std::string::npos || end == std::string::npos) return false;
      port = out.substr(at + 23, end - at - 23);
      return true;
    })) << ReadTextFile(temp_ / (name + ".out"));
    return std::make_pair(std::move(server), "http://127.0.0.1:" + port + "/src");
  };
  auto [http, url] = start_http("http", {});

  Result<GitMirror> mirror = GitMirror::Open(temp_ / "private", url);
  ASSERT_TRUE(mirror) << mirror.error();
  Status fetched = mirror->Fetch(kToken);
  ASSERT_TRUE(fetched) << fetched.error();
  Result<std::string> commit = mirror->ResolveCommit(c3_, kToken, QuickRetry(1), kNeverCancelled);
  ASSERT_TRUE(commit) << commit.error();
  // The first request went without credentials; only the 401 brought the token out.
  std::string log = ReadTextFile(temp_ / "http.log");
  EXPECT_THAT(log,
              ::testing::StartsWith("GET /src/info/refs?service=git-upload-pack host=127.0.0.1:"));
  EXPECT_THAT(log.substr(0, log.find('\n')), HasSubstr("auth=none"));
  EXPECT_THAT(log, HasSubstr("auth=good"));
  EXPECT_THAT(log, Not(HasSubstr("auth=bad")));

  Result<GitMirror> wrong = GitMirror::Open(temp_ / "wrong", url);
  ASSERT_TRUE(wrong) << wrong.error();
  const std::string wrong_token = "ghs_wrong-token-7d2e";
  Status refused = wrong->Fetch(wrong_token);
  ASSERT_FALSE(refused);
  EXPECT_THAT(refused.error(), HasSubstr("cannot fetch " + url));
  EXPECT_THAT(refused.error(), HasSubstr("the server refused the token"));
  EXPECT_THAT(refused.error(), Not(HasSubstr(wrong_token)));
  Status anonymous = wrong->Fetch("");
  ASSERT_FALSE(anonymous);
  EXPECT_THAT(anonymous.error(),
              HasSubstr("the server asks for credentials and no token was given"));

  EXPECT_TRUE(fs::exists(temp_ / "private/FETCH_HEAD"));
  EXPECT_TRUE(fs::exists(temp_ / "private/packed-refs") ||
              fs::exists(temp_ / "private/refs/heads/main"));
  for (const std::string& dir : {temp_ / "private", temp_ / "wrong"}) {
    std::string everything = EverythingUnder(dir);
    EXPECT_THAT(everything, Not(HasSubstr(kToken))) << dir;
    EXPECT_THAT(everything, Not(HasSubstr(wrong_token))) << dir;
  }
  EXPECT_THAT(ReadTextFile(temp_ / "private/config"), HasSubstr("url = " + url + "\n"));

  // A server that redirects to another host never sees the token, and neither does that host.
  auto [redirecting, redirect_url] = start_http("redirect", {"--redirect-host", "localhost"});
  Result<GitMirror> redirected = GitMirror::Open(temp_ / "redirected", redirect_url);
  ASSERT_TRUE(redirected) << redirected.error();
  Status elsewhere = redirected->Fetch(kToken);
  ASSERT_FALSE(elsewhere);
  EXPECT_THAT(elsewhere.error(), HasSubstr("cannot redirect"));
  std::string redirect_log = ReadTextFile(temp_ / "redirect.log");
  EXPECT_THAT(redirect_log, HasSubstr("host=127.0.0.1:"));
  EXPECT_THAT(redirect_log, Not(HasSubstr("host=localhost")));
  EXPECT_THAT(redirect_log, Not(HasSubstr("auth=good")));
}

TEST_F(GitMirrorTest, ASecondFetchIsIncrementalAndPrunes) {
  FetchedMirror();
  std::string mirror_dir = temp_ / "mirror";
  std::set<std::string> first_packs = PackIndexes(mirror_dir);
  ASSERT_FALSE(first_packs.empty());

  WriteTextFile(source_ + "/a.txt", "a four\n");
  std::string c4 = Commit("c4");
  Git(source_, {"branch", "-q", "-D", "feature"});
  Git(source_, {"tag", "-d", "light"});

  // A new GitMirror on the same directory: the mirror on disk is reused.
  Result<GitMirror> again = GitMirror::Open(mirror_dir, url_);
  ASSERT_TRUE(again) << again.error();
  Status fetched = again->Fetch("");
  ASSERT_TRUE(fetched) << fetched.error();

  std::set<std::string> packs = PackIndexes(mirror_dir);
  for (const std::string& pack : first_packs) EXPECT_TRUE(packs.contains(pack)) << pack;
  std::vector<std::string> new_packs;
  for (const std::string& pack : packs) {
    if (!first_packs.contains(pack)) new_packs.push_back(pack);
  }
  ASSERT_EQ(new_packs.size(), 1u);
  // Only what the mirror lacked came: c4 and its new tree and blob (libgit2 may add a delta base
  // to complete a thin pack), none of the commits fetched before.
  std::string listing = Git(mirror_dir, {"verify-pack", "-v", new_packs[0]});
  EXPECT_THAT(listing, HasSubstr(c4 + " commit"));
  for (const std::string& old : {c1_, c2_, c3_, f1_}) EXPECT_THAT(listing, Not(HasSubstr(old)));
  EXPECT_LE(ObjectsInPack(new_packs[0]), 4u);
  EXPECT_GT(ObjectsInPack(*first_packs.begin()), 10u);

  std::map<std::string, std::string> refs = Refs(mirror_dir);
  EXPECT_EQ(refs["refs/heads/main"], c4);
  EXPECT_FALSE(refs.contains("refs/heads/feature"));
  EXPECT_FALSE(refs.contains("refs/tags/light"));
  EXPECT_TRUE(refs.contains("refs/tags/v1"));
}

TEST_F(GitMirrorTest, WorkTreesAreFreshAndRemovable) {
  GitMirror mirror = FetchedMirror();
  std::string worktree = temp_ / "build";
  ASSERT_TRUE(mirror.CheckoutWorktree(c1_, worktree));
  EXPECT_EQ(Git(worktree, {"rev-parse", "HEAD"}), c1_);

  Status again = mirror.CheckoutWorktree(c2_, worktree);
  ASSERT_FALSE(again);
  EXPECT_THAT(again.error(), HasSubstr(worktree + ": it already exists"));
  EXPECT_EQ(Git(worktree, {"rev-parse", "HEAD"}), c1_) << "the existing work tree is untouched";
  Status orphan = mirror.CheckoutWorktree(c2_, temp_ / "no-parent/build");
  ASSERT_FALSE(orphan);
  EXPECT_THAT(orphan.error(), HasSubstr("is not a directory"));
  Status missing = mirror.CheckoutWorktree(std::string(40, 'a'), temp_ / "build-missing");
  ASSERT_FALSE(missing);
  EXPECT_THAT(missing.error(),
              HasSubstr("commit " + std::string(40, 'a') + " is not in the mirror"));
  EXPECT_FALSE(fs::exists(temp_ / "build-missing"));

  WriteTextFile(worktree + "/out/artifact.bin", "built\n");
  Status removed = RemoveWorktree(worktree);
  ASSERT_TRUE(removed) << removed.error();
  EXPECT_FALSE(fs::exists(worktree));
  EXPECT_TRUE(RemoveWorktree(worktree)) << "nothing left to remove";
  EXPECT_TRUE(mirror.CommitTime(c1_)) << "the mirror keeps its objects";

  WriteTextFile(temp_ / "precious/file.txt", "keep\n");
  Status refused = RemoveWorktree(temp_ / "precious");
  ASSERT_FALSE(refused);
  EXPECT_THAT(refused.error(), HasSubstr("it is not a work tree"));
  EXPECT_TRUE(fs::exists(temp_ / "precious/file.txt"));
}

}  // namespace
}  // namespace runner::serve
