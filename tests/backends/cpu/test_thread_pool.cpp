// The CPU backend's thread pool: every task runs once, on the thread its static chunk names, whether the workers
// are spinning (calls back to back) or asleep (calls further apart than ThreadPool::spin_time); exceptions reach
// the caller; nested calls run serially; pools larger than the machine finish. And the row kernels' scheduler on
// top of it (rows_driver::run_dynamic): each task once, a thread's own share first, a stalled thread's share
// finished by the others.

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include <froster/backends/cpu/rows.hpp>
#include <froster/backends/cpu/thread_pool.hpp>

namespace {

using froster::index_t;
using froster::cpu::ThreadPool;

/// Runs `tasks` tasks and checks each ran once, chunk t (of the static partition) on one thread, chunk 0 on the
/// caller's.
void require_static_partition(ThreadPool& pool, index_t tasks) {
  std::vector<std::atomic<int>> runs(static_cast<std::size_t>(tasks));
  std::vector<std::thread::id> ran_on(static_cast<std::size_t>(tasks));
  pool.parallel_for(tasks, [&](index_t i) {
    runs[std::size_t(i)].fetch_add(1);
    ran_on[std::size_t(i)] = std::this_thread::get_id();
  });
  const int n = pool.size();
  for (index_t i = 0; i < tasks; ++i) REQUIRE(runs[std::size_t(i)].load() == 1);
  for (int t = 0; t < n; ++t) {
    const index_t begin = tasks * t / n, end = tasks * (t + 1) / n;
    for (index_t i = begin; i < end; ++i) REQUIRE(ran_on[std::size_t(i)] == ran_on[std::size_t(begin)]);
    if (t == 0 && end > 0) REQUIRE(ran_on[0] == std::this_thread::get_id());
  }
}

}  // namespace

TEST_CASE("ThreadPool runs every task once on its static chunk's thread, spinning or asleep", "[cpu][thread_pool]") {
  // 5 threads exceed the 2 cores of the development machine: spinning threads must yield to the working ones.
  const int threads = GENERATE(1, 2, 3, 5);
  INFO(threads << " threads");
  ThreadPool pool(threads);
  REQUIRE(pool.size() == threads);
  for (int call = 0; call < 2000; ++call) require_static_partition(pool, index_t(1 + call % 37));  // back to back
  for (int call = 0; call < 3; ++call) {  // after the workers have gone to sleep
    std::this_thread::sleep_for(ThreadPool::spin_time * 3);
    require_static_partition(pool, 64);
  }
  pool.parallel_for(0, [](index_t) { FAIL("no task to run"); });
}

TEST_CASE("ThreadPool passes the first exception to the caller and stays usable", "[cpu][thread_pool]") {
  ThreadPool pool(3);
  for (int call = 0; call < 100; ++call) {
    CHECK_THROWS_WITH(pool.parallel_for(30, [](index_t i) {
      if (i == 25) throw std::runtime_error("task 25 failed");
    }),
                      "task 25 failed");
    require_static_partition(pool, 30);
  }
}

TEST_CASE("ThreadPool runs a parallel_for issued from inside a task on that task's thread", "[cpu][thread_pool]") {
  ThreadPool pool(2);
  std::atomic<int> inner{0}, elsewhere{0};
  pool.parallel_for(4, [&](index_t) {
    const auto outer = std::this_thread::get_id();
    pool.parallel_for(8, [&](index_t) {
      inner.fetch_add(1);
      if (std::this_thread::get_id() != outer) elsewhere.fetch_add(1);
    });
  });
  REQUIRE(inner.load() == 32);
  REQUIRE(elsewhere.load() == 0);
}

TEST_CASE("ThreadPool shuts down with its workers spinning or asleep", "[cpu][thread_pool]") {
  for (int i = 0; i < 50; ++i) {
    ThreadPool pool(3);
    std::atomic<int> runs{0};
    pool.parallel_for(3, [&](index_t) { runs.fetch_add(1); });
    if (i % 10 == 0) std::this_thread::sleep_for(ThreadPool::spin_time * 2);
    REQUIRE(runs.load() == 3);
  }  // each destructor must return: a hang fails the test by its CTest timeout
  CHECK_THROWS_AS(ThreadPool(-1), froster::ValueError);
}

TEST_CASE("run_dynamic runs each task once, its own share first, and finishes a stalled thread's share",
          "[cpu][thread_pool]") {
  using froster::cpu::rows_driver::run_dynamic;
  SECTION("every task once, for any task and thread count") {
    const int threads = GENERATE(1, 2, 3, 5);
    ThreadPool pool(threads);
    const froster::cpu::Context ctx{froster::cpu::Isa::scalar, &pool};
    for (const index_t tasks : {1, 2, 3, 7, 64}) {
      INFO(threads << " threads, " << tasks << " tasks");
      std::vector<std::atomic<int>> runs(static_cast<std::size_t>(tasks));
      run_dynamic(ctx, tasks, [&](index_t b) { runs[std::size_t(b)].fetch_add(1); });
      for (index_t b = 0; b < tasks; ++b) REQUIRE(runs[std::size_t(b)].load() == 1);
    }
  }
  SECTION("2 threads, 8 tasks: the first task of the worker's share waits for the 7 others") {
    // Shares: [0, 4) the caller's, [4, 8) the worker's. If the worker runs task 4, it stalls there until tasks 5-7
    // are done, which only the caller can do: a static split would never finish (the wait gives up after 10 s and
    // the test fails). The caller takes its own share first, so tasks 0-3 always run on it.
    ThreadPool pool(2);
    const froster::cpu::Context ctx{froster::cpu::Isa::scalar, &pool};
    for (int call = 0; call < 20; ++call) {
      std::atomic<int> done{0};
      std::vector<std::thread::id> ran_on(8);
      bool gave_up = false;
      run_dynamic(ctx, 8, [&](index_t b) {
        ran_on[std::size_t(b)] = std::this_thread::get_id();
        if (b == 4) {
          const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
          while (done.load() < 7 && !gave_up) {
            if (std::chrono::steady_clock::now() > deadline) gave_up = true;
            std::this_thread::yield();
          }
        }
        done.fetch_add(1);
      });
      REQUIRE_FALSE(gave_up);
      REQUIRE(done.load() == 8);
      for (index_t b = 0; b < 4; ++b) REQUIRE(ran_on[std::size_t(b)] == std::this_thread::get_id());
    }
  }
}
