// A thread of its own for work done now and then while something else runs: a heartbeat, logs
// shipped, a store polled.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

namespace runner {

// Runs `tick` at `first`, then at whatever time each run returns, until a run returns nullopt or
// the object is destroyed; Wake() makes the next run start at once. The destructor waits for a
// run under way to end: declare it after every member `tick` uses, so that it stops first.
class PeriodicThread {
 public:
  using Clock = std::chrono::steady_clock;
  using Tick = std::function<std::optional<Clock::time_point>()>;

  PeriodicThread(Clock::time_point first, Tick tick);
  ~PeriodicThread();
  PeriodicThread(const PeriodicThread&) = delete;
  PeriodicThread& operator=(const PeriodicThread&) = delete;

  void Wake();

 private:
  void Run();

  const Tick tick_;
  std::mutex mutex_;
  std::condition_variable wake_;
  Clock::time_point next_;  // guarded by mutex_
  bool woken_ = false;      // guarded by mutex_
  bool stop_ = false;       // guarded by mutex_
  std::thread thread_;
};

}  // namespace runner
