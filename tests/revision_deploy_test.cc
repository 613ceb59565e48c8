// Following a CodeDeploy deployment (runner/deploy/revision_deploy.h) against a scripted
// CodeDeploy: what moto cannot do (its deployments stay Created and StopDeployment answers 500).
#include "runner/deploy/revision_deploy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/fake_http_client.h"

namespace runner::deploy {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace aws;
using Json = nlohmann::json;

HttpResponse JsonAnswer(const Json& body) {
  HttpResponse response;
  response.status = 200;
  response.headers = {{"content-type", "application/x-amz-json-1.1"}};
  response.body = body.dump();
  return response;
}

Json Deployment(const std::string& id, const std::string& status, int succeeded, int failed,
                int in_progress, const std::string& rollback = "") {
  Json info = {{"deploymentId", id},
               {"applicationName", "orders"},
               {"deploymentGroupName", "orders-stg"},
               {"status", status},
               {"createTime", 1764590000},
               {"deploymentOverview",
                {{"Pending", 0},
                 {"InProgress", in_progress},
                 {"Succeeded", succeeded},
                 {"Failed", failed},
                 {"Skipped", 0},
                 {"Ready", 0}}}};
  if (status == "Failed") {
    info["errorInformation"] = {{"code", "HEALTH_CONSTRAINTS"},
                                {"message", "The overall deployment failed"}};
  }
  if (!rollback.empty()) info["rollbackInfo"] = {{"rollbackDeploymentId", rollback}};
  return {{"deploymentInfo", info}};
}

Json Event(const std::string& name, const std::string& status, const std::string& log = "") {
  Json event = {{"lifecycleEventName", name}, {"status", status}};
  if (status == "Failed") {
    event["diagnostics"] = {{"errorCode", "ScriptFailed"},
                            {"scriptName", "scripts/start.sh"},
                            {"message", "exit code 1"},
                            {"logTail", log}};
  }
  return event;
}

class RevisionDeployTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CodeDeployOptions options;
    options.endpoint = "http://127.0.0.1:1";
    options.sleep = [](std::chrono::milliseconds) {};
    auto client = CodeDeployClient::Create(http_, credentials_, options);
    ASSERT_TRUE(client.has_value()) << client.error();
    client_ = std::move(*client);
    http_.handler = [this](const HttpRequest& request) -> Result<HttpResponse> {
      std::string target;
      for (const auto& [name, value] : request.headers) {
        if (name == "X-Amz-Target" || name == "x-amz-target") target = value;
      }
      std::string operation = target.substr(target.find('.') + 1);
      operations_.push_back(operation);
      Json body = Json::parse(request.body, nullptr, false);
      return script_(operation, body);
    };
  }

  RevisionDeployRequest Request() {
    RevisionDeployRequest request;
    request.application = "orders";
    request.group = "orders-stg";
    request.revision.bucket = "artifacts";
    request.revision.key = "orders/main/orders-main-7/orders.zip";
    request.revision.etag = "0123456789abcdef";
    request.description = "orders-main-7";
    request.sleep = [](Duration) {};
    request.log = [this](std::string_view line) { log_ += std::string(line) + "\n"; };
    return request;
  }

  int Count(const std::string& operation) const {
    return static_cast<int>(std::ranges::count(operations_, operation));
  }

  FakeHttpClient http_;
  StaticCredentialsProvider credentials_{TestCredentials()};
  std::unique_ptr<CodeDeployClient> client_;
  std::function<Result<HttpResponse>(const std::string&, const Json&)> script_;
  std::vector<std::string> operations_;
  std::string log_;
};

TEST_F(RevisionDeployTest, ASuccessShowsEveryInstancesEventsAndTheProgress) {
  int polls = 0;
  script_ = [&](const std::string& op, const Json& body) -> Result<HttpResponse> {
    if (op == "CreateDeployment") {
      EXPECT_EQ(body["revision"]["s3Location"]["eTag"], "0123456789abcdef");
      EXPECT_EQ(body["autoRollbackConfiguration"]["enabled"], true);
      return JsonAnswer({{"deploymentId", "d-1"}});
    }
    if (op == "GetDeployment") {
      ++polls;
      return JsonAnswer(polls < 3 ? Deployment("d-1", "InProgress", polls - 1, 0, 1)
                                  : Deployment("d-1", "Succeeded", 2, 0, 0));
    }
    if (op == "ListDeploymentInstances") return JsonAnswer({{"instancesList", {"i-a", "i-b"}}});
    if (op == "BatchGetDeploymentInstances") {
      std::string b = polls < 2 ? "InProgress" : "Succeeded";
      return JsonAnswer({{"instancesSummary",
                          {{{"instanceId", "i-a"},
                            {"status", "Succeeded"},
                            {"lifecycleEvents", {Event("ApplicationStart", "Succeeded")}}},
                           {{"instanceId", "i-b"},
                            {"status", b},
                            {"lifecycleEvents", {Event("ApplicationStart", b)}}}}}});
    }
    return JsonAnswer(Json::object());
  };
  auto result = DeployRevision(*client_, Request());
  ASSERT_TRUE(result) << result.error() << "\n" << log_;
  EXPECT_EQ(result->deployment_id, "d-1");
  EXPECT_THAT(log_, HasSubstr("CodeDeploy deployment d-1 of s3://artifacts/orders/main/"
                              "orders-main-7/orders.zip to orders/orders-stg"));
  EXPECT_THAT(log_, HasSubstr("i-b  ApplicationStart     InProgress"));
  EXPECT_THAT(log_, HasSubstr("i-b  ApplicationStart     Succeeded"));
  EXPECT_THAT(log_, HasSubstr("d-1 Succeeded: 2 of 2 instances succeeded"));
  // A status is logged once, however often it is seen.
  EXPECT_EQ(log_.find("i-a  ApplicationStart     Succeeded"),
            log_.rfind("i-a  ApplicationStart     Succeeded"));
}

TEST_F(RevisionDeployTest, AHookFailureNamesTheInstanceAndHookAndFollowsTheRollback) {
  script_ = [&](const std::string& op, const Json& body) -> Result<HttpResponse> {
    if (op == "CreateDeployment") return JsonAnswer({{"deploymentId", "d-1"}});
    if (op == "GetDeployment") {
      if (body["deploymentId"] == "d-2") return JsonAnswer(Deployment("d-2", "Succeeded", 1, 0, 0));
      return JsonAnswer(Deployment("d-1", "Failed", 0, 1, 0, "d-2"));
    }
    if (op == "ListDeploymentInstances") return JsonAnswer({{"instancesList", {"i-a"}}});
    if (op == "BatchGetDeploymentInstances") {
      return JsonAnswer(
          {{"instancesSummary",
            {{{"instanceId", "i-a"},
              {"status", "Failed"},
              {"lifecycleEvents",
               {Event("ApplicationStart", "Failed",
                      "[stderr]Job for orders.service failed.\n[stderr]See journalctl -xe")}}}}}});
    }
    return JsonAnswer(Json::object());
  };
  auto result = DeployRevision(*client_, Request());
  ASSERT_FALSE(result);
  EXPECT_THAT(result.error(), HasSubstr("CodeDeploy deployment d-1 Failed: HEALTH_CONSTRAINTS"));
  EXPECT_THAT(result.error(), HasSubstr("instance i-a hook ApplicationStart: ScriptFailed"));
  EXPECT_THAT(result.error(), HasSubstr("rolled back by d-2: Succeeded"));
  EXPECT_THAT(log_, HasSubstr("i-a failed in scripts/start.sh: ScriptFailed: exit code 1"));
  EXPECT_THAT(log_, HasSubstr("    [stderr]Job for orders.service failed.\n"));
  EXPECT_THAT(log_, HasSubstr("automatic rollback: d-2"));
}

TEST_F(RevisionDeployTest, ACancelStopsTheDeploymentWithRollbackAndFollowsItToTheEnd) {
  bool cancel = false;
  bool stopped = false;
  int polls = 0;
  script_ = [&](const std::string& op, const Json& body) -> Result<HttpResponse> {
    if (op == "CreateDeployment") return JsonAnswer({{"deploymentId", "d-1"}});
    if (op == "StopDeployment") {
      EXPECT_EQ(body["autoRollbackEnabled"], true);
      stopped = true;
      return JsonAnswer({{"status", "Pending"}, {"statusMessage", "Stopping"}});
    }
    if (op == "GetDeployment") {
      if (++polls == 2) cancel = true;
      return JsonAnswer(stopped && polls > 4 ? Deployment("d-1", "Stopped", 0, 0, 0)
                                             : Deployment("d-1", "InProgress", 0, 0, 1));
    }
    if (op == "ListDeploymentInstances") return JsonAnswer({{"instancesList", Json::array()}});
    return JsonAnswer(Json::object());
  };
  RevisionDeployRequest request = Request();
  request.cancelled = [&] { return cancel; };
  auto result = DeployRevision(*client_, request);
  ASSERT_FALSE(result);
  EXPECT_THAT(result.error(), HasSubstr("CodeDeploy deployment d-1 Stopped"));
  EXPECT_EQ(Count("StopDeployment"), 1);
  EXPECT_THAT(log_, HasSubstr("cancelled: stopping d-1 with automatic rollback"));
  EXPECT_EQ(polls, 5) << "followed until it stopped, and no further";
}

TEST_F(RevisionDeployTest, ThrottlingIsRetried) {
  int throttled = 0;
  script_ = [&](const std::string& op, const Json&) -> Result<HttpResponse> {
    if (op == "CreateDeployment" && throttled++ == 0) {
      HttpResponse response;
      response.status = 400;
      response.body = R"({"__type":"ThrottlingException","message":"Rate exceeded"})";
      return response;
    }
    if (op == "CreateDeployment") return JsonAnswer({{"deploymentId", "d-1"}});
    if (op == "GetDeployment") return JsonAnswer(Deployment("d-1", "Succeeded", 1, 0, 0));
    if (op == "ListDeploymentInstances") return JsonAnswer({{"instancesList", Json::array()}});
    return JsonAnswer(Json::object());
  };
  auto result = DeployRevision(*client_, Request());
  ASSERT_TRUE(result) << result.error();
  EXPECT_EQ(Count("CreateDeployment"), 2);
  EXPECT_THAT(log_, Not(HasSubstr("Rate exceeded")));
}

}  // namespace
}  // namespace runner::deploy
