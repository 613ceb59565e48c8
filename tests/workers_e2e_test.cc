// Many machines end to end (SPEC section 10): the built binary as `runner serve --queue` and
// three `runner worker` processes on 127.0.0.1, sharing a queue and the records: a directory
// queue with file:// records (one machine without AWS), and an SQS FIFO queue with records in
// S3, both of moto_server (skipped, saying so, where moto is absent). 30 pushes over 5
// branches: every push built exactly once or skipped as superseded, each branch built one at a
// time and in order, no number used twice; a worker killed with SIGKILL mid-build, whose build
// another worker builds again and whose own attempt is marked abandoned and never published;
// a worker stopped with SIGTERM past its grace, which hands its build back; a rerun from the
// build page, built by a worker; a push redelivered after serve stopped between recording it
// and sending it to the queue, which queues the recorded build, not a new number.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "runner/aws/http.h"
#include "runner/aws/sqs.h"
#include "tests/e2e_util.h"
#include "tests/fake_github.h"
#include "tests/fake_http_client.h"
#include "tests/moto_server.h"
#include "tests/s3_server.h"
#include "tests/test_util.h"

namespace runner::testing {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* kSecret = "hook secret 42";
constexpr const char* kAdminToken = "admin-token-for-the-page";

// Each build notes its start and end in EVENTS_FILE (appends of one short line, which do not
// interleave), and holds while GATE_DIR/hold-BUILD_ID exists.
constexpr const char* kPipeline = R"yaml(version: 1
steps:
  - id: build
    run: |
      echo "start $RUNNER_BRANCH $RUNNER_BUILD_NUMBER $$" >> "$EVENTS_FILE"
      echo "building $RUNNER_BUILD_ID"
      while [ -e "$GATE_DIR/hold-$RUNNER_BUILD_ID" ]; do echo waiting; sleep 0.1; done
      echo "end $RUNNER_BRANCH $RUNNER_BUILD_NUMBER $$" >> "$EVENTS_FILE"
)yaml";

struct Event {
  std::string kind;  // start or end
  std::string branch;
  int number = 0;
  pid_t pid = 0;
};

class WorkersE2eTest : public MotoServerTest {
 protected:
  // MotoServerTest's SetUp only for the moto tests.
  void SetUp() override {}

  void Prepare() {
    src_ = dir_ / "src";
    gate_ = dir_ / "gate";
    std::filesystem::create_directories(gate_);
    MakeGitRepo(src_, {{"pipeline.yml", kPipeline}});
    heads_["main"] = RevParse("main");
  }

  void UseDirectories() {
    Prepare();
    queue_ = "file://" + (dir_ / "queue");
    records_ = "file://" + (dir_ / "records");
  }

  // `rules`: the serve and the workers reach moto through tests/s3/fault_proxy.js with these.
  void UseMoto(const std::string& rules = "") {
    MotoServerTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    Prepare();
    std::string endpoint = moto().endpoint();
    if (!rules.empty()) {
      proxy_ =
          std::make_unique<FaultProxy>(std::stoi(endpoint.substr(endpoint.rfind(':') + 1)), rules);
      ASSERT_TRUE(proxy_->ok());
      endpoint = proxy_->endpoint();
    }
    aws::StaticCredentialsProvider credentials(aws::TestCredentials());
    aws::SqsOptions options;
    options.endpoint = moto().endpoint();
    auto sqs = aws::SqsClient::Create(*http_, credentials, options);
    ASSERT_TRUE(sqs) << sqs.error();
    auto dead = (*sqs)->CreateQueue("builds-dead.fifo", {{"FifoQueue", "true"}});
    ASSERT_TRUE(dead) << dead.error();
    json redrive = {{"deadLetterTargetArn", "arn:aws:sqs:us-east-1:123456789012:builds-dead.fifo"},
                    {"maxReceiveCount", "5"}};
    auto url = (*sqs)->CreateQueue("builds.fifo",
                                   {{"FifoQueue", "true"}, {"RedrivePolicy", redrive.dump()}});
    ASSERT_TRUE(url) << url.error();
    queue_ = endpoint + url->substr(moto().endpoint().size());
    Status made = moto().CreateBucket(*http_, credentials, "records");
    ASSERT_TRUE(made) << made.error();
    records_ = "s3://records/runner/";
    aws_env_ = {{"AWS_ACCESS_KEY_ID", "testing"},
                {"AWS_SECRET_ACCESS_KEY", "testing"},
                {"AWS_REGION", "us-east-1"},
                {"AWS_ENDPOINT_URL_S3", endpoint},
                {"AWS_EC2_METADATA_DISABLED", "true"}};
  }

  void TearDown() override {
    workers_.clear();  // SIGKILL; their watchdogs stop their builds
    if (server_) {
      server_->Signal(SIGTERM);
      server_->Wait(30s);
    }
  }

  std::string RevParse(const std::string& what) {
    std::string file = dir_ / "rev";
    Shell("git -C '" + src_ + "' rev-parse '" + what + "' > '" + file + "'");
    std::string text = ReadTextFile(file);
    return text.substr(0, text.find('\n'));
  }

  std::string Commit(const std::string& branch, int n) {
    ::setenv("RUNNER_TEST_BRANCH", branch.c_str(), 1);
    Shell("cd '" + src_ +
          "' && (git checkout -q \"$RUNNER_TEST_BRANCH\" 2>/dev/null || git checkout -q -b "
          "\"$RUNNER_TEST_BRANCH\" main) && echo " +
          std::to_string(n) +
          " > n.txt && git add -A && GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.com "
          "GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.com git commit -qm change && "
          "git checkout -q main");
    ::unsetenv("RUNNER_TEST_BRANCH");
    return RevParse(branch);
  }

  std::map<std::string, std::string> Env() {
    auto env = BaseEnv();
    env["HOOK_SECRET"] = kSecret;
    env["GITHUB_TOKEN"] = "ghp_workertoken123";
    env["ADMIN_TOKEN"] = kAdminToken;
    env["GATE_DIR"] = gate_;
    env["EVENTS_FILE"] = dir_ / "events";
    for (const auto& [name, value] : aws_env_) env[name] = value;
    return env;
  }

  void WriteConfig(const std::string& extra = "") {
    WriteTextFile(dir_ / "serve.yml", fmt::format(R"(listen: 127.0.0.1:0
state_dir: {}
queue: {}
records: {}
visibility_timeout: {}
poll_wait: 1s
log_interval: 200ms
{}repos:
  - name: acme/orders
    clone_url: file://{}
    secret_env: HOOK_SECRET
{})",
                                                  dir_ / "state", queue_, records_, visibility_,
                                                  extra, src_, repo_extra_));
  }

  void StartServer() {
    std::filesystem::create_directories(dir_ / "out/serve");
    server_ = std::make_unique<RunnerProcess>(
        std::vector<std::string>{"serve", "--config", dir_ / "serve.yml"}, dir_.path(), Env(),
        dir_ / "out/serve");
    std::smatch match;
    std::regex port_line(R"(\(port (\d+)\))");
    std::string out;
    ASSERT_TRUE(AwaitCondition([&] {
      out = ReadTextFile(dir_ / "out/serve/.stdout");
      return std::regex_search(out, match, port_line);
    })) << ReadTextFile(dir_ / "out/serve/.stderr");
    base_ = "http://127.0.0.1:" + match[1].str();
  }

  // Worker `i`, its output in out/worker-I.
  void StartWorker(int i) {
    std::string out = dir_ / fmt::format("out/worker-{}", i);
    std::filesystem::create_directories(out);
    workers_[i] = std::make_unique<RunnerProcess>(
        std::vector<std::string>{"worker", "--config", dir_ / "serve.yml"}, dir_.path(), Env(),
        out);
  }

  std::string WorkerOutput(int i) {
    return ReadTextFile(dir_ / fmt::format("out/worker-{}/.stdout", i)) +
           ReadTextFile(dir_ / fmt::format("out/worker-{}/.stderr", i));
  }

  std::string Diagnostics() {
    std::string text = "serve:\n" + ReadTextFile(dir_ / "out/serve/.stdout") +
                       ReadTextFile(dir_ / "out/serve/.stderr");
    for (const auto& [i, worker] : workers_) {
      text += fmt::format("worker {}:\n{}", i, WorkerOutput(i));
    }
    return text + "events:\n" + ReadTextFile(dir_ / "events");
  }

  aws::HttpResponse Get(const std::string& path) {
    aws::HttpRequest request;
    request.method = "GET";
    request.url = base_ + path;
    auto response = http_->Send(request);
    return response.value_or(aws::HttpResponse{});
  }

  // Pushes a new commit to `branch` and returns the id of the build it queued.
  std::string Push(const std::string& branch) {
    std::string before = heads_.contains(branch) ? heads_[branch] : std::string(40, '0');
    std::string after = Commit(branch, ++pushes_);
    heads_[branch] = after;
    std::string body = PushPayload("refs/heads/" + branch, before, after, src_).dump();
    deliveries_.push_back(body);
    aws::HttpResponse response = Deliver(pushes_);
    EXPECT_EQ(response.status, 202) << response.body;
    json answer = json::parse(response.body, nullptr, false);
    return answer.is_object() ? answer.value("id", "") : "";
  }

  // Sends push `n`'s delivery (again): GitHub's redelivery.
  aws::HttpResponse Deliver(int n) {
    const std::string& body = deliveries_.at(n - 1);
    aws::HttpRequest request;
    request.method = "POST";
    request.url = base_ + "/hooks/github";
    request.body = body;
    request.headers = {{"content-type", "application/json"},
                       {"x-github-event", "push"},
                       {"x-github-delivery", fmt::format("delivery-{}", n)},
                       {"x-hub-signature-256", SignDelivery(body, kSecret)}};
    auto response = http_->Send(request);
    EXPECT_TRUE(response) << response.error();
    return response.value_or(aws::HttpResponse{});
  }

  // POST /builds/ID/ACTION with the admin token.
  aws::HttpResponse Act(const std::string& id, const std::string& action) {
    aws::HttpRequest request;
    request.method = "POST";
    request.url = base_ + "/builds/" + id + "/" + action;
    request.headers = {{"authorization", std::string("Bearer ") + kAdminToken}};
    auto response = http_->Send(request);
    return response.value_or(aws::HttpResponse{});
  }

  json Build(const std::string& id) {
    return json::parse(Get("/builds/" + id + ".json").body, nullptr, false);
  }

  // Waits until the build has ended (success or skipped); returns its record.
  json AwaitEnded(const std::string& id) {
    json build;
    bool ended = AwaitCondition(
        [&] {
          build = Build(id);
          std::string status = build.is_object() ? build.value("status", "") : "";
          return status != "" && status != "queued" && status != "running" &&
                 status != "cancelling" && status != "abandoned";
        },
        90s);
    EXPECT_TRUE(ended) << id << " is " << build.dump(1) << "\n" << Diagnostics();
    return build;
  }

  std::vector<Event> Events() {
    std::vector<Event> events;
    std::istringstream lines(ReadTextFile(dir_ / "events"));
    for (std::string line; std::getline(lines, line);) {
      Event event;
      std::istringstream fields(line);
      fields >> event.kind >> event.branch >> event.number >> event.pid;
      events.push_back(event);
    }
    return events;
  }

  // The numbers of the builds started, in the order they started.
  std::vector<int> StartedNumbers() {
    std::vector<int> started;
    for (const Event& event : Events()) {
      if (event.kind == "start") started.push_back(event.number);
    }
    return started;
  }

  // `pushes` pushes over `branches` branches, round robin; then each is built once or skipped
  // as superseded, each branch one build at a time in order, the last push of every branch
  // built. `restarted`: numbers of builds whose first attempt's worker was killed.
  void PushAndCheck(int pushes, int branches, const std::set<int>& restarted = {}) {
    std::vector<std::string> ids;
    for (int i = 0; i < pushes; ++i) ids.push_back(Push(fmt::format("b{}", i % branches)));
    std::set<std::string> unique(ids.begin(), ids.end());
    json queue = json::parse(Get("/builds.json").body, nullptr, false)["queue"];
    EXPECT_TRUE(queue.is_object() && queue["waiting"].is_number_integer()) << queue.dump();
    EXPECT_EQ(unique.size(), ids.size()) << "a build number was used twice";
    std::map<std::string, std::string> statuses;
    for (const std::string& id : ids) {
      json build = AwaitEnded(id);
      std::string status = build.value("status", "");
      statuses[id] = status;
      if (status == "skipped") {
        EXPECT_NE(build.value("reason", "").find("superseded"), std::string::npos) << build.dump();
      } else {
        EXPECT_EQ(status, "success") << id << ": " << build.dump(1) << "\n" << Diagnostics();
      }
    }
    for (int b = 0; b < branches; ++b) {
      const std::string& last = ids[pushes - branches + b];
      EXPECT_EQ(statuses[last], "success") << "the last push of its branch: " << last;
    }
    // Per branch: start, end, start, end..., the numbers rising; each built build ended once.
    std::map<std::string, std::vector<Event>> by_branch;
    for (const Event& event : Events()) by_branch[event.branch].push_back(event);
    std::map<std::string, int> ends;
    for (const auto& [branch, events] : by_branch) {
      int last = 0;
      for (size_t i = 0; i < events.size(); ++i) {
        const Event& event = events[i];
        const std::string id = fmt::format("orders-{}-{}", branch, event.number);
        if (event.kind == "end") {
          ++ends[id];
          continue;
        }
        if (restarted.contains(event.number) &&
            (i + 1 == events.size() || events[i + 1].kind != "end")) {
          continue;  // the attempt of the worker killed
        }
        EXPECT_GT(event.number, last) << branch << " built out of order\n" << Diagnostics();
        ASSERT_LT(i + 1, events.size()) << id << " started and never ended";
        EXPECT_EQ(events[i + 1].kind, "end") << branch << ": two builds at once\n" << Diagnostics();
        EXPECT_EQ(events[i + 1].number, event.number);
        last = event.number;
      }
    }
    for (const auto& [id, status] : statuses) {
      const int expected = status == "success" ? 1 : 0;
      EXPECT_EQ(ends[id], expected) << id << " (" << status << ") built " << ends[id] << " times";
    }
  }

  TempDir dir_;
  std::unique_ptr<aws::HttpClient> http_ = aws::MakeCurlHttpClient();
  std::string src_, gate_, queue_, records_, base_;
  std::string repo_extra_;  // more keys of the repository's entry
  std::string visibility_ = "3s";
  std::map<std::string, std::string> aws_env_;
  std::map<std::string, std::string> heads_;
  std::vector<std::string> deliveries_;  // each push's body, in order
  std::unique_ptr<FaultProxy> proxy_;
  std::unique_ptr<RunnerProcess> server_;
  std::map<int, std::unique_ptr<RunnerProcess>> workers_;
  int pushes_ = 0;
};

TEST_F(WorkersE2eTest, ThreeWorkersOnADirectoryQueueBuildThirtyPushesOnceEachInOrder) {
  UseDirectories();
  WriteConfig();
  StartServer();
  for (int i = 0; i < 3; ++i) StartWorker(i);
  PushAndCheck(30, 5);
}

// A server that stopped after it recorded a push's build and before the queue had its message
// left the delivery's mark not `queued` (here: the message and its deduplication id removed,
// the mark rewritten). GitHub's redelivery sends the recorded build, under its number, and a
// worker builds it once; a redelivery after that is a duplicate. A mark naming a build with no
// entry in the records is an error that says so.
TEST_F(WorkersE2eTest, ARedeliveryAfterAStopBeforeTheSendQueuesTheRecordedBuild) {
  UseDirectories();
  WriteConfig();
  StartServer();
  ASSERT_EQ(Push("main"), "orders-main-1");
  for (const char* sub : {"ready", "dedup"}) {
    for (const auto& file :
         std::filesystem::directory_iterator(std::filesystem::path(dir_ / "queue") / sub)) {
      std::filesystem::remove(file.path());
    }
  }
  const std::string mark = dir_ / "records/deliveries/delivery-1";
  ASSERT_TRUE(std::filesystem::exists(mark));
  WriteTextFile(mark, R"({"id": "orders-main-1", "queued": false})");

  aws::HttpResponse again = Deliver(1);
  ASSERT_EQ(again.status, 202) << again.body << Diagnostics();
  EXPECT_EQ(json::parse(again.body)["id"], "orders-main-1");
  StartWorker(0);
  EXPECT_EQ(AwaitEnded("orders-main-1").value("status", ""), "success") << Diagnostics();
  EXPECT_EQ(StartedNumbers(), (std::vector<int>{1})) << Diagnostics();
  aws::HttpResponse late = Deliver(1);
  EXPECT_EQ(late.status, 200) << late.body;
  EXPECT_EQ(json::parse(late.body, nullptr, false).value("duplicate", false), true) << late.body;

  WriteTextFile(mark, R"({"id": "orders-main-7", "queued": false})");
  aws::HttpResponse lost = Deliver(1);
  EXPECT_EQ(lost.status, 500);
  EXPECT_THAT(lost.body, ::testing::HasSubstr(
                             "delivery delivery-1 names build orders-main-7, which has no entry"));
}

// A rerun from the build page, with `queue:`: a new build of the same commit, numbered from the
// records, that a worker builds; it leaves the branch's head alone, so the next push still
// builds. A build that has not ended cannot be rerun.
TEST_F(WorkersE2eTest, ARerunOnTheQueueBuildsTheSameCommitAgain) {
  UseDirectories();
  WriteConfig("admin_token_env: ADMIN_TOKEN\n");
  StartServer();
  const std::string first = Push("main");
  ASSERT_EQ(first, "orders-main-1");
  aws::HttpResponse early = Act(first, "rerun");  // no worker yet: still queued
  EXPECT_EQ(early.status, 409) << early.body;
  EXPECT_THAT(early.body,
              ::testing::HasSubstr("cannot rerun build orders-main-1: it has not ended"));
  EXPECT_EQ(Act("orders-main-99", "rerun").status, 404);

  StartWorker(0);
  json built = AwaitEnded(first);
  ASSERT_EQ(built.value("status", ""), "success") << Diagnostics();
  aws::HttpResponse rerun = Act(first, "rerun");
  ASSERT_EQ(rerun.status, 202) << rerun.body;
  const std::string again = json::parse(rerun.body)["id"];
  EXPECT_EQ(again, "orders-main-2");
  json rebuilt = AwaitEnded(again);
  EXPECT_EQ(rebuilt.value("status", ""), "success") << Diagnostics();
  EXPECT_EQ(rebuilt["build"]["commit"], heads_["main"]);
  EXPECT_EQ(rebuilt["build"]["commit"], built["build"]["commit"]);

  const std::string next = Push("main");
  EXPECT_EQ(next, "orders-main-3");
  EXPECT_EQ(AwaitEnded(next).value("status", ""), "success") << Diagnostics();
  // The branch has moved on, which would skip a push's build of the old commit; not a rerun's.
  aws::HttpResponse old = Act(first, "rerun");
  ASSERT_EQ(old.status, 202) << old.body;
  json old_again = AwaitEnded(json::parse(old.body)["id"]);
  EXPECT_EQ(old_again.value("status", ""), "success") << Diagnostics();
  EXPECT_EQ(old_again["build"]["commit"], built["build"]["commit"]);
  EXPECT_NE(old_again["build"]["commit"], heads_["main"]);
  EXPECT_EQ(StartedNumbers(), (std::vector<int>{1, 2, 3, 4})) << Diagnostics();
}

// Cancel from the build page, with `queue:`: a build still queued shows `cancelling` with the
// reason until the worker that takes it records it cancelled, without running; a running one
// is stopped by the worker building it, which publishes the build's own record of it. An ended
// build cannot be cancelled.
TEST_F(WorkersE2eTest, CancelOnTheQueueStopsAQueuedAndARunningBuild) {
  UseDirectories();
  WriteConfig("admin_token_env: ADMIN_TOKEN\n");
  StartServer();
  const std::string queued = Push("b1");
  ASSERT_EQ(queued, "orders-b1-1");
  aws::HttpResponse asked = Act(queued, "cancel");
  EXPECT_EQ(asked.status, 202) << asked.body;
  EXPECT_EQ(Act("orders-b1-99", "cancel").status, 404);
  json waiting = Build(queued);
  EXPECT_EQ(waiting.value("status", ""), "cancelling") << waiting.dump(1);
  EXPECT_EQ(waiting.value("reason", ""), "cancelled from the build page");

  StartWorker(0);
  json record = AwaitEnded(queued);
  EXPECT_EQ(record.value("status", ""), "cancelled") << record.dump(1);
  EXPECT_EQ(record.value("reason", ""), "cancelled from the build page");

  const std::string running = "orders-b2-2";
  WriteTextFile(gate_ + "/hold-" + running, "");
  ASSERT_EQ(Push("b2"), running);
  ASSERT_TRUE(AwaitCondition([&] { return Build(running).value("status", "") == "running"; }, 30s))
      << Diagnostics();
  asked = Act(running, "cancel");
  EXPECT_EQ(asked.status, 202) << asked.body;
  record = AwaitEnded(running);
  EXPECT_EQ(record.value("status", ""), "cancelled") << record.dump(1) << Diagnostics();
  ASSERT_TRUE(record["steps"].is_array() && record["steps"].size() == 1) << record.dump(1);
  EXPECT_EQ(record["steps"][0].value("status", ""), "cancelled");
  EXPECT_NE(Get("/builds/" + running + "/logs/build.log").body.find("waiting"), std::string::npos);

  aws::HttpResponse late = Act(running, "cancel");
  EXPECT_EQ(late.status, 409) << late.body;
  EXPECT_THAT(late.body, ::testing::HasSubstr("cannot cancel build orders-b2-2: it has ended"));
  std::vector<std::string> seen;
  for (const Event& event : Events()) {
    seen.push_back(fmt::format("{} {} {}", event.kind, event.branch, event.number));
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"start b2 2"})) << Diagnostics();
}

// The worker that holds the first build is killed with SIGKILL while the build runs; the build
// page of the server showed it running with its log, live. The message comes back after its
// visibility timeout and another worker builds it (attempt 2), the first attempt marked
// abandoned, its step stopped by the watchdog: it never ends, nothing is published twice.
TEST_F(WorkersE2eTest, OnSqsAndS3AWorkerKilledMidBuildLeavesItsBuildToAnother) {
  UseMoto();
  if (IsSkipped() || HasFatalFailure()) return;
  WriteConfig();
  StartServer();
  for (int i = 0; i < 3; ++i) StartWorker(i);

  const std::string held = "orders-b0-1";
  WriteTextFile(gate_ + "/hold-" + held, "");
  ASSERT_EQ(Push("b0"), held);
  // Running on some worker, and the server's page shows it live.
  ASSERT_TRUE(AwaitCondition([&] { return Build(held).value("status", "") == "running"; }, 30s))
      << Diagnostics();
  ASSERT_TRUE(AwaitCondition(
      [&] {
        return Get("/builds/" + held + "/logs/build.log").body.find("waiting") != std::string::npos;
      },
      30s))
      << Diagnostics();
  int holder = -1;
  for (const auto& [i, worker] : workers_) {
    if (WorkerOutput(i).find(held + " started") != std::string::npos) holder = i;
  }
  ASSERT_GE(holder, 0) << Diagnostics();
  std::vector<Event> events = Events();
  ASSERT_EQ(events.size(), 1u);
  workers_[holder]->Signal(SIGKILL);
  workers_[holder]->Wait(10s);
  // The watchdog stops the killed worker's step.
  EXPECT_TRUE(AwaitCondition([&] { return !ProcessExists(events[0].pid); }, 20s));
  std::filesystem::remove(gate_ + "/hold-" + held);

  json build = AwaitEnded(held);
  EXPECT_EQ(build.value("status", ""), "success") << build.dump(1) << Diagnostics();
  EXPECT_EQ(build.value("attempt", 0), 2);
  // The page's event stream of the step: the log copied from the records' chunks, then its end.
  std::string stream = Get("/events/" + held + "/build").body;
  EXPECT_NE(stream.find("building " + held), std::string::npos) << stream;
  EXPECT_NE(stream.find("event: end"), std::string::npos) << stream;
  PushAndCheck(30, 5, {1});
  std::vector<Event> all = Events();
  EXPECT_EQ(std::count_if(all.begin(), all.end(),
                          [](const Event& e) {
                            return e.branch == "b0" && e.number == 1 && e.kind == "start";
                          }),
            2);
}

// SQS and S3 briefly out of reach: connections dropped and 503s, in runs shorter than the
// clients' retries, on the server's and the workers' requests alike. Nothing is lost, and no
// build runs twice: "briefly" is well inside the visibility timeout, which the heartbeat keeps
// extending through a few dropped requests and their retries' backoff (up to 1.75 s).
TEST_F(WorkersE2eTest, SqsAndS3BrieflyUnreachableLoseNothing) {
  visibility_ = "6s";
  UseMoto(R"([{"method": "POST", "skip": 10, "times": 3, "action": "drop"},
              {"method": "POST", "skip": 40, "times": 3, "action": "503"},
              {"method": "PUT", "skip": 5, "times": 3, "action": "drop"},
              {"method": "PUT", "skip": 30, "times": 3, "action": "503"},
              {"method": "GET", "skip": 20, "times": 3, "action": "drop"}])");
  if (IsSkipped() || HasFatalFailure()) return;
  WriteConfig();
  StartServer();
  for (int i = 0; i < 2; ++i) StartWorker(i);
  PushAndCheck(10, 2);
  std::string log = ReadTextFile(proxy_->log_path());
  EXPECT_NE(log.find(R"("action":"drop")"), std::string::npos) << "no fault was injected";
  EXPECT_NE(log.find(R"("action":"503")"), std::string::npos) << "no fault was injected";
}

// A build no worker can handle (its repository gone) is received max_receives times, then goes
// to the dead letters, and its page says so.
TEST_F(WorkersE2eTest, APoisonBuildGoesToTheDeadLettersAndItsPageSaysSo) {
  UseDirectories();
  WriteConfig("max_receives: 2\n");
  StartServer();
  const std::string id = Push("b0");
  std::filesystem::rename(src_, src_ + "-gone");
  StartWorker(0);
  json build = AwaitEnded(id);
  EXPECT_EQ(build.value("status", ""), "error");
  EXPECT_NE(build.value("reason", "").find("dead-letter queue after 2 receives"), std::string::npos)
      << build.dump(1);
  EXPECT_TRUE(AwaitCondition([&] {
    return std::filesystem::exists(dir_ / "queue/dead/000000000001.json");
  })) << Diagnostics();
}

TEST_F(WorkersE2eTest, ASigtermedWorkerPastItsGraceHandsItsBuildBack) {
  UseDirectories();
  FakeGitHub github;
  repo_extra_ = "    token_env: GITHUB_TOKEN\n";
  WriteConfig("stop_grace: 1s\ngithub_api: " + github.url() + "\n");
  StartServer();
  StartWorker(0);
  const std::string held = "orders-b0-1";
  WriteTextFile(gate_ + "/hold-" + held, "");
  ASSERT_EQ(Push("b0"), held);
  ASSERT_TRUE(AwaitCondition([&] { return Events().size() == 1; }, 30s)) << Diagnostics();
  workers_[0]->Signal(SIGTERM);
  RunResult stopped = workers_[0]->Wait(30s);
  EXPECT_EQ(stopped.exit_code, 0) << stopped.err;
  EXPECT_NE(stopped.out.find(held + " abandoned"), std::string::npos) << stopped.out;
  EXPECT_EQ(Build(held).value("status", ""), "abandoned");

  // Handed back at once: a new worker takes it well before its visibility would run out.
  std::filesystem::remove(gate_ + "/hold-" + held);
  StartWorker(1);
  json build = AwaitEnded(held);
  EXPECT_EQ(build.value("status", ""), "success") << build.dump(1) << Diagnostics();
  EXPECT_EQ(build.value("attempt", 0), 2);
  // The commit's statuses: queued by the server, running and then success from the workers.
  EXPECT_TRUE(AwaitCondition([&] { return github.requests().size() >= 4; })) << Diagnostics();
  std::vector<std::string> states;
  for (const FakeRequest& request : github.requests()) {
    states.push_back(json::parse(request.body).value("state", ""));
  }
  EXPECT_EQ(states, (std::vector<std::string>{"pending", "pending", "pending", "success"}));
  // The token is in no output and no record.
  std::string everything = Diagnostics();
  for (const auto& file : std::filesystem::recursive_directory_iterator(dir_ / "records")) {
    if (file.is_regular_file()) everything += ReadTextFile(file.path().string());
  }
  EXPECT_EQ(everything.find("ghp_workertoken123"), std::string::npos);
}

}  // namespace
}  // namespace runner::testing
