#pragma once
// Finite-difference gradient checks in double: central differences, relative error |g - g_fd| / |g + g_fd|
// (the denominator floored at 1e-7, where both are ~0 and only round-off is left), bound tol::gradient_check.

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>

#include <froster/core/tensor_view.hpp>

#include "support/tolerance.hpp"

namespace froster::test {

struct GradientReport {
  bool ok = true;
  std::string message;
};

namespace detail {
inline void track(double analytic, double numeric, const std::string& where, double& worst, std::string& worst_at,
                  double& worst_a, double& worst_n) {
  const double rel = std::abs(analytic - numeric) / std::max(std::abs(analytic + numeric), 1e-7);
  if (!(rel <= worst)) {  // NaN counts as worst
    worst = std::isnan(rel) ? 1e300 : rel;
    worst_at = where;
    worst_a = analytic;
    worst_n = numeric;
  }
}

inline GradientReport finish(double worst, const std::string& at, double a, double n) {
  std::ostringstream out;
  out.precision(10);
  out << "worst relative error " << worst << " at " << at << ": analytic " << a << ", finite difference " << n
      << " (bound " << tol::gradient_check << ")";
  return {worst <= tol::gradient_check, out.str()};
}
}  // namespace detail

/// `loss()` recomputes the scalar from the current contents of `x` (rank 1 or 2, host, double); `analytic` holds
/// d loss / d x. Every element of `x` is perturbed by +-h and restored.
template <class Loss>
GradientReport check_gradient(Loss&& loss, TensorView<double> x, ConstView<double> analytic, double h = 1e-6) {
  if (!(x.extents() == analytic.extents()))
    return {false, "gradient extents " + analytic.str() + " differ from the input's " + x.str()};
  const bool matrix = x.rank() == 2;
  const index_t rows = x.extent(0), cols = matrix ? x.extent(1) : 1;
  double worst = 0, worst_a = 0, worst_n = 0;
  std::string worst_at = "nowhere";
  for (index_t i = 0; i < rows; ++i)
    for (index_t j = 0; j < cols; ++j) {
      double& v = matrix ? x(i, j) : x(i);
      const double saved = v;
      v = saved + h;
      const double up = loss();
      v = saved - h;
      const double down = loss();
      v = saved;
      const double numeric = (up - down) / (2 * h);
      const double a = matrix ? analytic(i, j) : analytic(i);
      std::ostringstream where;  // not string + string: GCC 12 misreports that as -Wrestrict (bug 105329)
      where << '[' << i;
      if (matrix) where << ", " << j;
      where << ']';
      detail::track(a, numeric, where.str(), worst, worst_at, worst_a, worst_n);
    }
  return detail::finish(worst, worst_at, worst_a, worst_n);
}

/// The same for one scalar parameter.
template <class Loss>
GradientReport check_scalar_gradient(Loss&& loss, double& x, double analytic, double h = 1e-6) {
  const double saved = x;
  x = saved + h;
  const double up = loss();
  x = saved - h;
  const double down = loss();
  x = saved;
  double worst = 0, wa = 0, wn = 0;
  std::string at = "nowhere";
  detail::track(analytic, (up - down) / (2 * h), "the scalar", worst, at, wa, wn);
  return detail::finish(worst, at, wa, wn);
}

}  // namespace froster::test

#define FROSTER_REQUIRE_GRADIENT(report_expression)     \
  do {                                                  \
    const auto froster_report_ = (report_expression);   \
    INFO(froster_report_.message);                      \
    REQUIRE(froster_report_.ok);                        \
  } while (false)
