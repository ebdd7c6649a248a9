// Eigen <-> froster views, both directions: layouts and strides are kept, nothing is copied (data pointers and
// writes are shared), const stays const, and maps that cannot express a view are refused with ShapeError.

#include <catch2/catch.hpp>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <type_traits>
#include <vector>

#include <froster/adapters/eigen.hpp>
#include <froster/core/tensor.hpp>

#include "support/matchers.hpp"
#include "support/random.hpp"

using namespace froster;
using froster::test::MessageContains;

namespace {

using RowMatrixf = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// Every element of the view is the very element (same address) of the Eigen object.
template <class View, class Derived>
bool aliases(const View& v, const Eigen::DenseBase<Derived>& m) {
  if (v.rank() != 2 || v.rows() != m.rows() || v.cols() != m.cols()) return false;
  for (index_t i = 0; i < v.rows(); ++i)
    for (index_t j = 0; j < v.cols(); ++j)
      if (&v(i, j) != &m.derived().coeffRef(Eigen::Index(i), Eigen::Index(j))) return false;
  return true;
}

template <class T>
void fill_iota(TensorView<T> v) {
  for (index_t i = 0; i < v.rows(); ++i)
    for (index_t j = 0; j < v.cols(); ++j) v(i, j) = T(i * 100 + j);
}

}  // namespace

TEST_CASE("view_of an Eigen row-major matrix", "[adapters]") {
  RowMatrixf m(3, 4);
  const auto v = view_of(m);
  static_assert(std::is_same_v<std::remove_const_t<decltype(v)>, TensorView<float>>);
  REQUIRE(v.data() == m.data());
  REQUIRE(v.extents() == Dims{3, 4});
  REQUIRE(v.strides() == Dims{4, 1});
  REQUIRE(v.is_contiguous());
  REQUIRE(v.device() == Device::host());
  REQUIRE(aliases(v, m));
  v(2, 1) = 9.0f;
  REQUIRE(m(2, 1) == 9.0f);
}

TEST_CASE("view_of an Eigen column-major matrix", "[adapters]") {
  Eigen::MatrixXd m(3, 4);
  const auto v = view_of(m);
  static_assert(std::is_same_v<std::remove_const_t<decltype(v)>, TensorView<double>>);
  REQUIRE(v.data() == m.data());
  REQUIRE(v.extents() == Dims{3, 4});
  REQUIRE(v.strides() == Dims{1, 3});
  REQUIRE_FALSE(v.is_contiguous());
  REQUIRE(aliases(v, m));
  // The transpose of a column-major matrix is a dense row-major view.
  REQUIRE(v.transposed().is_contiguous());
}

TEST_CASE("view_of Eigen maps keeps their strides", "[adapters]") {
  std::vector<float> buf(64, 0.0f);
  SECTION("column-major map with inner and outer strides") {
    using Strided = Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>;
    Eigen::Map<Eigen::MatrixXf, Eigen::Unaligned, Strided> map(buf.data(), 3, 4, Strided(10, 2));
    const auto v = view_of(map);
    REQUIRE(v.data() == buf.data());
    REQUIRE(v.strides() == Dims{2, 10});
    REQUIRE(aliases(v, map));
  }
  SECTION("row-major map with padded rows") {
    Eigen::Map<RowMatrixf, Eigen::Unaligned, Eigen::OuterStride<>> map(buf.data() + 1, 3, 5, Eigen::OuterStride<>(8));
    const auto v = view_of(map);
    REQUIRE(v.data() == buf.data() + 1);
    REQUIRE(v.strides() == Dims{8, 1});
    REQUIRE(aliases(v, map));
  }
  SECTION("a temporary map gives a mutable view of the mapped memory") {
    const auto v = view_of(Eigen::Map<Eigen::MatrixXf>(buf.data(), 4, 2));
    static_assert(std::is_same_v<std::remove_const_t<decltype(v)>, TensorView<float>>);
    v(3, 1) = 5.0f;
    REQUIRE(buf[1 * 4 + 3] == 5.0f);
  }
  SECTION("a map of const data gives a const view") {
    const std::vector<float>& cbuf = buf;
    Eigen::Map<const Eigen::MatrixXf> map(cbuf.data(), 4, 2);
    const auto v = view_of(map);
    static_assert(std::is_same_v<std::remove_const_t<decltype(v)>, ConstView<float>>);
    REQUIRE(v.data() == cbuf.data());
  }
}

TEST_CASE("view_of Eigen blocks: offset pointer, parent strides, not contiguous", "[adapters]") {
  Eigen::MatrixXf m(5, 6);
  fill_iota(view_of(m));
  auto block = m.block(1, 2, 3, 2);
  const auto v = view_of(block);
  REQUIRE(v.data() == &m(1, 2));
  REQUIRE(v.extents() == Dims{3, 2});
  REQUIRE(v.strides() == Dims{1, 5});
  REQUIRE_FALSE(v.is_contiguous());
  REQUIRE(aliases(v, block));
  REQUIRE(v(2, 1) == m(3, 3));

  RowMatrixf r(5, 6);
  const auto rv = view_of(r.block(0, 1, 2, 4));  // a temporary block is a view of r
  REQUIRE(rv.data() == &r(0, 1));
  REQUIRE(rv.strides() == Dims{6, 1});
  REQUIRE_FALSE(rv.is_contiguous());
  rv(1, 3) = -1.0f;
  REQUIRE(r(1, 4) == -1.0f);
}

TEST_CASE("view_of const Eigen objects gives const views", "[adapters]") {
  Eigen::MatrixXd m = Eigen::MatrixXd::Zero(3, 2);
  const Eigen::MatrixXd& cm = m;
  const auto v = view_of(cm);
  static_assert(std::is_same_v<std::remove_const_t<decltype(v)>, ConstView<double>>);
  REQUIRE(v.data() == m.data());
  REQUIRE(v.strides() == Dims{1, 3});
  const auto b = view_of(cm.block(1, 0, 2, 2));
  static_assert(std::is_same_v<std::remove_const_t<decltype(b)>, ConstView<double>>);
  REQUIRE(b.data() == &m(1, 0));
}

TEST_CASE("vector_view_of Eigen vectors, rows and columns", "[adapters]") {
  Eigen::VectorXd col(5);
  const auto c = vector_view_of(col);
  REQUIRE(c.data() == col.data());
  REQUIRE(c.extents() == Dims{5});
  REQUIRE(c.strides() == Dims{1});

  Eigen::RowVectorXf row(4);
  const auto r = vector_view_of(row);
  REQUIRE(r.extents() == Dims{4});
  REQUIRE(r.strides() == Dims{1});

  Eigen::MatrixXf m(3, 4);  // column-major: a row steps by the column stride
  const auto mr = vector_view_of(m.row(1));
  REQUIRE(mr.data() == &m(1, 0));
  REQUIRE(mr.extents() == Dims{4});
  REQUIRE(mr.strides() == Dims{3});
  for (index_t j = 0; j < 4; ++j) REQUIRE(&mr(j) == &m(1, Eigen::Index(j)));

  RowMatrixf rm(3, 4);  // row-major: a column steps by the row stride
  const auto rc = vector_view_of(rm.col(2));
  REQUIRE(rc.extents() == Dims{3});
  REQUIRE(rc.strides() == Dims{4});
  rc(2) = 8.0f;
  REQUIRE(rm(2, 2) == 8.0f);

  const Eigen::VectorXd& ccol = col;
  static_assert(std::is_same_v<decltype(vector_view_of(ccol)), ConstView<double>>);
  std::vector<std::int64_t> labels{3, 1, 2};
  const auto lv = vector_view_of(Eigen::Map<Eigen::Matrix<std::int64_t, Eigen::Dynamic, 1>>(labels.data(), 3));
  REQUIRE(lv.data() == labels.data());
  REQUIRE(lv(2) == 2);
}

TEST_CASE("as_eigen maps any non-negative strides without copying", "[adapters]") {
  auto t = test::random_tensor<float>({6, 8}, 11);
  const TensorView<float> full = t.view();

  // Dense, column-major (the transpose), and strided (every other column of rows 1..4) views of one buffer.
  const TensorView<float> every_other(t.data() + 8, {4, 4}, {8, 2});
  for (const TensorView<float>& v : {full, full.transposed(), every_other}) {
    INFO(v.str());
    auto map = as_eigen(v);
    REQUIRE(map.data() == v.data());
    REQUIRE(map.rows() == v.rows());
    REQUIRE(map.cols() == v.cols());
    for (index_t i = 0; i < v.rows(); ++i)
      for (index_t j = 0; j < v.cols(); ++j) REQUIRE(&map(Eigen::Index(i), Eigen::Index(j)) == &v(i, j));
    // A round trip gives the same view back.
    const auto back = view_of(map);
    REQUIRE(back.data() == v.data());
    REQUIRE(back.extents() == v.extents());
    REQUIRE(back.strides() == v.strides());
  }

  // Writes through the map are writes to the tensor.
  as_eigen(every_other).setConstant(-3.0f);
  for (index_t i = 0; i < 6; ++i)
    for (index_t j = 0; j < 8; ++j) {
      const bool covered = i >= 1 && i <= 4 && j % 2 == 0;
      if (covered) REQUIRE(t.view()(i, j) == -3.0f);
      else REQUIRE(t.view()(i, j) != -3.0f);
    }

  // Single rows need no meaningful row stride (xtensor reports 0 for extent-1 dimensions).
  auto row = as_eigen(TensorView<float>(t.data(), {1, 8}, {0, 1}));
  REQUIRE(row.data() == t.data());
  REQUIRE(&row(0, 7) == t.data() + 7);
}

TEST_CASE("as_eigen of const views is a read-only map", "[adapters]") {
  auto t = test::random_tensor<double>({3, 4}, 5);
  const ConstView<double> v = t.cview();
  auto map = as_eigen(v);
  auto rm = as_eigen_row_major(v);
  auto cm = as_eigen_col_major(v.transposed());
  static_assert(!std::is_assignable_v<decltype(map(0, 0)), double>);
  static_assert(!std::is_assignable_v<decltype(rm(0, 0)), double>);
  static_assert(!std::is_assignable_v<decltype(cm(0, 0)), double>);
  static_assert(std::is_assignable_v<decltype(as_eigen(t.view())(0, 0)), double>);
  REQUIRE(map.data() == t.data());
  REQUIRE(map(2, 3) == t.view()(2, 3));
  REQUIRE(cm(3, 2) == t.view()(2, 3));
}

TEST_CASE("as_eigen_row_major and as_eigen_col_major round trips share memory", "[adapters]") {
  SECTION("row-major: dense and with padded rows") {
    RowMatrixf m = RowMatrixf::Zero(4, 5);
    auto map = as_eigen_row_major(view_of(m));
    static_assert(decltype(map)::IsRowMajor);
    REQUIRE(map.data() == m.data());
    REQUIRE(map.outerStride() == 5);
    map(3, 4) = 2.0f;
    REQUIRE(m(3, 4) == 2.0f);

    auto padded = as_eigen_row_major(view_of(m.block(1, 0, 3, 3)));
    REQUIRE(padded.data() == &m(1, 0));
    REQUIRE(padded.outerStride() == 5);
    padded.setOnes();
    REQUIRE(m.block(1, 0, 3, 3).sum() == 9.0f);
    REQUIRE(m.sum() == 9.0f + 2.0f);
  }
  SECTION("column-major: dense and blocks") {
    Eigen::MatrixXd m = Eigen::MatrixXd::Zero(4, 5);
    auto map = as_eigen_col_major(view_of(m));
    static_assert(!decltype(map)::IsRowMajor);
    REQUIRE(map.data() == m.data());
    REQUIRE(map.outerStride() == 4);
    map(3, 4) = 2.0;
    REQUIRE(m(3, 4) == 2.0);

    auto block = as_eigen_col_major(view_of(m.block(1, 1, 2, 3)));
    REQUIRE(block.data() == &m(1, 1));
    REQUIRE(block.outerStride() == 4);
    block.setConstant(1.0);
    REQUIRE(m.block(1, 1, 2, 3).sum() == 6.0);
  }
  SECTION("froster tensors through Eigen and back") {
    auto t = test::random_tensor<float>({3, 7}, 2);
    auto map = as_eigen_row_major(t.view());
    REQUIRE(map.data() == t.data());
    map *= 2.0f;  // Eigen arithmetic in place on froster memory
    auto fresh = test::random_tensor<float>({3, 7}, 2);
    for (index_t i = 0; i < 3; ++i)
      for (index_t j = 0; j < 7; ++j) REQUIRE(t.view()(i, j) == 2.0f * fresh.view()(i, j));
    // A column-major view of the same memory is the transpose.
    auto tmap = as_eigen_col_major(t.view().transposed());
    REQUIRE(tmap.data() == t.data());
    REQUIRE(tmap.rows() == 7);
    REQUIRE(tmap(6, 2) == map(2, 6));
  }
  SECTION("single rows and columns are dense both ways") {
    std::vector<float> buf(12);
    REQUIRE(as_eigen_row_major(TensorView<float>(buf.data(), {1, 4}, {0, 1})).data() == buf.data());
    REQUIRE(as_eigen_col_major(TensorView<float>(buf.data(), {4, 1}, {1, 0})).data() == buf.data());
    REQUIRE(is_row_major_dense(TensorView<float>(buf.data(), {4, 1}, {3, 7})));
    REQUIRE(is_col_major_dense(TensorView<float>(buf.data(), {1, 4}, {7, 3})));
  }
}

TEST_CASE("Dense maps refuse strides they cannot express", "[adapters]") {
  std::vector<float> buf(64);
  const TensorView<float> row_major(buf.data(), {3, 4});
  const TensorView<float> col_major(buf.data(), {3, 4}, {1, 3});
  REQUIRE_FALSE(is_row_major_dense(col_major));
  REQUIRE_FALSE(is_col_major_dense(row_major));

  REQUIRE_THROWS_MATCHES(as_eigen_row_major(col_major), ShapeError,
                         MessageContains({"as_eigen_row_major", "unit column stride", "strides [1, 3]"}));
  REQUIRE_THROWS_MATCHES(as_eigen_col_major(row_major), ShapeError,
                         MessageContains({"as_eigen_col_major", "unit row stride", "strides [4, 1]"}));
  // Overlapping rows (row stride below the column count) and overlapping columns.
  REQUIRE_THROWS_MATCHES(as_eigen_row_major(TensorView<float>(buf.data(), {3, 4}, {2, 1})), ShapeError,
                         MessageContains({"row stride >= cols (4)", "strides [2, 1]"}));
  REQUIRE_THROWS_MATCHES(as_eigen_col_major(TensorView<float>(buf.data(), {3, 4}, {1, 2})), ShapeError,
                         MessageContains({"column stride >= rows (3)", "strides [1, 2]"}));
  // Every other column: neither dense layout, but the general map takes it.
  const TensorView<float> strided(buf.data(), {3, 4}, {8, 2});
  REQUIRE_THROWS_AS(as_eigen_row_major(strided), ShapeError);
  REQUIRE_THROWS_AS(as_eigen_col_major(strided), ShapeError);
  REQUIRE_NOTHROW(as_eigen(strided));
  // Eigen strides are non-negative.
  REQUIRE_THROWS_MATCHES(as_eigen(TensorView<float>(buf.data() + 8, {3, 4}, {-4, 1})), ShapeError,
                         MessageContains({"as_eigen", "non-negative", "strides [-4, 1]"}));
}

TEST_CASE("Eigen maps refuse device views and ranks other than 2", "[adapters]") {
  std::vector<float> buf(24);
  const TensorView<float> device(buf.data(), {4, 6}, Device::cuda(0));
  REQUIRE_THROWS_MATCHES(as_eigen(device), ShapeError, MessageContains({"as_eigen", "host", "cuda"}));
  REQUIRE_THROWS_MATCHES(as_eigen_row_major(device), ShapeError,
                         MessageContains({"as_eigen_row_major", "host", "cuda"}));
  REQUIRE_THROWS_MATCHES(as_eigen_col_major(device.transposed()), ShapeError,
                         MessageContains({"as_eigen_col_major", "host", "cuda"}));

  const TensorView<float> rank1(buf.data(), {24});
  const TensorView<float> rank3(buf.data(), {2, 3, 4});
  REQUIRE_THROWS_MATCHES(as_eigen(rank1), ShapeError, MessageContains({"as_eigen", "rank-2", "f32[24]"}));
  REQUIRE_THROWS_MATCHES(as_eigen_row_major(rank3), ShapeError,
                         MessageContains({"as_eigen_row_major", "rank-2", "f32[2, 3, 4]"}));
  REQUIRE_THROWS_MATCHES(as_eigen_col_major(rank1), ShapeError,
                         MessageContains({"as_eigen_col_major", "rank-2", "f32[24]"}));
  REQUIRE_THROWS_AS(as_eigen(TensorView<float>()), ShapeError);
}
