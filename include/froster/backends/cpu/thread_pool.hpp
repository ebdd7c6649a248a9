#pragma once
/// @file
/// A small fixed-size thread pool with static partitioning. `parallel_for(tasks, fn)` gives thread t the
/// contiguous chunk [t * tasks / n, (t + 1) * tasks / n): which thread runs which task depends only on the task
/// count and the pool size, so kernels that partition their output (never a reduction) by task are bitwise
/// reproducible run to run. The calling thread runs chunk 0; a parallel_for issued from inside a task runs serially.

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "froster/core/error.hpp"
#include "froster/core/types.hpp"

namespace froster::cpu {

class ThreadPool {
 public:
  /// `threads` >= 1 (the caller counts as one); 0 means every hardware thread.
  explicit ThreadPool(int threads = 0) {
    require<ValueError>(threads >= 0, "ThreadPool: threads must be >= 0 (0 = all hardware threads), got ", threads);
    if (threads == 0) threads = std::max(1, int(std::thread::hardware_concurrency()));
    size_ = threads;
    workers_.reserve(std::size_t(threads - 1));
    for (int t = 1; t < threads; ++t) workers_.emplace_back([this, t] { work(t); });
  }

  ~ThreadPool() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
  }

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return size_; }

  /// Runs fn(task) for every task in [0, tasks); returns when all are done; rethrows the first exception.
  template <class F>
  void parallel_for(index_t tasks, F&& fn) {
    if (tasks <= 0) return;
    if (size_ == 1 || tasks == 1 || inside_task()) {
      for (index_t i = 0; i < tasks; ++i) fn(i);
      return;
    }
    std::lock_guard call(call_mutex_);  // one parallel_for at a time per pool, whoever calls it
    Job job{tasks, &fn, [](void* f, index_t begin, index_t end) {
              for (index_t i = begin; i < end; ++i) (*static_cast<F*>(f))(i);
            }};
    std::unique_lock lock(mutex_);
    job_ = &job;
    pending_ = size_ - 1;
    ++generation_;
    lock.unlock();
    wake_.notify_all();
    run_chunk(job, 0);
    lock.lock();
    done_.wait(lock, [&] { return pending_ == 0; });
    job_ = nullptr;
    if (job.error) std::rethrow_exception(job.error);
  }

 private:
  struct Job {
    index_t tasks;
    void* fn;
    void (*run)(void*, index_t, index_t);
    std::exception_ptr error{};
    std::mutex error_mutex{};
  };

  static bool& inside_task() {
    thread_local bool inside = false;
    return inside;
  }

  void run_chunk(Job& job, int thread) {
    const index_t begin = job.tasks * thread / size_, end = job.tasks * (thread + 1) / size_;
    inside_task() = true;
    try {
      job.run(job.fn, begin, end);
    } catch (...) {
      std::lock_guard lock(job.error_mutex);
      if (!job.error) job.error = std::current_exception();
    }
    inside_task() = false;
  }

  void work(int thread) {
    std::uint64_t seen = 0;
    for (;;) {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
      Job* job = job_;
      lock.unlock();
      run_chunk(*job, thread);
      lock.lock();
      if (--pending_ == 0) done_.notify_one();
    }
  }

  int size_ = 1;
  std::vector<std::thread> workers_;
  std::mutex call_mutex_, mutex_;
  std::condition_variable wake_, done_;
  Job* job_ = nullptr;
  int pending_ = 0;
  std::uint64_t generation_ = 0;
  bool stopping_ = false;
};

}  // namespace froster::cpu
