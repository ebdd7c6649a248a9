#pragma once
/// @file
/// A seeded normal generator whose output is identical on every platform and standard library
/// (`std::normal_distribution` is implementation-defined; the Mersenne Twister engine is not).

#include <cmath>
#include <cstdint>
#include <numbers>
#include <random>

namespace froster {

class NormalRng {
 public:
  explicit NormalRng(std::uint64_t seed) : engine_(seed) {}

  /// Uniform in (0, 1), 53 random bits.
  double uniform() { return (double(engine_() >> 11) + 0.5) * 0x1.0p-53; }

  /// Standard normal by the Box-Muller transform, one value per call (the pair's second value is kept).
  double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double r = std::sqrt(-2.0 * std::log(uniform()));
    const double theta = 2.0 * std::numbers::pi * uniform();
    spare_ = r * std::sin(theta);
    has_spare_ = true;
    return r * std::cos(theta);
  }

 private:
  std::mt19937_64 engine_;
  double spare_ = 0;
  bool has_spare_ = false;
};

}  // namespace froster
