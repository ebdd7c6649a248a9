#pragma once
/// @file
/// The thread count of froster's benchmarks: 2, the development machine's cores, on which the results tables were
/// measured, or FROSTER_BENCH_THREADS=n (1 measures the kernels without the pool's wake-up; 0 means every hardware
/// thread). The froster and the comparison sides of a case run on the same count.

#include <algorithm>
#include <cstdlib>
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

}  // namespace froster::bench
