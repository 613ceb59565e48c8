#include "runner/serve/build_queue.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/test_util.h"

namespace runner::serve {
namespace {

namespace fs = std::filesystem;
using State = QueueEntry::State;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

NewBuild Push(const std::string& branch, const std::string& delivery,
              const std::string& project = "orders",
              const std::string& repository = "acme/orders") {
  NewBuild build;
  build.repository = repository;
  build.project = project;
  build.branch = branch;
  build.ref = "refs/heads/" + branch;
  build.event = "push";
  build.before = "1111111111111111111111111111111111111111";
  build.after = "2222222222222222222222222222222222222222";
  build.default_branch = "main";
  build.delivery = delivery;
  return build;
}

std::unique_ptr<BuildQueue> MustOpen(const std::string& dir) {
  Result<std::unique_ptr<BuildQueue>> queue = BuildQueue::Open(dir);
  EXPECT_TRUE(queue.has_value()) << queue.error();
  return queue ? std::move(*queue) : nullptr;
}

Enqueued MustEnqueue(BuildQueue& queue, const NewBuild& build) {
  Result<Enqueued> enqueued = queue.Enqueue(build);
  EXPECT_TRUE(enqueued.has_value()) << enqueued.error();
  return enqueued ? *enqueued : Enqueued{};
}

std::string MustStart(BuildQueue& queue) {
  Result<std::optional<QueueEntry>> started = queue.StartNext();
  EXPECT_TRUE(started.has_value()) << started.error();
  if (!started || !*started) {
    ADD_FAILURE() << "nothing queued";
    return "";
  }
  return (*started)->id;
}

std::vector<std::string> Ids(const std::vector<QueueEntry>& entries) {
  std::vector<std::string> ids;
  for (const QueueEntry& entry : entries) ids.push_back(entry.id);
  return ids;
}

class BuildQueueTest : public ::testing::Test {
 protected:
  std::string Dir() const { return tmp_ / "queue"; }
  std::string EntryFile(int seq) const {
    char name[32];
    std::snprintf(name, sizeof name, "%012d.json", seq);
    return Dir() + "/entries/" + name;
  }

  testing::TempDir tmp_;
};

TEST_F(BuildQueueTest, StartsBuildsInTheOrderTheyWereAccepted) {
  auto queue = MustOpen(Dir());
  ASSERT_NE(queue, nullptr);
  int delivery = 0;
  for (const char* branch : {"main", "feature/login", "dev"}) {
    MustEnqueue(*queue, Push(branch, std::to_string(++delivery)));
  }
  EXPECT_EQ(queue->queued(), 3u);
  EXPECT_EQ(MustStart(*queue), "orders-main-1");
  EXPECT_EQ(MustStart(*queue), "orders-feature-login-2");
  EXPECT_EQ(MustStart(*queue), "orders-dev-3");
  Result<std::optional<QueueEntry>> none = queue->StartNext();
  ASSERT_TRUE(none.has_value()) << none.error();
  EXPECT_FALSE(none->has_value());
  EXPECT_EQ(queue->running(), 3u);
}

TEST_F(BuildQueueTest, NumbersArePerProjectAndNeverRepeatAcrossReopen) {
  {
    auto queue = MustOpen(Dir());
    ASSERT_NE(queue, nullptr);
    EXPECT_EQ(MustEnqueue(*queue, Push("main", "a")).entry.id, "orders-main-1");
    EXPECT_EQ(MustEnqueue(*queue, Push("dev", "b")).entry.id, "orders-dev-2");
    Enqueued billing = MustEnqueue(*queue, Push("main", "c", "billing", "acme/billing"));
    EXPECT_EQ(billing.entry.id, "billing-main-1");
    EXPECT_EQ(billing.entry.seq, 3);
  }
  auto queue = MustOpen(Dir());
  ASSERT_NE(queue, nullptr);
  Enqueued orders = MustEnqueue(*queue, Push("main", "d"));
  EXPECT_EQ(orders.entry.number, 3);
  EXPECT_EQ(orders.entry.seq, 4);
  EXPECT_EQ(MustEnqueue(*queue, Push("main", "e", "billing", "acme/billing")).entry.id,
            "billing-main-2");
}

TEST_F(BuildQueueTest, DuplicateDeliveryIsNotQueuedTwiceAlsoAfterReopen) {
  const std::string delivery = "72d3162e-cc78-11e3-81ab-4c9367dc0958";
  {
    auto queue = MustOpen(Dir());
    ASSERT_NE(queue, nullptr);
    Enqueued first = MustEnqueue(*queue, Push("main", delivery));
    EXPECT_FALSE(first.duplicate);
    Enqueued again = MustEnqueue(*queue, Push("main", delivery));
    EXPECT_TRUE(again.duplicate);
    EXPECT_EQ(again.entry.id, "orders-main-1");
    EXPECT_EQ(queue->queued(), 1u);

    Result<bool> marked = queue->MarkDelivery("ping-1");
    ASSERT_TRUE(marked.has_value()) << marked.error();
    EXPECT_TRUE(*marked);
    EXPECT_FALSE(queue->MarkDelivery("ping-1").value());
    EXPECT_FALSE(queue->MarkDelivery(delivery).value());
  }
  auto queue = MustOpen(Dir());
  ASSERT_NE(queue, nullptr);
  Enqueued redelivered = MustEnqueue(*queue, Push("main", delivery));
  EXPECT_TRUE(redelivered.duplicate);
  EXPECT_EQ(redelivered.entry.id, "orders-main-1");
  Enqueued marked = MustEnqueue(*queue, Push("main", "ping-1"));
  EXPECT_TRUE(marked.duplicate);
  EXPECT_EQ(marked.entry.id, "");
  EXPECT_FALSE(queue->MarkDelivery("ping-1").value());
  EXPECT_EQ(queue->queued(), 1u);
  EXPECT_EQ(queue->List(10).size(), 1u);
}

TEST_F(BuildQueueTest, NewerPushSkipsQueuedBuildsOfItsBranchOnlyAndReportsRunningOnes) {
  auto queue = MustOpen(Dir());
  ASSERT_NE(queue, nullptr);
  MustEnqueue(*queue, Push("main", "1"));
  ASSERT_EQ(MustStart(*queue), "orders-main-1");
  MustEnqueue(*queue, Push("main", "2"));
  MustEnqueue(*queue, Push("feature", "3"));
  MustEnqueue(*queue, Push("main", "4", "fork", "other/orders"));
  NewBuild tag = Push("main", "5");
  tag.ref = "refs/tags/main";
  tag.event = "tag";
  MustEnqueue(*queue, tag);

  Enqueued newest = MustEnqueue(*queue, Push("main", "6"));
  EXPECT_EQ(newest.entry.id, "orders-main-5");
  EXPECT_THAT(Ids(newest.superseded), ElementsAre("orders-main-2"));
  EXPECT_THAT(Ids(newest.running_same_branch), ElementsAre("orders-main-1"));

  std::optional<QueueEntry> skipped = queue->Find("orders-main-2");
  ASSERT_TRUE(skipped.has_value());
  EXPECT_EQ(skipped->state, State::kSkipped);
  EXPECT_EQ(skipped->reason, "superseded by orders-main-5");
  EXPECT_EQ(queue->Find("orders-feature-3")->state, State::kQueued);
  EXPECT_EQ(queue->Find("fork-main-1")->state, State::kQueued);
  EXPECT_EQ(queue->Find("orders-main-4")->state, State::kQueued);  // the tag
  EXPECT_EQ(queue->Find("orders-main-1")->state, State::kRunning);
  EXPECT_EQ(queue->queued(), 4u);
}

TEST_F(BuildQueueTest, StartNextAndFinishRecordTheLifecycle) {
  {
    auto queue = MustOpen(Dir());
    ASSERT_NE(queue, nullptr);
    Result<std::optional<QueueEntry>> none = queue->StartNext();
    ASSERT_TRUE(none.has_value()) << none.error();
    EXPECT_FALSE(none->has_value());

    Enqueued queued = MustEnqueue(*queue, Push("main", "a"));
    EXPECT_EQ(queued.entry.state, State::kQueued);
    EXPECT_FALSE(queued.entry.enqueued_at.empty());
    EXPECT_TRUE(queued.entry.started_at.empty());

    Result<std::optional<QueueEntry>> started = queue->StartNext();
    ASSERT_TRUE(started.has_value() && started->has_value());
    EXPECT_EQ((*started)->state, State::kRunning);
    EXPECT_FALSE((*started)->started_at.empty());
    EXPECT_EQ(queue->queued(), 0u);
    EXPECT_EQ(queue->running(), 1u);

    EXPECT_THAT(queue->Finish("orders-main-1", "exploded").error(), HasSubstr("unknown result"));
    EXPECT_THAT(queue->Finish("orders-main-9", "success").error(), HasSubstr("not in the queue"));
    Status finished = queue->Finish("orders-main-1", "failed");
    ASSERT_TRUE(finished.has_value()) << finished.error();
    EXPECT_THAT(queue->Finish("orders-main-1", "success").error(), HasSubstr("not running"));
    EXPECT_EQ(queue->running(), 0u);
  }
  auto queue = MustOpen(Dir());
  ASSERT_NE(queue, nullptr);
  std::optional<QueueEntry> entry = queue->Find("orders-main-1");
  ASSERT_TRUE(entry.has_value());
  EXPECT_EQ(entry->state, State::kFinished);
  EXPECT_EQ(entry->result, "failed");
  EXPECT_FALSE(entry->finished_at.empty());
  EXPECT_EQ(StateName(entry->state), "finished");
}

TEST_F(BuildQueueTest, ReopenKeepsQueuedInOrderAndAbandonsRunning) {
  {
    auto queue = MustOpen(Dir());
    ASSERT_NE(queue, nullptr);
    for (const char* branch : {"main", "feature", "dev"}) {
      MustEnqueue(*queue, Push(branch, branch));
    }
    ASSERT_EQ(MustStart(*queue), "orders-main-1");
  }  // the server stops while orders-main-1 runs
  auto queue = MustOpen(Dir());
  ASSERT_NE(queue, nullptr);
  std::optional<QueueEntry> abandoned = queue->Find("orders-main-1");
  ASSERT_TRUE(abandoned.has_value());
  EXPECT_EQ(abandoned->state, State::kAbandoned);
  EXPECT_THAT(abandoned->reason, HasSubstr("stopped while the build ran"));
  ASSERT_EQ(queue->abandoned_at_open().size(), 1u);
  EXPECT_EQ(queue->abandoned_at_open()[0].id, "orders-main-1");
  EXPECT_EQ(queue->running(), 0u);
  EXPECT_EQ(queue->queued(), 2u);
  EXPECT_EQ(MustStart(*queue), "orders-feature-2");
  EXPECT_EQ(MustStart(*queue), "orders-dev-3");
}

TEST_F(BuildQueueTest, ReopenFinishesASupersessionThatACrashCutShort) {
  std::string queued_text;
  {
    auto queue = MustOpen(Dir());
    ASSERT_NE(queue, nullptr);
    MustEnqueue(*queue, Push("main", "a"));
    queued_text = testing::ReadTextFile(EntryFile(1));
    MustEnqueue(*queue, Push("main", "b"));
  }
  // As if the server died after writing orders-main-2 but before skipping orders-main-1.
  testing::WriteTextFile(EntryFile(1), queued_text);
  auto queue = MustOpen(Dir());
  ASSERT_NE(queue, nullptr);
  EXPECT_EQ(queue->Find("orders-main-1")->reason, "superseded by orders-main-2");
  EXPECT_EQ(queue->queued(), 1u);
  EXPECT_EQ(MustStart(*queue), "orders-main-2");
}

TEST_F(BuildQueueTest, RerunQueuesTheSameCommitUnderANewNumber) {
  auto queue = MustOpen(Dir());
  ASSERT_NE(queue, nullptr);
  MustEnqueue(*queue, Push("main", "a"));
  ASSERT_EQ(MustStart(*queue), "orders-main-1");
  ASSERT_TRUE(queue->Finish("orders-main-1", "failed").has_value());
  MustEnqueue(*queue, Push("main", "b"));

  Result<QueueEntry> rerun = queue->Rerun("orders-main-1");
  ASSERT_TRUE(rerun.has_value()) << rerun.error();
  EXPECT_EQ(rerun->id, "orders-main-3");
  EXPECT_EQ(rerun->seq, 3);
  EXPECT_EQ(rerun->after, "2222222222222222222222222222222222222222");
  EXPECT_EQ(rerun->rerun_of, "orders-main-1");
  EXPECT_EQ(rerun->delivery, "rerun:orders-main-1:3");
  EXPECT_EQ(rerun->state, State::kQueued);
  // A rerun is no push: the queued push of the branch still runs.
  EXPECT_EQ(queue->Find("orders-main-2")->state, State::kQueued);
  EXPECT_THAT(queue->Rerun("orders-main-2").error(), HasSubstr("still queued"));
  EXPECT_THAT(queue->Rerun("orders-main-7").error(), HasSubstr("not in the queue"));

  queue.reset();
  queue = MustOpen(Dir());
  ASSERT_NE(queue, nullptr);
  EXPECT_EQ(queue->queued(), 2u);
  EXPECT_EQ(queue->Find("orders-main-3")->rerun_of, "orders-main-1");
}

TEST_F(BuildQueueTest, SkipCancelsAQueuedBuildOnly) {
  {
    auto queue = MustOpen(Dir());
    ASSERT_NE(queue, nullptr);
    MustEnqueue(*queue, Push("main", "a"));
    MustEnqueue(*queue, Push("dev", "b"));
    ASSERT_EQ(MustStart(*queue), "orders-main-1");
    EXPECT_THAT(queue->Skip("orders-main-1", "no").error(), HasSubstr("not queued"));
    EXPECT_THAT(queue->Skip("orders-main-9", "no").error(), HasSubstr("not in the queue"));
    Status skipped = queue->Skip("orders-dev-2", "cancelled by alice");
    ASSERT_TRUE(skipped.has_value()) << skipped.error();
    EXPECT_THAT(queue->Skip("orders-dev-2", "again").error(), HasSubstr("not queued"));
    EXPECT_EQ(queue->queued(), 0u);
  }
  auto queue = MustOpen(Dir());
  ASSERT_NE(queue, nullptr);
  std::optional<QueueEntry> entry = queue->Find("orders-dev-2");
  ASSERT_TRUE(entry.has_value());
  EXPECT_EQ(entry->state, State::kSkipped);
  EXPECT_EQ(entry->reason, "cancelled by alice");
  Result<std::optional<QueueEntry>> none = queue->StartNext();
  ASSERT_TRUE(none.has_value());
  EXPECT_FALSE(none->has_value());
}

TEST_F(BuildQueueTest, ListShowsNewestFirst) {
  auto queue = MustOpen(Dir());
  ASSERT_NE(queue, nullptr);
  for (int i = 1; i <= 5; ++i)
    MustEnqueue(*queue, Push("b" + std::to_string(i), std::to_string(i)));
  EXPECT_THAT(Ids(queue->List(3)), ElementsAre("orders-b5-5", "orders-b4-4", "orders-b3-3"));
  EXPECT_EQ(queue->List(100).size(), 5u);
  EXPECT_THAT(queue->List(0), IsEmpty());
}

TEST_F(BuildQueueTest, ConcurrentEnqueuesGetUniqueNumbersAndSurviveReopen) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 25;
  std::vector<std::vector<QueueEntry>> accepted(kThreads);
  {
    auto queue = MustOpen(Dir());
    ASSERT_NE(queue, nullptr);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        std::string project = t % 2 == 0 ? "orders" : "billing";
        for (int i = 0; i < kPerThread; ++i) {
          Result<Enqueued> enqueued = queue->Enqueue(
              Push("t" + std::to_string(t), std::to_string(t) + "." + std::to_string(i), project,
                   "acme/" + project));
          if (enqueued) accepted[t].push_back(enqueued->entry);
        }
      });
    }
    for (std::thread& thread : threads) thread.join();
    // Each thread pushes one branch, so only its last push is still queued.
    EXPECT_EQ(queue->queued(), static_cast<std::size_t>(kThreads));
  }
  std::set<std::int64_t> seqs;
  std::map<std::string, std::set<std::int64_t>> numbers;
  std::set<std::string> ids;
  for (const auto& entries : accepted) {
    EXPECT_EQ(entries.size(), static_cast<std::size_t>(kPerThread));
    for (const QueueEntry& entry : entries) {
      seqs.insert(entry.seq);
      numbers[entry.project].insert(entry.number);
      ids.insert(entry.id);
    }
  }
  EXPECT_EQ(seqs.size(), 200u);
  EXPECT_EQ(*seqs.begin(), 1);
  EXPECT_EQ(*seqs.rbegin(), 200);
  EXPECT_EQ(numbers["orders"].size(), 100u);
  EXPECT_EQ(*numbers["orders"].rbegin(), 100);
  EXPECT_EQ(numbers["billing"].size(), 100u);
  EXPECT_EQ(ids.size(), 200u);

  auto queue = MustOpen(Dir());
  ASSERT_NE(queue, nullptr);
  std::vector<QueueEntry> listed = queue->List(1000);
  ASSERT_EQ(listed.size(), 200u);
  std::set<std::string> reopened_ids;
  for (const QueueEntry& entry : listed) reopened_ids.insert(entry.id);
  EXPECT_EQ(reopened_ids, ids);
  EXPECT_EQ(queue->queued(), static_cast<std::size_t>(kThreads));
  EXPECT_EQ(MustEnqueue(*queue, Push("main", "after")).entry.seq, 201);
}

TEST_F(BuildQueueTest, HostileDeliveryIdsNeverBecomePaths) {
  auto queue = MustOpen(Dir());
  ASSERT_NE(queue, nullptr);
  const std::vector<std::string> hostile = {"../../etc/passwd",
                                            "..",
                                            ".",
                                            "",
                                            "a/b",
                                            std::string(10 * 1024, 'a'),
                                            std::string("abc\0/../../x", 12),
                                            "-rf",
                                            "\xff\xfe"};
  for (const std::string& delivery : hostile) {
    Result<Enqueued> enqueued = queue->Enqueue(Push("main", delivery));
    ASSERT_FALSE(enqueued.has_value()) << delivery.size();
    EXPECT_THAT(enqueued.error(), HasSubstr("delivery id refused"));
    Result<bool> marked = queue->MarkDelivery(delivery);
    ASSERT_FALSE(marked.has_value());
    EXPECT_THAT(marked.error(), HasSubstr("delivery id refused"));
  }
  EXPECT_EQ(queue->queued(), 0u);
  for (const fs::directory_entry& entry : fs::recursive_directory_iterator(tmp_.path())) {
    EXPECT_THAT(entry.path().string(), ::testing::StartsWith(Dir())) << "escaped the queue";
    EXPECT_NE(entry.path().filename(), "passwd");
  }
  EXPECT_TRUE(fs::is_empty(Dir() + "/deliveries"));
  EXPECT_TRUE(fs::is_empty(Dir() + "/entries"));
}

TEST_F(BuildQueueTest, RefusesABuildThatCannotBeNamed) {
  auto queue = MustOpen(Dir());
  ASSERT_NE(queue, nullptr);
  NewBuild no_commit = Push("main", "a");
  no_commit.after.clear();
  EXPECT_THAT(queue->Enqueue(no_commit).error(), HasSubstr("after is empty"));
  EXPECT_THAT(queue->Enqueue(Push("main", "b", "..")).error(), HasSubstr("cannot name a build"));
  EXPECT_THAT(queue->Enqueue(Push("ma\xffin", "c")).error(),
              HasSubstr("branch is not valid UTF-8"));
  EXPECT_EQ(queue->queued(), 0u);
}

TEST_F(BuildQueueTest, CorruptEntryFileMakesOpenFailNamingIt) {
  {
    auto queue = MustOpen(Dir());
    ASSERT_NE(queue, nullptr);
    MustEnqueue(*queue, Push("main", "a"));
    MustEnqueue(*queue, Push("dev", "b"));
  }
  std::string text = testing::ReadTextFile(EntryFile(2));
  testing::WriteTextFile(EntryFile(2), text.substr(0, text.size() / 2));
  Result<std::unique_ptr<BuildQueue>> truncated = BuildQueue::Open(Dir());
  ASSERT_FALSE(truncated.has_value());
  EXPECT_THAT(truncated.error(), HasSubstr("corrupt queue entry " + EntryFile(2)));

  testing::WriteTextFile(EntryFile(2), R"({"seq": 2, "state": "queued"})");
  Result<std::unique_ptr<BuildQueue>> incomplete = BuildQueue::Open(Dir());
  ASSERT_FALSE(incomplete.has_value());
  EXPECT_THAT(incomplete.error(), HasSubstr(EntryFile(2)));
  EXPECT_THAT(incomplete.error(), HasSubstr("'id' missing"));

  fs::remove(EntryFile(2));
  testing::WriteTextFile(Dir() + "/entries/notes.txt", "hello");
  Result<std::unique_ptr<BuildQueue>> stray = BuildQueue::Open(Dir());
  ASSERT_FALSE(stray.has_value());
  EXPECT_THAT(stray.error(), HasSubstr(Dir() + "/entries/notes.txt"));
}

TEST_F(BuildQueueTest, LeftoverTemporaryFileOfAnInterruptedWriteIsNoEntry) {
  {
    auto queue = MustOpen(Dir());
    ASSERT_NE(queue, nullptr);
    MustEnqueue(*queue, Push("main", "a"));
  }
  std::string leftover = Dir() + "/entries/.000000000002.json.tmp.Ab12Cd";
  testing::WriteTextFile(leftover, R"({"seq": 2, "st)");
  auto queue = MustOpen(Dir());
  ASSERT_NE(queue, nullptr);
  EXPECT_EQ(queue->List(10).size(), 1u);
  EXPECT_FALSE(fs::exists(leftover));
}

TEST_F(BuildQueueTest, OneQueuePerDirectory) {
  auto first = MustOpen(Dir());
  ASSERT_NE(first, nullptr);
  Result<std::unique_ptr<BuildQueue>> second = BuildQueue::Open(Dir());
  ASSERT_FALSE(second.has_value());
  EXPECT_THAT(second.error(), HasSubstr("in use by another runner serve"));
  first.reset();
  EXPECT_NE(MustOpen(Dir()), nullptr);
}

}  // namespace
}  // namespace runner::serve
