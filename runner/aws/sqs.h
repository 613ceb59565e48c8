// The SQS calls a build queue makes (SPEC section 10), on the generic request layer
// (aws_client.h): SQS's JSON protocol (JSON 1.0, target AmazonSQS), signed as "sqs". Every call
// is retried on throttling, 5xx and dropped connections by AwsClient; a failure is a message
// naming the call and the queue with AWS's code and message.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "runner/aws/aws_client.h"
#include "runner/aws/credentials.h"
#include "runner/aws/http.h"
#include "runner/environment.h"
#include "runner/result.h"

namespace runner::aws {

// A queue URL taken apart: https://sqs.eu-west-1.amazonaws.com/111111111111/builds.fifo, or an
// SQS-compatible endpoint's (http://127.0.0.1:4566/000000000000/builds.fifo).
struct SqsQueueUrl {
  std::string url;       // as given
  std::string endpoint;  // scheme://host[:port]
  std::string region;    // from an AWS host name; empty for another endpoint
  std::string name;      // the last path segment
};
// Fails, naming `url`, unless it is http(s)://HOST/ACCOUNT/NAME.
Result<SqsQueueUrl> ParseSqsQueueUrl(std::string_view url);

struct SqsOptions : AwsTransportOptions {
  std::string region = "us-east-1";
  std::string endpoint;  // scheme://host[:port]; empty: https://sqs.REGION.amazonaws.com
};

struct SqsMessage {
  std::string id;
  std::string receipt;  // the receipt handle of this receive
  std::string body;
  int receive_count = 0;  // ApproximateReceiveCount, this receive included
};

// Thread-safe, as AwsClient is.
class SqsClient {
 public:
  // `http` and `credentials` must outlive the client.
  static Result<std::unique_ptr<SqsClient>> Create(HttpClient& http,
                                                   CredentialsProvider& credentials,
                                                   SqsOptions options);

  // CreateQueue: the queue's URL (the existing one when it exists with the same attributes).
  Result<std::string> CreateQueue(const std::string& name,
                                  const std::map<std::string, std::string>& attributes);
  // SendMessage to a FIFO queue: the message id.
  Result<std::string> SendMessage(const std::string& queue_url, const std::string& body,
                                  const std::string& group_id, const std::string& dedup_id);
  // ReceiveMessage of at most one message, waiting up to `wait` (long poll, at most 20 s) and
  // keeping it invisible for `visibility`; empty when none came.
  Result<std::vector<SqsMessage>> ReceiveMessage(const std::string& queue_url,
                                                 std::chrono::seconds wait,
                                                 std::chrono::seconds visibility);
  Status ChangeMessageVisibility(const std::string& queue_url, const std::string& receipt,
                                 std::chrono::seconds visibility);
  Status DeleteMessage(const std::string& queue_url, const std::string& receipt);
  // GetQueueAttributes of `names` ("All" for every one).
  Result<std::map<std::string, std::string>> GetQueueAttributes(
      const std::string& queue_url, const std::vector<std::string>& names);

 private:
  explicit SqsClient(std::unique_ptr<AwsClient> aws) : aws_(std::move(aws)) {}

  std::unique_ptr<AwsClient> aws_;
};

}  // namespace runner::aws
