#pragma once
/// @file
/// `ReferenceBackend`: straightforward loops with double accumulation over host memory. Slow on purpose and
/// easy to read: it is the ground truth every other backend's kernels are tested against.

#include <cstdint>

#include "froster/backends/backend.hpp"
#include "froster/backends/op_checks.hpp"
#include "froster/backends/reference/activations.hpp"
#include "froster/backends/reference/attention.hpp"
#include "froster/backends/reference/dense.hpp"
#include "froster/backends/reference/losses.hpp"
#include "froster/backends/reference/normalization.hpp"
#include "froster/backends/reference/pooling.hpp"
#include "froster/backends/reference/rows.hpp"

namespace froster {

class ReferenceBackend {
 public:
  Device device() const { return Device::host(); }

  template <class T>
  Tensor<T> allocate(Dims extents) const {
    return Tensor<T>::host(extents);
  }

  template <class T>
  void copy(ConstView<T> src, TensorView<T> dst) const {
    check::copy_args(src, dst);
    check::on_host("copy", src, dst);
    reference::copy(src, dst);
  }

  template <class T>
  void fill(TensorView<T> dst, T value) const {
    check::matrix("fill", "dst", dst);
    check::on_host("fill", dst);
    reference::fill(dst, value);
  }

  template <class T>
  void gemm(T alpha, ConstView<T> a, Transpose ta, ConstView<T> b, Transpose tb, T beta, TensorView<T> c) const {
    check::gemm("gemm", a, ta, b, tb, c);
    check::on_host("gemm", a, b, c);
    reference::gemm(alpha, a, ta, b, tb, beta, c);
  }

  template <class T>
  void axpby(T alpha, ConstView<T> x, T beta, TensorView<T> y) const {
    check::axpby_args(x, y);
    check::on_host("axpby", x, y);
    reference::axpby(alpha, x, beta, y);
  }

  template <class T>
  double sum(ConstView<T> x) const {
    check::reduce_args("sum", x);
    check::on_host("sum", x);
    return reference::sum(x);
  }

  template <class T>
  double dot(ConstView<T> a, ConstView<T> b) const {
    check::elementwise("dot", "a", a, "b", b);
    check::on_host("dot", a, b);
    return reference::dot(a, b);
  }

  template <class T>
  void activation_forward(Activation act, ConstView<T> x, TensorView<T> y) const {
    check::activation_args(x, x, y, false);
    check::on_host("activation_forward", x, y);
    reference::activation_forward(act, x, y);
  }

  template <class T>
  void activation_backward(Activation act, ConstView<T> x, ConstView<T> dy, TensorView<T> dx) const {
    check::activation_args(x, dy, dx, true);
    check::on_host("activation_backward", x, dy, dx);
    reference::activation_backward(act, x, dy, dx);
  }

  template <class T>
  void l2_normalize_forward(ConstView<T> x, TensorView<T> y, TensorView<T> norms) const {
    check::l2_normalize_forward_args(x, y, norms);
    check::on_host("l2_normalize_forward", x, y, norms);
    reference::l2_normalize_forward(x, y, norms);
  }

  template <class T>
  void l2_normalize_backward(ConstView<T> y, ConstView<T> norms, ConstView<T> dy, TensorView<T> dx) const {
    check::l2_normalize_backward_args(y, norms, dy, dx);
    check::on_host("l2_normalize_backward", y, norms, dy, dx);
    reference::l2_normalize_backward(y, norms, dy, dx);
  }

  template <class T>
  void cosine_forward(ConstView<T> a, ConstView<T> b, T eps, TensorView<T> cos, TensorView<T> norm_a,
                      TensorView<T> norm_b) const {
    check::cosine_forward_args(a, b, cos, norm_a, norm_b);
    check::on_host("cosine_forward", a, b, cos, norm_a, norm_b);
    reference::cosine_forward(a, b, eps, cos, norm_a, norm_b);
  }

  template <class T>
  void cosine_backward(ConstView<T> a, ConstView<T> b, ConstView<T> cos, ConstView<T> norm_a, ConstView<T> norm_b,
                       T eps, T scale, TensorView<T> da, TensorView<T> db) const {
    check::cosine_backward_args(a, b, cos, norm_a, norm_b, da, db);
    check::on_host("cosine_backward", a, b, cos, norm_a, norm_b, da, db);
    reference::cosine_backward(a, b, cos, norm_a, norm_b, eps, scale, da, db);
  }

  template <class T>
  void pointwise_loss_forward(PointwiseLoss kind, ConstView<T> a, ConstView<T> b, TensorView<T> row_loss) const {
    check::row_loss_args("pointwise_loss_forward", a, b, row_loss);
    check::on_host("pointwise_loss_forward", a, b, row_loss);
    reference::pointwise_loss_forward(kind, a, b, row_loss);
  }

  template <class T>
  void pointwise_loss_backward(PointwiseLoss kind, ConstView<T> a, ConstView<T> b, T scale, TensorView<T> da,
                               TensorView<T> db) const {
    check::pair_gradient_args("pointwise_loss_backward", a, b, da, db);
    check::on_host("pointwise_loss_backward", a, b, da, db);
    reference::pointwise_loss_backward(kind, a, b, scale, da, db);
  }

  template <class T>
  void log_softmax_forward(ConstView<T> x, T scale, TensorView<T> y) const {
    check::elementwise("log_softmax_forward", "x", x, "y", y);
    check::on_host("log_softmax_forward", x, y);
    reference::log_softmax_forward(x, scale, y);
  }

  template <class T>
  void cross_entropy_forward(ConstView<T> logp, ConstView<std::int64_t> labels, TensorView<T> row_loss) const {
    check::on_host("cross_entropy_forward", logp, labels, row_loss);
    check::cross_entropy_forward_args(logp, labels, row_loss);
    reference::cross_entropy_forward(logp, labels, row_loss);
  }

  template <class T>
  void cross_entropy_backward(ConstView<T> logp, ConstView<std::int64_t> labels, T scale,
                              TensorView<T> dlogits) const {
    check::on_host("cross_entropy_backward", logp, labels, dlogits);
    check::cross_entropy_backward_args(logp, labels, dlogits);
    reference::cross_entropy_backward(logp, labels, scale, dlogits);
  }

  template <class T>
  void soft_cross_entropy_forward(ConstView<T> logp, ConstView<T> targets, TensorView<T> row_loss) const {
    check::row_loss_args("soft_cross_entropy_forward", logp, targets, row_loss);
    check::on_host("soft_cross_entropy_forward", logp, targets, row_loss);
    reference::soft_cross_entropy_forward(logp, targets, row_loss);
  }

  template <class T>
  void soft_cross_entropy_backward(ConstView<T> logp, ConstView<T> targets, T scale, TensorView<T> dlogits) const {
    check::soft_cross_entropy_backward_args(logp, targets, dlogits);
    check::on_host("soft_cross_entropy_backward", logp, targets, dlogits);
    reference::soft_cross_entropy_backward(logp, targets, scale, dlogits);
  }

  template <class T>
  void kl_div_forward(ConstView<T> logp_student, ConstView<T> logp_teacher, TensorView<T> row_loss) const {
    check::row_loss_args("kl_div_forward", logp_student, logp_teacher, row_loss);
    check::on_host("kl_div_forward", logp_student, logp_teacher, row_loss);
    reference::kl_div_forward(logp_student, logp_teacher, row_loss);
  }

  template <class T>
  void kl_div_backward(ConstView<T> logp_student, ConstView<T> logp_teacher, ConstView<T> row_loss, T scale,
                       TensorView<T> d_student, TensorView<T> d_teacher) const {
    check::kl_div_backward_args(logp_student, logp_teacher, row_loss, d_student, d_teacher);
    check::on_host("kl_div_backward", logp_student, logp_teacher, row_loss, d_student, d_teacher);
    reference::kl_div_backward(logp_student, logp_teacher, row_loss, scale, d_student, d_teacher);
  }

  template <class T>
  void layer_norm_forward(ConstView<T> x, ConstView<T> gamma, ConstView<T> beta, T eps, TensorView<T> y,
                          TensorView<T> mean, TensorView<T> rstd) const {
    check::layer_norm_forward_args(x, gamma, beta, y, mean, rstd);
    check::on_host("layer_norm_forward", x, gamma, beta, y, mean, rstd);
    reference::layer_norm_forward(x, gamma, beta, eps, y, mean, rstd);
  }

  template <class T>
  void layer_norm_backward(ConstView<T> x, ConstView<T> gamma, ConstView<T> mean, ConstView<T> rstd,
                           ConstView<T> dy, TensorView<T> dx, TensorView<T> dgamma, TensorView<T> dbeta) const {
    check::layer_norm_backward_args(x, gamma, mean, rstd, dy, dx, dgamma, dbeta);
    check::on_host("layer_norm_backward", x, gamma, mean, rstd, dy, dx, dgamma, dbeta);
    reference::layer_norm_backward(x, gamma, mean, rstd, dy, dx, dgamma, dbeta);
  }

  template <class T>
  void softmax_forward(ConstView<T> x, T scale, bool causal, TensorView<T> y) const {
    check::elementwise("softmax_forward", "x", x, "y", y);
    check::on_host("softmax_forward", x, y);
    reference::softmax_forward(x, scale, causal, y);
  }

  template <class T>
  void softmax_backward(ConstView<T> y, ConstView<T> dy, T scale, TensorView<T> dx) const {
    check::softmax_backward_args(y, dy, dx);
    check::on_host("softmax_backward", y, dy, dx);
    reference::softmax_backward(y, dy, scale, dx);
  }

  template <class T>
  void attention_forward(ConstView<T> q, ConstView<T> k, ConstView<T> v, const AttentionSpec& spec, T scale,
                         TensorView<T> out, TensorView<T> lse) const {
    check::attention_forward_args(q, k, v, spec, out, lse);
    check::on_host("attention_forward", q, k, v, out, lse);
    reference::attention_forward(q, k, v, spec, scale, out, lse);
  }

  template <class T>
  void attention_backward(ConstView<T> q, ConstView<T> k, ConstView<T> v, ConstView<T> out, ConstView<T> lse,
                          ConstView<T> dout, const AttentionSpec& spec, T scale, TensorView<T> dq, TensorView<T> dk,
                          TensorView<T> dv) const {
    check::attention_backward_args(q, k, v, out, lse, dout, spec, dq, dk, dv);
    check::on_host("attention_backward", q, k, v, out, lse, dout, dq, dk, dv);
    reference::attention_backward(q, k, v, out, lse, dout, spec, scale, dq, dk, dv);
  }

  template <class T>
  void temporal_pool_forward(Pooling mode, ConstView<T> x, index_t frames, TensorView<T> y,
                             TensorView<std::int64_t> argmax) const {
    check::temporal_pool_forward_args(mode, x, frames, y, argmax);
    check::on_host("temporal_pool_forward", x, y, argmax);
    reference::temporal_pool_forward(mode, x, frames, y, argmax);
  }

  template <class T>
  void temporal_pool_backward(Pooling mode, index_t frames, ConstView<T> dy, ConstView<std::int64_t> argmax,
                              TensorView<T> dx) const {
    check::temporal_pool_backward_args(mode, frames, dy, argmax, dx);
    check::on_host("temporal_pool_backward", dy, argmax, dx);
    reference::temporal_pool_backward(mode, frames, dy, argmax, dx);
  }
};

static_assert(Backend<ReferenceBackend>);

}  // namespace froster
