#include "runner/aws/sigv4.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "runner/sha256.h"

namespace runner::aws {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;
using std::chrono::system_clock;

// AWS's own SigV4 vectors, in the shared test data next to the repository.
const fs::path kSuiteDir =
    (fs::path(RUNNER_SOURCE_DIR) / ".." / "shared" / "testdata" / "aws-sigv4-test-suite")
        .lexically_normal();

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// The expected texts end without a newline, but a copy edited by hand might gain one.
std::string ReadExpected(const fs::path& path) {
  std::string text = ReadFile(path);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

system_clock::time_point ParseTimestamp(const std::string& text) {  // 2015-08-30T12:36:00Z
  std::tm tm{};
  EXPECT_EQ(std::sscanf(text.c_str(), "%d-%d-%dT%d:%d:%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                        &tm.tm_hour, &tm.tm_min, &tm.tm_sec),
            6)
      << text;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return system_clock::from_time_t(timegm(&tm));
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string PercentDecode(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && HexValue(text[i + 1]) >= 0 &&
        HexValue(text[i + 2]) >= 0) {
      out += static_cast<char>(HexValue(text[i + 1]) * 16 + HexValue(text[i + 2]));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

// "a=1&b&c=" as decoded pairs; a name without '=' has an empty value.
Pairs ParseQuery(std::string_view text) {
  Pairs out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('&', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view item = text.substr(pos, end - pos);
    size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      out.emplace_back(PercentDecode(item), "");
    } else {
      out.emplace_back(PercentDecode(item.substr(0, eq)), PercentDecode(item.substr(eq + 1)));
    }
    pos = end + 1;
  }
  return out;
}

struct HttpText {
  std::string method;
  std::string path;  // as written on the request line (the suite writes some paths unencoded)
  Pairs query;
  Pairs headers;  // continuation lines kept, joined to their header by '\n'
  std::string body;
};

// The suite's request files: "METHOD PATH[?QUERY] HTTP/1.1", "Name:value" lines (a line
// starting with whitespace continues the previous value), a blank line, the body.
HttpText ParseHttpText(const std::string& text) {
  HttpText out;
  size_t line_end = text.find('\n');
  std::string request_line = text.substr(0, line_end);
  if (!request_line.empty() && request_line.back() == '\r') request_line.pop_back();
  size_t space = request_line.find(' ');
  size_t version = request_line.rfind(" HTTP/");
  out.method = request_line.substr(0, space);
  std::string target = request_line.substr(space + 1, version - space - 1);
  size_t question = target.find('?');
  out.path = target.substr(0, question);
  if (question != std::string::npos) out.query = ParseQuery(target.substr(question + 1));

  size_t pos = line_end == std::string::npos ? text.size() : line_end + 1;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) {
      if (pos < text.size()) out.body = text.substr(pos);
      break;
    }
    if ((line[0] == ' ' || line[0] == '\t') && !out.headers.empty()) {
      out.headers.back().second += "\n" + line;
      continue;
    }
    size_t colon = line.find(':');
    out.headers.emplace_back(line.substr(0, colon), line.substr(colon + 1));
  }
  return out;
}

std::string Lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

Pairs SortedLowerNames(Pairs pairs) {
  for (auto& pair : pairs) pair.first = Lower(pair.first);
  std::sort(pairs.begin(), pairs.end());
  return pairs;
}

std::string Find(const Pairs& pairs, std::string_view name) {
  for (const auto& [key, value] : pairs) {
    if (Lower(key) == Lower(std::string(name))) return value;
  }
  return "";
}

std::vector<std::string> SuiteCases() {
  std::vector<std::string> cases;
  std::error_code error;
  if (!fs::is_directory(kSuiteDir, error)) return cases;
  for (const auto& entry : fs::directory_iterator(kSuiteDir, error)) {
    if (entry.is_directory() && fs::exists(entry.path() / "request.txt")) {
      cases.push_back(entry.path().filename().string());
    }
  }
  std::sort(cases.begin(), cases.end());
  return cases;
}

// A missing suite is a failure, never a silent skip.
TEST(SigV4Suite, IsPresent) {
  ASSERT_TRUE(fs::is_directory(kSuiteDir))
      << "AWS SigV4 test suite not found at " << kSuiteDir
      << ": it belongs in ../shared/testdata/aws-sigv4-test-suite beside the repository";
  // 38 cases in the copy this was written against; fewer means a truncated copy.
  EXPECT_GE(SuiteCases().size(), 38u) << "incomplete AWS SigV4 test suite at " << kSuiteDir;
}

struct SuiteContext {
  Credentials credentials;
  SigningParams params;
  seconds expires{0};
  bool sign_body = false;
  bool omit_session_token = false;
};

SuiteContext LoadContext(const fs::path& dir) {
  SuiteContext context;
  auto json = nlohmann::json::parse(ReadFile(dir / "context.json"), nullptr, false);
  EXPECT_FALSE(json.is_discarded()) << dir / "context.json";
  if (json.is_discarded()) return context;
  const auto& credentials = json.at("credentials");
  context.credentials.access_key_id = credentials.at("access_key_id").get<std::string>();
  context.credentials.secret_access_key = credentials.at("secret_access_key").get<std::string>();
  context.credentials.session_token = credentials.value("token", "");
  context.params.region = json.at("region").get<std::string>();
  context.params.service = json.at("service").get<std::string>();
  context.params.time = ParseTimestamp(json.at("timestamp").get<std::string>());
  context.params.s3_rules = false;
  context.params.normalize_path = json.value("normalize", true);
  context.expires = seconds(json.value("expiration_in_seconds", 3600));
  context.sign_body = json.value("sign_body", false);
  context.omit_session_token = json.value("omit_session_token", false);
  return context;
}

class SigV4SuiteCase : public testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = kSuiteDir / GetParam();
    context_ = LoadContext(dir_);
    text_ = ParseHttpText(ReadFile(dir_ / "request.txt"));
    request_.method = text_.method;
    request_.path = text_.path;
    request_.query = text_.query;
    request_.headers = text_.headers;
    request_.payload_sha256 = Sha256Hex(text_.body);
  }

  fs::path dir_;
  SuiteContext context_;
  HttpText text_;
  SignableRequest request_;
};

TEST_P(SigV4SuiteCase, HeaderForm) {
  SignableRequest request = request_;
  // The suite's sign_body: the body's hash travels, signed, in x-amz-content-sha256.
  if (context_.sign_body)
    request.headers.emplace_back("x-amz-content-sha256", Sha256Hex(text_.body));
  // omit_session_token: the token is added after signing, outside the signature.
  Credentials credentials = context_.credentials;
  if (context_.omit_session_token) credentials.session_token.clear();

  Pairs added = SignHeaders(request, credentials, context_.params);
  std::string authorization = Find(added, "Authorization");
  ASSERT_FALSE(authorization.empty());

  SignableRequest signed_request = request;
  for (const auto& header : added) {
    if (header.first != "Authorization") signed_request.headers.push_back(header);
  }
  size_t from = authorization.find("SignedHeaders=") + 14;
  std::string signed_headers = authorization.substr(from, authorization.find(',', from) - from);
  std::string canonical = CanonicalRequest(signed_request, context_.params, signed_headers);
  EXPECT_EQ(canonical, ReadExpected(dir_ / "header-canonical-request.txt"));
  std::string string_to_sign = StringToSign(canonical, context_.params);
  EXPECT_EQ(string_to_sign, ReadExpected(dir_ / "header-string-to-sign.txt"));
  std::string signature = Signature(string_to_sign, credentials, context_.params);
  EXPECT_EQ(signature, ReadExpected(dir_ / "header-signature.txt"));

  // The whole signed request: the original headers plus exactly the ones the signer added.
  HttpText expected = ParseHttpText(ReadFile(dir_ / "header-signed-request.txt"));
  EXPECT_EQ(authorization, Find(expected.headers, "Authorization"));
  Pairs ours = request.headers;
  ours.insert(ours.end(), added.begin(), added.end());
  if (context_.omit_session_token) {
    ours.emplace_back("X-Amz-Security-Token", context_.credentials.session_token);
  }
  EXPECT_EQ(SortedLowerNames(ours), SortedLowerNames(expected.headers));
}

TEST_P(SigV4SuiteCase, QueryForm) {
  Credentials credentials = context_.credentials;
  if (context_.omit_session_token) credentials.session_token.clear();

  Pairs added = PresignQuery(request_, credentials, context_.params, context_.expires);
  ASSERT_FALSE(added.empty());
  ASSERT_EQ(added.back().first, "X-Amz-Signature");

  SignableRequest signed_request = request_;
  signed_request.query.insert(signed_request.query.end(), added.begin(), added.end() - 1);
  std::string canonical =
      CanonicalRequest(signed_request, context_.params, Find(added, "X-Amz-SignedHeaders"));
  EXPECT_EQ(canonical, ReadExpected(dir_ / "query-canonical-request.txt"));
  std::string string_to_sign = StringToSign(canonical, context_.params);
  EXPECT_EQ(string_to_sign, ReadExpected(dir_ / "query-string-to-sign.txt"));
  std::string signature = Signature(string_to_sign, credentials, context_.params);
  EXPECT_EQ(signature, ReadExpected(dir_ / "query-signature.txt"));
  EXPECT_EQ(added.back().second, signature);

  HttpText expected = ParseHttpText(ReadFile(dir_ / "query-signed-request.txt"));
  Pairs ours = request_.query;
  ours.insert(ours.end(), added.begin(), added.end());
  if (context_.omit_session_token) {
    ours.emplace_back("X-Amz-Security-Token", context_.credentials.session_token);
  }
  auto sorted = [](Pairs pairs) {
    std::sort(pairs.begin(), pairs.end());
    return pairs;
  };
  EXPECT_EQ(sorted(ours), sorted(expected.query));
}

INSTANTIATE_TEST_SUITE_P(Aws, SigV4SuiteCase, testing::ValuesIn(SuiteCases()),
                         [](const testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });
// Without the suite there are no cases; SigV4Suite.IsPresent fails instead.
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(SigV4SuiteCase);

// --- S3's worked examples (S3 API reference, "Signature Calculations for the Authorization
// Header" and "Authenticating Requests: Using Query Parameters"), bucket examplebucket.

const Credentials kS3Example{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "",
                             std::nullopt, "test"};
constexpr std::string_view kEmptySha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

SigningParams S3Params() {
  SigningParams params;
  params.region = "us-east-1";
  params.service = "s3";
  params.time = system_clock::from_time_t(1369353600);  // 2013-05-24T00:00:00Z
  params.s3_rules = true;
  return params;
}

std::string SignatureOf(const std::string& authorization) {
  return authorization.substr(authorization.find("Signature=") + 10);
}

TEST(SigV4S3Example, GetObject) {
  SignableRequest request{"GET",
                          "/test.txt",
                          {},
                          {{"Host", "examplebucket.s3.amazonaws.com"}, {"Range", "bytes=0-9"}},
                          std::string(kEmptySha256)};
  Pairs added = SignHeaders(request, kS3Example, S3Params());
  EXPECT_EQ(Find(added, "X-Amz-Date"), "20130524T000000Z");
  EXPECT_EQ(Find(added, "x-amz-content-sha256"), kEmptySha256);
  EXPECT_EQ(Find(added, "Authorization"),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");

  request.headers.insert(request.headers.end(), added.begin(), added.end() - 1);
  std::string canonical =
      CanonicalRequest(request, S3Params(), "host;range;x-amz-content-sha256;x-amz-date");
  EXPECT_EQ(
      canonical,
      "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
      "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
      "x-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n"
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(StringToSign(canonical, S3Params()),
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
}

// Each thread keeps the signing key it derived last: a request of another day, region,
// service or secret is signed as a thread that never signed anything signs it.
TEST(SigV4S3Example, KeptSigningKeyIsNeverUsedForAnotherScopeOrSecret) {
  SignableRequest request{"GET",
                          "/test.txt",
                          {},
                          {{"Host", "examplebucket.s3.amazonaws.com"}, {"Range", "bytes=0-9"}},
                          std::string(kEmptySha256)};
  auto sign = [&](const Credentials& credentials, const SigningParams& params) {
    return SignatureOf(Find(SignHeaders(request, credentials, params), "Authorization"));
  };
  auto sign_fresh = [&](const Credentials& credentials, const SigningParams& params) {
    std::string signature;
    std::thread([&] { signature = sign(credentials, params); }).join();
    return signature;
  };
  SigningParams next_day = S3Params();
  next_day.time += std::chrono::hours(24);
  SigningParams region = S3Params();
  region.region = "eu-west-1";
  SigningParams service = S3Params();
  service.service = "s3-object-lambda";
  Credentials other = kS3Example;
  other.secret_access_key = "another-secret";
  const std::string first = sign(kS3Example, S3Params());
  EXPECT_EQ(first, sign_fresh(kS3Example, S3Params()));
  for (const auto& [credentials, params] :
       std::vector<std::pair<Credentials, SigningParams>>{{kS3Example, next_day},
                                                          {kS3Example, region},
                                                          {kS3Example, service},
                                                          {other, S3Params()}}) {
    std::string signature = sign(credentials, params);
    EXPECT_NE(signature, first);
    EXPECT_EQ(signature, sign_fresh(credentials, params));
    EXPECT_EQ(sign(kS3Example, S3Params()), first);  // and back
  }
}

TEST(SigV4S3Example, PutObjectWithEncodedKey) {
  // Key "test$file.text": the path is encoded once ('$' as %24) and signed as sent.
  std::string body = "Welcome to Amazon S3.";
  SignableRequest request{"PUT",
                          "/" + UriEncode("test$file.text", true),
                          {},
                          {{"Host", "examplebucket.s3.amazonaws.com"},
                           {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                           {"x-amz-storage-class", "REDUCED_REDUNDANCY"}},
                          Sha256Hex(body)};
  EXPECT_EQ(request.path, "/test%24file.text");
  Pairs added = SignHeaders(request, kS3Example, S3Params());
  std::string authorization = Find(added, "Authorization");
  EXPECT_NE(authorization.find(
                "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,"),
            std::string::npos);
  EXPECT_EQ(SignatureOf(authorization),
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
  EXPECT_EQ(Find(added, "x-amz-content-sha256"),
            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
}

TEST(SigV4S3Example, GetBucketLifecycle) {
  SignableRequest request{"GET",
                          "/",
                          {{"lifecycle", ""}},
                          {{"Host", "examplebucket.s3.amazonaws.com"}},
                          std::string(kEmptySha256)};
  EXPECT_EQ(SignatureOf(Find(SignHeaders(request, kS3Example, S3Params()), "Authorization")),
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

TEST(SigV4S3Example, ListObjects) {
  SignableRequest request{"GET",
                          "/",
                          {{"prefix", "J"}, {"max-keys", "2"}},
                          {{"Host", "examplebucket.s3.amazonaws.com"}},
                          std::string(kEmptySha256)};
  EXPECT_EQ(SignatureOf(Find(SignHeaders(request, kS3Example, S3Params()), "Authorization")),
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

TEST(SigV4S3Example, PresignedGetObject) {
  SignableRequest request{"GET", "/test.txt", {}, {{"Host", "examplebucket.s3.amazonaws.com"}}, ""};
  Pairs query = PresignQuery(request, kS3Example, S3Params(), seconds(86400));
  Pairs expected = {
      {"X-Amz-Algorithm", "AWS4-HMAC-SHA256"},
      {"X-Amz-Credential", "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"},
      {"X-Amz-Date", "20130524T000000Z"},
      {"X-Amz-Expires", "86400"},
      {"X-Amz-SignedHeaders", "host"},
      {"X-Amz-Signature", "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"},
  };
  EXPECT_EQ(query, expected);
  // Same thing with the payload named explicitly.
  request.payload_sha256 = "UNSIGNED-PAYLOAD";
  EXPECT_EQ(PresignQuery(request, kS3Example, S3Params(), seconds(86400)), expected);
}

// --- S3 rules and the canonical form's details.

std::string CanonicalPathOf(std::string path, bool s3_rules) {
  SigningParams params = S3Params();
  params.s3_rules = s3_rules;
  SignableRequest request{"GET", std::move(path), {}, {{"host", "h"}}, std::string(kEmptySha256)};
  std::string canonical = CanonicalRequest(request, params, "host");
  size_t first = canonical.find('\n') + 1;
  return canonical.substr(first, canonical.find('\n', first) - first);
}

TEST(SigV4S3Rules, PathIsNeitherNormalizedNorEncodedAgain) {
  EXPECT_EQ(CanonicalPathOf("/a/./b//c", true), "/a/./b//c");
  EXPECT_EQ(CanonicalPathOf("/a/./b//c", false), "/a/b/c");
  EXPECT_EQ(CanonicalPathOf("/bucket/../x", true), "/bucket/../x");
  EXPECT_EQ(CanonicalPathOf("/bucket/my%20key", true), "/bucket/my%20key");
  EXPECT_EQ(CanonicalPathOf("/bucket/my%20key", false), "/bucket/my%2520key");
  EXPECT_EQ(CanonicalPathOf("", true), "/");
  // A key with the characters S3 users trip over, encoded once by the caller.
  std::string key = UriEncode("dir/a b+c=d&e\xC3\xA9.txt", true);
  EXPECT_EQ(key, "dir/a%20b%2Bc%3Dd%26e%C3%A9.txt");
  EXPECT_EQ(CanonicalPathOf("/bucket/" + key, true), "/bucket/" + key);
}

TEST(SigV4S3Rules, ContentSha256IsSignedAndUnsignedPayloadKept) {
  SignableRequest request{"PUT", "/b/k", {}, {{"Host", "127.0.0.1:9000"}}, "UNSIGNED-PAYLOAD"};
  Pairs added = SignHeaders(request, kS3Example, S3Params());
  EXPECT_EQ(Find(added, "x-amz-content-sha256"), "UNSIGNED-PAYLOAD");
  std::string authorization = Find(added, "Authorization");
  EXPECT_NE(authorization.find("SignedHeaders=host;x-amz-content-sha256;x-amz-date,"),
            std::string::npos)
      << authorization;
  request.headers.insert(request.headers.end(), added.begin(), added.end() - 1);
  std::string canonical =
      CanonicalRequest(request, S3Params(), "host;x-amz-content-sha256;x-amz-date");
  EXPECT_TRUE(canonical.ends_with("\nUNSIGNED-PAYLOAD")) << canonical;
  EXPECT_NE(canonical.find("x-amz-content-sha256:UNSIGNED-PAYLOAD\n"), std::string::npos);
}

TEST(SigV4S3Rules, ExistingContentSha256IsNotAddedTwice) {
  SignableRequest request{"PUT",
                          "/b/k",
                          {},
                          {{"Host", "h"}, {"X-Amz-Content-SHA256", std::string(kEmptySha256)}},
                          std::string(kEmptySha256)};
  Pairs added = SignHeaders(request, kS3Example, S3Params());
  EXPECT_EQ(Find(added, "x-amz-content-sha256"), "");
  EXPECT_NE(Find(added, "Authorization").find("host;x-amz-content-sha256;x-amz-date"),
            std::string::npos);
}

TEST(SigV4S3Rules, OtherServicesGetNoContentSha256) {
  SigningParams params = S3Params();
  params.s3_rules = false;
  params.service = "sts";
  SignableRequest request{"POST", "/", {}, {{"Host", "sts.amazonaws.com"}}, ""};
  Pairs added = SignHeaders(request, kS3Example, params);
  EXPECT_EQ(Find(added, "x-amz-content-sha256"), "");
  EXPECT_NE(Find(added, "Authorization").find("SignedHeaders=host;x-amz-date,"), std::string::npos);
}

TEST(SigV4, SessionTokenIsSignedInBothForms) {
  Credentials credentials = kS3Example;
  credentials.session_token = "TOKEN/with+chars=";
  SignableRequest request{"GET", "/b/k", {}, {{"Host", "h"}}, std::string(kEmptySha256)};
  Pairs headers = SignHeaders(request, credentials, S3Params());
  EXPECT_EQ(Find(headers, "X-Amz-Security-Token"), "TOKEN/with+chars=");
  EXPECT_NE(Find(headers, "Authorization")
                .find("SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,"),
            std::string::npos);

  Pairs query = PresignQuery(request, credentials, S3Params(), seconds(60));
  EXPECT_EQ(Find(query, "X-Amz-Security-Token"), "TOKEN/with+chars=");
  SignableRequest signed_request = request;
  signed_request.query.insert(signed_request.query.end(), query.begin(), query.end() - 1);
  EXPECT_NE(CanonicalRequest(signed_request, S3Params(), "host")
                .find("X-Amz-Security-Token=TOKEN%2Fwith%2Bchars%3D"),
            std::string::npos);
  // Without the token in the signature, the signature differs.
  Credentials no_token = kS3Example;
  EXPECT_NE(Find(PresignQuery(request, no_token, S3Params(), seconds(60)), "X-Amz-Signature"),
            Find(query, "X-Amz-Signature"));
}

TEST(SigV4, HeadersTrimmedCollapsedLoweredSortedAndJoined) {
  SignableRequest request{"GET",
                          "/",
                          {},
                          {{"X-B", "  two   words\there  "},
                           {"Host", "h"},
                           {"x-a", "first"},
                           {"X-A", " second "},
                           {"X-C", "line1\n   line2"}},
                          std::string(kEmptySha256)};
  std::string canonical = CanonicalRequest(request, S3Params(), "host;x-a;x-b;x-c");
  EXPECT_EQ(canonical,
            "GET\n/\n\nhost:h\nx-a:first,second\nx-b:two words here\nx-c:line1 line2\n\n"
            "host;x-a;x-b;x-c\n" +
                std::string(kEmptySha256));
  // SignHeaders signs every header given, by lowercase name, once.
  std::string authorization = Find(SignHeaders(request, kS3Example, S3Params()), "Authorization");
  EXPECT_NE(authorization.find("SignedHeaders=host;x-a;x-amz-content-sha256;x-amz-date;x-b;x-c,"),
            std::string::npos)
      << authorization;
}

TEST(SigV4, QuerySortedByEncodedNameThenValue) {
  SignableRequest request{"GET",
                          "/",
                          {{"b", "2"}, {"a", "z"}, {"a", "y"}, {"A", "x"}, {"k", "v/=&+ \xC3\xA9"}},
                          {{"host", "h"}},
                          std::string(kEmptySha256)};
  std::string canonical = CanonicalRequest(request, S3Params(), "host");
  EXPECT_NE(canonical.find("\nA=x&a=y&a=z&b=2&k=v%2F%3D%26%2B%20%C3%A9\n"), std::string::npos)
      << canonical;
}

TEST(SigV4, UriEncode) {
  EXPECT_EQ(UriEncode("AZaz09-_.~", false), "AZaz09-_.~");
  EXPECT_EQ(UriEncode("a b/c", true), "a%20b/c");
  EXPECT_EQ(UriEncode("a b/c", false), "a%20b%2Fc");
  EXPECT_EQ(UriEncode("\xE1\x88\xB4*+!", false), "%E1%88%B4%2A%2B%21");
  EXPECT_EQ(UriEncode("%20", true), "%2520");
  EXPECT_EQ(UriEncode("", true), "");
}

TEST(SigV4, PathNormalizationOutsideS3) {
  EXPECT_EQ(CanonicalPathOf("/", false), "/");
  EXPECT_EQ(CanonicalPathOf("//", false), "/");
  EXPECT_EQ(CanonicalPathOf("/a/b/..", false), "/a/");
  EXPECT_EQ(CanonicalPathOf("/a/../../b", false), "/b");
  EXPECT_EQ(CanonicalPathOf("/a/./", false), "/a/");
  EXPECT_EQ(CanonicalPathOf("/a b/", false), "/a%20b/");
}

TEST(SigV4, DifferentSecretsDifferentSignatures) {
  Credentials wrong = kS3Example;
  wrong.secret_access_key = "not-the-secret";
  SignableRequest request{"GET", "/test.txt", {}, {{"Host", "h"}}, std::string(kEmptySha256)};
  EXPECT_NE(Find(SignHeaders(request, kS3Example, S3Params()), "Authorization"),
            Find(SignHeaders(request, wrong, S3Params()), "Authorization"));
  // The secret never appears in what is sent.
  for (const auto& [name, value] : SignHeaders(request, kS3Example, S3Params())) {
    EXPECT_EQ(value.find(kS3Example.secret_access_key), std::string::npos) << name;
  }
}

}  // namespace
}  // namespace runner::aws
