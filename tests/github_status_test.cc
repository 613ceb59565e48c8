#include "runner/serve/github_status.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "runner/utf8.h"
#include "tests/fake_github.h"

namespace runner::serve {
namespace {

using nlohmann::json;
using runner::testing::FakeGitHub;
using runner::testing::FakeResponse;
using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr std::string_view kToken = "ghp_s3cretTOKENvalue0123456789abcdefABCD";
constexpr std::string_view kSha = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";
const std::string kPath = "/repos/acme/orders/statuses/" + std::string(kSha);

CommitStatus Pending() {
  return {"pending", "https://ci.example.com/builds/7", "Build 7 is running", "runner"};
}

std::size_t CodePoints(std::string_view text) {
  std::size_t count = 0;
  for (char c : text) count += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return count;
}

struct Fixture {
  FakeGitHub github;
  std::unique_ptr<aws::HttpClient> http = aws::MakeCurlHttpClient();
  std::vector<Duration> delays;

  GitHubStatuses Statuses(StatusRetry retry = {}, std::string token = std::string(kToken)) {
    retry.sleep = [this](Duration delay) { delays.push_back(delay); };
    return GitHubStatuses(*http, github.url(), std::move(token), std::move(retry));
  }
};

TEST(GitHubStatusTest, SendsWhatGitHubDocuments) {
  Fixture f;
  Status posted = f.Statuses().Post("acme/orders", std::string(kSha), Pending());
  ASSERT_TRUE(posted.has_value()) << posted.error();
  auto requests = f.github.requests();
  ASSERT_EQ(requests.size(), 1u);
  const auto& request = requests[0];
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.path, kPath);
  EXPECT_EQ(request.Header("accept"), "application/vnd.github+json");
  EXPECT_EQ(request.Header("authorization"), "Bearer " + std::string(kToken));
  EXPECT_EQ(request.Header("x-github-api-version"), "2022-11-28");
  EXPECT_EQ(request.Header("user-agent"), "runner");
  EXPECT_EQ(request.Header("content-type"), "application/json");
  EXPECT_EQ(json::parse(request.body), json({{"state", "pending"},
                                             {"target_url", "https://ci.example.com/builds/7"},
                                             {"description", "Build 7 is running"},
                                             {"context", "runner"}}));
  EXPECT_TRUE(f.delays.empty());
}

TEST(GitHubStatusTest, NoTokenNoAuthorizationAndEmptyFieldsLeftOut) {
  Fixture f;
  Status posted =
      f.Statuses({}, "").Post("acme/orders", std::string(kSha), {"success", "", "", ""});
  ASSERT_TRUE(posted.has_value()) << posted.error();
  auto requests = f.github.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].Header("authorization"), "");
  EXPECT_EQ(json::parse(requests[0].body), json({{"state", "success"}}));
}

TEST(GitHubStatusTest, EnterpriseBaseUrlWithOrWithoutSlash) {
  Fixture f;
  for (std::string base : {f.github.url() + "/api/v3", f.github.url() + "/api/v3/"}) {
    GitHubStatuses statuses(*f.http, base, std::string(kToken));
    Status posted = statuses.Post("acme/orders", std::string(kSha), Pending());
    ASSERT_TRUE(posted.has_value()) << posted.error();
  }
  auto requests = f.github.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].path, "/api/v3" + kPath);
  EXPECT_EQ(requests[1].path, "/api/v3" + kPath);
}

TEST(GitHubStatusTest, ServerErrorIsRetriedWithTheSameRequest) {
  Fixture f;
  f.github.Enqueue({502, {}, "<html>Bad gateway</html>"});
  Status posted = f.Statuses().Post("acme/orders", std::string(kSha), Pending());
  ASSERT_TRUE(posted.has_value()) << posted.error();
  auto requests = f.github.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].body, requests[1].body);
  EXPECT_EQ(requests[1].Header("authorization"), "Bearer " + std::string(kToken));
  EXPECT_THAT(f.delays, ElementsAre(seconds(1)));
}

TEST(GitHubStatusTest, DroppedConnectionIsRetried) {
  Fixture f;
  FakeResponse hang_up;
  hang_up.hang_up = true;
  f.github.Enqueue(hang_up);
  f.github.Enqueue(hang_up);
  Status posted = f.Statuses().Post("acme/orders", std::string(kSha), Pending());
  ASSERT_TRUE(posted.has_value()) << posted.error();
  EXPECT_EQ(f.github.requests().size(), 3u);
  EXPECT_THAT(f.delays, ElementsAre(seconds(1), seconds(2)));
}

TEST(GitHubStatusTest, TooManyRequestsWaitsRetryAfter) {
  Fixture f;
  f.github.Enqueue({429, {{"Retry-After", "2"}}, R"({"message":"slow down"})"});
  Status posted = f.Statuses().Post("acme/orders", std::string(kSha), Pending());
  ASSERT_TRUE(posted.has_value()) << posted.error();
  EXPECT_EQ(f.github.requests().size(), 2u);
  EXPECT_THAT(f.delays, ElementsAre(seconds(2)));
}

TEST(GitHubStatusTest, RateLimitedForbiddenIsRetriedOtherForbiddenIsNot) {
  Fixture f;
  f.github.Enqueue({403,
                    {{"x-ratelimit-remaining", "0"}, {"x-ratelimit-reset", "1700000000"}},
                    R"({"message":"API rate limit exceeded"})"});
  f.github.Enqueue({403, {{"Retry-After", "600"}}, R"({"message":"secondary rate limit"})"});
  Status posted = f.Statuses().Post("acme/orders", std::string(kSha), Pending());
  ASSERT_TRUE(posted.has_value()) << posted.error();
  // The second wait is GitHub's Retry-After, capped at max_delay.
  EXPECT_THAT(f.delays, ElementsAre(seconds(1), seconds(30)));

  f.github.Enqueue({403,
                    {{"x-ratelimit-remaining", "4999"}},
                    R"({"message":"Resource not accessible by integration"})"});
  Status refused = f.Statuses().Post("acme/orders", std::string(kSha), Pending());
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error(), "commit status 'pending' for acme/orders@" + std::string(kSha) +
                                 ": GitHub answered HTTP 403: Resource not accessible by "
                                 "integration");
  EXPECT_EQ(f.github.requests().size(), 4u);
  EXPECT_EQ(f.delays.size(), 2u);
}

TEST(GitHubStatusTest, ValidationFailedIsAnErrorAtOnceWithGitHubsMessage) {
  Fixture f;
  f.github.Enqueue({422,
                    {},
                    R"({"message":"Validation Failed","errors":[{"resource":"Status",)"
                    R"("code":"custom","message":"target_url must use http(s) scheme"}],)"
                    R"("documentation_url":"https://docs.github.com/rest"})"});
  Status posted = f.Statuses().Post("acme/orders", std::string(kSha), Pending());
  ASSERT_FALSE(posted.has_value());
  EXPECT_EQ(posted.error(), "commit status 'pending' for acme/orders@" + std::string(kSha) +
                                ": GitHub answered HTTP 422: Validation Failed; target_url must "
                                "use http(s) scheme");
  EXPECT_EQ(f.github.requests().size(), 1u);
  EXPECT_TRUE(f.delays.empty());
}

TEST(GitHubStatusTest, GivesUpAfterTheLastAttemptWithDoublingCappedDelays) {
  Fixture f;
  f.github.SetHandler([](const auto&) { return FakeResponse{500, {}, "{}"}; });
  Status posted = f.Statuses().Post("acme/orders", std::string(kSha), Pending());
  ASSERT_FALSE(posted.has_value());
  EXPECT_THAT(posted.error(), HasSubstr("GitHub answered HTTP 500 (after 5 attempts)"));
  EXPECT_EQ(f.github.requests().size(), 5u);
  EXPECT_THAT(f.delays, ElementsAre(seconds(1), seconds(2), seconds(4), seconds(8)));

  f.delays.clear();
  StatusRetry retry;
  retry.attempts = 4;
  retry.first_delay = seconds(10);
  retry.max_delay = seconds(15);
  Status capped = f.Statuses(retry).Post("acme/orders", std::string(kSha), Pending());
  ASSERT_FALSE(capped.has_value());
  EXPECT_THAT(f.delays, ElementsAre(seconds(10), seconds(15), seconds(15)));
}

TEST(GitHubStatusTest, TheTokenNeverAppearsInAnError) {
  Fixture f;
  // A server that echoes what it was sent, Authorization included.
  f.github.SetHandler([](const runner::testing::FakeRequest& request) {
    json body = {{"message", "Bad credentials: " + request.Header("authorization")}};
    return FakeResponse{request.path.ends_with("401") ? 401 : 503, {}, body.dump()};
  });
  StatusRetry twice;
  twice.attempts = 2;
  std::vector<std::string> errors;
  for (std::string sha : {std::string(kSha).substr(0, 37) + "401", std::string(kSha)}) {
    Status posted = f.Statuses(twice).Post("acme/orders", sha, Pending());
    ASSERT_FALSE(posted.has_value());
    errors.push_back(posted.error());
  }
  // Nothing listens on a port just closed: a transport error, retried, then given up.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof(address);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), size), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size), 0);
  ::close(fd);
  StatusRetry retry{2, seconds(1), seconds(1), [](Duration) {}};
  GitHubStatuses unreachable(*f.http, "http://127.0.0.1:" + std::to_string(ntohs(address.sin_port)),
                             std::string(kToken), retry);
  Status refused = unreachable.Post("acme/orders", std::string(kSha), Pending());
  ASSERT_FALSE(refused.has_value());
  errors.push_back(refused.error());

  EXPECT_THAT(errors[0], HasSubstr("HTTP 401: Bad credentials: Bearer ***"));
  EXPECT_THAT(errors[1], HasSubstr("HTTP 503: Bad credentials: Bearer *** (after 2 attempts)"));
  EXPECT_THAT(errors[2], HasSubstr("(after 2 attempts)"));
  for (const std::string& error : errors) {
    EXPECT_THAT(error, Not(HasSubstr(kToken))) << error;
    EXPECT_THAT(error, Not(HasSubstr(kToken.substr(0, 12)))) << error;
  }
}

TEST(GitHubStatusTest, BadArgumentsSendNothing) {
  Fixture f;
  GitHubStatuses statuses = f.Statuses();
  struct Case {
    std::string repository, sha, state, message;
  };
  for (const Case& c : std::vector<Case>{
           {"acme", std::string(kSha), "pending", "repository 'acme' must be OWNER/NAME"},
           {"acme/orders/x", std::string(kSha), "pending", "must be OWNER/NAME"},
           {"../orders", std::string(kSha), "pending", "must be OWNER/NAME"},
           {"acme/or ders", std::string(kSha), "pending", "must be OWNER/NAME"},
           {"acme/orders", "abc", "pending", "the commit must be a 40-character hex id"},
           {"acme/orders", std::string(kSha), "done", "pending, success, failure or error"}}) {
    Status posted = statuses.Post(c.repository, c.sha, {c.state, "", "", ""});
    ASSERT_FALSE(posted.has_value()) << c.message;
    EXPECT_THAT(posted.error(), HasSubstr(c.message));
  }
  EXPECT_TRUE(f.github.requests().empty());
}

TEST(GitHubStatusTest, DescriptionsAreCutTo140CodePoints) {
  Fixture f;
  CommitStatus status = Pending();
  status.description = std::string(300, 'a');
  Status posted = f.Statuses().Post("acme/orders", std::string(kSha), status);
  ASSERT_TRUE(posted.has_value()) << posted.error();
  std::string sent = json::parse(f.github.requests().at(0).body)["description"];
  EXPECT_EQ(sent, std::string(139, 'a') + "\u2026");
  EXPECT_EQ(CodePoints(sent), 140u);
}

TEST(GitHubStatusTruncate, MultiByteTextIsCutBetweenCharacters) {
  std::string text;
  // 1-, 2-, 3- and 4-byte characters in turn, 200 of them.
  for (int i = 0; i < 50; ++i) text += "a\u00e9\u65e5\U0001F600";
  std::string cut = TruncateDescription(text);
  EXPECT_EQ(CodePoints(cut), 140u);
  EXPECT_TRUE(IsValidUtf8(cut));
  EXPECT_TRUE(cut.ends_with("\u2026"));
  EXPECT_EQ(cut, text.substr(0, 34 * 10 + 6) + "\u2026");  // 34 groups and 3 characters

  std::string exact;
  for (int i = 0; i < 140; ++i) exact += "\u00e9";
  EXPECT_EQ(TruncateDescription(exact), exact);
  EXPECT_EQ(TruncateDescription("short"), "short");
  EXPECT_EQ(TruncateDescription("abcdef", 3), "ab\u2026");
  EXPECT_EQ(TruncateDescription("abcdef", 1), "\u2026");
  EXPECT_EQ(TruncateDescription("abcdef", 0), "");
  // Invalid bytes become U+FFFD rather than reaching GitHub's JSON parser.
  EXPECT_EQ(TruncateDescription("ok \xff"), "ok \uFFFD");
}

TEST(GitHubStatusTruncate, MultiByteDescriptionIsSentCut) {
  Fixture f;
  CommitStatus status = Pending();
  status.description.clear();
  for (int i = 0; i < 150; ++i) status.description += "\u65e5";
  Status posted = f.Statuses().Post("acme/orders", std::string(kSha), status);
  ASSERT_TRUE(posted.has_value()) << posted.error();
  std::string sent = json::parse(f.github.requests().at(0).body)["description"];
  EXPECT_EQ(CodePoints(sent), 140u);
  EXPECT_EQ(sent, status.description.substr(0, 139 * 3) + "\u2026");
}

}  // namespace
}  // namespace runner::serve
