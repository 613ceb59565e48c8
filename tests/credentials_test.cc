#include "runner/aws/credentials.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "tests/fake_http_client.h"
#include "tests/test_util.h"

namespace runner::aws {
namespace {

using namespace std::chrono_literals;
using runner::testing::TempDir;
using runner::testing::WriteTextFile;
using std::chrono::system_clock;

constexpr char kKey[] = "AKIAEXAMPLEKEY000001";
constexpr char kSecret[] = "SeCrEt/0123456789+abcdefghijklmnopqrstuv";
constexpr char kToken[] = "ToKeN//session+token==";
constexpr char kImds[] = "http://169.254.169.254";
constexpr char kRoles[] = "http://169.254.169.254/latest/meta-data/iam/security-credentials/";

// Neither a secret nor a token may appear in any message.
void ExpectNoSecrets(const std::string& message) {
  EXPECT_EQ(message.find(kSecret), std::string::npos) << message;
  EXPECT_EQ(message.find(kToken), std::string::npos) << message;
  EXPECT_EQ(message.find("SeCrEt"), std::string::npos) << message;
  EXPECT_EQ(message.find("ToKeN"), std::string::npos) << message;
}

std::string Iso(system_clock::time_point time) {
  std::time_t seconds = system_clock::to_time_t(time);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buffer;
}

std::string CredentialsJson(const std::string& key, system_clock::time_point expiration,
                            const std::string& extra = "") {
  return R"({)" + extra + R"("AccessKeyId": ")" + key + R"(", "SecretAccessKey": ")" + kSecret +
         R"(", "Token": ")" + kToken + R"(", "Expiration": ")" + Iso(expiration) + R"("})";
}

class CredentialsTest : public ::testing::Test {
 protected:
  // HOME is an empty directory: no shared files unless a test writes them.
  Environment BaseEnv() { return {{"HOME", home_.path()}}; }

  std::unique_ptr<CredentialsProvider> Chain(const Environment& env) {
    CredentialsOptions options;
    options.now = [this] { return now_; };
    return MakeDefaultCredentialsChain(env, http_, options);
  }

  // Serves the IMDSv2 flow for role `role` with `body` as its credentials.
  void ServeImds(const std::string& body, const std::string& role = "app-role") {
    http_.Respond("PUT", std::string(kImds) + "/latest/api/token", FakeHttpClient::Ok("imds-tok"));
    http_.Respond("GET", kRoles, FakeHttpClient::Ok(role + "\n"));
    http_.Respond("GET", kRoles + role, FakeHttpClient::Ok(body));
  }

  TempDir home_;
  FakeHttpClient http_;
  system_clock::time_point now_ = system_clock::from_time_t(1700000000);
};

TEST_F(CredentialsTest, FromEnvironment) {
  Environment env = BaseEnv();
  env["AWS_ACCESS_KEY_ID"] = kKey;
  env["AWS_SECRET_ACCESS_KEY"] = kSecret;
  env["AWS_SESSION_TOKEN"] = kToken;
  Result<Credentials> credentials = Chain(env)->Get();
  ASSERT_TRUE(credentials) << credentials.error();
  EXPECT_EQ(credentials->access_key_id, kKey);
  EXPECT_EQ(credentials->secret_access_key, kSecret);
  EXPECT_EQ(credentials->session_token, kToken);
  EXPECT_FALSE(credentials->expiration);
  EXPECT_EQ(credentials->source, "environment");
  EXPECT_EQ(http_.RequestCount(), 0u);
}

TEST_F(CredentialsTest, EnvironmentKeyWithoutSecretNamesTheMissingVariable) {
  Environment env = BaseEnv();
  env["AWS_ACCESS_KEY_ID"] = kKey;
  Result<Credentials> credentials = Chain(env)->Get();
  ASSERT_FALSE(credentials);
  EXPECT_NE(credentials.error().find("AWS_SECRET_ACCESS_KEY is not"), std::string::npos)
      << credentials.error();
  EXPECT_EQ(credentials.error().find(kKey), std::string::npos);

  env.erase("AWS_ACCESS_KEY_ID");
  env["AWS_SECRET_ACCESS_KEY"] = kSecret;
  credentials = Chain(env)->Get();
  ASSERT_FALSE(credentials);
  EXPECT_NE(credentials.error().find("AWS_ACCESS_KEY_ID is not"), std::string::npos)
      << credentials.error();
  ExpectNoSecrets(credentials.error());
  EXPECT_EQ(http_.RequestCount(), 0u);  // a wrong setup stops the chain
}

TEST_F(CredentialsTest, EmptyVariablesCountAsUnset) {
  Environment env = BaseEnv();
  env["AWS_ACCESS_KEY_ID"] = "";
  env["AWS_SECRET_ACCESS_KEY"] = "";
  env["AWS_EC2_METADATA_DISABLED"] = "true";
  Result<Credentials> credentials = Chain(env)->Get();
  ASSERT_FALSE(credentials);
  EXPECT_TRUE(
      credentials.error().starts_with("no AWS credentials: environment (AWS_ACCESS_KEY_ID "
                                      "not set)"))
      << credentials.error();
}

TEST_F(CredentialsTest, DefaultProfileFromCredentialsFile) {
  WriteTextFile(home_ / ".aws/credentials",
                "# a comment\n"
                "; another\n"
                "[other]\n"
                "aws_access_key_id = OTHERKEY\n"
                "aws_secret_access_key = othersecret\n"
                "\n"
                "  [ default ]  \n"
                "  AWS_Access_Key_Id=" +
                    std::string(kKey) +
                    "\r\n"
                    "  aws_secret_access_key   =   " +
                    kSecret +
                    "   \n"
                    "aws_session_token = " +
                    kToken + "\n");
  Result<Credentials> credentials = Chain(BaseEnv())->Get();
  ASSERT_TRUE(credentials) << credentials.error();
  EXPECT_EQ(credentials->access_key_id, kKey);
  EXPECT_EQ(credentials->secret_access_key, kSecret);
  EXPECT_EQ(credentials->session_token, kToken);
  EXPECT_EQ(credentials->source, "profile 'default' in ~/.aws/credentials");
  EXPECT_EQ(http_.RequestCount(), 0u);
}

TEST_F(CredentialsTest, NamedProfileFromFilesNamedByVariables) {
  TempDir elsewhere;
  WriteTextFile(elsewhere / "creds",
                "[default]\naws_access_key_id = DEFAULTKEY\naws_secret_access_key = x\n"
                "[ci]\naws_access_key_id = " +
                    std::string(kKey) + "\naws_secret_access_key = " + kSecret + "\n");
  WriteTextFile(elsewhere / "config", "[profile ci]\nregion = eu-west-1\n");
  Environment env = BaseEnv();
  env["AWS_PROFILE"] = "ci";
  env["AWS_SHARED_CREDENTIALS_FILE"] = elsewhere / "creds";
  env["AWS_CONFIG_FILE"] = elsewhere / "config";
  Result<Credentials> credentials = Chain(env)->Get();
  ASSERT_TRUE(credentials) << credentials.error();
  EXPECT_EQ(credentials->access_key_id, kKey);
  EXPECT_EQ(credentials->source, "profile 'ci' in " + (elsewhere / "creds"));
  EXPECT_EQ(DefaultRegion(env), "eu-west-1");
}

TEST_F(CredentialsTest, KeysInTheConfigFileAndCredentialsFileFirst) {
  WriteTextFile(home_ / ".aws/config",
                "[profile ci]\n"
                "region = eu-central-1\n"
                "s3 =\n"
                "    max_concurrent_requests = 20\n"
                "    aws_access_key_id = NESTED_NOT_A_KEY\n"
                "aws_access_key_id = CONFIGKEY\n"
                "aws_secret_access_key = " +
                    std::string(kSecret) + "\n");
  Environment env = BaseEnv();
  env["AWS_PROFILE"] = "ci";
  Result<Credentials> credentials = Chain(env)->Get();
  ASSERT_TRUE(credentials) << credentials.error();
  EXPECT_EQ(credentials->access_key_id, "CONFIGKEY");
  EXPECT_EQ(credentials->source, "profile 'ci' in ~/.aws/config");

  WriteTextFile(
      home_ / ".aws/credentials",
      "[ci]\naws_access_key_id = CREDSKEY\naws_secret_access_key = " + std::string(kSecret) + "\n");
  credentials = Chain(env)->Get();
  ASSERT_TRUE(credentials) << credentials.error();
  EXPECT_EQ(credentials->access_key_id, "CREDSKEY");
}

TEST_F(CredentialsTest, NamedProfileThatDoesNotExistIsAnError) {
  Environment env = BaseEnv();
  env["AWS_PROFILE"] = "nope";
  Result<Credentials> credentials = Chain(env)->Get();
  ASSERT_FALSE(credentials);
  EXPECT_EQ(credentials.error(),
            "AWS credentials: AWS_PROFILE is 'nope' but there is no ~/.aws/credentials or "
            "~/.aws/config");

  WriteTextFile(home_ / ".aws/credentials",
                "[default]\naws_access_key_id = K\n"
                "aws_secret_access_key = S\n");
  credentials = Chain(env)->Get();
  ASSERT_FALSE(credentials);
  EXPECT_EQ(credentials.error(),
            "AWS credentials: AWS_PROFILE is 'nope' but no such profile is in ~/.aws/credentials "
            "or ~/.aws/config");
  EXPECT_EQ(http_.RequestCount(), 0u);
}

TEST_F(CredentialsTest, ProfileWithHalfAKeyPairIsAnError) {
  WriteTextFile(home_ / ".aws/credentials",
                "[default]\naws_secret_access_key = " + std::string(kSecret) + "\n");
  Result<Credentials> credentials = Chain(BaseEnv())->Get();
  ASSERT_FALSE(credentials);
  EXPECT_EQ(credentials.error(),
            "AWS credentials: profile 'default' in ~/.aws/credentials has aws_secret_access_key "
            "but no aws_access_key_id");
  ExpectNoSecrets(credentials.error());
}

TEST_F(CredentialsTest, ProfileThatAssumesARoleIsAnErrorWithAWayOut) {
  WriteTextFile(home_ / ".aws/config",
                "[profile deploy]\nrole_arn = arn:aws:iam::123456789012:role/deploy\n"
                "source_profile = default\n");
  Environment env = BaseEnv();
  env["AWS_PROFILE"] = "deploy";
  Result<Credentials> credentials = Chain(env)->Get();
  ASSERT_FALSE(credentials);
  EXPECT_NE(credentials.error().find("profile 'deploy' in ~/.aws/config uses role_arn"),
            std::string::npos)
      << credentials.error();
  EXPECT_NE(credentials.error().find("aws configure export-credentials --profile deploy"),
            std::string::npos);
}

TEST_F(CredentialsTest, DefaultProfileWithOnlyARegionFallsThroughToInstanceMetadata) {
  WriteTextFile(home_ / ".aws/config", "[default]\nregion = ap-south-1\n");
  ServeImds(CredentialsJson(kKey, now_ + 6h));
  Result<Credentials> credentials = Chain(BaseEnv())->Get();
  ASSERT_TRUE(credentials) << credentials.error();
  EXPECT_EQ(credentials->source, "EC2 instance metadata (role app-role)");
  EXPECT_EQ(DefaultRegion(BaseEnv()), "ap-south-1");
}

TEST_F(CredentialsTest, EcsRelativeUriWithAuthorizationToken) {
  Environment env = BaseEnv();
  env["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"] = "/v2/credentials/abc-123";
  env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = "container-auth";
  http_.Respond("GET", "http://169.254.170.2/v2/credentials/abc-123",
                FakeHttpClient::Ok(CredentialsJson(kKey, now_ + 1h)));
  Result<Credentials> credentials = Chain(env)->Get();
  ASSERT_TRUE(credentials) << credentials.error();
  EXPECT_EQ(credentials->access_key_id, kKey);
  EXPECT_EQ(credentials->secret_access_key, kSecret);
  EXPECT_EQ(credentials->session_token, kToken);
  EXPECT_EQ(credentials->expiration, now_ + 1h);
  EXPECT_EQ(credentials->source, "ECS container credentials");
  std::vector<FakeHttpClient::Recorded> requests = http_.Requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "GET");
  EXPECT_EQ(requests[0].Header("Authorization"), "container-auth");
  EXPECT_LE(requests[0].timeout, 2s);
}

TEST_F(CredentialsTest, EcsFullUriWithTokenFile) {
  TempDir dir;
  WriteTextFile(dir / "token", "token-from-file\n");
  Environment env = BaseEnv();
  env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = "http://127.0.0.1:8080/creds";
  env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] = dir / "token";
  env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = "ignored-when-the-file-is-set";
  // Fractional seconds and an offset, as some container agents write them.
  http_.Respond(
      "GET", "http://127.0.0.1:8080/creds",
      FakeHttpClient::Ok(R"({"AccessKeyId": "K", "SecretAccessKey": "S", )"
                         R"("Token": "T", "Expiration": "2024-05-01T14:34:56.123+02:00"})"));
  Result<Credentials> credentials = Chain(env)->Get();
  ASSERT_TRUE(credentials) << credentials.error();
  EXPECT_EQ(credentials->expiration, system_clock::from_time_t(1714566896));  // 12:34:56Z
  ASSERT_EQ(http_.RequestCount(), 1u);
  EXPECT_EQ(http_.Requests()[0].Header("Authorization"), "token-from-file");
}

// Found by tests/fuzz/aws_credentials_fuzz.cc: a blank CRLF line read out of range.
TEST_F(CredentialsTest, CrlfFileWithBlankLines) {
  WriteTextFile(home_ / ".aws/credentials",
                "[default]\r\n\r\naws_access_key_id = " + std::string(kKey) +
                    "\r\n \r\n\f\naws_secret_access_key = " + kSecret + "\r\n");
  Result<Credentials> credentials = Chain(BaseEnv())->Get();
  ASSERT_TRUE(credentials) << credentials.error();
  EXPECT_EQ(credentials->access_key_id, kKey);
  EXPECT_EQ(credentials->secret_access_key, kSecret);
}

// Found by tests/fuzz/aws_credentials_fuzz.cc: beyond 2262 the nanosecond clock overflowed.
TEST_F(CredentialsTest, ExpirationBeyondTheClockIsClamped) {
  Environment env = BaseEnv();
  env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = "http://127.0.0.1:8080/creds";
  http_.Respond("GET", "http://127.0.0.1:8080/creds",
                FakeHttpClient::Ok(R"({"AccessKeyId": "K", "SecretAccessKey": "S", )"
                                   R"("Expiration": "2262-04-12T00:00:00Z"})"));
  Result<Credentials> credentials = Chain(env)->Get();
  ASSERT_TRUE(credentials) << credentials.error();
  EXPECT_EQ(credentials->expiration, system_clock::time_point::max());
}

TEST_F(CredentialsTest, EcsFullUriToAnotherHostOverHttpIsRefused) {
  Environment env = BaseEnv();
  env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = "http://evil.example.com/creds";
  env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = kToken;
  Result<Credentials> credentials = Chain(env)->Get();
  ASSERT_FALSE(credentials);
  EXPECT_NE(credentials.error().find("must use https"), std::string::npos) << credentials.error();
  ExpectNoSecrets(credentials.error());
  EXPECT_EQ(http_.RequestCount(), 0u);
}

TEST_F(CredentialsTest, EcsFailuresAreErrorsWithoutTheBody) {
  Environment env = BaseEnv();
  env["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"] = "/creds?secret-ish=1";
  env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = kToken;
  const std::string url = "http://169.254.170.2/creds?secret-ish=1";

  http_.Respond("GET", url, FakeHttpClient::Ok("oops", 503));
  Result<Credentials> credentials = Chain(env)->Get();
  ASSERT_FALSE(credentials);
  EXPECT_EQ(credentials.error(),
            "AWS credentials: ECS container credentials (http://169.254.170.2/creds): HTTP 503");
  EXPECT_EQ(http_.RequestCount(), 2u);  // retried once

  FakeHttpClient other;
  other.Respond("GET", url,
                FakeHttpClient::Ok(R"({"AccessKeyId": "K", "SecretAccessKey": ")" +
                                   std::string(kSecret) + R"(", "Expiration": 7})"));
  credentials = MakeDefaultCredentialsChain(env, other)->Get();
  ASSERT_FALSE(credentials);
  EXPECT_NE(credentials.error().find("Expiration is not a string"), std::string::npos)
      << credentials.error();
  ExpectNoSecrets(credentials.error());

  FakeHttpClient truncated;
  truncated.Respond(
      "GET", url,
      FakeHttpClient::Ok(R"({"AccessKeyId": "K", "SecretAccessKey": ")" + std::string(kSecret)));
  credentials = MakeDefaultCredentialsChain(env, truncated)->Get();
  ASSERT_FALSE(credentials);
  EXPECT_NE(credentials.error().find("not a JSON object"), std::string::npos)
      << credentials.error();
  ExpectNoSecrets(credentials.error());
}

TEST_F(CredentialsTest, InstanceMetadataTokenFlow) {
  Environment env = BaseEnv();
  env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = "http://127.0.0.1:1338/";
  const std::string base = "http://127.0.0.1:1338";
  http_.Respond("PUT", base + "/latest/api/token", FakeHttpClient::Ok("imds-session-token"));
  http_.Respond("GET", base + "/latest/meta-data/iam/security-credentials/",
                FakeHttpClient::Ok("web-role"));
  http_.Respond("GET", base + "/latest/meta-data/iam/security-credentials/web-role",
                FakeHttpClient::Ok(CredentialsJson(kKey, now_ + 6h, R"("Code": "Success", )")));
  Result<Credentials> credentials = Chain(env)->Get();
  ASSERT_TRUE(credentials) << credentials.error();
  EXPECT_EQ(credentials->access_key_id, kKey);
  EXPECT_EQ(credentials->session_token, kToken);
  EXPECT_EQ(credentials->expiration, now_ + 6h);
  EXPECT_EQ(credentials->source, "EC2 instance metadata (role web-role)");

  std::vector<FakeHttpClient::Recorded> requests = http_.Requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].method, "PUT");
  EXPECT_EQ(requests[0].url, base + "/latest/api/token");
  EXPECT_EQ(requests[0].Header("X-aws-ec2-metadata-token-ttl-seconds"), "21600");
  EXPECT_FALSE(requests[0].HasHeader("X-aws-ec2-metadata-token"));
  EXPECT_EQ(requests[1].method, "GET");
  EXPECT_EQ(requests[1].url, base + "/latest/meta-data/iam/security-credentials/");
  EXPECT_EQ(requests[1].Header("X-aws-ec2-metadata-token"), "imds-session-token");
  EXPECT_EQ(requests[2].url, base + "/latest/meta-data/iam/security-credentials/web-role");
  EXPECT_EQ(requests[2].Header("X-aws-ec2-metadata-token"), "imds-session-token");
  for (const auto& request : requests) {
    EXPECT_EQ(request.connect_timeout, 1s);
    EXPECT_EQ(request.timeout, 2s);
  }
}

TEST_F(CredentialsTest, InstanceMetadataWithoutRoleOrWithAFailureCode) {
  Environment env = BaseEnv();
  http_.Respond("PUT", std::string(kImds) + "/latest/api/token", FakeHttpClient::Ok("t"));
  http_.Respond("GET", kRoles, FakeHttpClient::Ok("not found", 404));
  Result<Credentials> credentials = Chain(env)->Get();
  ASSERT_FALSE(credentials);
  EXPECT_NE(credentials.error().find("EC2 instance metadata (http://169.254.169.254: no IAM role "
                                     "attached to this instance)"),
            std::string::npos)
      << credentials.error();

  FakeHttpClient other;
  other.Respond("PUT", std::string(kImds) + "/latest/api/token", FakeHttpClient::Ok("t"));
  other.Respond("GET", kRoles, FakeHttpClient::Ok("r"));
  other.Respond("GET", std::string(kRoles) + "r",
                FakeHttpClient::Ok(R"({"Code": "AssumeRoleUnauthorizedAccess"})"));
  credentials = MakeDefaultCredentialsChain(env, other)->Get();
  ASSERT_FALSE(credentials);
  EXPECT_NE(credentials.error().find("Code 'AssumeRoleUnauthorizedAccess'"), std::string::npos)
      << credentials.error();
}

TEST_F(CredentialsTest, InstanceMetadataDisabled) {
  Environment env = BaseEnv();
  env["AWS_EC2_METADATA_DISABLED"] = "TRUE";
  Result<Credentials> credentials = Chain(env)->Get();
  ASSERT_FALSE(credentials);
  EXPECT_NE(
      credentials.error().find("EC2 instance metadata (disabled by AWS_EC2_METADATA_DISABLED)"),
      std::string::npos)
      << credentials.error();
  EXPECT_EQ(http_.RequestCount(), 0u);
}

TEST_F(CredentialsTest, NoCredentialsListsEverySourceTried) {
  Result<Credentials> credentials = Chain(BaseEnv())->Get();
  ASSERT_FALSE(credentials);
  EXPECT_EQ(credentials.error(),
            "no AWS credentials: environment (AWS_ACCESS_KEY_ID not set); profile 'default' (no "
            "~/.aws/credentials or ~/.aws/config); ECS (AWS_CONTAINER_CREDENTIALS_* not set); EC2 "
            "instance metadata (http://169.254.169.254/latest/api/token: connection refused). Set "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with a profile in "
            "~/.aws/credentials");
}

TEST_F(CredentialsTest, TemporaryCredentialsAreCachedThenRefreshedBeforeExpiry) {
  ServeImds(CredentialsJson("FIRSTKEY", now_ + 1h));
  auto chain = Chain(BaseEnv());
  Result<Credentials> credentials = chain->Get();
  ASSERT_TRUE(credentials) << credentials.error();
  EXPECT_EQ(credentials->access_key_id, "FIRSTKEY");
  EXPECT_EQ(http_.RequestCount(), 3u);

  now_ += 50min;  // 10 minutes left: still cached
  ASSERT_TRUE(chain->Get());
  EXPECT_EQ(chain->Get()->access_key_id, "FIRSTKEY");
  EXPECT_EQ(http_.RequestCount(), 3u);

  ServeImds(CredentialsJson("SECONDKEY", now_ + 2h));
  now_ += 6min;  // 4 minutes left: inside the 5-minute window
  credentials = chain->Get();
  ASSERT_TRUE(credentials) << credentials.error();
  EXPECT_EQ(credentials->access_key_id, "SECONDKEY");
  EXPECT_EQ(http_.RequestCount(), 6u);
  EXPECT_EQ(http_.Requests()[3].method, "PUT");  // a new IMDSv2 session for the refresh
}

TEST_F(CredentialsTest, RefreshWindowIsConfigurable) {
  ServeImds(CredentialsJson("FIRSTKEY", now_ + 1h));
  CredentialsOptions options;
  options.refresh_before = 30min;
  options.now = [this] { return now_; };
  auto chain = MakeDefaultCredentialsChain(BaseEnv(), http_, options);
  ASSERT_TRUE(chain->Get());
  now_ += 31min;
  ASSERT_TRUE(chain->Get());
  EXPECT_EQ(http_.RequestCount(), 6u);
}

TEST_F(CredentialsTest, FailedRefreshKeepsCredentialsUntilTheyExpire) {
  FakeHttpClient flaky;
  std::atomic<bool> up = true;
  flaky.handler = [&](const HttpRequest& request) -> Result<HttpResponse> {
    if (!up) return Fail(request.url + ": connection refused");
    if (request.method == "PUT") return FakeHttpClient::Ok("t");
    if (request.url == kRoles) return FakeHttpClient::Ok("r");
    return FakeHttpClient::Ok(CredentialsJson(kKey, now_ + 1h));
  };
  CredentialsOptions options;
  options.now = [this] { return now_; };
  auto chain = MakeDefaultCredentialsChain(BaseEnv(), flaky, options);
  system_clock::time_point expiry = now_ + 1h;
  ASSERT_TRUE(chain->Get());

  up = false;
  now_ = expiry - 2min;
  Result<Credentials> credentials = chain->Get();
  ASSERT_TRUE(credentials) << credentials.error();
  EXPECT_EQ(credentials->expiration, expiry);

  now_ = expiry + 1s;
  credentials = chain->Get();
  ASSERT_FALSE(credentials);
  EXPECT_TRUE(credentials.error().starts_with("no AWS credentials:")) << credentials.error();
  ExpectNoSecrets(credentials.error());
}

TEST_F(CredentialsTest, ConcurrentGetsFetchOnce) {
  ServeImds(CredentialsJson(kKey, now_ + 6h));
  auto chain = Chain(BaseEnv());
  std::vector<std::thread> threads;
  std::atomic<int> ok = 0;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 50; ++j) {
        if (auto credentials = chain->Get(); credentials && credentials->access_key_id == kKey) {
          ++ok;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(ok, 400);
  EXPECT_EQ(http_.RequestCount(), 3u);
}

TEST_F(CredentialsTest, DefaultRegion) {
  Environment env = BaseEnv();
  EXPECT_EQ(DefaultRegion(env), "us-east-1");
  WriteTextFile(home_ / ".aws/config",
                "[default]\nregion = eu-north-1\n[profile ci]\nregion=ca-central-1\n");
  EXPECT_EQ(DefaultRegion(env), "eu-north-1");
  env["AWS_PROFILE"] = "ci";
  EXPECT_EQ(DefaultRegion(env), "ca-central-1");
  env["AWS_DEFAULT_REGION"] = "sa-east-1";
  EXPECT_EQ(DefaultRegion(env), "sa-east-1");
  env["AWS_REGION"] = "af-south-1";
  EXPECT_EQ(DefaultRegion(env), "af-south-1");
  env["AWS_REGION"] = "";  // empty counts as unset
  EXPECT_EQ(DefaultRegion(env), "sa-east-1");
}

// --- The IMDSv2 flow against a real HTTP server on 127.0.0.1, through libcurl.

// A one-thread HTTP/1.1 server answering each connection once and closing it. It stops when
// destroyed or after `lifetime`, whichever comes first, so a failing test never hangs.
class LocalHttpServer {
 public:
  struct Seen {
    std::string method, target, headers;
  };
  using Handler = std::function<std::pair<int, std::string>(const Seen&)>;

  explicit LocalHttpServer(Handler handler, std::chrono::seconds lifetime = 20s)
      : handler_(std::move(handler)), deadline_(std::chrono::steady_clock::now() + lifetime) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof address;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&address), size) != 0 || ::listen(fd_, 16) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &size) != 0) {
      ADD_FAILURE() << "cannot listen on 127.0.0.1";
      return;
    }
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~LocalHttpServer() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    ::close(fd_);
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<Seen> seen() {
    std::lock_guard lock(mutex_);
    return seen_;
  }

 private:
  bool Alive() const { return !stop_ && std::chrono::steady_clock::now() < deadline_; }

  void Serve() {
    while (Alive()) {
      pollfd poll_fd{fd_, POLLIN, 0};
      if (::poll(&poll_fd, 1, 50) <= 0) continue;
      int client = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      std::string request;
      char buffer[4096];
      while (request.find("\r\n\r\n") == std::string::npos && Alive()) {
        pollfd client_fd{client, POLLIN, 0};
        if (::poll(&client_fd, 1, 50) <= 0) continue;
        ssize_t got = ::read(client, buffer, sizeof buffer);
        if (got <= 0) break;
        request.append(buffer, static_cast<size_t>(got));
      }
      Seen seen;
      size_t line_end = request.find("\r\n");
      std::string line = request.substr(0, line_end);
      seen.method = line.substr(0, line.find(' '));
      seen.target = line.substr(line.find(' ') + 1, line.rfind(' ') - line.find(' ') - 1);
      if (line_end != std::string::npos) {
        seen.headers = request.substr(line_end + 2);
      }
      {
        std::lock_guard lock(mutex_);
        seen_.push_back(seen);
      }
      auto [status, body] = handler_(seen);
      if (status == 0) {  // stall: hold the connection without answering
        while (Alive()) std::this_thread::sleep_for(20ms);
      } else {
        std::string response = "HTTP/1.1 " + std::to_string(status) +
                               " X\r\nContent-Length: " + std::to_string(body.size()) +
                               "\r\nConnection: close\r\n\r\n" + body;
        ssize_t ignored = ::write(client, response.data(), response.size());
        (void)ignored;
      }
      ::close(client);
    }
  }

  Handler handler_;
  std::chrono::steady_clock::time_point deadline_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_ = false;
  std::mutex mutex_;
  std::vector<Seen> seen_;
  std::thread thread_;
};

bool HasHeaderLine(const std::string& headers, const std::string& line) {
  std::string lower_headers = headers, lower_line = line;
  for (char& c : lower_headers) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (char& c : lower_line) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower_headers.find(lower_line + "\r\n") != std::string::npos;
}

TEST(CredentialsRealHttp, InstanceMetadataOverLoopback) {
  const std::string body =
      CredentialsJson(kKey, system_clock::now() + 6h, R"("Code": "Success", )");
  LocalHttpServer server([&](const LocalHttpServer::Seen& seen) -> std::pair<int, std::string> {
    if (seen.method == "PUT" && seen.target == "/latest/api/token") {
      if (!HasHeaderLine(seen.headers, "X-aws-ec2-metadata-token-ttl-seconds: 21600")) {
        return {400, ""};
      }
      return {200, "real-imds-token"};
    }
    if (!HasHeaderLine(seen.headers, "X-aws-ec2-metadata-token: real-imds-token")) {
      return {401, ""};
    }
    if (seen.target == "/latest/meta-data/iam/security-credentials/") return {200, "loop-role"};
    if (seen.target == "/latest/meta-data/iam/security-credentials/loop-role") return {200, body};
    return {404, ""};
  });
  std::unique_ptr<HttpClient> http = MakeCurlHttpClient();
  TempDir home;
  Environment env = {{"HOME", home.path()}, {"AWS_EC2_METADATA_SERVICE_ENDPOINT", server.url()}};
  Result<Credentials> credentials = MakeDefaultCredentialsChain(env, *http)->Get();
  ASSERT_TRUE(credentials) << credentials.error();
  EXPECT_EQ(credentials->access_key_id, kKey);
  EXPECT_EQ(credentials->secret_access_key, kSecret);
  EXPECT_EQ(credentials->source, "EC2 instance metadata (role loop-role)");
  std::vector<LocalHttpServer::Seen> seen = server.seen();
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].method, "PUT");
  EXPECT_EQ(seen[1].method, "GET");
  EXPECT_EQ(seen[2].method, "GET");
}

TEST(CredentialsRealHttp, MissingOrStalledInstanceMetadataFailsFast) {
  std::unique_ptr<HttpClient> http = MakeCurlHttpClient();
  TempDir home;
  int port = 0;
  {
    // A port nobody listens on: bound, then closed.
    LocalHttpServer closed([](const auto&) { return std::pair<int, std::string>{404, ""}; }, 0s);
    port = std::stoi(closed.url().substr(closed.url().rfind(':') + 1));
  }
  Environment env = {
      {"HOME", home.path()},
      {"AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:" + std::to_string(port)}};
  auto start = std::chrono::steady_clock::now();
  Result<Credentials> credentials = MakeDefaultCredentialsChain(env, *http)->Get();
  ASSERT_FALSE(credentials);
  EXPECT_NE(credentials.error().find("EC2 instance metadata (PUT http://127.0.0.1:"),
            std::string::npos)
      << credentials.error();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);

  LocalHttpServer stalled([](const auto&) { return std::pair<int, std::string>{0, ""}; });
  env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = stalled.url();
  start = std::chrono::steady_clock::now();
  credentials = MakeDefaultCredentialsChain(env, *http)->Get();
  ASSERT_FALSE(credentials);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, 1900ms);
  EXPECT_LT(took, 5s) << credentials.error();
}

}  // namespace
}  // namespace runner::aws
