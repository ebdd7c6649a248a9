#pragma once
/// @file
/// The thread count of froster's benchmarks: 2, the development machine's cores, on which the results tables were
/// measured, or FROSTER_BENCH_THREADS=n (1 measures the kernels without the pool's wake-up). The froster and the
/// comparison sides of a case run on the same count.

#include <algorithm>
#include <cstdlib>

namespace froster::bench {

inline int threads() {
  static const int count = [] {
    const char* env = std::getenv("FROSTER_BENCH_THREADS");
    return env != nullptr && *env != '\0' ? std::max(1, std::atoi(env)) : 2;
  }();
  return count;
}

}  // namespace froster::bench
