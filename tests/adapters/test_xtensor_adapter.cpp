// xtensor <-> froster views, both directions: containers of either layout, adaptors and strided views map with
// their strides and no copy (every element has the same address on both sides); assignments through as_xtensor
// reach the right elements whatever the strides; const stays const; wrong ranks and device views are refused.

#include <catch2/catch.hpp>

#include <array>
#include <cstdint>
#include <initializer_list>
#include <numeric>
#include <string>
#include <type_traits>
#include <vector>

#include <froster/core/tensor.hpp>
#include <froster/xtensor.hpp>
#include <xtensor/xadapt.hpp>
#include <xtensor/xarray.hpp>
#include <xtensor/xfixed.hpp>
#include <xtensor/xmanipulation.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xnoalias.hpp>
#include <xtensor/xstrided_view.hpp>
#include <xtensor/xview.hpp>

#include "support/matchers.hpp"
#include "support/random.hpp"

using namespace froster;
using froster::test::MessageContains;

namespace {

template <class E>
void fill_iota(E& e) {
  std::iota(e.begin(), e.end(), typename std::decay_t<E>::value_type(0));
}

/// The address of element `index` of a view of any rank.
template <class T>
T* address(const TensorView<T>& v, std::initializer_list<index_t> index) {
  T* p = v.data();
  int d = 0;
  for (index_t i : index) p += i * v.stride(d++);
  return p;
}

/// Every element of the rank-2 froster view is the very element (same address) of the xtensor expression.
template <class T, class E>
bool aliases(const TensorView<T>& v, E& e) {
  if (v.rank() != 2 || e.dimension() != 2 || std::size_t(v.rows()) != e.shape()[0] ||
      std::size_t(v.cols()) != e.shape()[1])
    return false;
  for (index_t i = 0; i < v.rows(); ++i)
    for (index_t j = 0; j < v.cols(); ++j)
      if (&v(i, j) != &e(std::size_t(i), std::size_t(j))) return false;
  return true;
}

template <class Ref>
constexpr bool writable = std::is_assignable_v<Ref, float>;

}  // namespace

// --- xtensor -> froster -------------------------------------------------------------------------------------------

TEST_CASE("view_of a row-major xtensor", "[adapters]") {
  xt::xtensor<float, 2> a({4, 6});
  fill_iota(a);
  const auto v = view_of(a);
  static_assert(std::is_same_v<std::remove_const_t<decltype(v)>, TensorView<float>>);
  REQUIRE(v.data() == a.data());
  REQUIRE(v.extents() == Dims{4, 6});
  REQUIRE(v.strides() == Dims{6, 1});
  REQUIRE(v.is_contiguous());
  REQUIRE(v.device() == Device::host());
  REQUIRE(aliases(v, a));
  v(3, 5) = -1.0f;
  REQUIRE(a(3, 5) == -1.0f);
}

TEST_CASE("view_of a column-major xtensor", "[adapters]") {
  xt::xtensor<double, 2, xt::layout_type::column_major> a({4, 6});
  fill_iota(a);
  const auto v = view_of(a);
  REQUIRE(v.data() == a.data());
  REQUIRE(v.strides() == Dims{1, 4});
  REQUIRE_FALSE(v.is_contiguous());
  REQUIRE(v.transposed().is_contiguous());
  REQUIRE(aliases(v, a));
}

TEST_CASE("view_of xarray, xtensor_fixed and xt::adapt", "[adapters]") {
  SECTION("rank-3 xarray") {
    xt::xarray<double> x = xt::zeros<double>({2, 3, 4});
    const auto v = view_of(x);
    REQUIRE(v.extents() == Dims{2, 3, 4});
    REQUIRE(v.strides() == Dims{12, 4, 1});
    REQUIRE(address(v, {1, 2, 3}) == &x(1, 2, 3));
  }
  SECTION("column-major xarray") {
    xt::xarray<float, xt::layout_type::column_major> x = xt::zeros<float>({2, 3, 4});
    const auto v = view_of(x);
    REQUIRE(v.strides() == Dims{1, 2, 6});
    REQUIRE(address(v, {1, 2, 3}) == &x(1, 2, 3));
  }
  SECTION("xtensor_fixed") {
    xt::xtensor_fixed<float, xt::xshape<2, 3>> f = xt::zeros<float>({2, 3});
    const auto v = view_of(f);
    REQUIRE(v.data() == f.data());
    REQUIRE(v.strides() == Dims{3, 1});
  }
  SECTION("an adaptor of a std::vector, temporary or named") {
    std::vector<std::int64_t> labels{4, 0, 2, 1, 3, 5};
    const auto v = view_of(xt::adapt(labels, std::vector<std::size_t>{2, 3}));
    static_assert(std::is_same_v<std::remove_const_t<decltype(v)>, TensorView<std::int64_t>>);
    REQUIRE(v.data() == labels.data());
    REQUIRE(v.extents() == Dims{2, 3});
    REQUIRE(v(1, 2) == 5);

    auto adapted = xt::adapt(labels.data(), labels.size(), xt::no_ownership(), std::array<std::size_t, 1>{6});
    const auto w = view_of(adapted);
    REQUIRE(w.data() == labels.data());
    REQUIRE(w.strides() == Dims{1});
  }
}

TEST_CASE("view_of gives extent-1 dimensions the dense stride, not xtensor's 0", "[adapters]") {
  // xtensor stores stride 0 for extent-1 dimensions; froster views (and BLAS/Eigen leading dimensions) expect
  // the stride of the dense layout, as view_of an Eigen matrix of the same shape would give.
  xt::xtensor<float, 2> row({1, 5});
  REQUIRE(row.strides()[0] == 0);
  REQUIRE(view_of(row).strides() == row_major_strides({1, 5}));

  xt::xtensor<float, 2, xt::layout_type::column_major> col({4, 1});
  REQUIRE(view_of(col).strides() == column_major_strides({4, 1}));

  xt::xtensor<float, 3> mid({3, 1, 4});
  REQUIRE(view_of(mid).strides() == row_major_strides({3, 1, 4}));
  xt::xtensor<float, 3> single({1, 1, 1});
  REQUIRE(view_of(single).strides() == Dims{1, 1, 1});

  // A single-row slice of a wider matrix: its row stride is the slice's width, at least cols.
  xt::xtensor<float, 2> a({4, 6});
  const auto r = view_of(xt::view(a, xt::range(2, 3), xt::range(0, 6, 2)));
  REQUIRE(r.data() == &a(2, 0));
  REQUIRE(r.extents() == Dims{1, 3});
  REQUIRE(r.stride(1) == 2);
  REQUIRE(r.stride(0) >= r.cols());
}

TEST_CASE("view_of strided xt::view and xt::strided_view", "[adapters]") {
  xt::xtensor<float, 2> a({4, 6});
  fill_iota(a);

  SECTION("every other column") {
    auto cols = xt::view(a, xt::all(), xt::range(0, 6, 2));
    const auto v = view_of(cols);
    static_assert(std::is_same_v<std::remove_const_t<decltype(v)>, TensorView<float>>);
    REQUIRE(v.data() == a.data());
    REQUIRE(v.extents() == Dims{4, 3});
    REQUIRE(v.strides() == Dims{6, 2});
    REQUIRE_FALSE(v.is_contiguous());
    REQUIRE(aliases(v, cols));
    REQUIRE(&v(3, 2) == &a(3, 4));
    v(1, 1) = 100.0f;
    REQUIRE(a(1, 2) == 100.0f);
  }
  SECTION("an interior block: the pointer includes the view's data_offset") {
    auto block = xt::view(a, xt::range(1, 3), xt::range(1, 5, 2));
    const auto v = view_of(block);
    REQUIRE(v.data() == &a(1, 1));
    REQUIRE(v.strides() == Dims{6, 2});
    REQUIRE(aliases(v, block));
  }
  SECTION("negative steps") {
    auto reversed = xt::view(a, xt::range(3, 0, -1), xt::range(5, 0, -2));
    const auto v = view_of(reversed);
    REQUIRE(v.data() == &a(3, 5));
    REQUIRE(v.extents() == Dims{3, 3});
    REQUIRE(v.strides() == Dims{-6, -2});
    REQUIRE(aliases(v, reversed));
  }
  SECTION("rank-reducing views and transposes") {
    const auto row = view_of(xt::view(a, 2, xt::all()));
    REQUIRE(row.data() == &a(2, 0));
    REQUIRE(row.extents() == Dims{6});
    const auto column = view_of(xt::view(a, xt::all(), 3));
    REQUIRE(column.data() == &a(0, 3));
    REQUIRE(column.strides() == Dims{6});
    auto t = xt::transpose(a);
    const auto tv = view_of(t);
    REQUIRE(tv.data() == a.data());
    REQUIRE(tv.strides() == Dims{1, 6});
    REQUIRE(aliases(tv, t));
  }
  SECTION("strided_view of a rank-3 xarray") {
    xt::xarray<double> x = xt::zeros<double>({2, 3, 4});
    const auto v = view_of(xt::strided_view(x, {xt::all(), 1, xt::range(1, 4)}));
    REQUIRE(v.data() == &x(0, 1, 1));
    REQUIRE(v.extents() == Dims{2, 3});
    REQUIRE(v.strides() == Dims{12, 1});
  }
  SECTION("a view of a column-major container") {
    xt::xtensor<float, 2, xt::layout_type::column_major> c({6, 4});
    auto rows = xt::view(c, xt::range(0, 6, 2), xt::all());
    const auto v = view_of(rows);
    REQUIRE(v.strides() == Dims{2, 6});
    REQUIRE(aliases(v, rows));
  }
}

TEST_CASE("view_of const xtensor objects gives const views", "[adapters]") {
  xt::xtensor<float, 2> a({3, 4});
  const xt::xtensor<float, 2>& ca = a;
  const auto v = view_of(ca);
  static_assert(std::is_same_v<std::remove_const_t<decltype(v)>, ConstView<float>>);
  REQUIRE(v.data() == a.data());
  const auto sv = view_of(xt::view(ca, xt::all(), xt::range(1, 3)));
  static_assert(std::is_same_v<std::remove_const_t<decltype(sv)>, ConstView<float>>);
  REQUIRE(sv.data() == &a(0, 1));
  const std::vector<double> buf(6);
  const auto av = view_of(xt::adapt(buf.data(), buf.size(), xt::no_ownership(), std::array<std::size_t, 2>{2, 3}));
  static_assert(std::is_same_v<std::remove_const_t<decltype(av)>, ConstView<double>>);
  REQUIRE(av.data() == buf.data());
}

TEST_CASE("view_of refuses ranks froster views cannot hold", "[adapters]") {
  xt::xarray<float> too_many = xt::zeros<float>({1, 2, 1, 2, 1, 2, 1});
  REQUIRE_THROWS_MATCHES(view_of(too_many), ShapeError, MessageContains({"view_of", "rank 1 to 6", "got rank 7"}));
  xt::xarray<float> scalar = 3.0f;
  REQUIRE_THROWS_MATCHES(view_of(scalar), ShapeError, MessageContains({"view_of", "rank 1 to 6", "got rank 0"}));
  xt::xarray<float> six = xt::zeros<float>({1, 2, 1, 2, 1, 2});
  REQUIRE(view_of(six).rank() == 6);
}

// --- froster -> xtensor -------------------------------------------------------------------------------------------

TEST_CASE("as_xtensor of a dense row-major view shares the tensor's memory", "[adapters]") {
  auto t = test::random_tensor<float>({4, 6}, 3);
  const auto fresh = test::random_tensor<float>({4, 6}, 3);
  auto x = as_xtensor<2>(t.view());
  REQUIRE(x.data() + x.data_offset() == t.data());
  REQUIRE(x.dimension() == 2);
  REQUIRE(x.shape()[0] == 4);
  REQUIRE(x.shape()[1] == 6);
  REQUIRE(x.layout() == xt::layout_type::row_major);
  REQUIRE(aliases(t.view(), x));

  x = 2.0f * x;  // xtensor arithmetic in place on froster memory
  for (index_t i = 0; i < 4; ++i)
    for (index_t j = 0; j < 6; ++j) REQUIRE(t.view()(i, j) == 2.0f * fresh.view()(i, j));

  // A round trip gives the same view back.
  const auto back = view_of(x);
  REQUIRE(back.data() == t.data());
  REQUIRE(back.strides() == Dims{6, 1});
}

TEST_CASE("as_xtensor keeps column-major and strided layouts, and assigns through them", "[adapters]") {
  xt::xtensor<float, 2> src = {{1, 2, 3}, {4, 5, 6}, {7, 8, 9}, {10, 11, 12}};

  SECTION("column-major: an Eigen-style buffer") {
    std::vector<float> buf(12, 0.0f);
    const TensorView<float> v(buf.data(), {4, 3}, column_major_strides({4, 3}));
    auto x = as_xtensor<2>(v);
    REQUIRE(x.layout() == xt::layout_type::column_major);
    REQUIRE(aliases(v, x));
    x = src;  // must transpose into column-major memory, not copy linearly
    for (index_t i = 0; i < 4; ++i)
      for (index_t j = 0; j < 3; ++j) REQUIRE(buf[std::size_t(j * 4 + i)] == src(std::size_t(i), std::size_t(j)));
  }
  SECTION("every other column of a wider matrix: untouched columns stay untouched") {
    xt::xtensor<float, 2> wide({4, 6});
    wide.fill(-7.0f);
    const auto v = view_of(xt::view(wide, xt::all(), xt::range(0, 6, 2)));
    auto x = as_xtensor<2>(v);
    REQUIRE(x.layout() == xt::layout_type::dynamic);
    REQUIRE(x.data() + x.data_offset() == wide.data());
    REQUIRE(x.strides()[0] == 6);
    REQUIRE(x.strides()[1] == 2);
    REQUIRE(aliases(v, x));
    x = src;
    xt::noalias(x) += src;
    for (std::size_t i = 0; i < 4; ++i)
      for (std::size_t j = 0; j < 6; ++j)
        REQUIRE(wide(i, j) == (j % 2 == 0 ? 2.0f * src(i, j / 2) : -7.0f));
  }
  SECTION("negative strides: rows and columns reversed") {
    xt::xtensor<float, 2> a({4, 3});
    fill_iota(a);
    const TensorView<float> v(&a(3, 2), {4, 3}, {-3, -1});
    auto x = as_xtensor<2>(v);
    REQUIRE(aliases(v, x));
    REQUIRE(x(0, 0) == a(3, 2));
    x = src;
    REQUIRE(a(0, 0) == src(3, 2));
    REQUIRE(a(3, 2) == src(0, 0));
    const auto back = view_of(x);
    REQUIRE(back.data() == v.data());
    REQUIRE(back.strides() == v.strides());
  }
  SECTION("rank 1 and rank 3") {
    auto t = test::random_tensor<double>({2, 3, 4}, 8);
    auto x3 = as_xtensor<3>(t.view());
    REQUIRE(&x3(1, 2, 3) == address(t.view(), {1, 2, 3}));
    const TensorView<double> every_third(t.data() + 1, {8}, {3});
    auto x1 = as_xtensor<1>(every_third);
    for (std::size_t i = 0; i < 8; ++i) REQUIRE(&x1(i) == t.data() + 1 + 3 * i);
    x1.fill(0.5);
    REQUIRE(t.data()[22] == 0.5);
    REQUIRE(t.data()[23] != 0.5);
  }
}

TEST_CASE("as_xtensor of an extent-1 dimension broadcasts like an xtensor row", "[adapters]") {
  // xtensor broadcasts along a dimension through its stride 0; as_xtensor must give it that, whatever the
  // view's stride there.
  auto t = test::random_tensor<float>({4, 6}, 13);
  auto row = as_xtensor<2>(t.view().slice_rows(2, 1));
  xt::xtensor<float, 2> spread = xt::zeros<float>({4, 6}) + row;
  for (std::size_t i = 0; i < 4; ++i)
    for (std::size_t j = 0; j < 6; ++j) REQUIRE(spread(i, j) == t.view()(2, index_t(j)));
}

TEST_CASE("as_xtensor of a const view is read-only", "[adapters]") {
  auto t = test::random_tensor<float>({3, 4}, 21);
  auto x = as_xtensor<2>(t.cview());
  static_assert(!writable<decltype(x(0, 0))>);
  static_assert(writable<decltype(as_xtensor<2>(t.view())(0, 0))>);
  REQUIRE(x.data() + x.data_offset() == t.data());
  double sum = 0;
  for (index_t i = 0; i < t.numel(); ++i) sum += t.data()[i];
  REQUIRE(xt::sum(x)() == Approx(sum));
}

TEST_CASE("as_xtensor of an empty view is empty", "[adapters]") {
  auto x = as_xtensor<2>(TensorView<float>(nullptr, {0, 3}));
  REQUIRE(x.size() == 0);
  REQUIRE(x.shape()[1] == 3);
}

TEST_CASE("as_xtensor refuses rank mismatches and device views", "[adapters]") {
  auto t = Tensor<float>::host({4, 6});
  REQUIRE_THROWS_MATCHES(as_xtensor<3>(t.view()), ShapeError,
                         MessageContains({"as_xtensor<3>", "rank-3", "rank 2", "f32[4, 6]"}));
  REQUIRE_THROWS_MATCHES(as_xtensor<1>(t.cview()), ShapeError,
                         MessageContains({"as_xtensor<1>", "rank-1", "rank 2"}));
  REQUIRE_THROWS_MATCHES(as_xtensor<2>(TensorView<float>()), ShapeError,
                         MessageContains({"as_xtensor<2>", "rank-2", "rank 0"}));
  const TensorView<float> device(t.data(), {4, 6}, Device::cuda(1));
  REQUIRE_THROWS_MATCHES(as_xtensor<2>(device), ShapeError, MessageContains({"as_xtensor", "host", "cuda"}));
}
