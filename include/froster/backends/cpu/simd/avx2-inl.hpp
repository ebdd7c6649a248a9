// SIMD vocabulary, AVX2 + FMA: 8 float lanes. No include guard: ../kernels.hpp includes it into
// froster::cpu::avx2 between `#pragma GCC target("avx2,fma")` and its pop.

struct Tag {};
inline constexpr Isa isa = Isa::avx2;
using vf = __m256;
inline constexpr index_t lanes = 8;

inline vf zero() { return _mm256_setzero_ps(); }
inline vf set1(float x) { return _mm256_set1_ps(x); }
inline vf load(const float* p) { return _mm256_loadu_ps(p); }
inline void store(float* p, vf v) { _mm256_storeu_ps(p, v); }
/// Lanes [0, n) of the mask are set; n in [0, 8].
inline __m256i tail_mask(index_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
/// Loads lanes [0, n), zero elsewhere; never touches memory past p + n.
inline vf load_partial(const float* p, index_t n) { return _mm256_maskload_ps(p, tail_mask(n)); }
inline void store_partial(float* p, vf v, index_t n) { _mm256_maskstore_ps(p, tail_mask(n), v); }
inline vf add(vf a, vf b) { return _mm256_add_ps(a, b); }
inline vf sub(vf a, vf b) { return _mm256_sub_ps(a, b); }
inline vf mul(vf a, vf b) { return _mm256_mul_ps(a, b); }
inline vf div(vf a, vf b) { return _mm256_div_ps(a, b); }
inline vf fmadd(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
inline vf fnmadd(vf a, vf b, vf c) { return _mm256_fnmadd_ps(a, b, c); }
inline vf max(vf a, vf b) { return _mm256_max_ps(a, b); }
inline vf min(vf a, vf b) { return _mm256_min_ps(a, b); }
inline vf abs(vf a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
/// v, opaque to the optimiser: a product passed through it is not fused with a later add into an FMA (GCC
/// contracts across statements under its default -ffp-contract=fast), for the few places that need the rounded
/// product.
inline vf opaque(vf v) {
  __asm__("" : "+x"(v));
  return v;
}
inline float reduce_add(vf a) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline float reduce_max(vf a) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
/// Round to the nearest integer (ties to even).
inline vf round_nearest(vf x) { return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
/// 2^n for integral n in [-126, 127], built in the exponent field.
inline vf pow2i(vf n) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));
}
