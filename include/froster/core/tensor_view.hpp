#pragma once
/// @file
/// `TensorView<T>`: a non-owning, strided view of up to `max_rank` dimensions.
///
/// A view is a data pointer, extents, strides counted in elements (not bytes), and a device tag. The element type
/// is the template parameter: `TensorView<const float>` is a read-only view. Views never own memory and never
/// allocate; they are cheap to copy and pass by value.

#include <algorithm>
#include <array>
#include <cstddef>
#include <initializer_list>
#include <ostream>
#include <span>
#include <sstream>
#include <string>
#include <type_traits>

#include "froster/core/error.hpp"
#include "froster/core/types.hpp"

namespace froster {

inline constexpr int max_rank = 6;

/// Extents or strides of a view: a small fixed-capacity list of indices.
class Dims {
 public:
  constexpr Dims() = default;
  Dims(std::initializer_list<index_t> values) {  // NOLINT(google-explicit-constructor)
    require<ShapeError>(values.size() <= static_cast<std::size_t>(max_rank), "at most ", max_rank,
                        " dimensions are supported, got ", values.size());
    for (index_t v : values) values_[static_cast<std::size_t>(size_++)] = v;
  }
  explicit Dims(std::span<const index_t> values) {
    require<ShapeError>(values.size() <= static_cast<std::size_t>(max_rank), "at most ", max_rank,
                        " dimensions are supported, got ", values.size());
    for (index_t v : values) values_[static_cast<std::size_t>(size_++)] = v;
  }

  constexpr int size() const { return size_; }
  constexpr index_t operator[](int i) const { return values_[static_cast<std::size_t>(i)]; }
  constexpr index_t& operator[](int i) { return values_[static_cast<std::size_t>(i)]; }
  constexpr const index_t* begin() const { return values_.data(); }
  constexpr const index_t* end() const { return values_.data() + size_; }

  /// Product of the entries (1 for rank 0).
  constexpr index_t product() const {
    index_t p = 1;
    for (int i = 0; i < size_; ++i) p *= values_[static_cast<std::size_t>(i)];
    return p;
  }

  friend constexpr bool operator==(const Dims& a, const Dims& b) {
    return a.size_ == b.size_ && std::equal(a.begin(), a.end(), b.begin());
  }

  std::string str() const {
    std::ostringstream out;
    out << '[';
    for (int i = 0; i < size_; ++i) out << (i ? ", " : "") << (*this)[i];
    out << ']';
    return out.str();
  }

 private:
  std::array<index_t, max_rank> values_{};
  int size_ = 0;
};

/// Row-major (C order) strides of a dense tensor with the given extents.
inline Dims row_major_strides(const Dims& extents) {
  Dims strides = extents;
  index_t step = 1;
  for (int d = extents.size() - 1; d >= 0; --d) {
    strides[d] = step;
    step *= extents[d];
  }
  return strides;
}

/// Column-major (Fortran order) strides of a dense tensor with the given extents.
inline Dims column_major_strides(const Dims& extents) {
  Dims strides = extents;
  index_t step = 1;
  for (int d = 0; d < extents.size(); ++d) {
    strides[d] = step;
    step *= extents[d];
  }
  return strides;
}

template <class T>
class TensorView {
  static_assert(is_element_type_v<std::remove_const_t<T>>, "froster tensors hold float, double, int32 or int64");

 public:
  using element_type = T;
  using value_type = std::remove_const_t<T>;

  /// An empty view: no data, rank 0, `numel() == 0`. Used for "not requested" optional outputs.
  constexpr TensorView() = default;

  /// A dense row-major view.
  TensorView(T* data, Dims extents, Device device = Device::host())
      : TensorView(data, extents, row_major_strides(extents), device) {}

  /// A strided view; strides are in elements.
  TensorView(T* data, Dims extents, Dims strides, Device device = Device::host())
      : data_(data), extents_(extents), strides_(strides), device_(device) {
    require<ShapeError>(extents.size() == strides.size(), "a view needs one stride per dimension: extents ",
                        extents, " but strides ", strides);
    for (int d = 0; d < extents.size(); ++d)
      require<ShapeError>(extents[d] >= 0, "extents must be non-negative, got ", extents);
    require<ShapeError>(data != nullptr || numel() == 0, "a view with ", numel(), " elements has a null data pointer");
  }

  /// Views of mutable data convert to read-only views.
  template <class U>
    requires(std::is_const_v<T> && std::is_same_v<std::remove_const_t<T>, U>)
  constexpr TensorView(const TensorView<U>& other)  // NOLINT(google-explicit-constructor)
      : data_(other.data()), extents_(other.extents()), strides_(other.strides()), device_(other.device()) {}

  T* data() const { return data_; }
  const Dims& extents() const { return extents_; }
  const Dims& strides() const { return strides_; }
  Device device() const { return device_; }
  static constexpr DType dtype() { return dtype_of<value_type>(); }
  int rank() const { return extents_.size(); }
  index_t extent(int d) const { return extents_[d]; }
  index_t stride(int d) const { return strides_[d]; }
  index_t numel() const { return extents_.size() == 0 ? 0 : extents_.product(); }
  /// True for the default-constructed "not requested" view (no data pointer).
  bool is_null() const { return data_ == nullptr && extents_.size() == 0; }

  /// Rows and columns of a rank-2 view.
  index_t rows() const { return extents_[0]; }
  index_t cols() const { return extents_[1]; }

  /// Dense row-major: the strides are exactly `row_major_strides(extents)` (size-1 dimensions excepted).
  bool is_contiguous() const {
    index_t step = 1;
    for (int d = rank() - 1; d >= 0; --d) {
      if (extents_[d] != 1 && strides_[d] != step) return false;
      step *= extents_[d];
    }
    return true;
  }

  /// Element access for host views (rank 1 and 2). No bounds checks: kernels use it in inner loops.
  T& operator()(index_t i) const { return data_[i * strides_[0]]; }
  T& operator()(index_t i, index_t j) const { return data_[i * strides_[0] + j * strides_[1]]; }

  /// Rank-2 transpose: swaps extents and strides, no copy.
  TensorView transposed() const {
    require<ShapeError>(rank() == 2, "transposed() needs a rank-2 view, got rank ", rank());
    return TensorView(data_, {extents_[1], extents_[0]}, {strides_[1], strides_[0]}, device_);
  }

  /// Rows `[begin, begin + count)` of the leading dimension.
  TensorView slice_rows(index_t begin, index_t count) const {
    require<ShapeError>(rank() >= 1 && begin >= 0 && count >= 0 && begin <= extents_[0] &&
                            count <= extents_[0] - begin,  // no begin + count: it can overflow
                        "slice_rows(", begin, ", ", count, ") is outside a view of extents ", extents_);
    Dims extents = extents_;
    extents[0] = count;
    return TensorView(count == 0 ? data_ : data_ + begin * strides_[0], extents, strides_, device_);
  }

  /// Same elements under new extents; needs a dense row-major view.
  TensorView reshaped(Dims extents) const {
    require<ShapeError>(is_contiguous(), "reshaped() needs a dense row-major view, got extents ", extents_,
                        " strides ", strides_);
    require<ShapeError>(extents.size() >= 1, "reshaped() needs at least one dimension, got extents ", extents);
    require<ShapeError>(extents.product() == numel(), "cannot reshape ", extents_, " (", numel(),
                        " elements) to ", extents);
    return TensorView(data_, extents, device_);
  }

  std::string str() const {
    std::ostringstream out;
    out << to_string(dtype()) << extents_.str() << " strides " << strides_.str() << " on "
        << to_string(device_.kind);
    return out.str();
  }

 private:
  T* data_ = nullptr;
  Dims extents_{};
  Dims strides_{};
  Device device_ = Device::host();
};

template <class T>
using ConstView = TensorView<const T>;

// Streaming, so error messages pass views and extents by reference and format them only when a check fails.
inline std::ostream& operator<<(std::ostream& out, const Dims& dims) { return out << dims.str(); }

template <class T>
std::ostream& operator<<(std::ostream& out, const TensorView<T>& view) {
  return out << view.str();
}

}  // namespace froster
