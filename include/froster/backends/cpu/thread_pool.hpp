#pragma once
/// @file
/// A small fixed-size thread pool with static partitioning. `parallel_for(tasks, fn)` gives thread t the
/// contiguous chunk [t * tasks / n, (t + 1) * tasks / n): which thread runs which task depends only on the task
/// count and the pool size, so kernels that partition their output (never a reduction) by task are bitwise
/// reproducible run to run. The calling thread runs chunk 0; a parallel_for issued from inside a task runs serially.
///
/// Waiting spins briefly before it sleeps: a worker that finished a job watches for the next one for up to
/// `spin_time`, and the caller watches for the workers to finish, before either blocks on a condition variable.
/// Kernels come back to back (a transformer block is a dozen of them), and waking a sleeping thread costs a futex
/// call and, in a VM, waking the virtual CPU: ~15 us per parallel_for on the development machine, a sixth of a
/// 100 us row kernel. An idle pool stops spinning after `spin_time`, so it costs no CPU between bursts of work;
/// spinning threads yield every few microseconds, so a pool larger than the machine does not starve its workers.

#include <algorithm>
#include <atomic>
#include <chrono>
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
      stopping_.store(true, std::memory_order_release);
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
  }

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return size_; }

  /// How long a waiting thread spins before it sleeps (see the file comment).
  static constexpr std::chrono::microseconds spin_time{200};

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
    pending_.store(size_ - 1, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);  // publishes job_ to spinning workers
    lock.unlock();
    wake_.notify_all();  // no system call when no worker sleeps
    run_chunk(job, 0);
    if (!spin_until([&] { return pending_.load(std::memory_order_acquire) == 0; })) {
      lock.lock();
      done_.wait(lock, [&] { return pending_.load(std::memory_order_acquire) == 0; });
      lock.unlock();
    }
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

  /// Spins until done() or spin_time has passed; returns done().
  template <class Done>
  static bool spin_until(Done&& done) {
    const auto deadline = std::chrono::steady_clock::now() + spin_time;
    for (;;) {
      for (int i = 0; i < 64; ++i) {
        if (done()) return true;
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
      }
      if (std::chrono::steady_clock::now() >= deadline) return done();
      std::this_thread::yield();  // more threads than cores: let the ones with work run
    }
  }

  void work(int thread) {
    std::uint64_t seen = 0;
    for (;;) {
      const auto posted = [&] {
        return stopping_.load(std::memory_order_acquire) || generation_.load(std::memory_order_acquire) != seen;
      };
      if (!spin_until(posted)) {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, posted);
      }
      if (stopping_.load(std::memory_order_acquire)) return;
      seen = generation_.load(std::memory_order_acquire);
      run_chunk(*job_, thread);
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        // Under the mutex, so that the caller is either still to test pending_ or already waiting.
        std::lock_guard lock(mutex_);
        done_.notify_one();
      }
    }
  }

  int size_ = 1;
  std::vector<std::thread> workers_;
  std::mutex call_mutex_, mutex_;
  std::condition_variable wake_, done_;
  Job* job_ = nullptr;  // written before generation_'s release increment, read after its acquire load
  std::atomic<int> pending_{0};
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<bool> stopping_{false};
};

}  // namespace froster::cpu
