#include "runner/worker_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>

namespace runner {
namespace {

TEST(WorkerPoolTest, RunsEveryTaskAndReturnsResults) {
  WorkerPool pool(3, 2);
  std::vector<std::future<int>> results;
  for (int i = 0; i < 50; ++i) results.push_back(pool.Submit([i] { return i * i; }));
  for (int i = 0; i < 50; ++i) EXPECT_EQ(results[i].get(), i * i);
}

TEST(WorkerPoolTest, PassesExceptionsThroughTheFuture) {
  WorkerPool pool(1, 1);
  auto result = pool.Submit([]() -> int { throw std::runtime_error("boom"); });
  EXPECT_THROW(result.get(), std::runtime_error);
}

TEST(WorkerPoolTest, CancelDropsQueuedTasks) {
  WorkerPool pool(1, 8);
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  std::atomic<int> ran = 0;
  std::promise<void> started;
  auto first = pool.Submit([gate, &ran, &started] {
    started.set_value();
    gate.wait();
    ++ran;
  });
  started.get_future().wait();
  auto second = pool.Submit([&ran] { ++ran; });
  pool.Cancel();
  release.set_value();
  first.get();
  EXPECT_THROW(second.get(), std::future_error);
  EXPECT_THROW(pool.Submit([] {}).get(), std::future_error);
  EXPECT_TRUE(pool.cancelled());
  EXPECT_EQ(ran, 1);
}

}  // namespace
}  // namespace runner
