// The Auto Scaling and STS clients and the AssumeRole credentials provider: against a scripted
// HttpClient, the exact Query parameters, the answers read (samples in the shapes AWS
// documents), the refresh of temporary credentials and secrets kept out of messages; then
// against a real moto_server, assumed-role credentials that sign a CloudFormation call.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "runner/aws/autoscaling.h"
#include "runner/aws/cloudformation.h"
#include "runner/aws/sts.h"
#include "tests/fake_http_client.h"
#include "tests/moto_server.h"
#include "tests/test_util.h"

namespace runner::aws {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using testing::Utc;

constexpr char kUrl[] = "http://127.0.0.1:4566/";
constexpr char kRole[] = "arn:aws:iam::111111111111:role/deployer";
constexpr char kSecret[] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY";
constexpr char kToken[] =
    "AQoDYXdzEPT//////////"
    "wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx"
    "7mSEI/qkPpKPi/"
    "kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNV"
    "XAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+"
    "scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";

Credentials CallerCredentials() {
  Credentials credentials;
  credentials.access_key_id = "AKIDCALLER";
  credentials.secret_access_key = "caller-secret-key";
  credentials.source = "test";
  return credentials;
}

HttpResponse Response(int status, std::string body) {
  return FakeHttpClient::Ok(std::move(body), status, {{"content-type", "text/xml"}});
}

std::string StsError(std::string_view code, std::string_view message) {
  return fmt::format(
      "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender"
      "</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>r-1</RequestId>"
      "</ErrorResponse>",
      code, message);
}

// AssumeRole's answer as STS documents it, expiring at `expiration`.
std::string AssumeRoleAnswer(std::string_view key_id, std::string_view expiration) {
  return fmt::format(R"(<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <SourceIdentity>DevUser123</SourceIdentity>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::111111111111:assumed-role/deployer/runner-orders-157</Arn>
      <AssumedRoleId>ARO123EXAMPLE123:runner-orders-157</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>{}</AccessKeyId>
      <SecretAccessKey>{}</SecretAccessKey>
      <SessionToken>{}</SessionToken>
      <Expiration>{}</Expiration>
    </Credentials>
    <PackedPolicySize>6</PackedPolicySize>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>
</AssumeRoleResponse>)",
                     key_id, kSecret, kToken, expiration);
}

template <class Options>
Options Local() {
  Options options;
  options.region = "eu-west-1";
  options.endpoint = "http://127.0.0.1:4566";
  options.sleep = [](std::chrono::milliseconds) {};
  return options;
}

// --- Auto Scaling ---

TEST(AutoScalingClientTest, DescribeAutoScalingGroupsReadsTheSizes) {
  FakeHttpClient http;
  StaticCredentialsProvider credentials(CallerCredentials());
  http.Respond("POST", kUrl, Response(200, R"(
<DescribeAutoScalingGroupsResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">
  <DescribeAutoScalingGroupsResult>
    <AutoScalingGroups>
      <member>
        <AutoScalingGroupName>orders-stg-Group-1XYZ</AutoScalingGroupName>
        <AutoScalingGroupARN>arn:aws:autoscaling:eu-west-1:111111111111:autoScalingGroup:930d940e:autoScalingGroupName/orders-stg-Group-1XYZ</AutoScalingGroupARN>
        <LaunchTemplate><LaunchTemplateName>orders</LaunchTemplateName><Version>$Latest</Version></LaunchTemplate>
        <MinSize>2</MinSize>
        <MaxSize>6</MaxSize>
        <DesiredCapacity>4</DesiredCapacity>
        <DefaultCooldown>300</DefaultCooldown>
        <AvailabilityZones><member>eu-west-1a</member><member>eu-west-1b</member></AvailabilityZones>
        <HealthCheckType>ELB</HealthCheckType>
        <Instances>
          <member><InstanceId>i-1</InstanceId><LifecycleState>InService</LifecycleState><HealthStatus>Healthy</HealthStatus></member>
          <member><InstanceId>i-2</InstanceId><LifecycleState>InService</LifecycleState><HealthStatus>Healthy</HealthStatus></member>
          <member><InstanceId>i-3</InstanceId><LifecycleState>Pending</LifecycleState><HealthStatus>Healthy</HealthStatus></member>
        </Instances>
        <CreatedTime>2024-08-01T10:00:00.000Z</CreatedTime>
        <TerminationPolicies><member>OldestLaunchTemplate</member><member>OldestInstance</member></TerminationPolicies>
        <Tags><member><Key>Name</Key><Value>orders</Value></member></Tags>
      </member>
    </AutoScalingGroups>
  </DescribeAutoScalingGroupsResult>
  <ResponseMetadata><RequestId>r-2</RequestId></ResponseMetadata>
</DescribeAutoScalingGroupsResponse>)"));
  auto client = AutoScalingClient::Create(http, credentials, Local<AutoScalingOptions>());
  ASSERT_TRUE(client.has_value()) << client.error();
  auto group = (*client)->DescribeAutoScalingGroups("orders-stg-Group-1XYZ");
  ASSERT_TRUE(group.has_value()) << group.error();
  ASSERT_TRUE(group->has_value());
  EXPECT_EQ((*group)->name, "orders-stg-Group-1XYZ");
  EXPECT_EQ((*group)->min_size, 2);
  EXPECT_EQ((*group)->max_size, 6);
  EXPECT_EQ((*group)->desired_capacity, 4);
  EXPECT_EQ((*group)->instance_count, 3);
  EXPECT_THAT((*group)->termination_policies,
              ElementsAre("OldestLaunchTemplate", "OldestInstance"));

  auto sent = http.Requests();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].body,
            FormEncode({{"Action", "DescribeAutoScalingGroups"},
                        {"Version", "2011-01-01"},
                        {"AutoScalingGroupNames.member.1", "orders-stg-Group-1XYZ"}}));
  EXPECT_THAT(sent[0].Header("authorization"), HasSubstr("/eu-west-1/autoscaling/aws4_request"));
}

TEST(AutoScalingClientTest, AMissingGroupIsNulloptAndBadSizesAreErrors) {
  FakeHttpClient http;
  StaticCredentialsProvider credentials(CallerCredentials());
  http.Respond("POST", kUrl,
               Response(200,
                        "<DescribeAutoScalingGroupsResponse><DescribeAutoScalingGroupsResult>"
                        "<AutoScalingGroups/></DescribeAutoScalingGroupsResult>"
                        "</DescribeAutoScalingGroupsResponse>"));
  auto client = AutoScalingClient::Create(http, credentials, Local<AutoScalingOptions>());
  ASSERT_TRUE(client.has_value()) << client.error();
  auto group = (*client)->DescribeAutoScalingGroups("gone");
  ASSERT_TRUE(group.has_value()) << group.error();
  EXPECT_EQ(*group, std::nullopt);

  http.Respond("POST", kUrl,
               Response(200,
                        "<DescribeAutoScalingGroupsResponse><DescribeAutoScalingGroupsResult>"
                        "<AutoScalingGroups><member><AutoScalingGroupName>g</AutoScalingGroupName>"
                        "<MinSize>1</MinSize><MaxSize>many</MaxSize><DesiredCapacity>1"
                        "</DesiredCapacity></member></AutoScalingGroups>"
                        "</DescribeAutoScalingGroupsResult></DescribeAutoScalingGroupsResponse>"));
  group = (*client)->DescribeAutoScalingGroups("g");
  ASSERT_FALSE(group.has_value());
  EXPECT_EQ(group.error(),
            "Auto Scaling DescribeAutoScalingGroups g: MaxSize 'many' is not a number");

  http.Respond("POST", kUrl, Response(400, StsError("Throttling", "Rate exceeded")));
  http.Respond("POST", kUrl, Response(403, StsError("AccessDenied", "not authorized")));
  group = (*client)->DescribeAutoScalingGroups("g");
  ASSERT_FALSE(group.has_value());
  EXPECT_EQ(group.error(),
            "AccessDenied: not authorized (Auto Scaling DescribeAutoScalingGroups g, after 2 "
            "attempts)");
}

// --- STS ---

struct StsFixture {
  FakeHttpClient http;
  StaticCredentialsProvider credentials{CallerCredentials()};
  std::unique_ptr<StsClient> sts;

  StsFixture() {
    auto client = StsClient::Create(http, credentials, Local<StsOptions>());
    EXPECT_TRUE(client.has_value()) << client.error();
    sts = std::move(*client);
  }
};

AssumeRoleRequest Deployer() {
  AssumeRoleRequest request;
  request.role_arn = kRole;
  request.session_name = "runner-orders-157";
  request.duration = std::chrono::seconds(900);
  return request;
}

TEST(StsClientTest, AssumeRoleGivesTemporaryCredentials) {
  StsFixture f;
  f.http.Respond("POST", kUrl,
                 Response(200, AssumeRoleAnswer("ASIAIOSFODNN7EXAMPLE", "2024-11-09T13:34:41Z")));
  auto credentials = f.sts->AssumeRole(Deployer());
  ASSERT_TRUE(credentials.has_value()) << credentials.error();
  EXPECT_EQ(credentials->access_key_id, "ASIAIOSFODNN7EXAMPLE");
  EXPECT_EQ(credentials->secret_access_key, kSecret);
  EXPECT_EQ(credentials->session_token, kToken);
  EXPECT_EQ(credentials->expiration, Utc(2024, 11, 9, 13, 34, 41));
  EXPECT_EQ(credentials->source, std::string("STS AssumeRole ") + kRole);

  auto sent = f.http.Requests();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].body, FormEncode({{"Action", "AssumeRole"},
                                      {"Version", "2011-06-15"},
                                      {"RoleArn", kRole},
                                      {"RoleSessionName", "runner-orders-157"},
                                      {"DurationSeconds", "900"}}));
  // Signed with the caller's own keys, for the STS service.
  EXPECT_THAT(sent[0].Header("authorization"), HasSubstr("Credential=AKIDCALLER/"));
  EXPECT_THAT(sent[0].Header("authorization"), HasSubstr("/eu-west-1/sts/aws4_request"));
  EXPECT_FALSE(sent[0].HasHeader("x-amz-security-token"));
}

TEST(StsClientTest, FailuresNameTheRoleAndNeverTheSecrets) {
  StsFixture f;
  f.http.Respond("POST", kUrl,
                 Response(403, StsError("AccessDenied",
                                        "User: arn:aws:iam::111111111111:user/ci is not "
                                        "authorized to perform: sts:AssumeRole")));
  auto denied = f.sts->AssumeRole(Deployer());
  ASSERT_FALSE(denied.has_value());
  EXPECT_EQ(denied.error(),
            "AccessDenied: User: arn:aws:iam::111111111111:user/ci is not authorized to perform: "
            "sts:AssumeRole (STS AssumeRole arn:aws:iam::111111111111:role/deployer)");

  // Answers that hold the secret but cannot be used: the message names the field, not values.
  const std::string full = AssumeRoleAnswer("ASIAIOSFODNN7EXAMPLE", "2024-11-09T13:34:41Z");
  std::string no_token = full;
  no_token.erase(no_token.find("<SessionToken>"),
                 no_token.find("</SessionToken>") + 15 - no_token.find("<SessionToken>"));
  const std::string broken = full.substr(0, full.find("</SessionToken>") + 5);
  std::string bad_time = full;
  bad_time.replace(bad_time.find("2024-11-09T13:34:41Z"), 20, "tomorrow");
  struct Case {
    std::string body;
    std::string error;
  };
  for (const Case& c : {Case{no_token, "STS AssumeRole " + std::string(kRole) +
                                           ": the answer holds no SessionToken"},
                        Case{broken, "STS AssumeRole " + std::string(kRole) +
                                         ": the answer is not well-formed XML"},
                        Case{bad_time, "STS AssumeRole " + std::string(kRole) +
                                           ": Expiration: unreadable time 'tomorrow'"}}) {
    f.http.Respond("POST", kUrl, Response(200, c.body));
    auto credentials = f.sts->AssumeRole(Deployer());
    ASSERT_FALSE(credentials.has_value());
    EXPECT_EQ(credentials.error(), c.error);
    EXPECT_THAT(credentials.error(), Not(HasSubstr(kSecret)));
    EXPECT_THAT(credentials.error(), Not(HasSubstr(std::string(kToken).substr(0, 20))));
  }
}

TEST(AssumeRoleCredentialsProviderTest, AssumesOnceThenAgainBeforeExpiry) {
  StsFixture f;
  f.http.Respond("POST", kUrl,
                 Response(200, AssumeRoleAnswer("ASIAFIRST", "2024-11-09T13:00:00Z")));
  f.http.Respond("POST", kUrl,
                 Response(200, AssumeRoleAnswer("ASIASECOND", "2024-11-09T14:00:00Z")));
  auto now = Utc(2024, 11, 9, 12, 0, 0);
  CredentialsOptions options;
  options.now = [&] { return now; };
  AssumeRoleCredentialsProvider provider(*f.sts, Deployer(), options);

  auto first = provider.Get();
  ASSERT_TRUE(first.has_value()) << first.error();
  EXPECT_EQ(first->access_key_id, "ASIAFIRST");
  now = Utc(2024, 11, 9, 12, 54, 0);  // 6 minutes left: still fresh
  EXPECT_EQ(provider.Get()->access_key_id, "ASIAFIRST");
  EXPECT_EQ(f.http.RequestCount(), 1u);
  now = Utc(2024, 11, 9, 12, 56, 0);  // within the 5 minutes before expiry
  EXPECT_EQ(provider.Get()->access_key_id, "ASIASECOND");
  EXPECT_EQ(f.http.RequestCount(), 2u);
}

TEST(AssumeRoleCredentialsProviderTest, AFailedRefreshKeepsWorkingCredentialsUntilExpiry) {
  StsFixture f;
  f.http.Respond("POST", kUrl,
                 Response(200, AssumeRoleAnswer("ASIAFIRST", "2024-11-09T13:00:00Z")));
  f.http.Respond("POST", kUrl, Response(403, StsError("AccessDenied", "role trust changed")));
  auto now = Utc(2024, 11, 9, 12, 0, 0);
  CredentialsOptions options;
  options.now = [&] { return now; };
  AssumeRoleCredentialsProvider provider(*f.sts, Deployer(), options);
  ASSERT_TRUE(provider.Get().has_value());

  now = Utc(2024, 11, 9, 12, 58, 0);
  auto kept = provider.Get();
  ASSERT_TRUE(kept.has_value()) << kept.error();
  EXPECT_EQ(kept->access_key_id, "ASIAFIRST");
  EXPECT_EQ(f.http.RequestCount(), 2u);
  // STS is not asked again at once...
  now += std::chrono::seconds(5);
  EXPECT_EQ(provider.Get()->access_key_id, "ASIAFIRST");
  EXPECT_EQ(f.http.RequestCount(), 2u);
  // ...and once the credentials expired, the failure comes out.
  now = Utc(2024, 11, 9, 13, 0, 1);
  auto expired = provider.Get();
  ASSERT_FALSE(expired.has_value());
  EXPECT_EQ(expired.error(),
            "AccessDenied: role trust changed (STS AssumeRole "
            "arn:aws:iam::111111111111:role/deployer)");
}

TEST(AssumeRoleCredentialsProviderTest, OtherClientsSignWithTheSessionToken) {
  StsFixture f;
  f.http.Respond("POST", kUrl,
                 Response(200, AssumeRoleAnswer("ASIAIOSFODNN7EXAMPLE", "2100-01-01T00:00:00Z")));
  AssumeRoleCredentialsProvider provider(*f.sts, Deployer());
  FakeHttpClient cfn_http;
  cfn_http.Respond("POST", kUrl,
                   Response(403, StsError("ExpiredToken",
                                          "The security token included in the request is "
                                          "expired")));
  auto cfn = CloudFormationClient::Create(cfn_http, provider, Local<CloudFormationOptions>());
  ASSERT_TRUE(cfn.has_value()) << cfn.error();
  auto stack = (*cfn)->DescribeStacks("orders-stg");
  ASSERT_FALSE(stack.has_value());
  EXPECT_THAT(stack.error(), StartsWith("ExpiredToken: "));
  EXPECT_THAT(stack.error(), Not(HasSubstr(kSecret)));
  EXPECT_THAT(stack.error(), Not(HasSubstr(std::string(kToken).substr(0, 20))));

  auto sent = cfn_http.Requests();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].Header("x-amz-security-token"), kToken);
  EXPECT_THAT(sent[0].Header("authorization"), HasSubstr("Credential=ASIAIOSFODNN7EXAMPLE/"));
  EXPECT_THAT(sent[0].Header("authorization"), HasSubstr("x-amz-security-token"));
}

// --- against moto_server ---

// The libcurl client, keeping a copy of every request's headers.
class RecordingHttpClient : public HttpClient {
 public:
  RecordingHttpClient() : real_(MakeCurlHttpClient()) {}
  Result<HttpResponse> Send(const HttpRequest& request) override {
    {
      std::lock_guard lock(mutex_);
      headers_.push_back(request.headers);
    }
    return real_->Send(request);
  }
  std::vector<Pairs> headers() {
    std::lock_guard lock(mutex_);
    return headers_;
  }

 private:
  std::unique_ptr<HttpClient> real_;
  std::mutex mutex_;
  std::vector<Pairs> headers_;
};

std::string HeaderOf(const Pairs& headers, std::string_view name) {
  for (const auto& [key, value] : headers) {
    if (key.size() == name.size() &&
        std::equal(key.begin(), key.end(), name.begin(),
                   [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
      return value;
    }
  }
  return "";
}

class StsMotoTest : public testing::MotoServerTest {};

TEST_F(StsMotoTest, AssumedRoleCredentialsSignACloudFormationCall) {
  RecordingHttpClient http;
  StaticCredentialsProvider caller(CallerCredentials());
  StsOptions sts_options;
  sts_options.endpoint = moto().endpoint();
  auto sts = StsClient::Create(http, caller, sts_options);
  ASSERT_TRUE(sts.has_value()) << sts.error();
  auto assumed = (*sts)->AssumeRole(Deployer());
  ASSERT_TRUE(assumed.has_value()) << assumed.error();
  EXPECT_THAT(assumed->access_key_id, StartsWith("ASIA"));
  EXPECT_FALSE(assumed->secret_access_key.empty());
  EXPECT_FALSE(assumed->session_token.empty());
  ASSERT_TRUE(assumed->expiration.has_value());
  const auto left = *assumed->expiration - std::chrono::system_clock::now();
  EXPECT_GT(left, std::chrono::minutes(13));
  EXPECT_LE(left, std::chrono::minutes(16));

  AssumeRoleCredentialsProvider provider(**sts, Deployer());
  CloudFormationOptions cfn_options;
  cfn_options.endpoint = moto().endpoint();
  auto cfn = CloudFormationClient::Create(http, provider, cfn_options);
  ASSERT_TRUE(cfn.has_value()) << cfn.error();
  auto stack = (*cfn)->DescribeStacks("orders-stg");
  ASSERT_TRUE(stack.has_value()) << stack.error();
  EXPECT_EQ(*stack, std::nullopt);

  // AssumeRole, the provider's AssumeRole, then DescribeStacks with the provider's credentials.
  auto sent = http.headers();
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_THAT(HeaderOf(sent[0], "authorization"), HasSubstr("Credential=AKIDCALLER/"));
  EXPECT_EQ(HeaderOf(sent[0], "x-amz-security-token"), "");
  Result<Credentials> used = provider.Get();
  ASSERT_TRUE(used.has_value()) << used.error();
  EXPECT_THAT(HeaderOf(sent[2], "authorization"),
              HasSubstr("Credential=" + used->access_key_id + "/"));
  EXPECT_THAT(HeaderOf(sent[2], "authorization"), HasSubstr("/cloudformation/aws4_request"));
  EXPECT_EQ(HeaderOf(sent[2], "x-amz-security-token"), used->session_token);
}

}  // namespace
}  // namespace runner::aws
