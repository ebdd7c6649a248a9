#pragma once
/// @file
/// The argument checks of every backend op, one function per op. A backend calls the op's check before it
/// writes anything, so every backend (a user's included) rejects the same inputs with the same message.

#include <cstddef>
#include <cstdint>
#include <utility>

#include "froster/backends/ops.hpp"

namespace froster::check {

namespace view_detail {
/// The byte range [first, last) a rank-2 or rank-1 view touches (any signs of strides); empty views touch nothing.
template <class T>
std::pair<const std::byte*, const std::byte*> byte_range(const TensorView<T>& v) {
  if (v.is_null() || v.numel() == 0) return {nullptr, nullptr};
  index_t lo = 0, hi = 0;
  for (int d = 0; d < v.rank(); ++d) {
    const index_t reach = (v.extent(d) - 1) * v.stride(d);
    (reach < 0 ? lo : hi) += reach;
  }
  const auto* base = reinterpret_cast<const std::byte*>(v.data());
  return {base + lo * index_t(sizeof(T)), base + (hi + 1) * index_t(sizeof(T))};
}
}  // namespace view_detail

/// Whether two views share any byte of memory (conservatively: by their address ranges).
template <class T, class U>
bool overlap(const TensorView<T>& a, const TensorView<U>& b) {
  const auto [a0, a1] = view_detail::byte_range(a);
  const auto [b0, b1] = view_detail::byte_range(b);
  return a0 != nullptr && b0 != nullptr && a0 < b1 && b0 < a1;
}

/// An output must not share memory with an input (or another output) of `op`: a ValueError naming both.
template <class T, class U>
void distinct(std::string_view op, std::string_view out_name, const TensorView<T>& out, std::string_view in_name,
              const TensorView<U>& in) {
  require<ValueError>(!overlap(out, in), op, ": ", out_name, " must not overlap ", in_name, " (", out_name, " ", out,
                      ", ", in_name, " ", in, ")");
}

/// The same elements: equal data pointer, extents and strides.
template <class T, class U>
bool same_view(const TensorView<T>& a, const TensorView<U>& b) {
  return a.data() == b.data() && a.extents() == b.extents() && a.strides() == b.strides();
}

/// Every non-null view lives in host memory (the host backends cannot address device memory).
template <class... Views>
void on_host(std::string_view op, const Views&... views) {
  (
      [&] {
        if (!views.is_null()) on_device(op, "every argument", views, Device::host());
      }(),
      ...);
}

template <class T>
void copy_args(ConstView<T> src, TensorView<T> dst) {
  elementwise("copy", "src", src, "dst", dst);
}

template <class T>
void axpby_args(ConstView<T> x, TensorView<T> y) {
  elementwise("axpby", "x", x, "y", y);
}

template <class T>
void reduce_args(std::string_view op, ConstView<T> x) {
  require<ShapeError>(x.rank() == 1 || x.rank() == 2, op, ": expected a rank-1 or rank-2 view, got ", x);
}

template <class T>
void activation_args(ConstView<T> x, ConstView<T> dy, TensorView<T> out, bool backward) {
  const char* op = backward ? "activation_backward" : "activation_forward";
  matrix(op, "x", x);
  if (backward) same_extents(op, "x", x, "dy", dy);
  same_extents(op, "x", x, backward ? "dx" : "y", out);
}

template <class T>
void l2_normalize_forward_args(ConstView<T> x, TensorView<T> y, TensorView<T> norms) {
  elementwise("l2_normalize_forward", "x", x, "y", y);
  per_row("l2_normalize_forward", "x", x, "norms", norms);
}

template <class T>
void l2_normalize_backward_args(ConstView<T> y, ConstView<T> norms, ConstView<T> dy, TensorView<T> dx) {
  elementwise("l2_normalize_backward", "y", y, "dy", dy);
  same_extents("l2_normalize_backward", "y", y, "dx", dx);
  per_row("l2_normalize_backward", "y", y, "norms", norms);
}

template <class T>
void cosine_forward_args(ConstView<T> a, ConstView<T> b, TensorView<T> cos, TensorView<T> norm_a,
                         TensorView<T> norm_b) {
  constexpr const char* op = "cosine_forward";
  elementwise(op, "a", a, "b", b);
  per_row(op, "a", a, "cos", cos);
  per_row(op, "a", a, "norm_a", norm_a);
  per_row(op, "a", a, "norm_b", norm_b);
}

template <class T>
void cosine_backward_args(ConstView<T> a, ConstView<T> b, ConstView<T> cos, ConstView<T> norm_a, ConstView<T> norm_b,
                          TensorView<T> da, TensorView<T> db) {
  constexpr const char* op = "cosine_backward";
  elementwise(op, "a", a, "b", b);
  per_row(op, "a", a, "cos", cos);
  per_row(op, "a", a, "norm_a", norm_a);
  per_row(op, "a", a, "norm_b", norm_b);
  optional_like(op, "da", da, "a", a);
  optional_like(op, "db", db, "a", a);
}

template <class T>
void row_loss_args(std::string_view op, ConstView<T> a, ConstView<T> b, TensorView<T> row_loss) {
  elementwise(op, "a", a, "b", b);
  per_row(op, "a", a, "row_loss", row_loss);
}

template <class T>
void pair_gradient_args(std::string_view op, ConstView<T> a, ConstView<T> b, TensorView<T> da, TensorView<T> db) {
  elementwise(op, "a", a, "b", b);
  optional_like(op, "da", da, "a", a);
  optional_like(op, "db", db, "a", a);
}

template <class T>
void labels_args(std::string_view op, ConstView<T> logp, ConstView<std::int64_t> labels) {
  matrix(op, "log_probs", logp);
  per_row(op, "log_probs", logp, "labels", labels);
  for (index_t i = 0; i < labels.extent(0); ++i) {
    const std::int64_t label = labels(i);
    require<ValueError>(label >= 0 && label < logp.cols(), op, ": labels must lie in [0, ", logp.cols(),
                        ") (the number of classes), got labels[", i, "] = ", label);
  }
}

template <class T>
void cross_entropy_forward_args(ConstView<T> logp, ConstView<std::int64_t> labels, TensorView<T> row_loss) {
  labels_args("cross_entropy_forward", logp, labels);
  per_row("cross_entropy_forward", "log_probs", logp, "row_loss", row_loss);
}

template <class T>
void cross_entropy_backward_args(ConstView<T> logp, ConstView<std::int64_t> labels, TensorView<T> dlogits) {
  labels_args("cross_entropy_backward", logp, labels);
  same_extents("cross_entropy_backward", "log_probs", logp, "dlogits", dlogits);
}

template <class T>
void soft_cross_entropy_backward_args(ConstView<T> logp, ConstView<T> targets, TensorView<T> dlogits) {
  elementwise("soft_cross_entropy_backward", "log_probs", logp, "targets", targets);
  same_extents("soft_cross_entropy_backward", "log_probs", logp, "dlogits", dlogits);
}

template <class T>
void kl_div_backward_args(ConstView<T> logp_student, ConstView<T> logp_teacher, ConstView<T> row_loss,
                          TensorView<T> d_student, TensorView<T> d_teacher) {
  pair_gradient_args("kl_div_backward", logp_student, logp_teacher, d_student, d_teacher);
  per_row("kl_div_backward", "logp_student", logp_student, "row_loss", row_loss);
}

template <class T>
void softmax_backward_args(ConstView<T> y, ConstView<T> dy, TensorView<T> dx) {
  elementwise("softmax_backward", "y", y, "dy", dy);
  same_extents("softmax_backward", "y", y, "dx", dx);
}

template <class T>
void temporal_pool_forward_args(Pooling mode, ConstView<T> x, index_t frames, TensorView<T> y,
                                TensorView<std::int64_t> argmax) {
  constexpr const char* op = "temporal_pool_forward";
  temporal(op, x, frames);
  matrix(op, "y", y, x.rows() / frames, x.cols());
  if (mode == Pooling::max) matrix(op, "argmax", argmax, x.rows() / frames, x.cols());
}

template <class T>
void temporal_pool_backward_args(Pooling mode, index_t frames, ConstView<T> dy, ConstView<std::int64_t> argmax,
                                 TensorView<T> dx) {
  constexpr const char* op = "temporal_pool_backward";
  temporal(op, dx, frames);
  matrix(op, "dy", dy, dx.rows() / frames, dx.cols());
  if (mode == Pooling::max) matrix(op, "argmax", argmax, dx.rows() / frames, dx.cols());
}

template <class T>
void layer_norm_forward_args(ConstView<T> x, ConstView<T> gamma, ConstView<T> beta, TensorView<T> y,
                             TensorView<T> mean, TensorView<T> rstd) {
  constexpr const char* op = "layer_norm_forward";
  elementwise(op, "x", x, "y", y);
  vector(op, "gamma", gamma, x.cols());
  vector(op, "beta", beta, x.cols());
  per_row(op, "x", x, "mean", mean);
  per_row(op, "x", x, "rstd", rstd);
}

template <class T>
void layer_norm_backward_args(ConstView<T> x, ConstView<T> gamma, ConstView<T> mean, ConstView<T> rstd,
                              ConstView<T> dy, TensorView<T> dx, TensorView<T> dgamma, TensorView<T> dbeta) {
  constexpr const char* op = "layer_norm_backward";
  elementwise(op, "x", x, "dy", dy);
  same_extents(op, "x", x, "dx", dx);
  vector(op, "gamma", gamma, x.cols());
  vector(op, "dgamma", dgamma, x.cols());
  vector(op, "dbeta", dbeta, x.cols());
  per_row(op, "x", x, "mean", mean);
  per_row(op, "x", x, "rstd", rstd);
}

template <class T>
void attention_forward_args(ConstView<T> q, ConstView<T> k, ConstView<T> v, const AttentionSpec& spec,
                            TensorView<T> out, TensorView<T> lse) {
  constexpr const char* op = "attention_forward";
  attention_spec(op, spec, q);
  same_extents(op, "q", q, "k", k);
  same_extents(op, "q", q, "v", v);
  same_extents(op, "q", q, "out", out);
  matrix(op, "lse", lse, q.rows(), spec.heads);
}

template <class T>
void attention_backward_args(ConstView<T> q, ConstView<T> k, ConstView<T> v, ConstView<T> out, ConstView<T> lse,
                             ConstView<T> dout, const AttentionSpec& spec, TensorView<T> dq, TensorView<T> dk,
                             TensorView<T> dv) {
  constexpr const char* op = "attention_backward";
  attention_spec(op, spec, q);
  same_extents(op, "q", q, "k", k);
  same_extents(op, "q", q, "v", v);
  same_extents(op, "q", q, "out", out);
  same_extents(op, "q", q, "dout", dout);
  matrix(op, "lse", lse, q.rows(), spec.heads);
  same_extents(op, "q", q, "dq", dq);
  same_extents(op, "q", q, "dk", dk);
  same_extents(op, "q", q, "dv", dv);
}

}  // namespace froster::check
