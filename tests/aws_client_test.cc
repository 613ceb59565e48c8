// The generic AWS request layer against a scripted HttpClient: signing, retries with backoff
// on throttling, 5xx and dropped connections, error decoding from XML and JSON bodies, and the
// Query and JSON 1.1 request builders.
#include "runner/aws/aws_client.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "runner/sha256.h"
#include "tests/fake_http_client.h"

namespace runner::aws {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kUrl[] = "http://127.0.0.1:4566/";

HttpResponse Response(int status, std::string body, Pairs headers = {}) {
  return FakeHttpClient::Ok(std::move(body), status, std::move(headers));
}

std::string QueryError(std::string_view code, std::string_view message) {
  return fmt::format(
      "<ErrorResponse xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\"><Error>"
      "<Type>Sender</Type><Code>{}</Code><Message>{}</Message></Error>"
      "<RequestId>req-42</RequestId></ErrorResponse>",
      code, message);
}

struct Fixture {
  FakeHttpClient http;
  StaticCredentialsProvider credentials{TestCredentials()};
  std::vector<std::chrono::milliseconds> delays;
  std::vector<std::string> log;

  std::unique_ptr<AwsClient> Client(std::string service = "cloudformation") {
    AwsClientOptions options;
    options.service = std::move(service);
    options.region = "eu-west-1";
    options.endpoint = "http://127.0.0.1:4566";
    options.sleep = [this](std::chrono::milliseconds delay) { delays.push_back(delay); };
    options.log = [this](std::string_view line) { log.emplace_back(line); };
    auto client = AwsClient::Create(http, credentials, std::move(options));
    EXPECT_TRUE(client.has_value()) << client.error();
    return std::move(*client);
  }
};

TEST(AwsClientTest, QueryRequestEncodesTheFormBody) {
  AwsRequest request = QueryRequest("CreateChangeSet", "2010-05-15",
                                    {{"StackName", "orders stg"},
                                     {"Parameters.member.1.ParameterKey", "Ami"},
                                     {"Parameters.member.1.ParameterValue", "ami-1/2+3=4&5~ü"}});
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.path, "/");
  EXPECT_EQ(request.body,
            "Action=CreateChangeSet&Version=2010-05-15&StackName=orders%20stg"
            "&Parameters.member.1.ParameterKey=Ami"
            "&Parameters.member.1.ParameterValue=ami-1%2F2%2B3%3D4%265~%C3%BC");
  EXPECT_EQ(request.headers[0].second, "application/x-www-form-urlencoded; charset=utf-8");
  EXPECT_EQ(request.what, "CreateChangeSet");
}

TEST(AwsClientTest, SignsAndSendsAQueryRequest) {
  Fixture f;
  f.http.Respond("POST", kUrl, Response(200, "<DescribeStacksResponse/>"));
  AwsRequest request = QueryRequest("DescribeStacks", "2010-05-15", {{"StackName", "s"}});
  auto response = f.Client()->Send(request);
  ASSERT_TRUE(response.has_value()) << response.error().text;
  auto sent = f.http.Requests();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].body, request.body);
  EXPECT_EQ(sent[0].Header("host"), "127.0.0.1:4566");
  EXPECT_THAT(sent[0].Header("authorization"),
              HasSubstr("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"));
  EXPECT_THAT(sent[0].Header("authorization"), HasSubstr("/eu-west-1/cloudformation/aws4_request"));
  EXPECT_THAT(sent[0].Header("authorization"),
              HasSubstr("SignedHeaders=content-type;host;x-amz-date"));
  EXPECT_FALSE(sent[0].Header("x-amz-date").empty());
  // Only S3 sends the payload hash as a header.
  EXPECT_FALSE(sent[0].HasHeader("x-amz-content-sha256"));
}

TEST(AwsClientTest, JsonRequestHasTheTargetAndContentType) {
  Fixture f;
  f.http.Respond("POST", kUrl, Response(200, R"({"deploymentId":"d-1"})"));
  AwsRequest request =
      JsonRequest("CodeDeploy_20141006", "CreateDeployment", R"({"applicationName":"orders"})");
  auto response = f.Client("codedeploy")->Send(request);
  ASSERT_TRUE(response.has_value()) << response.error().text;
  EXPECT_EQ(response->body, R"({"deploymentId":"d-1"})");
  auto sent = f.http.Requests();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].Header("x-amz-target"), "CodeDeploy_20141006.CreateDeployment");
  EXPECT_EQ(sent[0].Header("content-type"), "application/x-amz-json-1.1");
  EXPECT_EQ(sent[0].body, R"({"applicationName":"orders"})");
  EXPECT_THAT(sent[0].Header("authorization"), HasSubstr("x-amz-target"));
  EXPECT_THAT(sent[0].Header("authorization"), HasSubstr("/codedeploy/aws4_request"));
}

TEST(AwsClientTest, RetriesThrottlingWithGrowingJitteredBackoff) {
  Fixture f;
  f.http.Respond("POST", kUrl, Response(400, QueryError("Throttling", "Rate exceeded")));
  f.http.Respond("POST", kUrl,
                 Response(400, R"({"__type":"com.amazon#ThrottlingException","message":"slow"})"));
  f.http.Respond("POST", kUrl, Fail("POST http://127.0.0.1:4566/: Connection reset by peer"));
  f.http.Respond("POST", kUrl, Response(503, ""));
  f.http.Respond("POST", kUrl, Response(400, QueryError("RequestLimitExceeded", "limit")));
  f.http.Respond("POST", kUrl, Response(200, "<ok/>"));
  auto response = f.Client()->Send(QueryRequest("DescribeStacks", "2010-05-15", {}));
  ASSERT_TRUE(response.has_value()) << response.error().text;
  EXPECT_EQ(f.http.RequestCount(), 6u);
  ASSERT_EQ(f.delays.size(), 5u);
  for (size_t i = 0; i < f.delays.size(); ++i) EXPECT_LT(f.delays[i].count(), 250 << i) << i;
  ASSERT_EQ(f.log.size(), 5u);
  EXPECT_THAT(f.log[0], HasSubstr("DescribeStacks: Throttling: Rate exceeded; retrying in"));
  EXPECT_THAT(f.log[0], HasSubstr("(attempt 2 of 6)"));
  EXPECT_THAT(f.log[1], HasSubstr("ThrottlingException: slow"));
  EXPECT_THAT(f.log[2], HasSubstr("Connection reset by peer"));
  EXPECT_THAT(f.log[3], HasSubstr("HTTP 503 Service Unavailable"));
  // Each attempt is signed again.
  for (const auto& request : f.http.Requests()) {
    EXPECT_FALSE(request.Header("authorization").empty());
  }
}

TEST(AwsClientTest, GivesUpAfterTheLastAttempt) {
  Fixture f;
  f.http.Respond("POST", kUrl, Response(500, QueryError("InternalFailure", "boom")));
  auto client = f.Client();
  AwsRequest request = QueryRequest("DescribeStacks", "2010-05-15", {});
  request.max_attempts = 3;
  auto response = client->Send(request);
  ASSERT_FALSE(response.has_value());
  EXPECT_EQ(response.error().status, 500);
  EXPECT_EQ(response.error().text, "InternalFailure: boom (DescribeStacks, after 3 attempts)");
  EXPECT_EQ(f.http.RequestCount(), 3u);
}

TEST(AwsClientTest, DecodesAQueryError) {
  Fixture f;
  f.http.Respond("POST", kUrl,
                 Response(400, QueryError("ValidationError", "Stack with id s does not exist")));
  auto response = f.Client()->Send(QueryRequest("DescribeStacks", "2010-05-15", {}));
  ASSERT_FALSE(response.has_value());
  const AwsError& error = response.error();
  EXPECT_EQ(error.status, 400);
  EXPECT_EQ(error.code, "ValidationError");
  EXPECT_EQ(error.message, "Stack with id s does not exist");
  EXPECT_EQ(error.request_id, "req-42");
  EXPECT_EQ(error.text, "ValidationError: Stack with id s does not exist (DescribeStacks)");
  EXPECT_EQ(f.http.RequestCount(), 1u);  // a client error is not retried
}

TEST(AwsClientTest, AnErrorInA200IsAnErrorWhenTheRequestSaysSo) {
  Fixture f;
  f.http.Respond(
      "POST", kUrl,
      Response(200, "   <Error><Code>InternalError</Code><Message>again</Message></Error>"));
  f.http.Respond("POST", kUrl, Response(200, "<Result><Error>not one</Error></Result>"));
  AwsRequest request;
  request.what = "Complete";
  request.error_in_body = true;
  auto response = f.Client("s3")->Send(request);
  ASSERT_TRUE(response.has_value()) << response.error().text;
  EXPECT_EQ(f.http.RequestCount(), 2u);
  ASSERT_EQ(f.log.size(), 1u);
  EXPECT_THAT(f.log[0], HasSubstr("Complete: InternalError: again; retrying"));
}

TEST(AwsErrorTest, DecodesS3Ec2AndJsonForms) {
  AwsError s3 = DecodeAwsError(
      Response(404,
               "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>gone</Message>"
               "<RequestId>r-s3</RequestId></Error>"));
  EXPECT_EQ(s3.code, "NoSuchKey");
  EXPECT_EQ(s3.message, "gone");
  EXPECT_EQ(s3.request_id, "r-s3");

  AwsError ec2 = DecodeAwsError(Response(
      400,
      "<Response><Errors><Error><Code>InvalidAMIID.NotFound</Code><Message>no ami</Message>"
      "</Error></Errors><RequestID>r-ec2</RequestID></Response>"));
  EXPECT_EQ(ec2.code, "InvalidAMIID.NotFound");
  EXPECT_EQ(ec2.request_id, "r-ec2");

  AwsError json = DecodeAwsError(
      Response(400,
               R"({"__type":"com.amazonaws.codedeploy#DeploymentDoesNotExistException",)"
               R"("Message":"no such deployment"})",
               {{"x-amzn-requestid", "r-json"}}));
  EXPECT_EQ(json.code, "DeploymentDoesNotExistException");
  EXPECT_EQ(json.message, "no such deployment");
  EXPECT_EQ(json.request_id, "r-json");
  EXPECT_EQ(json.text, "DeploymentDoesNotExistException: no such deployment");

  AwsError header = DecodeAwsError(
      Response(400, "{}", {{"x-amzn-errortype", "AccessDeniedException:http://internal/"}}));
  EXPECT_EQ(header.code, "AccessDeniedException");

  AwsError bare = DecodeAwsError(Response(404, ""));
  EXPECT_EQ(bare.code, "");
  EXPECT_EQ(bare.text, "HTTP 404 Not Found");
  AwsError garbage = DecodeAwsError(Response(502, "<html><body>bad gateway"));
  EXPECT_EQ(garbage.text, "HTTP 502 Bad Gateway");
}

AwsError Error(int status, std::string code = {}) {
  AwsError error;
  error.status = status;
  error.code = std::move(code);
  return error;
}

TEST(AwsErrorTest, RetryableCodes) {
  for (const char* code : {"Throttling", "ThrottlingException", "RequestLimitExceeded", "SlowDown",
                           "TooManyRequestsException", "ProvisionedThroughputExceededException"}) {
    EXPECT_TRUE(IsRetryable(Error(400, code))) << code;
  }
  EXPECT_TRUE(IsRetryable(Error(429)));
  EXPECT_TRUE(IsRetryable(Error(503)));
  EXPECT_FALSE(IsRetryable(Error(400, "ValidationError")));
  EXPECT_FALSE(IsRetryable(Error(403, "AccessDenied")));
}

TEST(AwsClientTest, RefusedCredentialsNameTheirSourceNeverTheSecret) {
  Fixture f;
  f.http.Respond(
      "POST", kUrl,
      Response(403, QueryError("InvalidClientTokenId", "The security token is invalid")));
  auto response = f.Client()->Send(QueryRequest("GetCallerIdentity", "2011-06-15", {}));
  ASSERT_FALSE(response.has_value());
  EXPECT_THAT(response.error().text, HasSubstr("[credentials from test]"));
  EXPECT_THAT(response.error().text, Not(HasSubstr("wJalrXUtnFEMI")));
  EXPECT_THAT(response.error().text, Not(HasSubstr("AKIDEXAMPLE")));
}

TEST(AwsClientTest, CancelledBeforeSendingSendsNothing) {
  FakeHttpClient http;
  StaticCredentialsProvider credentials(TestCredentials());
  AwsClientOptions options;
  options.service = "sqs";
  options.endpoint = "http://127.0.0.1:4566";
  options.cancelled = [] { return true; };
  auto client = AwsClient::Create(http, credentials, options);
  ASSERT_TRUE(client.has_value());
  auto response = (*client)->Send(QueryRequest("SendMessage", "2012-11-05", {}));
  ASSERT_FALSE(response.has_value());
  EXPECT_EQ(response.error().text, "cancelled (SendMessage)");
  EXPECT_EQ(http.RequestCount(), 0u);
}

TEST(AwsClientTest, EndpointsAreCheckedAndDefaulted) {
  EXPECT_THAT(ParseEndpoint("ftp://x").error(), HasSubstr("http://"));
  EXPECT_THAT(ParseEndpoint("http://x/path").error(), HasSubstr("path"));
  EXPECT_THAT(ParseEndpoint("http://user@x").error(), HasSubstr("scheme://host"));
  EXPECT_EQ(ParseEndpoint("http://127.0.0.1:9/")->host, "127.0.0.1:9");
  EXPECT_EQ(DefaultEndpoint("sts", "eu-west-1").host, "sts.eu-west-1.amazonaws.com");
  EXPECT_EQ(DefaultEndpoint("ec2", "cn-north-1").host, "ec2.cn-north-1.amazonaws.com.cn");
}

}  // namespace
}  // namespace runner::aws
