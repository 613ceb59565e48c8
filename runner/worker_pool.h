// A fixed number of worker threads fed through a bounded queue.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace runner {

// Thread-safe. Submit blocks while the queue holds `queue_limit` tasks, which bounds the memory
// of producers that run ahead of the workers. Tasks run in submission order (one per free
// worker). Cancel() (or destruction) drops the tasks not yet started: their futures report
// std::future_error (broken_promise); running tasks finish and are joined.
class WorkerPool {
 public:
  // REQUIRES: threads >= 1, queue_limit >= 1.
  WorkerPool(size_t threads, size_t queue_limit);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `task`; its result (or exception) arrives through the future. After Cancel() the
  // task is dropped at once.
  template <class F>
  std::future<std::invoke_result_t<F>> Submit(F task) {
    auto packaged =
        std::make_shared<std::packaged_task<std::invoke_result_t<F>()>>(std::move(task));
    std::future<std::invoke_result_t<F>> result = packaged->get_future();
    Enqueue([packaged] { (*packaged)(); });
    return result;
  }

  // Drops every queued task and refuses new ones; idempotent.
  void Cancel();
  bool cancelled() const;

 private:
  void Enqueue(std::function<void()> task);
  void Work();

  const size_t queue_limit_;
  mutable std::mutex mu_;
  std::condition_variable not_empty_;
  std::condition_variable not_full_;
  std::deque<std::function<void()>> queue_;
  bool cancelled_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace runner
