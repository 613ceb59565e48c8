// The shared build queue (runner/queue/message_queue.h): one contract, checked on a directory
// queue and on a real SQS FIFO queue of moto_server (skipped, saying so, where moto is absent):
// FIFO within a group, a held group holds back its later messages but not other groups,
// deduplication, a visibility that runs out, a message let go at once, deletion, and the
// dead-letter queue after too many receives.
#include "runner/queue/message_queue.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "runner/aws/sqs.h"
#include "tests/fake_http_client.h"
#include "tests/moto_server.h"
#include "tests/test_util.h"

namespace runner::queue {
namespace {

using std::chrono::seconds;

constexpr seconds kNoWait{0};

std::optional<Message> Take(MessageQueue& queue, seconds visibility = seconds(30)) {
  auto received = queue.Receive(seconds(1), visibility, nullptr);
  EXPECT_TRUE(received.has_value()) << received.error();
  return received ? *received : std::nullopt;
}

// Receives until a message comes, for at most `limit`.
std::optional<Message> AwaitMessage(MessageQueue& queue, seconds visibility, seconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto message = Take(queue, visibility)) return message;
  }
  return std::nullopt;
}

void CheckContract(MessageQueue& queue) {
  ASSERT_TRUE(queue.Send("a1", "group-a", "d1"));
  ASSERT_TRUE(queue.Send("a2", "group-a", "d2"));
  ASSERT_TRUE(queue.Send("b1", "group-b", "d3"));
  ASSERT_TRUE(queue.Send("a1 again", "group-a", "d1"));  // deduplicated

  auto first = Take(queue);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->body, "a1");
  EXPECT_EQ(first->receive_count, 1);
  // group-a is held: its a2 waits; group-b is free.
  auto second = Take(queue);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->body, "b1");
  EXPECT_FALSE(Take(queue));

  // Let go at once: a1 comes back before a2, received a second time.
  ASSERT_TRUE(queue.ChangeVisibility(first->receipt, kNoWait));
  auto again = Take(queue);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->body, "a1");
  EXPECT_EQ(again->receive_count, 2);

  ASSERT_TRUE(queue.Delete(again->receipt));
  ASSERT_TRUE(queue.Delete(second->receipt));
  auto next = Take(queue);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->body, "a2");

  // A visibility that runs out gives the message to the next receiver.
  ASSERT_TRUE(queue.ChangeVisibility(next->receipt, seconds(1)));
  auto reappeared = AwaitMessage(queue, seconds(30), seconds(15));
  ASSERT_TRUE(reappeared);
  EXPECT_EQ(reappeared->body, "a2");
  EXPECT_EQ(reappeared->receive_count, 2);
  ASSERT_TRUE(queue.Delete(reappeared->receipt));

  auto max_receives = queue.MaxReceives();
  ASSERT_TRUE(max_receives) << max_receives.error();
  EXPECT_EQ(*max_receives, 10);

  auto depth = queue.Depth();
  ASSERT_TRUE(depth) << depth.error();
  EXPECT_EQ(depth->visible, 0);
  EXPECT_EQ(depth->in_flight, 0);
}

TEST(DirectoryQueueTest, KeepsTheContract) {
  testing::TempDir dir;
  MessageQueueOptions options;
  options.max_receives = 10;
  auto queue = OpenMessageQueue("file://" + dir.path() + "/q", options);
  ASSERT_TRUE(queue) << queue.error();
  CheckContract(**queue);
}

TEST(DirectoryQueueTest, SharedByTwoOpensAsByTwoProcesses) {
  testing::TempDir dir;
  auto sender = OpenMessageQueue("file://" + dir.path() + "/q", {});
  auto receiver = OpenMessageQueue("file://" + dir.path() + "/q/", {});
  ASSERT_TRUE(sender && receiver);
  ASSERT_TRUE((*sender)->Send("x", "g", "d"));
  auto message = Take(**receiver);
  ASSERT_TRUE(message);
  EXPECT_EQ(message->body, "x");
  // The receipt of one is good for the other: it is the queue's, not the process's.
  EXPECT_TRUE((*sender)->Delete(message->receipt));
  EXPECT_FALSE((*receiver)->Delete(message->receipt));
}

// A directory queue in `dir` that moves a message to the dead letters after `max_receives`.
std::unique_ptr<MessageQueue> OpenDirectory(const testing::TempDir& dir, int max_receives) {
  MessageQueueOptions options;
  options.max_receives = max_receives;
  auto queue = OpenMessageQueue("file://" + dir.path(), options);
  EXPECT_TRUE(queue) << queue.error();
  return queue ? std::move(*queue) : nullptr;
}

TEST(DirectoryQueueTest, APoisonMessageGoesToDeadAfterMaxReceives) {
  testing::TempDir dir;
  auto queue = OpenDirectory(dir, 2);
  ASSERT_TRUE(queue);
  ASSERT_TRUE(queue->Send("poison", "g", "d"));
  for (int i = 1; i <= 2; ++i) {
    auto message = Take(*queue);
    ASSERT_TRUE(message);
    EXPECT_EQ(message->receive_count, i);
    ASSERT_TRUE(queue->ChangeVisibility(message->receipt, kNoWait));
  }
  EXPECT_FALSE(Take(*queue));
  EXPECT_TRUE(std::filesystem::exists(dir / "dead/000000000001.json"));
}

// The counter of sequence numbers damaged or gone: a new message still takes a number of its
// own, never one a waiting, held or dead message has.
TEST(DirectoryQueueTest, ADamagedCounterOverwritesNoMessage) {
  testing::TempDir dir;
  auto queue = OpenDirectory(dir, 1);
  ASSERT_TRUE(queue);
  for (const char* body : {"dead", "held", "ready"}) {
    ASSERT_TRUE(queue->Send(body, "g", body));
  }
  auto dead = Take(*queue);
  ASSERT_TRUE(dead);
  ASSERT_TRUE(queue->ChangeVisibility(dead->receipt, kNoWait));
  auto held = Take(*queue);  // moves the first to the dead letters on its way
  ASSERT_TRUE(held);
  EXPECT_EQ(held->body, "held");
  ASSERT_TRUE(std::filesystem::exists(dir / "dead/000000000001.json"));
  testing::WriteTextFile(dir / "seq", "garbage");
  ASSERT_TRUE(queue->Send("new", "other", "new"));
  std::filesystem::remove(dir / "seq");
  ASSERT_TRUE(queue->Send("newer", "another", "newer"));
  EXPECT_TRUE(std::filesystem::exists(dir / "ready/000000000004.json"));
  EXPECT_TRUE(std::filesystem::exists(dir / "ready/000000000005.json"));
  std::vector<std::string> bodies;
  ASSERT_TRUE(queue->Delete(held->receipt));
  while (auto message = Take(*queue)) {
    bodies.push_back(message->body);
    ASSERT_TRUE(queue->Delete(message->receipt));
  }
  EXPECT_EQ(bodies, (std::vector<std::string>{"ready", "new", "newer"}));
  EXPECT_NE(testing::ReadTextFile(dir / "dead/000000000001.json").find("dead"), std::string::npos);
}

TEST(DirectoryQueueTest, RefusesWhatIsNotAQueue) {
  auto queue = OpenMessageQueue("s3://bucket/queue", {});
  ASSERT_FALSE(queue);
  EXPECT_NE(queue.error().find("s3://bucket/queue"), std::string::npos);
  auto standard = OpenMessageQueue("https://sqs.eu-west-1.amazonaws.com/1/builds", {});
  ASSERT_FALSE(standard);
  EXPECT_NE(standard.error().find("FIFO"), std::string::npos);
}

TEST(SqsQueueUrlTest, RegionFromTheHost) {
  auto url = aws::ParseSqsQueueUrl("https://sqs.eu-west-1.amazonaws.com/111111111111/b.fifo");
  ASSERT_TRUE(url) << url.error();
  EXPECT_EQ(url->endpoint, "https://sqs.eu-west-1.amazonaws.com");
  EXPECT_EQ(url->region, "eu-west-1");
  EXPECT_EQ(url->name, "b.fifo");
  EXPECT_FALSE(aws::ParseSqsQueueUrl("https://sqs.eu-west-1.amazonaws.com/b.fifo"));
}

class SqsQueueMotoTest : public testing::MotoServerTest {
 protected:
  void SetUp() override {
    MotoServerTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    http_ = aws::MakeCurlHttpClient();
    aws::SqsOptions options;
    options.endpoint = moto().endpoint();
    auto client = aws::SqsClient::Create(*http_, credentials_, options);
    ASSERT_TRUE(client) << client.error();
    sqs_ = std::move(*client);
  }

  // A FIFO queue whose messages go to a dead-letter queue after `max_receives`.
  std::string MakeQueue(int max_receives) {
    auto dead = sqs_->CreateQueue("dead.fifo", {{"FifoQueue", "true"}});
    EXPECT_TRUE(dead) << dead.error();
    nlohmann::json redrive = {
        {"deadLetterTargetArn", "arn:aws:sqs:us-east-1:123456789012:dead.fifo"},
        {"maxReceiveCount", std::to_string(max_receives)}};
    auto url = sqs_->CreateQueue(
        "builds.fifo",
        {{"FifoQueue", "true"}, {"VisibilityTimeout", "30"}, {"RedrivePolicy", redrive.dump()}});
    EXPECT_TRUE(url) << url.error();
    return url ? *url : "";
  }

  Result<std::unique_ptr<MessageQueue>> Open(const std::string& url) {
    MessageQueueOptions options;
    options.http = http_.get();
    options.credentials = &credentials_;
    return OpenMessageQueue(url, options);
  }

  std::unique_ptr<aws::HttpClient> http_;
  aws::StaticCredentialsProvider credentials_{aws::TestCredentials()};
  std::unique_ptr<aws::SqsClient> sqs_;
};

TEST_F(SqsQueueMotoTest, KeepsTheContract) {
  auto queue = Open(MakeQueue(10));
  ASSERT_TRUE(queue) << queue.error();
  CheckContract(**queue);
}

TEST_F(SqsQueueMotoTest, APoisonMessageGoesToTheDeadLetterQueue) {
  auto queue = Open(MakeQueue(2));
  ASSERT_TRUE(queue) << queue.error();
  ASSERT_TRUE((*queue)->Send("poison", "g", "d"));
  for (int i = 1; i <= 2; ++i) {
    auto message = Take(**queue);
    ASSERT_TRUE(message);
    ASSERT_TRUE((*queue)->ChangeVisibility(message->receipt, kNoWait));
  }
  EXPECT_FALSE(Take(**queue));
  auto dead = Open(moto().endpoint() + "/123456789012/dead.fifo");
  ASSERT_TRUE(dead) << dead.error();
  auto message = Take(**dead);
  ASSERT_TRUE(message);
  EXPECT_EQ(message->body, "poison");
}

}  // namespace
}  // namespace runner::queue
