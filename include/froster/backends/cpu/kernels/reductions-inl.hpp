// Reduction and loss kernels (sum, dot, pointwise losses, cross-entropy, soft cross-entropy, KL divergence,
// temporal pooling), written once against the SIMD vocabulary and compiled per ISA by ../kernels.hpp (no include
// guard; after rows-inl.hpp, whose rows_detail helpers they use). Semantics are those of reference/dense.hpp,
// reference/losses.hpp and reference/pooling.hpp. Row sums run in fp32 lanes over fixed blocks of `block`
// columns, each block's total added into a double in block order: the result depends on the row length only.

namespace reductions_detail {

#ifndef FROSTER_REDUCTIONS_INLINE
#if defined(__GNUC__)
#define FROSTER_REDUCTIONS_INLINE [[gnu::always_inline]] inline
#else
#define FROSTER_REDUCTIONS_INLINE inline
#endif
#endif

/// Columns per fp32 block of a row sum.
inline constexpr index_t block = 1024;

/// sum over the row's blocks of the fp32 lane sum step(acc, group, block_start) adds into acc[0], in double.
template <class Step>
FROSTER_REDUCTIONS_INLINE double blocked_sum(index_t n, Step&& step) {
  double total = 0;
  for (index_t b = 0; b < n; b += block) {
    const auto [s] = rows_detail::row_sums<1>(std::min(block, n - b), [&](auto& acc, auto g) { step(acc, g, b); });
    total += double(s);
  }
  return total;
}

// Comparisons the vocabulary lacks; templates on the vector type so that only this level's branch is compiled.

/// v where a > b (ordered: false when either is NaN), +0 elsewhere.
template <class V>
FROSTER_REDUCTIONS_INLINE V where_greater(V a, V b, V v) {
  if constexpr (lanes == 1) {
    return a > b ? v : V(0);
#if FROSTER_CPU_X86_KERNELS
  } else if constexpr (lanes == 8) {
    return _mm256_and_ps(_mm256_cmp_ps(a, b, _CMP_GT_OQ), v);
  } else {
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(a, b, _CMP_GT_OQ), v);
#endif
  }
}

/// (d > 0) - (d < 0): 0 for +-0 and NaN, as the reference's integer sign.
template <class V>
FROSTER_REDUCTIONS_INLINE V sign(V d) {
  return sub(where_greater(d, zero(), set1(1.0f)), where_greater(zero(), d, set1(1.0f)));
}

/// e, with NaN where x is NaN (the vocabulary's exp clamps NaN to its range).
template <class V>
FROSTER_REDUCTIONS_INLINE V keep_nan(V e, V x) {
  if constexpr (lanes == 1) {
    return x != x ? x : e;
#if FROSTER_CPU_X86_KERNELS
  } else if constexpr (lanes == 8) {
    return _mm256_or_ps(e, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
  } else {
    return _mm512_mask_mov_ps(e, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), x);
#endif
  }
}

template <class V>
FROSTER_REDUCTIONS_INLINE V exp_nan(V x) {
  return keep_nan(exp(x), x);
}

/// One step of the reference's first-maximum scan: take v (frame t) when v > best or v is NaN, unless best is
/// already NaN (the scan stops at the first NaN).
template <class V>
FROSTER_REDUCTIONS_INLINE void max_step(V& best, V& index, V v, V t) {
  if constexpr (lanes == 1) {
    if (best == best && (v > best || v != v)) {
      best = v;
      index = t;
    }
#if FROSTER_CPU_X86_KERNELS
  } else if constexpr (lanes == 8) {
    const __m256 take = _mm256_and_ps(_mm256_or_ps(_mm256_cmp_ps(v, best, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q)),
                                      _mm256_cmp_ps(best, best, _CMP_ORD_Q));
    best = _mm256_blendv_ps(best, v, take);
    index = _mm256_blendv_ps(index, t, take);
  } else {
    const __mmask16 take = (_mm512_cmp_ps_mask(v, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q)) &
                           _mm512_cmp_ps_mask(best, best, _CMP_ORD_Q);
    best = _mm512_mask_mov_ps(best, take, v);
    index = _mm512_mask_mov_ps(index, take, t);
#endif
  }
}

/// Below this, exp(x) in double is 0 (the reference's p > 0 test); above it the vocabulary's clamped exp is
/// positive too.
inline constexpr float exp_zero_below = -745.1332f;

}  // namespace reductions_detail

/// sum_j x[j], fp32 blocks combined in double.
inline double sum_row(Tag, index_t n, const float* x) {
  return reductions_detail::blocked_sum(n, [&](auto& acc, auto g, index_t b) { acc[0] = add(acc[0], g.ld(x + b)); });
}

/// sum_j a[j] b[j], fp32 blocks combined in double.
inline double dot_row(Tag, index_t n, const float* a, const float* b) {
  return reductions_detail::blocked_sum(
      n, [&](auto& acc, auto g, index_t o) { acc[0] = fmadd(g.ld(a + o), g.ld(b + o), acc[0]); });
}

/// sum_j (a - b)^2 (squared) or |a - b|.
inline double pointwise_loss_row(Tag, bool squared, index_t n, const float* a, const float* b) {
  if (squared)
    return reductions_detail::blocked_sum(n, [&](auto& acc, auto g, index_t o) {
      const vf d = sub(g.ld(a + o), g.ld(b + o));
      acc[0] = fmadd(d, d, acc[0]);
    });
  return reductions_detail::blocked_sum(
      n, [&](auto& acc, auto g, index_t o) { acc[0] = add(acc[0], abs(sub(g.ld(a + o), g.ld(b + o)))); });
}

/// da = scale g, db = -da with g = 2 (a - b) or sign(a - b); a null output is skipped. Outputs may be inputs.
inline void pointwise_loss_backward_row(Tag, bool squared, index_t n, const float* a, const float* b, float scale,
                                        float* da, float* db) {
  const vf vs = set1(squared ? 2.0f * scale : scale);
  rows_detail::row_groups(n, [&](auto g) {
    const vf d = sub(g.ld(a), g.ld(b));
    const vf ga = mul(vs, squared ? d : reductions_detail::sign(d));
    if (da != nullptr) g.st(da, ga);
    if (db != nullptr) g.st(db, sub(zero(), ga));
  });
}

/// dlogits = scale exp(logp) (the caller writes the label's element). May be in place.
inline void cross_entropy_backward_row(Tag, index_t n, const float* logp, float scale, float* dlogits) {
  const vf vs = set1(scale);
  rows_detail::row_groups(n, [&](auto g) { g.st(dlogits, mul(vs, reductions_detail::exp_nan(g.ld(logp)))); });
}

/// -sum_j t[j] logp[j].
inline double soft_cross_entropy_row(Tag, index_t n, const float* logp, const float* t) {
  return -reductions_detail::blocked_sum(
      n, [&](auto& acc, auto g, index_t o) { acc[0] = fmadd(g.ld(t + o), g.ld(logp + o), acc[0]); });
}

/// dlogits = scale (exp(logp) mass - t), mass = sum_j t[j] from the caller. May be in place.
inline void soft_cross_entropy_backward_row(Tag, index_t n, const float* logp, const float* t, float mass,
                                            float scale, float* dlogits) {
  const vf vs = set1(scale), vm = set1(mass);
  rows_detail::row_groups(n, [&](auto g) {
    const vf e = reductions_detail::exp_nan(g.ld(logp));
    g.st(dlogits, mul(vs, sub(mul(e, vm), g.ld(t))));
  });
}

/// sum_j p_t (logp_t - logp_s) over p_t = exp(logp_t) > 0 (NaN and -inf teacher entries add nothing).
inline double kl_div_row(Tag, index_t n, const float* ls, const float* lt) {
  const vf vfloor = set1(reductions_detail::exp_zero_below);
  return reductions_detail::blocked_sum(n, [&](auto& acc, auto g, index_t o) {
    const vf t = g.ld(lt + o);
    acc[0] = add(acc[0], reductions_detail::where_greater(t, vfloor, mul(exp(t), sub(t, g.ld(ls + o)))));
  });
}

/// d_student = scale (p_s - p_t); d_teacher = scale p_t (logp_t - logp_s - loss) where p_t > 0, else 0. A null
/// output is skipped.
inline void kl_div_backward_row(Tag, index_t n, const float* ls, const float* lt, float loss, float scale,
                                float* d_student, float* d_teacher) {
  const vf vs = set1(scale), vl = set1(loss), vfloor = set1(reductions_detail::exp_zero_below);
  rows_detail::row_groups(n, [&](auto g) {
    const vf s = g.ld(ls), t = g.ld(lt);
    const vf pt = reductions_detail::exp_nan(t);
    if (d_student != nullptr) g.st(d_student, mul(vs, sub(reductions_detail::exp_nan(s), pt)));
    if (d_teacher != nullptr)
      g.st(d_teacher, reductions_detail::where_greater(t, vfloor, mul(mul(vs, pt), sub(sub(t, s), vl))));
  });
}

/// y[k] = sum_t x[t * stride + k] / frames over n columns.
inline void temporal_mean_row(Tag, index_t n, index_t frames, const float* x, index_t stride, float* y) {
  const vf vf_frames = set1(float(frames));
  rows_detail::row_groups(n, [&](auto g) {
    vf s = g.ld(x);
    for (index_t t = 1; t < frames; ++t) s = add(s, g.ld(x + t * stride));
    g.st(y, div(s, vf_frames));
  });
}

/// y[k] = the first maximum over frames of x[t * stride + k] (the first NaN if any), argmax[k * argmax_stride]
/// its frame.
inline void temporal_max_row(Tag, index_t n, index_t frames, const float* x, index_t stride, float* y,
                             std::int64_t* argmax, index_t argmax_stride) {
  rows_detail::row_groups(n, [&](auto g) {
    vf best = g.ld(x), index = zero();
    for (index_t t = 1; t < frames; ++t) reductions_detail::max_step(best, index, g.ld(x + t * stride), set1(float(t)));
    g.st(y, best);
    float frame[lanes];
    store(frame, index);
    for (index_t l = 0; l < lanes && g.j + l < n; ++l) argmax[(g.j + l) * argmax_stride] = std::int64_t(frame[l]);
  });
}

/// dx[t * stride + k] = dy[k] / frames for every frame t.
inline void temporal_mean_backward_row(Tag, index_t n, index_t frames, const float* dy, float* dx, index_t stride) {
  const vf vf_frames = set1(float(frames));
  rows_detail::row_groups(n, [&](auto g) {
    const vf v = div(g.ld(dy), vf_frames);
    for (index_t t = 0; t < frames; ++t) g.st(dx + t * stride, v);
  });
}
