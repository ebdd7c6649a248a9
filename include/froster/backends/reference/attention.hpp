#pragma once
/// @file
/// Reference multi-head self-attention, forward and backward: plain loops in double over one query row at a time
/// (its scores are materialised, one row of keys long). The ground truth the CPU kernels are tested against.
///
/// For query row i of head h, with the keys K_i it sees (`attention_keys`, ops.hpp) and `z_i` implicit zero keys:
///   s_ij = scale <q_i, k_j>,  lse_i = log(sum_{j in K_i} exp(s_ij) + z_i),  p_ij = exp(s_ij - lse_i),
///   out_i = sum_j p_ij v_j.
/// Backward (dout given; FlashAttention-2's formulation, which the CPU kernels share):
///   D_i = <dout_i, out_i>,  dp_ij = <dout_i, v_j>,  ds_ij = p_ij (dp_ij - D_i),
///   dq_i = scale sum_j ds_ij k_j,  dk_j = scale sum_i ds_ij q_i,  dv_j = sum_i p_ij dout_i.
/// A zero key has k = v = 0: it contributes to lse (and so to every p_ij and to D_i) but to no gradient sum.

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "froster/backends/ops.hpp"

namespace froster::reference {

/// out (written) and lse (written): see the file comment. `lse` is what `attention_backward` expects back.
template <class T>
void attention_forward(ConstView<T> q, ConstView<T> k, ConstView<T> v, const AttentionSpec& spec, T scale,
                       TensorView<T> out, TensorView<T> lse) {
  const index_t d = q.cols() / spec.heads;
  std::vector<double> scores, acc(static_cast<std::size_t>(d));
  for (index_t b = 0; b < spec.batch; ++b)
    for (index_t t = 0; t < spec.tokens; ++t) {
      const index_t i = b * spec.tokens + t;
      const AttentionKeys keys = attention_keys(spec, b, t);
      scores.resize(static_cast<std::size_t>(keys.end - keys.begin));
      for (index_t h = 0; h < spec.heads; ++h) {
        const index_t c0 = h * d;
        // Zero keys score exactly 0, so they start the running maximum at 0.
        double mx = keys.zero_keys > 0 ? 0.0 : -std::numeric_limits<double>::infinity();
        for (index_t j = keys.begin; j < keys.end; ++j) {
          double s = 0;
          for (index_t c = 0; c < d; ++c) s += double(q(i, c0 + c)) * double(k(j, c0 + c));
          s *= double(scale);
          scores[static_cast<std::size_t>(j - keys.begin)] = s;
          mx = std::max(mx, s);
        }
        double sum = double(keys.zero_keys) * std::exp(-mx);
        std::fill(acc.begin(), acc.end(), 0.0);
        for (index_t j = keys.begin; j < keys.end; ++j) {
          const double e = std::exp(scores[static_cast<std::size_t>(j - keys.begin)] - mx);
          sum += e;
          for (index_t c = 0; c < d; ++c) acc[static_cast<std::size_t>(c)] += e * double(v(j, c0 + c));
        }
        for (index_t c = 0; c < d; ++c) out(i, c0 + c) = T(acc[static_cast<std::size_t>(c)] / sum);
        lse(i, h) = T(mx + std::log(sum));
      }
    }
}

/// dq, dk, dv (written) from the saved out and lse of `attention_forward`: see the file comment.
template <class T>
void attention_backward(ConstView<T> q, ConstView<T> k, ConstView<T> v, ConstView<T> out, ConstView<T> lse,
                        ConstView<T> dout, const AttentionSpec& spec, T scale, TensorView<T> dq, TensorView<T> dk,
                        TensorView<T> dv) {
  const index_t rows = q.rows(), cols = q.cols(), d = cols / spec.heads;
  // dk and dv sum over every query that sees a key: accumulate all three in double, write once at the end.
  std::vector<double> gq(static_cast<std::size_t>(rows * cols)), gk(gq.size()), gv(gq.size());
  auto at = [cols](std::vector<double>& g, index_t r, index_t c) -> double& {
    return g[static_cast<std::size_t>(r * cols + c)];
  };
  for (index_t b = 0; b < spec.batch; ++b)
    for (index_t t = 0; t < spec.tokens; ++t) {
      const index_t i = b * spec.tokens + t;
      const AttentionKeys keys = attention_keys(spec, b, t);
      for (index_t h = 0; h < spec.heads; ++h) {
        const index_t c0 = h * d;
        double D = 0;
        for (index_t c = 0; c < d; ++c) D += double(dout(i, c0 + c)) * double(out(i, c0 + c));
        for (index_t j = keys.begin; j < keys.end; ++j) {
          double s = 0, dp = 0;
          for (index_t c = 0; c < d; ++c) {
            s += double(q(i, c0 + c)) * double(k(j, c0 + c));
            dp += double(dout(i, c0 + c)) * double(v(j, c0 + c));
          }
          const double p = std::exp(double(scale) * s - double(lse(i, h)));
          const double ds = double(scale) * p * (dp - D);
          for (index_t c = 0; c < d; ++c) {
            at(gv, j, c0 + c) += p * double(dout(i, c0 + c));
            at(gq, i, c0 + c) += ds * double(k(j, c0 + c));
            at(gk, j, c0 + c) += ds * double(q(i, c0 + c));
          }
        }
      }
    }
  for (index_t r = 0; r < rows; ++r)
    for (index_t c = 0; c < cols; ++c) {
      dq(r, c) = T(at(gq, r, c));
      dk(r, c) = T(at(gk, r, c));
      dv(r, c) = T(at(gv, r, c));
    }
}

}  // namespace froster::reference
