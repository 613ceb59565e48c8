// The CloudFormation client: against a scripted HttpClient, the exact Query parameters it sends,
// the answers it reads (samples in the shapes AWS documents), paging, errors and retries; then
// against a real moto_server, a stack driven through CREATE and UPDATE change sets, its events
// and its Auto Scaling group's live capacity.
#include "runner/aws/cloudformation.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "runner/aws/autoscaling.h"
#include "runner/aws/s3_client.h"
#include "tests/fake_http_client.h"
#include "tests/moto_server.h"
#include "tests/test_util.h"

namespace runner::aws {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using testing::Utc;

constexpr char kUrl[] = "http://127.0.0.1:4566/";
constexpr char kStackId[] =
    "arn:aws:cloudformation:eu-west-1:111111111111:stack/orders-stg/"
    "aaf549a0-a413-11df-adb3-5081b3858e83";
constexpr char kChangeSetId[] =
    "arn:aws:cloudformation:eu-west-1:111111111111:changeSet/runner-157/"
    "1a2345b6-0000-00a0-a123-00abc0abc000";

HttpResponse Response(int status, std::string body) {
  return FakeHttpClient::Ok(std::move(body), status, {{"content-type", "text/xml"}});
}

// An answer as AWS wraps it: <ACTIONResponse><ACTIONResult>RESULT</ACTIONResult>....
std::string Answer(std::string_view action, std::string_view result) {
  return fmt::format(
      "<{0}Response xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\">\n"
      "  <{0}Result>{1}</{0}Result>\n"
      "  <ResponseMetadata><RequestId>b9b4b068-3a41-11e5-94eb-example</RequestId>"
      "</ResponseMetadata>\n"
      "</{0}Response>",
      action, result);
}

std::string QueryError(std::string_view code, std::string_view message) {
  return fmt::format(
      "<ErrorResponse xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\">"
      "<Error><Type>Sender</Type><Code>{}</Code><Message>{}</Message></Error>"
      "<RequestId>4af14eec-350e-11e4-b260-EXAMPLE</RequestId></ErrorResponse>",
      code, message);
}

struct Fixture {
  FakeHttpClient http;
  StaticCredentialsProvider credentials{TestCredentials()};

  std::unique_ptr<CloudFormationClient> Client() {
    CloudFormationOptions options;
    options.region = "eu-west-1";
    options.endpoint = "http://127.0.0.1:4566";
    options.sleep = [](std::chrono::milliseconds) {};
    auto client = CloudFormationClient::Create(http, credentials, std::move(options));
    EXPECT_TRUE(client.has_value()) << client.error();
    return std::move(*client);
  }
  std::vector<std::string> Bodies() const {
    std::vector<std::string> bodies;
    for (const auto& request : http.Requests()) bodies.push_back(request.body);
    return bodies;
  }
};

// --- against a scripted HttpClient ---

TEST(CloudFormationClientTest, DescribeStacksReadsStatusOutputsParametersAndTimes) {
  Fixture f;
  f.http.Respond("POST", kUrl,
                 Response(200, Answer("DescribeStacks", fmt::format(R"(
    <Stacks>
      <member>
        <StackName>orders-stg</StackName>
        <StackId>{}</StackId>
        <Description>Orders service</Description>
        <Parameters>
          <member><ParameterKey>Ami</ParameterKey><ParameterValue>ami-0abc</ParameterValue></member>
          <member><ParameterKey>MinInService</ParameterKey><ParameterValue>2</ParameterValue></member>
        </Parameters>
        <CreationTime>2024-07-27T22:28:28Z</CreationTime>
        <LastUpdatedTime>2024-08-01T10:00:05.123Z</LastUpdatedTime>
        <StackStatus>UPDATE_ROLLBACK_COMPLETE</StackStatus>
        <StackStatusReason>The following resource(s) failed to update: [Group]</StackStatusReason>
        <DisableRollback>false</DisableRollback>
        <Capabilities><member>CAPABILITY_IAM</member></Capabilities>
        <Outputs>
          <member>
            <OutputKey>Url</OutputKey>
            <OutputValue>http://orders.example.com/</OutputValue>
            <Description>Where it answers</Description>
          </member>
          <member><OutputKey>GroupName</OutputKey><OutputValue>orders-stg-Group-1</OutputValue></member>
        </Outputs>
        <Tags/>
      </member>
    </Stacks>)",
                                                                    kStackId))));
  auto stack = f.Client()->DescribeStacks("orders-stg");
  ASSERT_TRUE(stack.has_value()) << stack.error();
  ASSERT_TRUE(stack->has_value());
  const Stack& s = **stack;
  EXPECT_EQ(s.id, kStackId);
  EXPECT_EQ(s.name, "orders-stg");
  EXPECT_EQ(s.status, "UPDATE_ROLLBACK_COMPLETE");
  EXPECT_EQ(s.status_reason, "The following resource(s) failed to update: [Group]");
  EXPECT_THAT(s.outputs, ElementsAre(Pair("GroupName", "orders-stg-Group-1"),
                                     Pair("Url", "http://orders.example.com/")));
  EXPECT_THAT(s.parameters, ElementsAre(Pair("Ami", "ami-0abc"), Pair("MinInService", "2")));
  EXPECT_EQ(s.creation_time, Utc(2024, 7, 27, 22, 28, 28));
  EXPECT_EQ(s.last_updated_time, Utc(2024, 8, 1, 10, 0, 5));

  auto sent = f.http.Requests();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].method, "POST");
  EXPECT_EQ(sent[0].body, FormEncode({{"Action", "DescribeStacks"},
                                      {"Version", "2010-05-15"},
                                      {"StackName", "orders-stg"}}));
  EXPECT_EQ(sent[0].Header("content-type"), "application/x-www-form-urlencoded; charset=utf-8");
  EXPECT_THAT(sent[0].Header("authorization"), HasSubstr("/eu-west-1/cloudformation/aws4_request"));
}

TEST(CloudFormationClientTest, ANewStackHasNoLastUpdatedTimeNorOutputs) {
  Fixture f;
  f.http.Respond("POST", kUrl, Response(200, Answer("DescribeStacks", R"(
    <Stacks><member><StackName>s</StackName><StackId>id</StackId>
      <CreationTime>2024-07-27T22:28:28.450892Z</CreationTime>
      <StackStatus>REVIEW_IN_PROGRESS</StackStatus></member></Stacks>)")));
  auto stack = f.Client()->DescribeStacks("s");
  ASSERT_TRUE(stack.has_value()) << stack.error();
  ASSERT_TRUE(stack->has_value());
  EXPECT_EQ((*stack)->status, "REVIEW_IN_PROGRESS");
  EXPECT_EQ((*stack)->status_reason, "");
  EXPECT_TRUE((*stack)->outputs.empty());
  EXPECT_EQ((*stack)->last_updated_time, std::nullopt);
  EXPECT_EQ((*stack)->creation_time, Utc(2024, 7, 27, 22, 28, 28));
}

TEST(CloudFormationClientTest, AMissingStackIsNulloptNotAnError) {
  Fixture f;
  f.http.Respond(
      "POST", kUrl,
      Response(400, QueryError("ValidationError", "Stack with id orders-stg does not exist")));
  auto stack = f.Client()->DescribeStacks("orders-stg");
  ASSERT_TRUE(stack.has_value()) << stack.error();
  EXPECT_EQ(*stack, std::nullopt);
  EXPECT_EQ(f.http.RequestCount(), 1u);
}

TEST(CloudFormationClientTest, OtherErrorsNameTheCallAndAwsCodeAndMessage) {
  Fixture f;
  f.http.Respond("POST", kUrl,
                 Response(403, QueryError("AccessDenied",
                                          "User: arn:aws:iam::111111111111:user/ci is not "
                                          "authorized to perform: cloudformation:DescribeStacks")));
  auto stack = f.Client()->DescribeStacks("orders-stg");
  ASSERT_FALSE(stack.has_value());
  EXPECT_EQ(stack.error(),
            "AccessDenied: User: arn:aws:iam::111111111111:user/ci is not authorized to perform: "
            "cloudformation:DescribeStacks (CloudFormation DescribeStacks orders-stg)");

  f.http.Respond("POST", kUrl,
                 Response(400, QueryError("ValidationError", "1 validation error detected")));
  stack = f.Client()->DescribeStacks("orders-stg");
  ASSERT_FALSE(stack.has_value());
  EXPECT_THAT(stack.error(), HasSubstr("ValidationError: 1 validation error detected"));
}

TEST(CloudFormationClientTest, ThrottlingIsRetriedByTheRequestLayer) {
  Fixture f;
  f.http.Respond("POST", kUrl, Response(400, QueryError("Throttling", "Rate exceeded")));
  f.http.Respond("POST", kUrl, Response(200, Answer("DescribeStacks", "<Stacks/>")));
  auto stack = f.Client()->DescribeStacks("orders-stg");
  ASSERT_TRUE(stack.has_value()) << stack.error();
  EXPECT_EQ(*stack, std::nullopt);
  EXPECT_EQ(f.http.RequestCount(), 2u);
}

TEST(CloudFormationClientTest, AnswersThatCannotBeReadAreErrors) {
  Fixture f;
  f.http.Respond("POST", kUrl, Response(200, "<html>gateway"));
  auto stack = f.Client()->DescribeStacks("s");
  ASSERT_FALSE(stack.has_value());
  EXPECT_EQ(stack.error(), "CloudFormation DescribeStacks s: the answer is not well-formed XML");

  f.http.Respond("POST", kUrl, Response(200, "<DescribeStacksResponse/>"));
  stack = f.Client()->DescribeStacks("s");
  ASSERT_FALSE(stack.has_value());
  EXPECT_EQ(stack.error(),
            "CloudFormation DescribeStacks s: the answer holds no DescribeStacksResult");

  f.http.Respond("POST", kUrl, Response(200, Answer("DescribeStacks", R"(<Stacks><member>
      <StackName>s</StackName><CreationTime>yesterday</CreationTime></member></Stacks>)")));
  stack = f.Client()->DescribeStacks("s");
  ASSERT_FALSE(stack.has_value());
  EXPECT_EQ(stack.error(),
            "CloudFormation DescribeStacks s: CreationTime: unreadable time 'yesterday'");
}

TEST(CloudFormationClientTest, CreateChangeSetSendsParametersCapabilitiesTypeAndToken) {
  Fixture f;
  f.http.Respond(
      "POST", kUrl,
      Response(200, Answer("CreateChangeSet", fmt::format("<Id>{}</Id><StackId>{}</StackId>",
                                                          kChangeSetId, kStackId))));
  CreateChangeSetRequest request;
  request.stack_name = "orders-stg";
  request.change_set_name = "runner-157";
  request.template_url = "https://bkt.s3.eu-west-1.amazonaws.com/orders/157/template.yaml";
  request.parameters = {StackParameter::Value("Ami", "ami-0abc"),
                        StackParameter::UsePrevious("KeyName"),
                        StackParameter::Value("Environment", "staging & more")};
  request.capabilities = {"CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"};
  request.type = ChangeSetType::kUpdate;
  request.client_token = "orders-main-157-stg";
  auto created = f.Client()->CreateChangeSet(request);
  ASSERT_TRUE(created.has_value()) << created.error();
  EXPECT_EQ(created->id, kChangeSetId);
  EXPECT_EQ(created->stack_id, kStackId);
  EXPECT_THAT(
      f.Bodies(),
      ElementsAre(FormEncode(
          {{"Action", "CreateChangeSet"},
           {"Version", "2010-05-15"},
           {"StackName", "orders-stg"},
           {"ChangeSetName", "runner-157"},
           {"ChangeSetType", "UPDATE"},
           {"TemplateURL", "https://bkt.s3.eu-west-1.amazonaws.com/orders/157/template.yaml"},
           {"Parameters.member.1.ParameterKey", "Ami"},
           {"Parameters.member.1.ParameterValue", "ami-0abc"},
           {"Parameters.member.2.ParameterKey", "KeyName"},
           {"Parameters.member.2.UsePreviousValue", "true"},
           {"Parameters.member.3.ParameterKey", "Environment"},
           {"Parameters.member.3.ParameterValue", "staging & more"},
           {"Capabilities.member.1", "CAPABILITY_IAM"},
           {"Capabilities.member.2", "CAPABILITY_NAMED_IAM"},
           {"ClientToken", "orders-main-157-stg"}})));
}

TEST(CloudFormationClientTest, CreateChangeSetForANewStackWithoutToken) {
  Fixture f;
  f.http.Respond("POST", kUrl,
                 Response(200, Answer("CreateChangeSet", "<Id>cs</Id><StackId>st</StackId>")));
  CreateChangeSetRequest request;
  request.stack_name = "s";
  request.change_set_name = "c";
  request.template_url = "u";
  request.type = ChangeSetType::kCreate;
  ASSERT_TRUE(f.Client()->CreateChangeSet(request).has_value());
  EXPECT_THAT(f.Bodies(), ElementsAre(FormEncode({{"Action", "CreateChangeSet"},
                                                  {"Version", "2010-05-15"},
                                                  {"StackName", "s"},
                                                  {"ChangeSetName", "c"},
                                                  {"ChangeSetType", "CREATE"},
                                                  {"TemplateURL", "u"}})));

  f.http.Respond("POST", kUrl,
                 Response(400, QueryError("AlreadyExistsException", "ChangeSet c already exists")));
  auto again = f.Client()->CreateChangeSet(request);
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(
      again.error(),
      "AlreadyExistsException: ChangeSet c already exists (CloudFormation CreateChangeSet s/c)");
}

// A change set of three changes over two pages, as DescribeChangeSet documents them.
Result<HttpResponse> ChangeSetPages(const HttpRequest& request) {
  const std::string_view body = request.body;
  if (body.find("NextToken=") == std::string_view::npos) {
    return Response(200, Answer("DescribeChangeSet", fmt::format(R"(
    <ChangeSetName>runner-157</ChangeSetName>
    <ChangeSetId>{}</ChangeSetId>
    <StackId>{}</StackId>
    <StackName>orders-stg</StackName>
    <Status>CREATE_COMPLETE</Status>
    <ExecutionStatus>AVAILABLE</ExecutionStatus>
    <CreationTime>2024-08-01T10:00:05.123Z</CreationTime>
    <Parameters><member><ParameterKey>Ami</ParameterKey><ParameterValue>ami-0abc</ParameterValue></member></Parameters>
    <Capabilities><member>CAPABILITY_IAM</member></Capabilities>
    <Changes>
      <member>
        <Type>Resource</Type>
        <ResourceChange>
          <Action>Modify</Action>
          <LogicalResourceId>Config</LogicalResourceId>
          <PhysicalResourceId>orders-stg-Config-1ABC</PhysicalResourceId>
          <ResourceType>AWS::AutoScaling::LaunchConfiguration</ResourceType>
          <Replacement>True</Replacement>
          <Scope><member>Properties</member></Scope>
          <Details>
            <member>
              <Target><Attribute>Properties</Attribute><Name>ImageId</Name><RequiresRecreation>Always</RequiresRecreation></Target>
              <Evaluation>Static</Evaluation>
              <ChangeSource>DirectModification</ChangeSource>
            </member>
          </Details>
        </ResourceChange>
      </member>
      <member>
        <Type>Resource</Type>
        <ResourceChange>
          <Action>Modify</Action>
          <LogicalResourceId>Group</LogicalResourceId>
          <PhysicalResourceId>orders-stg-Group-1XYZ</PhysicalResourceId>
          <ResourceType>AWS::AutoScaling::AutoScalingGroup</ResourceType>
          <Replacement>Conditional</Replacement>
          <Scope><member>Properties</member></Scope>
          <Details/>
        </ResourceChange>
      </member>
    </Changes>
    <NextToken>page-2</NextToken>)",
                                                                 kChangeSetId, kStackId)));
  }
  return Response(200, Answer("DescribeChangeSet", fmt::format(R"(
    <ChangeSetName>runner-157</ChangeSetName>
    <ChangeSetId>{}</ChangeSetId>
    <StackId>{}</StackId>
    <StackName>orders-stg</StackName>
    <Status>CREATE_COMPLETE</Status>
    <ExecutionStatus>AVAILABLE</ExecutionStatus>
    <Changes>
      <member><Type>Resource</Type><ResourceChange><Action>Remove</Action>
        <LogicalResourceId>OldQueue</LogicalResourceId>
        <PhysicalResourceId>https://sqs.eu-west-1.amazonaws.com/111111111111/old</PhysicalResourceId>
        <ResourceType>AWS::SQS::Queue</ResourceType><Scope/><Details/></ResourceChange></member>
      <member><Type>Resource</Type><ResourceChange><Action>Add</Action>
        <LogicalResourceId>Alarm</LogicalResourceId>
        <ResourceType>AWS::CloudWatch::Alarm</ResourceType><Scope/><Details/></ResourceChange></member>
    </Changes>)",
                                                               kChangeSetId, kStackId)));
}

TEST(CloudFormationClientTest, DescribeChangeSetReadsEveryPageOfChanges) {
  Fixture f;
  f.http.handler = ChangeSetPages;
  auto change_set = f.Client()->DescribeChangeSet("orders-stg", "runner-157");
  ASSERT_TRUE(change_set.has_value()) << change_set.error();
  EXPECT_EQ(change_set->id, kChangeSetId);
  EXPECT_EQ(change_set->name, "runner-157");
  EXPECT_EQ(change_set->stack_id, kStackId);
  EXPECT_EQ(change_set->stack_name, "orders-stg");
  EXPECT_EQ(change_set->status, "CREATE_COMPLETE");
  EXPECT_EQ(change_set->execution_status, "AVAILABLE");
  EXPECT_FALSE(IsEmptyChangeSet(*change_set));
  ASSERT_EQ(change_set->changes.size(), 4u);
  const auto& c = change_set->changes;
  EXPECT_EQ(c[0].action, "Modify");
  EXPECT_EQ(c[0].logical_id, "Config");
  EXPECT_EQ(c[0].physical_id, "orders-stg-Config-1ABC");
  EXPECT_EQ(c[0].resource_type, "AWS::AutoScaling::LaunchConfiguration");
  EXPECT_EQ(c[0].replacement, "True");
  EXPECT_EQ(c[1].logical_id, "Group");
  EXPECT_EQ(c[1].replacement, "Conditional");
  EXPECT_EQ(c[2].action, "Remove");
  EXPECT_EQ(c[2].physical_id, "https://sqs.eu-west-1.amazonaws.com/111111111111/old");
  EXPECT_EQ(c[2].replacement, "");
  EXPECT_EQ(c[3].action, "Add");
  EXPECT_EQ(c[3].logical_id, "Alarm");
  EXPECT_EQ(c[3].physical_id, "");
  EXPECT_THAT(f.Bodies(), ElementsAre(FormEncode({{"Action", "DescribeChangeSet"},
                                                  {"Version", "2010-05-15"},
                                                  {"StackName", "orders-stg"},
                                                  {"ChangeSetName", "runner-157"}}),
                                      FormEncode({{"Action", "DescribeChangeSet"},
                                                  {"Version", "2010-05-15"},
                                                  {"StackName", "orders-stg"},
                                                  {"ChangeSetName", "runner-157"},
                                                  {"NextToken", "page-2"}})));
}

TEST(CloudFormationClientTest, ARepeatedNextTokenStopsThePaging) {
  Fixture f;
  f.http.Respond("POST", kUrl,
                 Response(200, Answer("DescribeChangeSet",
                                      "<Status>CREATE_COMPLETE</Status>"
                                      "<NextToken>same</NextToken>")));
  auto change_set = f.Client()->DescribeChangeSet("s", "c");
  ASSERT_FALSE(change_set.has_value());
  EXPECT_EQ(change_set.error(), "CloudFormation DescribeChangeSet s/c: NextToken 'same' repeats");
  EXPECT_EQ(f.http.RequestCount(), 2u);
}

ChangeSet WithStatus(std::string status, std::string reason) {
  ChangeSet change_set;
  change_set.status = std::move(status);
  change_set.status_reason = std::move(reason);
  return change_set;
}

TEST(CloudFormationClientTest, AnEmptyChangeSetIsRecognised) {
  Fixture f;
  f.http.Respond("POST", kUrl, Response(200, Answer("DescribeChangeSet", R"(
    <ChangeSetName>runner-158</ChangeSetName>
    <StackName>orders-stg</StackName>
    <Status>FAILED</Status>
    <StatusReason>The submitted information didn't contain changes. Submit different information to create a change set.</StatusReason>
    <ExecutionStatus>UNAVAILABLE</ExecutionStatus>
    <Changes/>)")));
  auto change_set = f.Client()->DescribeChangeSet("orders-stg", "runner-158");
  ASSERT_TRUE(change_set.has_value()) << change_set.error();
  EXPECT_TRUE(change_set->changes.empty());
  EXPECT_EQ(change_set->execution_status, "UNAVAILABLE");
  EXPECT_TRUE(IsEmptyChangeSet(*change_set));

  EXPECT_TRUE(IsEmptyChangeSet(WithStatus("FAILED", "No updates are to be performed.")));
  EXPECT_FALSE(IsEmptyChangeSet(WithStatus("FAILED", "Parameters: [KeyName] must have values")));
  EXPECT_FALSE(IsEmptyChangeSet(WithStatus("CREATE_COMPLETE", "")));
  EXPECT_FALSE(IsEmptyChangeSet(WithStatus("CREATE_IN_PROGRESS", "")));
}

TEST(CloudFormationClientTest, ExecuteDeleteAndCancelSendTheirTokens) {
  Fixture f;
  f.http.handler = [](const HttpRequest& request) -> Result<HttpResponse> {
    std::string_view body = request.body;
    std::string action(body.substr(7, body.find('&') - 7));
    // CancelUpdateStack answers no result element at all.
    if (action == "CancelUpdateStack") {
      return Response(200,
                      "<CancelUpdateStackResponse><ResponseMetadata><RequestId>r</RequestId>"
                      "</ResponseMetadata></CancelUpdateStackResponse>");
    }
    return Response(200, Answer(action, ""));
  };
  auto client = f.Client();
  EXPECT_TRUE(client->ExecuteChangeSet("orders-stg", "runner-157", "runner-orders-main-157"));
  EXPECT_TRUE(client->ExecuteChangeSet("orders-stg", "runner-157", ""));
  EXPECT_TRUE(client->DeleteChangeSet("orders-stg", "runner-157"));
  EXPECT_TRUE(client->CancelUpdateStack("orders-stg", "runner-orders-main-157-cancel"));
  EXPECT_TRUE(client->CancelUpdateStack("orders-stg"));
  EXPECT_THAT(f.Bodies(),
              ElementsAre(FormEncode({{"Action", "ExecuteChangeSet"},
                                      {"Version", "2010-05-15"},
                                      {"StackName", "orders-stg"},
                                      {"ChangeSetName", "runner-157"},
                                      {"ClientRequestToken", "runner-orders-main-157"}}),
                          FormEncode({{"Action", "ExecuteChangeSet"},
                                      {"Version", "2010-05-15"},
                                      {"StackName", "orders-stg"},
                                      {"ChangeSetName", "runner-157"}}),
                          FormEncode({{"Action", "DeleteChangeSet"},
                                      {"Version", "2010-05-15"},
                                      {"StackName", "orders-stg"},
                                      {"ChangeSetName", "runner-157"}}),
                          FormEncode({{"Action", "CancelUpdateStack"},
                                      {"Version", "2010-05-15"},
                                      {"StackName", "orders-stg"},
                                      {"ClientRequestToken", "runner-orders-main-157-cancel"}}),
                          FormEncode({{"Action", "CancelUpdateStack"},
                                      {"Version", "2010-05-15"},
                                      {"StackName", "orders-stg"}})));
}

TEST(CloudFormationClientTest, ExecuteAndCancelFailuresNameTheStack) {
  Fixture f;
  f.http.Respond("POST", kUrl,
                 Response(400, QueryError("InvalidChangeSetStatus",
                                          "ChangeSet [runner-157] cannot be executed in its "
                                          "current status of [CREATE_PENDING]")));
  auto executed = f.Client()->ExecuteChangeSet("orders-stg", "runner-157", "t");
  ASSERT_FALSE(executed.has_value());
  EXPECT_EQ(executed.error(),
            "InvalidChangeSetStatus: ChangeSet [runner-157] cannot be executed in its current "
            "status of [CREATE_PENDING] (CloudFormation ExecuteChangeSet orders-stg/runner-157)");

  f.http.Respond("POST", kUrl,
                 Response(400, QueryError("ValidationError",
                                          "CancelUpdateStack cannot be called from current stack "
                                          "status")));
  auto cancelled = f.Client()->CancelUpdateStack("orders-stg");
  ASSERT_FALSE(cancelled.has_value());
  EXPECT_EQ(cancelled.error(),
            "ValidationError: CancelUpdateStack cannot be called from current stack status "
            "(CloudFormation CancelUpdateStack orders-stg)");
}

std::string Event(std::string_view id, std::string_view time, std::string_view logical_id,
                  std::string_view type, std::string_view status, std::string_view extra) {
  return fmt::format(
      "<member><StackId>{}</StackId><EventId>{}</EventId><StackName>orders-stg</StackName>"
      "<LogicalResourceId>{}</LogicalResourceId><PhysicalResourceId>phys-{}</PhysicalResourceId>"
      "<ResourceType>{}</ResourceType><Timestamp>{}</Timestamp>"
      "<ResourceStatus>{}</ResourceStatus>{}</member>",
      kStackId, id, logical_id, logical_id, type, time, status, extra);
}

// Four events, newest first, over two pages.
Result<HttpResponse> EventPages(const HttpRequest& request) {
  if (std::string_view(request.body).find("NextToken=") == std::string_view::npos) {
    return Response(200, Answer("DescribeStackEvents",
                                "<StackEvents>" +
                                    Event("e4", "2024-08-01T10:03:00.512Z", "orders-stg",
                                          "AWS::CloudFormation::Stack", "UPDATE_COMPLETE",
                                          "<ClientRequestToken>tok-157</ClientRequestToken>") +
                                    Event("e3", "2024-08-01T10:02:00Z", "Group",
                                          "AWS::AutoScaling::AutoScalingGroup", "UPDATE_COMPLETE",
                                          "<ClientRequestToken>tok-157</ClientRequestToken>") +
                                    "</StackEvents><NextToken>older</NextToken>"));
  }
  return Response(200,
                  Answer("DescribeStackEvents",
                         "<StackEvents>" +
                             Event("e2", "2024-08-01T10:01:00Z", "Group",
                                   "AWS::AutoScaling::AutoScalingGroup", "UPDATE_IN_PROGRESS",
                                   "<ResourceStatusReason>Rolling update initiated. Terminating 2 "
                                   "obsolete instance(s)&amp;more</ResourceStatusReason>"
                                   "<ClientRequestToken>tok-157</ClientRequestToken>") +
                             Event("e1", "2024-08-01T10:00:00Z", "orders-stg",
                                   "AWS::CloudFormation::Stack", "UPDATE_IN_PROGRESS",
                                   "<ResourceStatusReason>User Initiated</ResourceStatusReason>"
                                   "<ClientRequestToken>tok-157</ClientRequestToken>") +
                             "</StackEvents>"));
}

TEST(CloudFormationClientTest, DescribeStackEventsPagesNewestFirst) {
  Fixture f;
  f.http.handler = EventPages;
  auto events = f.Client()->DescribeStackEvents("orders-stg");
  ASSERT_TRUE(events.has_value()) << events.error();
  ASSERT_EQ(events->size(), 4u);
  const auto& e = *events;
  EXPECT_EQ(e[0].event_id, "e4");
  EXPECT_EQ(e[0].timestamp, Utc(2024, 8, 1, 10, 3, 0));
  EXPECT_EQ(e[0].logical_id, "orders-stg");
  EXPECT_EQ(e[0].resource_type, "AWS::CloudFormation::Stack");
  EXPECT_EQ(e[0].status, "UPDATE_COMPLETE");
  EXPECT_EQ(e[0].reason, "");
  EXPECT_EQ(e[0].client_request_token, "tok-157");
  EXPECT_EQ(e[2].event_id, "e2");
  EXPECT_EQ(e[2].logical_id, "Group");
  EXPECT_EQ(e[2].physical_id, "phys-Group");
  EXPECT_EQ(e[2].reason, "Rolling update initiated. Terminating 2 obsolete instance(s)&more");
  EXPECT_EQ(e[3].event_id, "e1");
  EXPECT_EQ(e[3].reason, "User Initiated");
  EXPECT_THAT(f.Bodies(), ElementsAre(FormEncode({{"Action", "DescribeStackEvents"},
                                                  {"Version", "2010-05-15"},
                                                  {"StackName", "orders-stg"}}),
                                      FormEncode({{"Action", "DescribeStackEvents"},
                                                  {"Version", "2010-05-15"},
                                                  {"StackName", "orders-stg"},
                                                  {"NextToken", "older"}})));
}

TEST(CloudFormationClientTest, DescribeStackEventsStopsAtTheFirstEventAlreadySeen) {
  Fixture f;
  f.http.handler = EventPages;
  auto client = f.Client();
  auto newer = client->DescribeStackEvents(
      "orders-stg", [](const StackEvent& event) { return event.event_id == "e3"; });
  ASSERT_TRUE(newer.has_value()) << newer.error();
  ASSERT_EQ(newer->size(), 1u);
  EXPECT_EQ((*newer)[0].event_id, "e4");
  EXPECT_EQ(f.http.RequestCount(), 1u);  // the older page is never fetched

  auto across = client->DescribeStackEvents(
      "orders-stg", [](const StackEvent& event) { return event.event_id == "e1"; });
  ASSERT_TRUE(across.has_value()) << across.error();
  ASSERT_EQ(across->size(), 3u);
  EXPECT_EQ((*across)[2].event_id, "e2");
  EXPECT_EQ(f.http.RequestCount(), 3u);
}

TEST(CloudFormationClientTest, DescribeStackResourceGivesThePhysicalId) {
  Fixture f;
  f.http.Respond("POST", kUrl,
                 Response(200, Answer("DescribeStackResource", fmt::format(R"(
    <StackResourceDetail>
      <StackId>{}</StackId>
      <StackName>orders-stg</StackName>
      <LogicalResourceId>Group</LogicalResourceId>
      <PhysicalResourceId>orders-stg-Group-1XYZ</PhysicalResourceId>
      <ResourceType>AWS::AutoScaling::AutoScalingGroup</ResourceType>
      <LastUpdatedTimestamp>2024-08-01T10:02:00Z</LastUpdatedTimestamp>
      <ResourceStatus>UPDATE_COMPLETE</ResourceStatus>
      <Metadata>{{}}</Metadata>
    </StackResourceDetail>)",
                                                                           kStackId))));
  auto resource = f.Client()->DescribeStackResource("orders-stg", "Group");
  ASSERT_TRUE(resource.has_value()) << resource.error();
  ASSERT_TRUE(resource->has_value());
  EXPECT_EQ((*resource)->logical_id, "Group");
  EXPECT_EQ((*resource)->physical_id, "orders-stg-Group-1XYZ");
  EXPECT_EQ((*resource)->resource_type, "AWS::AutoScaling::AutoScalingGroup");
  EXPECT_EQ((*resource)->status, "UPDATE_COMPLETE");
  EXPECT_THAT(f.Bodies(), ElementsAre(FormEncode({{"Action", "DescribeStackResource"},
                                                  {"Version", "2010-05-15"},
                                                  {"StackName", "orders-stg"},
                                                  {"LogicalResourceId", "Group"}})));

  f.http.Respond("POST", kUrl,
                 Response(400, QueryError("ValidationError",
                                          "Resource Group does not exist for stack orders-stg")));
  resource = f.Client()->DescribeStackResource("orders-stg", "Group");
  ASSERT_TRUE(resource.has_value()) << resource.error();
  EXPECT_EQ(*resource, std::nullopt);
}

TEST(CloudFormationClientTest, CreateRefusesABadEndpoint) {
  FakeHttpClient http;
  StaticCredentialsProvider credentials(TestCredentials());
  CloudFormationOptions options;
  options.endpoint = "ftp://x";
  auto client = CloudFormationClient::Create(http, credentials, options);
  ASSERT_FALSE(client.has_value());
  EXPECT_THAT(client.error(), HasSubstr("CloudFormation: endpoint 'ftp://x' must start with"));
}

// --- against moto_server ---

// A stack of a launch configuration, an Auto Scaling group and a queue, its group's desired
// capacity a parameter.
constexpr char kTemplate[] = R"({
  "AWSTemplateFormatVersion": "2010-09-09",
  "Parameters": {
    "Desired": {"Type": "Number", "Default": "2"},
    "QueueName": {"Type": "String", "Default": "orders"}
  },
  "Resources": {
    "Config": {
      "Type": "AWS::AutoScaling::LaunchConfiguration",
      "Properties": {"ImageId": "ami-12c6146b", "InstanceType": "t2.micro"}
    },
    "Group": {
      "Type": "AWS::AutoScaling::AutoScalingGroup",
      "Properties": {
        "AvailabilityZones": ["us-east-1a"],
        "LaunchConfigurationName": {"Ref": "Config"},
        "MinSize": "1", "MaxSize": "%MAX%", "DesiredCapacity": {"Ref": "Desired"},
        "TerminationPolicies": ["OldestLaunchConfiguration", "OldestInstance"]
      }
    },
    "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Ref": "QueueName"}}}
  },
  "Outputs": {
    "GroupName": {"Value": {"Ref": "Group"}},
    "QueueUrl": {"Value": {"Ref": "Queue"}}
  }
})";

std::string TemplateWithMaxSize(int max_size) {
  std::string text = kTemplate;
  text.replace(text.find("%MAX%"), 5, std::to_string(max_size));
  return text;
}

class CloudFormationMotoTest : public testing::MotoServerTest {
 protected:
  void SetUp() override {
    MotoServerTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    http_ = MakeCurlHttpClient();
    CloudFormationOptions options;
    options.endpoint = moto().endpoint();
    auto client = CloudFormationClient::Create(*http_, credentials_, options);
    ASSERT_TRUE(client.has_value()) << client.error();
    cfn_ = std::move(*client);

    // The bucket of the templates (S3Client makes none).
    AwsClientOptions aws_options;
    aws_options.service = "s3";
    aws_options.endpoint = moto().endpoint();
    aws_options.s3_rules = true;
    auto aws = AwsClient::Create(*http_, credentials_, aws_options);
    ASSERT_TRUE(aws.has_value()) << aws.error();
    AwsRequest bucket;
    bucket.method = "PUT";
    bucket.path = "/templates";
    bucket.what = "CreateBucket templates";
    auto made = (*aws)->Send(bucket);
    ASSERT_TRUE(made.has_value()) << made.error().text;
    S3ClientOptions s3_options;
    s3_options.endpoint = moto().endpoint();
    auto s3 = S3Client::Create(*http_, credentials_, s3_options);
    ASSERT_TRUE(s3.has_value()) << s3.error();
    s3_ = std::move(*s3);
  }

  // Puts `body` into moto's S3 and gives its TemplateURL.
  std::string UploadTemplate(const std::string& key, const std::string& body) {
    auto put = s3_->PutObject("templates", key, body, "application/json");
    EXPECT_TRUE(put.has_value()) << put.error();
    return moto().TemplateUrl("templates", key);
  }

  // The change set once CloudFormation has computed it.
  ChangeSet WaitForChangeSet(const std::string& stack, const std::string& name) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (true) {
      auto change_set = cfn_->DescribeChangeSet(stack, name);
      EXPECT_TRUE(change_set.has_value()) << change_set.error();
      if (!change_set) return {};
      bool pending =
          change_set->status == "CREATE_PENDING" || change_set->status == "CREATE_IN_PROGRESS";
      if (!pending || std::chrono::steady_clock::now() > deadline) return std::move(*change_set);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  // A stack made from kTemplate by a CREATE change set, executed.
  void CreateStack(const std::string& stack) {
    CreateChangeSetRequest request;
    request.stack_name = stack;
    request.change_set_name = "runner-1";
    request.template_url = UploadTemplate(stack + "/1.json", TemplateWithMaxSize(4));
    request.parameters = {StackParameter::Value("Desired", "3")};
    request.capabilities = {"CAPABILITY_IAM"};
    request.type = ChangeSetType::kCreate;
    request.client_token = stack + "-1";
    auto created = cfn_->CreateChangeSet(request);
    ASSERT_TRUE(created.has_value()) << created.error();
    EXPECT_THAT(created->id, HasSubstr(":changeSet/runner-1/"));
    EXPECT_THAT(created->stack_id, HasSubstr(":stack/" + stack + "/"));

    auto review = cfn_->DescribeStacks(stack);
    ASSERT_TRUE(review.has_value()) << review.error();
    ASSERT_TRUE(review->has_value());
    EXPECT_EQ((*review)->status, "REVIEW_IN_PROGRESS");

    ChangeSet change_set = WaitForChangeSet(stack, "runner-1");
    EXPECT_EQ(change_set.status, "CREATE_COMPLETE");
    EXPECT_EQ(change_set.execution_status, "AVAILABLE");
    EXPECT_EQ(change_set.id, created->id);
    std::vector<std::string> added;
    for (const ResourceChange& change : change_set.changes) {
      EXPECT_EQ(change.action, "Add");
      added.push_back(change.logical_id + " " + change.resource_type);
    }
    EXPECT_THAT(added,
                ElementsAre("Config AWS::AutoScaling::LaunchConfiguration",
                            "Group AWS::AutoScaling::AutoScalingGroup", "Queue AWS::SQS::Queue"));
    ASSERT_TRUE(cfn_->ExecuteChangeSet(stack, "runner-1", stack + "-exec-1"));
  }

  // Any key: moto checks none.
  StaticCredentialsProvider credentials_{TestCredentials()};
  std::unique_ptr<HttpClient> http_;
  std::unique_ptr<CloudFormationClient> cfn_;
  std::unique_ptr<S3Client> s3_;
};

TEST_F(CloudFormationMotoTest, ChangeSetsCreateUpdateAndRecogniseNoChange) {
  auto absent = cfn_->DescribeStacks("orders-stg");
  ASSERT_TRUE(absent.has_value()) << absent.error();
  EXPECT_EQ(*absent, std::nullopt);

  ASSERT_NO_FATAL_FAILURE(CreateStack("orders-stg"));
  auto stack = cfn_->DescribeStacks("orders-stg");
  ASSERT_TRUE(stack.has_value()) << stack.error();
  ASSERT_TRUE(stack->has_value());
  EXPECT_EQ((*stack)->status, "CREATE_COMPLETE");
  EXPECT_EQ((*stack)->name, "orders-stg");
  EXPECT_EQ((*stack)->parameters.at("Desired"), "3");
  EXPECT_EQ((*stack)->parameters.at("QueueName"), "orders");
  EXPECT_LT(std::chrono::system_clock::now() - (*stack)->creation_time, std::chrono::minutes(5));

  // A change: the group's MaxSize.
  CreateChangeSetRequest update;
  update.stack_name = "orders-stg";
  update.change_set_name = "runner-2";
  update.template_url = UploadTemplate("orders-stg/2.json", TemplateWithMaxSize(5));
  update.parameters = {StackParameter::UsePrevious("Desired")};
  update.type = ChangeSetType::kUpdate;
  ASSERT_TRUE(cfn_->CreateChangeSet(update).has_value());
  ChangeSet changed = WaitForChangeSet("orders-stg", "runner-2");
  EXPECT_EQ(changed.status, "CREATE_COMPLETE");
  EXPECT_FALSE(IsEmptyChangeSet(changed));
  ASSERT_EQ(changed.changes.size(), 1u);
  EXPECT_EQ(changed.changes[0].action, "Modify");
  EXPECT_EQ(changed.changes[0].logical_id, "Group");
  EXPECT_EQ(changed.changes[0].resource_type, "AWS::AutoScaling::AutoScalingGroup");
  EXPECT_TRUE(cfn_->DeleteChangeSet("orders-stg", "runner-2"));

  // No change: the same template and parameter value (given again: moto compares a previous
  // value, resolved to a number, with the strings given at creation, and sees a change).
  CreateChangeSetRequest same = update;
  same.change_set_name = "runner-3";
  same.parameters = {StackParameter::Value("Desired", "3")};
  same.template_url = UploadTemplate("orders-stg/3.json", TemplateWithMaxSize(4));
  ASSERT_TRUE(cfn_->CreateChangeSet(same).has_value());
  ChangeSet unchanged = WaitForChangeSet("orders-stg", "runner-3");
  EXPECT_EQ(unchanged.status, "FAILED");
  EXPECT_THAT(unchanged.status_reason, HasSubstr("didn't contain changes"));
  EXPECT_TRUE(IsEmptyChangeSet(unchanged));
  EXPECT_TRUE(unchanged.changes.empty());
  EXPECT_TRUE(cfn_->DeleteChangeSet("orders-stg", "runner-3"));

  auto deleted = cfn_->DescribeChangeSet("orders-stg", "runner-3");
  ASSERT_FALSE(deleted.has_value());
  EXPECT_THAT(deleted.error(), HasSubstr("(CloudFormation DescribeChangeSet orders-stg/runner-3)"));
}

TEST_F(CloudFormationMotoTest, StackEventsAreNewestFirstAndStopWhereAsked) {
  ASSERT_NO_FATAL_FAILURE(CreateStack("orders-stg"));
  auto events = cfn_->DescribeStackEvents("orders-stg");
  ASSERT_TRUE(events.has_value()) << events.error();
  // moto records only the stack's own events, on one page.
  std::vector<std::string> statuses;
  for (const StackEvent& event : *events) {
    EXPECT_EQ(event.logical_id, "orders-stg");
    EXPECT_EQ(event.resource_type, "AWS::CloudFormation::Stack");
    EXPECT_FALSE(event.event_id.empty());
    statuses.push_back(event.status);
  }
  EXPECT_THAT(statuses, ElementsAre("CREATE_COMPLETE", "CREATE_IN_PROGRESS", "REVIEW_IN_PROGRESS"));
  EXPECT_GE((*events)[0].timestamp, (*events)[2].timestamp);
  EXPECT_EQ((*events)[1].reason, "User Initiated");

  const std::string seen = (*events)[1].event_id;
  auto newer = cfn_->DescribeStackEvents(
      "orders-stg", [&](const StackEvent& event) { return event.event_id == seen; });
  ASSERT_TRUE(newer.has_value()) << newer.error();
  ASSERT_EQ(newer->size(), 1u);
  EXPECT_EQ((*newer)[0].status, "CREATE_COMPLETE");

  auto missing = cfn_->DescribeStackEvents("nope");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error(),
            "ValidationError: Stack with id nope does not exist (CloudFormation "
            "DescribeStackEvents nope)");
}

TEST_F(CloudFormationMotoTest, TheGroupsLiveCapacityThroughItsStackResource) {
  ASSERT_NO_FATAL_FAILURE(CreateStack("orders-stg"));
  auto resource = cfn_->DescribeStackResource("orders-stg", "Group");
  ASSERT_TRUE(resource.has_value()) << resource.error();
  ASSERT_TRUE(resource->has_value());
  EXPECT_EQ((*resource)->resource_type, "AWS::AutoScaling::AutoScalingGroup");
  EXPECT_EQ((*resource)->status, "CREATE_COMPLETE");
  EXPECT_THAT((*resource)->physical_id, HasSubstr("orders-stg-Group-"));

  AutoScalingOptions options;
  options.endpoint = moto().endpoint();
  auto autoscaling = AutoScalingClient::Create(*http_, credentials_, options);
  ASSERT_TRUE(autoscaling.has_value()) << autoscaling.error();
  auto group = (*autoscaling)->DescribeAutoScalingGroups((*resource)->physical_id);
  ASSERT_TRUE(group.has_value()) << group.error();
  ASSERT_TRUE(group->has_value());
  EXPECT_EQ((*group)->name, (*resource)->physical_id);
  EXPECT_EQ((*group)->desired_capacity, 3);
  EXPECT_EQ((*group)->min_size, 1);
  EXPECT_EQ((*group)->max_size, 4);
  EXPECT_EQ((*group)->instance_count, 3);
  EXPECT_THAT((*group)->termination_policies,
              ElementsAre("OldestLaunchConfiguration", "OldestInstance"));

  auto no_group = (*autoscaling)->DescribeAutoScalingGroups("nope");
  ASSERT_TRUE(no_group.has_value()) << no_group.error();
  EXPECT_EQ(*no_group, std::nullopt);
  auto no_resource = cfn_->DescribeStackResource("orders-stg", "Nope");
  ASSERT_TRUE(no_resource.has_value()) << no_resource.error();
  EXPECT_EQ(*no_resource, std::nullopt);
  auto no_stack = cfn_->DescribeStackResource("nope", "Group");
  ASSERT_TRUE(no_stack.has_value()) << no_stack.error();
  EXPECT_EQ(*no_stack, std::nullopt);
}

// moto 5 gives no outputs for a stack made through change sets (it reads them from the template
// the stack had when the change set was created: none): CreateStack, sent through the request
// layer, makes one that has them.
TEST_F(CloudFormationMotoTest, DescribeStacksReadsRealOutputs) {
  AwsClientOptions options;
  options.service = "cloudformation";
  options.endpoint = moto().endpoint();
  auto aws = AwsClient::Create(*http_, credentials_, options);
  ASSERT_TRUE(aws.has_value()) << aws.error();
  auto created = (*aws)->Send(
      QueryRequest("CreateStack", kCloudFormationVersion,
                   {{"StackName", "orders-prd"},
                    {"TemplateURL", UploadTemplate("orders-prd/1.json", TemplateWithMaxSize(6))},
                    {"Parameters.member.1.ParameterKey", "QueueName"},
                    {"Parameters.member.1.ParameterValue", "orders-prd"}}));
  ASSERT_TRUE(created.has_value()) << created.error().text;

  auto stack = cfn_->DescribeStacks("orders-prd");
  ASSERT_TRUE(stack.has_value()) << stack.error();
  ASSERT_TRUE(stack->has_value());
  EXPECT_EQ((*stack)->status, "CREATE_COMPLETE");
  ASSERT_EQ((*stack)->outputs.size(), 2u);
  EXPECT_THAT((*stack)->outputs.at("GroupName"), HasSubstr("orders-prd-Group-"));
  EXPECT_THAT((*stack)->outputs.at("QueueUrl"), HasSubstr("/orders-prd"));
  EXPECT_EQ((*stack)->parameters.at("Desired"), "2");
}

}  // namespace
}  // namespace runner::aws
