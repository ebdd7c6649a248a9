#pragma once
/// @file
/// `EigenBackend`: the reference backend with its heavy ops (GEMM, activations, row normalisation, cosine)
/// computed through Eigen's vectorised kernels in the tensor's own precision. It is what a downstream trainer
/// would get by gluing Eigen calls together, and the baseline the hand-written CPU kernels must beat.
/// Ops it does not override run the reference loops. Needs Eigen 3.4.

#include <Eigen/Core>
#include <numbers>
#include <unsupported/Eigen/SpecialFunctions>

#include "froster/adapters/eigen.hpp"
#include "froster/backends/reference.hpp"

namespace froster {

class EigenBackend : public ReferenceBackend {
 public:
  template <class T>
  void gemm(T alpha, ConstView<T> a, Transpose ta, ConstView<T> b, Transpose tb, T beta, TensorView<T> c) const {
    check::gemm("gemm", a, ta, b, tb, c);
    check::on_host("gemm", a, b, c);
    if (!eigen_mappable(a) || !eigen_mappable(b) || !eigen_mappable(c)) {
      reference::gemm(alpha, a, ta, b, tb, beta, c);
      return;
    }
    auto mc = as_eigen(c);
    if (c.numel() == 0) return;
    const ConstView<T> opa = ta == Transpose::no ? a : a.transposed();
    const ConstView<T> opb = tb == Transpose::no ? b : b.transposed();
    if (opa.cols() == 0) {  // an empty inner product: C = beta C, with beta == 0 overwriting
      if (beta == T(0)) mc.setZero();
      else mc *= beta;
      return;
    }
    // Map each operand in whichever dense layout its strides allow, so Eigen takes its blocked GEMM path.
    with_dense_map(opa, [&](const auto& ma) {
      with_dense_map(opb, [&](const auto& mb) {
        if (beta == T(0)) mc.noalias() = alpha * (ma * mb);
        else {
          if (beta != T(1)) mc *= beta;
          mc.noalias() += alpha * (ma * mb);
        }
      });
    });
  }

  template <class T>
  void axpby(T alpha, ConstView<T> x, T beta, TensorView<T> y) const {
    check::axpby_args(x, y);
    check::on_host("axpby", x, y);
    if (!eigen_mappable(x) || !eigen_mappable(y)) return reference::axpby(alpha, x, beta, y);
    auto my = as_eigen(y);
    if (beta == T(0)) my = alpha * as_eigen(x);
    else my = alpha * as_eigen(x) + beta * my;
  }

  template <class T>
  void activation_forward(Activation act, ConstView<T> x, TensorView<T> y) const {
    check::activation_args(x, x, y, false);
    check::on_host("activation_forward", x, y);
    if (!eigen_mappable(x) || !eigen_mappable(y)) return reference::activation_forward(act, x, y);
    const auto ax = as_eigen(x).array();
    auto ay = as_eigen(y).array();
    if (act == Activation::gelu) ay = T(0.5) * ax * (T(1) + (ax * T(std::numbers::sqrt2 / 2)).erf());
    else ay = ax / (T(1) + (T(-1.702) * ax).exp());
  }

  template <class T>
  void activation_backward(Activation act, ConstView<T> x, ConstView<T> dy, TensorView<T> dx) const {
    check::activation_args(x, dy, dx, true);
    check::on_host("activation_backward", x, dy, dx);
    if (!eigen_mappable(x) || !eigen_mappable(dy) || !eigen_mappable(dx))
      return reference::activation_backward(act, x, dy, dx);
    const auto ax = as_eigen(x).array();
    const auto ady = as_eigen(dy).array();
    auto adx = as_eigen(dx).array();
    if (act == Activation::gelu) {
      const T inv_sqrt_2pi = T(1 / std::sqrt(2 * std::numbers::pi));
      adx = ady * (T(0.5) * (T(1) + (ax * T(std::numbers::sqrt2 / 2)).erf()) +
                   ax * inv_sqrt_2pi * (T(-0.5) * ax * ax).exp());
    } else {
      const auto s = T(1) / (T(1) + (T(-1.702) * ax).exp());
      adx = ady * (s + T(1.702) * ax * s * (T(1) - s));
    }
  }

  template <class T>
  void l2_normalize_forward(ConstView<T> x, TensorView<T> y, TensorView<T> norms) const {
    check::l2_normalize_forward_args(x, y, norms);
    check::on_host("l2_normalize_forward", x, y, norms);
    if (!eigen_mappable(x) || !eigen_mappable(y)) return reference::l2_normalize_forward(x, y, norms);
    for (index_t i = 0; i < x.rows(); ++i) {
      const auto row = as_eigen(x.slice_rows(i, 1));
      const T n = row.norm();
      as_eigen(y.slice_rows(i, 1)) = row / n;
      norms(i) = n;
    }
  }

  template <class T>
  void l2_normalize_backward(ConstView<T> y, ConstView<T> norms, ConstView<T> dy, TensorView<T> dx) const {
    check::l2_normalize_backward_args(y, norms, dy, dx);
    check::on_host("l2_normalize_backward", y, norms, dy, dx);
    if (!eigen_mappable(y) || !eigen_mappable(dy) || !eigen_mappable(dx))
      return reference::l2_normalize_backward(y, norms, dy, dx);
    for (index_t i = 0; i < y.rows(); ++i) {
      const auto yr = as_eigen(y.slice_rows(i, 1));
      const auto dyr = as_eigen(dy.slice_rows(i, 1));
      const T proj = yr.cwiseProduct(dyr).sum();
      as_eigen(dx.slice_rows(i, 1)) = (dyr - proj * yr) / norms(i);
    }
  }

  template <class T>
  void cosine_forward(ConstView<T> a, ConstView<T> b, T eps, TensorView<T> cos, TensorView<T> norm_a,
                      TensorView<T> norm_b) const {
    check::cosine_forward_args(a, b, cos, norm_a, norm_b);
    check::on_host("cosine_forward", a, b, cos, norm_a, norm_b);
    if (!eigen_mappable(a) || !eigen_mappable(b)) return reference::cosine_forward(a, b, eps, cos, norm_a, norm_b);
    for (index_t i = 0; i < a.rows(); ++i) {
      const auto ar = as_eigen(a.slice_rows(i, 1));
      const auto br = as_eigen(b.slice_rows(i, 1));
      const T na = ar.norm(), nb = br.norm();
      cos(i) = ar.cwiseProduct(br).sum() / (std::max(na, eps) * std::max(nb, eps));
      norm_a(i) = na;
      norm_b(i) = nb;
    }
  }

  template <class T>
  void cosine_backward(ConstView<T> a, ConstView<T> b, ConstView<T> cos, ConstView<T> norm_a, ConstView<T> norm_b,
                       T eps, T scale, TensorView<T> da, TensorView<T> db) const {
    check::cosine_backward_args(a, b, cos, norm_a, norm_b, da, db);
    check::on_host("cosine_backward", a, b, cos, norm_a, norm_b, da, db);
    if (!eigen_mappable(a) || !eigen_mappable(b) || !eigen_mappable(da) || !eigen_mappable(db))
      return reference::cosine_backward(a, b, cos, norm_a, norm_b, eps, scale, da, db);
    for (index_t i = 0; i < a.rows(); ++i) {
      // Same formula as reference::cosine_backward, which documents PyTorch's clamp semantics.
      const T na = norm_a(i), nb = norm_b(i), c = cos(i);
      const T ca = std::max(na, eps), cb = std::max(nb, eps);
      const T cross = scale / (ca * cb);
      const T self_a = na > 0 ? scale * c / (na * ca) : T(0);
      const T self_b = nb > 0 ? scale * c / (nb * cb) : T(0);
      const auto ar = as_eigen(a.slice_rows(i, 1));
      const auto br = as_eigen(b.slice_rows(i, 1));
      if (!da.is_null()) as_eigen(da.slice_rows(i, 1)) = cross * br - self_a * ar;
      if (!db.is_null()) as_eigen(db.slice_rows(i, 1)) = cross * ar - self_b * br;
    }
  }

 private:
  /// Eigen maps need non-negative strides; null (not requested) views pass.
  template <class T>
  static bool eigen_mappable(const TensorView<T>& v) {
    return v.is_null() || (v.rank() == 2 && v.stride(0) >= 0 && v.stride(1) >= 0);
  }

  template <class T, class F>
  static void with_dense_map(const ConstView<T>& v, F&& f) {
    if (is_row_major_dense(v)) f(as_eigen_row_major(v));
    else if (is_col_major_dense(v)) f(as_eigen_col_major(v));
    else f(as_eigen(v));
  }
};

static_assert(Backend<EigenBackend>);

}  // namespace froster
