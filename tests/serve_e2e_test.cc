// `runner serve` end to end (SPEC section 9): the built binary serves on 127.0.0.1, builds
// real Git commits (file URLs) as GitHub's deliveries ask, posts commit statuses to a fake
// GitHub API, and is stopped and restarted by the test.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>

#include "runner/aws/http.h"
#include "tests/e2e_util.h"
#include "tests/fake_github.h"
#include "tests/test_util.h"

namespace runner::testing {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* kSecret = "hook secret 42";
constexpr const char* kToken = "ghp_tokenvalue123456";
constexpr const char* kAdminToken = "admin-token-789";

// `build` waits for its gate file (GATE_DIR/all or GATE_DIR/BUILD_ID), printing coloured lines
// meanwhile, so that a test decides when each build ends. `docs` runs only when docs/ changed.
constexpr const char* kPipeline = R"yaml(version: 1
steps:
  - id: build
    run: |
      echo "building $RUNNER_COMMIT on $RUNNER_BRANCH"
      echo "head=$(git rev-parse HEAD)"
      echo "token=$GITHUB_TOKEN secret=${HOOK_SECRET:-unset}"
      n=0
      until [ -e "$GATE_DIR/all" ] || [ -e "$GATE_DIR/$RUNNER_BUILD_ID" ]; do
        n=$((n+1)); printf '\033[32mline %d\033[0m\n' "$n"; sleep 0.1
      done
      echo finished
  - id: docs
    needs: []
    when: {changed: ["docs/**"]}
    run: echo docs changed
)yaml";

std::string FormEncode(std::string_view text) {
  std::string out = "payload=";
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

class ServeE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    src_ = dir_.path() + "/src";
    gate_ = dir_.path() + "/gate";
    state_ = dir_.path() + "/state";
    std::filesystem::create_directories(gate_);
    std::filesystem::create_directories(dir_.path() + "/out");
    MakeGitRepo(src_, {{"pipeline.yml", kPipeline}, {"src/main.c", "int main() {}\n"}});
    main_ = RevParse("main");
  }

  void TearDown() override {
    if (server_) StopServer();
  }

  std::string RevParse(const std::string& what) {
    std::string file = dir_.path() + "/rev";
    Shell("git -C '" + src_ + "' rev-parse '" + what + "' > '" + file + "'");
    std::string text = ReadTextFile(file);
    return text.substr(0, text.find('\n'));
  }

  // A new commit on `branch` (created from main when new) changing `path`.
  std::string Commit(const std::string& branch, const std::string& path, const std::string& text) {
    ::setenv("RUNNER_TEST_BRANCH", branch.c_str(), 1);
    Shell("cd '" + src_ +
          "' && (git checkout -q \"$RUNNER_TEST_BRANCH\" 2>/dev/null || git checkout -q -b "
          "\"$RUNNER_TEST_BRANCH\" main)");
    WriteTextFile(src_ + "/" + path, text);
    Shell("cd '" + src_ +
          "' && git add -A && GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.com "
          "GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.com git commit -qm change && "
          "git checkout -q main");
    ::unsetenv("RUNNER_TEST_BRANCH");
    return RevParse(branch);
  }

  void WriteConfig(const std::string& extra = "", const std::string& repo_extra = "") {
    WriteTextFile(dir_.path() + "/serve.yml",
                  "listen: 127.0.0.1:0\n"
                  "url: http://ci.example.test\n"
                  "state_dir: " +
                      state_ +
                      "\n"
                      "github_api: " +
                      github_.url() +
                      "/api/v3\n"
                      "admin_token_env: ADMIN_TOKEN\n" +
                      extra +
                      "repos:\n"
                      "  - name: acme/orders\n"
                      "    clone_url: file://" +
                      src_ +
                      "\n"
                      "    secret_env: HOOK_SECRET\n"
                      "    token_env: GITHUB_TOKEN\n" +
                      repo_extra);
  }

  void StartServer() {
    if (!std::filesystem::exists(dir_.path() + "/serve.yml")) WriteConfig();
    auto env = BaseEnv();
    env["HOOK_SECRET"] = kSecret;
    env["GITHUB_TOKEN"] = kToken;
    env["ADMIN_TOKEN"] = kAdminToken;
    env["GATE_DIR"] = gate_;
    server_ = std::make_unique<RunnerProcess>(
        std::vector<std::string>{"serve", "--config", dir_.path() + "/serve.yml"}, dir_.path(), env,
        dir_.path() + "/out");
    std::smatch match;
    std::regex port_line(R"(\(port (\d+)\))");
    std::string out;
    ASSERT_TRUE(AwaitCondition([&] {
      out = ReadTextFile(dir_.path() + "/out/.stdout");
      return std::regex_search(out, match, port_line);
    })) << ReadTextFile(dir_.path() + "/out/.stderr");
    base_ = "http://127.0.0.1:" + match[1].str();
  }

  RunResult StopServer() {
    server_->Signal(SIGTERM);
    RunResult result = server_->Wait(60s);
    server_.reset();
    EXPECT_EQ(result.exit_code, 0) << result.err;
    return result;
  }

  aws::HttpResponse Send(const std::string& method, const std::string& path,
                         std::string_view body = "", aws::Pairs headers = {}) {
    aws::HttpRequest request;
    request.method = method;
    request.url = base_ + path;
    request.body = body;
    request.headers = std::move(headers);
    auto response = http_->Send(request);
    EXPECT_TRUE(response.has_value()) << (response ? "" : response.error());
    return response.value_or(aws::HttpResponse{});
  }

  aws::HttpResponse Deliver(const std::string& event, const json& payload,
                            const std::string& delivery, bool form = false,
                            const std::string& secret = kSecret) {
    std::string body = form ? FormEncode(payload.dump()) : payload.dump();
    return Send("POST", "/hooks/github", body,
                {{"content-type", form ? "application/x-www-form-urlencoded" : "application/json"},
                 {"x-github-event", event},
                 {"x-github-delivery", delivery},
                 {"x-hub-signature-256", SignDelivery(body, secret)}});
  }

  json Push(const std::string& ref, const std::string& before, const std::string& after) {
    return PushPayload(ref, before, after, src_);
  }

  // Delivers a push and returns the id of the build it queued.
  std::string Queue(const std::string& branch, const std::string& before,
                    const std::string& after) {
    auto response = Deliver("push", Push("refs/heads/" + branch, before, after),
                            "delivery-" + std::to_string(++deliveries_));
    EXPECT_EQ(response.status, 202) << response.body;
    json answer = json::parse(response.body, nullptr, false);
    return answer.is_object() ? answer.value("id", "") : "";
  }

  json Build(const std::string& id) {
    auto response = Send("GET", "/builds/" + id + ".json");
    return json::parse(response.body, nullptr, false);
  }

  // Waits until the build's status is `status`; returns its record.
  json AwaitStatus(const std::string& id, const std::string& status,
                   std::chrono::milliseconds timeout = 60s) {
    json build;
    bool reached = AwaitCondition(
        [&] {
          build = Build(id);
          return build.is_object() && build.value("status", "") == status;
        },
        timeout);
    EXPECT_TRUE(reached) << id << " is " << build.dump(1) << "\nserver stdout:\n"
                         << ReadTextFile(dir_.path() + "/out/.stdout") << "\nserver stderr:\n"
                         << ReadTextFile(dir_.path() + "/out/.stderr");
    return build;
  }

  // Waits until the build's step `build` is running: its log has its first lines.
  void AwaitStepRunning(const std::string& id) {
    EXPECT_TRUE(AwaitCondition([&] {
      return Send("GET", "/builds/" + id + "/logs/build.log").body.find("line 2") !=
             std::string::npos;
    })) << id
        << " never ran its step";
  }

  void Open(const std::string& id) { WriteTextFile(gate_ + "/" + id, ""); }

  std::vector<json> StatusesFor(const std::string& sha) {
    std::vector<json> found;
    for (const FakeRequest& request : github_.requests()) {
      if (request.path.ends_with("/statuses/" + sha)) found.push_back(json::parse(request.body));
    }
    return found;
  }

  TempDir dir_;
  FakeGitHub github_;
  std::unique_ptr<aws::HttpClient> http_ = aws::MakeCurlHttpClient();
  std::unique_ptr<RunnerProcess> server_;
  std::string src_, gate_, state_, main_, base_;
  int deliveries_ = 0;
};

TEST_F(ServeE2eTest, RefusesUnsignedDeliveriesAndIgnoresWhatItDoesNotBuild) {
  StartServer();
  std::string commit = Commit("main", "src/main.c", "int main() { return 1; }\n");
  json push = Push("refs/heads/main", main_, commit);

  EXPECT_EQ(Deliver("push", push, "d-wrong", false, "not the secret").status, 401);
  std::string body = push.dump();
  auto sha1_only = Send("POST", "/hooks/github", body,
                        {{"content-type", "application/json"},
                         {"x-github-event", "push"},
                         {"x-github-delivery", "d-sha1"},
                         {"x-hub-signature", "sha1=0000"}});
  EXPECT_EQ(sha1_only.status, 401);

  json ping = json::parse(ReadTextFile(std::string(RUNNER_SOURCE_DIR) +
                                       "/../shared/testdata/github-webhooks/ping-payload.json"));
  ping["repository"]["full_name"] = "acme/orders";
  EXPECT_EQ(Deliver("ping", ping, "d-ping").status, 200);

  json other = push;
  other["repository"]["full_name"] = "acme/unknown";
  auto unknown = Deliver("push", other, "d-unknown");
  EXPECT_EQ(unknown.status, 202);
  EXPECT_NE(unknown.body.find("not configured"), std::string::npos) << unknown.body;

  json deletion = Push("refs/heads/gone", commit, std::string(40, '0'));
  deletion["deleted"] = true;
  auto deleted = Deliver("push", deletion, "d-delete");
  EXPECT_EQ(deleted.status, 202);
  EXPECT_NE(deleted.body.find("deleted"), std::string::npos) << deleted.body;

  auto builds = json::parse(Send("GET", "/builds.json").body)["builds"];
  EXPECT_TRUE(builds.empty()) << builds.dump(1);
  EXPECT_TRUE(github_.requests().empty()) << "a status was posted for an ignored delivery";
}

TEST_F(ServeE2eTest, BuildsExactlyThePushedCommitAndReportsItToGitHub) {
  WriteTextFile(gate_ + "/all", "");
  StartServer();
  std::string pushed = Commit("main", "src/main.c", "int main() { return 2; }\n");
  std::string newer = Commit("main", "src/main.c", "int main() { return 3; }\n");
  ASSERT_NE(pushed, newer);

  auto started = std::chrono::steady_clock::now();
  auto answer = Deliver("push", Push("refs/heads/main", main_, pushed), "d-1", /*form=*/true);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s) << "GitHub gives up after 10 s";
  ASSERT_EQ(answer.status, 202) << answer.body;
  std::string id = json::parse(answer.body)["id"];
  EXPECT_EQ(id, "orders-main-1");

  json build = AwaitStatus(id, "success");
  EXPECT_EQ(build["build"]["commit"], pushed);
  EXPECT_EQ(build["build"]["event"], "push");
  EXPECT_EQ(build["build"]["trigger"], "webhook");
  std::string log = Send("GET", "/builds/" + id + "/logs/build.log").body;
  EXPECT_NE(log.find("head=" + pushed), std::string::npos) << log;
  EXPECT_NE(log.find("token=*** secret=unset"), std::string::npos) << log;
  EXPECT_EQ(log.find(kToken), std::string::npos);
  EXPECT_EQ(build["steps"][1]["status"], "skipped") << "docs/ did not change";

  // The same delivery again, also after a restart: answered, not built.
  auto again = Deliver("push", Push("refs/heads/main", main_, pushed), "d-1");
  EXPECT_EQ(again.status, 200) << again.body;
  StopServer();
  StartServer();
  EXPECT_EQ(Deliver("push", Push("refs/heads/main", main_, pushed), "d-1").status, 200);
  EXPECT_EQ(json::parse(Send("GET", "/builds.json").body)["builds"].size(), 1u);

  ASSERT_TRUE(github_.AwaitRequests(2));
  ASSERT_TRUE(AwaitCondition([&] {
    auto statuses = StatusesFor(pushed);
    return !statuses.empty() && statuses.back()["state"] == "success";
  }));
  std::vector<json> statuses = StatusesFor(pushed);
  EXPECT_EQ(statuses.front()["state"], "pending");
  for (const json& status : statuses) {
    EXPECT_EQ(status["context"], "runner/orders");
    EXPECT_EQ(status["target_url"], "http://ci.example.test/builds/" + id);
    EXPECT_LE(status["description"].get<std::string>().size(), 140u * 4);
  }
  FakeRequest first = github_.requests().front();
  EXPECT_EQ(first.path, "/api/v3/repos/acme/orders/statuses/" + pushed);
  EXPECT_EQ(first.Header("authorization"), std::string("Bearer ") + kToken);
}

TEST_F(ServeE2eTest, ANewerPushSkipsItsBranchsQueuedBuildsAndCancelsOnlyListedBranches) {
  WriteConfig("jobs: 1\n", "    cancel_running: [\"feature/*\"]\n");
  StartServer();
  std::string a = Commit("main", "src/main.c", "a\n");
  std::string b = Commit("main", "src/main.c", "b\n");
  std::string c = Commit("main", "src/main.c", "c\n");
  std::string running = Queue("main", main_, a);
  AwaitStatus(running, "running");
  std::string second = Queue("main", a, b);
  std::string third = Queue("main", b, c);
  json skipped = AwaitStatus(second, "skipped");
  EXPECT_EQ(skipped["reason"], "superseded by " + third);
  // main is not in cancel_running: the running build goes on.
  EXPECT_EQ(Build(running)["status"], "running");
  Open(running);
  AwaitStatus(running, "success");
  Open(third);
  AwaitStatus(third, "success");

  std::string f1 = Commit("feature/x", "src/f.c", "1\n");
  std::string f2 = Commit("feature/x", "src/f.c", "2\n");
  std::string old = Queue("feature/x", main_, f1);
  AwaitStepRunning(old);
  std::string fresh = Queue("feature/x", f1, f2);
  AwaitStatus(old, "cancelled");
  Open(fresh);
  AwaitStatus(fresh, "success");
}

TEST_F(ServeE2eTest, JobsBuildsRunAtOnceAndTheNextWaitsItsTurn) {
  WriteConfig("jobs: 2\n");
  StartServer();
  std::vector<std::string> ids;
  for (const char* branch : {"one", "two", "three"}) {
    ids.push_back(Queue(branch, std::string(40, '0'), Commit(branch, "src/main.c", branch)));
  }
  AwaitStepRunning(ids[0]);
  AwaitStepRunning(ids[1]);
  EXPECT_EQ(Build(ids[2])["status"], "queued");
  Open(ids[0]);
  AwaitStatus(ids[0], "success");
  AwaitStepRunning(ids[2]);
  Open(ids[1]);
  Open(ids[2]);
  AwaitStatus(ids[1], "success");
  AwaitStatus(ids[2], "success");
}

TEST_F(ServeE2eTest, AQueuedBuildSurvivesARestartAndSigtermCancelsAfterTheGrace) {
  WriteConfig("jobs: 1\nstop_grace: 1s\n");
  StartServer();
  std::string a = Commit("main", "src/main.c", "a\n");
  std::string b = Commit("other", "docs/readme.md", "b\n");
  std::string running = Queue("main", main_, a);
  AwaitStepRunning(running);
  std::string queued = Queue("other", std::string(40, '0'), b);
  EXPECT_EQ(Build(queued)["status"], "queued");

  RunResult stopped = StopServer();
  json cancelled = json::parse(ReadTextFile(state_ + "/builds/" + running + "/report.json"));
  EXPECT_EQ(cancelled["status"], "cancelled") << stopped.out;

  WriteTextFile(gate_ + "/all", "");
  StartServer();
  json built = AwaitStatus(queued, "success");
  // A new branch's changed files are those against the default branch: docs/ ran.
  EXPECT_EQ(built["steps"][1]["status"], "success");
  EXPECT_EQ(Build(running)["status"], "cancelled") << "a build is never run twice";
}

TEST_F(ServeE2eTest, AServerKilledMidBuildLeavesNoProcessAndItsBuildIsAbandonedNotRerun) {
  StartServer();
  std::string a = Commit("main", "src/main.c", "a\n");
  std::string id = Queue("main", main_, a);
  AwaitStepRunning(id);
  ASSERT_FALSE(ProcessesWithEnv("GATE_DIR=" + gate_).empty());
  server_->Signal(SIGKILL);
  server_->Wait();
  server_.reset();
  // The watchdogs stop the build and its step.
  EXPECT_TRUE(AwaitCondition([&] { return ProcessesWithEnv("GATE_DIR=" + gate_).empty(); }))
      << "left running after the server was killed";

  WriteTextFile(gate_ + "/all", "");
  StartServer();
  // Its record says what the watchdog did to it; the queue says why it was not run again.
  json build = AwaitStatus(id, "cancelled");
  EXPECT_NE(build.value("reason", "").find("not run again"), std::string::npos) << build.dump(1);
  ASSERT_TRUE(AwaitCondition([&] {
    auto statuses = StatusesFor(a);
    return !statuses.empty() && statuses.back()["state"] == "error";
  }));
  EXPECT_FALSE(std::filesystem::exists(state_ + "/worktrees/" + id));
}

TEST_F(ServeE2eTest, AnAnnotatedTagBuildsTheCommitItPointsTo) {
  WriteTextFile(gate_ + "/all", "");
  StartServer();
  Shell("cd '" + src_ +
        "' && GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.com "
        "git tag -a v1.0 -m release");
  std::string tag_object = RevParse("v1.0");
  ASSERT_NE(tag_object, main_);
  auto answer = Deliver("push", Push("refs/tags/v1.0", std::string(40, '0'), tag_object), "d-tag");
  ASSERT_EQ(answer.status, 202) << answer.body;
  std::string id = json::parse(answer.body)["id"];
  json build = AwaitStatus(id, "success");
  EXPECT_EQ(build["build"]["commit"], main_);
  EXPECT_EQ(build["build"]["event"], "tag");
  EXPECT_EQ(build["build"]["branch"], "v1.0");
}

TEST_F(ServeE2eTest, ABrokenPipelineIsAnErrorThatSaysWhereAndWhy) {
  StartServer();
  std::string broken =
      Commit("broken", "pipeline.yml", "version: 1\nsteps:\n  - id: x\n    rnu: true\n");
  std::string id = Queue("broken", std::string(40, '0'), broken);
  json build = AwaitStatus(id, "error");
  std::string reason = build.value("reason", "");
  EXPECT_NE(reason.find("pipeline.yml:4:5"), std::string::npos) << reason;
  EXPECT_NE(reason.find("'rnu'"), std::string::npos) << reason;
  ASSERT_TRUE(AwaitCondition([&] {
    auto statuses = StatusesFor(broken);
    return !statuses.empty() && statuses.back()["state"] == "error";
  }));
}

TEST_F(ServeE2eTest, RerunAndCancelNeedTheAdminToken) {
  StartServer();
  std::string a = Commit("main", "src/main.c", "a\n");
  std::string id = Queue("main", main_, a);
  AwaitStepRunning(id);
  EXPECT_EQ(Send("POST", "/builds/" + id + "/cancel").status, 401);
  EXPECT_EQ(
      Send("POST", "/builds/" + id + "/cancel", "", {{"authorization", "Bearer wrong"}}).status,
      401);
  EXPECT_EQ(Build(id)["status"], "running");
  auto cancel = Send("POST", "/builds/" + id + "/cancel", "",
                     {{"authorization", std::string("Bearer ") + kAdminToken}});
  EXPECT_EQ(cancel.status, 202) << cancel.body;
  AwaitStatus(id, "cancelled");

  WriteTextFile(gate_ + "/all", "");
  auto rerun = Send("POST", "/builds/" + id + "/rerun", "",
                    {{"authorization", std::string("Bearer ") + kAdminToken}});
  ASSERT_EQ(rerun.status, 202) << rerun.body;
  std::string again = json::parse(rerun.body)["id"];
  EXPECT_NE(again, id);
  json build = AwaitStatus(again, "success");
  EXPECT_EQ(build["build"]["commit"], a);
}

TEST_F(ServeE2eTest, TheBuildPageShowsARunningStepsLogLiveInChromium) {
  StartServer();
  // A branch named like a script: the page must show it as text.
  std::string branch = "<script>alert(1)</script>";
  std::string commit = Commit(branch, "src/main.c", "x\n");
  std::string id = Queue(branch, std::string(40, '0'), commit);
  AwaitStepRunning(id);
  std::filesystem::create_directories(RUNNER_ARTIFACTS_DIR);
  std::string screenshot = std::string(RUNNER_ARTIFACTS_DIR) + "/serve_build_page.png";
  std::filesystem::remove(screenshot);
  std::string command = "cd '" + std::string(RUNNER_BROWSER_DIR) + "' && node build_page.js '" +
                        base_ + "' '" + id + "' build '" + screenshot + "' > '" + dir_.path() +
                        "/browser.log' 2>&1";
  int status = std::system(command.c_str());
  EXPECT_EQ(status, 0) << ReadTextFile(dir_.path() + "/browser.log");
  EXPECT_TRUE(std::filesystem::exists(screenshot));
  Open(id);
  AwaitStatus(id, "success");
}

}  // namespace
}  // namespace runner::testing
