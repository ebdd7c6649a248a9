#pragma once
// The same matrix values in different memory layouts, to check that ops honour strides.

#include <cstdint>
#include <string>

#include <froster/core/random.hpp>
#include <froster/core/tensor.hpp>

namespace froster::test {

enum class Layout { row_major, column_major, padded_rows, reversed_rows };

inline std::string to_string(Layout l) {
  switch (l) {
    case Layout::row_major: return "row-major";
    case Layout::column_major: return "column-major";
    case Layout::padded_rows: return "padded rows";
    case Layout::reversed_rows: return "reversed rows (negative stride)";
  }
  return "?";
}

/// Owns a buffer and exposes a `[rows, cols]` view of it in the requested layout; values depend only on the seed.
template <class T>
struct LaidOut {
  Tensor<T> storage;
  TensorView<T> view;

  LaidOut(index_t rows, index_t cols, Layout layout, std::uint64_t seed, double scale = 1.0) {
    const index_t pad = 3;
    switch (layout) {
      case Layout::row_major:
        storage = Tensor<T>::host({rows, cols});
        view = storage.view();
        break;
      case Layout::column_major:
        storage = Tensor<T>::host({cols, rows});
        view = storage.view().transposed();
        break;
      case Layout::padded_rows:
        storage = Tensor<T>::host({rows, cols + pad});
        view = TensorView<T>(storage.data(), {rows, cols}, {cols + pad, 1});
        break;
      case Layout::reversed_rows:
        storage = Tensor<T>::host({rows, cols});
        view = TensorView<T>(storage.data() + (rows > 0 ? (rows - 1) * cols : 0), {rows, cols}, {-cols, 1});
        break;
    }
    NormalRng rng(seed);
    for (index_t i = 0; i < rows; ++i)
      for (index_t j = 0; j < cols; ++j) view(i, j) = T(scale * rng.normal());
  }
};

}  // namespace froster::test
