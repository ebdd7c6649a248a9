#pragma once
/// @file
/// Reference dense kernels: plain loops over strided views with double accumulation. The ground truth every
/// faster kernel is tested against; arguments are assumed checked (see `ReferenceBackend`).

#include "froster/backends/ops.hpp"

namespace froster::reference {

template <class T>
void fill(TensorView<T> dst, T value) {
  for (index_t i = 0; i < dst.rows(); ++i)
    for (index_t j = 0; j < dst.cols(); ++j) dst(i, j) = value;
}

template <class T>
void copy(ConstView<T> src, TensorView<T> dst) {
  for (index_t i = 0; i < src.rows(); ++i)
    for (index_t j = 0; j < src.cols(); ++j) dst(i, j) = src(i, j);
}

/// C = alpha op(A) op(B) + beta C. With beta == 0, C is overwritten (NaN in C does not propagate), as in BLAS.
template <class T>
void gemm(T alpha, ConstView<T> a, Transpose ta, ConstView<T> b, Transpose tb, T beta, TensorView<T> c) {
  const ConstView<T> opa = ta == Transpose::no ? a : a.transposed();
  const ConstView<T> opb = tb == Transpose::no ? b : b.transposed();
  const index_t k = opa.cols();
  for (index_t i = 0; i < c.rows(); ++i) {
    for (index_t j = 0; j < c.cols(); ++j) {
      double acc = 0;
      for (index_t p = 0; p < k; ++p) acc += double(opa(i, p)) * double(opb(p, j));
      const double prior = beta == T(0) ? 0.0 : double(beta) * double(c(i, j));
      c(i, j) = T(double(alpha) * acc + prior);
    }
  }
}

/// y = alpha x + beta y. With beta == 0, y is overwritten.
template <class T>
void axpby(T alpha, ConstView<T> x, T beta, TensorView<T> y) {
  for (index_t i = 0; i < y.rows(); ++i)
    for (index_t j = 0; j < y.cols(); ++j) {
      const double prior = beta == T(0) ? 0.0 : double(beta) * double(y(i, j));
      y(i, j) = T(double(alpha) * double(x(i, j)) + prior);
    }
}

template <class T>
double sum(ConstView<T> x) {
  double acc = 0;
  if (x.rank() == 1) {
    for (index_t i = 0; i < x.extent(0); ++i) acc += double(x(i));
    return acc;
  }
  for (index_t i = 0; i < x.rows(); ++i)
    for (index_t j = 0; j < x.cols(); ++j) acc += double(x(i, j));
  return acc;
}

/// Sum of the elementwise product (the Frobenius inner product).
template <class T>
double dot(ConstView<T> a, ConstView<T> b) {
  double acc = 0;
  for (index_t i = 0; i < a.rows(); ++i)
    for (index_t j = 0; j < a.cols(); ++j) acc += double(a(i, j)) * double(b(i, j));
  return acc;
}

}  // namespace froster::reference
