// The records of many machines (runner/worker/records.h) on a directory and on moto_server's
// S3 (skipped, saying so, where moto is absent): build numbers claimed by racing claimants are
// never the same and never skip back, a delivery is marked once, attempts count up, and S3
// answers a conditional write of an existing key with 412 (what the claims rely on).
#include "runner/worker/records.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "tests/fake_http_client.h"
#include "tests/moto_server.h"
#include "tests/test_util.h"

namespace runner::worker {
namespace {

// Four claimants, each with a Records of its own (as on four machines), take 40 numbers.
void CheckClaims(const std::function<std::unique_ptr<Records>()>& open) {
  std::vector<std::unique_ptr<Records>> claimants;
  for (int i = 0; i < 4; ++i) claimants.push_back(open());
  std::mutex mutex;
  std::vector<std::int64_t> numbers;
  std::vector<std::thread> threads;
  for (auto& records : claimants) {
    threads.emplace_back([&, raw = records.get()] {
      for (int i = 0; i < 10; ++i) {
        auto number = raw->ClaimNumber("orders", "main");
        ASSERT_TRUE(number) << number.error();
        std::lock_guard lock(mutex);
        numbers.push_back(*number);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  std::set<std::int64_t> unique(numbers.begin(), numbers.end());
  EXPECT_EQ(unique.size(), 40u);
  EXPECT_EQ(*unique.begin(), 1);
  EXPECT_EQ(*unique.rbegin(), 40);
  // A new claimant continues after the last.
  auto next = open()->ClaimNumber("orders", "feature/x");
  ASSERT_TRUE(next);
  EXPECT_EQ(*next, 41);
  auto ids = open()->BuildIds(2);
  ASSERT_TRUE(ids) << ids.error();
  EXPECT_EQ(*ids, (std::vector<std::string>{"orders-main-40", "orders-feature-x-41"}));

  // Two projects spelling one id: "a" on branch "b-1" and "a-b" on "1". The second passes
  // number 1 over, and each build keeps an id of its own.
  auto first = open()->ClaimNumber("a", "b-1");
  ASSERT_TRUE(first) << first.error();
  EXPECT_EQ(*first, 1);
  auto second = open()->ClaimNumber("a-b", "1");
  ASSERT_TRUE(second) << second.error();
  EXPECT_EQ(*second, 2);
  auto third = open()->ClaimNumber("a-b", "main");
  ASSERT_TRUE(third);
  EXPECT_EQ(*third, 3);
  auto spelled = open()->BuildIds(5);
  ASSERT_TRUE(spelled);
  EXPECT_EQ(std::count(spelled->begin(), spelled->end(), "a-b-1-1"), 1)
      << ::testing::PrintToString(*spelled);
  EXPECT_EQ(std::count(spelled->begin(), spelled->end(), "a-b-1-2"), 1);
}

void CheckMarks(Records& records) {
  auto first = records.MarkDelivery("d-1", R"({"id":"orders-main-1"})");
  ASSERT_TRUE(first) << first.error();
  EXPECT_TRUE(*first);
  auto again = records.MarkDelivery("d-1", "{}");
  ASSERT_TRUE(again);
  EXPECT_FALSE(*again);
  auto body = records.Delivery("d-1");
  ASSERT_TRUE(body && *body);
  EXPECT_EQ(**body, R"({"id":"orders-main-1"})");
  auto none = records.Delivery("d-2");
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none);

  EXPECT_EQ(records.Head("orders", "main").value_or(-1), 0);
  ASSERT_TRUE(records.SetHead("orders", "main", 7));
  EXPECT_EQ(records.Head("orders", "main").value_or(-1), 7);

  EXPECT_EQ(records.LatestAttempt("orders-main-1").value_or(-1), 0);
  EXPECT_EQ(records.ClaimAttempt("orders-main-1", "{}").value_or(-1), 1);
  EXPECT_EQ(records.ClaimAttempt("orders-main-1", "{}").value_or(-1), 2);
  EXPECT_EQ(records.LatestAttempt("orders-main-1").value_or(-1), 2);
}

std::unique_ptr<Records> OpenLocal(const std::string& dir) {
  auto store = OpenArtifactStore("file://" + dir, {});
  EXPECT_TRUE(store) << store.error();
  return std::make_unique<Records>(std::move(*store));
}

TEST(RecordsTest, NumbersOnADirectory) {
  testing::TempDir dir;
  CheckClaims([&] { return OpenLocal(dir.path()); });
}

TEST(RecordsTest, MarksOnADirectory) {
  testing::TempDir dir;
  CheckMarks(*OpenLocal(dir.path()));
}

class RecordsMotoTest : public testing::MotoServerTest {
 protected:
  void SetUp() override {
    MotoServerTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    http_ = aws::MakeCurlHttpClient();
    Status made = moto().CreateBucket(*http_, credentials_, "records");
    ASSERT_TRUE(made) << made.error();
  }

  std::unique_ptr<Records> Open() {
    ArtifactStoreOptions options;
    options.endpoint = moto().endpoint();
    options.http = http_.get();
    options.credentials = &credentials_;
    auto store = OpenArtifactStore("s3://records/runner/", options);
    EXPECT_TRUE(store) << store.error();
    return std::make_unique<Records>(std::move(*store));
  }

  std::unique_ptr<aws::HttpClient> http_;
  aws::StaticCredentialsProvider credentials_{aws::TestCredentials()};
};

TEST_F(RecordsMotoTest, S3RefusesAConditionalWriteOfAnExistingKey) {
  auto records = Open();
  auto first = records->store().PutIfAbsent("k", "one", "text/plain");
  ASSERT_TRUE(first) << first.error();
  EXPECT_TRUE(first->has_value());
  auto second = records->store().PutIfAbsent("k", "two", "text/plain");
  ASSERT_TRUE(second) << second.error();  // the 412, as "taken"
  EXPECT_FALSE(second->has_value());
  EXPECT_EQ(records->store().Get("k").value_or(""), "one");
}

TEST_F(RecordsMotoTest, Numbers) {
  CheckClaims([&] { return Open(); });
}

TEST_F(RecordsMotoTest, Marks) { CheckMarks(*Open()); }

}  // namespace
}  // namespace runner::worker
