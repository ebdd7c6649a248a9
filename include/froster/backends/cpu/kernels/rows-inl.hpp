// Row kernels (L2 normalisation, cosine, LayerNorm, softmax, log-softmax), written once against the SIMD
// vocabulary and compiled per ISA by ../kernels.hpp (no include guard). Each works on one row of `n` contiguous
// floats, except the softmax forward, which runs four rows in lockstep; ../rows.hpp splits rows over threads.
// Semantics are those of the reference kernels (reference/rows.hpp, reference/normalization.hpp,
// reference/losses.hpp). Sums run in fp32 with several accumulators (one per row in the lockstep softmax, whose four
// rows hide the add latency). Per-row scalars (mean, rstd, norms, 1/sum) are fp32 too, with 1/n multiplied: each
// row's passes wait on that scalar chain, and on short rows (77, 197 columns) its latency is a good part of the time.
// Cosine keeps double for its norm product, which would overflow fp32 for norms above ~1e19.

namespace rows_detail {

// The helpers below take the kernels' loop bodies as lambdas. They must inline into each kernel: out of line, the
// body's vector constants live in the closure, in memory, and are reloaded after every store (__m256 may alias).
#ifndef FROSTER_ROWS_INLINE
#if defined(__GNUC__)
#define FROSTER_ROWS_INLINE [[gnu::always_inline]] inline
#else
#define FROSTER_ROWS_INLINE inline
#endif
#endif
#ifndef FROSTER_LAMBDA_INLINE
#if defined(__GNUC__)
#define FROSTER_LAMBDA_INLINE __attribute__((always_inline))  // after a lambda's parameter list
#else
#define FROSTER_LAMBDA_INLINE
#endif
#endif

/// Lanes [0, n) of v, the others from `fill` (a blend, not arithmetic).
template <class V>
FROSTER_ROWS_INLINE V first_or(V v, index_t n, V fill) {
  if constexpr (lanes == 1) {
    return n > 0 ? v : fill;
#if FROSTER_CPU_X86_KERNELS
  } else if constexpr (lanes == 8) {
    const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    return _mm256_blendv_ps(fill, v, _mm256_castsi256_ps(m));
  } else {
    return _mm512_mask_blend_ps(__mmask16((1u << unsigned(n)) - 1u), fill, v);
#endif
  }
}

/// Lanes [0, n) of v, the others exactly zero (a mask, not a product: NaN in dropped lanes does not leak).
template <class V>
FROSTER_ROWS_INLINE V keep_first(V v, index_t n) {
  return first_or(v, n, V(zero()));
}

/// One full lane group of a row, at column j. Kernels written against ld/st/keep serve full groups and the tail.
struct Group {
  index_t j;
  vf ld(const float* p) const { return load(p + j); }
  void st(float* p, vf v) const { store(p + j, v); }
  vf keep(vf v) const { return v; }
  vf keep_or(vf v, vf) const { return v; }
};

/// The last, partial lane group: columns [j, j + n), n < lanes (0 <= n <= lanes in the softmax's lockstep rows).
/// Loads give zero past the row; keep zeroes lanes past the row of a computed value whose zero-input lanes are not
/// zero (exp(0 - max), (0 - mean)^2).
struct Tail {
  index_t j, n;
  vf ld(const float* p) const { return load_partial(p + j, n); }
  void st(float* p, vf v) const { store_partial(p + j, v, n); }
  vf keep(vf v) const { return keep_first(v, n); }
  vf keep_or(vf v, vf fill) const { return first_or(v, n, fill); }
};

/// K sums over the row's lane groups: step(acc, group) adds the group's K terms into acc[0..K). U interleaved
/// accumulator sets hide the add latency (and shorten the fp32 summation chains).
template <int K, int U = 4, class Step>
FROSTER_ROWS_INLINE std::array<float, K> row_sums(index_t n, Step&& step) {
  // Plain arrays (std::array<__m256> would drop the vector type's alignment attribute), touched with constant
  // indices only, so that they live in registers: a loop here becomes a memset of the stack copy.
  vf acc[U][K];
  [&]<int... i>(std::integer_sequence<int, i...>) {
    ((acc[i / K][i % K] = zero()), ...);
  }(std::make_integer_sequence<int, U * K>{});
  index_t j = 0;
  for (; j + U * lanes <= n; j += U * lanes)
    [&]<int... u>(std::integer_sequence<int, u...>) {
      (step(acc[u], Group{j + u * lanes}), ...);
    }(std::make_integer_sequence<int, U>{});
  // Fewer than U full groups remain, then maybe a tail: each into its own accumulator set, indices constant so
  // that the accumulators stay in registers.
  [&]<int... u>(std::integer_sequence<int, u...>) {
    ((j + lanes <= n ? (step(acc[u], Group{j}), j += lanes) : j), ...);
  }(std::make_integer_sequence<int, U - 1>{});
  if (j < n) step(acc[U - 1], Tail{j, n - j});
  std::array<float, K> out;
  for (int k = 0; k < K; ++k) {
    vf s = acc[0][k];
    for (int u = 1; u < U; ++u) s = add(s, acc[u][k]);
    out[std::size_t(k)] = reduce_add(s);
  }
  return out;
}

/// f(group) for every lane group of the row (elementwise passes).
template <class F>
FROSTER_ROWS_INLINE void row_groups(index_t n, F&& f) {
  index_t j = 0;
  for (; j + lanes <= n; j += lanes) f(Group{j});
  if (j < n) f(Tail{j, n - j});
}

/// max_j x[j] (min_j x[j] when !Max) over n >= 1 columns.
template <bool Max>
FROSTER_ROWS_INLINE float row_extreme(index_t n, const float* x) {
  auto pick = [](auto a, auto b) {
    if constexpr (Max) return max(a, b);
    else return min(a, b);
  };
  if (n < lanes) {
    float m = x[0];
    for (index_t j = 1; j < n; ++j) m = Max ? std::max(m, x[j]) : std::min(m, x[j]);
    return m;
  }
  vf m0 = load(x), m1 = m0;
  index_t j = lanes;
  for (; j + 2 * lanes <= n; j += 2 * lanes) {
    m0 = pick(m0, load(x + j));
    m1 = pick(m1, load(x + j + lanes));
  }
  if (j + lanes <= n) {
    m0 = pick(m0, load(x + j));
    j += lanes;
  }
  if (j < n) m1 = pick(m1, load(x + n - lanes));  // overlaps the previous group: max and min are idempotent
  const vf m = pick(m0, m1);
  return Max ? reduce_max(m) : -reduce_max(sub(zero(), m));
}

/// max_j scale * x[j] over n >= 1 columns, formed as scale * max_j x (min_j x for a negative scale): rounding is
/// monotonic, so that is the same float, with one multiply per row instead of one per element. NaN may or may not
/// survive here: callers detect it afterwards.
FROSTER_ROWS_INLINE float row_max_scaled(index_t n, const float* x, float scale) {
  // A NaN scale takes min; its products are NaN either way.
  return scale * (scale >= 0 ? row_extreme<true>(n, x) : row_extreme<false>(n, x));
}

/// 2^(t - 1/2), at AVX-512 only: vreduceps splits t = floor(t) + f exactly, a degree-5 fit p(f) ~ 2^(f - 1/2) on
/// [0, 1) (relative error 1.0e-7; 1.5e-7 evaluated in fp32) and vscalefps applies 2^floor(t) with one rounding: 8
/// vector instructions with the clamp. The clamp at t = -125 keeps the results normal (2^-125.5 at least) and
/// turns -inf into a finite t; NaN stays NaN (max returns its second operand when either is NaN).
template <class V>
FROSTER_ROWS_INLINE V exp2_biased(V t) {
#if FROSTER_CPU_X86_KERNELS
  if constexpr (lanes == 16) {
    t = _mm512_max_ps(_mm512_set1_ps(-125.0f), t);
    const V f = _mm512_reduce_ps(t, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);  // t - floor(t), exact
    V p = _mm512_fmadd_ps(_mm512_set1_ps(0.0013276374666020274f), f, _mm512_set1_ps(0.006356421392410994f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.03947519510984421f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.16981422901153564f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.49013325572013855f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.7071067094802856f));
    return _mm512_scalef_ps(p, t);
  } else
#endif
  {
    return t;  // not called below AVX-512
  }
}

/// exp(x) for x <= ~1 (shifted scores: softmax, log-softmax and attention keep them <= 0), cheaper than the
/// vocabulary's. At AVX-512, exp2_biased(x log2(e) + 1/2): 9 vector instructions. Its error relative to exp(x) is
/// that of the fit plus the argument's rounding, up to 2^-25 |x log2(e)|: measured 1.7e-7 on [-1, 0], 3.5e-7 on
/// [-5, -1], 1.1e-6 on [-20, -5], 3.9e-6 down to -86.5 (below about -86.6 the clamp holds 2^-125.5), so never more
/// than 1.2e-7 of exp(0), the size of a row's largest term. AVX2: no upper clamp, n = round(x / ln2) from the
/// 1.5 * 2^23 shifter (whose low mantissa bits then hold n, shifted straight into 2^n's exponent field: no round or
/// convert instruction), r = x - n ln2 in one step instead of two, and a degree-5 fit 1 + r + r^2 q(r) on
/// [-ln2/2, ln2/2] in place of degree 7: relative error 2.1e-7 for x >= -20, 3.9e-7 down to the clamp (where the
/// one-step r loses up to 2.4e-7); 13 vector instructions instead of 18. NaN stays NaN at every level: the clamps
/// are max with x second.
template <class V>
FROSTER_ROWS_INLINE V exp_nonpositive(V x) {
  if constexpr (lanes == 1) {
    return std::exp(x);
  } else if constexpr (lanes == 16) {
    return exp2_biased(fmadd(x, set1(1.44269504088896341f), set1(0.5f)));
  } else {
    x = max(set1(-87.3365478515625f), x);
    const V shifter = set1(12582912.0f);
    const V nf = fmadd(x, set1(1.44269504088896341f), shifter);
    const V n = sub(nf, shifter);
    // x - n ln2 in one step, ln2 rounded to float: its error (1.9e-9) times |n| <= 126 stays below 2.4e-7.
    const V r = fnmadd(n, set1(0.693147182464599609375f), x);
    V q = fmadd(set1(0.008312524296343327f), r, set1(0.04189011827111244f));
    q = fmadd(q, r, set1(0.16667114198207855f));
    q = fmadd(q, r, set1(0.499992311000824f));
    const V y = fmadd(q, mul(r, r), add(r, set1(1.0f)));
#if FROSTER_CPU_X86_KERNELS
    return mul(y, _mm256_castsi256_ps(_mm256_add_epi32(_mm256_slli_epi32(_mm256_castps_si256(nf), 23),
                                                       _mm256_set1_epi32(127 << 23))));
#else
    return y;
#endif
  }
}

/// Whether a row's scaled maximum mx is small enough for the shift scale x - mx as one FMA: exact, but keeping the
/// maximum's rounding residual, up to half an ulp of mx either side of 0: harmless below 2^24 (at most 1), enough to
/// overflow exp, or to underflow the maximum's own term, beyond ~2^30. False for inf and NaN.
FROSTER_ROWS_INLINE bool fma_shift_exact(float mx) { return std::abs(mx) < 0x1p24f; }

/// sum_j exp(scale x[j] - mx) over the row, mx = max_j scale x[j] in fp32; NaN where x has NaN or the maximum is
/// infinite, as the reference's result. (Scaled scores that overflow fp32 from finite x are not matched: the
/// reference forms them in double.) When `out` is given, the exponentials are stored there.
FROSTER_ROWS_INLINE float sum_exp(index_t n, const float* x, float scale, float mx, float* out) {
  const vf vs = set1(scale), vmx = set1(mx), vnm = set1(-mx);
  const auto pass = [&](auto exact_shift) {
    // Two accumulator sets: exp's throughput, not the adds' latency, bounds this loop.
    return row_sums<1, 2>(n, [&](auto& acc, auto g) {
      const vf t = exact_shift ? fmadd(vs, g.ld(x), vnm) : sub(opaque(mul(vs, g.ld(x))), vmx);
      const vf e = exp_nonpositive(g.keep(t));
      if (out != nullptr) g.st(out, e);
      acc[0] = add(acc[0], g.keep(e));
    })[0];
  };
  // Beyond fma_shift_exact the rounded product minus mx is taken (0 at the maximum), kept from contraction: a
  // little slower.
  return fma_shift_exact(mx) ? pass(std::true_type{}) : pass(std::false_type{});
}

/// y[visible, n) = 0: the columns a causal softmax row does not show.
FROSTER_ROWS_INLINE void zero_past(index_t visible, index_t n, float* y) {
  index_t j = visible;
  for (; j + lanes <= n; j += lanes) store(y + j, zero());
  if (j < n) store_partial(y + j, zero(), n - j);
}

/// f(std::integral_constant<int, r>{}) for r in [0, K): constant indices, so that per-row arrays stay in registers.
template <int K, class F>
FROSTER_ROWS_INLINE void for_rows(F&& f) {
  [&]<int... r>(std::integer_sequence<int, r...>) FROSTER_LAMBDA_INLINE { (f(std::integral_constant<int, r>{}), ...); }(
      std::make_integer_sequence<int, K>{});
}

/// f(r, group) over the lane groups of K rows of `visible[r]` columns: the groups every row has in full, then
/// masked groups up to the longest row (empty past a row's end: no branch on which rows still have columns).
template <int K, class F>
FROSTER_ROWS_INLINE void lockstep_groups(const index_t* visible, index_t shortest, index_t longest, F&& f) {
  index_t j = 0;
  for (; j + lanes <= shortest; j += lanes) for_rows<K>([&](auto r) FROSTER_LAMBDA_INLINE { f(r, Group{j}); });
  for (; j < longest; j += lanes)
    for_rows<K>([&](auto r) FROSTER_LAMBDA_INLINE {
      f(r, Tail{j, std::clamp<index_t>(visible[r] - j, 0, lanes)});
    });
}

/// exp(scale x - mx) for the softmax rows below, as softmax_exp(group, x, c1, c0) with c1 = softmax_exp_scale(scale)
/// and c0 = softmax_exp_shift(mx). At AVX-512, exp2_biased(x c1 + c0) with c1 = scale log2(e) and
/// c0 = 1/2 - mx log2(e): the shift and the change of base fold into the load's FMA, 9 vector instructions per 16
/// scores against 12 for exp_nonpositive(scale x - mx). The rounding of mx log2(e) and of c0 shifts every exponent of
/// a row by the same amount, which the normalisation cancels. The rounding of c1 scales each exponent's distance
/// to the row's maximum by up to 2^-24, as large as the rounding of the argument itself: about twice
/// exp_nonpositive's error on the row's smaller terms (measured against fp64: 1.1e-6 relative on terms above 1e-6 of
/// the row with scores spread over +-20, against 0.44e-6). For the maximum the FMA's exact product keeps the
/// argument within 6 of 1/2 while |mx| < 2^24: no overflow. Lanes past the row are zeroed before the exponential
/// (no spurious overflow flag from them). Other levels: exp_nonpositive(scale x - mx), c1 = scale, c0 = -mx.
inline float softmax_exp_scale(float scale) {
  if constexpr (lanes == 16) return scale * 1.44269504088896341f;
  else return scale;
}

inline float softmax_exp_shift(float mx) {
  if constexpr (lanes == 16) return 0.5f - mx * 1.44269504088896341f;
  else return -mx;
}

template <class G, class V>
FROSTER_ROWS_INLINE V softmax_exp(G g, V x, V c1, V c0) {
  if constexpr (lanes == 16) return exp2_biased(g.keep(fmadd(x, c1, c0)));
  else return exp_nonpositive(g.keep(fmadd(x, c1, c0)));
}

/// Walks `rows` rows (x + i ldx, y + i ldy) in groups of K, then one by one: body(std::integral_constant<int, G>{},
/// first row, x rows, y rows, next x rows, next y rows) with G = K or 1. The next rows are the following group's,
/// clamped to the last row (which the single rows then read, or which was just computed); nullptr for single rows.
template <int K, class Body>
FROSTER_ROWS_INLINE void in_row_groups(index_t rows, const float* x, index_t ldx, float* y, index_t ldy, Body&& body) {
  index_t i = 0;
  for (; i + K <= rows; i += K) {
    const float* xs[K];
    float* ys[K];
    const float* next_x[K];
    float* next_y[K];
    for (int r = 0; r < K; ++r) {
      xs[r] = x + (i + r) * ldx;
      ys[r] = y + (i + r) * ldy;
      const index_t next = std::min(i + K + r, rows - 1);
      next_x[r] = x + next * ldx;
      next_y[r] = y + next * ldy;
    }
    body(std::integral_constant<int, K>{}, i, xs, ys, next_x, next_y);
  }
  for (; i < rows; ++i) {
    const float* xs[1] = {x + i * ldx};
    float* ys[1] = {y + i * ldy};
    body(std::integral_constant<int, 1>{}, i, xs, ys, static_cast<const float* const*>(nullptr),
         static_cast<float* const*>(nullptr));
  }
}

/// Softmax forward of K rows in lockstep: row r has `visible[r]` leading columns of `n`, at x[r] (y[r]; x may be
/// y). Each pass runs over the lane groups with the K rows' bodies side by side, so that the per-row chains
/// (max reduction -> exponentials -> sum reduction -> division -> scaling), which a row at a time waits on, overlap.
/// Every row is computed exactly as with K = 1 (one accumulator per row, summed in column order), so results do not
/// depend on how rows are grouped, i.e. on the thread count. Where `prefetch_x` is given, the exponential pass also
/// fetches those K rows (and `prefetch_y`'s, for writing) into L1 for the next call. Rows whose scaled maximum is
/// not finite or reaches 2^24 (or all rows, for a scale whose c1 overflows) go to softmax_forward_row, whose exact
/// shift handles them. Defined after softmax_forward_row.
template <int K>
void softmax_forward_lockstep(index_t n, const index_t* visible, const float* const* x, float scale,
                              float* const* y, const float* const* prefetch_x, float* const* prefetch_y);

}  // namespace rows_detail

/// y = x / ||x||; returns ||x||. A zero row gives 0 * inf = NaN, as the reference.
inline float l2_normalize_forward_row(Tag, index_t n, const float* x, float* y) {
  const auto [ss] = rows_detail::row_sums<1>(n, [&](auto& acc, auto g) {
    const vf v = g.ld(x);
    acc[0] = fmadd(v, v, acc[0]);
  });
  const float norm = std::sqrt(ss);
  const vf inv = set1(1.0f / norm);
  rows_detail::row_groups(n, [&](auto g) { g.st(y, mul(g.ld(x), inv)); });
  return norm;
}

/// dx = (dy - y <y, dy>) / norm.
inline void l2_normalize_backward_row(Tag, index_t n, const float* y, float norm, const float* dy, float* dx) {
  const auto [proj] = rows_detail::row_sums<1>(n, [&](auto& acc, auto g) { acc[0] = fmadd(g.ld(y), g.ld(dy), acc[0]); });
  const vf vp = set1(proj), inv = set1(1.0f / norm);
  rows_detail::row_groups(n, [&](auto g) { g.st(dx, mul(fnmadd(g.ld(y), vp, g.ld(dy)), inv)); });
}

/// cos = <a, b> / (max(||a||, eps) max(||b||, eps)); writes the unclamped norms.
inline float cosine_forward_row(Tag, index_t n, const float* a, const float* b, float eps, float& norm_a,
                                float& norm_b) {
  const auto [ab, aa, bb] = rows_detail::row_sums<3, 2>(n, [&](auto& acc, auto g) {
    const vf va = g.ld(a), vb = g.ld(b);
    acc[0] = fmadd(va, vb, acc[0]);
    acc[1] = fmadd(va, va, acc[1]);
    acc[2] = fmadd(vb, vb, acc[2]);
  });
  const double na = std::sqrt(double(aa)), nb = std::sqrt(double(bb));
  norm_a = float(na);
  norm_b = float(nb);
  return float(double(ab) / (std::max(na, double(eps)) * std::max(nb, double(eps))));
}

/// da = cross b - self_a a, db = cross a - self_b b (the per-row coefficients come from the driver); a null
/// output is skipped.
inline void cosine_backward_row(Tag, index_t n, const float* a, const float* b, float cross, float self_a,
                                float self_b, float* da, float* db) {
  const vf vc = set1(cross), vsa = set1(self_a), vsb = set1(self_b);
  rows_detail::row_groups(n, [&](auto g) {
    const vf va = g.ld(a), vb = g.ld(b);
    if (da != nullptr) g.st(da, fnmadd(vsa, va, mul(vc, vb)));
    if (db != nullptr) g.st(db, fnmadd(vsb, vb, mul(vc, va)));
  });
}

/// y = (x - mean) rstd gamma + beta. The statistics take one pass, around a shift s = x[0]: sd = sum (x - s),
/// ssd = sum (x - s)^2, mean = s + sd / n, var = (ssd - sd^2 / n) / n. Around a shift inside the row the
/// subtraction loses few digits (never E[x^2] - E[x]^2, which loses most when |mean| >> std); when the shift is far
/// from the mean in standard deviations (x[0] an outlier: sd^2 / n more than half of ssd), a second pass around
/// the mean computes the corrected two-pass form instead. `next_x` and `next_y`, when given, are the matrix's next
/// row (the one this thread computes next, except at the end of its block of rows): the output pass fetches them
/// into L1 (x for reading, y for writing) while it runs.
inline void layer_norm_forward_row(Tag, index_t n, const float* x, const float* gamma, const float* beta, float eps,
                                   float* y, float& mean, float& rstd, const float* next_x = nullptr,
                                   float* next_y = nullptr) {
  const float inv_n = 1.0f / float(n);
  float shift = x[0];
  auto centred_sums = [&](float s) {
    const vf vs = set1(s);
    return rows_detail::row_sums<2>(n, [&](auto& acc, auto g) {
      const vf d = g.keep(sub(g.ld(x), vs));
      acc[0] = add(acc[0], d);
      acc[1] = fmadd(d, d, acc[1]);
    });
  };
  auto [sd, ssd] = centred_sums(shift);
  float dm = sd * inv_n;
  // Also taken for NaN/Inf (ssd not finite): the pass around the non-finite mean gives the reference's NaN.
  if (!(std::isfinite(ssd) && 2.0f * sd * dm <= ssd)) {
    shift += dm;
    const auto [sd2, ssd2] = centred_sums(shift);
    sd = sd2;
    ssd = ssd2;
    dm = sd * inv_n;
  }
  const float var = std::max(0.0f, (ssd - sd * dm) * inv_n);
  const float r = 1.0f / std::sqrt(var + eps);
  // (x - s) is exact for x near s (Sterbenz), so subtracting s and the small correction dm separately keeps
  // digits that x - float(s + dm) would round away when |mean| >> std.
  const vf vs = set1(shift), vdm = set1(dm), vr = set1(r);
  const bool prefetch = lanes > 1 && next_x != nullptr;  // not at the scalar level: a prefetch per float
  rows_detail::row_groups(n, [&](auto g) {
    if (prefetch) {  // the next row's x and y at this group's offset (a line per group at AVX-512, half at AVX2)
      __builtin_prefetch(next_x + g.j);
      __builtin_prefetch(next_y + g.j, 1);
    }
    g.st(y, fmadd(mul(sub(sub(g.ld(x), vs), vdm), vr), g.ld(gamma), g.ld(beta)));
  });
  if (prefetch) {  // their last lines, where the rows do not start on a line
    __builtin_prefetch(next_x + n - 1);
    __builtin_prefetch(next_y + n - 1, 1);
  }
  mean = shift + dm;
  rstd = r;
}

/// dx = rstd (g - mean(g) - xhat mean(g xhat)), g = dy gamma; adds dy xhat into dgamma_part and dy into
/// dbeta_part (the row block's column partials; the driver reduces the blocks in a fixed order).
inline void layer_norm_backward_row(Tag, index_t n, const float* x, const float* gamma, float mean, float rstd,
                                    const float* dy, float* dx, float* dgamma_part, float* dbeta_part) {
  const vf vm = set1(mean), vr = set1(rstd);
  const auto [sg, sgx] = rows_detail::row_sums<2, 2>(n, [&](auto& acc, auto g) {  // a long body: 2 sets suffice
    const vf d = g.ld(dy), xhat = g.keep(mul(sub(g.ld(x), vm), vr));
    const vf gv = mul(d, g.ld(gamma));
    acc[0] = add(acc[0], gv);
    acc[1] = fmadd(gv, xhat, acc[1]);
    g.st(dgamma_part, fmadd(d, xhat, g.ld(dgamma_part)));
    g.st(dbeta_part, add(g.ld(dbeta_part), d));
  });
  const float inv_n = 1.0f / float(n);
  const vf g_mean = set1(sg * inv_n), gx_mean = set1(sgx * inv_n);
  rows_detail::row_groups(n, [&](auto g) {
    const vf xhat = mul(sub(g.ld(x), vm), vr);
    g.st(dx, mul(vr, fnmadd(xhat, gx_mean, sub(mul(g.ld(dy), g.ld(gamma)), g_mean))));
  });
}

/// layer_norm_backward_row for R consecutive rows (row r at x + r * ldx, dy + r * lddy, dx + r * lddx): the
/// dgamma/dbeta partials are loaded and stored once per lane group for the R rows instead of once per row (row by
/// row, that traffic took about half of the kernel's time), and gamma is loaded once. Each partial still adds the
/// rows in row order, as the one-row kernel does.
template <int R>
inline void layer_norm_backward_rows(Tag, index_t n, const float* x, index_t ldx, const float* gamma,
                                     const float* mean, const float* rstd, const float* dy, index_t lddy, float* dx,
                                     index_t lddx, float* dgamma_part, float* dbeta_part) {
  vf sg[R], sgx[R];
  [&]<int... r>(std::integer_sequence<int, r...>) {
    ((sg[r] = zero(), sgx[r] = zero()), ...);
  }(std::make_integer_sequence<int, R>{});
  rows_detail::row_groups(n, [&](auto g) {
    const vf gam = g.ld(gamma);
    vf dg = g.ld(dgamma_part), db = g.ld(dbeta_part);
    [&]<int... r>(std::integer_sequence<int, r...>) {
      (
          [&] {
            const vf d = g.ld(dy + r * lddy);
            const vf xhat = g.keep(mul(sub(g.ld(x + r * ldx), set1(mean[r])), set1(rstd[r])));
            const vf gv = mul(d, gam);
            sg[r] = add(sg[r], gv);
            sgx[r] = fmadd(gv, xhat, sgx[r]);
            dg = fmadd(d, xhat, dg);
            db = add(db, d);
          }(),
          ...);
    }(std::make_integer_sequence<int, R>{});
    g.st(dgamma_part, dg);
    g.st(dbeta_part, db);
  });
  const float inv_n = 1.0f / float(n);
  for (int r = 0; r < R; ++r) {
    const vf vm = set1(mean[r]), vr = set1(rstd[r]);
    const vf g_mean = set1(reduce_add(sg[r]) * inv_n), gx_mean = set1(reduce_add(sgx[r]) * inv_n);
    const float* xr = x + r * ldx;
    const float* dyr = dy + r * lddy;
    float* dxr = dx + r * lddx;
    rows_detail::row_groups(n, [&](auto g) {
      const vf xhat = mul(sub(g.ld(xr), vm), vr);
      g.st(dxr, mul(vr, fnmadd(xhat, gx_mean, sub(mul(g.ld(dyr), g.ld(gamma)), g_mean))));
    });
  }
}

/// out[j] = sum over blocks b of part[b * pitch + j], in block order, for the n columns of one chunk.
inline void sum_blocks(Tag, index_t n, index_t blocks, const float* part, index_t pitch, float* out) {
  rows_detail::row_groups(n, [&](auto g) {
    vf s = g.ld(part);
    for (index_t b = 1; b < blocks; ++b) s = add(s, g.ld(part + b * pitch));
    g.st(out, s);
  });
}

/// y[0, visible) = softmax(scale x[0, visible)), y[visible, n) = 0. x may be y.
inline void softmax_forward_row(Tag, index_t n, index_t visible, const float* x, float scale, float* y) {
  const float mx = rows_detail::row_max_scaled(visible, x, scale);
  const vf inv = set1(1.0f / rows_detail::sum_exp(visible, x, scale, mx, y));  // NaN stays NaN
  rows_detail::row_groups(visible, [&](auto g) { g.st(y, mul(g.ld(y), inv)); });
  rows_detail::zero_past(visible, n, y);
}

template <int K>
void rows_detail::softmax_forward_lockstep(index_t n, const index_t* visible, const float* const* x, float scale,
                                          float* const* y, const float* const* prefetch_x, float* const* prefetch_y) {
  index_t shortest = visible[0], longest = visible[0];
  for (int r = 1; r < K; ++r) shortest = std::min(shortest, visible[r]), longest = std::max(longest, visible[r]);
  const auto groups = [&](auto&& f) FROSTER_LAMBDA_INLINE { lockstep_groups<K>(visible, shortest, longest, f); };
  // Max (min for a negative or NaN scale) of x per lane; lanes past a row keep the accumulator.
  const bool take_max = scale >= 0;
  vf m[K];
  for_rows<K>([&](auto r) FROSTER_LAMBDA_INLINE { m[r] = set1(take_max ? -INFINITY : INFINITY); });
  if (take_max) groups([&](auto r, auto g) FROSTER_LAMBDA_INLINE { m[r] = max(m[r], g.keep_or(g.ld(x[r]), m[r])); });
  else groups([&](auto r, auto g) FROSTER_LAMBDA_INLINE { m[r] = min(m[r], g.keep_or(g.ld(x[r]), m[r])); });
  float mx[K];
  const float c1_scalar = softmax_exp_scale(scale);
  const bool c1_finite = std::isfinite(c1_scalar);  // |scale| above ~2.4e38 overflows c1 at AVX-512
  const auto takes_lockstep = [&](float row_max) { return c1_finite && fma_shift_exact(row_max); };
  bool all_exact = true;
  for_rows<K>([&](auto r) FROSTER_LAMBDA_INLINE {
    mx[r] = scale * (take_max ? reduce_max(m[r]) : -reduce_max(sub(zero(), m[r])));
    all_exact &= takes_lockstep(mx[r]);
  });
  if (!all_exact) {
    for (int r = 0; r < K; ++r) {
      if (K > 1 && takes_lockstep(mx[r]))
        softmax_forward_lockstep<1>(n, visible + r, x + r, scale, y + r, nullptr, nullptr);
      else
        softmax_forward_row(Tag{}, n, visible[r], x[r], scale, y[r]);
    }
    return;
  }
  const vf c1 = set1(c1_scalar);
  vf c0[K], sum[K];
  for_rows<K>([&](auto r) FROSTER_LAMBDA_INLINE {
    c0[r] = set1(softmax_exp_shift(mx[r]));
    sum[r] = zero();
  });
  const bool prefetch = lanes > 1 && prefetch_x != nullptr;  // not at the scalar level: a prefetch per float
  groups([&](auto r, auto g) FROSTER_LAMBDA_INLINE {
    if (prefetch) {  // the next rows at this group's offset (a line per group at AVX-512, half at AVX2)
      __builtin_prefetch(prefetch_x[r] + g.j);
      __builtin_prefetch(prefetch_y[r] + g.j, 1);
    }
    const vf e = softmax_exp(g, g.ld(x[r]), c1, c0[r]);
    g.st(y[r], e);
    sum[r] = add(sum[r], g.keep(e));
  });
  if (prefetch)
    for (int r = 0; r < K; ++r) {  // the next rows' y past this row's columns (the zero fill), x's next columns
      for (index_t j = visible[r]; j < n; j += lanes) __builtin_prefetch(prefetch_y[r] + j, 1);
      __builtin_prefetch(prefetch_x[r] + std::min(visible[r] + K, n) - 1);  // a causal row grows by K columns
      __builtin_prefetch(prefetch_x[r] + n - 1);
      __builtin_prefetch(prefetch_y[r] + n - 1, 1);
    }
  vf inv[K];
  for_rows<K>([&](auto r) FROSTER_LAMBDA_INLINE { inv[r] = set1(1.0f / reduce_add(sum[r])); });  // NaN stays NaN
  groups([&](auto r, auto g) FROSTER_LAMBDA_INLINE { g.st(y[r], mul(g.ld(y[r]), inv[r])); });
  for (int r = 0; r < K; ++r) zero_past(visible[r], n, y[r]);
}

/// Softmax forward of `rows` rows of `n` columns at x (row stride ldx) into y (ldy); x may be y. Row i shows its
/// first (first_row + i) % n + 1 columns when causal (the rest of y is zero), all n otherwise. Four rows at a time
/// in lockstep, prefetching the next four; same results as one at a time.
inline void softmax_forward_rows(Tag, index_t rows, index_t n, const float* x, index_t ldx, float scale, bool causal,
                                 index_t first_row, float* y, index_t ldy) {
  const auto group = [&](auto k, index_t i, const float* const* xs, float* const* ys, const float* const* next_x,
                         float* const* next_y) {
    constexpr int K = decltype(k)::value;
    index_t visible[K];
    for (int r = 0; r < K; ++r) visible[r] = causal ? (first_row + i + r) % n + 1 : n;
    rows_detail::softmax_forward_lockstep<K>(n, visible, xs, scale, ys, next_x, next_y);
  };
  rows_detail::in_row_groups<4>(rows, x, ldx, y, ldy, group);
}

/// dx = scale y (dy - <y, dy>).
inline void softmax_backward_row(Tag, index_t n, const float* y, const float* dy, float scale, float* dx) {
  const auto [dot] = rows_detail::row_sums<1>(n, [&](auto& acc, auto g) { acc[0] = fmadd(g.ld(y), g.ld(dy), acc[0]); });
  const vf vs = set1(scale), vd = set1(dot);
  rows_detail::row_groups(n, [&](auto g) { g.st(dx, mul(mul(vs, g.ld(y)), sub(g.ld(dy), vd))); });
}

/// y = scale x - logsumexp(scale x), formed as (scale x - max) - log(sum exp(scale x - max)) so that no large
/// terms cancel. x may be y.
inline void log_softmax_forward_row(Tag, index_t n, const float* x, float scale, float* y) {
  const float mx = rows_detail::row_max_scaled(n, x, scale);
  const vf vs = set1(scale), vnm = set1(-mx);
  const vf lse = set1(std::log(rows_detail::sum_exp(n, x, scale, mx, nullptr)));
  rows_detail::row_groups(n, [&](auto g) { g.st(y, sub(fmadd(vs, g.ld(x), vnm), lse)); });
}
