// SIMD vocabulary, AVX-512 F/BW/VL/DQ: 16 float lanes. No include guard: ../kernels.hpp includes it into
// froster::cpu::avx512 between `#pragma GCC target("avx512f,...")` and its pop.

struct Tag {};
inline constexpr Isa isa = Isa::avx512;
using vf = __m512;
inline constexpr index_t lanes = 16;

inline vf zero() { return _mm512_setzero_ps(); }
inline vf set1(float x) { return _mm512_set1_ps(x); }
inline vf load(const float* p) { return _mm512_loadu_ps(p); }
inline void store(float* p, vf v) { _mm512_storeu_ps(p, v); }
/// Lanes [0, n) of the mask are set; n in [0, 16].
inline __mmask16 tail_mask(index_t n) { return __mmask16((1u << unsigned(n)) - 1u); }
/// Loads lanes [0, n), zero elsewhere; never touches memory past p + n.
inline vf load_partial(const float* p, index_t n) { return _mm512_maskz_loadu_ps(tail_mask(n), p); }
inline void store_partial(float* p, vf v, index_t n) { _mm512_mask_storeu_ps(p, tail_mask(n), v); }
inline vf add(vf a, vf b) { return _mm512_add_ps(a, b); }
inline vf sub(vf a, vf b) { return _mm512_sub_ps(a, b); }
inline vf mul(vf a, vf b) { return _mm512_mul_ps(a, b); }
inline vf div(vf a, vf b) { return _mm512_div_ps(a, b); }
inline vf fmadd(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
inline vf fnmadd(vf a, vf b, vf c) { return _mm512_fnmadd_ps(a, b, c); }
inline vf max(vf a, vf b) { return _mm512_max_ps(a, b); }
inline vf min(vf a, vf b) { return _mm512_min_ps(a, b); }
inline vf abs(vf a) { return _mm512_abs_ps(a); }
/// v, opaque to the optimiser: a product passed through it is not fused with a later add into an FMA (GCC
/// contracts across statements under its default -ffp-contract=fast), for the few places that need the rounded
/// product.
inline vf opaque(vf v) {
  __asm__("" : "+v"(v));
  return v;
}
inline float reduce_add(vf a) {
  const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(a), _mm512_extractf32x8_ps(a, 1));
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline float reduce_max(vf a) {
  const __m256 h = _mm256_max_ps(_mm512_castps512_ps256(a), _mm512_extractf32x8_ps(a, 1));
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
/// Round to the nearest integer (ties to even).
inline vf round_nearest(vf x) { return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
/// 2^n for integral n in [-126, 127], built in the exponent field.
inline vf pow2i(vf n) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23));
}
