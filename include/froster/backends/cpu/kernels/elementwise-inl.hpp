// Elementwise kernels, written once against the SIMD vocabulary and compiled per ISA by ../kernels.hpp (no include
// guard). Each works on one row of `n` contiguous floats; the backend loops over rows and threads.

inline void axpby_row(Tag, index_t n, float alpha, const float* x, float beta, float* y) {
  const vf va = set1(alpha), vb = set1(beta);
  index_t j = 0;
  if (beta == 0.0f) {  // y is overwritten, never read: NaN already in y does not propagate
    for (; j + lanes <= n; j += lanes) store(y + j, mul(va, load(x + j)));
    if (j < n) store_partial(y + j, mul(va, load_partial(x + j, n - j)), n - j);
    return;
  }
  for (; j + lanes <= n; j += lanes) store(y + j, fmadd(va, load(x + j), mul(vb, load(y + j))));
  if (j < n) store_partial(y + j, fmadd(va, load_partial(x + j, n - j), mul(vb, load_partial(y + j, n - j))), n - j);
}

/// GELU (exact erf form) and QuickGELU x sigmoid(1.702 x) on one lane group.
inline vf activation_value(Activation act, vf x) {
  if (act == Activation::gelu)
    return mul(mul(set1(0.5f), x), add(set1(1.0f), erf(mul(x, set1(0.70710678118654752f)))));
  return div(x, add(set1(1.0f), exp(mul(set1(-1.702f), x))));
}

inline vf activation_derivative(Activation act, vf x) {
  if (act == Activation::gelu) {
    const vf cdf = mul(set1(0.5f), add(set1(1.0f), erf(mul(x, set1(0.70710678118654752f)))));
    const vf pdf = mul(set1(0.39894228040143268f), exp(mul(set1(-0.5f), mul(x, x))));
    return fmadd(x, pdf, cdf);
  }
  const vf s = div(set1(1.0f), add(set1(1.0f), exp(mul(set1(-1.702f), x))));
  return fmadd(mul(set1(1.702f), x), mul(s, sub(set1(1.0f), s)), s);
}

inline void activation_forward_row(Tag, Activation act, index_t n, const float* x, float* y) {
  index_t j = 0;
  for (; j + lanes <= n; j += lanes) store(y + j, activation_value(act, load(x + j)));
  if (j < n) store_partial(y + j, activation_value(act, load_partial(x + j, n - j)), n - j);
}

inline void activation_backward_row(Tag, Activation act, index_t n, const float* x, const float* dy, float* dx) {
  index_t j = 0;
  for (; j + lanes <= n; j += lanes) store(dx + j, mul(load(dy + j), activation_derivative(act, load(x + j))));
  if (j < n)
    store_partial(dx + j, mul(load_partial(dy + j, n - j), activation_derivative(act, load_partial(x + j, n - j))),
                  n - j);
}
