#pragma once
/// @file
/// What a CPU kernel driver needs from its backend: the instruction-set level and the thread pool.

#include <algorithm>

#include "froster/backends/cpu/isa.hpp"
#include "froster/backends/cpu/kernels.hpp"
#include "froster/backends/cpu/thread_pool.hpp"
#include "froster/core/tensor_view.hpp"

namespace froster::cpu {

struct Context {
  Isa isa;
  ThreadPool* pool;
};

/// Matrices whose rows are contiguous (unit column stride, any row stride): what the SIMD row kernels take.
template <class... Views>
bool rows_contiguous(const Views&... views) {
  return ((views.rank() == 2 && (views.stride(1) == 1 || views.cols() <= 1)) && ...);
}

/// Runs row(tag, i) for every row i, rows split over the pool in contiguous blocks. Each row is computed by one
/// thread from start to end, so results do not depend on the thread count.
template <class RowFn>
void for_each_row(Context ctx, index_t rows, RowFn&& row) {
  const index_t blocks = std::min<index_t>(rows, index_t(ctx.pool->size()) * 4);
  dispatch(ctx.isa, [&](auto tag) {
    ctx.pool->parallel_for(blocks, [&](index_t b) {
      for (index_t i = rows * b / blocks, end = rows * (b + 1) / blocks; i < end; ++i) row(tag, i);
    });
  });
}

}  // namespace froster::cpu
