#pragma once
/// @file
/// `CpuBackend`: hand-written SIMD kernels (scalar, AVX2+FMA, AVX-512) chosen at run time, threaded over a pool
/// of its own. fp32 views whose rows are contiguous (unit column stride; any row stride) run the SIMD kernels;
/// other layouts and fp64 run the reference loops, which are the ground truth the kernels are tested against.
/// Every op of the concept has a kernel here, plus the optional `fused_gemm`, packed GEMM operands and the fused
/// distillation step (see docs/cpu_backend.md).

#include <memory>
#include <optional>
#include <type_traits>

#include "froster/backends/cpu/attention.hpp"
#include "froster/backends/cpu/context.hpp"
#include "froster/backends/cpu/distillation.hpp"
#include "froster/backends/cpu/fused.hpp"
#include "froster/backends/cpu/gemm.hpp"
#include "froster/backends/cpu/isa.hpp"
#include "froster/backends/cpu/kernels.hpp"
#include "froster/backends/cpu/reductions.hpp"
#include "froster/backends/cpu/rows.hpp"
#include "froster/backends/cpu/thread_pool.hpp"
#include "froster/backends/reference.hpp"

namespace froster {

struct CpuBackendOptions {
  int threads = 0;                     ///< Worker threads including the caller; 0 = every hardware thread.
  std::optional<cpu::Isa> isa = std::nullopt;  ///< Instruction set; default: FROSTER_ISA if set, else the best available.
};

class CpuBackend : public ReferenceBackend {
 public:
  explicit CpuBackend(CpuBackendOptions options = {})
      : isa_(options.isa ? cpu::resolve_isa(cpu::to_string(*options.isa)) : cpu::default_isa()),
        pool_(std::make_shared<cpu::ThreadPool>(options.threads)) {}

  cpu::Isa isa() const { return isa_; }
  /// What the CPU kernels run with: the ISA level and the thread pool.
  cpu::Context context() const { return {isa_, pool_.get()}; }
  int threads() const { return pool_->size(); }

  // Ops whose CPU kernels decline a case (fp64, layouts they do not take) run the reference loops.
  template <class T>
  void copy(ConstView<T> src, TensorView<T> dst) const {
    check::copy_args(src, dst);
    check::on_host("copy", src, dst);
    if (!cpu::copy(context(), src, dst)) reference::copy(src, dst);
  }

  template <class T>
  void fill(TensorView<T> dst, T value) const {
    check::matrix("fill", "dst", dst);
    check::on_host("fill", dst);
    if (!cpu::fill(context(), dst, value)) reference::fill(dst, value);
  }

  template <class T>
  void gemm(T alpha, ConstView<T> a, Transpose ta, ConstView<T> b, Transpose tb, T beta, TensorView<T> c) const {
    check::gemm("gemm", a, ta, b, tb, c);
    check::on_host("gemm", a, b, c);
    if (!cpu::gemm(context(), alpha, a, ta, b, tb, beta, c)) reference::gemm(alpha, a, ta, b, tb, beta, c);
  }

  template <class T>
  void l2_normalize_forward(ConstView<T> x, TensorView<T> y, TensorView<T> norms) const {
    check::l2_normalize_forward_args(x, y, norms);
    check::on_host("l2_normalize_forward", x, y, norms);
    if (!cpu::l2_normalize_forward(context(), x, y, norms)) reference::l2_normalize_forward(x, y, norms);
  }

  template <class T>
  void l2_normalize_backward(ConstView<T> y, ConstView<T> norms, ConstView<T> dy, TensorView<T> dx) const {
    check::l2_normalize_backward_args(y, norms, dy, dx);
    check::on_host("l2_normalize_backward", y, norms, dy, dx);
    if (!cpu::l2_normalize_backward(context(), y, norms, dy, dx)) reference::l2_normalize_backward(y, norms, dy, dx);
  }

  template <class T>
  void cosine_forward(ConstView<T> a, ConstView<T> b, T eps, TensorView<T> cos, TensorView<T> norm_a, TensorView<T> norm_b) const {
    check::cosine_forward_args(a, b, cos, norm_a, norm_b);
    check::on_host("cosine_forward", a, b, cos, norm_a, norm_b);
    if (!cpu::cosine_forward(context(), a, b, eps, cos, norm_a, norm_b)) reference::cosine_forward(a, b, eps, cos, norm_a, norm_b);
  }

  template <class T>
  void cosine_backward(ConstView<T> a, ConstView<T> b, ConstView<T> cos, ConstView<T> norm_a, ConstView<T> norm_b, T eps, T scale, TensorView<T> da, TensorView<T> db) const {
    check::cosine_backward_args(a, b, cos, norm_a, norm_b, da, db);
    check::on_host("cosine_backward", a, b, cos, norm_a, norm_b, da, db);
    if (!cpu::cosine_backward(context(), a, b, cos, norm_a, norm_b, eps, scale, da, db)) reference::cosine_backward(a, b, cos, norm_a, norm_b, eps, scale, da, db);
  }

  template <class T>
  void layer_norm_forward(ConstView<T> x, ConstView<T> gamma, ConstView<T> beta, T eps, TensorView<T> y, TensorView<T> mean, TensorView<T> rstd) const {
    check::layer_norm_forward_args(x, gamma, beta, y, mean, rstd);
    check::on_host("layer_norm_forward", x, gamma, beta, y, mean, rstd);
    if (!cpu::layer_norm_forward(context(), x, gamma, beta, eps, y, mean, rstd)) reference::layer_norm_forward(x, gamma, beta, eps, y, mean, rstd);
  }

  template <class T>
  void layer_norm_backward(ConstView<T> x, ConstView<T> gamma, ConstView<T> mean, ConstView<T> rstd, ConstView<T> dy, TensorView<T> dx, TensorView<T> dgamma, TensorView<T> dbeta) const {
    check::layer_norm_backward_args(x, gamma, mean, rstd, dy, dx, dgamma, dbeta);
    check::on_host("layer_norm_backward", x, gamma, mean, rstd, dy, dx, dgamma, dbeta);
    if (!cpu::layer_norm_backward(context(), x, gamma, mean, rstd, dy, dx, dgamma, dbeta)) reference::layer_norm_backward(x, gamma, mean, rstd, dy, dx, dgamma, dbeta);
  }

  template <class T>
  void softmax_forward(ConstView<T> x, T scale, bool causal, TensorView<T> y) const {
    check::elementwise("softmax_forward", "x", x, "y", y);
    check::on_host("softmax_forward", x, y);
    if (!cpu::softmax_forward(context(), x, scale, causal, y)) reference::softmax_forward(x, scale, causal, y);
  }

  template <class T>
  void softmax_backward(ConstView<T> y, ConstView<T> dy, T scale, TensorView<T> dx) const {
    check::softmax_backward_args(y, dy, dx);
    check::on_host("softmax_backward", y, dy, dx);
    if (!cpu::softmax_backward(context(), y, dy, scale, dx)) reference::softmax_backward(y, dy, scale, dx);
  }

  template <class T>
  void attention_forward(ConstView<T> q, ConstView<T> k, ConstView<T> v, const AttentionSpec& spec, T scale,
                         TensorView<T> out, TensorView<T> lse) const {
    check::attention_forward_args(q, k, v, spec, out, lse);
    check::on_host("attention_forward", q, k, v, out, lse);
    if (!cpu::attention_forward(context(), q, k, v, spec, scale, out, lse))
      reference::attention_forward(q, k, v, spec, scale, out, lse);
  }

  template <class T>
  void attention_backward(ConstView<T> q, ConstView<T> k, ConstView<T> v, ConstView<T> out, ConstView<T> lse,
                          ConstView<T> dout, const AttentionSpec& spec, T scale, TensorView<T> dq, TensorView<T> dk,
                          TensorView<T> dv) const {
    check::attention_backward_args(q, k, v, out, lse, dout, spec, dq, dk, dv);
    check::on_host("attention_backward", q, k, v, out, lse, dout, dq, dk, dv);
    if (!cpu::attention_backward(context(), q, k, v, out, lse, dout, spec, scale, dq, dk, dv))
      reference::attention_backward(q, k, v, out, lse, dout, spec, scale, dq, dk, dv);
  }

  /// GEMM with a fused epilogue (bias, residual, activation or its derivative: froster/backends/fused.hpp), applied
  /// to each tile of C while it is in L1. Cases the SIMD path declines run the composition of this backend's ops.
  template <class T>
  void fused_gemm(T alpha, ConstView<T> a, Transpose ta, ConstView<T> b, Transpose tb, const LinearEpilogue<T>& epi,
                  TensorView<T> c) const {
    check::fused_gemm_args(a, ta, b, tb, epi, c);
    check::on_host("fused_gemm", a, b, c, epi.bias, epi.residual, epi.save_pre, epi.derivative_at);
    if (!cpu::fused_gemm(context(), alpha, a, ta, b, tb, epi, c)) fused_gemm_composed(*this, alpha, a, ta, b, tb, epi, c);
  }

  /// op(B) packed once for many `fused_gemm`s with it (the optional packed-operand ops of backends/fused.hpp): a
  /// weight between updates. fp32 only. The packed copy does not see later writes to `b`: pack again after them.
  cpu::PackedGemmOperand pack_gemm_operand(ConstView<float> b, Transpose tb) const {
    check::matrix("pack_gemm_operand", "b", b);
    check::on_host("pack_gemm_operand", b);
    return cpu::pack_gemm_operand(context(), b, tb);
  }

  /// fused_gemm with op(B) pre-packed: bitwise the result of `fused_gemm(alpha, a, ta, b.source(), b.transpose(),
  /// epi, c)`, without packing op(B).
  void fused_gemm(float alpha, ConstView<float> a, Transpose ta, const cpu::PackedGemmOperand& b,
                  const LinearEpilogue<float>& epi, TensorView<float> c) const {
    check::fused_gemm_args(a, ta, b.source(), b.transpose(), epi, c);
    check::on_host("fused_gemm", a, b.source(), c, epi.bias, epi.residual, epi.save_pre, epi.derivative_at);
    if (!cpu::fused_gemm(context(), alpha, a, ta, b.source(), b.transpose(), epi, c, &b))
      fused_gemm_composed(*this, alpha, a, ta, b.source(), b.transpose(), epi, c);
  }

  /// FROSTER's distillation step fused (backends/fused_distillation.hpp): the loss, or nullopt for a case it does
  /// not take (fp64, rows that are not contiguous, too few rows per thread: cpu/distillation.hpp), which
  /// FeatureDistiller then composes.
  template <class T>
  std::optional<double> cosine_distillation_step(const CosineDistillationStep<T>& step) const {
    check::cosine_distillation_step_args(step);
    check::on_host("cosine_distillation_step", step.student, step.teacher, step.w1, step.w2, step.d_student,
                   step.grad_w1, step.grad_w2);
    return cpu::cosine_distillation_step(context(), step);
  }

  // Reductions and losses (cpu/reductions.hpp): sum and dot add per-row double partials in row order, so they
  // do not depend on the thread count either.
  template <class T>
  double sum(ConstView<T> x) const {
    check::reduce_args("sum", x);
    check::on_host("sum", x);
    if (const auto s = cpu::sum(context(), x)) return *s;
    return reference::sum(x);
  }

  template <class T>
  double dot(ConstView<T> a, ConstView<T> b) const {
    check::elementwise("dot", "a", a, "b", b);
    check::on_host("dot", a, b);
    if (const auto s = cpu::dot(context(), a, b)) return *s;
    return reference::dot(a, b);
  }

  template <class T>
  void pointwise_loss_forward(PointwiseLoss kind, ConstView<T> a, ConstView<T> b, TensorView<T> row_loss) const {
    check::row_loss_args("pointwise_loss_forward", a, b, row_loss);
    check::on_host("pointwise_loss_forward", a, b, row_loss);
    if (!cpu::pointwise_loss_forward(context(), kind, a, b, row_loss)) reference::pointwise_loss_forward(kind, a, b, row_loss);
  }

  template <class T>
  void pointwise_loss_backward(PointwiseLoss kind, ConstView<T> a, ConstView<T> b, T scale, TensorView<T> da,
                               TensorView<T> db) const {
    check::pair_gradient_args("pointwise_loss_backward", a, b, da, db);
    check::on_host("pointwise_loss_backward", a, b, da, db);
    if (!cpu::pointwise_loss_backward(context(), kind, a, b, scale, da, db))
      reference::pointwise_loss_backward(kind, a, b, scale, da, db);
  }

  template <class T>
  void cross_entropy_forward(ConstView<T> logp, ConstView<std::int64_t> labels, TensorView<T> row_loss) const {
    check::on_host("cross_entropy_forward", logp, labels, row_loss);
    check::cross_entropy_forward_args(logp, labels, row_loss);
    if (!cpu::cross_entropy_forward(context(), logp, labels, row_loss)) reference::cross_entropy_forward(logp, labels, row_loss);
  }

  template <class T>
  void cross_entropy_backward(ConstView<T> logp, ConstView<std::int64_t> labels, T scale,
                              TensorView<T> dlogits) const {
    check::on_host("cross_entropy_backward", logp, labels, dlogits);
    check::cross_entropy_backward_args(logp, labels, dlogits);
    if (!cpu::cross_entropy_backward(context(), logp, labels, scale, dlogits))
      reference::cross_entropy_backward(logp, labels, scale, dlogits);
  }

  template <class T>
  void soft_cross_entropy_forward(ConstView<T> logp, ConstView<T> targets, TensorView<T> row_loss) const {
    check::row_loss_args("soft_cross_entropy_forward", logp, targets, row_loss);
    check::on_host("soft_cross_entropy_forward", logp, targets, row_loss);
    if (!cpu::soft_cross_entropy_forward(context(), logp, targets, row_loss))
      reference::soft_cross_entropy_forward(logp, targets, row_loss);
  }

  template <class T>
  void soft_cross_entropy_backward(ConstView<T> logp, ConstView<T> targets, T scale, TensorView<T> dlogits) const {
    check::soft_cross_entropy_backward_args(logp, targets, dlogits);
    check::on_host("soft_cross_entropy_backward", logp, targets, dlogits);
    if (!cpu::soft_cross_entropy_backward(context(), logp, targets, scale, dlogits))
      reference::soft_cross_entropy_backward(logp, targets, scale, dlogits);
  }

  template <class T>
  void kl_div_forward(ConstView<T> logp_student, ConstView<T> logp_teacher, TensorView<T> row_loss) const {
    check::row_loss_args("kl_div_forward", logp_student, logp_teacher, row_loss);
    check::on_host("kl_div_forward", logp_student, logp_teacher, row_loss);
    if (!cpu::kl_div_forward(context(), logp_student, logp_teacher, row_loss))
      reference::kl_div_forward(logp_student, logp_teacher, row_loss);
  }

  template <class T>
  void kl_div_backward(ConstView<T> logp_student, ConstView<T> logp_teacher, ConstView<T> row_loss, T scale,
                       TensorView<T> d_student, TensorView<T> d_teacher) const {
    check::kl_div_backward_args(logp_student, logp_teacher, row_loss, d_student, d_teacher);
    check::on_host("kl_div_backward", logp_student, logp_teacher, row_loss, d_student, d_teacher);
    if (!cpu::kl_div_backward(context(), logp_student, logp_teacher, row_loss, scale, d_student, d_teacher))
      reference::kl_div_backward(logp_student, logp_teacher, row_loss, scale, d_student, d_teacher);
  }

  template <class T>
  void temporal_pool_forward(Pooling mode, ConstView<T> x, index_t frames, TensorView<T> y,
                             TensorView<std::int64_t> argmax) const {
    check::temporal_pool_forward_args(mode, x, frames, y, argmax);
    check::on_host("temporal_pool_forward", x, y, argmax);
    if (!cpu::temporal_pool_forward(context(), mode, x, frames, y, argmax))
      reference::temporal_pool_forward(mode, x, frames, y, argmax);
  }

  template <class T>
  void temporal_pool_backward(Pooling mode, index_t frames, ConstView<T> dy, ConstView<std::int64_t> argmax,
                              TensorView<T> dx) const {
    check::temporal_pool_backward_args(mode, frames, dy, argmax, dx);
    check::on_host("temporal_pool_backward", dy, argmax, dx);
    if (!cpu::temporal_pool_backward(context(), mode, frames, dy, argmax, dx))
      reference::temporal_pool_backward(mode, frames, dy, argmax, dx);
  }

  template <class T>
  void log_softmax_forward(ConstView<T> x, T scale, TensorView<T> y) const {
    check::elementwise("log_softmax_forward", "x", x, "y", y);
    check::on_host("log_softmax_forward", x, y);
    if (!cpu::log_softmax_forward(context(), x, scale, y)) reference::log_softmax_forward(x, scale, y);
  }

  template <class T>
  void axpby(T alpha, ConstView<T> x, T beta, TensorView<T> y) const {
    check::axpby_args(x, y);
    check::on_host("axpby", x, y);
    if constexpr (std::is_same_v<T, float>) {
      if (cpu::rows_contiguous(x, y))
        return cpu::for_each_row(context(), y.rows(), [&](auto tag, index_t i) {
          axpby_row(tag, y.cols(), alpha, &x(i, 0), beta, &y(i, 0));
        });
    }
    reference::axpby(alpha, x, beta, y);
  }

  template <class T>
  void activation_forward(Activation act, ConstView<T> x, TensorView<T> y) const {
    check::activation_args(x, x, y, false);
    check::on_host("activation_forward", x, y);
    if constexpr (std::is_same_v<T, float>) {
      if (cpu::rows_contiguous(x, y))
        return cpu::for_each_row(context(), x.rows(), [&](auto tag, index_t i) {
          activation_forward_row(tag, act, x.cols(), &x(i, 0), &y(i, 0));
        });
    }
    reference::activation_forward(act, x, y);
  }

  template <class T>
  void activation_backward(Activation act, ConstView<T> x, ConstView<T> dy, TensorView<T> dx) const {
    check::activation_args(x, dy, dx, true);
    check::on_host("activation_backward", x, dy, dx);
    if constexpr (std::is_same_v<T, float>) {
      if (cpu::rows_contiguous(x, dy, dx))
        return cpu::for_each_row(context(), x.rows(), [&](auto tag, index_t i) {
          activation_backward_row(tag, act, x.cols(), &x(i, 0), &dy(i, 0), &dx(i, 0));
        });
    }
    reference::activation_backward(act, x, dy, dx);
  }

 private:
  cpu::Isa isa_;
  std::shared_ptr<cpu::ThreadPool> pool_;
};

static_assert(Backend<CpuBackend>);

}  // namespace froster
