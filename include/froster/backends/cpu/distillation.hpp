#pragma once
/// @file
/// The CPU backend's fused distillation step (froster/backends/fused_distillation.hpp): normalisation, residual
/// projector and cosine loss, forward and backward, over blocks of rows. Each block runs the whole chain on one
/// thread (normalise z and t, z W1^T with GELU, + alpha g W2^T, cosine; then the cosine gradient, d_pre = alpha
/// dh W2 * gelu'(pre), d_zn = dh + d_pre W1, the normalisation's backward), with the weights packed once per call
/// and the block's intermediates in L1/L2, instead of one pass over all rows per op. Only what the weight
/// gradients need (g, d_pre, zn, dh) and what the backward reads (pre, h, tn) is kept for all rows; the weight
/// gradients are then two GEMMs over all rows.
///
/// Every row is computed with the same kernels, k blocks and operation order as the composition in
/// FeatureDistiller on this backend (row kernels, the GEMM micro-kernel through gemm_rows_serial, the GEMM
/// epilogues), so the results are bitwise the composition's, whatever the block size or thread count (tested).
/// Returns nullopt for cases it does not take (fp64, views without contiguous rows, fewer MR-row register tiles of
/// rows than threads, and, on several threads, fewer than distill_detail::min_tiles_per_thread of them per thread
/// where the composition's GEMMs split the weights' columns instead).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <optional>
#include <type_traits>
#include <utility>

#include "froster/backends/cpu/context.hpp"
#include "froster/backends/cpu/gemm.hpp"
#include "froster/backends/cpu/kernels.hpp"
#include "froster/backends/cpu/reductions.hpp"
#include "froster/backends/cpu/rows.hpp"
#include "froster/backends/fused_distillation.hpp"

namespace froster::cpu {

namespace distill_detail {

/// Grow-only scratch for the step's kept intermediates, one per calling thread, reused across steps.
inline float* step_buffer(std::size_t floats) {
  thread_local detail::GemmScratch buffer;
  return buffer.get(floats);
}

/// Per-thread scratch for a block's d_zn, which no later pass reads.
inline float* block_buffer(std::size_t floats) {
  thread_local detail::GemmScratch buffer;
  return buffer.get(floats);
}

/// The composition's GEMM epilogues (fused_gemm's) on row segments of a block, rows counted from the block's
/// first; each pointer is a [rows, ld] block or null: v += residual; then with `act`, pre = v and v = act(v), or,
/// given `at`, v *= act'(at).
struct BlockEpilogue {
  index_t ld;
  const float* residual = nullptr;
  const Activation* act = nullptr;
  float* pre = nullptr;
  const float* at = nullptr;
  template <class Tag>
  void operator()(Tag tag, index_t row, index_t col, float* v, index_t count) const {
    const index_t at_row = row * ld + col;
    fused_epilogue_row(tag, count, v, nullptr, residual ? residual + at_row : nullptr, act,
                       pre ? pre + at_row : nullptr, at ? at + at_row : nullptr);
  }
};
inline constexpr Activation gelu = Activation::gelu;

/// The step declines below this many register tiles of rows per thread (see cosine_distillation_step). A variable
/// so the tests can lower it to reach the fused path with few rows on several threads; set it only while no step
/// runs.
inline index_t min_tiles_per_thread = detail::gemm_min_row_split_panels;

}  // namespace distill_detail

template <class T>
std::optional<double> cosine_distillation_step(Context ctx, const CosineDistillationStep<T>& s) {
  if constexpr (!std::is_same_v<T, float>) {
    return std::nullopt;
  } else {
    if (!rows_contiguous(s.student, s.teacher, s.d_student)) return std::nullopt;
    const index_t n = s.student.rows(), d = s.student.cols(), h = s.w1.rows();
    if (d == 0 || h == 0) return std::nullopt;
    index_t mr = 1, nr = 1;
    dispatch(ctx.isa, [&](auto tag) { mr = gemm_blocking(tag).mr, nr = gemm_blocking(tag).nr; });
    const index_t panels = detail::ceil_div(n, mr), threads = ctx.pool->size();
    // Every block reads all four packed weights: a row split of the step's products. Where the composition's GEMMs
    // split their columns instead (few register tiles of rows per thread, output widths d and h that split evenly:
    // detail::gemm_thread_split), each thread reading its share of a weight, they ran faster: declined. (N = 64 at
    // D = H = 512 on 2 threads: 1.2-1.4x; benchmarks/README.md.)
    if (panels < threads) return std::nullopt;
    if (threads > 1 && detail::ceil_div(panels, threads) < distill_detail::min_tiles_per_thread &&
        detail::gemm_columns_split_evenly(threads, detail::ceil_div(d, nr)) &&
        detail::gemm_columns_split_evenly(threads, detail::ceil_div(h, nr)))
      return std::nullopt;
    // Kept for all rows: zn, tn, h, dh [n, d]; pre, g, d_pre [n, h]; norms of z, cos, norms of h and tn [n]; and
    // op(B) of the four products, packed once: W1^T and W2^T forward, W2 and W1 backward. In a scratch buffer
    // kept across calls: fresh pages would cost more than packing itself at few rows.
    const std::size_t nd = std::size_t(n * d), nh = std::size_t(n * h), nn = std::size_t(n);
    const auto w1_floats = std::size_t(packed_gemm_floats(ctx.isa, d, h));   // W1^T [d, h], and W2 [d, h]
    const auto w2_floats = std::size_t(packed_gemm_floats(ctx.isa, h, d));   // W2^T [h, d], and W1 [h, d]
    float* const w1t = distill_detail::step_buffer(4 * nd + 3 * nh + 4 * nn + 2 * (w1_floats + w2_floats));
    float* const w2t = w1t + w1_floats;
    float* const w2 = w2t + w2_floats;
    float* const w1 = w2 + w1_floats;
    float* const zn = w1 + w2_floats;
    float* const tn = zn + nd;
    float* const hp = tn + nd;
    float* const dh = hp + nd;
    float* const pre = dh + nd;
    float* const g = pre + nh;
    float* const d_pre = g + nh;
    float* const norm_z = d_pre + nh;
    float* const cos = norm_z + nn;
    float* const norm_h = cos + nn;
    float* const norm_t = norm_h + nn;
    pack_gemm_operand_into(ctx, s.w1, Transpose::yes, w1t);
    pack_gemm_operand_into(ctx, s.w2, Transpose::yes, w2t);
    pack_gemm_operand_into(ctx, s.w2, Transpose::no, w2);
    pack_gemm_operand_into(ctx, s.w1, Transpose::no, w1);

    // Row blocks of whole register tiles (MR rows), at most 8 tiles so a block stays in cache and at least 4
    // blocks per thread where there are rows for them. Each thread takes the blocks of its own share first, then
    // those its neighbours have not started (rows_driver::run_dynamic): a worker that wakes late, or is
    // descheduled by a busy host, leaves its blocks to the others instead of holding up the step. On 16 threads of
    // a 16-core VM, split statically the step was slower than the composition (whose GEMMs balance dynamically) in
    // 4 of 6 medians, with the blocks handed out dynamically in none.
    const index_t tiles = std::clamp<index_t>(panels / (threads * 4), 1, 8);
    const index_t blocks = detail::ceil_div(panels, tiles);
    const auto block_rows = [&](index_t b) {
      const index_t r0 = b * tiles * mr, r1 = std::min(n, (b + 1) * tiles * mr);
      return std::pair{r0, r1 - r0};
    };
    const float alpha = s.alpha;

    // Forward, block by block: zn, tn, pre and g = gelu(pre), h = zn + alpha g W2^T, cos.
    dispatch(ctx.isa, [&](auto tag) {
      rows_driver::run_dynamic(ctx, blocks, [&](index_t b) {
        const auto [r0, rows] = block_rows(b);
        for (index_t i = r0; i < r0 + rows; ++i) {
          norm_z[i] = l2_normalize_forward_row(tag, d, &s.student(i, 0), zn + i * d);
          l2_normalize_forward_row(tag, d, &s.teacher(i, 0), tn + i * d);
        }
        const distill_detail::BlockEpilogue save_pre{.ld = h, .act = &distill_detail::gelu, .pre = pre + r0 * h};
        detail::gemm_rows_serial(tag, rows, h, d, zn + r0 * d, d, w1t, g + r0 * h, h, 1.0f, &save_pre, 0);
        const distill_detail::BlockEpilogue add_zn{.ld = d, .residual = zn + r0 * d};
        detail::gemm_rows_serial(tag, rows, d, h, g + r0 * h, h, w2t, hp + r0 * d, d, alpha, &add_zn, 0);
        for (index_t i = r0; i < r0 + rows; ++i)
          cos[i] = cosine_forward_row(tag, d, hp + i * d, tn + i * d, s.eps, norm_h[i], norm_t[i]);
      });
    });
    const double loss = 1.0 - *sum(ctx, ConstView<float>(cos, {n})) / double(n);
    if (!std::isfinite(loss)) return loss;  // nothing written: the caller reports it

    // Backward, block by block: dh, d_pre = alpha dh W2 * gelu'(pre), d_zn = dh + d_pre W1, dz.
    const float scale = float(-1.0 / double(n)), weight = float(s.weight);
    dispatch(ctx.isa, [&](auto tag) {
      rows_driver::run_dynamic(ctx, blocks, [&](index_t b) {
        const auto [r0, rows] = block_rows(b);
        for (index_t i = r0; i < r0 + rows; ++i) {
          // cosine_backward (student side only), then the weight as axpby applies it.
          const CosineBackwardCoefficients k = cosine_backward_coefficients(norm_h[i], norm_t[i], cos[i], s.eps, scale);
          cosine_backward_row(tag, d, hp + i * d, tn + i * d, k.cross, k.self_a, 0.0f, dh + i * d, nullptr);
          if (weight != 1.0f) axpby_row(tag, d, weight, dh + i * d, 0.0f, dh + i * d);
        }
        const distill_detail::BlockEpilogue derivative{.ld = h, .act = &distill_detail::gelu, .at = pre + r0 * h};
        detail::gemm_rows_serial(tag, rows, h, d, dh + r0 * d, d, w2, d_pre + r0 * h, h, alpha, &derivative, 0);
        float* const d_zn = distill_detail::block_buffer(std::size_t(rows * d));
        const distill_detail::BlockEpilogue add_dh{.ld = d, .residual = dh + r0 * d};
        detail::gemm_rows_serial(tag, rows, d, h, d_pre + r0 * h, h, w1, d_zn, d, 1.0f, &add_dh, 0);
        for (index_t i = 0; i < rows; ++i)
          l2_normalize_backward_row(tag, d, zn + (r0 + i) * d, norm_z[r0 + i], d_zn + i * d, &s.d_student(r0 + i, 0));
      });
    });

    // The weight gradients over all rows, as the projector's backward computes them.
    const ConstView<float> dh_all(dh, {n, d}), g_all(g, {n, h}), d_pre_all(d_pre, {n, h}), zn_all(zn, {n, d});
    gemm(ctx, alpha, dh_all, Transpose::yes, g_all, Transpose::no, 1.0f, s.grad_w2);  // fp32: always taken
    gemm(ctx, 1.0f, d_pre_all, Transpose::yes, zn_all, Transpose::no, 1.0f, s.grad_w1);
    return loss;
  }
}

}  // namespace froster::cpu
