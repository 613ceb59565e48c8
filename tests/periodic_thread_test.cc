#include "runner/periodic_thread.h"

#include <gtest/gtest.h>

#include <atomic>

#include "tests/test_util.h"

namespace runner {
namespace {

using namespace std::chrono_literals;
using Clock = PeriodicThread::Clock;

TEST(PeriodicThreadTest, RunsWhenEachRunSaysUntilOneSaysNoMore) {
  std::atomic<int> runs{0};
  const auto start = Clock::now();
  std::vector<Clock::time_point> times;  // written by the thread alone
  {
    PeriodicThread thread(start + 50ms, [&]() -> std::optional<Clock::time_point> {
      times.push_back(Clock::now());
      if (++runs == 3) return std::nullopt;
      return Clock::now() + 50ms;
    });
    ASSERT_TRUE(testing::AwaitCondition([&] { return runs.load() == 3; }));
  }
  ASSERT_EQ(times.size(), 3u);
  EXPECT_GE(times[0] - start, 50ms);
  EXPECT_GE(times[1] - times[0], 50ms);
  EXPECT_GE(times[2] - times[1], 50ms);
}

TEST(PeriodicThreadTest, WakeRunsItAtOnceAndTheDestructorStopsIt) {
  std::atomic<int> runs{0};
  const auto start = Clock::now();
  {
    PeriodicThread thread(start + 1h, [&] {
      ++runs;
      return std::optional(Clock::now() + 1h);
    });
    thread.Wake();
    ASSERT_TRUE(testing::AwaitCondition([&] { return runs.load() == 1; }));
  }
  // Destroyed while waiting an hour for its next run: it did not wait for it.
  EXPECT_LT(Clock::now() - start, 30s);
  EXPECT_EQ(runs.load(), 1);
}

}  // namespace
}  // namespace runner
