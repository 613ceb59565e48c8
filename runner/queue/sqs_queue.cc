#include "runner/queue/sqs_queue.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>

namespace runner::queue {

namespace {

// SQS's longest long poll.
constexpr std::chrono::seconds kMaxWait{20};

// SQS gives numbers as strings; 0 for anything else.
std::int64_t Number(std::string_view text) {
  std::int64_t value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value;
}

std::int64_t Number(const std::map<std::string, std::string>& attributes, const char* name) {
  auto it = attributes.find(name);
  return it == attributes.end() ? 0 : Number(it->second);
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

  Result<int> MaxReceives() override {
    auto attributes = client_->GetQueueAttributes(url_, {"RedrivePolicy"});
    if (!attributes) return Fail(attributes.error());
    auto policy = attributes->find("RedrivePolicy");
    if (policy == attributes->end()) return 0;
    nlohmann::json parsed = nlohmann::json::parse(policy->second, nullptr, false);
    // maxReceiveCount is a number, or a string holding one, as the console writes it.
    if (!parsed.is_object()) return 0;
    const nlohmann::json& count = parsed["maxReceiveCount"];
    if (count.is_number_integer()) return count.get<int>();
    if (count.is_string()) return static_cast<int>(Number(count.get<std::string>()));
    return 0;
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
