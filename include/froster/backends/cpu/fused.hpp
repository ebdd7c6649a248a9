#pragma once
/// @file
/// The CPU backend's fused GEMM (froster/backends/fused.hpp): one SGEMM whose epilogue adds the bias and the
/// residual and applies the activation (saving its input) or the activation-derivative product on each finished
/// row segment of C while the tile is still in L1, instead of separate passes over C. Returns false for cases it
/// does not take (fp64; a residual, save_pre or derivative_at without contiguous rows; a strided bias): the backend
/// then runs the composition of its own ops. Arguments arrive checked (check::fused_gemm_args).

#include <algorithm>
#include <type_traits>

#include "froster/backends/cpu/context.hpp"
#include "froster/backends/cpu/gemm.hpp"
#include "froster/backends/cpu/kernels.hpp"
#include "froster/backends/fused.hpp"

#if defined(__GNUC__)
#define FROSTER_FUSED_INLINE __attribute__((always_inline))
#else
#define FROSTER_FUSED_INLINE
#endif

namespace froster::cpu {

/// Prefetches the cache lines of `count` floats from `p` into L1 (`write`: for a store).
template <bool write>
inline void prefetch_floats(const float* p, index_t count) {
  for (index_t q = 0; q < count; q += 16) __builtin_prefetch(p + q, write ? 1 : 0, 3);
  __builtin_prefetch(p + count - 1, write ? 1 : 0, 3);  // the last line, where p is not line-aligned
}

/// `packed`: op(B) pre-packed (b and tb are its source), or null (see gemm.hpp).
template <class T>
bool fused_gemm(Context ctx, T alpha, ConstView<T> a, Transpose ta, ConstView<T> b, Transpose tb,
                const LinearEpilogue<T>& epi, TensorView<T> c, const PackedGemmOperand* packed = nullptr) {
  if constexpr (!std::is_same_v<T, float>) {
    return false;
  } else {
    // A residual that is C itself accumulates through beta = 1 (the epilogue must not read C's old values).
    const bool in_place = !epi.residual.is_null() && check::same_view(epi.residual, ConstView<float>(c));
    const ConstView<float> residual = in_place ? ConstView<float>{} : epi.residual;
    const auto rows_ok = [](const auto& v) { return v.is_null() || rows_contiguous(v); };
    if (!rows_ok(residual) || !rows_ok(epi.save_pre) || !rows_ok(epi.derivative_at)) return false;
    if (!epi.bias.is_null() && epi.bias.extent(0) > 1 && epi.bias.stride(0) != 1) return false;
    const float beta = in_place ? 1.0f : 0.0f;
    const float* bias = epi.bias.is_null() ? nullptr : epi.bias.data();
    const TensorView<float> pre = epi.save_pre;
    const ConstView<float> at = epi.derivative_at;
    const Activation* act = epi.activation ? &*epi.activation : nullptr;
    if (bias == nullptr && residual.is_null() && act == nullptr) return gemm(ctx, alpha, a, ta, b, tb, beta, c, NoEpilogue{}, packed);
    const index_t last_row = c.rows() - 1;
    // Always inlined into the GEMM's tile loop: one call per row segment (to the ISA level's row kernel, which
    // cannot inline into this lambda's generic-ISA body) instead of two; measured, the second call cost as much
    // as the separate passes the fusion saves.
    const auto epilogue = [&](auto tag, index_t row, index_t col, float* values, index_t count)
                              FROSTER_FUSED_INLINE {
      // The GEMM walks a column panel's tiles down the rows: the operands of the tile MR rows below are fetched
      // now, while that tile's products are computed, instead of stalling its epilogue on scattered row lines.
      const index_t next = std::min(row + gemm_blocking(tag).mr, last_row);
      if (!residual.is_null()) prefetch_floats<false>(&residual(next, col), count);
      if (!at.is_null()) prefetch_floats<false>(&at(next, col), count);
      if (!pre.is_null()) prefetch_floats<true>(&pre(next, col), count);
      fused_epilogue_row(tag, count, values, bias == nullptr ? nullptr : bias + col,
                         residual.is_null() ? nullptr : &residual(row, col), act,
                         pre.is_null() ? nullptr : &pre(row, col), at.is_null() ? nullptr : &at(row, col));
    };
    return gemm(ctx, alpha, a, ta, b, tb, beta, c, epilogue, packed);
  }
}

}  // namespace froster::cpu
