// The request layer every AWS client is built on: a request is signed with SigV4 (credentials
// fetched per attempt, so refreshed ones are used), sent through an HttpClient and retried
// with exponential backoff and full jitter on throttling, 5xx and dropped connections; a
// failed answer is decoded into an AwsError. Helpers build the requests of the Query protocol
// (CloudFormation, Auto Scaling, EC2, STS, SQS) and of JSON 1.1 (CodeDeploy). Credentials,
// Authorization headers and signatures never appear in a message or a log line.
#pragma once

#include <chrono>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "runner/aws/aws_error.h"
#include "runner/aws/credentials.h"
#include "runner/aws/http.h"
#include "runner/result.h"

namespace runner::aws {

template <class T>
using AwsResult = std::expected<T, AwsError>;

struct RetryPolicy {
  int max_attempts = 6;  // per request, the first one included
  // The delay before attempt n+1 is uniform in [0, min(max_delay, base_delay * 2^n)).
  std::chrono::milliseconds base_delay{250};
  std::chrono::milliseconds max_delay{10000};
};

// How requests travel: retries, timeouts, progress messages, cancellation. Shared by every
// client built on AwsClient (S3ClientOptions too).
struct AwsTransportOptions {
  RetryPolicy retry;
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(10)};
  // A request that moves no byte for this long is dropped and retried.
  std::chrono::milliseconds stall_timeout{std::chrono::seconds(30)};
  // Progress and retry messages (never a header, a credential or a signature). Optional;
  // called from several threads, one whole line at a time.
  std::function<void(std::string_view)> log;
  // Polled before and during every request and while waiting to retry; true stops it
  // ("cancelled"). Optional.
  std::function<bool()> cancelled;
  // For tests: how to wait between attempts (default: sleep, waking for cancellation) and the
  // signing clock (default: the system clock).
  std::function<void(std::chrono::milliseconds)> sleep;
  std::function<std::chrono::system_clock::time_point()> now;
};

struct AwsClientOptions : AwsTransportOptions {
  std::string service;  // the signing name: "s3", "cloudformation", "codedeploy", ...
  std::string region = "us-east-1";
  // `http://host:port` or `https://host`; empty: https://SERVICE.REGION.amazonaws.com.
  std::string endpoint;
  // S3 signs the path as sent and the x-amz-content-sha256 header.
  bool s3_rules = false;
};

struct AwsRequest {
  std::string method = "POST";
  // The host to send to and sign; empty: the endpoint's (S3's virtual-host style sets
  // `bucket.endpoint`).
  std::string host;
  std::string path = "/";  // as sent on the wire, already percent-encoded
  Pairs query;             // decoded names and values
  Pairs headers;           // besides host and the signature's
  std::string body;
  // When set, sent instead of `body`; the caller keeps the bytes alive (a part of a mapped file).
  std::optional<std::string_view> body_view;
  // The body's hex SHA-256 when the caller has it already.
  std::string payload_sha256;
  // Names the request in messages: "PUT s3://bucket/key part 3/8", "CloudFormation
  // DescribeStacks".
  std::string what;
  bool cancellable = true;  // false: sent even when cancelled (an abort, a cleanup)
  int max_attempts = 0;     // 0: the policy's
  // A 2xx answer whose XML body is an <Error> is an error (S3's CompleteMultipartUpload).
  bool error_in_body = false;
  // 0: two minutes plus a second per 128 KiB of body.
  std::chrono::milliseconds timeout{0};
  // When set, receives the number of attempts made.
  int* attempts_made = nullptr;

  std::string_view Body() const { return body_view ? *body_view : std::string_view(body); }
};

// `scheme://host[:port]` taken apart.
struct Endpoint {
  std::string scheme;  // "http" or "https"
  std::string host;    // with ":port" when given
};
// Fails on another scheme, a path, credentials or a query in the URL.
Result<Endpoint> ParseEndpoint(std::string_view url);
// https://SERVICE.REGION.amazonaws.com (.com.cn in China).
Endpoint DefaultEndpoint(std::string_view service, std::string_view region);
// The endpoint `env` configures for a service, as the AWS CLI and SDKs read it:
// AWS_ENDPOINT_URL_<SERVICE_ID> (`service_id` as AWS spells it in that variable: "EC2", "S3",
// "CLOUDFORMATION"), else AWS_ENDPOINT_URL; empty (AWS's own endpoint) when neither is set to
// a value.
std::string EndpointFromEnvironment(const Environment& env, std::string_view service_id);

// Thread-safe: requests may be sent from several threads at once.
class AwsClient {
 public:
  // Fails when the endpoint is not http(s)://host[:port] or the region or service is empty.
  // `http` and `credentials` must outlive the client.
  static Result<std::unique_ptr<AwsClient>> Create(HttpClient& http,
                                                   CredentialsProvider& credentials,
                                                   AwsClientOptions options);

  // Sends `request` with retries: the 2xx answer, or the last error, its `text` naming the
  // request ("Code: Message (what, after N attempts)").
  AwsResult<HttpResponse> Send(const AwsRequest& request);

  // `scheme://host` of the endpoint.
  const Endpoint& endpoint() const { return endpoint_; }
  const AwsClientOptions& options() const { return options_; }
  // Whether options.cancelled says stop (false when unset).
  bool Cancelled() const { return options_.cancelled && options_.cancelled(); }
  // Hands `line` to options.log, if set.
  void Log(std::string_view line) const;

 private:
  AwsClient(HttpClient& http, CredentialsProvider& credentials, AwsClientOptions options,
            Endpoint endpoint);
  void Sleep(std::chrono::milliseconds delay) const;

  HttpClient& http_;
  CredentialsProvider& credentials_;
  AwsClientOptions options_;
  Endpoint endpoint_;
};

// RFC 3986 form encoding of `params` (unreserved characters kept, the rest %XX), in order.
std::string FormEncode(const Pairs& params);

// A Query-protocol request: POST / with the form body `Action=..&Version=..&params...`
// (params as the API names them: `Parameters.member.1.ParameterKey`).
AwsRequest QueryRequest(std::string_view action, std::string_view version, const Pairs& params);

// A JSON protocol request: POST / with `X-Amz-Target: TARGET_PREFIX.OPERATION`, content type
// application/x-amz-json-VERSION and `json` as the body (e.g. "CodeDeploy_20141006",
// "CreateDeployment"). Most services speak 1.1; SQS speaks 1.0.
AwsRequest JsonRequest(std::string_view target_prefix, std::string_view operation, std::string json,
                       std::string_view version = "1.1");

}  // namespace runner::aws
