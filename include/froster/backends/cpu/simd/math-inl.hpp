// Transcendental functions of the vector levels, written once over the vocabulary (no include guard: ../kernels.hpp
// includes it after avx2-inl.hpp and avx512-inl.hpp; the scalar level uses the standard library's).

/// exp by range reduction to [-ln2/2, ln2/2] and a degree-6 polynomial (Cephes' expf): ~1-2 ulp on
/// [-87.3, 88.4], clamped outside.
inline vf exp(vf x) {
  x = min(max(x, set1(-87.3365478515625f)), set1(88.3762626647949f));
  const vf n = round_nearest(mul(x, set1(1.44269504088896341f)));
  x = fnmadd(n, set1(0.693359375f), x);  // x - n ln2, ln2 split in two for exactness
  x = fnmadd(n, set1(-2.12194440e-4f), x);
  vf y = set1(1.9875691500e-4f);
  y = fmadd(y, x, set1(1.3981999507e-3f));
  y = fmadd(y, x, set1(8.3334519073e-3f));
  y = fmadd(y, x, set1(4.1665795894e-2f));
  y = fmadd(y, x, set1(1.6666665459e-1f));
  y = fmadd(y, x, set1(5.0000001201e-1f));
  y = fmadd(y, mul(x, x), add(x, set1(1.0f)));
  return mul(y, pow2i(n));
}

/// erf as x P(x^2) / Q(x^2) on [-4, 4] (a rational minimax fit; |error| ~ 1e-7), +-1 beyond.
inline vf erf(vf x) {
  x = min(max(x, set1(-4.0f)), set1(4.0f));
  const vf x2 = mul(x, x);
  vf p = set1(-2.72614225801306e-10f);
  p = fmadd(p, x2, set1(2.77068142495902e-08f));
  p = fmadd(p, x2, set1(-2.10102402082508e-06f));
  p = fmadd(p, x2, set1(-5.69250639462346e-05f));
  p = fmadd(p, x2, set1(-7.34990630326855e-04f));
  p = fmadd(p, x2, set1(-2.95459980854025e-03f));
  p = fmadd(p, x2, set1(-1.60960333262415e-02f));
  vf q = set1(-1.45660718464996e-05f);
  q = fmadd(q, x2, set1(-2.13374055278905e-04f));
  q = fmadd(q, x2, set1(-1.68282697438203e-03f));
  q = fmadd(q, x2, set1(-7.37332916720468e-03f));
  q = fmadd(q, x2, set1(-1.42647390514189e-02f));
  return div(mul(x, p), q);
}
