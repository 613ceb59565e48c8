#include "runner/deploy/stack_deploy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <regex>

#include "runner/aws/s3_client.h"
#include "tests/fake_http_client.h"
#include "tests/moto_server.h"

namespace runner::deploy {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace aws;

// A group rolled with MinInstancesInService from the parameter Keep, and a queue.
constexpr char kTemplate[] = R"({
  "Parameters": {
    "Keep": {"Type": "Number", "Default": "1"},
    "Min": {"Type": "Number", "Default": "1"},
    "Max": {"Type": "Number", "Default": "4"},
    "QueueName": {"Type": "String", "Default": "orders"}
  },
  "Resources": {
    "Config": {
      "Type": "AWS::AutoScaling::LaunchConfiguration",
      "Properties": {"ImageId": "ami-12c6146b", "InstanceType": "t2.micro"}
    },
    "Group": {
      "Type": "AWS::AutoScaling::AutoScalingGroup",
      "UpdatePolicy": {"AutoScalingRollingUpdate": {
        "MinInstancesInService": {"Ref": "Keep"}, "MaxBatchSize": {"Ref": "Max"}}},
      "Properties": {
        "AvailabilityZones": ["us-east-1a"],
        "LaunchConfigurationName": {"Ref": "Config"},
        "MinSize": {"Ref": "Min"}, "MaxSize": {"Ref": "Max"},
        "TerminationPolicies": ["OldestLaunchConfiguration", "OldestInstance"]
      }
    },
    "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Ref": "QueueName"}}}
  },
  "Outputs": {"QueueUrl": {"Value": {"Ref": "Queue"}}}
})";

class StackDeployMotoTest : public testing::MotoServerTest {
 protected:
  void SetUp() override {
    MotoServerTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    http_ = MakeCurlHttpClient();
    CloudFormationOptions cfn_options;
    cfn_options.endpoint = moto().endpoint();
    auto cfn = CloudFormationClient::Create(*http_, credentials_, cfn_options);
    ASSERT_TRUE(cfn.has_value()) << cfn.error();
    cfn_ = std::move(*cfn);
    AutoScalingOptions asg_options;
    asg_options.endpoint = moto().endpoint();
    auto asg = AutoScalingClient::Create(*http_, credentials_, asg_options);
    ASSERT_TRUE(asg.has_value()) << asg.error();
    asg_ = std::move(*asg);
  }

  StackDeployRequest Request(const std::string& build, std::string queue, std::string min,
                             std::string max = "4", bool second_queue = false) {
    StackDeployRequest request;
    request.stack = "orders-stg";
    request.template_body = kTemplate;
    if (second_queue) {
      request.template_body.replace(request.template_body.find("\n  },\n  \"Outputs\""), 0,
                                    ",\n    \"Dead\": {\"Type\": \"AWS::SQS::Queue\"}");
    }
    request.parameters = {{"Keep", "1"},
                          {"Min", std::move(min)},
                          {"Max", std::move(max)},
                          {"QueueName", std::move(queue)}};
    request.build_id = build;
    request.poll_interval = std::chrono::milliseconds(50);
    request.log = [this](std::string_view line) { log_ += std::string(line) + "\n"; };
    return request;
  }

  std::unique_ptr<HttpClient> http_;
  StaticCredentialsProvider credentials_{TestCredentials()};
  std::unique_ptr<CloudFormationClient> cfn_;
  std::unique_ptr<AutoScalingClient> asg_;
  std::string log_;
};

TEST_F(StackDeployMotoTest, CreatesUpdatesAndRecognisesAnUnchangedBuild) {
  auto created = DeployStack(*cfn_, *asg_, Request("orders-main-1", "orders-a", "3"));
  ASSERT_TRUE(created) << created.error() << "\n" << log_;
  EXPECT_TRUE(created->changed);
  EXPECT_EQ(created->status, "CREATE_COMPLETE");
  EXPECT_THAT(log_, HasSubstr("creating stack orders-stg: change set runner-orders-main-1-"));
  EXPECT_THAT(log_, HasSubstr("Add     Group (AWS::AutoScaling::AutoScalingGroup)"));

  // The same build again (a redeploy): nothing to change, and its change set is deleted.
  log_.clear();
  auto again = DeployStack(*cfn_, *asg_, Request("orders-main-1", "orders-a", "3"));
  ASSERT_TRUE(again) << again.error() << "\n" << log_;
  EXPECT_FALSE(again->changed);
  EXPECT_EQ(again->status, "CREATE_COMPLETE");
  EXPECT_THAT(log_, HasSubstr("no changes"));
  // The live group runs 3 (its MinSize): the build's Keep=1 would let a rolling update take two
  // out of service.
  EXPECT_THAT(log_, HasSubstr("capacity: Keep=3 from group"));
  EXPECT_THAT(log_, HasSubstr("live DesiredCapacity 3 (MaxSize 4; the build's value was '1')"));

  log_.clear();
  auto updated = DeployStack(*cfn_, *asg_, Request("orders-main-2", "orders-a", "3", "4", true));
  ASSERT_TRUE(updated) << updated.error() << "\n" << log_;
  EXPECT_TRUE(updated->changed);
  EXPECT_EQ(updated->status, "UPDATE_COMPLETE");
  EXPECT_THAT(log_, HasSubstr("Add     Dead (AWS::SQS::Queue)"));
}

TEST_F(StackDeployMotoTest, RefusesADeployThatWouldTakeLiveInstancesOutOfService) {
  auto created = DeployStack(*cfn_, *asg_, Request("orders-main-1", "orders-a", "3", "3"));
  ASSERT_TRUE(created) << created.error() << "\n" << log_;
  auto refused = DeployStack(*cfn_, *asg_, Request("orders-main-2", "orders-b", "3", "3"));
  ASSERT_FALSE(refused);
  EXPECT_THAT(refused.error(), HasSubstr("runs 3 instances (DesiredCapacity) with MaxSize 3"));
  EXPECT_THAT(refused.error(),
              HasSubstr("at most 2 would stay in service and 1 would be taken out"));
  EXPECT_THAT(log_, Not(HasSubstr("updating stack")));
}

// CloudFormation's answers, scripted: what moto cannot do.
class StackDeployFakeTest : public ::testing::Test {
 public:
  void SetUp() override {
    CloudFormationOptions options;
    options.endpoint = "http://127.0.0.1:1";
    options.sleep = [](std::chrono::milliseconds) {};
    auto cfn = CloudFormationClient::Create(http_, credentials_, options);
    ASSERT_TRUE(cfn.has_value()) << cfn.error();
    cfn_ = std::move(*cfn);
    AutoScalingOptions asg_options;
    asg_options.endpoint = "http://127.0.0.1:1";
    auto asg = AutoScalingClient::Create(http_, credentials_, asg_options);
    ASSERT_TRUE(asg.has_value()) << asg.error();
    asg_ = std::move(*asg);
    http_.handler = [this](const HttpRequest& request) -> Result<HttpResponse> {
      std::smatch action;
      std::string body(request.body);
      std::regex_search(body, action, std::regex("Action=([A-Za-z]+)"));
      actions_.push_back(action[1]);
      return answer_(action[1]);
    };
  }

  static HttpResponse Xml(std::string body) {
    HttpResponse response;
    response.status = 200;
    response.body = std::move(body);
    return response;
  }

  static std::string StackXml(const std::string& status) {
    return "<DescribeStacksResponse><DescribeStacksResult><Stacks><member><StackId>"
           "arn:aws:cloudformation:us-east-1:1:stack/orders-stg/1</StackId><StackName>orders-stg"
           "</StackName><StackStatus>" +
           status +
           "</StackStatus><CreationTime>2026-12-01T10:00:00Z</CreationTime></member></Stacks>"
           "</DescribeStacksResult></DescribeStacksResponse>";
  }

  StackDeployRequest Request() {
    StackDeployRequest request;
    request.stack = "orders-stg";
    request.template_body = "Resources: {Queue: {Type: AWS::SQS::Queue}}\n";
    request.build_id = "orders-main-9";
    request.sleep = [](Duration) {};
    request.log = [this](std::string_view line) { log_ += std::string(line) + "\n"; };
    return request;
  }

  FakeHttpClient http_;
  StaticCredentialsProvider credentials_{TestCredentials()};
  std::unique_ptr<CloudFormationClient> cfn_;
  std::unique_ptr<AutoScalingClient> asg_;
  std::function<Result<HttpResponse>(const std::string&)> answer_;
  std::vector<std::string> actions_;
  std::string log_;
};

TEST_F(StackDeployFakeTest, ARolledBackStackIsAnErrorThatSaysWhatToDoBeforeAnyChange) {
  answer_ = [](const std::string&) { return Xml(StackXml("ROLLBACK_COMPLETE")); };
  auto result = DeployStack(*cfn_, *asg_, Request());
  ASSERT_FALSE(result);
  EXPECT_THAT(result.error(), HasSubstr("ROLLBACK_COMPLETE"));
  EXPECT_THAT(result.error(), HasSubstr("delete-stack --stack-name orders-stg"));
  EXPECT_EQ(actions_, std::vector<std::string>{"DescribeStacks"});
}

TEST_F(StackDeployFakeTest, AFailedUpdateStreamsItsEventsAndNamesTheFirstFailure) {
  int polls = 0;
  std::string token;
  answer_ = [&](const std::string& action) -> Result<HttpResponse> {
    if (action == "DescribeStacks") {
      if (token.empty()) return Xml(StackXml("UPDATE_COMPLETE"));
      return Xml(StackXml(++polls < 3 ? "UPDATE_IN_PROGRESS" : "UPDATE_ROLLBACK_COMPLETE"));
    }
    if (action == "CreateChangeSet") {
      return Xml(
          "<CreateChangeSetResponse><CreateChangeSetResult><Id>arn:cs</Id><StackId>arn:s"
          "</StackId></CreateChangeSetResult></CreateChangeSetResponse>");
    }
    if (action == "DescribeChangeSet") {
      return Xml(
          "<DescribeChangeSetResponse><DescribeChangeSetResult><ChangeSetName>x"
          "</ChangeSetName><Status>CREATE_COMPLETE</Status><Changes><member><ResourceChange>"
          "<Action>Modify</Action><LogicalResourceId>Queue</LogicalResourceId>"
          "<ResourceType>AWS::SQS::Queue</ResourceType><Replacement>True</Replacement>"
          "</ResourceChange></member></Changes></DescribeChangeSetResult>"
          "</DescribeChangeSetResponse>");
    }
    if (action == "ExecuteChangeSet") {
      token = "set";
      return Xml("<ExecuteChangeSetResponse/>");
    }
    if (action == "DescribeStackEvents") {
      // An old event of another operation, then this one's (its token is the change set name).
      std::string ours = log_.substr(log_.find("change set ") + 11);
      ours = ours.substr(0, ours.find('\n'));
      auto event = [&](const std::string& id, const std::string& status, const std::string& reason,
                       const std::string& owner) {
        return "<member><EventId>" + id + "</EventId><Timestamp>2026-12-01T10:00:0" + id +
               "Z</Timestamp><LogicalResourceId>Queue</LogicalResourceId><ResourceType>"
               "AWS::SQS::Queue</ResourceType><ResourceStatus>" +
               status + "</ResourceStatus><ResourceStatusReason>" + reason +
               "</ResourceStatusReason><ClientRequestToken>" + owner +
               "</ClientRequestToken></member>";
      };
      std::string events = event("1", "UPDATE_COMPLETE", "", "old");
      if (!token.empty()) {
        events = event("3", "UPDATE_FAILED", "Queue name already taken", ours) +
                 event("2", "UPDATE_IN_PROGRESS", "", ours) + events;
      }
      return Xml("<DescribeStackEventsResponse><DescribeStackEventsResult><StackEvents>" + events +
                 "</StackEvents></DescribeStackEventsResult></DescribeStackEventsResponse>");
    }
    return Xml("<Response/>");
  };
  auto result = DeployStack(*cfn_, *asg_, Request());
  ASSERT_FALSE(result);
  EXPECT_THAT(
      result.error(),
      HasSubstr("stack orders-stg is UPDATE_ROLLBACK_COMPLETE: Queue: Queue name already taken"));
  EXPECT_THAT(log_, HasSubstr("Modify  Queue (AWS::SQS::Queue)  REPLACEMENT"));
  size_t progress = log_.find("UPDATE_IN_PROGRESS");
  size_t failed = log_.find("UPDATE_FAILED");
  ASSERT_NE(progress, std::string::npos) << log_;
  ASSERT_NE(failed, std::string::npos) << log_;
  EXPECT_LT(progress, failed) << "events are logged oldest first";
  EXPECT_EQ(log_.find("UPDATE_COMPLETE "), std::string::npos) << "another operation's event";
  EXPECT_EQ(log_.find("UPDATE_FAILED"), log_.rfind("UPDATE_FAILED")) << "an event twice";
}

// Answers for an update whose change set is ready at once; DescribeStacks after the execution
// from `after_execute` (its Nth call).
std::function<Result<HttpResponse>(const std::string&)> UpdateScript(
    std::function<std::string(int)> after_execute) {
  auto executed = std::make_shared<bool>(false);
  auto polls = std::make_shared<int>(0);
  return [=](const std::string& action) -> Result<HttpResponse> {
    if (action == "DescribeStacks") {
      return StackDeployFakeTest::Xml(StackDeployFakeTest::StackXml(
          *executed ? after_execute((*polls)++) : std::string("UPDATE_COMPLETE")));
    }
    if (action == "CreateChangeSet") {
      return StackDeployFakeTest::Xml(
          "<CreateChangeSetResponse><CreateChangeSetResult><Id>arn:cs</Id><StackId>arn:s"
          "</StackId></CreateChangeSetResult></CreateChangeSetResponse>");
    }
    if (action == "DescribeChangeSet") {
      return StackDeployFakeTest::Xml(
          "<DescribeChangeSetResponse><DescribeChangeSetResult><ChangeSetName>x</ChangeSetName>"
          "<Status>CREATE_COMPLETE</Status><Changes><member><ResourceChange><Action>Modify"
          "</Action><LogicalResourceId>Queue</LogicalResourceId><ResourceType>AWS::SQS::Queue"
          "</ResourceType></ResourceChange></member></Changes></DescribeChangeSetResult>"
          "</DescribeChangeSetResponse>");
    }
    if (action == "ExecuteChangeSet") *executed = true;
    if (action == "DescribeStackEvents") {
      return StackDeployFakeTest::Xml(
          "<DescribeStackEventsResponse><DescribeStackEventsResult><StackEvents/>"
          "</DescribeStackEventsResult></DescribeStackEventsResponse>");
    }
    return StackDeployFakeTest::Xml("<Response/>");
  };
}

TEST_F(StackDeployFakeTest, ACancelRollsTheUpdateBackAndFollowsTheRollback) {
  bool cancel = false;
  answer_ = UpdateScript([&](int poll) {
    if (poll == 1) cancel = true;
    if (poll < 3) return std::string("UPDATE_IN_PROGRESS");
    if (poll < 5) return std::string("UPDATE_ROLLBACK_IN_PROGRESS");
    return std::string("UPDATE_ROLLBACK_COMPLETE");
  });
  StackDeployRequest request = Request();
  request.cancelled = [&] { return cancel; };
  auto result = DeployStack(*cfn_, *asg_, request);
  ASSERT_FALSE(result);
  EXPECT_THAT(result.error(), HasSubstr("UPDATE_ROLLBACK_COMPLETE"));
  EXPECT_THAT(log_, HasSubstr("cancelled: cancelling the update of orders-stg"));
  EXPECT_EQ(std::ranges::count(actions_, "CancelUpdateStack"), 1);
  // Followed to the rollback's end: the last call is the DescribeStacks that saw it complete.
  EXPECT_EQ(actions_.back(), "DescribeStacks");
}

TEST_F(StackDeployFakeTest, ThrottlingIsRetriedAndAFailedChangeSetSaysWhy) {
  int throttled = 0;
  answer_ = [&](const std::string& action) -> Result<HttpResponse> {
    if (action == "DescribeStacks" && throttled++ == 0) {
      HttpResponse response;
      response.status = 400;
      response.body =
          "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate "
          "exceeded</Message></Error></ErrorResponse>";
      return response;
    }
    if (action == "DescribeStacks") return Xml(StackXml("UPDATE_COMPLETE"));
    if (action == "CreateChangeSet") {
      return Xml(
          "<CreateChangeSetResponse><CreateChangeSetResult><Id>arn:cs</Id><StackId>arn:s"
          "</StackId></CreateChangeSetResult></CreateChangeSetResponse>");
    }
    if (action == "DescribeChangeSet") {
      return Xml(
          "<DescribeChangeSetResponse><DescribeChangeSetResult><ChangeSetName>x"
          "</ChangeSetName><Status>FAILED</Status><StatusReason>Parameter QueueName "
          "must be set</StatusReason></DescribeChangeSetResult></DescribeChangeSetResponse>");
    }
    return Xml("<Response/>");
  };
  auto result = DeployStack(*cfn_, *asg_, Request());
  ASSERT_FALSE(result);
  EXPECT_THAT(result.error(), HasSubstr("failed: Parameter QueueName must be set"));
  EXPECT_EQ(std::ranges::count(actions_, "DescribeStacks"), 2) << "the throttled call retried";
  EXPECT_EQ(std::ranges::count(actions_, "ExecuteChangeSet"), 0);
}

TEST(ChangeSetNameTest, IsMadeOfTheBuildIdAndFitsCloudFormationsRule) {
  EXPECT_EQ(ChangeSetName("orders-feature_x.1-158", "1764590000"),
            "runner-orders-feature-x-1-158-1764590000");
  std::string name = ChangeSetName(std::string(300, 'a'), "1");
  EXPECT_EQ(name.size(), 128u);
  EXPECT_TRUE(name.ends_with("-1"));
}

}  // namespace
}  // namespace runner::deploy
