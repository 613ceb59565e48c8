// The EC2 client: against a scripted HttpClient, the exact Query parameters of DescribeImages
// (owners, ids, filters, pages) and CreateTags and the answers read in the shape EC2 documents;
// then against a real moto_server, images found by owner, name and tag, and gone once
// deregistered.
#include "runner/aws/ec2.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "runner/aws/query_api.h"
#include "tests/fake_http_client.h"
#include "tests/moto_server.h"
#include "tests/test_util.h"

namespace runner::aws {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

constexpr char kUrl[] = "http://127.0.0.1:4566/";

HttpResponse Xml(std::string body, int status = 200) {
  return FakeHttpClient::Ok(std::move(body), status, {{"content-type", "text/xml"}});
}

std::string ImagesAnswer(std::string_view items, std::string_view next_token) {
  return fmt::format(
      R"(<DescribeImagesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId>
  <imagesSet>{}</imagesSet>{}
</DescribeImagesResponse>)",
      items, next_token.empty() ? "" : fmt::format("<nextToken>{}</nextToken>", next_token));
}

std::string Image(std::string_view id, std::string_view name, std::string_view created,
                  std::string_view tags = "") {
  return fmt::format(R"(<item>
      <imageId>{}</imageId>
      <imageLocation>123456789012/{}</imageLocation>
      <imageState>available</imageState>
      <imageOwnerId>123456789012</imageOwnerId>
      <creationDate>{}</creationDate>
      <isPublic>false</isPublic>
      <architecture>x86_64</architecture>
      <imageType>machine</imageType>
      <name>{}</name>
      <rootDeviceType>ebs</rootDeviceType>
      <tagSet>{}</tagSet>
    </item>)",
                     id, name, created, name, tags);
}

std::unique_ptr<Ec2Client> Client(FakeHttpClient& http, StaticCredentialsProvider& credentials) {
  Ec2Options options;
  options.region = "eu-west-1";
  options.endpoint = kUrl;
  options.sleep = [](std::chrono::milliseconds) {};
  auto client = Ec2Client::Create(http, credentials, options);
  EXPECT_TRUE(client.has_value()) << client.error();
  return std::move(*client);
}

TEST(Ec2ClientTest, DescribeImagesSendsOwnersFiltersAndReadsEveryPage) {
  FakeHttpClient http;
  StaticCredentialsProvider credentials(TestCredentials());
  http.Respond("POST", kUrl,
               Xml(ImagesAnswer(Image("ami-0a", "app-1", "2026-11-01T10:00:00.000Z",
                                      "<item><key>runner:bake-key</key><value>k1</value></item>"
                                      "<item><key>team</key><value>orders</value></item>"),
                                "page-2")));
  http.Respond("POST", kUrl,
               Xml(ImagesAnswer(Image("ami-0b", "app-2", "2026-11-02T10:00:00Z"), "")));
  auto ec2 = Client(http, credentials);
  DescribeImagesRequest request;
  request.owners = {"self", "136693071363"};
  request.filters = {{"name", {"app-*"}}, {"tag:runner:bake-key", {"k1", "k2"}}};
  auto images = ec2->DescribeImages(request);
  ASSERT_TRUE(images.has_value()) << images.error();

  ASSERT_EQ(images->size(), 2u);
  EXPECT_EQ((*images)[0].id, "ami-0a");
  EXPECT_EQ((*images)[0].name, "app-1");
  EXPECT_EQ((*images)[0].state, "available");
  EXPECT_EQ((*images)[0].owner_id, "123456789012");
  EXPECT_EQ((*images)[0].creation_date, "2026-11-01T10:00:00.000Z");
  EXPECT_EQ((*images)[0].created, testing::Utc(2026, 11, 1, 10, 0, 0));
  EXPECT_THAT((*images)[0].tags,
              ElementsAre(Pair("runner:bake-key", "k1"), Pair("team", "orders")));
  EXPECT_EQ((*images)[0].Tag("team"), "orders");
  EXPECT_EQ((*images)[0].Tag("absent"), "");
  EXPECT_EQ((*images)[1].id, "ami-0b");
  EXPECT_LT((*images)[0].created, (*images)[1].created);

  auto requests = http.Requests();
  ASSERT_EQ(requests.size(), 2u);
  const Pairs first = {{"Action", "DescribeImages"},
                       {"Version", "2016-11-15"},
                       {"Owner.1", "self"},
                       {"Owner.2", "136693071363"},
                       {"Filter.1.Name", "name"},
                       {"Filter.1.Value.1", "app-*"},
                       {"Filter.2.Name", "tag:runner:bake-key"},
                       {"Filter.2.Value.1", "k1"},
                       {"Filter.2.Value.2", "k2"},
                       {"MaxResults", "1000"}};
  EXPECT_EQ(requests[0].body, FormEncode(first));
  Pairs second = first;
  second.emplace_back("NextToken", "page-2");
  EXPECT_EQ(requests[1].body, FormEncode(second));
  // Signed for EC2 in the client's region.
  EXPECT_THAT(requests[0].Header("authorization"), HasSubstr("/eu-west-1/ec2/aws4_request"));
}

TEST(Ec2ClientTest, DescribeImagesByIdSendsNoPageSize) {
  FakeHttpClient http;
  StaticCredentialsProvider credentials(TestCredentials());
  http.Respond("POST", kUrl, Xml(ImagesAnswer("", "")));
  auto ec2 = Client(http, credentials);
  DescribeImagesRequest request;
  request.image_ids = {"ami-0a", "ami-0b"};
  auto images = ec2->DescribeImages(request);
  ASSERT_TRUE(images.has_value()) << images.error();
  EXPECT_TRUE(images->empty());
  EXPECT_EQ(http.Requests()[0].body, FormEncode({{"Action", "DescribeImages"},
                                                 {"Version", "2016-11-15"},
                                                 {"ImageId.1", "ami-0a"},
                                                 {"ImageId.2", "ami-0b"}}));
}

TEST(Ec2ClientTest, ErrorsNameTheCallTheRegionAndTheCode) {
  FakeHttpClient http;
  StaticCredentialsProvider credentials(TestCredentials());
  http.Respond("POST", kUrl,
               Xml(R"(<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>You are not authorized to perform this operation.</Message></Error></Errors><RequestID>r-1</RequestID></Response>)",
                   403));
  auto ec2 = Client(http, credentials);
  DescribeImagesRequest request;
  request.owners = {"self"};
  request.filters = {{"name", {"app-*"}}};
  auto images = ec2->DescribeImages(request);
  ASSERT_FALSE(images.has_value());
  EXPECT_THAT(images.error(), HasSubstr("UnauthorizedOperation"));
  EXPECT_THAT(images.error(),
              HasSubstr("EC2 DescribeImages in eu-west-1 (owners self, name=app-*)"));

  Status tagged = ec2->CreateTags({"ami-0a"}, {{"k", "v"}});
  ASSERT_FALSE(tagged);
  EXPECT_THAT(tagged.error(), HasSubstr("EC2 CreateTags ami-0a in eu-west-1"));
}

TEST(Ec2ClientTest, AnImageWithABadCreationDateIsAnError) {
  FakeHttpClient http;
  StaticCredentialsProvider credentials(TestCredentials());
  http.Respond("POST", kUrl, Xml(ImagesAnswer(Image("ami-0a", "app", "yesterday"), "")));
  auto images = Client(http, credentials)->DescribeImages({});
  ASSERT_FALSE(images.has_value());
  EXPECT_THAT(images.error(), HasSubstr("image ami-0a"));
  EXPECT_THAT(images.error(), HasSubstr("creationDate"));
}

TEST(Ec2ClientTest, MostRecentIsByCreationDateNotByOrder) {
  auto image = [](std::string id, int day) {
    Ec2Image out;
    out.id = std::move(id);
    out.created = testing::Utc(2026, 6, day, 0, 0, 0);
    return out;
  };
  EXPECT_EQ(MostRecent({}), nullptr);
  std::vector<Ec2Image> images = {image("ami-0march", 3), image("ami-0june", 20),
                                  image("ami-0jan", 1)};
  EXPECT_EQ(MostRecent(images)->id, "ami-0june");
  images.push_back(image("ami-0june2", 20));  // as recent: the greater id, whatever the order
  EXPECT_EQ(MostRecent(images)->id, "ami-0june2");
  std::reverse(images.begin(), images.end());
  EXPECT_EQ(MostRecent(images)->id, "ami-0june2");
}

TEST(Ec2ClientTest, CreateTagsSendsEveryResourceAndTag) {
  FakeHttpClient http;
  StaticCredentialsProvider credentials(TestCredentials());
  http.Respond("POST", kUrl,
               Xml(R"(<CreateTagsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</requestId><return>true</return>
</CreateTagsResponse>)"));
  auto ec2 = Client(http, credentials);
  Status tagged =
      ec2->CreateTags({"ami-0a", "ami-0b"}, {{"runner:bake-key", "k1"}, {"team", "a b"}});
  ASSERT_TRUE(tagged) << tagged.error();
  EXPECT_EQ(http.Requests()[0].body, FormEncode({{"Action", "CreateTags"},
                                                 {"Version", "2016-11-15"},
                                                 {"ResourceId.1", "ami-0a"},
                                                 {"ResourceId.2", "ami-0b"},
                                                 {"Tag.1.Key", "runner:bake-key"},
                                                 {"Tag.1.Value", "k1"},
                                                 {"Tag.2.Key", "team"},
                                                 {"Tag.2.Value", "a b"}}));
}

TEST(Ec2ClientTest, ThrottlingIsRetried) {
  FakeHttpClient http;
  StaticCredentialsProvider credentials(TestCredentials());
  http.Respond("POST", kUrl,
               Xml("<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request "
                   "limit exceeded.</Message></Error></Errors></Response>",
                   503));
  http.Respond("POST", kUrl, Xml(ImagesAnswer(Image("ami-0a", "app", "2026-11-01T10:00:00Z"), "")));
  auto images = Client(http, credentials)->DescribeImages({});
  ASSERT_TRUE(images.has_value()) << images.error();
  EXPECT_EQ(images->size(), 1u);
  EXPECT_EQ(http.RequestCount(), 2u);
}

// --- against moto_server ---

class Ec2MotoTest : public testing::MotoServerTest {
 protected:
  // A call the runner never makes (Packer does): through the request layer.
  AwsResult<QueryAnswer> Call(const std::string& region, std::string_view action,
                              const Pairs& params) {
    AwsClientOptions options;
    options.service = "ec2";
    options.region = region;
    options.endpoint = moto().endpoint();
    auto aws = AwsClient::Create(http_, credentials_, options);
    EXPECT_TRUE(aws.has_value()) << aws.error();
    return SendEc2Query(**aws, action, kEc2Version, params, std::string(action));
  }
  std::string Register(const std::string& region, const std::string& name) {
    auto answer = Call(region, "RegisterImage", {{"Name", name}, {"RootDeviceName", "/dev/xvda"}});
    EXPECT_TRUE(answer.has_value()) << answer.error().text;
    return answer ? answer->result.ChildText("imageId") : "";
  }
  void Deregister(const std::string& region, const std::string& id) {
    auto answer = Call(region, "DeregisterImage", {{"ImageId", id}});
    ASSERT_TRUE(answer.has_value()) << answer.error().text;
  }
  std::unique_ptr<Ec2Client> In(const std::string& region) {
    Ec2Options options;
    options.region = region;
    options.endpoint = moto().endpoint();
    auto client = Ec2Client::Create(http_, credentials_, options);
    EXPECT_TRUE(client.has_value()) << client.error();
    return std::move(*client);
  }

  std::unique_ptr<HttpClient> owned_http_ = MakeCurlHttpClient();
  HttpClient& http_ = *owned_http_;
  StaticCredentialsProvider credentials_{TestCredentials()};
};

TEST_F(Ec2MotoTest, FindsByNameAndTagPerRegionUntilDeregistered) {
  std::string west = Register("eu-west-1", "app-west");
  std::string east = Register("us-east-1", "app-east");
  ASSERT_THAT(west, ::testing::StartsWith("ami-"));
  auto ec2_west = In("eu-west-1");
  ASSERT_TRUE(ec2_west->CreateTags({west}, {{"runner:bake-key", "k1"}, {"runner:x", "y"}}));

  DescribeImagesRequest by_name;
  by_name.owners = {"self"};
  by_name.filters = {{"name", {"app-*"}}};
  auto named = ec2_west->DescribeImages(by_name);
  ASSERT_TRUE(named.has_value()) << named.error();
  ASSERT_EQ(named->size(), 1u);  // the east one is in another region
  EXPECT_EQ((*named)[0].id, west);
  EXPECT_EQ((*named)[0].name, "app-west");
  EXPECT_EQ((*named)[0].state, "available");
  EXPECT_GT((*named)[0].created.time_since_epoch().count(), 0);

  DescribeImagesRequest by_tag;
  by_tag.owners = {"self"};
  by_tag.filters = {{"tag:runner:bake-key", {"k1"}}, {"state", {"available"}}};
  auto tagged = ec2_west->DescribeImages(by_tag);
  ASSERT_TRUE(tagged.has_value()) << tagged.error();
  ASSERT_EQ(tagged->size(), 1u);
  EXPECT_EQ((*tagged)[0].Tag("runner:x"), "y");
  auto in_east = In("us-east-1")->DescribeImages(by_tag);
  ASSERT_TRUE(in_east.has_value()) << in_east.error();
  EXPECT_TRUE(in_east->empty());

  Deregister("eu-west-1", west);
  auto gone = ec2_west->DescribeImages(by_tag);
  ASSERT_TRUE(gone.has_value()) << gone.error();
  EXPECT_TRUE(gone->empty());
}

}  // namespace
}  // namespace runner::aws
