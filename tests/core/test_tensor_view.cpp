// Dims, dense stride helpers and TensorView: construction, const conversion, layout queries, the no-copy
// transformations, strided element access, and the message of every error path.

#include <catch2/catch.hpp>

#include <array>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <numeric>
#include <string>
#include <type_traits>
#include <vector>

#include <froster/core/tensor_view.hpp>

#include "support/matchers.hpp"

using namespace froster;
using froster::test::MessageContains;

namespace {

/// 0, 1, 2, ... so that every element's value is its offset from the buffer's start.
std::vector<float> iota_buffer(std::size_t n) {
  std::vector<float> b(n);
  std::iota(b.begin(), b.end(), 0.0f);
  return b;
}

}  // namespace

TEST_CASE("Dims holds up to max_rank entries", "[core]") {
  const Dims d{2, 3, 4};
  REQUIRE(d.size() == 3);
  REQUIRE(d[0] == 2);
  REQUIRE(d[2] == 4);
  REQUIRE(d.product() == 24);
  REQUIRE(std::vector<index_t>(d.begin(), d.end()) == std::vector<index_t>{2, 3, 4});
  REQUIRE(d.str() == "[2, 3, 4]");

  SECTION("rank 0: empty product is 1") {
    const Dims empty;
    REQUIRE(empty.size() == 0);
    REQUIRE(empty.product() == 1);
    REQUIRE(empty.str() == "[]");
  }
  SECTION("equality compares rank and entries") {
    REQUIRE(d == Dims{2, 3, 4});
    REQUIRE_FALSE(d == Dims{2, 3});
    REQUIRE_FALSE(d == Dims{2, 3, 5});
    REQUIRE_FALSE(Dims{} == Dims{0});
  }
  SECTION("from a span") {
    const std::array<index_t, 2> values{5, 7};
    REQUIRE(Dims(std::span<const index_t>(values)) == Dims{5, 7});
  }
  SECTION("entries are writable") {
    Dims e{1, 2};
    e[1] = 9;
    REQUIRE(e == Dims{1, 9});
  }
  SECTION("more than max_rank entries is a ShapeError naming the limit and the count") {
    REQUIRE_THROWS_MATCHES((Dims{1, 2, 3, 4, 5, 6, 7}), ShapeError, MessageContains({"at most 6", "got 7"}));
    const std::array<index_t, max_rank + 2> values{};
    REQUIRE_THROWS_MATCHES(Dims(std::span<const index_t>(values)), ShapeError,
                           MessageContains({"at most 6", "got 8"}));
    REQUIRE_NOTHROW(Dims{1, 2, 3, 4, 5, 6});
  }
}

TEST_CASE("Dense strides address elements in C and Fortran order", "[core]") {
  REQUIRE(row_major_strides({2, 3, 4}) == Dims{12, 4, 1});
  REQUIRE(column_major_strides({2, 3, 4}) == Dims{1, 2, 6});
  REQUIRE(row_major_strides({}) == Dims{});
  REQUIRE(column_major_strides({7}) == Dims{1});

  // The defining property: consecutive offsets in the last (row-major) or first (column-major) index.
  const Dims extents{3, 2, 5};
  const Dims rm = row_major_strides(extents), cm = column_major_strides(extents);
  for (index_t i = 0; i < 3; ++i)
    for (index_t j = 0; j < 2; ++j)
      for (index_t k = 0; k < 5; ++k) {
        REQUIRE(i * rm[0] + j * rm[1] + k * rm[2] == (i * 2 + j) * 5 + k);
        REQUIRE(i * cm[0] + j * cm[1] + k * cm[2] == (k * 2 + j) * 3 + i);
      }
}

TEST_CASE("A default view is the null 'not requested' view", "[core]") {
  const TensorView<float> v;
  REQUIRE(v.is_null());
  REQUIRE(v.data() == nullptr);
  REQUIRE(v.rank() == 0);
  REQUIRE(v.numel() == 0);
  REQUIRE(v.device() == Device::host());

  // An empty but shaped view is not null: it says "zero rows", not "not requested".
  const TensorView<float> empty(nullptr, {0, 3});
  REQUIRE_FALSE(empty.is_null());
  REQUIRE(empty.numel() == 0);
}

TEST_CASE("Views carry data, extents, strides, device and dtype", "[core]") {
  auto buf = iota_buffer(12);
  SECTION("dense constructor is row-major") {
    const TensorView<float> v(buf.data(), {3, 4});
    REQUIRE(v.data() == buf.data());
    REQUIRE(v.rank() == 2);
    REQUIRE(v.rows() == 3);
    REQUIRE(v.cols() == 4);
    REQUIRE(v.extent(1) == 4);
    REQUIRE(v.strides() == Dims{4, 1});
    REQUIRE(v.stride(0) == 4);
    REQUIRE(v.numel() == 12);
    REQUIRE(v.device() == Device::host());
    REQUIRE(v.dtype() == DType::f32);
    REQUIRE(v(2, 3) == 11.0f);
  }
  SECTION("strided constructor keeps the given strides") {
    const TensorView<float> v(buf.data(), {3, 4}, {1, 3});
    REQUIRE(v.strides() == Dims{1, 3});
    REQUIRE(v(2, 3) == float(2 * 1 + 3 * 3));
  }
  SECTION("device tag and dtypes") {
    const TensorView<float> d(buf.data(), {3, 4}, Device::cuda(1));
    REQUIRE(d.device() == Device::cuda(1));
    REQUIRE_FALSE(d.device().is_host());
    REQUIRE(TensorView<double>::dtype() == DType::f64);
    REQUIRE(TensorView<const std::int32_t>::dtype() == DType::i32);
    REQUIRE(TensorView<std::int64_t>::dtype() == DType::i64);
  }
  SECTION("str() names dtype, extents, strides and device") {
    const TensorView<float> v(buf.data(), {3, 4});
    REQUIRE(v.str() == "f32[3, 4] strides [4, 1] on host");
    const TensorView<double> d(nullptr, {0}, Device::cuda());
    REQUIRE_THAT(d.str(), Catch::Matchers::Contains("f64[0]") && Catch::Matchers::Contains("cuda"));
  }
}

TEST_CASE("View constructors reject inconsistent arguments with ShapeError", "[core]") {
  auto buf = iota_buffer(6);
  REQUIRE_THROWS_MATCHES(TensorView<float>(buf.data(), {2, 3}, {1}), ShapeError,
                         MessageContains({"one stride per dimension", "extents [2, 3]", "strides [1]"}));
  REQUIRE_THROWS_MATCHES(TensorView<float>(buf.data(), {2, -3}), ShapeError,
                         MessageContains({"non-negative", "[2, -3]"}));
  REQUIRE_THROWS_MATCHES(TensorView<float>(nullptr, {2, 3}), ShapeError,
                         MessageContains({"6 elements", "null data pointer"}));
  // Zero elements need no memory.
  REQUIRE_NOTHROW(TensorView<float>(nullptr, {0, 3}));
  REQUIRE_NOTHROW(TensorView<float>(nullptr, {2, 0}, {0, 1}));
}

TEST_CASE("Mutable views convert to const views, never back", "[core]") {
  static_assert(std::is_convertible_v<TensorView<float>, ConstView<float>>);
  static_assert(!std::is_convertible_v<ConstView<float>, TensorView<float>>);
  static_assert(!std::is_constructible_v<TensorView<float>, ConstView<float>>);
  static_assert(!std::is_convertible_v<TensorView<double>, ConstView<float>>);
  static_assert(std::is_same_v<ConstView<float>::value_type, float>);
  static_assert(std::is_same_v<ConstView<float>::element_type, const float>);

  auto buf = iota_buffer(12);
  const TensorView<float> v(buf.data(), {3, 2}, {1, 3}, Device::cuda(2));
  const ConstView<float> c = v;
  REQUIRE(c.data() == v.data());
  REQUIRE(c.extents() == v.extents());
  REQUIRE(c.strides() == v.strides());
  REQUIRE(c.device() == v.device());
}

TEST_CASE("is_contiguous means dense row-major, extent-1 dimensions aside", "[core]") {
  auto buf = iota_buffer(24);
  const TensorView<float> dense(buf.data(), {2, 3, 4});
  REQUIRE(dense.is_contiguous());
  REQUIRE_FALSE(TensorView<float>(buf.data(), {3, 4}, {1, 3}).is_contiguous());  // column-major
  REQUIRE_FALSE(TensorView<float>(buf.data(), {3, 4}, {8, 1}).is_contiguous());  // padded rows
  REQUIRE_FALSE(TensorView<float>(buf.data(), {3, 4}, {4, 2}).is_contiguous());  // every other column
  // An extent-1 dimension's stride never moves the pointer, so it may be anything.
  REQUIRE(TensorView<float>(buf.data(), {1, 4}, {0, 1}).is_contiguous());
  REQUIRE(TensorView<float>(buf.data(), {3, 1, 4}, {4, 99, 1}).is_contiguous());
  REQUIRE(TensorView<float>(buf.data(), {4, 1}, {1, -7}).is_contiguous());
  REQUIRE(TensorView<float>().is_contiguous());
  // Leading rows of a dense matrix are dense; leading columns are not.
  const TensorView<float> m(buf.data(), {4, 6});
  REQUIRE(m.slice_rows(1, 2).is_contiguous());
  REQUIRE_FALSE(m.transposed().is_contiguous());
}

TEST_CASE("transposed swaps extents and strides without copying", "[core]") {
  auto buf = iota_buffer(12);
  const TensorView<float> m(buf.data(), {3, 4});
  const TensorView<float> t = m.transposed();
  REQUIRE(t.data() == m.data());
  REQUIRE(t.extents() == Dims{4, 3});
  REQUIRE(t.strides() == Dims{1, 4});
  for (index_t i = 0; i < 3; ++i)
    for (index_t j = 0; j < 4; ++j) REQUIRE(&t(j, i) == &m(i, j));
  REQUIRE(t.transposed().strides() == m.strides());

  float* before = buf.data();
  t(3, 2) = -1.0f;  // writes through to the shared memory
  REQUIRE(before[2 * 4 + 3] == -1.0f);

  REQUIRE_THROWS_MATCHES(TensorView<float>(buf.data(), {12}).transposed(), ShapeError,
                         MessageContains({"rank-2", "rank 1"}));
  REQUIRE_THROWS_MATCHES(TensorView<float>(buf.data(), {2, 3, 2}).transposed(), ShapeError,
                         MessageContains({"rank-2", "rank 3"}));
}

TEST_CASE("slice_rows selects leading-dimension ranges in place", "[core]") {
  auto buf = iota_buffer(20);
  const TensorView<float> m(buf.data(), {4, 5});

  const auto s = m.slice_rows(1, 2);
  REQUIRE(s.data() == buf.data() + 5);
  REQUIRE(s.extents() == Dims{2, 5});
  REQUIRE(s.strides() == m.strides());
  REQUIRE(&s(1, 4) == &m(2, 4));

  REQUIRE(m.slice_rows(0, 4).data() == m.data());
  REQUIRE(m.slice_rows(4, 0).numel() == 0);  // an empty tail slice is allowed
  REQUIRE(m.slice_rows(2, 0).extents() == Dims{0, 5});

  SECTION("of a strided and of a rank-3 view") {
    const TensorView<float> cm(buf.data(), {4, 5}, {1, 4});  // column-major
    REQUIRE(&cm.slice_rows(2, 2)(1, 3) == &cm(3, 3));
    const TensorView<float> r3(buf.data(), {2, 2, 5});
    REQUIRE(r3.slice_rows(1, 1).data() == buf.data() + 10);
    REQUIRE(r3.slice_rows(1, 1).extents() == Dims{1, 2, 5});
  }
  SECTION("out-of-range slices are a ShapeError naming the slice and the extents") {
    REQUIRE_THROWS_MATCHES(m.slice_rows(2, 3), ShapeError, MessageContains({"slice_rows(2, 3)", "[4, 5]"}));
    REQUIRE_THROWS_MATCHES(m.slice_rows(-1, 2), ShapeError, MessageContains({"slice_rows(-1, 2)", "[4, 5]"}));
    REQUIRE_THROWS_MATCHES(m.slice_rows(1, -1), ShapeError, MessageContains({"slice_rows(1, -1)", "[4, 5]"}));
    REQUIRE_THROWS_MATCHES(m.slice_rows(5, 0), ShapeError, MessageContains({"slice_rows(5, 0)", "[4, 5]"}));
    REQUIRE_THROWS_MATCHES(TensorView<float>().slice_rows(0, 0), ShapeError,
                           MessageContains({"slice_rows(0, 0)", "[]"}));
  }
  SECTION("a count so large that begin + count overflows is still out of range") {
    // begin + count must not be formed when it overflows index_t (undefined behaviour that in practice wraps
    // to a negative number and passes the bound check).
    const index_t huge = std::numeric_limits<index_t>::max();
    REQUIRE_THROWS_AS(m.slice_rows(1, huge), ShapeError);
  }
}

TEST_CASE("reshaped reinterprets dense views only", "[core]") {
  auto buf = iota_buffer(24);
  const TensorView<float> m(buf.data(), {4, 6});
  const auto r = m.reshaped({2, 3, 4});
  REQUIRE(r.data() == m.data());
  REQUIRE(r.extents() == Dims{2, 3, 4});
  REQUIRE(r.strides() == row_major_strides({2, 3, 4}));
  REQUIRE(r.device() == m.device());
  REQUIRE(&r.reshaped({24})(13) == &m(2, 1));  // same element order

  // Leading rows of a dense matrix stay dense, so they reshape too.
  REQUIRE(m.slice_rows(1, 2).reshaped({12}).data() == buf.data() + 6);
  REQUIRE(TensorView<float>(buf.data(), {4, 1}, {1, 0}).reshaped({2, 2}).strides() == Dims{2, 1});

  REQUIRE_THROWS_MATCHES(m.transposed().reshaped({24}), ShapeError,
                         MessageContains({"dense row-major", "[6, 4]", "strides [1, 6]"}));
  REQUIRE_THROWS_MATCHES(m.reshaped({5, 5}), ShapeError,
                         MessageContains({"[4, 6]", "24 elements", "[5, 5]"}));
  REQUIRE_THROWS_MATCHES(m.reshaped({-4, -6}), ShapeError, MessageContains({"non-negative", "[-4, -6]"}));
}

TEST_CASE("Element access follows the strides, negative ones included", "[core]") {
  auto buf = iota_buffer(12);
  const index_t rows = 3, cols = 4;

  SECTION("column-major") {
    const TensorView<float> v(buf.data(), {rows, cols}, {1, rows});
    for (index_t i = 0; i < rows; ++i)
      for (index_t j = 0; j < cols; ++j) REQUIRE(v(i, j) == float(j * rows + i));
  }
  SECTION("rank 1 with a stride") {
    const TensorView<float> v(buf.data() + 1, {6}, {2});
    for (index_t i = 0; i < 6; ++i) REQUIRE(v(i) == float(2 * i + 1));
  }
  SECTION("rows in reverse order: the pointer is at the last row, the row stride negative") {
    const TensorView<float> v(buf.data() + (rows - 1) * cols, {rows, cols}, {-cols, 1});
    for (index_t i = 0; i < rows; ++i)
      for (index_t j = 0; j < cols; ++j) REQUIRE(v(i, j) == float((rows - 1 - i) * cols + j));
    REQUIRE_FALSE(v.is_contiguous());
    // Slicing and transposing keep working in the reversed frame.
    const auto s = v.slice_rows(1, 2);
    REQUIRE(s(0, 0) == float((rows - 2) * cols));
    REQUIRE(s(1, 3) == float(3));
    REQUIRE(v.transposed()(3, 0) == v(0, 3));
    REQUIRE_THROWS_AS(v.reshaped({12}), ShapeError);
  }
  SECTION("both strides negative: a 180-degree rotation") {
    const TensorView<float> v(buf.data() + 11, {rows, cols}, {-cols, -1});
    for (index_t i = 0; i < rows; ++i)
      for (index_t j = 0; j < cols; ++j) REQUIRE(v(i, j) == float(11 - (i * cols + j)));
  }
  SECTION("writes through a const-qualified mutable view land in the buffer") {
    const TensorView<float> v(buf.data(), {rows, cols}, {1, rows});
    v(1, 2) = -5.0f;
    REQUIRE(buf[2 * rows + 1] == -5.0f);
  }
}
