#pragma once
/// @file
/// Vocabulary shared by every backend: the option enums of the primitive ops and the argument checks each op
/// runs before it writes anything. One place for the checks means every backend rejects the same inputs with
/// the same message.

#include <cstdint>
#include <string_view>

#include "froster/core/checks.hpp"

namespace froster {

/// Whether GEMM reads an operand as stored or transposed.
enum class Transpose : std::uint8_t { no, yes };

/// Elementwise activations. `gelu` is the exact erf form `x/2 (1 + erf(x/sqrt 2))` (PyTorch's default);
/// `quick_gelu` is CLIP's `x sigmoid(1.702 x)`.
enum class Activation : std::uint8_t { gelu, quick_gelu };

/// Temporal pooling over the frames of each clip.
enum class Pooling : std::uint8_t { mean, max };

/// Elementwise regression losses: `(a - b)^2` and `|a - b|`.
enum class PointwiseLoss : std::uint8_t { squared_error, absolute_error };

/// Which keys a query of multi-head attention sees (see `AttentionSpec`).
enum class AttentionMask : std::uint8_t {
  full,                 ///< Every token of its own sequence (ViT: 197 tokens).
  causal,               ///< Tokens j <= i of its own sequence (CLIP's text encoder: 77 tokens).
  temporal_neighbours,  ///< Its own frame and the previous and next frames of the same clip (the video student).
};

/// What `temporal_neighbours` does at a clip's first and last frame, where a neighbour frame is missing.
enum class TemporalPadding : std::uint8_t {
  zero_keys,  ///< The missing frame is `tokens` zero keys and values that still enter the softmax (score 0, value 0).
  masked,     ///< The missing frame is left out: the first and last frames see 2 * tokens keys.
};

/// Shape and mask of multi-head self-attention over packed rows.
///
/// Layout: q, k, v and out are rank-2 `[batch * tokens, heads * head_dim]` (row b * tokens + t is token t of
/// sequence b; columns h * head_dim .. (h + 1) * head_dim - 1 are head h), any strides; the CPU fast path wants unit
/// column strides, which column slices of a packed QKV projection `[batch * tokens, 3 * width]` have (row stride
/// 3 * width). `lse` is `[batch * tokens, heads]`: the natural log of the softmax denominator of every query row
/// and head, log sum_j exp(scale q.k_j) over the keys it sees, saved by the forward pass for the backward pass.
///
/// `temporal_neighbours` is the "expand temporal view" of Open-VCLIP, whose student FROSTER distils: sequences are
/// the frames of clips, `batch = clips * frames` with a clip's frames consecutive, and each frame's queries attend to
/// the keys and values of the next, the previous and its own frame (3 * tokens keys). Open-VCLIP builds this by
/// shifting k and v along the frame axis into a `torch.zeros` buffer (slowfast/models/torch_utils/functional.py,
/// `_scaled_dot_product_attention`, `temporal_shift == 'expand_temporal_view'`), so at a clip's edge the missing
/// neighbour is zero keys and values that stay in the softmax: `TemporalPadding::zero_keys`. `TemporalPadding::masked`
/// excludes them instead. The order of keys does not matter (softmax and the weighted sum are symmetric in them).
/// Outputs (out, lse; dq, dk, dv) must not overlap the inputs; dq, dk, dv may be the column thirds of one packed
/// gradient `[batch * tokens, 3 * width]`, like q, k, v.
struct AttentionSpec {
  index_t batch = 0;   ///< Sequences (for temporal_neighbours: clips * frames).
  index_t tokens = 0;  ///< Tokens per sequence.
  index_t heads = 0;   ///< Heads; head_dim = q.cols() / heads.
  AttentionMask mask = AttentionMask::full;
  index_t frames = 1;  ///< Frames per clip (temporal_neighbours only; must divide batch).
  TemporalPadding padding = TemporalPadding::zero_keys;  ///< temporal_neighbours only.
};

/// The keys one query row sees: key rows [begin, end) of the packed [batch * tokens] rows, plus `zero_keys`
/// implicit all-zero keys (score 0, value 0). Every mask gives one contiguous run because a clip's frames are
/// consecutive sequences.
struct AttentionKeys {
  index_t begin = 0, end = 0, zero_keys = 0;
};

/// The keys that query token `token` of sequence `b` sees under `spec`.
inline AttentionKeys attention_keys(const AttentionSpec& spec, index_t b, index_t token) {
  const index_t t = spec.tokens;
  switch (spec.mask) {
    case AttentionMask::full: return {b * t, (b + 1) * t, 0};
    case AttentionMask::causal: return {b * t, b * t + token + 1, 0};
    case AttentionMask::temporal_neighbours: break;
  }
  const index_t frame = b % spec.frames;
  const bool has_previous = frame > 0, has_next = frame + 1 < spec.frames;
  const index_t missing = index_t(!has_previous) + index_t(!has_next);
  return {(b - index_t(has_previous)) * t, (b + 1 + index_t(has_next)) * t,
          spec.padding == TemporalPadding::zero_keys ? missing * t : 0};
}

namespace check {

inline index_t op_rows(const auto& v, Transpose t) { return t == Transpose::no ? v.rows() : v.cols(); }
inline index_t op_cols(const auto& v, Transpose t) { return t == Transpose::no ? v.cols() : v.rows(); }

/// C[m,n] = alpha op(A)[m,k] op(B)[k,n] + beta C.
template <class T>
void gemm(std::string_view op, const ConstView<T>& a, Transpose ta, const ConstView<T>& b, Transpose tb,
          const TensorView<T>& c) {
  matrix(op, "A", a);
  matrix(op, "B", b);
  matrix(op, "C", c);
  const index_t m = op_rows(a, ta), k = op_cols(a, ta), n = op_cols(b, tb);
  require<ShapeError>(op_rows(b, tb) == k, op, ": inner extents differ: op(A) is [", m, ", ", k, "] but op(B) is [",
                      op_rows(b, tb), ", ", n, "] (A ", a, ", B ", b, ")");
  matrix(op, "C", c, m, n);
}

/// Elementwise binary op on matrices of equal extents.
template <class T, class U>
void elementwise(std::string_view op, std::string_view name_x, const TensorView<T>& x, std::string_view name_y,
                 const TensorView<U>& y) {
  matrix(op, name_x, x);
  same_extents(op, name_x, x, name_y, y);
}

/// A per-row statistic: `[rows]` for a `[rows, cols]` input.
template <class T, class U>
void per_row(std::string_view op, std::string_view name_x, const TensorView<T>& x, std::string_view name_s,
             const TensorView<U>& s) {
  require<ShapeError>(s.rank() == 1 && s.extent(0) == x.rows(), op, ": ", name_s, " must be [", x.rows(),
                      "] (one per row of ", name_x, "), got ", s);
}

/// Frames divide the rows of a `[clips * frames, channels]` input.
template <class T>
void temporal(std::string_view op, const TensorView<T>& x, index_t frames) {
  matrix(op, "x", x);
  require<ValueError>(frames > 0, op, ": frames must be positive, got ", frames);
  require<ShapeError>(x.rows() % frames == 0, op, ": x has ", x.rows(), " rows, not a multiple of frames = ",
                      frames, " (expected [clips * frames, channels])");
}

/// The spec of attention is consistent and q is `[batch * tokens, heads * head_dim]`.
template <class T>
void attention_spec(std::string_view op, const AttentionSpec& spec, const TensorView<T>& q) {
  require<ValueError>(spec.batch > 0 && spec.tokens > 0 && spec.heads > 0, op,
                      ": batch, tokens and heads must be positive, got batch = ", spec.batch, ", tokens = ",
                      spec.tokens, ", heads = ", spec.heads);
  if (spec.mask == AttentionMask::temporal_neighbours) {
    require<ValueError>(spec.frames > 0, op, ": frames must be positive, got ", spec.frames);
    require<ShapeError>(spec.batch % spec.frames == 0, op, ": batch = ", spec.batch,
                        " is not a multiple of frames = ", spec.frames, " (expected batch = clips * frames)");
  }
  matrix(op, "q", q);
  require<ShapeError>(q.rows() / spec.tokens == spec.batch && q.rows() % spec.tokens == 0, op,
                      ": q must have batch * tokens = ", spec.batch, " * ", spec.tokens, " rows, got ", q);
  require<ShapeError>(q.cols() > 0 && q.cols() % spec.heads == 0, op,
                      ": q must have heads * head_dim columns with heads = ", spec.heads, ", got ", q);
}

}  // namespace check
}  // namespace froster
