#include "runner/worker_pool.h"

namespace runner {

WorkerPool::WorkerPool(size_t threads, size_t queue_limit) : queue_limit_(queue_limit) {
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { Work(); });
}

WorkerPool::~WorkerPool() {
  Cancel();
  for (std::thread& thread : threads_) thread.join();
}

void WorkerPool::Cancel() {
  std::deque<std::function<void()>> dropped;
  {
    std::lock_guard lock(mu_);
    cancelled_ = true;
    dropped.swap(queue_);
  }
  not_empty_.notify_all();
  not_full_.notify_all();
  // `dropped` dies here, outside the lock: destroying a packaged task breaks its promise,
  // which wakes whoever waits on the future.
}

bool WorkerPool::cancelled() const {
  std::lock_guard lock(mu_);
  return cancelled_;
}

void WorkerPool::Enqueue(std::function<void()> task) {
  {
    std::unique_lock lock(mu_);
    not_full_.wait(lock, [&] { return cancelled_ || queue_.size() < queue_limit_; });
    if (cancelled_) return;  // `task` is destroyed on return: its future reports the drop
    queue_.push_back(std::move(task));
  }
  not_empty_.notify_one();
}

void WorkerPool::Work() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock lock(mu_);
      not_empty_.wait(lock, [&] { return cancelled_ || !queue_.empty(); });
      if (cancelled_) return;
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    not_full_.notify_one();
    task();
  }
}

}  // namespace runner
