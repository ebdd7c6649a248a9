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

}  // namespace check
}  // namespace froster
