// Small concurrency helpers for pack and verify: a pool that runs GETs and hands back futures,
// and a parallel loop over indices. Both join their threads before they go away.
#pragma once

#include <atomic>
#include <functional>
#include <future>
#include <thread>
#include <vector>

#include "transfer/work_queue.h"

namespace trainfeed {

// Runs submitted tasks on `threads` threads; Submit blocks while `threads` tasks wait. A task's
// future may be dropped unread. Thread-safe.
class TaskPool {
 public:
  explicit TaskPool(int threads) : queue_(static_cast<size_t>(threads > 0 ? threads : 1)) {
    for (int i = 0; i < (threads > 0 ? threads : 1); ++i) {
      workers_.emplace_back([this] {
        while (std::optional<std::function<void()>> task = queue_.Pop()) (*task)();
      });
    }
  }
  ~TaskPool() {
    queue_.Close();
    for (std::thread& t : workers_) t.join();
  }
  TaskPool(const TaskPool&) = delete;
  TaskPool& operator=(const TaskPool&) = delete;

  template <typename T>
  std::future<T> Submit(std::function<T()> fn) {
    auto task = std::make_shared<std::packaged_task<T()>>(std::move(fn));
    std::future<T> future = task->get_future();
    queue_.Push([task] { (*task)(); });
    return future;
  }

 private:
  WorkQueue<std::function<void()>> queue_;
  std::vector<std::thread> workers_;
};

// Calls fn(i) for every i in [0, count) on up to `threads` threads; returns when all are done.
inline void ParallelFor(size_t count, int threads, const std::function<void(size_t)>& fn) {
  std::atomic<size_t> next{0};
  auto loop = [&] {
    for (size_t i = next++; i < count; i = next++) fn(i);
  };
  size_t n = std::min<size_t>(count, static_cast<size_t>(threads > 0 ? threads : 1));
  std::vector<std::thread> workers;
  for (size_t t = 1; t < n; ++t) workers.emplace_back(loop);
  loop();
  for (std::thread& t : workers) t.join();
}

}  // namespace trainfeed
