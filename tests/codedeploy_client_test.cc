// The CodeDeploy client: against a scripted HttpClient, the exact X-Amz-Target headers and JSON
// bodies it sends, the answers it reads (samples in the shapes AWS documents), paging, batching,
// errors and retries; then against a real moto_server, a deployment created and read back.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "runner/aws/codedeploy.h"
#include "tests/fake_http_client.h"
#include "tests/moto_server.h"

namespace runner::aws {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Json = nlohmann::json;

constexpr char kUrl[] = "http://127.0.0.1:4566/";

HttpResponse Response(int status, std::string body) {
  return FakeHttpClient::Ok(std::move(body), status,
                            {{"content-type", "application/x-amz-json-1.1"}});
}

std::chrono::system_clock::time_point Seconds(double seconds) {
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::duration<double>(seconds)));
}

struct Fixture {
  FakeHttpClient http;
  StaticCredentialsProvider credentials{TestCredentials()};

  std::unique_ptr<CodeDeployClient> Client() {
    CodeDeployOptions options;
    options.region = "eu-west-1";
    options.endpoint = "http://127.0.0.1:4566";
    options.sleep = [](std::chrono::milliseconds) {};
    auto client = CodeDeployClient::Create(http, credentials, std::move(options));
    EXPECT_TRUE(client.has_value()) << client.error();
    return std::move(*client);
  }
  std::vector<Json> Bodies() const {
    std::vector<Json> bodies;
    for (const auto& request : http.Requests()) bodies.push_back(Json::parse(request.body));
    return bodies;
  }
  std::vector<std::string> Targets() const {
    std::vector<std::string> targets;
    for (const auto& request : http.Requests()) targets.push_back(request.Header("x-amz-target"));
    return targets;
  }
};

// --- against a scripted HttpClient ---

TEST(CodeDeployClientTest, CreateDeploymentSendsTheS3RevisionAndOptions) {
  Fixture f;
  f.http.Respond("POST", kUrl, Response(200, R"({"deploymentId":"d-A1B2C3D4E"})"));
  CreateDeploymentRequest request;
  request.application = "orders";
  request.group = "orders-stg";
  request.config = "CodeDeployDefault.OneAtATime";
  request.revision = {"builds", "main/orders-main-157/app.zip", "zip",
                      "0123456789abcdef0123456789abcdef", "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY"};
  request.file_exists_behavior = FileExistsBehavior::kOverwrite;
  request.auto_rollback = AutoRollback{};
  request.description = "runner orders-main-157";
  auto id = f.Client()->CreateDeployment(request);
  ASSERT_TRUE(id.has_value()) << id.error();
  EXPECT_EQ(*id, "d-A1B2C3D4E");

  auto sent = f.http.Requests();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].method, "POST");
  EXPECT_EQ(sent[0].url, kUrl);
  EXPECT_EQ(sent[0].Header("x-amz-target"), "CodeDeploy_20141006.CreateDeployment");
  EXPECT_EQ(sent[0].Header("content-type"), "application/x-amz-json-1.1");
  EXPECT_THAT(sent[0].Header("authorization"), HasSubstr("/eu-west-1/codedeploy/aws4_request"));
  EXPECT_EQ(f.Bodies()[0], Json::parse(R"({
    "applicationName": "orders",
    "deploymentGroupName": "orders-stg",
    "deploymentConfigName": "CodeDeployDefault.OneAtATime",
    "description": "runner orders-main-157",
    "fileExistsBehavior": "OVERWRITE",
    "autoRollbackConfiguration": {
      "enabled": true,
      "events": ["DEPLOYMENT_FAILED", "DEPLOYMENT_STOP_ON_REQUEST"]
    },
    "revision": {
      "revisionType": "S3",
      "s3Location": {
        "bucket": "builds",
        "key": "main/orders-main-157/app.zip",
        "bundleType": "zip",
        "eTag": "0123456789abcdef0123456789abcdef",
        "version": "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY"
      }
    }
  })"));
}

TEST(CodeDeployClientTest, CreateDeploymentLeavesOutWhatIsNotGiven) {
  Fixture f;
  f.http.Respond("POST", kUrl, Response(200, R"({"deploymentId":"d-1"})"));
  CreateDeploymentRequest request;
  request.application = "orders";
  request.group = "orders-stg";
  request.revision.bucket = "builds";
  request.revision.key = "app.zip";
  request.revision.etag = "abc";
  for (auto [behavior, name] : {std::pair{FileExistsBehavior::kDisallow, "DISALLOW"},
                                std::pair{FileExistsBehavior::kRetain, "RETAIN"}}) {
    request.file_exists_behavior = behavior;
    ASSERT_TRUE(f.Client()->CreateDeployment(request).has_value());
    EXPECT_EQ(f.Bodies().back()["fileExistsBehavior"], name);
  }
  request.file_exists_behavior.reset();
  request.auto_rollback = AutoRollback{false, {}};
  ASSERT_TRUE(f.Client()->CreateDeployment(request).has_value());
  EXPECT_EQ(f.Bodies().back(), Json::parse(R"({
    "applicationName": "orders",
    "deploymentGroupName": "orders-stg",
    "autoRollbackConfiguration": {"enabled": false, "events": []},
    "revision": {"revisionType": "S3",
                 "s3Location": {"bucket": "builds", "key": "app.zip", "bundleType": "zip",
                                "eTag": "abc"}}
  })"));
}

TEST(CodeDeployClientTest, ErrorsNameTheCallAndAwsCode) {
  Fixture f;
  f.http.Respond("POST", kUrl,
                 Response(400, R"({"__type":"DeploymentGroupDoesNotExistException",)"
                               R"("message":"No Deployment Group found for name: orders-stg"})"));
  CreateDeploymentRequest request;
  request.application = "orders";
  request.group = "orders-stg";
  auto id = f.Client()->CreateDeployment(request);
  ASSERT_FALSE(id.has_value());
  EXPECT_THAT(id.error(), HasSubstr("DeploymentGroupDoesNotExistException: No Deployment Group "
                                    "found for name: orders-stg"));
  EXPECT_THAT(id.error(), HasSubstr("CodeDeploy CreateDeployment orders/orders-stg"));
  EXPECT_EQ(f.http.RequestCount(), 1u);  // not retried

  f.http.Respond(
      "POST", kUrl,
      Response(400, R"({"__type":"com.amazonaws.codedeploy#DeploymentDoesNotExistException",)"
                    R"("message":"The deployment d-X does not exist"})"));
  auto deployment = f.Client()->GetDeployment("d-X");
  ASSERT_FALSE(deployment.has_value());
  EXPECT_THAT(deployment.error(), HasSubstr("DeploymentDoesNotExistException"));
  EXPECT_THAT(deployment.error(), HasSubstr("CodeDeploy GetDeployment d-X"));
}

TEST(CodeDeployClientTest, ThrottlingIsRetriedByTheRequestLayer) {
  Fixture f;
  f.http.Respond("POST", kUrl,
                 Response(400, R"({"__type":"ThrottlingException","message":"Rate exceeded"})"));
  f.http.Respond("POST", kUrl, Response(200, R"({"status":"Pending","statusMessage":"stopping"})"));
  auto stopped = f.Client()->StopDeployment("d-A1B2C3D4E");
  ASSERT_TRUE(stopped.has_value()) << stopped.error();
  EXPECT_EQ(stopped->status, "Pending");
  EXPECT_EQ(stopped->message, "stopping");
  EXPECT_EQ(f.http.RequestCount(), 2u);
  EXPECT_THAT(f.Targets(), ElementsAre("CodeDeploy_20141006.StopDeployment",
                                       "CodeDeploy_20141006.StopDeployment"));
  EXPECT_EQ(f.Bodies()[1],
            Json::parse(R"({"deploymentId":"d-A1B2C3D4E","autoRollbackEnabled":true})"));

  ASSERT_TRUE(f.Client()->StopDeployment("d-2", false).has_value());
  EXPECT_EQ(f.Bodies().back(),
            Json::parse(R"({"deploymentId":"d-2","autoRollbackEnabled":false})"));
}

TEST(CodeDeployClientTest, GetDeploymentReadsStatusErrorOverviewRollbackAndTimes) {
  Fixture f;
  f.http.Respond("POST", kUrl, Response(200, R"({
    "deploymentInfo": {
      "applicationName": "orders",
      "deploymentGroupName": "orders-stg",
      "deploymentConfigName": "CodeDeployDefault.OneAtATime",
      "deploymentId": "d-A1B2C3D4E",
      "previousRevision": {"revisionType": "S3",
                           "s3Location": {"bucket": "builds", "key": "old.zip", "bundleType": "zip"}},
      "revision": {
        "revisionType": "S3",
        "s3Location": {"bucket": "builds", "key": "main/157/app.zip", "bundleType": "zip",
                       "eTag": "0123abcd", "version": "v1"}
      },
      "status": "Failed",
      "errorInformation": {
        "code": "HEALTH_CONSTRAINTS",
        "message": "The overall deployment failed because too many individual instances failed deployment"
      },
      "createTime": 1722506405.123,
      "startTime": 1722506406.5,
      "completeTime": 1722506705,
      "deploymentOverview": {"Pending": 1, "InProgress": 0, "Succeeded": 2, "Failed": 1,
                             "Skipped": 3, "Ready": 0},
      "creator": "user",
      "ignoreApplicationStopFailures": false,
      "autoRollbackConfiguration": {"enabled": true, "events": ["DEPLOYMENT_FAILED"]},
      "updateOutdatedInstancesOnly": false,
      "rollbackInfo": {
        "rollbackDeploymentId": "d-ROLLBACK1",
        "rollbackMessage": "Automatic rollback triggered by deployment failure"
      },
      "deploymentStyle": {"deploymentType": "IN_PLACE",
                          "deploymentOption": "WITHOUT_TRAFFIC_CONTROL"},
      "instanceTerminationWaitTimeStarted": false,
      "fileExistsBehavior": "DISALLOW",
      "deploymentStatusMessages": [],
      "computePlatform": "Server"
    }
  })"));
  auto deployment = f.Client()->GetDeployment("d-A1B2C3D4E");
  ASSERT_TRUE(deployment.has_value()) << deployment.error();
  EXPECT_EQ(f.Targets()[0], "CodeDeploy_20141006.GetDeployment");
  EXPECT_EQ(f.Bodies()[0], Json::parse(R"({"deploymentId":"d-A1B2C3D4E"})"));
  EXPECT_EQ(deployment->id, "d-A1B2C3D4E");
  EXPECT_EQ(deployment->application, "orders");
  EXPECT_EQ(deployment->group, "orders-stg");
  EXPECT_EQ(deployment->status, "Failed");
  EXPECT_TRUE(IsTerminal(deployment->status));
  EXPECT_EQ(deployment->error_code, "HEALTH_CONSTRAINTS");
  EXPECT_THAT(deployment->error_message, HasSubstr("too many individual instances failed"));
  EXPECT_EQ(deployment->overview.pending, 1);
  EXPECT_EQ(deployment->overview.in_progress, 0);
  EXPECT_EQ(deployment->overview.succeeded, 2);
  EXPECT_EQ(deployment->overview.failed, 1);
  EXPECT_EQ(deployment->overview.skipped, 3);
  EXPECT_EQ(deployment->overview.ready, 0);
  EXPECT_EQ(deployment->rollback_deployment_id, "d-ROLLBACK1");
  EXPECT_EQ(deployment->rollback_triggering_deployment_id, "");
  EXPECT_EQ(deployment->rollback_message, "Automatic rollback triggered by deployment failure");
  ASSERT_TRUE(deployment->revision.has_value());
  EXPECT_EQ(deployment->revision->bucket, "builds");
  EXPECT_EQ(deployment->revision->key, "main/157/app.zip");
  EXPECT_EQ(deployment->revision->bundle_type, "zip");
  EXPECT_EQ(deployment->revision->etag, "0123abcd");
  EXPECT_EQ(deployment->revision->version, "v1");
  EXPECT_EQ(deployment->create_time, Seconds(1722506405.123));
  EXPECT_EQ(deployment->complete_time, Seconds(1722506705));
}

TEST(CodeDeployClientTest, GetDeploymentOfADeploymentInProgress) {
  Fixture f;
  f.http.Respond("POST", kUrl, Response(200, R"({"deploymentInfo": {
    "deploymentId": "d-2", "status": "InProgress", "createTime": 1722506405,
    "rollbackInfo": {"rollbackTriggeringDeploymentId": "d-1",
                     "rollbackMessage": "rolling back d-1"},
    "revision": {"revisionType": "GitHub", "gitHubLocation": {"repository": "o/r"}}}})"));
  auto deployment = f.Client()->GetDeployment("d-2");
  ASSERT_TRUE(deployment.has_value()) << deployment.error();
  EXPECT_EQ(deployment->status, "InProgress");
  EXPECT_FALSE(IsTerminal(deployment->status));
  EXPECT_EQ(deployment->error_code, "");
  EXPECT_EQ(deployment->rollback_triggering_deployment_id, "d-1");
  EXPECT_EQ(deployment->revision, std::nullopt);
  EXPECT_EQ(deployment->complete_time, std::nullopt);
}

TEST(CodeDeployClientTest, AnswersThatCannotBeReadAreErrors) {
  Fixture f;
  f.http.Respond("POST", kUrl, Response(200, "<html>gateway"));
  auto deployment = f.Client()->GetDeployment("d-1");
  ASSERT_FALSE(deployment.has_value());
  EXPECT_EQ(deployment.error(), "CodeDeploy GetDeployment d-1: the answer is not a JSON object");

  f.http.Respond("POST", kUrl, Response(200, "{}"));
  deployment = f.Client()->GetDeployment("d-1");
  ASSERT_FALSE(deployment.has_value());
  EXPECT_EQ(deployment.error(), "CodeDeploy GetDeployment d-1: the answer holds no deploymentInfo");

  f.http.Respond("POST", kUrl,
                 Response(200, R"({"deploymentInfo":{"deploymentId":"d-1","createTime":true}})"));
  deployment = f.Client()->GetDeployment("d-1");
  ASSERT_FALSE(deployment.has_value());
  EXPECT_EQ(deployment.error(), "CodeDeploy GetDeployment d-1: createTime is not a time");

  f.http.Respond("POST", kUrl, Response(200, "{}"));
  auto id = f.Client()->CreateDeployment({});
  ASSERT_FALSE(id.has_value());
  EXPECT_THAT(id.error(), HasSubstr("the answer holds no deploymentId"));
}

TEST(IsTerminalTest, OnlySucceededFailedAndStopped) {
  for (const char* status : {"Succeeded", "Failed", "Stopped"}) EXPECT_TRUE(IsTerminal(status));
  for (const char* status : {"Created", "Queued", "InProgress", "Baking", "Ready", ""}) {
    EXPECT_FALSE(IsTerminal(status)) << status;
  }
}

TEST(CodeDeployClientTest, ListDeploymentInstancesFollowsNextToken) {
  Fixture f;
  f.http.Respond("POST", kUrl,
                 Response(200, R"({"instancesList":["i-01","i-02"],"nextToken":"page2"})"));
  f.http.Respond("POST", kUrl, Response(200, R"({"instancesList":["i-03"],"nextToken":"page3"})"));
  f.http.Respond("POST", kUrl, Response(200, R"({"instancesList":[]})"));
  auto ids = f.Client()->ListDeploymentInstances("d-A1B2C3D4E");
  ASSERT_TRUE(ids.has_value()) << ids.error();
  EXPECT_THAT(*ids, ElementsAre("i-01", "i-02", "i-03"));
  EXPECT_THAT(f.Targets(), ElementsAre("CodeDeploy_20141006.ListDeploymentInstances",
                                       "CodeDeploy_20141006.ListDeploymentInstances",
                                       "CodeDeploy_20141006.ListDeploymentInstances"));
  EXPECT_THAT(f.Bodies(),
              ElementsAre(Json::parse(R"({"deploymentId":"d-A1B2C3D4E"})"),
                          Json::parse(R"({"deploymentId":"d-A1B2C3D4E","nextToken":"page2"})"),
                          Json::parse(R"({"deploymentId":"d-A1B2C3D4E","nextToken":"page3"})")));
}

TEST(CodeDeployClientTest, BatchGetDeploymentInstancesReadsLifecycleEventsAndDiagnostics) {
  Fixture f;
  f.http.Respond("POST", kUrl, Response(200, R"({
    "instancesSummary": [
      {
        "deploymentId": "d-A1B2C3D4E",
        "instanceId": "i-0123456789abcdef0",
        "status": "Failed",
        "lastUpdatedAt": 1722506700.25,
        "instanceType": "Blue",
        "lifecycleEvents": [
          {"lifecycleEventName": "ApplicationStop", "status": "Succeeded",
           "startTime": 1722506410, "endTime": 1722506411.5,
           "diagnostics": {"errorCode": "Success", "scriptName": "",
                           "message": "Succeeded", "logTail": ""}},
          {"lifecycleEventName": "ApplicationStart", "status": "Failed",
           "startTime": 1722506600, "endTime": 1722506700,
           "diagnostics": {"errorCode": "ScriptFailed", "scriptName": "scripts/start.sh",
                           "message": "Script at specified location: scripts/start.sh run as user root failed with exit code 1",
                           "logTail": "[stderr]Job for orders.service failed.\n[stderr]See journalctl -xe\n"}},
          {"lifecycleEventName": "ValidateService", "status": "Skipped"}
        ]
      },
      {"deploymentId": "d-A1B2C3D4E", "instanceId": "i-0fedcba9876543210", "status": "Pending",
       "lastUpdatedAt": 1722506405, "lifecycleEvents": []}
    ]
  })"));
  auto instances = f.Client()->BatchGetDeploymentInstances(
      "d-A1B2C3D4E", {"i-0123456789abcdef0", "i-0fedcba9876543210"});
  ASSERT_TRUE(instances.has_value()) << instances.error();
  EXPECT_EQ(f.Targets()[0], "CodeDeploy_20141006.BatchGetDeploymentInstances");
  EXPECT_EQ(f.Bodies()[0], Json::parse(R"({"deploymentId":"d-A1B2C3D4E",
    "instanceIds":["i-0123456789abcdef0","i-0fedcba9876543210"]})"));
  ASSERT_EQ(instances->size(), 2u);
  const DeploymentInstance& failed = (*instances)[0];
  EXPECT_EQ(failed.instance_id, "i-0123456789abcdef0");
  EXPECT_EQ(failed.status, "Failed");
  EXPECT_EQ(failed.last_updated, Seconds(1722506700.25));
  ASSERT_EQ(failed.lifecycle_events.size(), 3u);
  EXPECT_EQ(failed.lifecycle_events[0].name, "ApplicationStop");
  EXPECT_EQ(failed.lifecycle_events[0].status, "Succeeded");
  EXPECT_EQ(failed.lifecycle_events[0].start, Seconds(1722506410));
  EXPECT_EQ(failed.lifecycle_events[0].end, Seconds(1722506411.5));
  EXPECT_EQ(failed.lifecycle_events[0].diagnostics.error_code, "Success");
  const LifecycleEvent& start = failed.lifecycle_events[1];
  EXPECT_EQ(start.name, "ApplicationStart");
  EXPECT_EQ(start.status, "Failed");
  EXPECT_EQ(start.diagnostics.error_code, "ScriptFailed");
  EXPECT_EQ(start.diagnostics.script_name, "scripts/start.sh");
  EXPECT_THAT(start.diagnostics.message, HasSubstr("failed with exit code 1"));
  EXPECT_EQ(start.diagnostics.log_tail,
            "[stderr]Job for orders.service failed.\n[stderr]See journalctl -xe\n");
  EXPECT_EQ(failed.lifecycle_events[2].name, "ValidateService");
  EXPECT_EQ(failed.lifecycle_events[2].start, std::nullopt);
  EXPECT_EQ(failed.lifecycle_events[2].diagnostics.log_tail, "");
  EXPECT_EQ((*instances)[1].instance_id, "i-0fedcba9876543210");
  EXPECT_EQ((*instances)[1].status, "Pending");
  EXPECT_TRUE((*instances)[1].lifecycle_events.empty());
}

TEST(CodeDeployClientTest, BatchGetDeploymentInstancesSendsAtMost25IdsACall) {
  Fixture f;
  f.http.handler = [](const HttpRequest& request) -> Result<HttpResponse> {
    const Json body = Json::parse(request.body);
    Json summaries = Json::array();
    for (const Json& id : body["instanceIds"]) {
      summaries.push_back({{"instanceId", id}, {"status", "Succeeded"}});
    }
    return Response(200, Json{{"instancesSummary", summaries}}.dump());
  };
  std::vector<std::string> ids;
  for (int i = 0; i < 60; ++i) ids.push_back(fmt::format("i-{:02}", i));
  auto instances = f.Client()->BatchGetDeploymentInstances("d-1", ids);
  ASSERT_TRUE(instances.has_value()) << instances.error();
  std::vector<Json> bodies = f.Bodies();
  ASSERT_EQ(bodies.size(), 3u);
  EXPECT_EQ(bodies[0]["instanceIds"].size(), 25u);
  EXPECT_EQ(bodies[1]["instanceIds"].size(), 25u);
  EXPECT_EQ(bodies[2]["instanceIds"].size(), 10u);
  EXPECT_EQ(bodies[1]["instanceIds"][0], "i-25");
  EXPECT_EQ(bodies[2]["instanceIds"][9], "i-59");
  ASSERT_EQ(instances->size(), 60u);
  for (int i = 0; i < 60; ++i) EXPECT_EQ((*instances)[i].instance_id, ids[i]);

  EXPECT_EQ(f.Client()->BatchGetDeploymentInstances("d-1", {})->size(), 0u);
  EXPECT_EQ(f.http.RequestCount(), 3u);  // none for no ids
}

TEST(CodeDeployClientTest, BatchGetDeploymentInstancesErrorMessageIsAnError) {
  Fixture f;
  f.http.Respond(
      "POST", kUrl,
      Response(200, R"({"instancesSummary":[],"errorMessage":"Instance i-9 not found"})"));
  auto instances = f.Client()->BatchGetDeploymentInstances("d-1", {"i-9"});
  ASSERT_FALSE(instances.has_value());
  EXPECT_EQ(instances.error(),
            "CodeDeploy BatchGetDeploymentInstances d-1: Instance i-9 not found");
}

// --- against moto_server ---

class CodeDeployMotoTest : public runner::testing::MotoServerTest {
 protected:
  // Sends OPERATION with `body` through a bare AwsClient: the client has no calls for setting
  // CodeDeploy up.
  void Send(std::string_view operation, const Json& body) {
    AwsClientOptions options;
    options.service = "codedeploy";
    options.endpoint = moto().endpoint();
    auto aws = AwsClient::Create(http_, credentials_, std::move(options));
    ASSERT_TRUE(aws.has_value()) << aws.error();
    auto response = (*aws)->Send(JsonRequest(kCodeDeployTarget, operation, body.dump()));
    ASSERT_TRUE(response.has_value()) << response.error().text;
  }

  std::unique_ptr<CodeDeployClient> Client() {
    CodeDeployOptions options;
    options.endpoint = moto().endpoint();
    auto client = CodeDeployClient::Create(http_, credentials_, std::move(options));
    EXPECT_TRUE(client.has_value()) << client.error();
    return std::move(*client);
  }

 private:
  std::unique_ptr<HttpClient> http_owner_ = MakeCurlHttpClient();
  HttpClient& http_ = *http_owner_;
  StaticCredentialsProvider credentials_{TestCredentials()};
};

TEST_F(CodeDeployMotoTest, CreateDeploymentRecordsTheRevision) {
  Send("CreateApplication", {{"applicationName", "orders"}, {"computePlatform", "Server"}});
  Send("CreateDeploymentGroup", {{"applicationName", "orders"},
                                 {"deploymentGroupName", "orders-stg"},
                                 {"serviceRoleArn", "arn:aws:iam::123456789012:role/codedeploy"}});
  auto client = Client();
  CreateDeploymentRequest request;
  request.application = "orders";
  request.group = "orders-stg";
  request.revision = {"builds", "main/orders-main-157/app.zip", "zip",
                      "0123456789abcdef0123456789abcdef", ""};
  request.file_exists_behavior = FileExistsBehavior::kOverwrite;
  request.auto_rollback = AutoRollback{};
  request.description = "runner orders-main-157";
  auto id = client->CreateDeployment(request);
  ASSERT_TRUE(id.has_value()) << id.error();
  EXPECT_FALSE(id->empty());

  auto deployment = client->GetDeployment(*id);
  ASSERT_TRUE(deployment.has_value()) << deployment.error();
  EXPECT_EQ(deployment->id, *id);
  EXPECT_EQ(deployment->application, "orders");
  EXPECT_EQ(deployment->group, "orders-stg");
  EXPECT_EQ(deployment->status, "Created");  // moto never moves a deployment on
  EXPECT_FALSE(IsTerminal(deployment->status));
  ASSERT_TRUE(deployment->revision.has_value());
  EXPECT_EQ(deployment->revision->bucket, "builds");
  EXPECT_EQ(deployment->revision->key, "main/orders-main-157/app.zip");
  EXPECT_EQ(deployment->revision->bundle_type, "zip");
  EXPECT_EQ(deployment->revision->etag, "0123456789abcdef0123456789abcdef");

  request.group = "orders-missing";
  auto missing = client->CreateDeployment(request);
  ASSERT_FALSE(missing.has_value());
  EXPECT_THAT(missing.error(), HasSubstr("DeploymentGroupDoesNotExistException"));
}

}  // namespace
}  // namespace runner::aws
