#pragma once
/// @file
/// `CpuBackend`: hand-written SIMD kernels (scalar, AVX2+FMA, AVX-512) chosen at run time, threaded over a pool
/// of its own. fp32 views whose rows are contiguous (unit column stride; any row stride) run the SIMD kernels;
/// other layouts and fp64 run the reference loops, which are the ground truth the kernels are tested against.
/// Ops without a SIMD kernel yet inherit the reference implementation (see docs/backends.md for which).

#include <memory>
#include <optional>
#include <type_traits>

#include "froster/backends/cpu/isa.hpp"
#include "froster/backends/cpu/kernels.hpp"
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
  int threads() const { return pool_->size(); }

  template <class T>
  void axpby(T alpha, ConstView<T> x, T beta, TensorView<T> y) const {
    check::axpby_args(x, y);
    check::on_host("axpby", x, y);
    if constexpr (std::is_same_v<T, float>) {
      if (rows_contiguous(x, y))
        return for_rows(y.rows(), [&](auto tag, index_t i) {
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
      if (rows_contiguous(x, y))
        return for_rows(x.rows(), [&](auto tag, index_t i) {
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
      if (rows_contiguous(x, dy, dx))
        return for_rows(x.rows(), [&](auto tag, index_t i) {
          activation_backward_row(tag, act, x.cols(), &x(i, 0), &dy(i, 0), &dx(i, 0));
        });
    }
    reference::activation_backward(act, x, dy, dx);
  }

 protected:
  /// Matrices whose rows are contiguous: what the SIMD row kernels take.
  template <class... Views>
  static bool rows_contiguous(const Views&... views) {
    return ((views.rank() == 2 && (views.stride(1) == 1 || views.cols() <= 1)) && ...);
  }

  /// Runs row(tag, i) for every row, rows split over the pool in contiguous blocks (each row is written by one
  /// thread, so results do not depend on the thread count).
  template <class RowFn>
  void for_rows(index_t rows, RowFn&& row) const {
    const index_t blocks = std::min<index_t>(rows, index_t(pool_->size()) * 4);
    cpu::dispatch(isa_, [&](auto tag) {
      pool_->parallel_for(blocks, [&](index_t b) {
        for (index_t i = rows * b / blocks, end = rows * (b + 1) / blocks; i < end; ++i) row(tag, i);
      });
    });
  }

  cpu::Isa isa_;
  std::shared_ptr<cpu::ThreadPool> pool_;
};

static_assert(Backend<CpuBackend>);

}  // namespace froster
