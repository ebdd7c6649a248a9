#pragma once
// The one place for test tolerances, and the comparison every test uses.
//
// A pair (actual, expected) passes when |actual - expected| <= rel * |expected| + abs_floor, with
// abs_floor = rel * max(max|expected| over the whole tensor, term_scale): elements are compared relatively, and entries far below
// the tensor's scale (where cancellation makes a relative comparison meaningless) against that scale. A failure
// reports the worst element, where it is, and both values.

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>

#include <froster/core/tensor_view.hpp>

namespace froster::test {

struct Tolerance {
  double rel;
  /// The magnitude of the terms that produced the result, where it exceeds the result's own (cancellation: a
  /// gradient that is analytically zero but computed as the difference of O(1) terms). Raises the floor.
  double term_scale = 0;

  Tolerance with_term_scale(double s) const { return {rel, s}; }
};

namespace tol {
/// fp32 results against a PyTorch fp32 fixture (the bar: 1e-5 relative).
inline constexpr Tolerance pytorch_fp32{1e-5};
/// Whole CLIP encoders in fp32 (features, every parameter gradient) against PyTorch fp32: the bar, 1e-4
/// relative, for results that pass through a dozen layers of reductions in a different order.
inline constexpr Tolerance pytorch_encoder_fp32{1e-4};
/// fp32 kernels against the reference backend's double-accumulating fp32 loops; grows with the reduction length.
inline Tolerance cross_backend_fp32(froster::index_t reduction_length) {
  return {2e-6 * std::sqrt(double(std::max<froster::index_t>(reduction_length, 1))) + 2e-6};
}
/// The same computation run twice (same code, backend and thread count): bitwise equal.
inline constexpr Tolerance identical{0.0};
/// double against double computed in another order.
inline constexpr Tolerance same_math_fp64{1e-12};
/// Central finite differences in double: |g - g_fd| / |g + g_fd| (see gradcheck.hpp).
inline constexpr double gradient_check = 1e-4;
}  // namespace tol

struct CloseReport {
  bool ok = true;
  std::string message;
};

/// A dense view of any rank as one row [1, numel] (weights of rank 4, for comparisons and gradient checks).
template <class T>
TensorView<T> flat(const TensorView<T>& v) {
  return TensorView<T>(v.data(), {1, v.numel()}, v.device());
}

/// Compares two host views of equal extents element by element: rank 1 or 2 with any strides, or dense views of
/// higher rank (compared as one row).
template <class A, class E>
CloseReport compare(const TensorView<A>& actual, const TensorView<E>& expected, Tolerance tol) {
  CloseReport report;
  if (!(actual.extents() == expected.extents())) {
    report.ok = false;
    report.message = "extents differ: actual " + actual.str() + ", expected " + expected.str();
    return report;
  }
  if (expected.rank() > 2) {
    if (!actual.is_contiguous() || !expected.is_contiguous()) {
      report.ok = false;
      report.message = "views of rank above 2 are compared only when dense: actual " + actual.str() + ", expected " +
                       expected.str();
      return report;
    }
    return compare(flat(actual), flat(expected), tol);
  }
  const bool matrix = expected.rank() == 2;
  const index_t rows = expected.rank() == 0 ? 0 : expected.extent(0), cols = matrix ? expected.extent(1) : 1;
  auto at = [&](const auto& v, index_t i, index_t j) { return matrix ? double(v(i, j)) : double(v(i)); };
  double scale = 0;
  for (index_t i = 0; i < rows; ++i)
    for (index_t j = 0; j < cols; ++j) scale = std::max(scale, std::abs(at(expected, i, j)));
  scale = std::max(scale, tol.term_scale);
  double worst_excess = -1;
  index_t wi = 0, wj = 0;
  for (index_t i = 0; i < rows; ++i)
    for (index_t j = 0; j < cols; ++j) {
      const double a = at(actual, i, j), e = at(expected, i, j);
      const double allowed = tol.rel * (std::abs(e) + scale);
      const double err = std::abs(a - e);
      const double excess = std::isnan(err) ? (std::isnan(a) && std::isnan(e) ? -1.0 : 1e300) : err / std::max(allowed, 1e-300);
      if (excess > worst_excess) {
        worst_excess = excess;
        wi = i;
        wj = j;
      }
    }
  report.ok = worst_excess <= 1.0;
  std::ostringstream out;
  out.precision(9);
  out << "worst element [" << wi << (matrix ? ", " + std::to_string(wj) : std::string()) << "]: actual "
      << (rows ? at(actual, wi, wj) : 0.0) << ", expected " << (rows ? at(expected, wi, wj) : 0.0)
      << " (error / allowed = " << worst_excess << ", rel = " << tol.rel << ", tensor scale = " << scale << ")";
  report.message = out.str();
  return report;
}

/// Scalar version of the same rule.
inline CloseReport compare(double actual, double expected, Tolerance tol) {
  CloseReport report;
  const double allowed = tol.rel * 2 * std::abs(expected) + 1e-300;
  report.ok = std::abs(actual - expected) <= allowed;
  std::ostringstream out;
  out.precision(12);
  out << "actual " << actual << ", expected " << expected << " (rel = " << tol.rel << ")";
  report.message = out.str();
  return report;
}

}  // namespace froster::test

/// REQUIRE that `actual` matches `expected` under `tolerance`, reporting the worst element on failure.
#define FROSTER_REQUIRE_CLOSE(actual, expected, tolerance)                                 \
  do {                                                                                     \
    const auto froster_report_ = ::froster::test::compare((actual), (expected), (tolerance)); \
    INFO(froster_report_.message);                                                         \
    REQUIRE(froster_report_.ok);                                                           \
  } while (false)
