// SIMD vocabulary, scalar level: one lane of plain C++. No include guard: ../kernels.hpp includes it into
// froster::cpu::scalar. The kernel bodies see the same names at every level.

struct Tag {};
inline constexpr Isa isa = Isa::scalar;
using vf = float;
inline constexpr index_t lanes = 1;

inline vf zero() { return 0.0f; }
inline vf set1(float x) { return x; }
inline vf load(const float* p) { return *p; }
inline void store(float* p, vf v) { *p = v; }
inline vf load_partial(const float* p, index_t n) { return n > 0 ? *p : 0.0f; }
inline void store_partial(float* p, vf v, index_t n) {
  if (n > 0) *p = v;
}
inline vf add(vf a, vf b) { return a + b; }
inline vf sub(vf a, vf b) { return a - b; }
inline vf mul(vf a, vf b) { return a * b; }
inline vf div(vf a, vf b) { return a / b; }
inline vf fmadd(vf a, vf b, vf c) { return std::fma(a, b, c); }    // a b + c
inline vf fnmadd(vf a, vf b, vf c) { return std::fma(-a, b, c); }  // c - a b
inline vf max(vf a, vf b) { return a > b ? a : b; }
inline vf min(vf a, vf b) { return a < b ? a : b; }
inline vf abs(vf a) { return std::fabs(a); }
/// v, opaque to the optimiser: a product passed through it is not fused with a later add into an FMA (GCC
/// contracts across statements under its default -ffp-contract=fast), for the few places that need the rounded
/// product.
inline vf opaque(vf v) {
  // A user's -mfma would let GCC contract the scalar level too.
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__CUDACC__)
  __asm__("" : "+x"(v));
#elif defined(__GNUC__) && !defined(__CUDACC__)
  __asm__("" : "+g"(v));
#endif
  return v;
}
inline float reduce_add(vf a) { return a; }
inline float reduce_max(vf a) { return a; }
inline vf exp(vf x) { return std::exp(x); }
inline vf erf(vf x) { return std::erf(x); }
