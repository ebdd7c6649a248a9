#pragma once
/// @file
/// Zero-copy adapters between froster views and xtensor (0.24), in both directions. Nothing else in froster
/// includes this header, so consumers without xtensor are unaffected; every xtensor include lives here.
///
/// - `view_of(e)`: a `TensorView` of any xtensor expression with storage and strides (`xt::xtensor`,
///   `xt::xarray`, `xt::xtensor_fixed`, `xt::adapt` adaptors, strided `xt::view`/`xt::strided_view`), row- or
///   column-major. Const expressions give `TensorView<const T>`.
/// - `as_xtensor<N>(view)`: a rank-`N` xtensor expression over a host view's memory (an `xt::xstrided_view` of an
///   `xt::xtensor_adaptor`, `XtensorMap<T, N>`) with the view's shape and strides; const views give a read-only
///   one.
///
/// Neither copies: writes through one side are seen through the other. Both keep pointers only, so the memory
/// must outlive the view or map.

#include <array>
#include <cstddef>
#include <memory>
#include <span>
#include <type_traits>
#include <utility>

#include <xtensor/xbuffer_adaptor.hpp>
#include <xtensor/xexpression.hpp>
#include <xtensor/xlayout.hpp>
#include <xtensor/xstrided_view.hpp>
#include <xtensor/xtensor.hpp>
#include <xtensor/xtensor_forward.hpp>
#include <xtensor/xutils.hpp>

#include "froster/core/checks.hpp"

namespace froster {

namespace detail {

/// A one-dimensional, non-owning adaptor of `size` elements from `data`: the memory a view spans.
template <class T>
using XtensorSpan =
    xt::xtensor_adaptor<xt::xbuffer_adaptor<T*, xt::no_ownership, std::allocator<std::remove_const_t<T>>>, 1,
                        xt::layout_type::row_major>;

/// Containers that own their elements: a view of a temporary one would dangle.
template <class E>
struct is_owning_xcontainer : std::false_type {};
template <class EC, xt::layout_type L, class SC, class Tag>
struct is_owning_xcontainer<xt::xarray_container<EC, L, SC, Tag>> : std::true_type {};
template <class EC, std::size_t N, xt::layout_type L, class Tag>
struct is_owning_xcontainer<xt::xtensor_container<EC, N, L, Tag>> : std::true_type {};
template <class ET, class S, xt::layout_type L, bool SH, class Tag>
struct is_owning_xcontainer<xt::xfixed_container<ET, S, L, SH, Tag>> : std::true_type {};

/// An xtensor expression whose elements live in memory at `data() + data_offset()` with `strides()`.
template <class E>
concept xtensor_with_storage = requires(E& e) {
  e.data();
  e.data_offset();
  e.strides();
  e.shape();
  e.layout();
};

/// Whether the view is dense column-major (size-1 dimensions excepted, as `is_contiguous` does for row-major).
template <class T>
bool is_column_major_dense(const TensorView<T>& v) {
  index_t step = 1;
  for (int d = 0; d < v.rank(); ++d) {
    if (v.extent(d) != 1 && v.stride(d) != step) return false;
    step *= v.extent(d);
  }
  return true;
}

/// The body of `view_of`, for expressions known to have storage.
template <class E>
  requires xtensor_with_storage<E>
auto view_of_storage(E& e) {
  using Pointer = decltype(e.data());
  using Element = std::remove_pointer_t<Pointer>;
  static_assert(std::is_pointer_v<Pointer> && is_element_type_v<std::remove_const_t<Element>>,
                "view_of needs float, double, int32 or int64 elements in contiguous storage");

  const auto& shape = e.shape();
  const auto& strides = e.strides();
  const auto rank = static_cast<std::size_t>(shape.size());
  require<ShapeError>(rank >= 1, "view_of: expected an xtensor expression of rank 1 to ", max_rank,
                      ", got rank 0 (a scalar; froster's rank-0 view is the empty view)");
  require<ShapeError>(rank <= static_cast<std::size_t>(max_rank),
                      "view_of: expected an xtensor expression of rank 1 to ", max_rank, ", got rank ", rank);

  std::array<index_t, max_rank> ex{}, st{};
  for (std::size_t d = 0; d < rank; ++d) {
    ex[d] = static_cast<index_t>(shape[d]);
    st[d] = static_cast<index_t>(strides[d]);
  }
  // Replace xtensor's 0 for extent-1 dimensions by the dense-layout stride, computed from the neighbouring inner
  // dimension (already fixed), so runs of extent-1 dimensions chain correctly.
  const int r = static_cast<int>(rank);
  auto fix = [&](int d, int inner) {
    if (ex[std::size_t(d)] != 1) return;
    if (inner < 0 || inner >= r) {
      st[std::size_t(d)] = 1;
    } else {
      const index_t s = st[std::size_t(inner)];
      st[std::size_t(d)] = (s < 0 ? -s : s) * ex[std::size_t(inner)];
    }
  };
  if (e.layout() == xt::layout_type::column_major)
    for (int d = 0; d < r; ++d) fix(d, d - 1);
  else
    for (int d = r - 1; d >= 0; --d) fix(d, d + 1);

  Element* data = e.data();
  if (data != nullptr) data += static_cast<std::ptrdiff_t>(e.data_offset());
  return TensorView<Element>(data, Dims(std::span<const index_t>(ex.data(), rank)),
                             Dims(std::span<const index_t>(st.data(), rank)));
}

}  // namespace detail

/// What `as_xtensor<N>` returns: an `N`-dimensional `xt::xstrided_view` with the view's shape and strides over a
/// non-owning `xt::xtensor_adaptor` of the memory the view spans. It is an xtensor view rather than a strided
/// adaptor because xtensor assigns to an adaptor (`adaptor = expr`) by replacing its strides with dense ones and
/// copying linearly, which would scramble a strided view's memory; assignment to a view writes element by element
/// through the strides. `T = const U` gives a read-only view.
template <class T, std::size_t N>
using XtensorMap = xt::xstrided_view<detail::XtensorSpan<T>, std::array<std::size_t, N>, xt::layout_type::dynamic>;

/// A view of an xtensor expression with storage, keeping its shape and strides; mutable for non-const lvalues,
/// views and adaptors, `TensorView<const T>` for const ones. Temporaries are accepted when they do not own the
/// memory (`view_of(xt::view(a, ...))`, `view_of(xt::adapt(...))`).
///
/// xtensor reports stride 0 for every extent-1 dimension (its broadcasting relies on it). The view gets instead
/// the stride a dense layout would give that dimension (column-major for column-major expressions, row-major
/// otherwise), so that leading-dimension checks (`stride(0) >= cols` for a row-major `[1, n]` matrix, the BLAS
/// and Eigen-map conventions) hold as they do for the same Eigen object. Such strides never move the pointer.
///
/// Throws `ShapeError` for rank 0 (froster's rank-0 view is the empty "not requested" view, not a scalar) and for
/// ranks above `max_rank`. Expressions without storage (`a + b`, `xt::view` with `xt::keep`) fail to compile
/// with a message: evaluate them into a container first.
template <class E>
  requires xt::is_xexpression<std::remove_cvref_t<E>>::value
auto view_of(E&& e) {
  using Expr = std::remove_reference_t<E>;
  if constexpr (!detail::xtensor_with_storage<Expr>) {
    static_assert(detail::xtensor_with_storage<Expr>,
                  "view_of needs an xtensor expression with storage (a container, an adaptor, or a strided view): "
                  "evaluate the expression first, e.g. xt::xarray<T> tmp = expr;");
  } else {
    static_assert(!(std::is_rvalue_reference_v<E&&> && detail::is_owning_xcontainer<std::remove_cv_t<Expr>>::value),
                  "view_of of a temporary xtensor container would dangle: pass a named container");
    return detail::view_of_storage(e);
  }
}

/// An `N`-dimensional xtensor view of a host view's memory, with its shape and strides (negative ones included):
/// reads and writes through it (element access, `map = expr`, `xt::noalias(map) += expr`) reach the view's
/// memory. Dense row- or column-major views get that layout, so xtensor takes its linear fast paths.
/// Throws `ShapeError` when the view's rank is not `N` or when it lives on a device.
template <std::size_t N, class T>
XtensorMap<T, N> as_xtensor(TensorView<T> v) {
  static_assert(N >= 1 && N <= static_cast<std::size_t>(max_rank), "as_xtensor<N>: N must be 1 to max_rank");
  require<ShapeError>(v.rank() == static_cast<int>(N), "as_xtensor<", N, ">: expected a rank-", N,
                      " view, got rank ", v.rank(), " (", v, ")");
  check::on_device("as_xtensor", "view", v, Device::host());

  // The span starts at the lowest address the view reaches; element 0 sits `offset` elements above it.
  typename XtensorMap<T, N>::shape_type shape;
  typename XtensorMap<T, N>::strides_type strides;
  index_t offset = 0, span = v.numel() == 0 ? 0 : 1;
  for (std::size_t d = 0; d < N; ++d) {
    const index_t extent = v.extent(int(d)), stride = v.stride(int(d));
    shape[d] = static_cast<std::size_t>(extent);
    strides[d] = static_cast<std::ptrdiff_t>(stride);  // xstrided_view zeroes extent-1 strides for broadcasting
    if (v.numel() != 0 && extent > 1) {
      span += (extent - 1) * (stride < 0 ? -stride : stride);
      if (stride < 0) offset += (extent - 1) * -stride;
    }
  }
  const xt::layout_type layout = v.is_contiguous()                  ? xt::layout_type::row_major
                                 : detail::is_column_major_dense(v) ? xt::layout_type::column_major
                                                                    : xt::layout_type::dynamic;
  T* base = v.numel() == 0 ? v.data() : v.data() - offset;
  detail::XtensorSpan<T> memory(typename detail::XtensorSpan<T>::storage_type(base, static_cast<std::size_t>(span)),
                                std::array<std::size_t, 1>{static_cast<std::size_t>(span)});
  return XtensorMap<T, N>(std::move(memory), std::move(shape), std::move(strides), static_cast<std::size_t>(offset),
                          layout);
}

}  // namespace froster
