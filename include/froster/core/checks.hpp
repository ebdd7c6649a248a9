#pragma once
/// @file
/// Argument checks shared by backends and components. Each throws `ShapeError` naming the operation, the
/// argument, what was expected and what was given. Ops run every check before writing any output.

#include <string_view>

#include "froster/core/tensor_view.hpp"

namespace froster::check {

/// The view is rank 2 (a `[rows, cols]` matrix).
template <class T>
void matrix(std::string_view op, std::string_view name, const TensorView<T>& v) {
  require<ShapeError>(v.rank() == 2, op, ": ", name, " must be a rank-2 [rows, cols] view, got ", v);
}

/// The view is rank 1.
template <class T>
void vector(std::string_view op, std::string_view name, const TensorView<T>& v) {
  require<ShapeError>(v.rank() == 1, op, ": ", name, " must be a rank-1 view, got ", v);
}

/// The view is `[rows, cols]`.
template <class T>
void matrix(std::string_view op, std::string_view name, const TensorView<T>& v, index_t rows, index_t cols) {
  require<ShapeError>(v.rank() == 2 && v.rows() == rows && v.cols() == cols, op, ": ", name, " must be [", rows,
                      ", ", cols, "], got ", v);
}

/// The view is `[n]`.
template <class T>
void vector(std::string_view op, std::string_view name, const TensorView<T>& v, index_t n) {
  require<ShapeError>(v.rank() == 1 && v.extent(0) == n, op, ": ", name, " must be [", n, "], got ", v);
}

/// `b` has the extents of `a`.
template <class T, class U>
void same_extents(std::string_view op, std::string_view name_a, const TensorView<T>& a, std::string_view name_b,
                  const TensorView<U>& b) {
  require<ShapeError>(a.extents() == b.extents(), op, ": ", name_b, " must have the extents of ", name_a, " ",
                      a.extents(), ", got ", b);
}

/// The view lives on `device`.
template <class T>
void on_device(std::string_view op, std::string_view name, const TensorView<T>& v, Device device) {
  require<ShapeError>(v.device() == device, op, ": ", name, " must live on ", to_string(device.kind), " device ",
                      device.index, ", got ", v, " (device ", v.device().index, ")");
}

/// At least one row: losses average over rows, and an empty mean has no value.
inline void nonempty_batch(std::string_view op, index_t rows) {
  require<ShapeError>(rows > 0, op, ": expected at least one row, got an empty batch");
}

/// A view that is either null ("not requested") or shaped like `like`.
template <class T, class U>
void optional_like(std::string_view op, std::string_view name, const TensorView<T>& v, std::string_view like_name,
                   const TensorView<U>& like) {
  if (!v.is_null()) same_extents(op, like_name, like, name, v);
}

}  // namespace froster::check
