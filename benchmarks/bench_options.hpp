#pragma once
/// @file
/// Options shared by froster's benchmark binaries, read from the environment:
///   FROSTER_BENCH_THREADS=n  the thread count: 2 by default, the development machine's cores, on which the results
///                            tables were measured (1 measures the kernels without the pool's wake-up; 0 means every
///                            hardware thread). The froster and the comparison sides of a case run on the same count.
///   FROSTER_BENCH_SMOKE=1    one short repetition of every case instead of the measured runs: the tests
///                            `froster_bench_*_smoke` (benchmarks/CMakeLists.txt) run each binary this way, so a
///                            case that throws, crashes or reports an error fails the test suite.

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace froster::bench {

inline int threads() {
  static const int count = [] {
    const char* env = std::getenv("FROSTER_BENCH_THREADS");
    if (env == nullptr || *env == '\0') return 2;
    const int n = std::atoi(env);
    return n > 0 ? n : std::max(1, int(std::thread::hardware_concurrency()));
  }();
  return count;
}

inline bool smoke() {
  static const bool on = [] {
    const char* env = std::getenv("FROSTER_BENCH_SMOKE");
    return env != nullptr && std::strcmp(env, "1") == 0;
  }();
  return on;
}

/// Every case registers through this, after its own MinTime/Repetitions: under FROSTER_BENCH_SMOKE=1 it runs one
/// repetition that one iteration ends (Google Benchmark's per-case settings override the command line's).
inline benchmark::internal::Benchmark* apply_smoke_mode(benchmark::internal::Benchmark* b) {
  if (smoke()) b->MinTime(1e-6)->Repetitions(1);
  return b;
}

}  // namespace froster::bench
