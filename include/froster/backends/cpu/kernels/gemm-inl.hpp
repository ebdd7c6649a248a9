// SGEMM kernels (GotoBLAS/BLIS style), written once against the SIMD vocabulary and compiled per ISA by
// ../kernels.hpp (no include guard). The driver (../gemm.hpp) packs op(B) into k x NR column panels and op(A) into
// MR x k row panels, both zero-padded to full width, and runs the register-blocked micro-kernel over every MR x NR
// tile of C. Per element of C the arithmetic is one fixed chain of multiply-adds over each k block, whatever the
// tile's position or which thread runs it: results do not depend on how C is split over threads.

/// Register tile: MR rows x NR = NV vectors of columns. AVX2: 6 x 16 (12 accumulators + 2 B vectors + 1
/// broadcast of 16 ymm). AVX-512: 12 x 32 (24 accumulators of 32 zmm). Scalar: 4 x 4.
inline constexpr index_t gemm_mr = isa == Isa::avx512 ? 12 : isa == Isa::avx2 ? 6 : 4;
inline constexpr index_t gemm_nv = isa == Isa::scalar ? 4 : 2;
inline constexpr index_t gemm_nr = gemm_nv * lanes;

/// Cache blocking of this level (the driver's loop bounds): kc_max k steps per block (a k x NR panel of B stays in
/// L1, an MC x kc block of A in L2), mc_max rows of A per block.
struct GemmBlocking {
  index_t mr, nr, kc_max, mc_max;
};
inline GemmBlocking gemm_blocking(Tag) {
  // AVX-512: a 32-column B panel of 256 steps (32 KiB) beside the streamed 12-row A panel (12 KiB) nearly filled a
  // 48 KiB L1; 192 steps leave room (benchmarks/kernels/GEMM.md, AVX-512 section).
  if constexpr (isa == Isa::avx512) return {gemm_mr, gemm_nr, 192, 192};
  else if constexpr (isa == Isa::avx2) return {gemm_mr, gemm_nr, 256, 144};
  else return {gemm_mr, gemm_nr, 256, 64};
}

/// How far ahead, in floats of the packed A panel (16 steps of 12 rows here), the AVX-512 micro-kernel prefetches its
/// A stream into L1: left to the hardware prefetchers, the Xeon's GEMMs ran about 3% slower, up to 6%
/// (benchmarks/kernels/GEMM.md).
/// Not at AVX2, tuned on a Zen 3 without it.
inline constexpr index_t gemm_a_prefetch = isa == Isa::avx512 ? 192 : 0;

/// The micro-kernel's multiply-add: fused where the level has FMA in hardware. At the scalar level std::fma may be
/// a library call, so a separate multiply and add there.
inline vf gemm_madd(vf a, vf b, vf c) {
  if constexpr (isa == Isa::scalar) return add(mul(a, b), c);
  else return fmadd(a, b, c);
}

/// C's new value from an accumulator, as every path of the GEMM forms it: alpha acc when beta == 0 (C is not read,
/// so NaN in C does not propagate), alpha acc + C when beta == 1, alpha acc + beta C otherwise. `old` loads C.
template <class LoadC>
inline vf gemm_c_value(vf acc, vf va, float beta, vf vb, LoadC&& old) {
  if (beta == 0.0f) return mul(va, acc);
  if (beta == 1.0f) return fmadd(va, acc, old());
  return fmadd(va, acc, mul(vb, old()));
}

/// C tile [MR, NR] (row stride ldc, unit column stride) = alpha (A panel x B panel) + beta C over kc steps: the A
/// panel holds MR values per step, the B panel NR. beta == 0 overwrites C without reading it (NaN in C does not
/// propagate). This store is the step an epilogue follows, while the tile is still in L1 (see gemm_block).
inline void gemm_micro_kernel(Tag, index_t kc, const float* __restrict a, const float* __restrict b, float* c,
                              index_t ldc, float alpha, float beta) {
  vf acc[gemm_mr][gemm_nv];
#pragma GCC unroll 16
  for (index_t r = 0; r < gemm_mr; ++r)
#pragma GCC unroll 4
    for (index_t v = 0; v < gemm_nv; ++v) acc[r][v] = zero();
  // The C tile is written at the end: start fetching it now, each row's first line, and its last at AVX-512 (where
  // a row is two lines).
#pragma GCC unroll 16
  for (index_t r = 0; r < gemm_mr; ++r) {
    __builtin_prefetch(c + r * ldc, 1);
    if constexpr (isa == Isa::avx512) __builtin_prefetch(c + r * ldc + gemm_nr - 1, 1);
  }
#pragma GCC unroll 4
  for (index_t p = 0; p < kc; ++p) {
    if constexpr (gemm_a_prefetch > 0)  // an address, not a pointer: past the panel's end near the last steps
      __builtin_prefetch(reinterpret_cast<const void*>(reinterpret_cast<std::uintptr_t>(a) + gemm_a_prefetch * 4));
    vf bv[gemm_nv];
#pragma GCC unroll 4
    for (index_t v = 0; v < gemm_nv; ++v) bv[v] = load(b + v * lanes);
#pragma GCC unroll 16
    for (index_t r = 0; r < gemm_mr; ++r) {
      const vf av = set1(a[r]);
#pragma GCC unroll 4
      for (index_t v = 0; v < gemm_nv; ++v) acc[r][v] = gemm_madd(av, bv[v], acc[r][v]);
    }
    a += gemm_mr;
    b += gemm_nr;
  }
  const vf va = set1(alpha), vb = set1(beta);
#pragma GCC unroll 16
  for (index_t r = 0; r < gemm_mr; ++r)
#pragma GCC unroll 4
    for (index_t v = 0; v < gemm_nv; ++v) {
      float* cp = c + r * ldc + v * lanes;
      store(cp, gemm_c_value(acc[r][v], va, beta, vb, [&] { return load(cp); }));
    }
}

/// Vectors of columns per pass of gemm_row_block over a k block: enough independent chains to hide the FMA latency.
inline constexpr index_t gemm_row_group = 8;
inline index_t gemm_row_columns(Tag) { return gemm_row_group * lanes; }

/// One k block of a one-row product: c[0, n) = alpha (a B) + beta c over kc steps, a[p * as] the row's value at
/// step p, B's step p at b + p * rsb (contiguous columns), no packing. Each column's chain is the micro-kernel's (a
/// zero accumulator, one multiply-add per step in step order, the same update of C), so the row is bitwise what the
/// tiled path computes for it: only the MR - 1 rows of padding a tile would add and the packing are saved.
inline void gemm_row_block(Tag, index_t n, index_t kc, const float* a, index_t as, const float* b, index_t rsb,
                           float* c, float alpha, float beta) {
  constexpr index_t group = gemm_row_group;
  const vf va = set1(alpha), vb = set1(beta);
  index_t j = 0;
  for (; j + group * lanes <= n; j += group * lanes) {
    vf acc[group];
#pragma GCC unroll 8
    for (index_t v = 0; v < group; ++v) acc[v] = zero();
    for (index_t p = 0; p < kc; ++p) {
      const vf av = set1(a[p * as]);
      const float* bp = b + p * rsb + j;
#pragma GCC unroll 8
      for (index_t v = 0; v < group; ++v) acc[v] = gemm_madd(av, load(bp + v * lanes), acc[v]);
    }
#pragma GCC unroll 8
    for (index_t v = 0; v < group; ++v) {
      float* cp = c + j + v * lanes;
      store(cp, gemm_c_value(acc[v], va, beta, vb, [&] { return load(cp); }));
    }
  }
  for (; j < n; j += lanes) {  // the last columns, a vector (or the partial one) per pass
    const index_t w = std::min(lanes, n - j);
    vf acc = zero();
    for (index_t p = 0; p < kc; ++p) acc = gemm_madd(set1(a[p * as]), load_partial(b + p * rsb + j, w), acc);
    store_partial(c + j, gemm_c_value(acc, va, beta, vb, [&] { return load_partial(c + j, w); }), w);
  }
}

#if FROSTER_CPU_X86_KERNELS
/// 8 x 8 transpose of floats in eight ymm registers (AVX; the AVX2 and AVX-512 levels use it for packing).
inline void gemm_transpose8(__m256& r0, __m256& r1, __m256& r2, __m256& r3, __m256& r4, __m256& r5, __m256& r6,
                            __m256& r7) {
  const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
  const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
  const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
  const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r0 = _mm256_permute2f128_ps(s0, s4, 0x20);
  r1 = _mm256_permute2f128_ps(s1, s5, 0x20);
  r2 = _mm256_permute2f128_ps(s2, s6, 0x20);
  r3 = _mm256_permute2f128_ps(s3, s7, 0x20);
  r4 = _mm256_permute2f128_ps(s0, s4, 0x31);
  r5 = _mm256_permute2f128_ps(s1, s5, 0x31);
  r6 = _mm256_permute2f128_ps(s2, s6, 0x31);
  r7 = _mm256_permute2f128_ps(s3, s7, 0x31);
}

/// Stores lanes [0, n) of v (n in [1, 8]) without touching memory past p + n: plain stores, no mask (masked stores
/// are slow on AMD).
inline void gemm_store_first(float* p, __m256 v, index_t n) {
  if (n == 8) return _mm256_storeu_ps(p, v);
  __m128 lo = _mm256_castps256_ps128(v);
  if (n >= 4) {
    _mm_storeu_ps(p, lo);
    p += 4;
    n -= 4;
    lo = _mm256_extractf128_ps(v, 1);
  }
  if (n >= 2) {
    _mm_storel_pi(reinterpret_cast<__m64*>(p), lo);
    p += 2;
    n -= 2;
    lo = _mm_movehl_ps(lo, lo);
  }
  if (n == 1) _mm_store_ss(p, lo);
}
#endif

/// Packs one panel of `width` lanes (MR rows of op(A), or NR columns of op(B)) over k steps:
/// dst[p * width + j] = src[p * sk + j * sj] for j < w, and 0 for w <= j < width.
template <index_t width>
inline void gemm_pack_panel(index_t k, index_t w, const float* src, index_t sk, index_t sj, float* dst) {
  if (sj == 1 || w == 1) {  // each step's lanes are contiguous in memory: row copies
    for (index_t p = 0; p < k; ++p, src += sk, dst += width) {
      if (w == width) {
        std::memcpy(dst, src, sizeof(float) * std::size_t(width));
      } else {
        for (index_t j = 0; j < w; ++j) dst[j] = src[j];
        for (index_t j = w; j < width; ++j) dst[j] = 0.0f;
      }
    }
    return;
  }
  index_t p = 0;
#if FROSTER_CPU_X86_KERNELS
  if constexpr (isa != Isa::scalar) {
    if (sk == 1) {  // each lane is contiguous along k: transpose 8 x 8 blocks, 8 lanes at a time
      const index_t k8 = k / 8 * 8;
      for (index_t j0 = 0; j0 < width; j0 += 8) {
        const index_t n = std::min<index_t>(8, width - j0), valid = std::clamp<index_t>(w - j0, 0, n);
        const float* lane = src + j0 * sj;
        float* out = dst + j0;
        for (index_t q = 0; q < k8; q += 8) {
          __m256 r[8];
          for (index_t j = 0; j < 8; ++j) r[j] = j < valid ? _mm256_loadu_ps(lane + j * sj + q) : _mm256_setzero_ps();
          // Short rows are many streams at once for the hardware prefetcher: fetch the next panel's rows (the
          // next call packs them) into L2 ahead, one line per row every 16 steps.
          if ((q & 15) == 0)
            for (index_t j = 0; j < valid; ++j) __builtin_prefetch(lane + (j + width) * sj + q, 0, 2);
          gemm_transpose8(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
          if (n == 8)
            for (index_t i = 0; i < 8; ++i) _mm256_storeu_ps(out + (q + i) * width, r[i]);
          else
            for (index_t i = 0; i < 8; ++i) gemm_store_first(out + (q + i) * width, r[i], n);
        }
      }
      p = k8;
    }
  }
#endif
  for (; p < k; ++p) {
    for (index_t j = 0; j < w; ++j) dst[p * width + j] = src[p * sk + j * sj];
    for (index_t j = w; j < width; ++j) dst[p * width + j] = 0.0f;
  }
}

/// Packs `count` lanes that are contiguous in memory at every step (lane j of step p at src[p * sk + j]) into
/// ceil(count / width) panels, panel q at dst + q * panel_stride: step by step across the panels, so each step reads
/// one contiguous run of the source instead of a short piece per panel (the strided rows are what is slow here).
template <index_t width>
inline void gemm_pack_contiguous(index_t k, index_t count, const float* src, index_t sk, float* dst,
                                 index_t panel_stride) {
  const index_t full = count / width, rest = count % width;
  for (index_t p = 0; p < k; ++p, src += sk, dst += width) {
    for (index_t j = 0; j < count; j += 16) __builtin_prefetch(src + 8 * sk + j, 0, 3);
    for (index_t q = 0; q < full; ++q)
      std::memcpy(dst + q * panel_stride, src + q * width, sizeof(float) * std::size_t(width));
    if (rest != 0) {
      float* tail = dst + full * panel_stride;
      for (index_t j = 0; j < rest; ++j) tail[j] = src[full * width + j];
      for (index_t j = rest; j < width; ++j) tail[j] = 0.0f;
    }
  }
}

/// Packs rows [0, m) x steps [0, k) of op(A) (element (i, p) at a[i * rs + p * cs]) into ceil(m / MR) panels of
/// MR x k, panel q at dst + q * MR * k.
inline void gemm_pack_a(Tag, index_t m, index_t k, const float* a, index_t rs, index_t cs, float* dst) {
  if (rs == 1 && m > 1) return gemm_pack_contiguous<gemm_mr>(k, m, a, cs, dst, gemm_mr * k);
  for (index_t i = 0; i < m; i += gemm_mr, dst += gemm_mr * k)
    gemm_pack_panel<gemm_mr>(k, std::min(gemm_mr, m - i), a + i * rs, cs, rs, dst);
}

/// Packs steps [0, k) x columns [0, n) of op(B) (element (p, j) at b[p * rs + j * cs]) into ceil(n / NR) panels
/// of k x NR, panel q at dst + q * panel_stride (>= NR * k).
inline void gemm_pack_b(Tag, index_t k, index_t n, const float* b, index_t rs, index_t cs, float* dst,
                        index_t panel_stride) {
  if (cs == 1 && n > 1) {  // a few panels at a time: a few write streams, one read run per step
    constexpr index_t group = 4 * gemm_nr;
    for (index_t j = 0; j < n; j += group, dst += 4 * panel_stride)
      gemm_pack_contiguous<gemm_nr>(k, std::min(group, n - j), b + j, rs, dst, panel_stride);
    return;
  }
  for (index_t j = 0; j < n; j += gemm_nr, dst += panel_stride)
    gemm_pack_panel<gemm_nr>(k, std::min(gemm_nr, n - j), b + j * cs, rs, cs, dst);
}

/// One k block of a block of C: rows [0, mc) x columns [0, nc) of the C block at c (strides rs, cs; a non-unit
/// column stride or a partial tile goes through a scratch tile), from packed A (ceil(mc / MR) panels of kc steps)
/// and packed B (panel q at b + q * b_stride, kc steps each). C = alpha A B + beta C. A non-null `epi` (last k
/// block only) is called as (*epi)(tag, row, col, values, count) on each finished row segment of a tile, rows and
/// columns counted from row0 / col0, before it leaves L1 (or the scratch tile).
template <class Epilogue>
inline void gemm_block(Tag tag, index_t mc, index_t nc, index_t kc, const float* a, const float* b, index_t b_stride,
                       float* c, index_t rs, index_t cs, float alpha, float beta, Epilogue* epi, index_t row0,
                       index_t col0) {
  alignas(64) float tile[gemm_mr * gemm_nr];
  for (index_t j = 0; j < nc; j += gemm_nr, b += b_stride) {
    const index_t nw = std::min(gemm_nr, nc - j);
    const float* ap = a;
    for (index_t i = 0; i < mc; i += gemm_mr, ap += gemm_mr * kc) {
      const index_t mh = std::min(gemm_mr, mc - i);
      float* ct = c + i * rs + j * cs;
      if (mh == gemm_mr && nw == gemm_nr && cs == 1) {
        gemm_micro_kernel(tag, kc, ap, b, ct, rs, alpha, beta);
        if (epi != nullptr)
          for (index_t r = 0; r < gemm_mr; ++r) (*epi)(tag, row0 + i + r, col0 + j, ct + r * rs, nw);
        continue;
      }
      if (beta != 0.0f) {  // the same kernel on a copy, so edge tiles do exactly the interior's arithmetic
        std::fill_n(tile, gemm_mr * gemm_nr, 0.0f);
        for (index_t r = 0; r < mh; ++r)
          for (index_t q = 0; q < nw; ++q) tile[r * gemm_nr + q] = ct[r * rs + q * cs];
      }
      gemm_micro_kernel(tag, kc, ap, b, tile, gemm_nr, alpha, beta);
      for (index_t r = 0; r < mh; ++r) {
        if (epi != nullptr) (*epi)(tag, row0 + i + r, col0 + j, tile + r * gemm_nr, nw);
        for (index_t q = 0; q < nw; ++q) ct[r * rs + q * cs] = tile[r * gemm_nr + q];
      }
    }
  }
}
