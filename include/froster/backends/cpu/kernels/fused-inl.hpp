// The epilogue of the fused GEMM (../fused.hpp), written once against the SIMD vocabulary and compiled per ISA by
// ../kernels.hpp (no include guard). It runs on one finished row segment of C while the GEMM tile is in L1.

namespace fused_detail {
/// The epilogue on one lane group: `count` lanes from column j, count == lanes (full) or fewer (the row's tail).
template <bool full>
inline void epilogue_group(index_t j, index_t count, float* v, const float* bias, const float* residual,
                           const Activation* act, float* pre, const float* at) {
  const auto ld = [&](const float* p) { return full ? load(p + j) : load_partial(p + j, count); };
  const auto st = [&](float* p, vf x) {
    if constexpr (full) store(p + j, x);
    else store_partial(p + j, x, count);
  };
  vf x = ld(v);
  if (bias != nullptr) x = add(x, ld(bias));
  if (residual != nullptr) x = add(x, ld(residual));
  if (act != nullptr) {
    if (at != nullptr) {
      x = mul(x, activation_derivative(*act, ld(at)));
    } else {
      if (pre != nullptr) st(pre, x);
      x = activation_value(*act, x);
    }
  }
  st(v, x);
}
}  // namespace fused_detail

/// On `n` contiguous values v of one row of C (columns from the segment's first): v += bias, v += residual (each
/// where non-null); then, where `act` is non-null, either v = act(v) with v saved to `pre` first (where non-null),
/// or, where `at` is non-null, v *= act'(at). The pointers are already offset to the segment.
inline void fused_epilogue_row(Tag, index_t n, float* v, const float* bias, const float* residual,
                               const Activation* act, float* pre, const float* at) {
  index_t j = 0;
  for (; j + lanes <= n; j += lanes) fused_detail::epilogue_group<true>(j, lanes, v, bias, residual, act, pre, at);
  if (j < n) fused_detail::epilogue_group<false>(j, n - j, v, bias, residual, act, pre, at);
}
