#pragma once
/// @file
/// `CpuBackend`: hand-written SIMD kernels (scalar, AVX2+FMA, AVX-512) chosen at run time, threaded over a pool
/// of its own. fp32 views whose rows are contiguous (unit column stride; any row stride) run the SIMD kernels;
/// other layouts and fp64 run the reference loops, which are the ground truth the kernels are tested against.
/// Ops without a SIMD kernel yet inherit the reference implementation (see docs/backends.md for which).

#include <memory>
#include <optional>
#include <type_traits>

#include "froster/backends/cpu/attention.hpp"
#include "froster/backends/cpu/context.hpp"
#include "froster/backends/cpu/gemm.hpp"
#include "froster/backends/cpu/isa.hpp"
#include "froster/backends/cpu/kernels.hpp"
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
    check::elementwise("softmax_backward", "y", y, "dy", dy);
    check::same_extents("softmax_backward", "y", y, "dx", dx);
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
