#include "runner/periodic_thread.h"

#include <utility>

namespace runner {

PeriodicThread::PeriodicThread(Clock::time_point first, Tick tick)
    : tick_(std::move(tick)), next_(first), thread_([this] { Run(); }) {}

PeriodicThread::~PeriodicThread() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void PeriodicThread::Wake() {
  {
    std::lock_guard lock(mutex_);
    woken_ = true;
  }
  wake_.notify_all();
}

void PeriodicThread::Run() {
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait_until(lock, next_, [&] { return stop_ || woken_; });
    if (stop_) return;
    woken_ = false;
    lock.unlock();
    std::optional<Clock::time_point> next = tick_();
    lock.lock();
    if (!next) return;
    next_ = *next;
  }
}

}  // namespace runner
