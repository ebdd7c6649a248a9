#pragma once
/// @file
/// Reference row kernels: L2 normalisation and row-wise cosine similarity, forward and backward.

#include <algorithm>
#include <cmath>

#include "froster/backends/ops.hpp"

namespace froster::reference {

/// y_i = x_i / ||x_i||, norms_i = ||x_i||. A zero row gives NaN, exactly like PyTorch's `x / x.norm(dim=-1)`.
template <class T>
void l2_normalize_forward(ConstView<T> x, TensorView<T> y, TensorView<T> norms) {
  for (index_t i = 0; i < x.rows(); ++i) {
    double ss = 0;
    for (index_t j = 0; j < x.cols(); ++j) ss += double(x(i, j)) * double(x(i, j));
    const double n = std::sqrt(ss);
    for (index_t j = 0; j < x.cols(); ++j) y(i, j) = T(double(x(i, j)) / n);
    norms(i) = T(n);
  }
}

/// dx_i = (dy_i - y_i <y_i, dy_i>) / ||x_i||  (written).
template <class T>
void l2_normalize_backward(ConstView<T> y, ConstView<T> norms, ConstView<T> dy, TensorView<T> dx) {
  for (index_t i = 0; i < y.rows(); ++i) {
    double proj = 0;
    for (index_t j = 0; j < y.cols(); ++j) proj += double(y(i, j)) * double(dy(i, j));
    const double inv = 1.0 / double(norms(i));
    for (index_t j = 0; j < y.cols(); ++j) dx(i, j) = T((double(dy(i, j)) - double(y(i, j)) * proj) * inv);
  }
}

/// cos_i = <a_i, b_i> / (max(||a_i||, eps) max(||b_i||, eps)), as `torch.nn.functional.cosine_similarity`.
/// Saves the unclamped norms for the backward pass.
template <class T>
void cosine_forward(ConstView<T> a, ConstView<T> b, T eps, TensorView<T> cos, TensorView<T> norm_a,
                    TensorView<T> norm_b) {
  for (index_t i = 0; i < a.rows(); ++i) {
    double ab = 0, aa = 0, bb = 0;
    for (index_t j = 0; j < a.cols(); ++j) {
      const double x = double(a(i, j)), y = double(b(i, j));
      ab += x * y;
      aa += x * x;
      bb += y * y;
    }
    const double na = std::sqrt(aa), nb = std::sqrt(bb);
    cos(i) = T(ab / (std::max(na, double(eps)) * std::max(nb, double(eps))));
    norm_a(i) = T(na);
    norm_b(i) = T(nb);
  }
}

/// da_i = scale * d cos_i / d a_i, and likewise db (each written when not null).
///
/// PyTorch clamps the norms to eps without recording the clamp for autograd, so its gradient differentiates
/// the clamped norm as if it were the true one: d cos / d a = b / (ca cb) - cos a / (||a|| ca), with
/// ca = max(||a||, eps), and the second term taken as 0 when ||a|| == 0. We follow it exactly.
template <class T>
void cosine_backward(ConstView<T> a, ConstView<T> b, ConstView<T> cos, ConstView<T> norm_a, ConstView<T> norm_b,
                     T eps, T scale, TensorView<T> da, TensorView<T> db) {
  for (index_t i = 0; i < a.rows(); ++i) {
    const double na = double(norm_a(i)), nb = double(norm_b(i)), c = double(cos(i));
    const double ca = std::max(na, double(eps)), cb = std::max(nb, double(eps));
    const double cross = double(scale) / (ca * cb);
    const double self_a = na > 0 ? double(scale) * c / (na * ca) : 0.0;
    const double self_b = nb > 0 ? double(scale) * c / (nb * cb) : 0.0;
    for (index_t j = 0; j < a.cols(); ++j) {
      const double x = double(a(i, j)), y = double(b(i, j));
      if (!da.is_null()) da(i, j) = T(cross * y - self_a * x);
      if (!db.is_null()) db(i, j) = T(cross * x - self_b * y);
    }
  }
}

}  // namespace froster::reference
