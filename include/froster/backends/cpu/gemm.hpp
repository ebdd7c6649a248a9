#pragma once
/// @file
/// SGEMM driver of the CPU backend: C = alpha op(A) op(B) + beta C, GotoBLAS/BLIS style. Returns false for cases
/// it does not take (fp64: the backend then runs the reference loops). Arguments arrive checked; C must not
/// overlap A or B (as in BLAS).
///
/// Loop nest, per column chunk of C (all of C unless packed op(B) and C's columns would exceed gemm_chunk_budget),
/// one parallel_for:
///   - Each thread takes chunks of rows of C (whole MR-row panels, at most MC rows; guided: the chunks shrink as the
///     work runs out, so a thread the OS slows down leaves its share to the others) and, for every KC block of k,
///     packs that MC x KC block of op(A) into MR-row panels (kept in L2), then runs the micro-kernel over the row
///     chunk's tiles, column panel by column panel (each KC x NR panel of B stays in L1 across its MC / MR tiles).
///   - op(B) is packed once, into k x NR column panels (zero-padded), lazily: each unit of 4 panels x one k block is
///     packed by the first thread that needs it; threads start at different units and leave a unit another thread
///     is packing for last. No barrier, no packing phase of its own.
///   - Small M (few row panels per thread) splits C by columns, where that does less padded work, or where the rows
///     are too few to reuse B panels that other threads packed and the columns split evenly (gemm_thread_split).
///   - One row (M = 1, e.g. a bias gradient: a row of ones times dY) with contiguous rows of op(B) skips packing:
///     column chunks over the pool, each element through the micro-kernel's chain (gemm_row_block).
/// Packing reads A and B through their strides, so any layout costs only in packing. A C with unit row stride
/// (column-major) is computed as C^T = op(B)^T op(A)^T; any other non-unit column stride goes through a scratch
/// tile. Work is split over C only, never over k, and the k blocks depend only on k; each element's arithmetic is
/// the same whichever thread and tile computes it: results are bitwise identical run to run and whatever the
/// thread count.
///
/// Pre-packed op(B): `pack_gemm_operand` packs op(B) once into the same panels (all of k, so any k blocking reads
/// them), for a weight that many products read before it changes; `gemm` given it skips packing op(B) (10-25% of
/// a GEMM with few rows: ViT's 197-row and text's 77-row products). Results are bitwise those of the unpacked op(B).
///
/// Epilogue (for fusing a bias, a residual or an activation into the GEMM): the overload taking `epi` calls
/// `epi(tag, row, col, values, count)` on every finished row segment of C (`count` contiguous floats of row `row`
/// from column `col`, already alpha op(A) op(B) + beta C), exactly once per element, from the thread that computed
/// it, while the tile is still in L1; it may rewrite the values in place. `tag` is the ISA level's Tag, so the
/// epilogue can call the row kernels (e.g. activation_forward_row). It must be safe to call concurrently and must
/// not call gemm itself (the packing buffers are per thread).

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <new>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "froster/backends/cpu/context.hpp"
#include "froster/backends/cpu/kernels.hpp"
#include "froster/core/tensor_view.hpp"

namespace froster::cpu {

/// op(B) [k, n] packed once for the GEMMs of this backend (see the file comment). Holds the view it was packed
/// from: the products check their arguments against it, and cases the packed path does not take read it. The
/// packed copy does not follow later writes to that memory: pack again after changing it.
class PackedGemmOperand {
 public:
  PackedGemmOperand() = default;

  const ConstView<float>& source() const { return source_; }
  Transpose transpose() const { return transpose_; }
  index_t rows() const { return transpose_ == Transpose::no ? source_.rows() : source_.cols(); }  ///< k
  index_t cols() const { return transpose_ == Transpose::no ? source_.cols() : source_.rows(); }  ///< n
  Isa isa() const { return isa_; }
  const float* panels() const { return panels_.get(); }
  std::size_t bytes() const { return bytes_; }

 private:
  struct AlignedDelete {
    void operator()(float* p) const { ::operator delete(p, std::align_val_t{64}); }
  };
  friend PackedGemmOperand pack_gemm_operand(Context ctx, ConstView<float> b, Transpose tb);

  ConstView<float> source_;
  Transpose transpose_ = Transpose::no;
  Isa isa_ = Isa::scalar;
  std::unique_ptr<float[], AlignedDelete> panels_;
  std::size_t bytes_ = 0;
};

/// The epilogue that does nothing: plain GEMM.
struct NoEpilogue {
  template <class Tag>
  void operator()(Tag, index_t, index_t, float*, index_t) const {}
};

namespace detail {

/// A grow-only, 64-byte aligned buffer. One per thread and role, kept across calls, so packing reuses warm pages
/// instead of faulting fresh ones in on every call.
class GemmScratch {
 public:
  GemmScratch() = default;
  GemmScratch(const GemmScratch&) = delete;
  GemmScratch& operator=(const GemmScratch&) = delete;
  ~GemmScratch() { release(); }

  float* get(std::size_t floats) {
    if (floats > size_) {
      release();
      data_ = static_cast<float*>(::operator new(floats * sizeof(float), std::align_val_t{64}));
      size_ = floats;
    }
    return data_;
  }

 private:
  void release() {
    if (data_ != nullptr) ::operator delete(data_, std::align_val_t{64});
    data_ = nullptr;
    size_ = 0;
  }
  float* data_ = nullptr;
  std::size_t size_ = 0;
};

/// Packed op(A) blocks (one per worker thread) and packed op(B) (one per calling thread, shared with the workers).
inline float* gemm_a_buffer(std::size_t floats) {
  thread_local GemmScratch buffer;
  return buffer.get(floats);
}
inline float* gemm_b_buffer(std::size_t floats) {
  thread_local GemmScratch buffer;
  return buffer.get(floats);
}

inline index_t ceil_div(index_t a, index_t b) { return (a + b - 1) / b; }

/// At most this many floats of packed op(B) plus the columns of C they produce at once (8 MiB: a quarter of the
/// L3 of the machine this was tuned on); a wider problem is processed in column chunks. C is revisited once per k
/// block, so C and packed op(B) should stay in L3 between k blocks: ViT's MLP GEMM (1576 x 3072 x 768) ran 10%
/// faster in four chunks than in one. A variable so the tests can lower it to reach the chunked path with small
/// matrices; set it only while no GEMM runs.
inline index_t gemm_chunk_budget = index_t(1) << 21;
/// Below this many multiply-adds a GEMM runs on the calling thread alone: waking the pool would cost more.
inline constexpr double gemm_serial_work = double(1 << 18);
/// Packing one element of op(A) costs about as much as this many multiply-add columns (used to choose whether the
/// threads split C by rows or by columns: splitting by columns packs the same rows of op(A) on several threads).
inline constexpr double gemm_pack_weight = 32.0;
/// Split by rows, a thread streams every B panel of its column block through L1 once per row chunk, half of them
/// (with two threads) packed in the other core's cache, or all from memory when pre-packed, and reuses each for
/// its chunk's tiles only; split by columns, it reads its own share. Below this many row panels per thread the
/// columns are split wherever they split evenly: 64 and 256 x 512 x 512 ran 1.1-1.5x faster split by columns, 384
/// and 512 rows as fast or faster split by rows (benchmarks/kernels/GEMM.md).
inline constexpr index_t gemm_min_row_split_panels = 12;
/// op(B) is packed lazily in units of this many column panels x one k block.
inline constexpr index_t gemm_b_group = 4;
/// Row chunks shrink towards the end of the work (guided scheduling) down to this many row panels.
inline constexpr index_t gemm_min_row_panels = 4;

/// The B groups [first, last) of column block `block` of `blocks` when C's `groups` groups are split by columns.
inline std::pair<index_t, index_t> gemm_column_block(index_t groups, index_t block, index_t blocks) {
  return {groups * block / blocks, groups * (block + 1) / blocks};
}

/// Whether C's `npanels` column panels split over `threads` by whole groups of gemm_b_group panels
/// (gemm_column_block) give no thread more than 1.25x its even share.
inline bool gemm_columns_split_evenly(index_t threads, index_t npanels) {
  const index_t groups = ceil_div(npanels, gemm_b_group);
  if (groups < threads) return false;
  index_t largest = 0;
  for (index_t t = 0; t < threads; ++t) {
    const auto [ga, gb] = gemm_column_block(groups, t, threads);
    largest = std::max(largest, std::min(npanels, gb * gemm_b_group) - ga * gemm_b_group);
  }
  return 4 * largest * threads <= 5 * npanels;
}

/// How gemm_run splits C [mpanels x npanels register tiles of mr x nr] over `threads`: tn column blocks (whole
/// groups of B panels) x row panels shared by tm threads each, tm tn = threads. The split that does the least
/// padded work plus duplicated packing of op(A), except that rows are not shared by threads that would get fewer
/// than gemm_min_row_split_panels of them where the columns split evenly instead.
inline std::pair<index_t, index_t> gemm_thread_split(index_t threads, index_t mpanels, index_t npanels, index_t mr,
                                                     index_t nr) {
  const index_t groups = ceil_div(npanels, gemm_b_group);
  const bool even_columns = gemm_columns_split_evenly(threads, npanels);
  index_t tm = threads, tn = 1;
  double best = std::numeric_limits<double>::infinity();
  for (index_t rows_split = 1; rows_split <= threads; ++rows_split) {
    if (threads % rows_split != 0 || threads / rows_split > groups) continue;
    if (rows_split > 1 && even_columns && ceil_div(mpanels, rows_split) < gemm_min_row_split_panels) continue;
    const index_t cols_split = threads / rows_split;
    const double rows = double(ceil_div(mpanels, rows_split) * mr);
    const double cols = double(ceil_div(groups, cols_split) * gemm_b_group * nr);
    const double cost = rows * (std::min(cols, double(npanels * nr)) + gemm_pack_weight);
    if (cost <= best) best = cost, tm = rows_split, tn = cols_split;
  }
  return {tm, tn};
}

/// The GEMM after argument handling: op(A) [m, k], op(B) [k, n] and C [m, n] as pointers and strides.
struct GemmProblem {
  index_t m, n, k;
  const float* a;
  index_t rsa, csa;  // op(A)(i, p) = a[i * rsa + p * csa]
  const float* b;
  index_t rsb, csb;  // op(B)(p, j) = b[p * rsb + j * csb]
  float* c;
  index_t rsc, csc;  // C(i, j) = c[i * rsc + j * csc]
  float alpha, beta;
};

/// Prefetches lines [begin, end) of a region of `rows` runs of `floats` floats, `stride` apart, into L2.
inline void gemm_prefetch_lines(const float* base, index_t stride, index_t floats, index_t begin, index_t end) {
  const index_t per_row = ceil_div(floats, 16);
  for (index_t l = begin; l < end; ++l) __builtin_prefetch(base + (l / per_row) * stride + (l % per_row) * 16, 0, 2);
}

/// The k block length at this level for inner dimension k: blocks of equal length (a multiple of 8 for the
/// packing transposes) that depend on k alone, so every caller of the micro-kernel runs the same chains.
template <class Tag>
index_t gemm_k_block(Tag tag, index_t k) {
  const index_t kc_max = gemm_blocking(tag).kc_max;
  return std::min(k, ceil_div(ceil_div(k, ceil_div(k, kc_max)), 8) * 8);
}

/// C [rows, n] = alpha A B (+ epilogue) on the calling thread alone, for callers that already split rows over the
/// pool: A [rows, k] with contiguous rows (row stride lda), B pre-packed at this level (all of k, as
/// pack_gemm_operand leaves it), C with contiguous rows (row stride ldc). Each element's arithmetic is that of
/// gemm_run on the same operands, so a product split into row blocks this way is bitwise the whole product.
/// `epi` sees rows counted from row0.
template <class Tag, class Epilogue>
void gemm_rows_serial(Tag tag, index_t rows, index_t n, index_t k, const float* a, index_t lda,
                      const float* packed_b, float* c, index_t ldc, float alpha, const Epilogue* epi, index_t row0) {
  const index_t mr = gemm_blocking(tag).mr, nr = gemm_blocking(tag).nr;
  const index_t kc = gemm_k_block(tag, k);
  float* packed_a = gemm_a_buffer(std::size_t(ceil_div(rows, mr) * mr * kc));
  for (index_t p0 = 0; p0 < k; p0 += kc) {
    const index_t kcur = std::min(kc, k - p0);
    gemm_pack_a(tag, rows, kcur, a + p0, lda, 1, packed_a);
    gemm_block(tag, rows, n, kcur, packed_a, packed_b + p0 * nr, nr * k, c, ldc, 1, alpha, p0 == 0 ? 0.0f : 1.0f,
               p0 + kcur == k ? epi : nullptr, row0, index_t(0));
  }
}

/// A one-row product (m == 1) whose op(B) has contiguous rows, unpacked: column chunks of whole groups over the
/// pool, each through every k block in order (gemm_row_block), so each element's arithmetic is the tiled path's.
template <class Tag, class Epilogue>
void gemm_row_run(ThreadPool& pool, Tag tag, const GemmProblem& g, const Epilogue* epi) {
  const index_t kc = gemm_k_block(tag, g.k);
  const index_t width = gemm_row_columns(tag);  // gemm_row_block's column group
  const index_t groups = ceil_div(g.n, width);
  const index_t tasks = double(g.n) * double(g.k) < gemm_serial_work ? 1 : std::min<index_t>(groups, pool.size());
  pool.parallel_for(tasks, [&](index_t t) {
    const index_t j0 = std::min(g.n, groups * t / tasks * width), j1 = std::min(g.n, groups * (t + 1) / tasks * width);
    if (j1 <= j0) return;
    for (index_t p0 = 0; p0 < g.k; p0 += kc)
      gemm_row_block(tag, j1 - j0, std::min(kc, g.k - p0), g.a + p0 * g.csa, g.csa, g.b + p0 * g.rsb + j0, g.rsb,
                     g.c + j0, g.alpha, p0 == 0 ? g.beta : 1.0f);
    if (epi != nullptr) (*epi)(tag, index_t(0), j0, g.c + j0, j1 - j0);
  });
}

enum : std::uint8_t { b_unpacked = 0, b_packing = 1, b_packed = 2 };

/// The blocked GEMM at one ISA level (see the file comment). `prepacked`: all of op(B) already packed at this
/// level (PackedGemmOperand), or null to pack it here.
template <class Tag, class Epilogue>
void gemm_run(ThreadPool& pool, Tag tag, const GemmProblem& g, const Epilogue* epi, const float* prepacked = nullptr) {
  const auto blk = gemm_blocking(tag);
  const index_t mr = blk.mr, nr = blk.nr;
  // k blocks of equal length (a multiple of 8 for the packing transposes), depending on k alone.
  const index_t kc = gemm_k_block(tag, g.k);
  const index_t kblocks = ceil_div(g.k, kc);
  const index_t mpanels = ceil_div(g.m, mr), npanels = ceil_div(g.n, nr);
  const index_t max_row_panels = std::max<index_t>(1, blk.mc_max / mr);
  // Column chunks of equal width: a narrow last chunk would run with too few B groups to share between threads.
  const index_t budget_panels = std::max<index_t>(1, gemm_chunk_budget / (nr * (g.k + g.m)));
  const index_t chunk_panels = ceil_div(npanels, ceil_div(npanels, budget_panels));
  const index_t b_stride = nr * g.k;  // packed B: panel q (of a column chunk) at q * b_stride, all of k
  float* buffer_b = prepacked ? nullptr : gemm_b_buffer(std::size_t(std::min(npanels, chunk_panels) * b_stride));
  const int threads = double(g.m) * double(g.n) * double(g.k) < gemm_serial_work ? 1 : std::max(1, pool.size());

  for (index_t q0 = 0; q0 < npanels; q0 += chunk_panels) {
    const index_t qn = std::min(chunk_panels, npanels - q0), n0 = q0 * nr;
    const index_t groups = ceil_div(qn, gemm_b_group);
    // This chunk's packed op(B): its panels in the pre-packed operand, or the buffer they are packed into.
    float* const packed_b = prepacked ? const_cast<float*>(prepacked) + q0 * b_stride : buffer_b;

    const std::pair<index_t, index_t> split = gemm_thread_split(threads, mpanels, qn, mr, nr);
    const index_t tm = split.first, tn = split.second;

    // Shared state: which (B group, k block) units are packed, and the next free row panel of each column block.
    std::unique_ptr<std::atomic<std::uint8_t>[]> state(new std::atomic<std::uint8_t>[std::size_t(groups * kblocks)]());
    if (prepacked != nullptr)
      for (index_t u = 0; u < groups * kblocks; ++u) state[std::size_t(u)].store(b_packed, std::memory_order_relaxed);
    std::unique_ptr<std::atomic<index_t>[]> next_row(new std::atomic<index_t>[std::size_t(tn)]());

    pool.parallel_for(tm * tn, [&](index_t t) {
      const index_t ti = t / tn, tj = t % tn;
      const std::pair<index_t, index_t> block = gemm_column_block(groups, tj, tn);
      const index_t ga = block.first, span = block.second - block.first;
      if (span == 0) return;
      float* packed_a = gemm_a_buffer(std::size_t(max_row_panels * mr * kc));
      std::vector<index_t> deferred;
      deferred.reserve(std::size_t(span));
      for (;;) {
        // Take the next rows: guided chunks of whole panels, at most MC rows, shrinking as the work runs out, so
        // a thread slowed down (by the OS, or another process) leaves its share to the others.
        index_t first = next_row[std::size_t(tj)].load(std::memory_order_relaxed), count = 0;
        do {
          const index_t left = mpanels - first;
          if (left <= 0) break;
          count = std::min(left, std::clamp(left / (2 * tm), gemm_min_row_panels, max_row_panels));
        } while (!next_row[std::size_t(tj)].compare_exchange_weak(first, first + count, std::memory_order_relaxed));
        if (first >= mpanels) break;
        const index_t r0 = first * mr, r1 = std::min(g.m, (first + count) * mr), rows = r1 - r0;

        for (index_t kb = 0; kb < kblocks; ++kb) {
          const index_t p0 = kb * kc, kcur = std::min(kc, g.k - p0);
          gemm_pack_a(tag, rows, kcur, g.a + r0 * g.rsa + p0 * g.csa, g.rsa, g.csa, packed_a);
          // The source of these rows' next k block, prefetched into L2 a share per B group while this one
          // computes, where its rows or its steps are contiguous.
          const float* pf = g.a + r0 * g.rsa + (p0 + kcur) * g.csa;
          const index_t next_k = std::min(kc, g.k - p0 - kcur);
          index_t pf_stride = 0, pf_floats = 0, pf_lines = 0;
          if (next_k > 0 && g.csa == 1) pf_stride = g.rsa, pf_floats = next_k, pf_lines = rows * ceil_div(next_k, 16);
          else if (next_k > 0 && g.rsa == 1)
            pf_stride = g.csa, pf_floats = rows, pf_lines = next_k * ceil_div(rows, 16);

          const float beta = kb == 0 ? g.beta : 1.0f;
          const Epilogue* last = kb + 1 == kblocks ? epi : nullptr;
          const auto columns = [&](index_t grp) {
            const index_t j0 = n0 + grp * gemm_b_group * nr;
            return std::pair{j0, std::min(g.n, n0 + std::min(qn, (grp + 1) * gemm_b_group) * nr)};
          };
          index_t done = 0;
          const auto compute = [&](index_t grp) {
            const auto [j0, j1] = columns(grp);
            gemm_block(tag, rows, j1 - j0, kcur, packed_a, packed_b + (j0 - n0) / nr * b_stride + p0 * nr, b_stride,
                       g.c + r0 * g.rsc + j0 * g.csc, g.rsc, g.csc, g.alpha, beta, last, r0, j0);
            gemm_prefetch_lines(pf, pf_stride, pf_floats, pf_lines * done / span, pf_lines * (done + 1) / span);
            ++done;
          };
          // Each B unit is packed by the first thread to need it. Threads sharing rows start at different groups;
          // a unit another thread is still packing is left for last.
          deferred.clear();
          for (index_t s = 0, start = span * ti / tm; s < span; ++s) {
            const index_t grp = ga + (start + s) % span;
            std::atomic<std::uint8_t>& unit = state[std::size_t(grp * kblocks + kb)];
            std::uint8_t seen = b_unpacked;
            if (unit.load(std::memory_order_acquire) == b_packed) {
              compute(grp);
            } else if (unit.compare_exchange_strong(seen, b_packing, std::memory_order_acquire)) {
              const auto [j0, j1] = columns(grp);
              gemm_pack_b(tag, kcur, j1 - j0, g.b + p0 * g.rsb + j0 * g.csb, g.rsb, g.csb,
                          packed_b + (j0 - n0) / nr * b_stride + p0 * nr, b_stride);
              unit.store(b_packed, std::memory_order_release);
              compute(grp);
            } else if (seen == b_packed) {
              compute(grp);
            } else {
              deferred.push_back(grp);
            }
          }
          for (const index_t grp : deferred) {
            while (state[std::size_t(grp * kblocks + kb)].load(std::memory_order_acquire) != b_packed)
              std::this_thread::yield();
            compute(grp);
          }
        }
      }
    });
  }
}

}  // namespace detail

/// C = alpha op(A) op(B) + beta C, then `epi` on every finished row segment of C (see the file comment).
/// `packed`: op(B) pre-packed (b and tb are then its source), used where the case allows: packed at this ISA
/// level, and not the transposed product C^T = op(B)^T op(A)^T that a column-major C without an epilogue runs, nor
/// a one-row product (which packs nothing); those cases read the source instead (the same values while it is
/// unchanged). Null packs op(B) here.
template <class T, class Epilogue>
bool gemm(Context ctx, T alpha, ConstView<T> a, Transpose ta, ConstView<T> b, Transpose tb, T beta, TensorView<T> c,
          const Epilogue& epi, const PackedGemmOperand* packed = nullptr) {
  if constexpr (!std::is_same_v<T, float>) {
    return false;
  } else {
    constexpr bool has_epilogue = !std::is_same_v<Epilogue, NoEpilogue>;
    index_t m = c.rows(), n = c.cols();
    const index_t k = ta == Transpose::no ? a.cols() : a.rows();
    if (m == 0 || n == 0) return true;

    // op(A)(i, p) = pa[i * rsa + p * csa], op(B)(p, j) = pb[p * rsb + j * csb], C(i, j) = pc[i * rsc + j * csc].
    const float* pa = a.data();
    const float* pb = b.data();
    float* pc = c.data();
    index_t rsa = a.stride(0), csa = a.stride(1), rsb = b.stride(0), csb = b.stride(1);
    if (ta == Transpose::yes) std::swap(rsa, csa);
    if (tb == Transpose::yes) std::swap(rsb, csb);
    index_t rsc = c.stride(0), csc = n == 1 ? 1 : c.stride(1);

    if (k == 0) {  // an empty inner product: C = beta C, beta == 0 overwriting
      dispatch(ctx.isa, [&](auto tag) {
        for (index_t i = 0; i < m; ++i) {
          for (index_t j = 0; j < n; ++j) pc[i * rsc + j * csc] = beta == 0.0f ? 0.0f : beta * pc[i * rsc + j * csc];
          if constexpr (has_epilogue) {
            if (csc == 1) epi(tag, i, index_t(0), pc + i * rsc, n);
            else
              for (index_t j = 0; j < n; ++j) epi(tag, i, j, pc + i * rsc + j * csc, index_t(1));
          }
        }
      });
      return true;
    }

    bool swapped = false;
    if constexpr (!has_epilogue) {
      if (csc != 1 && (rsc == 1 || m == 1)) {  // C^T = op(B)^T op(A)^T has unit column stride
        swapped = true;
        std::swap(m, n);
        std::swap(rsc, csc);
        if (n == 1) csc = 1;
        std::swap(pa, pb);
        const index_t rsa_old = rsa, csa_old = csa;
        rsa = csb;
        csa = rsb;
        rsb = csa_old;
        csb = rsa_old;
      }
    }

    const detail::GemmProblem problem{m, n, k, pa, rsa, csa, pb, rsb, csb, pc, rsc, csc, alpha, beta};
    if (m == 1 && csc == 1 && csb == 1) {  // a bias gradient (a row of ones times dY): no packing, no padded rows
      dispatch(ctx.isa, [&](auto tag) {
        detail::gemm_row_run(*ctx.pool, tag, problem, has_epilogue ? &epi : static_cast<const Epilogue*>(nullptr));
      });
      return true;
    }
    const float* prepacked = packed != nullptr && !swapped && packed->isa() == ctx.isa ? packed->panels() : nullptr;
    dispatch(ctx.isa, [&](auto tag) {
      detail::gemm_run(*ctx.pool, tag, problem, has_epilogue ? &epi : static_cast<const Epilogue*>(nullptr),
                       prepacked);
    });
    return true;
  }
}

/// C = alpha op(A) op(B) + beta C.
template <class T>
bool gemm(Context ctx, T alpha, ConstView<T> a, Transpose ta, ConstView<T> b, Transpose tb, T beta, TensorView<T> c) {
  return gemm(ctx, alpha, a, ta, b, tb, beta, c, NoEpilogue{});
}

/// How many floats op(B) [k, n] takes packed for the GEMMs of ISA level `isa`: NR-column panels x all of k.
inline index_t packed_gemm_floats(Isa isa, index_t k, index_t n) {
  index_t floats = 0;
  dispatch(isa, [&](auto tag) {
    const index_t nr = gemm_blocking(tag).nr;
    floats = detail::ceil_div(n, nr) * nr * k;
  });
  return floats;
}

/// Packs op(B) (b [k, n], or [n, k] transposed; any strides) into `dst` (packed_gemm_floats of them) for the
/// GEMMs of `ctx`'s ISA level: panels of NR columns x all of k, zero-padded, a group of panels per pool task.
inline void pack_gemm_operand_into(Context ctx, ConstView<float> b, Transpose tb, float* dst) {
  const index_t k = tb == Transpose::no ? b.rows() : b.cols(), n = tb == Transpose::no ? b.cols() : b.rows();
  index_t rsb = b.stride(0), csb = b.stride(1);
  if (tb == Transpose::yes) std::swap(rsb, csb);
  if (k == 0 || n == 0) return;
  dispatch(ctx.isa, [&](auto tag) {
    const index_t nr = gemm_blocking(tag).nr, panels = detail::ceil_div(n, nr);
    const index_t groups = detail::ceil_div(panels, detail::gemm_b_group);
    ctx.pool->parallel_for(groups, [&](index_t grp) {
      const index_t j0 = grp * detail::gemm_b_group * nr, j1 = std::min(n, j0 + detail::gemm_b_group * nr);
      gemm_pack_b(tag, k, j1 - j0, b.data() + j0 * csb, rsb, csb, dst + j0 * k, nr * k);
    });
  });
}

/// op(B) packed into memory of its own (see PackedGemmOperand).
inline PackedGemmOperand pack_gemm_operand(Context ctx, ConstView<float> b, Transpose tb) {
  PackedGemmOperand p;
  p.source_ = b;
  p.transpose_ = tb;
  p.isa_ = ctx.isa;
  const index_t floats = packed_gemm_floats(ctx.isa, p.rows(), p.cols());
  if (floats == 0) return p;
  p.panels_.reset(static_cast<float*>(::operator new(std::size_t(floats) * sizeof(float), std::align_val_t{64})));
  p.bytes_ = std::size_t(floats) * sizeof(float);
  pack_gemm_operand_into(ctx, b, tb, p.panels_.get());
  return p;
}

}  // namespace froster::cpu
