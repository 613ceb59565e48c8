#include "runner/aws/sqs.h"

#include <fmt/format.h>

#include <charconv>
#include <nlohmann/json.hpp>

#include "runner/aws/service_client.h"

namespace runner::aws {

namespace {

using Json = nlohmann::json;

// A long poll holds the answer for up to 20 s.
constexpr JsonCall kSqs{
    .target_prefix = "AmazonSQS", .version = "1.0", .timeout = std::chrono::seconds(60)};

Result<Json> Call(AwsClient& aws, std::string_view operation, const Json& body,
                  std::string_view subject) {
  return CallJson(aws, kSqs, operation, body, fmt::format("SQS {} {}", operation, subject));
}

}  // namespace

Result<SqsQueueUrl> ParseSqsQueueUrl(std::string_view url) {
  auto bad = [&] {
    return Fail(fmt::format(
        "queue '{}': expected an SQS queue URL, https://sqs.REGION.amazonaws.com/ACCOUNT/NAME",
        url));
  };
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return bad();
  size_t path = url.find('/', scheme_end + 3);
  if (path == std::string_view::npos) return bad();
  auto endpoint = ParseEndpoint(url.substr(0, path));
  if (!endpoint) return bad();
  std::string_view rest = url.substr(path + 1);
  size_t slash = rest.find('/');
  if (slash == 0 || slash == std::string_view::npos || slash + 1 == rest.size() ||
      rest.find('/', slash + 1) != std::string_view::npos ||
      rest.find_first_of("?#") != std::string_view::npos) {
    return bad();
  }
  SqsQueueUrl parsed;
  parsed.url = std::string(url);
  parsed.endpoint = fmt::format("{}://{}", endpoint->scheme, endpoint->host);
  parsed.name = std::string(rest.substr(slash + 1));
  std::string_view host = endpoint->host;
  if (host.starts_with("sqs.") && host.find(".amazonaws.com") != std::string_view::npos) {
    host.remove_prefix(4);
    parsed.region = std::string(host.substr(0, host.find('.')));
  }
  return parsed;
}

Result<std::unique_ptr<SqsClient>> SqsClient::Create(HttpClient& http,
                                                     CredentialsProvider& credentials,
                                                     SqsOptions options) {
  auto aws = CreateServiceClient(http, credentials, "sqs", "SQS", options);
  if (!aws) return Fail(aws.error());
  return std::unique_ptr<SqsClient>(new SqsClient(std::move(*aws)));
}

Result<std::string> SqsClient::CreateQueue(const std::string& name,
                                           const std::map<std::string, std::string>& attributes) {
  Json body = {{"QueueName", name}, {"Attributes", attributes}};
  auto answer = Call(*aws_, "CreateQueue", body, name);
  if (!answer) return Fail(answer.error());
  std::string url = JsonString(*answer, "QueueUrl");
  if (url.empty()) return Fail(fmt::format("SQS CreateQueue {}: the answer has no QueueUrl", name));
  return url;
}

Result<std::string> SqsClient::SendMessage(const std::string& queue_url, const std::string& body,
                                           const std::string& group_id,
                                           const std::string& dedup_id) {
  Json request = {{"QueueUrl", queue_url},
                  {"MessageBody", body},
                  {"MessageGroupId", group_id},
                  {"MessageDeduplicationId", dedup_id}};
  auto answer = Call(*aws_, "SendMessage", request, queue_url);
  if (!answer) return Fail(answer.error());
  return JsonString(*answer, "MessageId");
}

Result<std::vector<SqsMessage>> SqsClient::ReceiveMessage(const std::string& queue_url,
                                                          std::chrono::seconds wait,
                                                          std::chrono::seconds visibility) {
  Json request = {{"QueueUrl", queue_url},
                  {"MaxNumberOfMessages", 1},
                  {"WaitTimeSeconds", wait.count()},
                  {"VisibilityTimeout", visibility.count()},
                  {"AttributeNames", {"ApproximateReceiveCount"}},
                  {"MessageSystemAttributeNames", {"ApproximateReceiveCount"}}};
  auto answer = Call(*aws_, "ReceiveMessage", request, queue_url);
  if (!answer) return Fail(answer.error());
  std::vector<SqsMessage> messages;
  auto list = answer->find("Messages");
  if (list == answer->end() || !list->is_array()) return messages;
  for (const Json& item : *list) {
    if (!item.is_object()) continue;
    SqsMessage message;
    message.id = JsonString(item, "MessageId");
    message.receipt = JsonString(item, "ReceiptHandle");
    message.body = JsonString(item, "Body");
    auto attributes = item.find("Attributes");
    if (attributes != item.end() && attributes->is_object()) {
      std::string count = JsonString(*attributes, "ApproximateReceiveCount");
      std::from_chars(count.data(), count.data() + count.size(), message.receive_count);
    }
    if (message.receipt.empty()) {
      return Fail(
          fmt::format("SQS ReceiveMessage {}: a message without a ReceiptHandle", queue_url));
    }
    messages.push_back(std::move(message));
  }
  return messages;
}

Status SqsClient::ChangeMessageVisibility(const std::string& queue_url, const std::string& receipt,
                                          std::chrono::seconds visibility) {
  Json request = {{"QueueUrl", queue_url},
                  {"ReceiptHandle", receipt},
                  {"VisibilityTimeout", visibility.count()}};
  auto answer = Call(*aws_, "ChangeMessageVisibility", request, queue_url);
  if (!answer) return Fail(answer.error());
  return {};
}

Status SqsClient::DeleteMessage(const std::string& queue_url, const std::string& receipt) {
  Json request = {{"QueueUrl", queue_url}, {"ReceiptHandle", receipt}};
  auto answer = Call(*aws_, "DeleteMessage", request, queue_url);
  if (!answer) return Fail(answer.error());
  return {};
}

Result<std::map<std::string, std::string>> SqsClient::GetQueueAttributes(
    const std::string& queue_url, const std::vector<std::string>& names) {
  Json request = {{"QueueUrl", queue_url}, {"AttributeNames", names}};
  auto answer = Call(*aws_, "GetQueueAttributes", request, queue_url);
  if (!answer) return Fail(answer.error());
  std::map<std::string, std::string> attributes;
  auto found = answer->find("Attributes");
  if (found == answer->end() || !found->is_object()) return attributes;
  for (const auto& [name, value] : found->items()) {
    if (value.is_string()) attributes[name] = value.get<std::string>();
  }
  return attributes;
}

}  // namespace runner::aws
