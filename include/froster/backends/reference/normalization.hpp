#pragma once
/// @file
/// Reference LayerNorm and row softmax, forward and backward.

#include <cmath>
#include <limits>

#include "froster/backends/ops.hpp"

namespace froster::reference {

/// y = (x - mean) * rstd * gamma + beta per row, rstd = 1 / sqrt(var + eps) with the biased variance (as
/// torch.nn.LayerNorm). Saves mean and rstd for the backward pass.
template <class T>
void layer_norm_forward(ConstView<T> x, ConstView<T> gamma, ConstView<T> beta, T eps, TensorView<T> y,
                        TensorView<T> mean, TensorView<T> rstd) {
  const index_t c = x.cols();
  for (index_t i = 0; i < x.rows(); ++i) {
    double m = 0;
    for (index_t j = 0; j < c; ++j) m += double(x(i, j));
    m /= double(c);
    double var = 0;
    for (index_t j = 0; j < c; ++j) var += (double(x(i, j)) - m) * (double(x(i, j)) - m);
    const double r = 1.0 / std::sqrt(var / double(c) + double(eps));
    for (index_t j = 0; j < c; ++j) y(i, j) = T((double(x(i, j)) - m) * r * double(gamma(j)) + double(beta(j)));
    mean(i) = T(m);
    rstd(i) = T(r);
  }
}

/// dx (written) = rstd (g - mean(g) - xhat mean(g xhat)) with g = dy gamma; dgamma += sum_i dy xhat, dbeta += sum_i dy.
template <class T>
void layer_norm_backward(ConstView<T> x, ConstView<T> gamma, ConstView<T> mean, ConstView<T> rstd, ConstView<T> dy,
                         TensorView<T> dx, TensorView<T> dgamma, TensorView<T> dbeta) {
  const index_t c = x.cols();
  for (index_t j = 0; j < c; ++j) {
    double dg = 0, db = 0;
    for (index_t i = 0; i < x.rows(); ++i) {
      const double xhat = (double(x(i, j)) - double(mean(i))) * double(rstd(i));
      dg += double(dy(i, j)) * xhat;
      db += double(dy(i, j));
    }
    dgamma(j) = T(double(dgamma(j)) + dg);
    dbeta(j) = T(double(dbeta(j)) + db);
  }
  for (index_t i = 0; i < x.rows(); ++i) {
    double g_mean = 0, gx_mean = 0;
    for (index_t j = 0; j < c; ++j) {
      const double g = double(dy(i, j)) * double(gamma(j));
      g_mean += g;
      gx_mean += g * (double(x(i, j)) - double(mean(i))) * double(rstd(i));
    }
    g_mean /= double(c);
    gx_mean /= double(c);
    for (index_t j = 0; j < c; ++j) {
      const double xhat = (double(x(i, j)) - double(mean(i))) * double(rstd(i));
      dx(i, j) = T(double(rstd(i)) * (double(dy(i, j)) * double(gamma(j)) - g_mean - xhat * gx_mean));
    }
  }
}

/// y_i = softmax(scale * x_i). With `causal`, row r sees columns j <= r mod cols (rows are the queries of
/// [.., tokens, tokens] score blocks); masked entries of y are 0.
template <class T>
void softmax_forward(ConstView<T> x, T scale, bool causal, TensorView<T> y) {
  const index_t c = x.cols();
  for (index_t i = 0; i < x.rows(); ++i) {
    const index_t visible = causal ? i % c + 1 : c;
    double mx = -std::numeric_limits<double>::infinity();
    for (index_t j = 0; j < visible; ++j) mx = std::max(mx, double(scale) * double(x(i, j)));
    double sum = 0;
    for (index_t j = 0; j < visible; ++j) sum += std::exp(double(scale) * double(x(i, j)) - mx);
    for (index_t j = 0; j < c; ++j) y(i, j) = j < visible ? T(std::exp(double(scale) * double(x(i, j)) - mx) / sum) : T(0);
  }
}

/// dx (written) = scale * y (dy - <y, dy>); masked entries (y = 0) get 0.
template <class T>
void softmax_backward(ConstView<T> y, ConstView<T> dy, T scale, TensorView<T> dx) {
  for (index_t i = 0; i < y.rows(); ++i) {
    double dot = 0;
    for (index_t j = 0; j < y.cols(); ++j) dot += double(y(i, j)) * double(dy(i, j));
    for (index_t j = 0; j < y.cols(); ++j) dx(i, j) = T(double(scale) * double(y(i, j)) * (double(dy(i, j)) - dot));
  }
}

}  // namespace froster::reference
