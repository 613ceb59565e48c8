// `runner deploy` and `runner deployments` end to end (SPEC section 7): builds published to a
// local store by `runner run`, deployed to CloudFormation as moto_server emulates it on
// 127.0.0.1, rolled back, promoted, paused; skipped, saying so, where moto is not installed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

#include "runner/aws/s3_client.h"
#include "runner/sha256.h"
#include "tests/e2e_util.h"
#include "tests/fake_github.h"
#include "tests/fake_http_client.h"
#include "tests/moto_server.h"
#include "tests/s3_server.h"
#include "tests/test_util.h"

namespace runner::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kPipeline = R"(version: 1
project: orders
environments:
  stg:
    region: us-east-1
    stack: orders-stg
    branches: [main]
  prd:
    region: us-east-1
    stack: orders-prd
    role_arn: arn:aws:iam::123456789012:role/deployer
    requires: [stg]
    params: {Stage: production}
ledger: deployments
steps:
  - id: params
    params:
      dest: dist/params.json
      values: {QueueName: "orders-${{ build.number }}", Stage: staging, DbPassword: s3cr3t-db-value,
               Keep: "1"}
  - id: publish
    upload: {to: "store/${{ build.id }}/", files: [cfn/template.yaml, dist/params.json]}
)";

constexpr const char* kTemplate = R"(Parameters:
  QueueName: {Type: String}
  Stage: {Type: String}
  DbPassword: {Type: String, NoEcho: true}
  Keep: {Type: Number}
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Ref QueueName
      Tags: [{Key: stage, Value: !Ref Stage}, {Key: db, Value: !Ref DbPassword}]
  Config:
    Type: AWS::AutoScaling::LaunchConfiguration
    Properties: {ImageId: ami-12c6146b, InstanceType: t2.micro}
  Group:
    Type: AWS::AutoScaling::AutoScalingGroup
    UpdatePolicy:
      AutoScalingRollingUpdate: {MinInstancesInService: !Ref Keep, MaxBatchSize: 4}
    Properties:
      AvailabilityZones: [us-east-1a]
      LaunchConfigurationName: !Ref Config
      MinSize: 2
      MaxSize: 4
      TerminationPolicies: [OldestLaunchConfiguration, OldestInstance]
Outputs:
  QueueName:
    Value: !GetAtt Queue.QueueName
)";

class DeployE2eTest : public MotoServerTest {
 protected:
  void SetUp() override {
    MotoServerTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    MakeGitRepo(dir_.path(), {{"pipeline.yml", kPipeline}, {"cfn/template.yaml", kTemplate}});
    env_ = BaseEnv();
    env_["AWS_ENDPOINT_URL"] = moto().endpoint();
    env_["AWS_ACCESS_KEY_ID"] = "AKIDMOTO";
    env_["AWS_SECRET_ACCESS_KEY"] = "moto-secret-key";
    env_["AWS_REGION"] = "us-east-1";
    env_["AWS_EC2_METADATA_DISABLED"] = "true";
    env_["USER"] = "tester";
  }

  // Builds and publishes build NUMBER of `branch`.
  void Publish(int number, const std::string& branch = "main") {
    RunResult run = RunRunner({"run", "--branch", branch, "--build-number", std::to_string(number)},
                              dir_.path(), env_);
    ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  }

  RunResult Deploy(std::vector<std::string> args) {
    args.insert(args.begin(), "deploy");
    return RunRunner(args, dir_.path(), env_);
  }

  TempDir dir_;
  std::map<std::string, std::string> env_;
};

TEST_F(DeployE2eTest, DeploysRollsBackAndPromotesFromTheBuildsOwnBytes) {
  Publish(1);
  // Build 2 adds a queue.
  WriteTextFile(dir_.path() + "/cfn/template.yaml",
                std::string(kTemplate) + "  Dead:\n    Value: !Ref Dead\n");
  std::string with_dead = ReadTextFile(dir_.path() + "/cfn/template.yaml");
  with_dead.replace(with_dead.find("Outputs:"), 0, "  Dead:\n    Type: AWS::SQS::Queue\n");
  WriteTextFile(dir_.path() + "/cfn/template.yaml", with_dead);
  Publish(2);

  RunResult first = Deploy({"orders-main-1", "--env", "stg"});
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  EXPECT_THAT(first.out,
              HasSubstr("deploying orders-main-1 to stg (stack orders-stg in us-east-1)"));
  EXPECT_THAT(first.out, HasSubstr("creating stack orders-stg"));
  EXPECT_THAT(first.out, HasSubstr("stg: orders-main-1 deployed (CREATE_COMPLETE)"));

  RunResult second = Deploy({"orders-main-2", "--env", "stg"});
  ASSERT_EQ(second.exit_code, 0) << second.out << second.err;
  EXPECT_THAT(second.out, HasSubstr("updating stack orders-stg"));
  // The live group runs 2 (its MinSize): the build's Keep=1 would let a rolling update take one
  // of them out of service.
  EXPECT_THAT(second.out, HasSubstr("capacity: Keep=2 from group"));
  EXPECT_THAT(second.out,
              HasSubstr("live DesiredCapacity 2 (MaxSize 4; the build's value was '1')"));

  // A rollback is a deploy of the older build.
  RunResult rollback = Deploy({"orders-main-1", "--env", "stg"});
  ASSERT_EQ(rollback.exit_code, 0) << rollback.out << rollback.err;
  EXPECT_THAT(rollback.out, HasSubstr("stg: orders-main-1 deployed"));

  RunResult again = Deploy({"orders-main-1", "--env", "stg"});
  ASSERT_EQ(again.exit_code, 0) << again.out << again.err;
  EXPECT_THAT(again.out, HasSubstr("already live, nothing changed"));

  // prd requires stg: build 2 went there, a build 3 did not.
  RunResult promoted = Deploy({"orders-main-2", "--env", "prd"});
  ASSERT_EQ(promoted.exit_code, 0) << promoted.out << promoted.err;
  EXPECT_THAT(promoted.out, HasSubstr("as arn:aws:iam::123456789012:role/deployer"));
  Publish(3);
  RunResult refused = Deploy({"orders-main-3", "--env", "prd"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_THAT(refused.err, HasSubstr("environment prd requires stg first: orders-main-3 has not "
                                     "been deployed there with success"));

  RunResult history = RunRunner({"deployments", "--env", "stg"}, dir_.path(), env_);
  ASSERT_EQ(history.exit_code, 0) << history.err;
  EXPECT_THAT(history.out, HasSubstr("orders-main-1"));
  EXPECT_THAT(history.out, HasSubstr("no-change"));
  EXPECT_THAT(history.out, HasSubstr("tester@"));
  for (const RunResult* result : {&first, &second, &rollback, &promoted, &history}) {
    EXPECT_THAT(result->out + result->err, Not(HasSubstr("moto-secret-key")));
    EXPECT_THAT(result->out + result->err, Not(HasSubstr("s3cr3t-db-value"))) << "a NoEcho value";
  }
}

TEST_F(DeployE2eTest, RefusesBeforeAnyAwsCallWhatTheEnvironmentDoesNotAllow) {
  Publish(1, "feature/x");
  RunResult branch = Deploy({"orders-feature-x-1", "--env", "stg"});
  EXPECT_EQ(branch.exit_code, 1);
  EXPECT_THAT(branch.err, HasSubstr("environment stg takes builds of main only; "
                                    "orders-feature-x-1 is of branch 'feature/x'"));

  Publish(2);
  RunResult paused = Deploy({"--pause", "stg", "--reason", "incident 42"});
  ASSERT_EQ(paused.exit_code, 0) << paused.err;
  RunResult blocked = Deploy({"orders-main-2", "--env", "stg"});
  EXPECT_EQ(blocked.exit_code, 1);
  EXPECT_THAT(blocked.err, HasSubstr("environment stg is paused"));
  EXPECT_THAT(blocked.err, HasSubstr("incident 42"));
  ASSERT_EQ(Deploy({"--resume", "stg"}).exit_code, 0);

  // Bytes changed after publishing are never deployed.
  std::string stored = dir_.path() + "/store/orders-main-2/template.yaml";
  WriteTextFile(stored, ReadTextFile(stored) + "# changed\n");
  RunResult tampered = Deploy({"orders-main-2", "--env", "stg"});
  EXPECT_EQ(tampered.exit_code, 1);
  EXPECT_THAT(tampered.err, HasSubstr("is not what the build published"));

  RunResult unknown = Deploy({"orders-main-2", "--env", "stag"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_THAT(unknown.err, HasSubstr("no environment 'stag'"));
  EXPECT_THAT(unknown.err, HasSubstr("did you mean 'stg'"));
}

TEST_F(DeployE2eTest, ADeployStepHandsTheBuildItPublishedToTheStack) {
  std::string pipeline = std::string(kPipeline) +
                         "  - id: stg\n"
                         "    deploy:\n"
                         "      env: stg\n"
                         "      manifest: \"${{ steps.publish.outputs.manifest_url }}\"\n";
  WriteTextFile(dir_.path() + "/pipeline.yml", pipeline);
  RunResult run = RunRunner({"run", "--branch", "main", "--build-number", "7"}, dir_.path(), env_);
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  std::string report = ReadTextFile(dir_.path() + "/.runner/builds/orders-main-7/report.json");
  EXPECT_THAT(report, HasSubstr("\"changed\": \"true\""));
  EXPECT_THAT(report, HasSubstr("\"status\": \"CREATE_COMPLETE\""));
  // (moto gives a stack made by change sets no outputs, so output_KEY is not seen here.)
  std::string log = ReadTextFile(dir_.path() + "/.runner/builds/orders-main-7/logs/stg.log");
  EXPECT_THAT(log, HasSubstr("deploying orders-main-7 to stg"));
  RunResult history = RunRunner({"deployments"}, dir_.path(), env_);
  EXPECT_THAT(history.out, HasSubstr("orders-main-7"));
}

// CloudFormation as a scripted server on 127.0.0.1 (the fake GitHub server's HTTP, answering
// AWS's Query API): an update that stays in progress until it is cancelled, which moto cannot do.
class DeployFakeAwsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MakeGitRepo(dir_.path(),
                {{"pipeline.yml", kPipeline},
                 {"cfn/template.yaml",
                  "Parameters:\n  QueueName: {Type: String}\nResources:\n  Queue:\n    Type: "
                  "AWS::SQS::Queue\n    Properties: {QueueName: !Ref QueueName}\n"}});
    env_ = BaseEnv();
    env_["AWS_ENDPOINT_URL"] = aws_.url();
    env_["AWS_ACCESS_KEY_ID"] = "AKIDFAKE";
    env_["AWS_SECRET_ACCESS_KEY"] = "fake-secret-key";
    env_["AWS_REGION"] = "us-east-1";
    env_["AWS_EC2_METADATA_DISABLED"] = "true";
    aws_.SetHandler([this](const FakeRequest& request) { return Answer(request); });
  }

  static FakeResponse Xml(std::string body) {
    FakeResponse response;
    response.status = 200;
    response.headers = {{"Content-Type", "text/xml"}};
    response.body = std::move(body);
    return response;
  }

  static std::string Param(const std::string& body, const std::string& name) {
    std::smatch match;
    if (!std::regex_search(body, match, std::regex("(?:^|&)" + name + "=([^&]*)"))) return "";
    return match[1];
  }

  FakeResponse Answer(const FakeRequest& request) {
    std::string target = request.Header("x-amz-target");
    if (!target.empty()) return CodeDeployAnswer(target.substr(target.find('.') + 1), request);
    std::string action = Param(request.body, "Action");
    std::lock_guard lock(mutex_);
    if (action == "DescribeStacks") {
      std::string status = "UPDATE_COMPLETE";
      if (!token_.empty() && !finish_) status = "UPDATE_IN_PROGRESS";
      if (cancelled_)
        status = rollback_polls_++ < 2 ? "UPDATE_ROLLBACK_IN_PROGRESS" : "UPDATE_ROLLBACK_COMPLETE";
      return Xml(
          "<DescribeStacksResponse><DescribeStacksResult><Stacks><member><StackId>arn:aws:"
          "cloudformation:us-east-1:1:stack/orders-stg/1</StackId><StackName>orders-stg"
          "</StackName><StackStatus>" +
          status +
          "</StackStatus><CreationTime>2026-12-01T10:00:00Z</CreationTime><Outputs><member>"
          "<OutputKey>QueueUrl</OutputKey><OutputValue>https://sqs.example/orders</OutputValue>"
          "</member></Outputs></member></Stacks></DescribeStacksResult>"
          "</DescribeStacksResponse>");
    }
    if (action == "CreateChangeSet") {
      return Xml(
          "<CreateChangeSetResponse><CreateChangeSetResult><Id>arn:cs</Id><StackId>arn:s"
          "</StackId></CreateChangeSetResult></CreateChangeSetResponse>");
    }
    if (action == "DescribeChangeSet") {
      return Xml(
          "<DescribeChangeSetResponse><DescribeChangeSetResult><ChangeSetName>x"
          "</ChangeSetName><Status>CREATE_COMPLETE</Status><Changes><member>"
          "<ResourceChange><Action>Modify</Action><LogicalResourceId>Queue"
          "</LogicalResourceId><ResourceType>AWS::SQS::Queue</ResourceType><Replacement>"
          "True</Replacement></ResourceChange></member></Changes>"
          "</DescribeChangeSetResult></DescribeChangeSetResponse>");
    }
    if (action == "AssumeRole") {
      // The role's keys are s3rver's, so that the revision's copy (S3) can be signed with them;
      // its session token tells the role's requests from the deployer's own.
      return Xml(
          "<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>S3RVER"
          "</AccessKeyId><SecretAccessKey>S3RVER</SecretAccessKey><SessionToken>" +
          std::string(kSessionToken) +
          "</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials>"
          "</AssumeRoleResult></AssumeRoleResponse>");
    }
    if (action == "ExecuteChangeSet") token_ = Param(request.body, "ClientRequestToken");
    if (action == "CancelUpdateStack") cancelled_ = true;
    if (action == "DescribeStackEvents") {
      std::string events;
      if (!token_.empty()) {
        events =
            "<member><EventId>e1</EventId><Timestamp>2026-12-01T10:00:01Z</Timestamp>"
            "<LogicalResourceId>Queue</LogicalResourceId><ResourceType>AWS::SQS::Queue"
            "</ResourceType><ResourceStatus>UPDATE_IN_PROGRESS</ResourceStatus>"
            "<ClientRequestToken>" +
            token_ + "</ClientRequestToken></member>";
      }
      return Xml("<DescribeStackEventsResponse><DescribeStackEventsResult><StackEvents>" + events +
                 "</StackEvents></DescribeStackEventsResult></DescribeStackEventsResponse>");
    }
    return Xml("<Response/>");
  }

  // CodeDeploy (JSON 1.1): a deployment that succeeds on one instance.
  FakeResponse CodeDeployAnswer(const std::string& operation, const FakeRequest& request) {
    std::lock_guard lock(mutex_);
    operations_.push_back(operation);
    FakeResponse response = Xml("{}");
    response.headers = {{"Content-Type", "application/x-amz-json-1.1"}};
    if (operation == "CreateDeployment") {
      create_body_ = request.body;
      response.body = R"({"deploymentId": "d-1"})";
    } else if (operation == "GetDeployment") {
      response.body = R"({"deploymentInfo": {"deploymentId": "d-1", "status": "Succeeded",
        "createTime": 1764590000, "deploymentOverview": {"Pending": 0, "InProgress": 0,
        "Succeeded": 1, "Failed": 0, "Skipped": 0, "Ready": 0}}})";
    } else if (operation == "ListDeploymentInstances") {
      response.body = R"({"instancesList": ["i-a"]})";
    } else if (operation == "BatchGetDeploymentInstances") {
      response.body = R"({"instancesSummary": [{"instanceId": "i-a", "status": "Succeeded",
        "lifecycleEvents": [{"lifecycleEventName": "ApplicationStart", "status": "Succeeded"}]}]})";
    }
    return response;
  }

  static constexpr const char* kSessionToken = "the-role-session-token";

  // The requests of `action` (a Query API action or a CodeDeploy operation).
  std::vector<FakeRequest> RequestsOf(const std::string& action) {
    std::vector<FakeRequest> found;
    for (const FakeRequest& request : aws_.requests()) {
      std::string target = request.Header("x-amz-target");
      if (Param(request.body, "Action") == action || target.ends_with("." + action)) {
        found.push_back(request);
      }
    }
    return found;
  }

  // The region a request was signed for.
  static std::string SignedRegion(const FakeRequest& request) {
    std::smatch match;
    std::string authorization = request.Header("authorization");
    if (!std::regex_search(authorization, match, std::regex("Credential=[^/]+/[0-9]+/([^/]+)/"))) {
      return "";
    }
    return match[1];
  }

  int Count(const std::string& action) {
    int count = 0;
    for (const FakeRequest& request : aws_.requests()) {
      count += Param(request.body, "Action") == action;
    }
    return count;
  }

  TempDir dir_;
  FakeGitHub aws_;
  std::map<std::string, std::string> env_;
  std::mutex mutex_;
  std::string token_;
  bool cancelled_ = false;
  bool finish_ = false;  // the update completes at once
  int rollback_polls_ = 0;
  std::vector<std::string> operations_;  // CodeDeploy's
  std::string create_body_;              // CreateDeployment's
};

// The build published to S3 (s3rver), so that its revision can go to CodeDeploy.
class DeployFakeAwsS3Test : public DeployFakeAwsTest {
 protected:
  void SetUp() override {
    DeployFakeAwsTest::SetUp();
    ASSERT_TRUE(s3_.ok());
    env_["AWS_ENDPOINT_URL_S3"] = s3_.endpoint();
    env_["AWS_ACCESS_KEY_ID"] = "S3RVER";
    env_["AWS_SECRET_ACCESS_KEY"] = "S3RVER";
  }
  S3rver s3_;
};

TEST_F(DeployFakeAwsS3Test, TheStackThenTheRevisionAndTheLedgerRecordsBoth) {
  finish_ = true;
  std::string pipeline = kPipeline;
  pipeline.replace(pipeline.find("    branches: [main]"), 0,
                   "    codedeploy: {application: orders, group: orders-stg}\n");
  pipeline.replace(pipeline.find("store/${{ build.id }}/"), 22, "s3://bkt/orders/${{ build.id }}/");
  pipeline.replace(pipeline.find("files: [cfn/template.yaml"), 8, "files: [orders.zip, ");
  pipeline +=
      "  - id: stg\n    deploy: {env: stg, revision: orders.zip, manifest: "
      "\"${{ steps.publish.outputs.manifest_url }}\"}\n";
  WriteTextFile(dir_.path() + "/pipeline.yml", pipeline);
  WriteTextFile(dir_.path() + "/orders.zip", "a revision\n");
  RunResult run = RunRunner({"run", "--branch", "main", "--build-number", "5"}, dir_.path(), env_);
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  std::string build = dir_.path() + "/.runner/builds/orders-main-5";
  EXPECT_THAT(ReadTextFile(build + "/report.json"), HasSubstr("\"deployment_id\": \"d-1\""));
  std::string log = ReadTextFile(build + "/logs/stg.log");
  EXPECT_THAT(log, HasSubstr("CodeDeploy deployment d-1 of s3://bkt/orders/orders-main-5/"
                             "orders.zip to orders/orders-stg"));
  EXPECT_THAT(log, HasSubstr("i-a  ApplicationStart     Succeeded"));
  EXPECT_LT(log.find("stack orders-stg is UPDATE_COMPLETE"), log.find("CodeDeploy deployment"))
      << "the stack first, then the revision";
  EXPECT_THAT(create_body_, HasSubstr(R"("key":"orders/orders-main-5/orders.zip")"));
  EXPECT_THAT(create_body_, HasSubstr(R"("bundleType":"zip")"));
  EXPECT_THAT(create_body_, Not(HasSubstr("\\\"")));  // the ETag without its quotes
  bool recorded = false;
  for (const auto& file :
       std::filesystem::recursive_directory_iterator(dir_.path() + "/deployments")) {
    if (file.path().extension() == ".json" &&
        ReadTextFile(file.path()).find("\"deployment_id\": \"d-1\"") != std::string::npos) {
      recorded = true;
    }
  }
  EXPECT_TRUE(recorded) << "the ledger entry holds the CodeDeploy deployment";
}

// Seed 004: one build, baked in two regions, promoted from staging to another region in another
// account and refused where it baked no AMI; the same revision bytes, checked, every time.
TEST_F(DeployFakeAwsS3Test, PromotesOneBuildAcrossRegionsAndAccounts) {
  finish_ = true;
  WriteTextFile(dir_.path() + "/pipeline.yml", R"(version: 1
project: orders
environments:
  stg:
    region: us-east-1
    stack: orders-stg
    codedeploy: {application: orders, group: orders-stg}
  prd-eu:
    region: eu-west-1
    stack: orders-prd
    role_arn: arn:aws:iam::222222222222:role/deployer
    requires: [stg]
    codedeploy:
      application: orders
      group: orders-prd
      file_exists: OVERWRITE
      revision_store: "s3://bkt/revisions-eu/"
  dr:
    region: ap-southeast-2
    stack: orders-dr
    requires: [stg]
ledger: deployments
steps:
  - id: bake
    run: echo "artifact_id=us-east-1:ami-0east,eu-west-1:ami-0west" >> "$RUNNER_OUTPUT"
  - id: params
    params: {dest: dist/params.json, values: {AmiId: "${{ steps.bake.outputs.ami_id }}", QueueName: q}}
  - id: publish
    upload:
      to: "s3://bkt/orders/${{ build.id }}/"
      files: [orders.zip, cfn/template.yaml, dist/params.json]
      amis: "${{ steps.bake.outputs.artifact_id }}"
)");
  // (A run step stands for the bake: its artifact_id is what a packer step gives.)
  std::string pipeline = ReadTextFile(dir_.path() + "/pipeline.yml");
  pipeline.replace(pipeline.find("steps.bake.outputs.ami_id"), 25, "vars.ami");
  pipeline.replace(pipeline.find("steps:\n"), 0, "vars: {ami: ami-0east}\n");
  WriteTextFile(dir_.path() + "/pipeline.yml", pipeline);
  WriteTextFile(
      dir_.path() + "/cfn/template.yaml",
      "Parameters:\n  AmiId: {Type: String}\n  QueueName: {Type: String}\nResources:\n"
      "  Queue:\n    Type: AWS::SQS::Queue\n    Properties: {QueueName: !Ref QueueName}\n");
  WriteTextFile(dir_.path() + "/orders.zip", "the revision's bytes\n");
  RunResult run = RunRunner({"run", "--branch", "main", "--build-number", "8"}, dir_.path(), env_);
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  auto deploy = [&](const std::string& env) {
    return RunRunner({"deploy", "orders-main-8", "--env", env, "--revision", "orders.zip"},
                     dir_.path(), env_);
  };

  // A region the bake made no AMI in: refused before any AWS call.
  RunResult dr = deploy("dr");
  EXPECT_EQ(dr.exit_code, 1);
  EXPECT_THAT(dr.err, HasSubstr("environment dr is in ap-southeast-2, but the build orders-main-8 "
                                "baked AMIs only in us-east-1, eu-west-1: parameter AmiId "
                                "(ami-0east, of us-east-1) has no AMI there"));
  RunResult early = deploy("prd-eu");
  EXPECT_EQ(early.exit_code, 1);
  EXPECT_THAT(early.err, HasSubstr("environment prd-eu requires stg first"));
  EXPECT_TRUE(aws_.requests().empty()) << "an AWS call was made";

  RunResult stg = deploy("stg");
  ASSERT_EQ(stg.exit_code, 0) << stg.out << stg.err;
  RunResult prd = deploy("prd-eu");
  ASSERT_EQ(prd.exit_code, 0) << prd.out << prd.err;
  EXPECT_THAT(prd.out, HasSubstr("parameter AmiId: ami-0west, the build's AMI in eu-west-1"));
  EXPECT_THAT(prd.out, HasSubstr("revision copied to s3://bkt/revisions-eu/orders/orders-main-8/"
                                 "orders.zip (sha256 " +
                                 Sha256Hex("the revision's bytes\n") + ")"));

  std::vector<FakeRequest> change_sets = RequestsOf("CreateChangeSet");
  ASSERT_EQ(change_sets.size(), 2u);
  EXPECT_EQ(SignedRegion(change_sets[0]), "us-east-1");
  EXPECT_EQ(Param(change_sets[0].body, "Parameters.member.1.ParameterValue"), "ami-0east");
  EXPECT_EQ(change_sets[0].Header("x-amz-security-token"), "") << "stg is the deployer's own";
  EXPECT_EQ(SignedRegion(change_sets[1]), "eu-west-1");
  EXPECT_EQ(Param(change_sets[1].body, "Parameters.member.1.ParameterValue"), "ami-0west");
  EXPECT_EQ(change_sets[1].Header("x-amz-security-token"), kSessionToken) << "as the role";
  ASSERT_EQ(RequestsOf("AssumeRole").size(), 1u);
  EXPECT_THAT(RequestsOf("AssumeRole")[0].body, HasSubstr("222222222222"));

  std::vector<FakeRequest> deployments = RequestsOf("CreateDeployment");
  ASSERT_EQ(deployments.size(), 2u);
  EXPECT_EQ(SignedRegion(deployments[1]), "eu-west-1");
  EXPECT_THAT(deployments[0].body, HasSubstr(R"("key":"orders/orders-main-8/orders.zip")"));
  EXPECT_THAT(deployments[1].body,
              HasSubstr(R"("key":"revisions-eu/orders/orders-main-8/orders.zip")"));
  EXPECT_THAT(deployments[0].body, Not(HasSubstr("fileExistsBehavior")));
  EXPECT_THAT(deployments[1].body, HasSubstr(R"("fileExistsBehavior":"OVERWRITE")"));

  // Deployed again, the copy already there is checked, not replaced.
  RunResult again = deploy("prd-eu");
  ASSERT_EQ(again.exit_code, 0) << again.out << again.err;
  EXPECT_THAT(again.out, HasSubstr("revision already at s3://bkt/revisions-eu/orders/orders-main-8/"
                                   "orders.zip, the same bytes"));

  // Other bytes where the build's revision or its copy should be: never deployed.
  std::unique_ptr<aws::HttpClient> http = aws::MakeCurlHttpClient();
  aws::StaticCredentialsProvider keys(aws::Credentials{"S3RVER", "S3RVER", "", {}, "test"});
  aws::S3ClientOptions options;
  options.endpoint = s3_.endpoint();
  options.region = "us-east-1";
  auto s3 = aws::S3Client::Create(*http, keys, options);
  ASSERT_TRUE(s3.has_value()) << s3.error();
  ASSERT_TRUE((*s3)->PutObject("bkt", "revisions-eu/orders/orders-main-8/orders.zip", "other\n",
                               "application/zip"));
  RunResult copy_changed = deploy("prd-eu");
  EXPECT_EQ(copy_changed.exit_code, 1);
  EXPECT_THAT(copy_changed.err, HasSubstr("holds other bytes than the build published"));
  ASSERT_TRUE(
      (*s3)->PutObject("bkt", "orders/orders-main-8/orders.zip", "other\n", "application/zip"));
  RunResult build_changed = deploy("prd-eu");
  EXPECT_EQ(build_changed.exit_code, 1);
  EXPECT_THAT(build_changed.err, HasSubstr("is not what the build published"));
  EXPECT_EQ(RequestsOf("CreateDeployment").size(), 3u) << "only the three good deploys";
  for (const RunResult* result : {&stg, &prd, &again, &copy_changed, &build_changed}) {
    EXPECT_THAT(result->out + result->err, Not(HasSubstr(kSessionToken)));
  }
}

TEST_F(DeployFakeAwsTest, ARevisionStoredOnlyLocallyIsRefusedBeforeAnyAwsCall) {
  std::string pipeline = kPipeline;
  pipeline.replace(pipeline.find("    branches: [main]"), 0,
                   "    codedeploy: {application: orders, group: orders-stg}\n");
  pipeline.replace(pipeline.find("files: [cfn/template.yaml"), 8, "files: [orders.zip, ");
  WriteTextFile(dir_.path() + "/pipeline.yml", pipeline);
  WriteTextFile(dir_.path() + "/orders.zip", "not really a zip");
  RunResult run = RunRunner({"run", "--branch", "main", "--build-number", "4"}, dir_.path(), env_);
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  RunResult deploy = RunRunner(
      {"deploy", "orders-main-4", "--env", "stg", "--revision", "orders.zip"}, dir_.path(), env_);
  EXPECT_EQ(deploy.exit_code, 1);
  EXPECT_THAT(deploy.err, HasSubstr("the revision orders.zip is stored only at file://"));
  EXPECT_THAT(deploy.err, HasSubstr("CodeDeploy reads revisions from S3"));
  EXPECT_TRUE(aws_.requests().empty()) << "an AWS call was made";
}

TEST_F(DeployFakeAwsTest, ADeployStepsOutputsAreTheStacksOutputs) {
  finish_ = true;
  WriteTextFile(dir_.path() + "/pipeline.yml",
                std::string(kPipeline) +
                    "  - id: stg\n    deploy: {env: stg, manifest: "
                    "\"${{ steps.publish.outputs.manifest_url }}\"}\n");
  RunResult run = RunRunner({"run", "--branch", "main", "--build-number", "3"}, dir_.path(), env_);
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  std::string report = ReadTextFile(dir_.path() + "/.runner/builds/orders-main-3/report.json");
  EXPECT_THAT(report, HasSubstr("\"output_QueueUrl\": \"https://sqs.example/orders\""));
  EXPECT_THAT(report, HasSubstr("\"status\": \"UPDATE_COMPLETE\""));
  EXPECT_THAT(report, HasSubstr("\"changed\": \"true\""));
}

TEST_F(DeployFakeAwsTest, SigtermCancelsTheUpdateAndFollowsItsRollbackToTheEnd) {
  RunResult run = RunRunner({"run", "--branch", "main", "--build-number", "1"}, dir_.path(), env_);
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  RunnerProcess deploy({"deploy", "orders-main-1", "--env", "stg"}, dir_.path(), env_, dir_.path());
  ASSERT_TRUE(AwaitCondition([&] { return Count("DescribeStackEvents") >= 2; }))
      << "the update was never followed";
  deploy.Signal(SIGTERM);
  RunResult result = deploy.Wait(std::chrono::seconds(60));
  EXPECT_EQ(result.exit_code, 143) << result.out << result.err;
  EXPECT_EQ(Count("CancelUpdateStack"), 1);
  EXPECT_THAT(result.out, HasSubstr("Modify  Queue (AWS::SQS::Queue)  REPLACEMENT"));
  EXPECT_THAT(result.out, HasSubstr("UPDATE_IN_PROGRESS   Queue (AWS::SQS::Queue)"));
  EXPECT_THAT(result.out, HasSubstr("cancelled: cancelling the update of orders-stg"));
  EXPECT_THAT(result.err, HasSubstr("UPDATE_ROLLBACK_COMPLETE"));
  EXPECT_THAT(result.out + result.err, Not(HasSubstr("fake-secret-key")));
  RunResult history = RunRunner({"deployments", "--env", "stg"}, dir_.path(), env_);
  EXPECT_THAT(history.out, HasSubstr("cancelled"));
}

}  // namespace
}  // namespace runner::testing
