// Fused multi-head attention (FlashAttention-2 style), written once against the SIMD vocabulary and compiled per
// ISA by ../kernels.hpp (no include guard). Driven by ../attention.hpp; the math is the reference's
// (reference/attention.hpp), the layout and masks are AttentionSpec's (ops.hpp).
//
// Forward: a range of query blocks of one (sequence, head); its keys and values are copied once into contiguous
// memory, then every block of attn_br queries streams the key blocks through an online softmax (running maximum and
// denominator per row, the partial output rescaled when the maximum grows), so scores never exist beyond one
// [attn_br x attn_bc] tile. Backward (FlashAttention-2): one (group of coupled sequences, head) at a time (a group is
// a sequence, or a clip's frames for temporal_neighbours, whose keys the neighbouring frames' queries see): for every
// key block, every query block that sees it recomputes P = exp(S - lse) from q, k and the saved lse, forms
// dS = P (dP - D) with D = rowsum(dout out), and adds its share to dk and dv (kept in tiles) and to dq (in the
// output). One task owns every output it writes and runs in a fixed order: results are bitwise independent of the
// thread count. The small products run on one register-tiled kernel (attn_tile) whose A operand may be transposed.

/// Register tile of the small matrix products: attn_mr rows x attn_nv vectors (6 x 16 floats on AVX2: 12 of the
/// 16 ymm registers accumulate).
inline constexpr int attn_mr = isa == Isa::scalar ? 4 : 6;
inline constexpr int attn_nv = isa == Isa::scalar ? 4 : 2;
/// Query rows and keys per tile of the forward pass (a multiple of every level's attn_mr and attn_nv * lanes), and of
/// the backward pass, which holds twice the tiles. Measured on Zen 3 (ATTENTION.md).
inline constexpr index_t attn_br = 24;
inline constexpr index_t attn_bc = 64;
inline constexpr index_t attn_bwd_br = 48;
inline constexpr index_t attn_bwd_bc = 64;

/// The query block of this level, for the driver's task split.
inline index_t attn_br_of(Tag) { return attn_br; }

inline index_t attn_min(index_t a, index_t b) { return a < b ? a : b; }
inline index_t attn_clamp(index_t x, index_t lo, index_t hi) { return x < lo ? lo : (x > hi ? hi : x); }

/// C[m, n] = alpha A[m, k] B[k, n] (+ C when accumulate) for m = M <= attn_mr rows and n <= attn_nv * lanes columns.
/// A(i, p) = a[i * ars + p * acs], any layout (a transposed operand costs nothing: its elements are broadcast);
/// B(p, j) = b[p * ldb + j] and C(i, j) = c[i * ldc + j] have contiguous rows.
template <int M, bool FullN>
inline void attn_tile(index_t n, index_t k, float alpha, const float* a, index_t ars, index_t acs, const float* b,
                      index_t ldb, float* c, index_t ldc, bool accumulate) {
  vf acc[M][attn_nv];
  index_t width[attn_nv];
  for (int u = 0; u < attn_nv; ++u) width[u] = attn_clamp(n - u * lanes, 0, lanes);
  for (int i = 0; i < M; ++i)
    for (int u = 0; u < attn_nv; ++u) acc[i][u] = zero();
  for (index_t p = 0; p < k; ++p) {
    vf bv[attn_nv];
    for (int u = 0; u < attn_nv; ++u) {
      if constexpr (FullN) bv[u] = load(b + p * ldb + u * lanes);
      else bv[u] = load_partial(b + p * ldb + u * lanes, width[u]);
    }
    for (int i = 0; i < M; ++i) {
      const vf ai = set1(a[i * ars + p * acs]);
      for (int u = 0; u < attn_nv; ++u) acc[i][u] = fmadd(ai, bv[u], acc[i][u]);
    }
  }
  const vf va = set1(alpha);
  for (int i = 0; i < M; ++i)
    for (int u = 0; u < attn_nv; ++u) {
      float* cp = c + i * ldc + u * lanes;
      if constexpr (FullN) {
        store(cp, accumulate ? fmadd(va, acc[i][u], load(cp)) : mul(va, acc[i][u]));
      } else if (width[u] > 0) {
        store_partial(cp, accumulate ? fmadd(va, acc[i][u], load_partial(cp, width[u])) : mul(va, acc[i][u]),
                      width[u]);
      }
    }
}

template <int M>
inline void attn_tile_rows(index_t m, index_t n, index_t k, float alpha, const float* a, index_t ars, index_t acs,
                           const float* b, index_t ldb, float* c, index_t ldc, bool accumulate) {
  if constexpr (M > 1) {
    if (m < M) return attn_tile_rows<M - 1>(m, n, k, alpha, a, ars, acs, b, ldb, c, ldc, accumulate);
  }
  if (n == attn_nv * lanes) attn_tile<M, true>(n, k, alpha, a, ars, acs, b, ldb, c, ldc, accumulate);
  else attn_tile<M, false>(n, k, alpha, a, ars, acs, b, ldb, c, ldc, accumulate);
}

/// C[m, n] = alpha A[m, k] B[k, n] (+ C when accumulate), any m and n, with the layouts of attn_tile.
inline void attn_gemm(index_t m, index_t n, index_t k, float alpha, const float* a, index_t ars, index_t acs,
                      const float* b, index_t ldb, float* c, index_t ldc, bool accumulate) {
  constexpr index_t nr = attn_nv * lanes;
  for (index_t j = 0; j < n; j += nr)  // one panel of B stays in L1 while the row tiles pass over it
    for (index_t i = 0; i < m; i += attn_mr)
      attn_tile_rows<attn_mr>(attn_min(attn_mr, m - i), attn_min(nr, n - j), k, alpha, a + i * ars, ars, acs, b + j,
                              ldb, c + i * ldc + j, ldc, accumulate);
}

/// Columns of the score tiles: keys padded to whole register tiles, so the S products never take a partial tile.
inline index_t attn_padded(index_t n) {
  constexpr index_t nr = attn_nv * lanes;
  return (n + nr - 1) / nr * nr;
}

/// Asks for the d floats at p (one row of q, k, v, out or dout; 16 floats a cache line) ahead of use: the rows lie
/// 3 * width floats apart, a page or more at CLIP's widths, where the hardware prefetchers stop.
inline void attn_prefetch_row(const float* p, index_t d) {
  for (index_t c = 0; c < d; c += 16) __builtin_prefetch(p + c);
}
inline void attn_prefetch_row_for_write(float* p, index_t d) {
  for (index_t c = 0; c < d; c += 16) __builtin_prefetch(p + c, 1);
}

/// dst[c * ld + j] = src(j, c) for j < rows, c < d, and 0 for rows <= j < attn_padded(rows): a key block transposed,
/// so that S = Q K^T runs as a product with contiguous B rows.
inline void attn_pack_transposed(index_t rows, index_t d, const float* src, index_t ld_src, float* dst, index_t ld) {
  constexpr index_t chunk = 16;  // keys per pass: each pass fills one cache line of every row of dst
  for (index_t j0 = 0; j0 < rows; j0 += chunk) {
    const index_t j1 = attn_min(rows, j0 + chunk);
    for (index_t j = j1; j < attn_min(rows, j1 + chunk); ++j) attn_prefetch_row(src + j * ld_src, d);
    index_t c_done = 0;
#if FROSTER_CPU_X86_KERNELS
    if constexpr (isa != Isa::scalar) {  // 8 x 8 blocks through AVX2 shuffles (AVX-512 has them too)
      if (j1 - j0 == chunk) {
        for (; c_done + 8 <= d; c_done += 8)
          for (index_t jb = j0; jb < j1; jb += 8) {
            __m256 r[8], t[8];
            for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + (jb + i) * ld_src + c_done);
            for (int i = 0; i < 8; i += 2) {
              t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
              t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
            }
            for (int i = 0; i < 8; i += 4) {
              r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
              r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
              r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
              r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
            }
            for (int i = 0; i < 4; ++i) {
              _mm256_storeu_ps(dst + (c_done + i) * ld + jb, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
              _mm256_storeu_ps(dst + (c_done + i + 4) * ld + jb, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
            }
          }
      }
    }
#endif
    for (index_t c = c_done; c < d; ++c)
      for (index_t j = j0; j < j1; ++j) dst[c * ld + j] = src[j * ld_src + c];
  }
  for (index_t c = 0; c < d; ++c)
    for (index_t j = rows; j < attn_padded(rows); ++j) dst[c * ld + j] = 0.0f;
}

inline void attn_scale_row(index_t n, float s, float* x) {
  const vf vs = set1(s);
  index_t j = 0;
  for (; j + lanes <= n; j += lanes) store(x + j, mul(vs, load(x + j)));
  if (j < n) store_partial(x + j, mul(vs, load_partial(x + j, n - j)), n - j);
}

inline float attn_dot(index_t n, const float* x, const float* y) {
  vf acc = zero();
  index_t j = 0;
  for (; j + lanes <= n; j += lanes) acc = fmadd(load(x + j), load(y + j), acc);
  if (j < n) acc = fmadd(load_partial(x + j, n - j), load_partial(y + j, n - j), acc);
  return reduce_add(acc);
}

/// s[j] = exp(s[j] - shift) for j < n, 0 for n <= j < len; returns the sum of the first n. shift is at least the
/// row's maximum (the running maximum forward, the log-sum-exp backward), so the softmax's exponential serves.
inline float attn_exp_row(index_t n, index_t len, float shift, float* s) {
  const vf vshift = set1(shift);
  vf sum = zero();
  index_t j = 0;
  for (; j + lanes <= n; j += lanes) {
    const vf e = rows_detail::exp_nonpositive(sub(load(s + j), vshift));
    store(s + j, e);
    sum = add(sum, e);
  }
  if (j < n) {
    store_partial(s + j, rows_detail::exp_nonpositive(sub(load_partial(s + j, n - j), vshift)), n - j);
    sum = add(sum, load_partial(s + j, n - j));  // the tail's padding lanes are zero here
  }
  for (j = n; j < len; ++j) s[j] = 0.0f;
  return reduce_add(sum);
}

/// The most keys a query sees.
inline index_t attn_max_keys(const AttentionSpec& spec) {
  return spec.mask == AttentionMask::temporal_neighbours ? 3 * spec.tokens : spec.tokens;
}

/// Workspace floats of one attention_forward_rows or attention_backward_group call.
inline index_t attention_workspace_floats(Tag, const AttentionSpec& spec, index_t head_dim, bool backward) {
  const index_t key_blocks = (attn_max_keys(spec) + attn_bc - 1) / attn_bc;
  if (!backward) return attn_br * attn_bc + 2 * key_blocks * attn_bc * head_dim + attn_br * head_dim + 2 * attn_br;
  const index_t group = spec.mask == AttentionMask::temporal_neighbours ? spec.frames : 1;
  return 2 * attn_bwd_br * attn_bwd_bc + 5 * attn_bwd_bc * head_dim + 2 * attn_bwd_br * head_dim + group * spec.tokens;
}

/// out and lse of query tokens [t_begin, t_end) of sequence b, head h, in blocks of attn_br queries.
inline void attention_forward_rows(Tag, ConstView<float> q, ConstView<float> k, ConstView<float> v,
                                   const AttentionSpec& spec, float scale, TensorView<float> out,
                                   TensorView<float> lse, index_t b, index_t h, index_t t_begin, index_t t_end,
                                   float* workspace) {
  const index_t d = q.cols() / spec.heads, c0 = h * d;
  const bool causal = spec.mask == AttentionMask::causal;
  // The keys of the range's last query: every query of the range sees a prefix of them (all of them unless causal).
  const AttentionKeys keys = attention_keys(spec, b, t_end - 1);
  const index_t key_blocks = (attn_max_keys(spec) + attn_bc - 1) / attn_bc;
  float* s = workspace;                 // [attn_br, attn_bc] scores, then probabilities
  float* kt = s + attn_br * attn_bc;    // [key block][d, attn_bc] the keys, each block transposed
  float* vp = kt + key_blocks * attn_bc * d;  // [keys, d] the values, rows contiguous
  float* o = vp + key_blocks * attn_bc * d;   // [attn_br, d] unnormalised output
  float* m = o + attn_br * d;           // [attn_br] running maximum
  float* l = m + attn_br;               // [attn_br] running denominator
  // Packed once for all the range's query blocks: every tile product then streams through contiguous memory (the
  // rows of q, k, v lie 3 * width floats apart in the packed projection).
  for (index_t j0 = keys.begin; j0 < keys.end; j0 += attn_bc) {
    const index_t bc = attn_min(attn_bc, keys.end - j0);
    attn_pack_transposed(bc, d, &k(j0, c0), k.stride(0), kt + (j0 - keys.begin) * d, attn_bc);
    for (index_t j = 0; j < bc; ++j) {
      if (j0 + j + 8 < keys.end) attn_prefetch_row(&v(j0 + j + 8, c0), d);
      for (index_t c = 0; c < d; ++c) vp[(j0 - keys.begin + j) * d + c] = v(j0 + j, c0 + c);
    }
  }
  for (index_t t0 = t_begin; t0 < t_end; t0 += attn_br) {
    const index_t br = attn_min(attn_br, t_end - t0), row0 = b * spec.tokens + t0;
    const index_t keys_end = causal ? row0 + br : keys.end;  // causal: the block's last query sees up to itself
    // Zero keys score exactly 0: they start the running maximum at 0 and the denominator at their count.
    for (index_t r = 0; r < br; ++r) {
      m[r] = keys.zero_keys > 0 ? 0.0f : -INFINITY;
      l[r] = float(keys.zero_keys);
    }
    for (index_t i = 0; i < br * d; ++i) o[i] = 0.0f;
    for (index_t r = 0; r < br; ++r) {
      if (t0 + attn_br + r < t_end) attn_prefetch_row(&q(row0 + attn_br + r, c0), d);  // the next block's queries
      attn_prefetch_row_for_write(&out(row0 + r, c0), d);
    }
    const float* qp = &q(row0, c0);
    for (index_t j0 = keys.begin; j0 < keys_end; j0 += attn_bc) {
      const index_t bc = attn_min(attn_bc, keys_end - j0), n = attn_padded(bc);
      attn_gemm(br, n, d, scale, qp, q.stride(0), 1, kt + (j0 - keys.begin) * d, attn_bc, s, attn_bc, false);
      for (index_t r = 0; r < br; ++r) {
        float* sr = s + r * attn_bc;
        // Causal: query row row0 + r sees keys up to itself.
        const index_t visible = causal ? attn_clamp(row0 + r + 1 - j0, 0, bc) : bc;
        if (visible == 0) {
          for (index_t j = 0; j < bc; ++j) sr[j] = 0.0f;
          continue;
        }
        vf vmax = set1(-INFINITY);
        index_t j = 0;
        for (; j + lanes <= visible; j += lanes) vmax = max(vmax, load(sr + j));
        float block_max = reduce_max(vmax);
        for (; j < visible; ++j) block_max = sr[j] > block_max ? sr[j] : block_max;
        const float m_new = block_max > m[r] ? block_max : m[r];
        // 0 on the first block without zero keys (m = -inf); 1, without calling exp, while the maximum holds.
        const float rescale = m_new == m[r] ? 1.0f : std::exp(m[r] - m_new);
        l[r] = l[r] * rescale + attn_exp_row(visible, bc, m_new, sr);
        if (rescale != 1.0f && m[r] != -INFINITY) attn_scale_row(d, rescale, o + r * d);
        m[r] = m_new;
      }
      attn_gemm(br, d, bc, 1.0f, s, attn_bc, 1, vp + (j0 - keys.begin) * d, d, o, d, true);
    }
    for (index_t r = 0; r < br; ++r) {
      const vf inv = set1(1.0f / l[r]);
      float* dst = &out(row0 + r, c0);
      index_t j = 0;
      for (; j + lanes <= d; j += lanes) store(dst + j, mul(inv, load(o + r * d + j)));
      if (j < d) store_partial(dst + j, mul(inv, load_partial(o + r * d + j, d - j)), d - j);
      lse(row0 + r, h) = m[r] + std::log(l[r]);
    }
  }
}

/// dq, dk, dv of head h for the sequences [g0, g0 + count), which no query outside them sees.
inline void attention_backward_group(Tag, ConstView<float> q, ConstView<float> k, ConstView<float> v,
                                     ConstView<float> out, ConstView<float> lse, ConstView<float> dout,
                                     const AttentionSpec& spec, float scale, TensorView<float> dq,
                                     TensorView<float> dk, TensorView<float> dv, index_t g0, index_t count, index_t h,
                                     float* workspace) {
  const index_t d = q.cols() / spec.heads, c0 = h * d, tokens = spec.tokens, first_row = g0 * tokens;
  const bool causal = spec.mask == AttentionMask::causal;
  const bool temporal = spec.mask == AttentionMask::temporal_neighbours;
  float* p = workspace;               // [attn_bwd_br, attn_bwd_bc] probabilities
  float* ds = p + attn_bwd_br * attn_bwd_bc;  // [attn_bwd_br, attn_bwd_bc] dP, then dS
  float* kt = ds + attn_bwd_br * attn_bwd_bc; // [d, attn_bwd_bc] key block transposed
  float* vt = kt + attn_bwd_bc * d;       // [d, attn_bwd_bc] value block transposed
  float* gk = vt + attn_bwd_bc * d;       // [attn_bwd_bc, d] the key block's dk
  float* gv = gk + attn_bwd_bc * d;       // [attn_bwd_bc, d] its dv
  float* kp = gv + attn_bwd_bc * d;       // [attn_bwd_bc, d] the key block, rows contiguous
  float* qp = kp + attn_bwd_bc * d;       // [attn_bwd_br, d] the query block, rows contiguous
  float* dop = qp + attn_bwd_br * d;      // [attn_bwd_br, d] its dout
  float* D = dop + attn_bwd_br * d;       // [count * tokens] rowsum(dout * out)
  // Every operand of the tile products is copied to contiguous memory first (the rows of q, k, v lie 3 * width
  // floats apart in the packed projection); the copies cost 1 / (5 attn_bwd_bc) of the products.
  auto copy_rows = [d](index_t rows, const float* src, index_t ld, float* dst) {
    for (index_t j = 0; j < rows; ++j)
      for (index_t c = 0; c < d; ++c) dst[j * d + c] = src[j * ld + c];
  };
  for (index_t r = 0; r < count * tokens; ++r) {
    if (r + 4 < count * tokens) {
      attn_prefetch_row(&dout(first_row + r + 4, c0), d);
      attn_prefetch_row(&out(first_row + r + 4, c0), d);
    }
    D[r] = attn_dot(d, &dout(first_row + r, c0), &out(first_row + r, c0));
    float* dst = &dq(first_row + r, c0);
    for (index_t c = 0; c < d; ++c) dst[c] = 0.0f;
  }
  for (index_t kb = g0; kb < g0 + count; ++kb) {
    // The query sequences whose keys include sequence kb's.
    const index_t qb_first = temporal && kb > g0 ? kb - 1 : kb;
    const index_t qb_last = temporal && kb + 1 < g0 + count ? kb + 1 : kb;
    for (index_t tk0 = 0; tk0 < tokens; tk0 += attn_bwd_bc) {
      const index_t bc = attn_min(attn_bwd_bc, tokens - tk0), j0 = kb * tokens + tk0;
      const index_t n = attn_padded(bc);
      attn_pack_transposed(bc, d, &k(j0, c0), k.stride(0), kt, attn_bwd_bc);
      attn_pack_transposed(bc, d, &v(j0, c0), v.stride(0), vt, attn_bwd_bc);
      copy_rows(bc, &k(j0, c0), k.stride(0), kp);
      for (index_t i = 0; i < bc * d; ++i) gk[i] = gv[i] = 0.0f;
      for (index_t qb = qb_first; qb <= qb_last; ++qb)
        for (index_t tq0 = 0; tq0 < tokens; tq0 += attn_bwd_br) {
          const index_t br = attn_min(attn_bwd_br, tokens - tq0), i0 = qb * tokens + tq0;
          if (causal && tq0 + br - 1 < tk0) continue;  // every query of the block precedes every key
          copy_rows(br, &q(i0, c0), q.stride(0), qp);
          copy_rows(br, &dout(i0, c0), dout.stride(0), dop);
          for (index_t r = 0; r < attn_min(attn_bwd_br, tokens - tq0 - br); ++r) {  // the next query block
            attn_prefetch_row(&q(i0 + br + r, c0), d);
            attn_prefetch_row(&dout(i0 + br + r, c0), d);
          }
          attn_gemm(br, n, d, scale, qp, d, 1, kt, attn_bwd_bc, p, attn_bwd_bc, false);
          attn_gemm(br, n, d, 1.0f, dop, d, 1, vt, attn_bwd_bc, ds, attn_bwd_bc, false);
          for (index_t r = 0; r < br; ++r) {
            const index_t visible = causal ? attn_clamp(tq0 + r + 1 - tk0, 0, bc) : bc;
            float* pr = p + r * attn_bwd_bc;
            float* dr = ds + r * attn_bwd_bc;
            attn_exp_row(visible, n, lse(i0 + r, h), pr);
            const vf vd = set1(D[i0 + r - first_row]);
            index_t j = 0;  // dS = P (dP - D); P = 0 where masked
            for (; j + lanes <= n; j += lanes) store(dr + j, mul(load(pr + j), sub(load(dr + j), vd)));
          }
          attn_gemm(bc, d, br, 1.0f, p, 1, attn_bwd_bc, dop, d, gv, d, true);       // dV += P^T dO
          attn_gemm(bc, d, br, scale, ds, 1, attn_bwd_bc, qp, d, gk, d, true);      // dK += scale dS^T Q
          attn_gemm(br, d, bc, scale, ds, attn_bwd_bc, 1, kp, d, &dq(i0, c0), dq.stride(0), true);  // dQ += scale dS K
        }
      for (index_t jj = 0; jj < bc; ++jj) {
        float* dkr = &dk(j0 + jj, c0);
        float* dvr = &dv(j0 + jj, c0);
        for (index_t c = 0; c < d; ++c) {
          dkr[c] = gk[jj * d + c];
          dvr[c] = gv[jj * d + c];
        }
      }
    }
  }
}
