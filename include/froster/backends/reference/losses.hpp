#pragma once
/// @file
/// Reference loss kernels. Forward kernels write one loss per row; the caller reduces (mean) and passes the
/// reduction's factor back as `scale` to the backward kernels, which write gradients (never accumulate).

#include <cmath>
#include <cstdint>
#include <limits>

#include "froster/backends/ops.hpp"

namespace froster::reference {

/// row_loss_i = sum_j (a - b)^2 or sum_j |a - b|.
template <class T>
void pointwise_loss_forward(PointwiseLoss kind, ConstView<T> a, ConstView<T> b, TensorView<T> row_loss) {
  for (index_t i = 0; i < a.rows(); ++i) {
    double acc = 0;
    for (index_t j = 0; j < a.cols(); ++j) {
      const double d = double(a(i, j)) - double(b(i, j));
      acc += kind == PointwiseLoss::squared_error ? d * d : std::abs(d);
    }
    row_loss(i) = T(acc);
  }
}

/// da = scale * d/da, db = -da (each written when not null). The derivative of |d| at d == 0 is 0 (torch.sign).
template <class T>
void pointwise_loss_backward(PointwiseLoss kind, ConstView<T> a, ConstView<T> b, T scale, TensorView<T> da,
                             TensorView<T> db) {
  for (index_t i = 0; i < a.rows(); ++i)
    for (index_t j = 0; j < a.cols(); ++j) {
      const double d = double(a(i, j)) - double(b(i, j));
      const double g = kind == PointwiseLoss::squared_error ? 2.0 * d : double((d > 0) - (d < 0));
      const double ga = double(scale) * g;
      if (!da.is_null()) da(i, j) = T(ga);
      if (!db.is_null()) db(i, j) = T(-ga);
    }
}

/// y_i = log_softmax(scale * x_i), computed stably with the row maximum.
template <class T>
void log_softmax_forward(ConstView<T> x, T scale, TensorView<T> y) {
  for (index_t i = 0; i < x.rows(); ++i) {
    double mx = -std::numeric_limits<double>::infinity();
    for (index_t j = 0; j < x.cols(); ++j) mx = std::max(mx, double(scale) * double(x(i, j)));
    double se = 0;
    for (index_t j = 0; j < x.cols(); ++j) se += std::exp(double(scale) * double(x(i, j)) - mx);
    const double lse = mx + std::log(se);
    for (index_t j = 0; j < x.cols(); ++j) y(i, j) = T(double(scale) * double(x(i, j)) - lse);
  }
}

/// row_loss_i = -logp[i, label_i]. Labels are checked by the caller.
template <class T>
void cross_entropy_forward(ConstView<T> logp, ConstView<std::int64_t> labels, TensorView<T> row_loss) {
  for (index_t i = 0; i < logp.rows(); ++i) row_loss(i) = -logp(i, labels(i));
}

/// dlogits_i = scale * (softmax_i - onehot(label_i)).
template <class T>
void cross_entropy_backward(ConstView<T> logp, ConstView<std::int64_t> labels, T scale, TensorView<T> dlogits) {
  for (index_t i = 0; i < logp.rows(); ++i)
    for (index_t j = 0; j < logp.cols(); ++j)
      dlogits(i, j) = T(double(scale) * (std::exp(double(logp(i, j))) - (labels(i) == j ? 1.0 : 0.0)));
}

/// row_loss_i = -sum_j t_ij logp_ij.
template <class T>
void soft_cross_entropy_forward(ConstView<T> logp, ConstView<T> targets, TensorView<T> row_loss) {
  for (index_t i = 0; i < logp.rows(); ++i) {
    double acc = 0;
    for (index_t j = 0; j < logp.cols(); ++j) acc -= double(targets(i, j)) * double(logp(i, j));
    row_loss(i) = T(acc);
  }
}

/// dlogits_i = scale * (softmax_i sum_j t_ij - t_i): targets need not sum to one, as in PyTorch.
template <class T>
void soft_cross_entropy_backward(ConstView<T> logp, ConstView<T> targets, T scale, TensorView<T> dlogits) {
  for (index_t i = 0; i < logp.rows(); ++i) {
    double mass = 0;
    for (index_t j = 0; j < logp.cols(); ++j) mass += double(targets(i, j));
    for (index_t j = 0; j < logp.cols(); ++j)
      dlogits(i, j) = T(double(scale) * (std::exp(double(logp(i, j))) * mass - double(targets(i, j))));
  }
}

/// row_loss_i = KL(p_t || p_s) = sum_j p_t (logp_t - logp_s), with 0 log 0 = 0.
template <class T>
void kl_div_forward(ConstView<T> logp_student, ConstView<T> logp_teacher, TensorView<T> row_loss) {
  for (index_t i = 0; i < logp_student.rows(); ++i) {
    double acc = 0;
    for (index_t j = 0; j < logp_student.cols(); ++j) {
      const double pt = std::exp(double(logp_teacher(i, j)));
      if (pt > 0) acc += pt * (double(logp_teacher(i, j)) - double(logp_student(i, j)));
    }
    row_loss(i) = T(acc);
  }
}

/// Gradients of scale * row_loss_i with respect to the *inputs* of the two log-softmaxes:
/// d_student = scale (p_s - p_t); d_teacher = scale p_t (logp_t - logp_s - row_loss_i). Each written when not null.
template <class T>
void kl_div_backward(ConstView<T> logp_student, ConstView<T> logp_teacher, ConstView<T> row_loss, T scale,
                     TensorView<T> d_student, TensorView<T> d_teacher) {
  for (index_t i = 0; i < logp_student.rows(); ++i)
    for (index_t j = 0; j < logp_student.cols(); ++j) {
      const double ls = double(logp_student(i, j)), lt = double(logp_teacher(i, j));
      const double pt = std::exp(lt);
      if (!d_student.is_null()) d_student(i, j) = T(double(scale) * (std::exp(ls) - pt));
      if (!d_teacher.is_null())
        d_teacher(i, j) = T(pt > 0 ? double(scale) * pt * (lt - ls - double(row_loss(i))) : 0.0);
    }
}

}  // namespace froster::reference
