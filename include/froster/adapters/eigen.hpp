#pragma once
/// @file
/// Zero-copy adapters between froster views and Eigen, in both directions. Needs Eigen 3.4; nothing else in
/// froster's core includes this header, so consumers without Eigen are unaffected.
///
/// - `view_of(m)`: a `TensorView` of any Eigen object with direct access (Matrix, Map, Block, Ref), row- or
///   column-major, with its strides. Const objects give `TensorView<const T>`.
/// - `vector_view_of(v)`: a rank-1 view of an Eigen vector (labels, per-row statistics).
/// - `as_eigen(view)`: an `Eigen::Map` of a rank-2 host view with any strides (`EigenMap<T>`);
///   `as_eigen_row_major` / `as_eigen_col_major` give the faster maps with unit inner stride and throw
///   `ShapeError` when the view's strides do not allow them.

#include <Eigen/Core>
#include <type_traits>

#include "froster/core/checks.hpp"

namespace froster {

/// An Eigen map over a strided view: row-major matrix, outer stride = stride between rows, inner = between columns.
template <class T>
using EigenMap = Eigen::Map<std::conditional_t<std::is_const_v<T>,
                                               const Eigen::Matrix<std::remove_const_t<T>, Eigen::Dynamic,
                                                                   Eigen::Dynamic, Eigen::RowMajor>,
                                               Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>,
                            Eigen::Unaligned, Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>>;

template <class T, int Order>
using EigenDenseMap = Eigen::Map<std::conditional_t<std::is_const_v<T>,
                                                    const Eigen::Matrix<std::remove_const_t<T>, Eigen::Dynamic,
                                                                        Eigen::Dynamic, Order>,
                                                    Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Order>>,
                                 Eigen::Unaligned, Eigen::OuterStride<>>;

namespace detail {
template <class T>
void require_host_matrix(std::string_view op, const TensorView<T>& v) {
  check::matrix(op, "view", v);
  check::on_device(op, "view", v, Device::host());
}
}  // namespace detail

/// Whether `as_eigen_row_major` accepts the view: unit column stride, rows that do not overlap.
template <class T>
bool is_row_major_dense(const TensorView<T>& v) {
  return v.rank() == 2 && (v.stride(1) == 1 || v.cols() <= 1) && (v.rows() <= 1 || v.stride(0) >= v.cols());
}

/// Whether `as_eigen_col_major` accepts the view: unit row stride, columns that do not overlap.
template <class T>
bool is_col_major_dense(const TensorView<T>& v) {
  return v.rank() == 2 && (v.stride(0) == 1 || v.rows() <= 1) && (v.cols() <= 1 || v.stride(1) >= v.rows());
}

/// Map of a rank-2 host view with arbitrary (non-negative) strides.
template <class T>
EigenMap<T> as_eigen(TensorView<T> v) {
  detail::require_host_matrix("as_eigen", v);
  require<ShapeError>(v.stride(0) >= 0 && v.stride(1) >= 0, "as_eigen: Eigen maps need non-negative strides, got ",
                      v);
  return EigenMap<T>(v.data(), v.rows(), v.cols(), Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>(
                                                      v.rows() > 1 ? v.stride(0) : v.cols(), v.stride(1)));
}

/// Row-major map; needs unit column stride.
template <class T>
EigenDenseMap<T, Eigen::RowMajor> as_eigen_row_major(TensorView<T> v) {
  detail::require_host_matrix("as_eigen_row_major", v);
  require<ShapeError>(is_row_major_dense(v),
                      "as_eigen_row_major: expected unit column stride and row stride >= cols (", v.cols(),
                      "), got ", v);
  return EigenDenseMap<T, Eigen::RowMajor>(v.data(), v.rows(), v.cols(),
                                           Eigen::OuterStride<>(v.rows() > 1 ? v.stride(0) : v.cols()));
}

/// Column-major map; needs unit row stride.
template <class T>
EigenDenseMap<T, Eigen::ColMajor> as_eigen_col_major(TensorView<T> v) {
  detail::require_host_matrix("as_eigen_col_major", v);
  require<ShapeError>(is_col_major_dense(v),
                      "as_eigen_col_major: expected unit row stride and column stride >= rows (", v.rows(),
                      "), got ", v);
  return EigenDenseMap<T, Eigen::ColMajor>(v.data(), v.rows(), v.cols(),
                                           Eigen::OuterStride<>(v.cols() > 1 ? v.stride(1) : v.rows()));
}

/// A rank-2 view of an Eigen object with direct access; keeps its layout and strides.
template <class Derived>
auto view_of(Eigen::DenseBase<Derived>& m) {
  static_assert(bool(Derived::Flags & Eigen::DirectAccessBit), "view_of needs an Eigen object with direct access");
  using Scalar = typename Derived::Scalar;
  using Element = std::conditional_t<bool(Derived::Flags & Eigen::LvalueBit), Scalar, const Scalar>;
  auto& d = m.derived();
  return TensorView<Element>(const_cast<Element*>(d.data()), {index_t(d.rows()), index_t(d.cols())},
                             {index_t(d.rowStride()), index_t(d.colStride())});
}

template <class Derived>
auto view_of(const Eigen::DenseBase<Derived>& m) {
  static_assert(bool(Derived::Flags & Eigen::DirectAccessBit), "view_of needs an Eigen object with direct access");
  using Scalar = typename Derived::Scalar;
  const auto& d = m.derived();
  return ConstView<Scalar>(d.data(), {index_t(d.rows()), index_t(d.cols())},
                           {index_t(d.rowStride()), index_t(d.colStride())});
}

/// Temporaries (a `Map` built in the call) give views of the same mutability as a named object would.
template <class Derived>
auto view_of(Eigen::DenseBase<Derived>&& m) {
  return view_of(m);
}

/// A rank-1 view of an Eigen vector (row or column).
template <class Derived>
auto vector_view_of(Eigen::DenseBase<Derived>& v) {
  static_assert(Derived::IsVectorAtCompileTime, "vector_view_of needs an Eigen vector");
  auto m = view_of(v);
  const bool column = v.cols() == 1;
  return decltype(m)(m.data(), {index_t(v.size())}, {column ? m.stride(0) : m.stride(1)});
}

template <class Derived>
auto vector_view_of(const Eigen::DenseBase<Derived>& v) {
  static_assert(Derived::IsVectorAtCompileTime, "vector_view_of needs an Eigen vector");
  auto m = view_of(v);
  const bool column = v.cols() == 1;
  return decltype(m)(m.data(), {index_t(v.size())}, {column ? m.stride(0) : m.stride(1)});
}

template <class Derived>
auto vector_view_of(Eigen::DenseBase<Derived>&& v) {
  return vector_view_of(v);
}

}  // namespace froster
