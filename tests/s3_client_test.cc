// The S3 client against a scripted HttpClient: the requests it sends (URLs, CRC32C checksums,
// the signed or unsigned payload hash, SSE headers, multipart sequence), retries, aborts and
// messages. The real server (s3rver) and the libcurl client are exercised in upload_test.
#include "runner/aws/s3_client.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "runner/crc32c.h"
#include "runner/sha256.h"
#include "tests/s3_fakes.h"
#include "tests/test_util.h"

namespace runner::aws {
namespace {

using s3_testing::FakeHttpClient;
using s3_testing::StaticCredentials;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::TempDir;
using testing::WriteTextFile;

HttpResponse Ok(std::string body = "", Pairs headers = {}) {
  return HttpResponse{200, std::move(headers), std::move(body)};
}

HttpResponse ErrorResponse(int status, std::string_view code, std::string_view message) {
  return HttpResponse{status,
                      {{"content-type", "application/xml"}},
                      fmt::format("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</"
                                  "Code><Message>{}</Message><RequestId>1</RequestId></Error>",
                                  code, message)};
}

S3ClientOptions TestOptions() {
  S3ClientOptions options;
  options.region = "us-east-1";
  options.endpoint = "http://127.0.0.1:9000";
  options.sleep = [](std::chrono::milliseconds) {};
  return options;
}

std::unique_ptr<S3Client> MakeClient(HttpClient& http, CredentialsProvider& credentials,
                                     S3ClientOptions options = TestOptions()) {
  auto client = S3Client::Create(http, credentials, std::move(options));
  EXPECT_TRUE(client.has_value()) << client.error();
  return std::move(*client);
}

// Answers a multipart upload like S3: an UploadId, an ETag per part, and the completion.
Result<HttpResponse> MultipartServer(const HttpRequest& request, int) {
  if (request.method == "POST" && request.url.ends_with("?uploads")) {
    return Ok(
        "<InitiateMultipartUploadResult><Bucket>bkt</Bucket><Key>k</Key>"
        "<UploadId>up-1</UploadId></InitiateMultipartUploadResult>");
  }
  if (request.method == "PUT") {
    return Ok("", {{"etag", "\"" + Md5Hex(request.body) + "\""}});
  }
  if (request.method == "POST") {
    return Ok(
        "<CompleteMultipartUploadResult><ETag>&quot;abc-3&quot;</ETag>"
        "</CompleteMultipartUploadResult>");
  }
  return HttpResponse{204, {}, ""};
}

std::string QueryOf(const std::string& url) {
  size_t q = url.find('?');
  return q == std::string::npos ? "" : url.substr(q + 1);
}

TEST(S3UrlTest, ParsesBucketAndKey) {
  auto url = ParseS3Url("s3://my-bucket/builds/main/");
  ASSERT_TRUE(url.has_value());
  EXPECT_EQ(url->bucket, "my-bucket");
  EXPECT_EQ(url->key, "builds/main/");
  auto bare = ParseS3Url("s3://my-bucket");
  ASSERT_TRUE(bare.has_value());
  EXPECT_EQ(bare->key, "");
}

TEST(S3UrlTest, RejectsBadUrls) {
  EXPECT_FALSE(ParseS3Url("http://x/y").has_value());
  EXPECT_THAT(ParseS3Url("s3:///key").error(), HasSubstr("names no bucket"));
  EXPECT_THAT(ParseS3Url("s3://a/key").error(), HasSubstr("not a valid bucket name"));
  EXPECT_FALSE(ParseS3Url("s3://bad bucket/key").has_value());
}

TEST(S3EndpointTest, ConfigThenS3VariableThenGeneralVariable) {
  Environment env = {{"AWS_ENDPOINT_URL", "http://general:1"},
                     {"AWS_ENDPOINT_URL_S3", "http://s3:2"}};
  EXPECT_EQ(ResolveS3Endpoint("http://config:3", env), "http://config:3");
  EXPECT_EQ(ResolveS3Endpoint("", env), "http://s3:2");
  env.erase("AWS_ENDPOINT_URL_S3");
  EXPECT_EQ(ResolveS3Endpoint("", env), "http://general:1");
  EXPECT_EQ(ResolveS3Endpoint("", Environment{}), "");
}

TEST(S3ClientTest, RejectsBadOptions) {
  FakeHttpClient http;
  StaticCredentials credentials;
  auto options = TestOptions();
  options.endpoint = "ftp://host";
  EXPECT_THAT(S3Client::Create(http, credentials, options).error(), HasSubstr("http://"));
  options = TestOptions();
  options.endpoint = "http://host/path";
  EXPECT_THAT(S3Client::Create(http, credentials, options).error(), HasSubstr("path"));
  options = TestOptions();
  options.sse = "aes";
  EXPECT_THAT(S3Client::Create(http, credentials, options).error(), HasSubstr("AES256"));
  options = TestOptions();
  options.sse = "AES256";
  options.kms_key_id = "k";
  EXPECT_THAT(S3Client::Create(http, credentials, options).error(), HasSubstr("aws:kms"));
}

TEST(S3ClientTest, PathStyleForAnIpOrLocalhostEndpoint) {
  FakeHttpClient http;
  StaticCredentials credentials;
  auto options = TestOptions();
  EXPECT_EQ(MakeClient(http, credentials, options)->ObjectUrl("bkt", "a/b"),
            "http://127.0.0.1:9000/bkt/a/b");
  options.endpoint = "http://localhost:9000";
  EXPECT_EQ(MakeClient(http, credentials, options)->ObjectUrl("bkt", "a"),
            "http://localhost:9000/bkt/a");
  options.endpoint = "http://[::1]:9000";
  EXPECT_EQ(MakeClient(http, credentials, options)->ObjectUrl("bkt", "a"),
            "http://[::1]:9000/bkt/a");
  options.endpoint = "https://minio.example.com";
  EXPECT_EQ(MakeClient(http, credentials, options)->ObjectUrl("bkt", "a"),
            "https://bkt.minio.example.com/a");
  options.path_style = PathStyle::kPath;
  EXPECT_EQ(MakeClient(http, credentials, options)->ObjectUrl("bkt", "a"),
            "https://minio.example.com/bkt/a");
  options.endpoint = "http://127.0.0.1:9000";
  options.path_style = PathStyle::kVirtualHost;
  EXPECT_EQ(MakeClient(http, credentials, options)->ObjectUrl("bkt", "a"),
            "http://bkt.127.0.0.1:9000/a");
}

TEST(S3ClientTest, AwsEndpointIsVirtualHostUnlessTheBucketIsNotADnsLabel) {
  FakeHttpClient http;
  StaticCredentials credentials;
  auto options = TestOptions();
  options.endpoint = "";
  options.region = "eu-west-1";
  auto client = MakeClient(http, credentials, options);
  EXPECT_EQ(client->ObjectUrl("bkt", "k"), "https://bkt.s3.eu-west-1.amazonaws.com/k");
  EXPECT_EQ(client->ObjectUrl("my.bucket", "k"), "https://s3.eu-west-1.amazonaws.com/my.bucket/k");
}

TEST(S3ClientTest, KeysAreEncodedOncePerSegment) {
  FakeHttpClient http;
  StaticCredentials credentials;
  auto client = MakeClient(http, credentials);
  EXPECT_EQ(client->ObjectUrl("bkt", "dir one/a+b=c&d/ü €.txt"),
            "http://127.0.0.1:9000/bkt/dir%20one/a%2Bb%3Dc%26d/%C3%BC%20%E2%82%AC.txt");
  EXPECT_EQ(client->ObjectUrl("bkt", "already%20encoded"),
            "http://127.0.0.1:9000/bkt/already%2520encoded");
}

TEST(S3ClientTest, PutSendsItsCrc32cAndOverHttpTheSignedPayloadHash) {
  FakeHttpClient http([](const HttpRequest&, int) {
    return Ok("", {{"etag", "\"5d41402abc4b2a76b9719d911017c592\""}});
  });
  StaticCredentials credentials;
  auto client = MakeClient(http, credentials);
  auto object = client->PutObject("bkt", "a b.txt", "hello", "text/plain");
  ASSERT_TRUE(object.has_value()) << object.error();
  EXPECT_EQ(object->etag, "\"5d41402abc4b2a76b9719d911017c592\"");
  EXPECT_EQ(object->sha256, Sha256Hex("hello"));
  EXPECT_EQ(object->size, 5u);
  EXPECT_EQ(object->parts, 0);

  auto requests = http.requests();
  ASSERT_EQ(requests.size(), 1u);
  const auto& put = requests[0];
  EXPECT_EQ(put.request.method, "PUT");
  EXPECT_EQ(put.request.url, "http://127.0.0.1:9000/bkt/a%20b.txt");
  EXPECT_EQ(put.body, "hello");
  EXPECT_EQ(put.Header("x-amz-checksum-crc32c"), Crc32cBase64(Crc32c("hello")));
  EXPECT_FALSE(put.HasHeader("content-md5"));
  EXPECT_EQ(put.Header("x-amz-content-sha256"), Sha256Hex("hello"));
  EXPECT_EQ(put.Header("host"), "127.0.0.1:9000");
  EXPECT_EQ(put.Header("content-type"), "text/plain");
  std::string authorization = put.Header("authorization");
  EXPECT_THAT(authorization, HasSubstr("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"));
  EXPECT_THAT(authorization, HasSubstr("x-amz-checksum-crc32c"));
  EXPECT_THAT(authorization, HasSubstr("x-amz-content-sha256"));
  EXPECT_FALSE(put.HasHeader("x-amz-server-side-encryption"));
}

TEST(S3ClientTest, OverHttpsThePayloadIsUnsignedAndEveryBodyCarriesItsCrc32c) {
  FakeHttpClient http(MultipartServer);
  StaticCredentials credentials;
  auto options = TestOptions();
  options.endpoint = "https://s3.example.com";
  options.part_size = 4;
  auto client = MakeClient(http, credentials, options);
  auto single = client->PutObject("bkt", "k", "hello");
  ASSERT_TRUE(single.has_value()) << single.error();
  EXPECT_EQ(single->sha256, Sha256Hex("hello"));
  auto multi = client->MultipartUpload("bkt", "k", "0123456789");
  ASSERT_TRUE(multi.has_value()) << multi.error();
  EXPECT_EQ(multi->sha256, Sha256Hex("0123456789"));

  auto requests = http.requests();
  ASSERT_EQ(requests.size(), 6u);  // put, create, 3 parts, complete
  for (size_t i : {0u, 2u, 3u, 4u}) {
    EXPECT_EQ(requests[i].Header("x-amz-content-sha256"), "UNSIGNED-PAYLOAD") << i;
    EXPECT_EQ(requests[i].Header("x-amz-checksum-crc32c"), Crc32cBase64(Crc32c(requests[i].body)))
        << i;
    EXPECT_THAT(requests[i].Header("authorization"), HasSubstr("x-amz-checksum-crc32c")) << i;
  }
  EXPECT_EQ(requests[1].Header("x-amz-checksum-algorithm"), "CRC32C");
  // The completion's small XML stays hashed into the signature.
  EXPECT_EQ(requests[5].Header("x-amz-content-sha256"), Sha256Hex(requests[5].body));
  EXPECT_THAT(requests[5].body,
              HasSubstr("<ChecksumCRC32C>" + Crc32cBase64(Crc32c("89")) + "</ChecksumCRC32C>"));
}

TEST(S3ClientTest, ServerSideEncryptionHeaders) {
  FakeHttpClient http(MultipartServer);
  StaticCredentials credentials;
  auto options = TestOptions();
  options.sse = "aws:kms";
  options.kms_key_id = "arn:aws:kms:eu-west-1:111122223333:key/abc";
  options.part_size = 4;
  auto client = MakeClient(http, credentials, options);
  ASSERT_TRUE(client->PutObject("bkt", "k", "x").has_value());
  ASSERT_TRUE(client->MultipartUpload("bkt", "k", "0123456789").has_value());
  auto requests = http.requests();
  ASSERT_EQ(requests.size(), 6u);  // put, create, 3 parts, complete
  for (size_t i : {0u, 1u}) {
    EXPECT_EQ(requests[i].Header("x-amz-server-side-encryption"), "aws:kms");
    EXPECT_EQ(requests[i].Header("x-amz-server-side-encryption-aws-kms-key-id"),
              "arn:aws:kms:eu-west-1:111122223333:key/abc");
    EXPECT_THAT(requests[i].Header("authorization"),
                HasSubstr("x-amz-server-side-encryption-aws-kms-key-id"));
  }
  // Parts and the completion inherit the upload's encryption; S3 refuses the headers there.
  for (size_t i = 2; i < requests.size(); ++i) {
    EXPECT_FALSE(requests[i].HasHeader("x-amz-server-side-encryption")) << i;
  }
}

TEST(S3ClientTest, AVersionedBucketsVersionIdIsKept) {
  FakeHttpClient http([](const HttpRequest&, int) {
    return Ok("", {{"etag", "\"5d41402abc4b2a76b9719d911017c592\""},
                   {"x-amz-version-id", "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY"}});
  });
  StaticCredentials credentials;
  auto client = MakeClient(http, credentials);
  auto object = client->PutObject("bkt", "orders.zip", "hello", "application/zip");
  ASSERT_TRUE(object.has_value()) << object.error();
  EXPECT_EQ(object->version_id, "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY");
}

TEST(S3ClientTest, MultipartSendsEveryPartWithItsCrc32cAndCompletesInOrder) {
  FakeHttpClient http(MultipartServer);
  StaticCredentials credentials;
  auto options = TestOptions();
  options.part_size = 4;
  options.concurrency = 3;
  auto client = MakeClient(http, credentials, options);
  std::string body = "0123456789";
  auto object = client->MultipartUpload("bkt", "big file", body, "application/zip");
  ASSERT_TRUE(object.has_value()) << object.error();
  EXPECT_EQ(object->parts, 3);
  EXPECT_EQ(object->etag, "\"abc-3\"");
  EXPECT_EQ(object->sha256, Sha256Hex(body));
  EXPECT_EQ(object->size, body.size());

  auto requests = http.requests();
  ASSERT_EQ(requests.size(), 5u);
  EXPECT_EQ(requests[0].request.method, "POST");
  EXPECT_EQ(requests[0].request.url, "http://127.0.0.1:9000/bkt/big%20file?uploads");
  EXPECT_EQ(requests[0].Header("content-type"), "application/zip");
  EXPECT_EQ(requests[0].Header("x-amz-checksum-algorithm"), "CRC32C");
  std::map<std::string, std::string> parts;  // partNumber -> body
  for (int i = 1; i <= 3; ++i) {
    const auto& part = requests[i];
    EXPECT_EQ(part.request.method, "PUT");
    std::string query = QueryOf(part.request.url);
    EXPECT_THAT(query, HasSubstr("uploadId=up-1"));
    parts[query.substr(query.find("partNumber=") + 11, 1)] = part.body;
    EXPECT_EQ(part.Header("x-amz-checksum-crc32c"), Crc32cBase64(Crc32c(part.body))) << query;
    EXPECT_FALSE(part.HasHeader("content-md5")) << query;
  }
  EXPECT_EQ(parts, (std::map<std::string, std::string>{{"1", "0123"}, {"2", "4567"}, {"3", "89"}}));
  const auto& complete = requests[4];
  EXPECT_EQ(complete.request.method, "POST");
  EXPECT_EQ(QueryOf(complete.request.url), "uploadId=up-1");
  EXPECT_EQ(
      complete.body,
      fmt::format("<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                  "<Part><PartNumber>1</PartNumber><ETag>&quot;{}&quot;</ETag>"
                  "<ChecksumCRC32C>{}</ChecksumCRC32C></Part>"
                  "<Part><PartNumber>2</PartNumber><ETag>&quot;{}&quot;</ETag>"
                  "<ChecksumCRC32C>{}</ChecksumCRC32C></Part>"
                  "<Part><PartNumber>3</PartNumber><ETag>&quot;{}&quot;</ETag>"
                  "<ChecksumCRC32C>{}</ChecksumCRC32C></Part>"
                  "</CompleteMultipartUpload>",
                  Md5Hex("0123"), Crc32cBase64(Crc32c("0123")), Md5Hex("4567"),
                  Crc32cBase64(Crc32c("4567")), Md5Hex("89"), Crc32cBase64(Crc32c("89"))));
  EXPECT_EQ(complete.Header("content-md5"), Md5Base64(complete.body));
  EXPECT_FALSE(complete.HasHeader("x-amz-checksum-crc32c"));
  for (const auto& request : requests) {
    EXPECT_EQ(request.Header("x-amz-content-sha256"), Sha256Hex(request.body));
  }
}

TEST(S3ClientTest, PartSizeIsRaisedToStayWithinTenThousandParts) {
  FakeHttpClient http(MultipartServer);
  StaticCredentials credentials;
  auto options = TestOptions();
  options.part_size = 1;
  auto client = MakeClient(http, credentials, options);
  std::string body(kMaxParts + 1, 'x');
  auto object = client->MultipartUpload("bkt", "k", body);
  ASSERT_TRUE(object.has_value()) << object.error();
  EXPECT_EQ(object->parts, 1);  // raised to 1 MiB
}

TEST(S3ClientTest, UploadFileChoosesSinglePutOrMultipart) {
  char path[] = "/tmp/s3-client-test-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  std::string body(10, 'a');
  ASSERT_EQ(::write(fd, body.data(), body.size()), static_cast<ssize_t>(body.size()));
  ::close(fd);
  FakeHttpClient http(MultipartServer);
  StaticCredentials credentials;
  auto options = TestOptions();
  options.part_size = 10;
  auto single = MakeClient(http, credentials, options)->UploadFile("bkt", "k", path);
  ASSERT_TRUE(single.has_value()) << single.error();
  EXPECT_EQ(single->parts, 0);
  options.part_size = 9;
  auto multi = MakeClient(http, credentials, options)->UploadFile("bkt", "k", path);
  ASSERT_TRUE(multi.has_value()) << multi.error();
  EXPECT_EQ(multi->parts, 2);
  EXPECT_EQ(multi->sha256, Sha256Hex(body));
  ::unlink(path);
  auto missing = MakeClient(http, credentials, options)->UploadFile("bkt", "k", path);
  EXPECT_THAT(missing.error(), HasSubstr("cannot open"));
}

// The digests are made in one pass over 256 KiB pieces, continued across the parts: parts and
// objects that are not a whole number of pieces, over http (each part's SHA-256 signed) and
// https (unsigned), get the CRC32C of exactly their bytes and the SHA-256 of the whole file.
// At 1.5 MiB the file is mapped; the small files of the other tests are read.
TEST(S3ClientTest, DigestsOfAFileAreRightWhateverThePiecesAndParts) {
  TempDir dir;
  std::string data;
  for (size_t i = 0; i < 3 * 512 * 1024 + 7; ++i)
    data += static_cast<char>((i * 2654435761u) >> 11);
  WriteTextFile(dir / "big.bin", data);
  for (const char* endpoint : {"http://127.0.0.1:9000", "https://s3.example.com"}) {
    SCOPED_TRACE(endpoint);
    FakeHttpClient http(MultipartServer);
    StaticCredentials credentials;
    auto options = TestOptions();
    options.endpoint = endpoint;
    options.part_size = 640 * 1024;  // 2.5 pieces: parts of 640, 640 and 256 KiB + 7 bytes
    auto object = MakeClient(http, credentials, options)->UploadFile("bkt", "k", dir / "big.bin");
    ASSERT_TRUE(object.has_value()) << object.error();
    EXPECT_EQ(object->parts, 3);
    EXPECT_EQ(object->sha256, Sha256Hex(data));
    auto requests = http.requests();
    ASSERT_EQ(requests.size(), 5u);            // create, 3 parts, complete
    std::map<std::string, std::string> parts;  // partNumber -> body
    for (size_t i = 1; i <= 3; ++i) {
      const auto& part = requests[i];
      const std::string query = QueryOf(part.request.url);
      parts[query.substr(query.find("partNumber=") + 11, 1)] = part.body;
      EXPECT_EQ(part.Header("x-amz-checksum-crc32c"), Crc32cBase64(Crc32c(part.body))) << query;
      EXPECT_EQ(part.Header("x-amz-content-sha256"), std::string_view(endpoint).starts_with("https")
                                                         ? "UNSIGNED-PAYLOAD"
                                                         : Sha256Hex(part.body))
          << query;
    }
    ASSERT_EQ(parts.size(), 3u);
    EXPECT_EQ(parts["1"] + parts["2"] + parts["3"], data);
    EXPECT_EQ(parts["3"].size(), 256u * 1024 + 7);
    for (const auto& [number, body] : parts) {
      EXPECT_THAT(requests[4].body,
                  HasSubstr(fmt::format("<PartNumber>{}</PartNumber><ETag>&quot;{}&quot;</"
                                        "ETag><ChecksumCRC32C>{}</ChecksumCRC32C>",
                                        number, Md5Hex(body), Crc32cBase64(Crc32c(body)))));
    }

    // The same file as one PUT.
    options.part_size = data.size();
    FakeHttpClient single_http;
    auto single =
        MakeClient(single_http, credentials, options)->UploadFile("bkt", "k", dir / "big.bin");
    ASSERT_TRUE(single.has_value()) << single.error();
    EXPECT_EQ(single->parts, 0);
    EXPECT_EQ(single->sha256, Sha256Hex(data));
    const auto single_requests = single_http.requests();
    ASSERT_EQ(single_requests.size(), 1u);
    const auto& put = single_requests[0];
    EXPECT_EQ(put.body, data);
    EXPECT_EQ(put.Header("x-amz-checksum-crc32c"), Crc32cBase64(Crc32c(data)));
    EXPECT_EQ(put.Header("x-amz-content-sha256"), std::string_view(endpoint).starts_with("https")
                                                      ? "UNSIGNED-PAYLOAD"
                                                      : Sha256Hex(data));
  }
}

TEST(S3ClientTest, EmptyFileIsOneEmptyPut) {
  char path[] = "/tmp/s3-client-test-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  FakeHttpClient http;
  StaticCredentials credentials;
  auto object = MakeClient(http, credentials)->UploadFile("bkt", "empty", path);
  ::unlink(path);
  ASSERT_TRUE(object.has_value()) << object.error();
  ASSERT_EQ(http.requests().size(), 1u);
  EXPECT_EQ(http.requests()[0].Header("x-amz-checksum-crc32c"), "AAAAAA==");
}

TEST(S3ClientTest, RetriesThrottlingServerErrorsAndDroppedConnections) {
  FakeHttpClient http([](const HttpRequest&, int index) -> Result<HttpResponse> {
    switch (index) {
      case 0:
        return ErrorResponse(503, "SlowDown", "Please reduce your request rate.");
      case 1:
        return Fail("PUT http://127.0.0.1:9000/bkt/k: Connection reset by peer");
      case 2:
        return ErrorResponse(500, "InternalError", "We encountered an internal error.");
      case 3:
        return ErrorResponse(400, "RequestTimeout", "Your socket connection timed out.");
      case 4:
        return HttpResponse{429, {}, ""};
      default:
        return Ok("", {{"etag", "\"e\""}});
    }
  });
  StaticCredentials credentials;
  std::vector<std::chrono::milliseconds> delays;
  std::vector<std::string> log;
  auto options = TestOptions();
  options.sleep = [&](std::chrono::milliseconds delay) { delays.push_back(delay); };
  options.log = [&](std::string_view line) { log.emplace_back(line); };
  auto object = MakeClient(http, credentials, options)->PutObject("bkt", "k", "body");
  ASSERT_TRUE(object.has_value()) << object.error();
  EXPECT_EQ(http.requests().size(), 6u);
  ASSERT_EQ(delays.size(), 5u);
  // Full jitter below an exponential cap.
  for (size_t i = 0; i < delays.size(); ++i) {
    EXPECT_LT(delays[i].count(), 250 << i) << i;
  }
  ASSERT_EQ(log.size(), 5u);
  EXPECT_THAT(log[0], HasSubstr("SlowDown: Please reduce your request rate."));
  EXPECT_THAT(log[0], HasSubstr("attempt 2 of 6"));
  EXPECT_THAT(log[1], HasSubstr("Connection reset by peer"));
  // Every attempt is signed again (a fresh date), with the same body digests.
  for (const auto& request : http.requests()) {
    EXPECT_EQ(request.Header("x-amz-checksum-crc32c"), Crc32cBase64(Crc32c("body")));
    EXPECT_EQ(request.Header("x-amz-content-sha256"), Sha256Hex("body"));
  }
}

TEST(S3ClientTest, AttemptsAreBounded) {
  FakeHttpClient http([](const HttpRequest&, int) {
    return ErrorResponse(503, "ServiceUnavailable", "Please try again.");
  });
  StaticCredentials credentials;
  auto options = TestOptions();
  options.retry.max_attempts = 4;
  auto object = MakeClient(http, credentials, options)->PutObject("bkt", "dir/k", "body");
  ASSERT_FALSE(object.has_value());
  EXPECT_EQ(object.error(),
            "ServiceUnavailable: Please try again. (PUT s3://bkt/dir/k, after 4 attempts)");
  EXPECT_EQ(http.requests().size(), 4u);
}

TEST(S3ClientTest, ClientErrorsAreNotRetried) {
  FakeHttpClient http(
      [](const HttpRequest&, int) { return ErrorResponse(403, "AccessDenied", "Access Denied"); });
  StaticCredentials credentials;
  auto object = MakeClient(http, credentials)->PutObject("bkt", "k", "body");
  ASSERT_FALSE(object.has_value());
  EXPECT_EQ(object.error(), "AccessDenied: Access Denied (PUT s3://bkt/k)");
  EXPECT_EQ(http.requests().size(), 1u);
}

TEST(S3ClientTest, ErrorWithoutXmlNamesTheStatus) {
  FakeHttpClient http([](const HttpRequest&, int) { return HttpResponse{404, {}, ""}; });
  StaticCredentials credentials;
  auto object = MakeClient(http, credentials)->PutObject("bkt", "k", "body");
  EXPECT_EQ(object.error(), "HTTP 404 Not Found (PUT s3://bkt/k)");
}

TEST(S3ClientTest, WrongSecretIsAClearErrorWithoutSecrets) {
  const std::string secret = "wrong/secret+KEY0123456789abcdefghijklmno";
  FakeHttpClient http([](const HttpRequest&, int) {
    return ErrorResponse(403, "SignatureDoesNotMatch",
                         "The request signature we calculated does not match the signature you "
                         "provided. Check your key and signing method.");
  });
  StaticCredentials credentials("AKIDSECRETID", secret);
  std::string log;
  auto options = TestOptions();
  options.log = [&](std::string_view line) { log += line; };
  auto object = MakeClient(http, credentials, options)->PutObject("bkt", "k", "body");
  ASSERT_FALSE(object.has_value());
  EXPECT_THAT(object.error(),
              HasSubstr("SignatureDoesNotMatch: The request signature we calculated does not "
                        "match the signature you provided. Check your key and signing method. "
                        "[credentials from test] (PUT s3://bkt/k)"));
  for (const std::string& text : {object.error(), log}) {
    EXPECT_THAT(text, Not(HasSubstr(secret)));
    EXPECT_THAT(text, Not(HasSubstr("AKIDSECRETID")));
    EXPECT_THAT(text, Not(HasSubstr("Signature=")));
  }
}

TEST(S3ClientTest, CompleteAnsweringAnErrorInA200IsRetried) {
  std::atomic<int> completes{0};
  FakeHttpClient http([&](const HttpRequest& request, int index) -> Result<HttpResponse> {
    if (request.method == "POST" && !request.url.ends_with("?uploads") && completes++ == 0) {
      return Ok("<Error><Code>InternalError</Code><Message>try again</Message></Error>");
    }
    return MultipartServer(request, index);
  });
  StaticCredentials credentials;
  auto options = TestOptions();
  options.part_size = 4;
  auto object = MakeClient(http, credentials, options)->MultipartUpload("bkt", "k", "0123456789");
  ASSERT_TRUE(object.has_value()) << object.error();
  EXPECT_EQ(completes.load(), 2);
}

// A server whose answer to the first CompleteMultipartUpload is lost (the connection drops), so
// the retry finds the upload gone; HEAD then shows an object last modified at `last_modified`.
FakeHttpClient LostCompletionServer(std::string last_modified) {
  auto completes = std::make_shared<std::atomic<int>>(0);
  return FakeHttpClient([=](const HttpRequest& request, int index) -> Result<HttpResponse> {
    if (request.method == "POST" && !request.url.ends_with("?uploads")) {
      if ((*completes)++ == 0)
        return Fail("POST http://127.0.0.1:9000/bkt/k: Empty reply from server");
      return ErrorResponse(404, "NoSuchUpload", "The specified upload does not exist.");
    }
    if (request.method == "HEAD") {
      return Ok(
          "", {{"content-length", "10"}, {"etag", "\"abc-3\""}, {"last-modified", last_modified}});
    }
    return MultipartServer(request, index);
  });
}

TEST(S3ClientTest, CompletionWhoseAnswerWasLostIsFoundByHead) {
  FakeHttpClient http = LostCompletionServer("Fri, 01 Jan 2100 00:00:00 GMT");
  StaticCredentials credentials;
  auto options = TestOptions();
  options.part_size = 4;
  auto object = MakeClient(http, credentials, options)->MultipartUpload("bkt", "k", "0123456789");
  ASSERT_TRUE(object.has_value()) << object.error();
  EXPECT_EQ(object->etag, "\"abc-3\"");
  EXPECT_EQ(http.requests().back().request.method, "HEAD");
}

TEST(S3ClientTest, AnOlderObjectIsNotTakenForALostCompletion) {
  FakeHttpClient http = LostCompletionServer("Mon, 01 Jan 2001 00:00:00 GMT");
  StaticCredentials credentials;
  auto options = TestOptions();
  options.part_size = 4;
  auto object = MakeClient(http, credentials, options)->MultipartUpload("bkt", "k", "0123456789");
  ASSERT_FALSE(object.has_value());
  EXPECT_THAT(object.error(), HasSubstr("NoSuchUpload"));
  EXPECT_EQ(http.requests().back().request.method, "DELETE");
}

TEST(S3ClientTest, NoSuchUploadAtTheFirstCompletionIsAnError) {
  FakeHttpClient http([&](const HttpRequest& request, int index) -> Result<HttpResponse> {
    if (request.method == "POST" && !request.url.ends_with("?uploads")) {
      return ErrorResponse(404, "NoSuchUpload", "The specified upload does not exist.");
    }
    return MultipartServer(request, index);
  });
  StaticCredentials credentials;
  auto options = TestOptions();
  options.part_size = 4;
  auto object = MakeClient(http, credentials, options)->MultipartUpload("bkt", "k", "0123456789");
  ASSERT_FALSE(object.has_value());
  EXPECT_THAT(object.error(), HasSubstr("NoSuchUpload"));
  for (const auto& request : http.requests()) EXPECT_NE(request.request.method, "HEAD");
}

TEST(S3ClientTest, FailedPartAbortsTheUpload) {
  FakeHttpClient http([](const HttpRequest& request, int index) -> Result<HttpResponse> {
    if (request.method == "PUT" && request.url.find("partNumber=2&") != std::string::npos) {
      return ErrorResponse(403, "AccessDenied", "Access Denied");
    }
    return MultipartServer(request, index);
  });
  StaticCredentials credentials;
  std::vector<std::string> log;
  auto options = TestOptions();
  options.part_size = 4;
  options.concurrency = 1;
  options.log = [&](std::string_view line) { log.emplace_back(line); };
  auto object = MakeClient(http, credentials, options)->MultipartUpload("bkt", "k", "0123456789");
  ASSERT_FALSE(object.has_value());
  EXPECT_EQ(object.error(), "AccessDenied: Access Denied (PUT s3://bkt/k part 2 of 3)");
  auto requests = http.requests();
  ASSERT_GE(requests.size(), 3u);
  const auto& abort = requests.back();
  EXPECT_EQ(abort.request.method, "DELETE");
  EXPECT_EQ(abort.request.url, "http://127.0.0.1:9000/bkt/k?uploadId=up-1");
  EXPECT_TRUE(abort.HasHeader("authorization"));
  // No completion after a failed part.
  for (const auto& request : requests) {
    EXPECT_FALSE(request.request.method == "POST" &&
                 QueryOf(request.request.url) == "uploadId=up-1");
  }
  EXPECT_THAT(log.back(), HasSubstr("aborted the multipart upload of s3://bkt/k"));
}

TEST(S3ClientTest, FailedCompletionAbortsTheUpload) {
  FakeHttpClient http([](const HttpRequest& request, int index) -> Result<HttpResponse> {
    if (request.method == "POST" && !request.url.ends_with("?uploads")) {
      return ErrorResponse(400, "InvalidPart",
                           "One or more of the specified parts could not be found.");
    }
    return MultipartServer(request, index);
  });
  StaticCredentials credentials;
  auto options = TestOptions();
  options.part_size = 4;
  auto object = MakeClient(http, credentials, options)->MultipartUpload("bkt", "k", "0123456789");
  ASSERT_FALSE(object.has_value());
  EXPECT_THAT(object.error(), HasSubstr("InvalidPart"));
  EXPECT_EQ(http.requests().back().request.method, "DELETE");
}

TEST(S3ClientTest, CancellationStopsAndAborts) {
  std::atomic<bool> cancel{false};
  FakeHttpClient http([&](const HttpRequest& request, int index) -> Result<HttpResponse> {
    if (request.method == "PUT") cancel = true;  // cancelled while the first part travels
    return MultipartServer(request, index);
  });
  StaticCredentials credentials;
  auto options = TestOptions();
  options.part_size = 1;
  options.concurrency = 1;
  options.cancelled = [&] { return cancel.load(); };
  auto object =
      MakeClient(http, credentials, options)->MultipartUpload("bkt", "k", std::string(100, 'x'));
  ASSERT_FALSE(object.has_value());
  EXPECT_THAT(object.error(), HasSubstr("cancelled"));
  auto requests = http.requests();
  EXPECT_LE(requests.size(), 4u);  // create, a part or two, abort: not 100 parts
  EXPECT_EQ(requests.back().request.method, "DELETE");
}

TEST(S3ClientTest, CancelledBeforeStartSendsNothing) {
  FakeHttpClient http;
  StaticCredentials credentials;
  auto options = TestOptions();
  options.cancelled = [] { return true; };
  auto object = MakeClient(http, credentials, options)->PutObject("bkt", "k", "x");
  EXPECT_THAT(object.error(), HasSubstr("cancelled"));
  EXPECT_TRUE(http.requests().empty());
}

TEST(S3ClientTest, CredentialErrorsAreReported) {
  class NoCredentials : public CredentialsProvider {
   public:
    Result<Credentials> Get() override { return Fail("no AWS credentials: tried environment"); }
  } credentials;
  FakeHttpClient http;
  auto object = MakeClient(http, credentials)->PutObject("bkt", "k", "x");
  EXPECT_EQ(object.error(), "no AWS credentials: tried environment (PUT s3://bkt/k)");
  EXPECT_TRUE(http.requests().empty());
}

// --- listing -------------------------------------------------------------------------------

// A ListObjectsV2 answer holding `keys` (XML-escaped), truncated with `next` when not empty.
HttpResponse ListPage(const std::vector<std::string>& keys, const std::string& next = "") {
  std::string body =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult "
      "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>bkt</Name>";
  for (const std::string& key : keys) {
    body += "<Contents><Key>" + key + "</Key><Size>1</Size></Contents>";
  }
  body += next.empty() ? "<IsTruncated>false</IsTruncated>"
                       : "<IsTruncated>true</IsTruncated><NextContinuationToken>" + next +
                             "</NextContinuationToken>";
  return Ok(body + "</ListBucketResult>");
}

TEST(S3ClientTest, ListFollowsContinuationTokensPageAfterPage) {
  FakeHttpClient http([](const HttpRequest& request, int index) -> Result<HttpResponse> {
    if (request.method != "GET") return ErrorResponse(400, "Bad", "not a list");
    if (index == 0) return ListPage({"stg/a.json", "stg/b &amp; c.json"}, "t1+/=");
    if (index == 1) return ListPage({"stg/c.json", "stg/d.json"}, "t2");
    return ListPage({"stg/e.json"});
  });
  StaticCredentials credentials;
  auto keys = MakeClient(http, credentials)->ListObjects("bkt", "stg/", 2);
  ASSERT_TRUE(keys.has_value()) << keys.error();
  EXPECT_EQ(*keys, (std::vector<std::string>{"stg/a.json", "stg/b & c.json", "stg/c.json",
                                             "stg/d.json", "stg/e.json"}));
  auto requests = http.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].request.url,
            "http://127.0.0.1:9000/bkt?list-type=2&max-keys=2&prefix=stg%2F");
  EXPECT_EQ(requests[1].request.url,
            "http://127.0.0.1:9000/bkt?list-type=2&max-keys=2&prefix=stg%2F"
            "&continuation-token=t1%2B%2F%3D");
  EXPECT_EQ(requests[2].request.url,
            "http://127.0.0.1:9000/bkt?list-type=2&max-keys=2&prefix=stg%2F"
            "&continuation-token=t2");
  for (const auto& request : requests) {
    EXPECT_EQ(request.request.method, "GET");
    EXPECT_THAT(request.Header("authorization"), HasSubstr("Signature="));
  }
}

TEST(S3ClientTest, ListOfAWholeBucketOnItsOwnHost) {
  FakeHttpClient http([](const HttpRequest&, int) -> Result<HttpResponse> { return ListPage({}); });
  StaticCredentials credentials;
  auto options = TestOptions();
  options.endpoint = "";
  options.region = "eu-west-1";
  auto keys = MakeClient(http, credentials, options)->ListObjects("bkt", "");
  ASSERT_TRUE(keys.has_value()) << keys.error();
  EXPECT_TRUE(keys->empty());
  ASSERT_EQ(http.requests().size(), 1u);
  EXPECT_EQ(http.requests()[0].request.url,
            "https://bkt.s3.eu-west-1.amazonaws.com/?list-type=2&max-keys=1000");
}

TEST(S3ClientTest, ListErrors) {
  StaticCredentials credentials;
  auto list = [&](FakeHttpClient::Handler handler, int max_keys = kMaxListKeys) {
    FakeHttpClient http(std::move(handler));
    return MakeClient(http, credentials)->ListObjects("bkt", "stg/", max_keys);
  };
  EXPECT_EQ(list([](const HttpRequest&, int) -> Result<HttpResponse> {
              return ErrorResponse(403, "AccessDenied", "Access Denied");
            }).error(),
            "AccessDenied: Access Denied (ListObjectsV2 s3://bkt/stg/ page 1)");
  EXPECT_EQ(list([](const HttpRequest&, int) -> Result<HttpResponse> {
              return ListPage({"stg/a"}, "same");
            }).error(),
            "ListObjectsV2 s3://bkt/stg/ page 2: the answer is truncated but gives no new "
            "continuation token");
  EXPECT_EQ(list([](const HttpRequest&, int) -> Result<HttpResponse> {
              return Ok("<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>");
            }).error(),
            "ListObjectsV2 s3://bkt/stg/ page 1: the answer is truncated but gives no new "
            "continuation token");
  EXPECT_EQ(
      list([](const HttpRequest&, int) -> Result<HttpResponse> { return Ok("<Other/>"); }).error(),
      "ListObjectsV2 s3://bkt/stg/ page 1: the answer is not a ListBucketResult");
  EXPECT_THAT(
      list([](const HttpRequest&, int) -> Result<HttpResponse> { return Ok("not xml"); }).error(),
      HasSubstr("ListObjectsV2 s3://bkt/stg/ page 1: the answer is not a "
                "ListBucketResult: "));
  EXPECT_EQ(list(nullptr, 0).error(),
            "ListObjectsV2 s3://bkt/stg/: max-keys 0 is not between 1 and 1000");
  EXPECT_THAT(list(nullptr, 1001).error(), HasSubstr("max-keys 1001"));
}

TEST(DigestTest, Md5) {
  EXPECT_EQ(Md5Hex(""), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(Md5Base64("hello"), "XUFAKrxLKna5cZ2REBfFkg==");
}

// --- the libcurl client against a scripted TCP server on 127.0.0.1 -------------------------

namespace curl_test {

// Accepts connections on a free port; for each, reads one request (headers and a
// Content-Length body) and writes `reply` (nothing when empty, keeping the connection open
// until the test ends). Keeps the last request's bytes.
class ScriptedServer {
 public:
  explicit ScriptedServer(std::string reply) : reply_(std::move(reply)) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof(address));
    ::listen(listener_, 8);
    socklen_t size = sizeof(address);
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &size);
    port_ = ntohs(address.sin_port);
    thread_ = std::jthread([this](std::stop_token stop) { Serve(stop); });
  }
  ~ScriptedServer() {
    thread_.request_stop();
    ::shutdown(listener_, SHUT_RDWR);
    ::close(listener_);
    thread_ = {};
    for (int fd : open_) ::close(fd);
  }
  std::string url(std::string_view path) const {
    return fmt::format("http://127.0.0.1:{}{}", port_, path);
  }
  std::string request() {
    std::lock_guard lock(mutex_);
    return request_;
  }

 private:
  void Serve(std::stop_token stop) {
    while (!stop.stop_requested()) {
      int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      std::string data;
      char buffer[65536];
      size_t need = std::string::npos;
      while (need == std::string::npos || data.size() < need) {
        ssize_t n = ::read(fd, buffer, sizeof(buffer));
        if (n <= 0) break;
        data.append(buffer, static_cast<size_t>(n));
        size_t end = data.find("\r\n\r\n");
        if (need == std::string::npos && end != std::string::npos) {
          size_t length = 0;
          std::string lower = data.substr(0, end);
          std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
          if (size_t at = lower.find("content-length:"); at != std::string::npos) {
            length = std::stoul(lower.substr(at + 15));
          }
          need = end + 4 + length;
        }
      }
      {
        std::lock_guard lock(mutex_);
        request_ = data;
      }
      if (reply_.empty()) {
        open_.push_back(fd);  // a stalled answer: never written, never closed
        continue;
      }
      (void)!::write(fd, reply_.data(), reply_.size());
      ::close(fd);
    }
  }

  std::string reply_;
  int listener_ = -1;
  int port_ = 0;
  std::mutex mutex_;
  std::string request_;
  std::vector<int> open_;
  std::jthread thread_;
};

TEST(HttpCurlTest, SendsTheBodyAndLowercasesResponseHeaders) {
  ScriptedServer server(
      "HTTP/1.1 200 OK\r\nETag: \"abc\"\r\nX-Amz-Request-Id: 7\r\nContent-Length: 2\r\n"
      "Connection: close\r\n\r\nhi");
  auto http = MakeCurlHttpClient();
  std::string body(300000, 'b');
  HttpRequest request;
  request.method = "PUT";
  request.url = server.url("/bkt/key?partNumber=1");
  request.headers = {{"Content-MD5", Md5Base64(body)}, {"x-empty", ""}};
  request.body = body;
  auto response = http->Send(request);
  ASSERT_TRUE(response.has_value()) << response.error();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "hi");
  EXPECT_EQ(response->Header("etag"), "\"abc\"");
  EXPECT_EQ(response->Header("x-amz-request-id"), "7");
  std::string sent = server.request();
  EXPECT_TRUE(sent.starts_with("PUT /bkt/key?partNumber=1 HTTP/1.1\r\n")) << sent.substr(0, 80);
  EXPECT_THAT(sent, HasSubstr("Content-MD5: " + Md5Base64(body) + "\r\n"));
  EXPECT_THAT(sent, HasSubstr("x-empty:\r\n"));
  EXPECT_THAT(sent, Not(HasSubstr("Expect:")));  // no 100-continue round trip per part
  EXPECT_TRUE(sent.ends_with("\r\n\r\n" + body));
}

TEST(HttpCurlTest, PostSendsNoFormContentType) {
  ScriptedServer server("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  auto http = MakeCurlHttpClient();
  HttpRequest request;
  request.method = "POST";
  request.url = server.url("/bkt/key?uploads");
  auto response = http->Send(request);
  ASSERT_TRUE(response.has_value()) << response.error();
  std::string sent = server.request();
  EXPECT_TRUE(sent.starts_with("POST /bkt/key?uploads HTTP/1.1\r\n"));
  EXPECT_THAT(sent, Not(HasSubstr("Content-Type")));
  EXPECT_THAT(sent, HasSubstr("Content-Length: 0\r\n"));
}

TEST(HttpCurlTest, StalledResponseFailsWithoutTheQueryString) {
  ScriptedServer server("");
  auto http = MakeCurlHttpClient();
  HttpRequest request;
  request.method = "PUT";
  request.url = server.url("/bkt/key?X-Amz-Signature=secretsig");
  request.body = "x";
  request.stall_timeout = std::chrono::seconds(1);
  auto start = std::chrono::steady_clock::now();
  auto response = http->Send(request);
  ASSERT_FALSE(response.has_value());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_THAT(response.error(), HasSubstr("stalled"));
  EXPECT_THAT(response.error(), HasSubstr("PUT " + server.url("/bkt/key") + ":"));
  EXPECT_THAT(response.error(), Not(HasSubstr("secretsig")));
}

TEST(HttpCurlTest, CancelAbortsATransfer) {
  ScriptedServer server("");
  auto http = MakeCurlHttpClient();
  HttpRequest request;
  request.url = server.url("/x");
  auto start = std::chrono::steady_clock::now();
  request.cancelled = [&] {
    return std::chrono::steady_clock::now() - start > std::chrono::milliseconds(300);
  };
  auto response = http->Send(request);
  ASSERT_FALSE(response.has_value());
  EXPECT_THAT(response.error(), HasSubstr("cancelled"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST(HttpCurlTest, RefusedConnectionIsAnError) {
  int port;
  {
    ScriptedServer server("x");
    port = std::stoi(server.url("").substr(17));
  }
  auto http = MakeCurlHttpClient();
  HttpRequest request;
  request.url = fmt::format("http://127.0.0.1:{}/bkt/k?X-Amz-Credential=AKID", port);
  auto response = http->Send(request);
  ASSERT_FALSE(response.has_value());
  EXPECT_THAT(response.error(), HasSubstr(fmt::format("GET http://127.0.0.1:{}/bkt/k: ", port)));
  EXPECT_THAT(response.error(), Not(HasSubstr("AKID")));
}

}  // namespace curl_test

}  // namespace
}  // namespace runner::aws
