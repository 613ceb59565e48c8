#include "runner/queue/sqs_queue.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

namespace runner::queue {

namespace {

// SQS's longest long poll.
constexpr std::chrono::seconds kMaxWait{20};

std::int64_t Number(const std::map<std::string, std::string>& attributes, const char* name) {
  auto it = attributes.find(name);
  std::int64_t value = 0;
  if (it != attributes.end()) {
    std::from_chars(it->second.data(), it->second.data() + it->second.size(), value);
  }
  return value;
}

class SqsQueue : public MessageQueue {
 public:
  SqsQueue(std::unique_ptr<aws::SqsClient> client, std::string url, std::shared_ptr<void> owned)
      : owned_(std::move(owned)), client_(std::move(client)), url_(std::move(url)) {}

  std::string Describe() const override { return url_; }

  Status Send(std::string_view body, std::string_view group, std::string_view dedup_id) override {
    auto sent =
        client_->SendMessage(url_, std::string(body), std::string(group), std::string(dedup_id));
    if (!sent) return Fail(sent.error());
    return {};
  }

  Result<std::optional<Message>> Receive(std::chrono::seconds wait, std::chrono::seconds visibility,
                                         const std::function<bool()>& cancelled) override {
    if (cancelled && cancelled()) return std::nullopt;
    auto received = client_->ReceiveMessage(url_, std::min(wait, kMaxWait), visibility);
    if (!received) return Fail(received.error());
    if (received->empty()) return std::nullopt;
    aws::SqsMessage& first = received->front();
    Message message;
    message.body = std::move(first.body);
    message.receipt = std::move(first.receipt);
    message.receive_count = first.receive_count;
    return message;
  }

  Status ChangeVisibility(const std::string& receipt, std::chrono::seconds visibility) override {
    return client_->ChangeMessageVisibility(url_, receipt, visibility);
  }

  Status Delete(const std::string& receipt) override {
    return client_->DeleteMessage(url_, receipt);
  }

  Result<QueueDepth> Depth() override {
    auto attributes = client_->GetQueueAttributes(
        url_, {"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"});
    if (!attributes) return Fail(attributes.error());
    QueueDepth depth;
    depth.visible = Number(*attributes, "ApproximateNumberOfMessages");
    depth.in_flight = Number(*attributes, "ApproximateNumberOfMessagesNotVisible");
    return depth;
  }

 private:
  std::shared_ptr<void> owned_;  // destroyed last
  std::unique_ptr<aws::SqsClient> client_;
  std::string url_;
};

}  // namespace

std::unique_ptr<MessageQueue> MakeSqsQueue(std::unique_ptr<aws::SqsClient> client,
                                           std::string queue_url, std::shared_ptr<void> owned) {
  return std::make_unique<SqsQueue>(std::move(client), std::move(queue_url), std::move(owned));
}

}  // namespace runner::queue
