#pragma once
/// @file
/// The `Backend` concept: the primitive ops every froster component is written against.
///
/// Components never read or write element memory themselves; they allocate through `allocate<T>()` and compute
/// through these ops, so one component runs on every backend (host, CUDA, a user's own). Conventions:
/// - Matrices are rank-2 views with any strides; per-row statistics are rank-1 views of length `rows`.
/// - Outputs are written (`=`), never accumulated, except GEMM/axpby with `beta != 0`. Components build on
///   this so that parameter gradients accumulate (`+=`, via `beta = 1`), activation gradients are written, and
///   the residual stream accumulates.
/// - An optional output is a null view (`TensorView<T>{}`): the op skips it.
/// - Every op checks its arguments first and throws `froster::ShapeError`/`ValueError` before writing anything.
/// - NaN and Inf propagate as in IEEE arithmetic; no op throws on them (the losses check their scalar result).
/// - Scalar reductions (`sum`, `dot`) return a host `double`.

#include <concepts>
#include <cstdint>

#include "froster/backends/ops.hpp"
#include "froster/core/tensor.hpp"

namespace froster {

/// `B` provides every primitive op for element type `T`.
template <class B, class T>
concept BackendFor = requires(B& b, const B& cb, Dims dims, T s, ConstView<T> x, TensorView<T> y,
                              ConstView<std::int64_t> labels, TensorView<std::int64_t> indices, Transpose t,
                              Activation act, Pooling pool, PointwiseLoss loss, index_t n, bool flag,
                              AttentionSpec spec) {
  // Memory.
  { cb.device() } -> std::same_as<Device>;
  { b.template allocate<T>(dims) } -> std::same_as<Tensor<T>>;
  { b.template allocate<std::int64_t>(dims) } -> std::same_as<Tensor<std::int64_t>>;
  b.copy(x, y);                     // y = x (equal extents, any strides; a device backend also copies host <-> device)
  b.fill(y, s);                     // y = s
  // Dense linear algebra.
  b.gemm(s, x, t, x, t, s, y);      // C = alpha op(A) op(B) + beta C
  b.axpby(s, x, s, y);              // y = alpha x + beta y
  { b.sum(x) } -> std::same_as<double>;     // sum of all elements
  { b.dot(x, x) } -> std::same_as<double>;  // sum of the elementwise product
  // Activations.
  b.activation_forward(act, x, y);
  b.activation_backward(act, x, x, y);  // dx = dy * f'(x)
  // Row normalisation and similarity.
  b.l2_normalize_forward(x, y, y);          // y, norms
  b.l2_normalize_backward(x, x, x, y);      // y, norms, dy -> dx
  b.cosine_forward(x, x, s, y, y, y);       // a, b, eps -> cos, norm_a, norm_b
  b.cosine_backward(x, x, x, x, x, s, s, y, y);  // a, b, cos, norm_a, norm_b, eps, scale -> da, db
  // Losses: forward writes one loss per row, backward writes scale * gradient.
  b.pointwise_loss_forward(loss, x, x, y);
  b.pointwise_loss_backward(loss, x, x, s, y, y);
  b.log_softmax_forward(x, s, y);           // y = log_softmax(s * x)
  b.cross_entropy_forward(x, labels, y);
  b.cross_entropy_backward(x, labels, s, y);
  b.soft_cross_entropy_forward(x, x, y);
  b.soft_cross_entropy_backward(x, x, s, y);
  b.kl_div_forward(x, x, y);
  b.kl_div_backward(x, x, x, s, y, y);
  // Transformer blocks.
  b.layer_norm_forward(x, x, x, s, y, y, y);         // x, gamma, beta, eps -> y, mean, rstd
  b.layer_norm_backward(x, x, x, x, x, y, y, y);     // x, gamma, mean, rstd, dy -> dx (=), dgamma (+=), dbeta (+=)
  b.softmax_forward(x, s, flag, y);                  // y = softmax(s * x) per row, optional causal mask
  b.softmax_backward(x, x, s, y);                    // y, dy -> dx
  // Multi-head self-attention over packed [batch * tokens, heads * head_dim] rows (ops.hpp, AttentionSpec).
  b.attention_forward(x, x, x, spec, s, y, y);               // q, k, v, spec, scale -> out, lse
  b.attention_backward(x, x, x, x, x, x, spec, s, y, y, y);  // q, k, v, out, lse, dout, spec, scale -> dq, dk, dv
  // Temporal pooling over [clips * frames, channels].
  b.temporal_pool_forward(pool, x, n, y, indices);
  b.temporal_pool_backward(pool, n, x, ConstView<std::int64_t>(indices), y);
};

/// A backend for the floating-point types froster trains in.
template <class B>
concept Backend = BackendFor<B, float> && BackendFor<B, double>;

}  // namespace froster

namespace froster {

/// Makes `t` a `extents`-shaped tensor from `backend`, reallocating only when its extents change. Components
/// keep their outputs and saved activations in such buffers, so repeated steps at one shape allocate once.
template <class T, class B>
TensorView<T> ensure_allocated(B& backend, Tensor<T>& t, Dims extents) {
  if (!t.allocated() || !(t.extents() == extents)) t = backend.template allocate<T>(extents);
  return t.view();
}

}  // namespace froster
