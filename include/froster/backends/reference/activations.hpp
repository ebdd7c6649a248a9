#pragma once
/// @file
/// Reference activation kernels and their derivatives, computed in double.

#include <cmath>
#include <numbers>

#include "froster/backends/ops.hpp"

namespace froster::reference {

/// Scalar activation and derivative; shared by every kernel that needs an exact scalar form (tails, tests).
inline double activation_value(Activation act, double x) {
  if (act == Activation::gelu) return 0.5 * x * (1.0 + std::erf(x * std::numbers::sqrt2 / 2));
  return x / (1.0 + std::exp(-1.702 * x));
}

inline double activation_derivative(Activation act, double x) {
  if (act == Activation::gelu) {
    const double cdf = 0.5 * (1.0 + std::erf(x * std::numbers::sqrt2 / 2));
    const double pdf = std::exp(-0.5 * x * x) / std::sqrt(2 * std::numbers::pi);
    return cdf + x * pdf;
  }
  const double s = 1.0 / (1.0 + std::exp(-1.702 * x));
  return s + 1.702 * x * s * (1.0 - s);
}

template <class T>
void activation_forward(Activation act, ConstView<T> x, TensorView<T> y) {
  for (index_t i = 0; i < x.rows(); ++i)
    for (index_t j = 0; j < x.cols(); ++j) y(i, j) = T(activation_value(act, double(x(i, j))));
}

/// dx = dy * f'(x) (written, not accumulated).
template <class T>
void activation_backward(Activation act, ConstView<T> x, ConstView<T> dy, TensorView<T> dx) {
  for (index_t i = 0; i < x.rows(); ++i)
    for (index_t j = 0; j < x.cols(); ++j)
      dx(i, j) = T(double(dy(i, j)) * activation_derivative(act, double(x(i, j))));
}

}  // namespace froster::reference
