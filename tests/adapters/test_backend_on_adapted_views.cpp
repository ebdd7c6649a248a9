// Backend ops run directly on Eigen and xtensor memory through view_of: column-major inputs, strided outputs,
// strided per-row statistics. The expected values are the same ops on dense row-major copies; outputs must land
// in the foreign memory and nowhere else.

#include <catch2/catch.hpp>

#include <cstdint>
#include <type_traits>

#include <froster/adapters/eigen.hpp>
#include <froster/backends/reference.hpp>
#include <froster/core/random.hpp>
#include <froster/xtensor.hpp>
#include <xtensor/xview.hpp>

#include "support/tolerance.hpp"

using namespace froster;

namespace {

using RowMatrixd = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

template <class T>
void fill_normal(TensorView<T> v, std::uint64_t seed) {
  NormalRng rng(seed);
  for (index_t i = 0; i < v.rows(); ++i)
    for (index_t j = 0; j < v.cols(); ++j) v(i, j) = T(rng.normal());
}

/// A dense row-major copy, element by element (independent of any backend's copy).
template <class T>
Tensor<std::remove_const_t<T>> dense_copy(TensorView<T> v) {
  auto t = Tensor<std::remove_const_t<T>>::host(v.extents());
  auto d = t.view();
  if (v.rank() == 1)
    for (index_t i = 0; i < v.extent(0); ++i) d(i) = v(i);
  else
    for (index_t i = 0; i < v.rows(); ++i)
      for (index_t j = 0; j < v.cols(); ++j) d(i, j) = v(i, j);
  return t;
}

constexpr double sentinel = -12345.0;

}  // namespace

TEST_CASE("ReferenceBackend gemm on Eigen and xtensor memory matches dense copies", "[adapters]") {
  const ReferenceBackend ref;
  const index_t m = 5, k = 7, n = 3;

  Eigen::MatrixXd a(m, k);  // column-major A
  fill_normal(view_of(a), 1);
  RowMatrixd bt(n, k);  // B stored transposed, row-major: op(B) = B^T^T through Transpose::yes
  fill_normal(view_of(bt), 2);
  xt::xtensor<double, 2> out({std::size_t(m), std::size_t(2 * n)});
  out.fill(sentinel);
  auto c_cols = xt::view(out, xt::all(), xt::range(0, 2 * n, 2));  // C: every other column of `out`
  const TensorView<double> c = view_of(c_cols);
  fill_normal(c, 3);  // beta != 0 reads C too
  REQUIRE_FALSE(view_of(a).is_contiguous());
  REQUIRE(c.strides() == Dims{2 * n, 2});

  auto a_d = dense_copy(view_of(a));
  auto bt_d = dense_copy(view_of(bt));
  auto c_d = dense_copy(c);
  ref.gemm<double>(1.5, a_d.cview(), Transpose::no, bt_d.cview(), Transpose::yes, 0.5, c_d.view());

  ref.gemm<double>(1.5, view_of(a), Transpose::no, view_of(bt), Transpose::yes, 0.5, c);
  FROSTER_REQUIRE_CLOSE(c, c_d.cview(), test::tol::same_math_fp64);
  // The skipped columns of `out` were not written.
  for (std::size_t i = 0; i < std::size_t(m); ++i)
    for (std::size_t j = 1; j < std::size_t(2 * n); j += 2) REQUIRE(out(i, j) == sentinel);

  // The same product with A^T taken from a transposed (row-major) Eigen view, into an Eigen block.
  RowMatrixd at = a.transpose();
  Eigen::MatrixXd big = Eigen::MatrixXd::Constant(m + 2, n + 1, sentinel);
  auto block = big.block(1, 1, m, n);
  ref.gemm<double>(1.5, view_of(at), Transpose::yes, view_of(bt), Transpose::yes, 0.0, view_of(block));
  auto c0_d = Tensor<double>::host({m, n});
  ref.gemm<double>(1.5, a_d.cview(), Transpose::no, bt_d.cview(), Transpose::yes, 0.0, c0_d.view());
  FROSTER_REQUIRE_CLOSE(view_of(block), c0_d.cview(), test::tol::same_math_fp64);
  REQUIRE(big.row(0).isConstant(sentinel));
  REQUIRE(big.col(0).isConstant(sentinel));
  REQUIRE(big.row(m + 1).isConstant(sentinel));
}

TEST_CASE("ReferenceBackend l2_normalize_forward on Eigen and xtensor memory matches dense copies", "[adapters]") {
  const ReferenceBackend ref;
  const index_t rows = 4, cols = 6;

  Eigen::MatrixXd x(rows, cols);  // column-major input
  fill_normal(view_of(x), 9);
  xt::xtensor<double, 2> y_store({std::size_t(rows), std::size_t(2 * cols)});
  y_store.fill(sentinel);
  const TensorView<double> y = view_of(xt::view(y_store, xt::all(), xt::range(1, 2 * cols, 2)));
  xt::xtensor<double, 2> stats({std::size_t(rows), 3});
  stats.fill(sentinel);
  const TensorView<double> norms = view_of(xt::view(stats, xt::all(), 1));  // a column: stride 3
  REQUIRE(y.strides() == Dims{2 * cols, 2});
  REQUIRE(norms.strides() == Dims{3});

  ref.l2_normalize_forward<double>(view_of(x), y, norms);

  auto x_d = dense_copy(view_of(x));
  auto y_d = Tensor<double>::host({rows, cols});
  auto n_d = Tensor<double>::host({rows});
  ref.l2_normalize_forward<double>(x_d.cview(), y_d.view(), n_d.view());
  FROSTER_REQUIRE_CLOSE(y, y_d.cview(), test::tol::same_math_fp64);
  FROSTER_REQUIRE_CLOSE(norms, n_d.cview(), test::tol::same_math_fp64);
  // And the closed form: unit rows.
  for (index_t i = 0; i < rows; ++i) {
    double ss = 0;
    for (index_t j = 0; j < cols; ++j) ss += y(i, j) * y(i, j);
    FROSTER_REQUIRE_CLOSE(ss, 1.0, test::tol::same_math_fp64);
  }
  for (std::size_t i = 0; i < std::size_t(rows); ++i) {
    for (std::size_t j = 0; j < std::size_t(2 * cols); j += 2) REQUIRE(y_store(i, j) == sentinel);
    REQUIRE(stats(i, 0) == sentinel);
    REQUIRE(stats(i, 2) == sentinel);
  }

  // as_xtensor sees the result in place: the same memory, read through xtensor.
  auto y_x = as_xtensor<2>(ConstView<double>(y));
  REQUIRE(&y_x(2, 3) == &y_store(2, 7));
}
