#pragma once
/// @file
/// Row-wise kernel drivers of the CPU backend (copy, fill, L2 normalisation, cosine, LayerNorm, softmax,
/// log-softmax): split rows over the pool, dispatch to the ISA's kernel (kernels/rows-inl.hpp). Each returns false
/// for cases it does not take (fp64; a matrix or gamma/beta without unit column stride), and the backend then runs
/// the reference loops. Arguments arrive checked. Every result is independent of the thread count: a row is
/// computed by one thread, and LayerNorm's column sums (dgamma, dbeta) are reduced over fixed row blocks in a
/// fixed order.

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <memory>
#include <type_traits>
#include <vector>

#include "froster/backends/cpu/context.hpp"
#include "froster/backends/cpu/kernels.hpp"
#include "froster/backends/op_checks.hpp"
#include "froster/core/tensor_view.hpp"

namespace froster::cpu {

namespace rows_driver {

/// Below this many elements a call runs on the calling thread: waking the pool costs more than it saves.
inline constexpr index_t serial_elements = index_t(1) << 14;

/// Runs task(b) for b in [0, tasks) over the pool. With n = min(pool size, tasks), pool thread t < n owns the
/// contiguous share [t * tasks / n, (t + 1) * tasks / n) and takes its own tasks first, front to back; a thread
/// done with its share (or owning none) then takes the tasks of the other shares that have not started. The same
/// rows land on the same core call after call, so data that a kernel reads again (a benchmark's loop, a block's
/// LayerNorm input written by a GEMM split the same way) stays in that core's L2: taking tasks from one shared
/// counter spread them over the cores, which cost L2-sized row kernels 20-30% on the 2 MiB-L2 Xeon
/// (benchmarks/kernels/ROWS.md). A worker that wakes late, or is descheduled by a busy host, still finds its share
/// taken over instead of holding the call up. Which thread runs a task never changes what the task computes, so
/// results stay independent of the thread count and of the timing.
template <class TaskFn>
void run_dynamic(Context ctx, index_t tasks, TaskFn&& task) {
  const index_t pool_threads = ctx.pool->size(), shares_count = std::min<index_t>(pool_threads, tasks);
  if (shares_count <= 1) {
    for (index_t b = 0; b < tasks; ++b) task(b);
    return;
  }
  struct alignas(64) Share {  // one cache line each: the owner's claims do not contend with its neighbour's
    std::atomic<index_t> next;
    index_t end;
  };
  std::unique_ptr<Share[]> shares(new Share[std::size_t(shares_count)]);
  for (index_t t = 0; t < shares_count; ++t) {
    shares[std::size_t(t)].next.store(tasks * t / shares_count, std::memory_order_relaxed);
    shares[std::size_t(t)].end = tasks * (t + 1) / shares_count;
  }
  // One task per pool thread, so the calling thread (pool task 0) always owns share 0.
  ctx.pool->parallel_for(pool_threads, [&](index_t self) {
    for (index_t k = 0; k < shares_count; ++k) {  // own share first, then the others' in turn
      Share& share = shares[std::size_t((self + k) % shares_count)];
      for (index_t b = share.next.fetch_add(1, std::memory_order_relaxed); b < share.end;
           b = share.next.fetch_add(1, std::memory_order_relaxed))
        task(b);
    }
  });
}

/// block(tag, begin, end) over row ranges covering [0, rows): blocks of rows over the pool (8 per thread), or one
/// range on the calling thread for small matrices. Kernels must give each row the same result whatever range it
/// falls in.
template <class BlockFn>
void run_row_blocks(Context ctx, index_t rows, index_t cols, BlockFn&& block) {
  if (rows <= 0) return;
  dispatch(ctx.isa, [&](auto tag) {
    if (rows * cols < serial_elements || ctx.pool->size() == 1) {
      block(tag, index_t(0), rows);
      return;
    }
    const index_t blocks = std::min<index_t>(rows, index_t(ctx.pool->size()) * 8);
    run_dynamic(ctx, blocks, [&](index_t b) { block(tag, rows * b / blocks, rows * (b + 1) / blocks); });
  });
}

/// row(tag, i) for every row, in the blocks of run_row_blocks.
template <class RowFn>
void run_rows(Context ctx, index_t rows, index_t cols, RowFn&& row) {
  run_row_blocks(ctx, rows, cols, [&](auto tag, index_t begin, index_t end) {
    for (index_t i = begin; i < end; ++i) row(tag, i);
  });
}

/// A rank-1 view the SIMD kernels can read directly.
template <class T>
bool unit_vector(const TensorView<T>& v) {
  return v.extent(0) <= 1 || v.stride(0) == 1;
}

/// Per-thread scratch for LayerNorm's column partials; grows, never shrinks.
inline std::vector<float>& scratch() {
  thread_local std::vector<float> buffer;
  return buffer;
}

}  // namespace rows_driver

/// dst = src: one memmove per row (or one for the whole matrix when both are dense), rows over the pool. Any
/// element type. Transposed layouts (unit row stride) are copied as their transposes; views that overlap without
/// being the same view run the reference loops, whose element order defines the result.
template <class T>
bool copy(Context ctx, ConstView<T> src, TensorView<T> dst) {
  if (src.numel() == 0) return true;
  if (!rows_contiguous(src, dst)) {
    if (rows_contiguous(src.transposed(), dst.transposed())) return copy(ctx, src.transposed(), dst.transposed());
    return false;
  }
  if (check::same_view(src, dst)) return true;  // extents already equal
  if (check::overlap(src, dst)) return false;
  const index_t rows = src.rows(), cols = src.cols();
  if (src.is_contiguous() && dst.is_contiguous()) {
    // One flat range, cut into equal chunks of at least 64 KiB.
    const index_t n = rows * cols, chunks = std::max<index_t>(1, std::min<index_t>(ctx.pool->size(), n / 16384));
    ctx.pool->parallel_for(chunks, [&](index_t c) {
      const index_t begin = n * c / chunks, end = n * (c + 1) / chunks;
      std::memcpy(dst.data() + begin, src.data() + begin, std::size_t(end - begin) * sizeof(T));
    });
    return true;
  }
  rows_driver::run_rows(ctx, rows, cols, [&](auto, index_t i) {
    std::memcpy(&dst(i, 0), &src(i, 0), std::size_t(cols) * sizeof(T));
  });
  return true;
}

/// dst = value, rows over the pool. Any element type; transposed layouts are filled as their transposes.
template <class T>
bool fill(Context ctx, TensorView<T> dst, T value) {
  if (dst.numel() == 0) return true;
  if (!rows_contiguous(dst)) return rows_contiguous(dst.transposed()) && fill(ctx, dst.transposed(), value);
  const index_t cols = dst.cols();
  rows_driver::run_rows(ctx, dst.rows(), cols, [&](auto, index_t i) { std::fill_n(&dst(i, 0), cols, value); });
  return true;
}

template <class T>
bool l2_normalize_forward(Context ctx, ConstView<T> x, TensorView<T> y, TensorView<T> norms) {
  if constexpr (!std::is_same_v<T, float>) return false;
  else {
    if (!rows_contiguous(x, y)) return false;
    const index_t cols = x.cols();
    rows_driver::run_rows(ctx, x.rows(), cols, [&](auto tag, index_t i) {
      norms(i) = l2_normalize_forward_row(tag, cols, &x(i, 0), &y(i, 0));
    });
    return true;
  }
}

template <class T>
bool l2_normalize_backward(Context ctx, ConstView<T> y, ConstView<T> norms, ConstView<T> dy, TensorView<T> dx) {
  if constexpr (!std::is_same_v<T, float>) return false;
  else {
    if (!rows_contiguous(y, dy, dx)) return false;
    const index_t cols = y.cols();
    rows_driver::run_rows(ctx, y.rows(), cols, [&](auto tag, index_t i) {
      l2_normalize_backward_row(tag, cols, &y(i, 0), norms(i), &dy(i, 0), &dx(i, 0));
    });
    return true;
  }
}

template <class T>
bool cosine_forward(Context ctx, ConstView<T> a, ConstView<T> b, T eps, TensorView<T> cos, TensorView<T> norm_a,
                    TensorView<T> norm_b) {
  if constexpr (!std::is_same_v<T, float>) return false;
  else {
    if (!rows_contiguous(a, b)) return false;
    const index_t cols = a.cols();
    rows_driver::run_rows(ctx, a.rows(), cols, [&](auto tag, index_t i) {
      float na = 0, nb = 0;
      cos(i) = cosine_forward_row(tag, cols, &a(i, 0), &b(i, 0), eps, na, nb);
      norm_a(i) = na;
      norm_b(i) = nb;
    });
    return true;
  }
}

/// The per-row coefficients of the cosine's gradient, da = cross b - self_a a and db = cross a - self_b b, for a
/// row with norms na, nb and cosine c: the reference's, in double (see reference::cosine_backward for the eps
/// rule).
struct CosineBackwardCoefficients {
  float cross, self_a, self_b;
};
inline CosineBackwardCoefficients cosine_backward_coefficients(float norm_a, float norm_b, float cos, float eps,
                                                               float scale) {
  const double na = double(norm_a), nb = double(norm_b), c = double(cos);
  const double ca = std::max(na, double(eps)), cb = std::max(nb, double(eps));
  const double cross = double(scale) / (ca * cb);
  const double self_a = na > 0 ? double(scale) * c / (na * ca) : 0.0;
  const double self_b = nb > 0 ? double(scale) * c / (nb * cb) : 0.0;
  return {float(cross), float(self_a), float(self_b)};
}

template <class T>
bool cosine_backward(Context ctx, ConstView<T> a, ConstView<T> b, ConstView<T> cos, ConstView<T> norm_a,
                     ConstView<T> norm_b, T eps, T scale, TensorView<T> da, TensorView<T> db) {
  if constexpr (!std::is_same_v<T, float>) return false;
  else {
    if (!rows_contiguous(a, b) || (!da.is_null() && !rows_contiguous(da)) || (!db.is_null() && !rows_contiguous(db)))
      return false;
    if (da.is_null() && db.is_null()) return true;
    const index_t cols = a.cols();
    rows_driver::run_rows(ctx, a.rows(), cols, [&](auto tag, index_t i) {
      const CosineBackwardCoefficients k = cosine_backward_coefficients(norm_a(i), norm_b(i), cos(i), eps, scale);
      cosine_backward_row(tag, cols, &a(i, 0), &b(i, 0), k.cross, k.self_a, k.self_b,
                          da.is_null() ? nullptr : &da(i, 0), db.is_null() ? nullptr : &db(i, 0));
    });
    return true;
  }
}

template <class T>
bool layer_norm_forward(Context ctx, ConstView<T> x, ConstView<T> gamma, ConstView<T> beta, T eps, TensorView<T> y,
                        TensorView<T> mean, TensorView<T> rstd) {
  if constexpr (!std::is_same_v<T, float>) return false;
  else {
    if (!rows_contiguous(x, y) || !rows_driver::unit_vector(gamma) || !rows_driver::unit_vector(beta)) return false;
    const index_t cols = x.cols();
    if (cols == 0) return false;  // mean of nothing: the reference's NaN
    const index_t rows = x.rows();
    rows_driver::run_rows(ctx, rows, cols, [&](auto tag, index_t i) {
      float m = 0, r = 0;
      const bool next = i + 1 < rows;
      layer_norm_forward_row(tag, cols, &x(i, 0), gamma.data(), beta.data(), eps, &y(i, 0), m, r,
                             next ? &x(i + 1, 0) : nullptr, next ? &y(i + 1, 0) : nullptr);
      mean(i) = m;
      rstd(i) = r;
    });
    return true;
  }
}

/// dx per row as the reference; dgamma += sum_i dy xhat and dbeta += sum_i dy reduce over fixed blocks of
/// `block_rows` rows: each block sums its rows in order into its own partials, then every column adds the
/// blocks' partials in block order. Neither depends on the thread count, so the result is bitwise the same on
/// any pool.
template <class T>
bool layer_norm_backward(Context ctx, ConstView<T> x, ConstView<T> gamma, ConstView<T> mean, ConstView<T> rstd,
                         ConstView<T> dy, TensorView<T> dx, TensorView<T> dgamma, TensorView<T> dbeta) {
  if constexpr (!std::is_same_v<T, float>) return false;
  else {
    if (!rows_contiguous(x, dy, dx) || !rows_driver::unit_vector(gamma)) return false;
    const index_t rows = x.rows(), cols = x.cols();
    if (rows == 0 || cols == 0) return true;
    constexpr index_t block_rows = 32, chunk_cols = 256;
    constexpr int group_rows = 4;  // rows whose dgamma/dbeta partials one pass updates together
    const index_t blocks = (rows + block_rows - 1) / block_rows;
    const index_t pitch = (cols + 15) / 16 * 16;  // partial rows start 64-byte aligned
    std::vector<float>& part = rows_driver::scratch();
    if (part.size() < std::size_t(2 * blocks * pitch)) part.resize(std::size_t(2 * blocks * pitch));
    float* const dg_part = part.data();
    float* const db_part = part.data() + blocks * pitch;
    const bool parallel = rows * cols >= rows_driver::serial_elements && ctx.pool->size() > 1;
    dispatch(ctx.isa, [&](auto tag) {
      auto block = [&](index_t b) {
        float* dg = dg_part + b * pitch;
        float* db = db_part + b * pitch;
        std::fill_n(dg, cols, 0.0f);
        std::fill_n(db, cols, 0.0f);
        const index_t end = std::min(rows, (b + 1) * block_rows);
        index_t i = b * block_rows;
        for (; i + group_rows <= end; i += group_rows) {
          float m[group_rows], r[group_rows];
          for (index_t q = 0; q < group_rows; ++q) m[q] = mean(i + q), r[q] = rstd(i + q);
          layer_norm_backward_rows<group_rows>(tag, cols, &x(i, 0), x.stride(0), gamma.data(), m, r, &dy(i, 0),
                                               dy.stride(0), &dx(i, 0), dx.stride(0), dg, db);
        }
        for (; i < end; ++i)
          layer_norm_backward_row(tag, cols, &x(i, 0), gamma.data(), mean(i), rstd(i), &dy(i, 0), &dx(i, 0), dg, db);
      };
      if (parallel) rows_driver::run_dynamic(ctx, blocks, block);
      else
        for (index_t b = 0; b < blocks; ++b) block(b);
      // The blocks' partials, summed in block order on the calling thread: a small fraction of the work (2 cols
      // adds per block of block_rows rows), not worth a second wake-up of the pool.
      for (index_t begin = 0; begin < cols; begin += chunk_cols) {
        const index_t n = std::min(chunk_cols, cols - begin);
        float dg_sum[chunk_cols], db_sum[chunk_cols];
        sum_blocks(tag, n, blocks, dg_part + begin, pitch, dg_sum);
        sum_blocks(tag, n, blocks, db_part + begin, pitch, db_sum);
        for (index_t j = 0; j < n; ++j) {
          dgamma(begin + j) += dg_sum[j];
          dbeta(begin + j) += db_sum[j];
        }
      }
    });
    return true;
  }
}

template <class T>
bool softmax_forward(Context ctx, ConstView<T> x, T scale, bool causal, TensorView<T> y) {
  if constexpr (!std::is_same_v<T, float>) return false;
  else {
    if (!rows_contiguous(x, y)) return false;
    // In place is fine (each element is written after its row's reads); other overlaps take the reference's order.
    if (check::overlap(x, y) && !check::same_view(x, y)) return false;
    const index_t cols = x.cols();
    if (cols == 0) return true;
    rows_driver::run_row_blocks(ctx, x.rows(), cols, [&](auto tag, index_t begin, index_t end) {
      softmax_forward_rows(tag, end - begin, cols, &x(begin, 0), x.stride(0), scale, causal, begin, &y(begin, 0),
                           y.stride(0));
    });
    return true;
  }
}

template <class T>
bool softmax_backward(Context ctx, ConstView<T> y, ConstView<T> dy, T scale, TensorView<T> dx) {
  if constexpr (!std::is_same_v<T, float>) return false;
  else {
    if (!rows_contiguous(y, dy, dx)) return false;
    const index_t cols = y.cols();
    rows_driver::run_rows(ctx, y.rows(), cols, [&](auto tag, index_t i) {
      softmax_backward_row(tag, cols, &y(i, 0), &dy(i, 0), scale, &dx(i, 0));
    });
    return true;
  }
}

template <class T>
bool log_softmax_forward(Context ctx, ConstView<T> x, T scale, TensorView<T> y) {
  if constexpr (!std::is_same_v<T, float>) return false;
  else {
    if (!rows_contiguous(x, y)) return false;
    const index_t cols = x.cols();
    if (cols == 0) return true;
    rows_driver::run_rows(ctx, x.rows(), cols, [&](auto tag, index_t i) {
      log_softmax_forward_row(tag, cols, &x(i, 0), scale, &y(i, 0));
    });
    return true;
  }
}

}  // namespace froster::cpu
