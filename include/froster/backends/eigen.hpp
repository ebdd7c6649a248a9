#pragma once
/// @file
/// `EigenBackend`: the reference backend with its heavy ops (GEMM, activations, row normalisation, cosine)
/// computed through Eigen's vectorised kernels in the tensor's own precision. It is what a downstream trainer
/// would get by gluing Eigen calls together, and the baseline the hand-written CPU kernels must beat.
/// Ops it does not override run the reference loops. Needs Eigen 3.4.

#include <Eigen/Core>
#include <array>
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
    with_maps(
        [&](auto mx, auto my) {
          if (beta == T(0)) my = alpha * mx;
          else my = alpha * mx + beta * my;
        },
        x, y);
  }

  template <class T>
  void copy(ConstView<T> src, TensorView<T> dst) const {
    check::copy_args(src, dst);
    check::on_host("copy", src, dst);
    if (!eigen_mappable(src) || !eigen_mappable(dst)) return reference::copy(src, dst);
    with_maps([](auto ms, auto md) { md = ms; }, src, dst);
  }

  template <class T>
  void activation_forward(Activation act, ConstView<T> x, TensorView<T> y) const {
    check::activation_args(x, x, y, false);
    check::on_host("activation_forward", x, y);
    if (!eigen_mappable(x) || !eigen_mappable(y)) return reference::activation_forward(act, x, y);
    with_maps(
        [&](auto mx, auto my) {
          const auto ax = mx.array();
          auto ay = my.array();
          if (act == Activation::gelu) ay = T(0.5) * ax * (T(1) + (ax * T(std::numbers::sqrt2 / 2)).erf());
          else ay = ax / (T(1) + (T(-1.702) * ax).exp());
        },
        x, y);
  }

  template <class T>
  void activation_backward(Activation act, ConstView<T> x, ConstView<T> dy, TensorView<T> dx) const {
    check::activation_args(x, dy, dx, true);
    check::on_host("activation_backward", x, dy, dx);
    if (!eigen_mappable(x) || !eigen_mappable(dy) || !eigen_mappable(dx))
      return reference::activation_backward(act, x, dy, dx);
    with_maps(
        [&](auto mx, auto mdy, auto mdx) {
          const auto ax = mx.array();
          const auto ady = mdy.array();
          auto adx = mdx.array();
          if (act == Activation::gelu) {
            const T inv_sqrt_2pi = T(1 / std::sqrt(2 * std::numbers::pi));
            adx = ady * (T(0.5) * (T(1) + (ax * T(std::numbers::sqrt2 / 2)).erf()) +
                         ax * inv_sqrt_2pi * (T(-0.5) * ax * ax).exp());
          } else {
            const auto s = T(1) / (T(1) + (T(-1.702) * ax).exp());
            adx = ady * (s + T(1.702) * ax * s * (T(1) - s));
          }
        },
        x, dy, dx);
  }

  template <class T>
  void l2_normalize_forward(ConstView<T> x, TensorView<T> y, TensorView<T> norms) const {
    check::l2_normalize_forward_args(x, y, norms);
    check::on_host("l2_normalize_forward", x, y, norms);
    if (!eigen_mappable(x) || !eigen_mappable(y)) return reference::l2_normalize_forward(x, y, norms);
    with_maps(
        [&](auto mx, auto my) {
          for (index_t i = 0; i < x.rows(); ++i) {
            const T n = mx.row(i).norm();
            my.row(i) = mx.row(i) / n;
            norms(i) = n;
          }
        },
        x, y);
  }

  template <class T>
  void l2_normalize_backward(ConstView<T> y, ConstView<T> norms, ConstView<T> dy, TensorView<T> dx) const {
    check::l2_normalize_backward_args(y, norms, dy, dx);
    check::on_host("l2_normalize_backward", y, norms, dy, dx);
    if (!eigen_mappable(y) || !eigen_mappable(dy) || !eigen_mappable(dx))
      return reference::l2_normalize_backward(y, norms, dy, dx);
    with_maps(
        [&](auto my, auto mdy, auto mdx) {
          for (index_t i = 0; i < y.rows(); ++i) {
            const T proj = my.row(i).dot(mdy.row(i));
            mdx.row(i) = (mdy.row(i) - proj * my.row(i)) / norms(i);
          }
        },
        y, dy, dx);
  }

  template <class T>
  void cosine_forward(ConstView<T> a, ConstView<T> b, T eps, TensorView<T> cos, TensorView<T> norm_a,
                      TensorView<T> norm_b) const {
    check::cosine_forward_args(a, b, cos, norm_a, norm_b);
    check::on_host("cosine_forward", a, b, cos, norm_a, norm_b);
    if (!eigen_mappable(a) || !eigen_mappable(b)) return reference::cosine_forward(a, b, eps, cos, norm_a, norm_b);
    with_maps(
        [&](auto ma, auto mb) {
          for (index_t i = 0; i < a.rows(); ++i) {
            const T na = ma.row(i).norm(), nb = mb.row(i).norm();
            cos(i) = ma.row(i).dot(mb.row(i)) / (std::max(na, eps) * std::max(nb, eps));
            norm_a(i) = na;
            norm_b(i) = nb;
          }
        },
        a, b);
  }

  template <class T>
  void cosine_backward(ConstView<T> a, ConstView<T> b, ConstView<T> cos, ConstView<T> norm_a, ConstView<T> norm_b,
                       T eps, T scale, TensorView<T> da, TensorView<T> db) const {
    check::cosine_backward_args(a, b, cos, norm_a, norm_b, da, db);
    check::on_host("cosine_backward", a, b, cos, norm_a, norm_b, da, db);
    if (!eigen_mappable(a) || !eigen_mappable(b) || !eigen_mappable(da) || !eigen_mappable(db))
      return reference::cosine_backward(a, b, cos, norm_a, norm_b, eps, scale, da, db);
    // Same formula as reference::cosine_backward, which documents PyTorch's clamp semantics.
    auto row_coefficients = [&](index_t i) {
      const T na = norm_a(i), nb = norm_b(i), c = cos(i);
      const T ca = std::max(na, eps), cb = std::max(nb, eps);
      return std::array<T, 3>{scale / (ca * cb), na > 0 ? scale * c / (na * ca) : T(0),
                              nb > 0 ? scale * c / (nb * cb) : T(0)};
    };
    auto gradient = [&](ConstView<T> self, ConstView<T> other, TensorView<T> out, int self_term) {
      with_maps(
          [&](auto ms, auto mo, auto mout) {
            for (index_t i = 0; i < a.rows(); ++i) {
              const auto k = row_coefficients(i);
              mout.row(i) = k[0] * mo.row(i) - k[std::size_t(self_term)] * ms.row(i);
            }
          },
          self, other, out);
    };
    if (!da.is_null()) gradient(a, b, da, 1);
    if (!db.is_null()) gradient(b, a, db, 2);
  }

 private:
  /// Eigen maps need non-negative strides; null (not requested) views pass.
  template <class T>
  static bool eigen_mappable(const TensorView<T>& v) {
    return v.is_null() || (v.rank() == 2 && v.stride(0) >= 0 && v.stride(1) >= 0);
  }

  /// Calls f with Eigen maps of every view: dense row-major maps (Eigen's vectorised paths) when every view allows
  /// them, general strided maps otherwise.
  template <class F, class... Views>
  static void with_maps(F&& f, const Views&... views) {
    if ((is_row_major_dense(views) && ...)) f(as_eigen_row_major(views)...);
    else f(as_eigen(views)...);
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
