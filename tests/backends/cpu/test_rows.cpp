// CPU backend row kernels (copy, fill, L2 normalisation, cosine, LayerNorm, softmax, log-softmax) against the
// reference backend, at the ISA level this run was given (FROSTER_ISA, see support/catch_main_isa.cpp): column
// counts around every vector width and CLIP's widths, row counts that take both the serial and the threaded path,
// strided layouts (column-major runs the reference loops and must agree too), NaN/Inf rows, in-place calls and
// thread-count independence.

#include <catch2/catch.hpp>
#include <froster/cpu.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "support/layouts.hpp"
#include "support/random.hpp"
#include "support/tolerance.hpp"

using namespace froster;
using froster::test::LaidOut;
using froster::test::Layout;
using froster::test::random_tensor;
namespace tol = froster::test::tol;

namespace {

const ReferenceBackend reference_backend;
const index_t col_sizes[] = {1, 3, 7, 8, 9, 16, 17, 31, 197, 768, 1576};
// 37 rows of the wide sizes cross the serial threshold (rows run on the pool) and span two LayerNorm row blocks.
const index_t row_sizes[] = {1, 5, 37};
const float quiet_nan = std::numeric_limits<float>::quiet_NaN();
const float inf = std::numeric_limits<float>::infinity();

/// A rank-1 view of n values with element stride `stride` (per-row statistics and LayerNorm parameters); the values
/// depend on the seed only, not on the stride.
struct Vec {
  Tensor<float> storage;
  TensorView<float> view;
  Vec(index_t n, std::uint64_t seed, index_t stride = 1, double scale = 1.0)
      : storage(Tensor<float>::host_zeros({std::max<index_t>(n * stride, 1)})), view(storage.data(), {n}, {stride}) {
    NormalRng rng(seed);
    for (index_t i = 0; i < n; ++i) view(i) = float(scale * rng.normal());
  }
  ConstView<float> c() const { return view; }
};

/// Same values in a fresh buffer of the same layout (both backends write their own copy).
LaidOut<float> twin(const LaidOut<float>& m, Layout layout) {
  LaidOut<float> t(m.view.rows(), m.view.cols(), layout, 0);
  reference_backend.copy(ConstView<float>(m.view), t.view);
  return t;
}

ConstView<float> c(const LaidOut<float>& m) { return m.view; }

/// max over finite elements of |f(i, j)|: the size of the terms a result was formed from, where they cancel
/// (tol's term_scale).
template <class F>
double max_term(index_t rows, index_t cols, F&& f) {
  double m = 0;
  for (index_t i = 0; i < rows; ++i)
    for (index_t j = 0; j < cols; ++j)
      if (const double v = std::abs(double(f(i, j))); std::isfinite(v)) m = std::max(m, v);
  return m;
}

/// LayerNorm's dx = rstd (g - mean(g) - xhat mean(g xhat)) cancels terms of size rstd |dy gamma|.
double layer_norm_dx_terms(ConstView<float> dy, ConstView<float> gamma, ConstView<float> rstd) {
  return max_term(dy.rows(), dy.cols(), [&](index_t i, index_t j) { return rstd(i) * dy(i, j) * gamma(j); });
}

const Layout all_layouts[] = {Layout::row_major, Layout::padded_rows, Layout::reversed_rows, Layout::column_major};

/// NaN where `want` has NaN, the same infinity where it has one (the tolerance rule cannot compare those), and the
/// finite rest within `tolerance`.
void require_same_nonfinite_then_close(TensorView<float> got, TensorView<float> want, test::Tolerance tolerance) {
  for (index_t i = 0; i < want.rows(); ++i)
    for (index_t j = 0; j < want.cols(); ++j) {
      CAPTURE(i, j, got(i, j), want(i, j));
      if (std::isnan(want(i, j))) REQUIRE(std::isnan(got(i, j)));
      if (std::isinf(want(i, j))) REQUIRE(got(i, j) == want(i, j));
      if (!std::isfinite(want(i, j))) got(i, j) = want(i, j) = 0.0f;
    }
  FROSTER_REQUIRE_CLOSE(got, want, tolerance);
}

}  // namespace

TEST_CASE("copy and fill match the reference across layouts, including mixed ones", "[cpu][rows]") {
  const CpuBackend cpu_backend({.threads = 2});
  INFO("isa " << cpu::to_string(cpu_backend.isa()));
  const Layout from = GENERATE(Layout::row_major, Layout::padded_rows, Layout::reversed_rows, Layout::column_major);
  for (Layout to : all_layouts)
    for (index_t cols : col_sizes)
      for (index_t rows : {index_t(1), index_t(5), index_t(131)}) {
        CAPTURE(rows, cols, to_string(from), to_string(to));
        LaidOut<float> src(rows, cols, from, 1 + std::uint64_t(cols));
        LaidOut<float> got(rows, cols, to, 2), want(rows, cols, to, 2);
        cpu_backend.copy(c(src), got.view);
        reference_backend.copy(c(src), want.view);
        index_t copy_mismatches = 0, fill_mismatches = 0;
        for (index_t i = 0; i < rows; ++i)
          for (index_t j = 0; j < cols; ++j) copy_mismatches += got.view(i, j) != want.view(i, j);
        REQUIRE(copy_mismatches == 0);
        cpu_backend.fill(got.view, -1.5f);
        for (index_t i = 0; i < rows; ++i)
          for (index_t j = 0; j < cols; ++j) fill_mismatches += got.view(i, j) != -1.5f;
        REQUIRE(fill_mismatches == 0);
      }
}

TEST_CASE("copy onto itself is a no-op and overlapping views follow the reference order", "[cpu][rows]") {
  const CpuBackend cpu_backend({.threads = 2});
  LaidOut<float> m(6, 40, Layout::row_major, 3);
  auto before = twin(m, Layout::row_major);
  cpu_backend.copy(c(m), m.view);
  FROSTER_REQUIRE_CLOSE(m.view, before.view, tol::same_math_fp64);
  // Rows [1, 6) onto rows [0, 5): the reference copies forward row by row.
  auto got = twin(m, Layout::row_major), want = twin(m, Layout::row_major);
  cpu_backend.copy(ConstView<float>(got.view.slice_rows(1, 5)), got.view.slice_rows(0, 5));
  reference_backend.copy(ConstView<float>(want.view.slice_rows(1, 5)), want.view.slice_rows(0, 5));
  FROSTER_REQUIRE_CLOSE(got.view, want.view, tol::same_math_fp64);
}

TEST_CASE("l2_normalize forward and backward match the reference, a zero row gives NaN", "[cpu][rows]") {
  const CpuBackend cpu_backend({.threads = 2});
  INFO("isa " << cpu::to_string(cpu_backend.isa()));
  const Layout layout = GENERATE(Layout::row_major, Layout::padded_rows, Layout::reversed_rows, Layout::column_major);
  for (index_t cols : col_sizes)
    for (index_t rows : row_sizes) {
      CAPTURE(rows, cols, to_string(layout));
      LaidOut<float> x(rows, cols, layout, 10 + std::uint64_t(cols), 2.0), dy(rows, cols, layout, 11);
      if (rows > 1)
        for (index_t j = 0; j < cols; ++j) x.view(1, j) = 0.0f;
      LaidOut<float> y(rows, cols, layout, 12), want_y(rows, cols, layout, 12);
      Vec norms(rows, 13, 2), want_norms(rows, 13);
      cpu_backend.l2_normalize_forward(c(x), y.view, norms.view);
      reference_backend.l2_normalize_forward(c(x), want_y.view, want_norms.view);
      FROSTER_REQUIRE_CLOSE(y.view, want_y.view, tol::cross_backend_fp32(cols));
      FROSTER_REQUIRE_CLOSE(norms.view, want_norms.view, tol::cross_backend_fp32(cols));
      if (rows > 1) REQUIRE(std::isnan(y.view(1, 0)));

      LaidOut<float> dx(rows, cols, layout, 14), want_dx(rows, cols, layout, 14);
      cpu_backend.l2_normalize_backward(c(want_y), want_norms.c(), c(dy), dx.view);
      reference_backend.l2_normalize_backward(c(want_y), want_norms.c(), c(dy), want_dx.view);
      FROSTER_REQUIRE_CLOSE(dx.view, want_dx.view, tol::cross_backend_fp32(cols));
    }
}

TEST_CASE("cosine forward and backward match the reference, zero rows and the eps clamp included", "[cpu][rows]") {
  const CpuBackend cpu_backend({.threads = 2});
  INFO("isa " << cpu::to_string(cpu_backend.isa()));
  const Layout layout = GENERATE(Layout::row_major, Layout::padded_rows, Layout::reversed_rows, Layout::column_major);
  const float eps = 1e-8f;
  for (index_t cols : col_sizes)
    for (index_t rows : row_sizes) {
      CAPTURE(rows, cols, to_string(layout));
      LaidOut<float> a(rows, cols, layout, 20 + std::uint64_t(cols)), b(rows, cols, layout, 21, 0.5);
      if (rows > 1)
        for (index_t j = 0; j < cols; ++j) a.view(1, j) = 0.0f;  // ||a|| = 0: clamped to eps, no self term
      if (rows > 2)
        for (index_t j = 0; j < cols; ++j) b.view(2, j) = 1e-10f;  // ||b|| < eps: clamped
      Vec cos(rows, 22), na(rows, 23, 3), nb(rows, 24);
      Vec want_cos(rows, 22), want_na(rows, 23), want_nb(rows, 24);
      cpu_backend.cosine_forward(c(a), c(b), eps, cos.view, na.view, nb.view);
      reference_backend.cosine_forward(c(a), c(b), eps, want_cos.view, want_na.view, want_nb.view);
      FROSTER_REQUIRE_CLOSE(cos.view, want_cos.view, tol::cross_backend_fp32(cols));
      FROSTER_REQUIRE_CLOSE(na.view, want_na.view, tol::cross_backend_fp32(cols));
      FROSTER_REQUIRE_CLOSE(nb.view, want_nb.view, tol::cross_backend_fp32(cols));

      const float scale = 0.25f;
      LaidOut<float> da(rows, cols, layout, 25), db(rows, cols, layout, 26);
      LaidOut<float> want_da(rows, cols, layout, 25), want_db(rows, cols, layout, 26);
      cpu_backend.cosine_backward(c(a), c(b), want_cos.c(), want_na.c(), want_nb.c(), eps, scale, da.view, db.view);
      reference_backend.cosine_backward(c(a), c(b), want_cos.c(), want_na.c(), want_nb.c(), eps, scale,
                                        want_da.view, want_db.view);
      // The two terms of d cos / d a are each at most |scale| / max(||a||, eps) and cancel (exactly, for one column).
      const double da_terms = max_term(rows, 1, [&](index_t i, index_t) { return scale / std::max(want_na.view(i), eps); });
      const double db_terms = max_term(rows, 1, [&](index_t i, index_t) { return scale / std::max(want_nb.view(i), eps); });
      const auto da_tol = tol::cross_backend_fp32(cols).with_term_scale(da_terms);
      const auto db_tol = tol::cross_backend_fp32(cols).with_term_scale(db_terms);
      FROSTER_REQUIRE_CLOSE(da.view, want_da.view, da_tol);
      FROSTER_REQUIRE_CLOSE(db.view, want_db.view, db_tol);

      // One gradient at a time: the null output is skipped, the other still written.
      LaidOut<float> only_db(rows, cols, layout, 27);
      cpu_backend.cosine_backward(c(a), c(b), want_cos.c(), want_na.c(), want_nb.c(), eps, scale, TensorView<float>{},
                                  only_db.view);
      FROSTER_REQUIRE_CLOSE(only_db.view, want_db.view, db_tol);
      LaidOut<float> only_da(rows, cols, layout, 28);
      cpu_backend.cosine_backward(c(a), c(b), want_cos.c(), want_na.c(), want_nb.c(), eps, scale, only_da.view,
                                  TensorView<float>{});
      FROSTER_REQUIRE_CLOSE(only_da.view, want_da.view, da_tol);
    }
}

TEST_CASE("layer_norm forward and backward match the reference, dgamma and dbeta accumulate", "[cpu][rows]") {
  const CpuBackend cpu_backend({.threads = 2});
  INFO("isa " << cpu::to_string(cpu_backend.isa()));
  const Layout layout = GENERATE(Layout::row_major, Layout::padded_rows, Layout::reversed_rows, Layout::column_major);
  // An offset mean stresses the variance: E[x^2] - E[x]^2 would lose most digits at 30 +- 1.
  const float offset = GENERATE(0.0f, 30.0f);
  const float eps = 1e-5f;
  for (index_t cols : col_sizes)
    for (index_t rows : row_sizes) {
      CAPTURE(rows, cols, to_string(layout), offset);
      LaidOut<float> x(rows, cols, layout, 30 + std::uint64_t(cols)), dy(rows, cols, layout, 31);
      for (index_t i = 0; i < rows; ++i)
        for (index_t j = 0; j < cols; ++j) x.view(i, j) += offset;
      Vec gamma(cols, 32, 1, 0.5), beta(cols, 33);
      LaidOut<float> y(rows, cols, layout, 34), want_y(rows, cols, layout, 34);
      Vec mean(rows, 35, 2), rstd(rows, 36), want_mean(rows, 35), want_rstd(rows, 36);
      cpu_backend.layer_norm_forward(c(x), gamma.c(), beta.c(), eps, y.view, mean.view, rstd.view);
      reference_backend.layer_norm_forward(c(x), gamma.c(), beta.c(), eps, want_y.view, want_mean.view,
                                           want_rstd.view);
      FROSTER_REQUIRE_CLOSE(y.view, want_y.view, tol::cross_backend_fp32(cols));
      FROSTER_REQUIRE_CLOSE(mean.view, want_mean.view, tol::cross_backend_fp32(cols));
      FROSTER_REQUIRE_CLOSE(rstd.view, want_rstd.view, tol::cross_backend_fp32(cols));

      // dgamma/dbeta start non-zero: the op adds to them. A strided dgamma takes the SIMD path too.
      LaidOut<float> dx(rows, cols, layout, 37), want_dx(rows, cols, layout, 37);
      Vec dgamma(cols, 38, 2), dbeta(cols, 39), want_dgamma(cols, 38), want_dbeta(cols, 39);
      cpu_backend.layer_norm_backward(c(x), gamma.c(), want_mean.c(), want_rstd.c(), c(dy), dx.view, dgamma.view,
                                      dbeta.view);
      reference_backend.layer_norm_backward(c(x), gamma.c(), want_mean.c(), want_rstd.c(), c(dy), want_dx.view,
                                            want_dgamma.view, want_dbeta.view);
      FROSTER_REQUIRE_CLOSE(dx.view, want_dx.view,
                            tol::cross_backend_fp32(cols).with_term_scale(
                                layer_norm_dx_terms(c(dy), gamma.c(), want_rstd.c())));
      FROSTER_REQUIRE_CLOSE(dgamma.view, want_dgamma.view, tol::cross_backend_fp32(rows));
      FROSTER_REQUIRE_CLOSE(dbeta.view, want_dbeta.view, tol::cross_backend_fp32(rows));
    }
}

TEST_CASE("layer_norm_forward stays accurate when the first element is an outlier", "[cpu][rows]") {
  // The kernel's one-pass statistics are taken around x[0]; far from the mean (here by 1e4 standard deviations
  // or a 1e15 spike) they would cancel, and the second pass around the mean must take over.
  const CpuBackend cpu_backend({.threads = 2});
  INFO("isa " << cpu::to_string(cpu_backend.isa()));
  for (const float first : {1e4f, -3e3f, 1e15f})
    for (index_t cols : {index_t(2), index_t(9), index_t(197), index_t(768)}) {
      CAPTURE(first, cols);
      const index_t rows = 3;
      LaidOut<float> x(rows, cols, Layout::row_major, 95);
      for (index_t i = 0; i < rows; ++i) x.view(i, 0) = first * float(i + 1);
      Vec gamma(cols, 96), beta(cols, 97);
      LaidOut<float> y(rows, cols, Layout::row_major, 98), want_y(rows, cols, Layout::row_major, 98);
      Vec mean(rows, 99), rstd(rows, 100), want_mean(rows, 99), want_rstd(rows, 100);
      cpu_backend.layer_norm_forward(c(x), gamma.c(), beta.c(), 1e-5f, y.view, mean.view, rstd.view);
      reference_backend.layer_norm_forward(c(x), gamma.c(), beta.c(), 1e-5f, want_y.view, want_mean.view,
                                           want_rstd.view);
      FROSTER_REQUIRE_CLOSE(y.view, want_y.view, tol::cross_backend_fp32(cols));
      FROSTER_REQUIRE_CLOSE(mean.view, want_mean.view, tol::cross_backend_fp32(cols));
      FROSTER_REQUIRE_CLOSE(rstd.view, want_rstd.view, tol::cross_backend_fp32(cols));
    }
}

TEST_CASE("layer_norm with strided gamma and beta falls back and still matches", "[cpu][rows]") {
  const CpuBackend cpu_backend({.threads = 2});
  const index_t rows = 9, cols = 33;
  LaidOut<float> x(rows, cols, Layout::row_major, 40), dy(rows, cols, Layout::row_major, 41);
  Vec gamma(cols, 42, 3), beta(cols, 43, 2);
  LaidOut<float> y(rows, cols, Layout::row_major, 44), want_y(rows, cols, Layout::row_major, 44);
  Vec mean(rows, 45), rstd(rows, 46), want_mean(rows, 45), want_rstd(rows, 46);
  cpu_backend.layer_norm_forward(c(x), gamma.c(), beta.c(), 1e-5f, y.view, mean.view, rstd.view);
  reference_backend.layer_norm_forward(c(x), gamma.c(), beta.c(), 1e-5f, want_y.view, want_mean.view, want_rstd.view);
  FROSTER_REQUIRE_CLOSE(y.view, want_y.view, tol::cross_backend_fp32(cols));
  LaidOut<float> dx(rows, cols, Layout::row_major, 47), want_dx(rows, cols, Layout::row_major, 47);
  Vec dgamma(cols, 48), dbeta(cols, 49), want_dgamma(cols, 48), want_dbeta(cols, 49);
  cpu_backend.layer_norm_backward(c(x), gamma.c(), mean.c(), rstd.c(), c(dy), dx.view, dgamma.view, dbeta.view);
  reference_backend.layer_norm_backward(c(x), gamma.c(), mean.c(), rstd.c(), c(dy), want_dx.view, want_dgamma.view,
                                        want_dbeta.view);
  FROSTER_REQUIRE_CLOSE(dx.view, want_dx.view,
                        tol::cross_backend_fp32(cols).with_term_scale(layer_norm_dx_terms(c(dy), gamma.c(), rstd.c())));
  FROSTER_REQUIRE_CLOSE(dgamma.view, want_dgamma.view, tol::cross_backend_fp32(rows));
  FROSTER_REQUIRE_CLOSE(dbeta.view, want_dbeta.view, tol::cross_backend_fp32(rows));
}

TEST_CASE("layer_norm_backward's dx, dgamma and dbeta are bitwise independent of the thread count", "[cpu][rows]") {
  const index_t rows = 301, cols = 197;  // 10 row blocks, a partial last one; rows * cols above the serial threshold
  LaidOut<float> x(rows, cols, Layout::row_major, 50), dy(rows, cols, Layout::row_major, 51);
  Vec gamma(cols, 52), mean(rows, 53, 1, 0.1), rstd(rows, 54);
  for (index_t i = 0; i < rows; ++i) rstd.view(i) = 1.0f + std::abs(rstd.view(i));
  std::vector<std::vector<float>> results;
  for (int threads : {1, 2, 3, 5}) {
    CAPTURE(threads);
    LaidOut<float> dx(rows, cols, Layout::row_major, 55);
    Vec dgamma(cols, 56), dbeta(cols, 57);
    CpuBackend({.threads = threads})
        .layer_norm_backward(c(x), gamma.c(), mean.c(), rstd.c(), c(dy), dx.view, dgamma.view, dbeta.view);
    std::vector<float> all(dx.storage.data(), dx.storage.data() + rows * cols);
    all.insert(all.end(), dgamma.storage.data(), dgamma.storage.data() + cols);
    all.insert(all.end(), dbeta.storage.data(), dbeta.storage.data() + cols);
    if (!results.empty()) REQUIRE(std::memcmp(all.data(), results[0].data(), all.size() * sizeof(float)) == 0);
    results.push_back(std::move(all));
  }
}

TEST_CASE("softmax forward (causal or not) and backward match the reference", "[cpu][rows]") {
  const CpuBackend cpu_backend({.threads = 2});
  INFO("isa " << cpu::to_string(cpu_backend.isa()));
  const Layout layout = GENERATE(Layout::row_major, Layout::padded_rows, Layout::reversed_rows, Layout::column_major);
  const bool causal = GENERATE(false, true);
  const float scale = GENERATE(1.0f, 0.125f, -2.0f);
  for (index_t cols : col_sizes)
    for (index_t rows : row_sizes) {
      CAPTURE(rows, cols, to_string(layout), causal, scale);
      LaidOut<float> x(rows, cols, layout, 60 + std::uint64_t(cols), 3.0), dy(rows, cols, layout, 61);
      LaidOut<float> y(rows, cols, layout, 62), want_y(rows, cols, layout, 62);
      cpu_backend.softmax_forward(c(x), scale, causal, y.view);
      reference_backend.softmax_forward(c(x), scale, causal, want_y.view);
      FROSTER_REQUIRE_CLOSE(y.view, want_y.view, tol::cross_backend_fp32(cols));
      if (causal && cols > 1) REQUIRE(y.view(0, 1) == 0.0f);  // masked entries are exactly zero

      LaidOut<float> dx(rows, cols, layout, 63), want_dx(rows, cols, layout, 63);
      cpu_backend.softmax_backward(c(want_y), c(dy), scale, dx.view);
      reference_backend.softmax_backward(c(want_y), c(dy), scale, want_dx.view);
      // dx = scale y (dy - <y, dy>) cancels when one entry dominates (y ~ 1, dy ~ <y, dy>).
      std::vector<double> dot(std::size_t(rows), 0.0);
      for (index_t i = 0; i < rows; ++i)
        for (index_t j = 0; j < cols; ++j) dot[std::size_t(i)] += double(want_y.view(i, j)) * double(dy.view(i, j));
      const double terms = max_term(rows, cols, [&](index_t i, index_t j) {
        return scale * double(want_y.view(i, j)) * (std::abs(dy.view(i, j)) + std::abs(dot[std::size_t(i)]));
      });
      FROSTER_REQUIRE_CLOSE(dx.view, want_dx.view, tol::cross_backend_fp32(cols).with_term_scale(terms));
    }
}

TEST_CASE("softmax_forward is bitwise independent of the thread count, so of how rows are grouped", "[cpu][rows]") {
  // The kernel runs four rows at a time in lockstep and the rest singly, within each thread's blocks of rows: the
  // thread count moves the group boundaries, and a one-row call runs its row alone. Rows whose maximum is huge or not
  // finite leave their group for the one-row kernel; the rows beside them must not change either.
  for (const index_t cols : {index_t(7), index_t(77), index_t(197)})
    for (const bool causal : {false, true})
      for (const float scale : {0.125f, -0.5f}) {
        const index_t rows = cols == 7 ? 2500 : 301;  // 7 columns: enough rows to cross the serial threshold
        CAPTURE(cols, causal, scale);
        LaidOut<float> x(rows, cols, Layout::row_major, 97, 3.0);
        x.view(9, 0) = 1e12f;   // huge: the exact-shift path, in the middle of a group of four
        x.view(42, 0) = quiet_nan;
        x.view(43, 0) = inf;    // an infinite maximum (the minimum, for the negative scale, is finite)
        x.view(44, 0) = -inf;
        x.view(46, 0) = -1e12f;
        std::vector<float> first;
        for (int threads : {1, 2, 3, 5}) {
          CAPTURE(threads);
          LaidOut<float> y(rows, cols, Layout::row_major, 98);
          CpuBackend({.threads = threads}).softmax_forward(c(x), scale, causal, y.view);
          const std::vector<float> all(y.storage.data(), y.storage.data() + rows * cols);
          if (first.empty()) first = all;
          else REQUIRE(std::memcmp(all.data(), first.data(), all.size() * sizeof(float)) == 0);
        }
        // Each row alone (a one-row view keeps the causal mask's first row) against the same row of the whole call:
        // only for the first rows of the 77-periodic mask, where a row alone shows as many columns.
        const CpuBackend one_thread({.threads = 1});
        for (index_t i = 0; i < std::min<index_t>(rows, 64); ++i) {
          if (causal && i % cols != 0) continue;
          CAPTURE(i);
          std::vector<float> alone(static_cast<std::size_t>(cols));
          one_thread.softmax_forward(ConstView<float>(&x.view(i, 0), {1, cols}, {cols, 1}), scale, causal,
                                     TensorView<float>(alone.data(), {1, cols}, {cols, 1}));
          REQUIRE(std::memcmp(alone.data(), &first[std::size_t(i * cols)], std::size_t(cols) * sizeof(float)) == 0);
        }
      }
}

TEST_CASE("log_softmax forward matches the reference", "[cpu][rows]") {
  const CpuBackend cpu_backend({.threads = 2});
  INFO("isa " << cpu::to_string(cpu_backend.isa()));
  const Layout layout = GENERATE(Layout::row_major, Layout::padded_rows, Layout::reversed_rows, Layout::column_major);
  const float scale = GENERATE(1.0f, 0.5f, 100.0f);  // 1/T for T = 1, 2 and CLIP's logit scale
  for (index_t cols : col_sizes)
    for (index_t rows : row_sizes) {
      CAPTURE(rows, cols, to_string(layout), scale);
      LaidOut<float> x(rows, cols, layout, 70 + std::uint64_t(cols), 3.0);
      LaidOut<float> y(rows, cols, layout, 71), want_y(rows, cols, layout, 71);
      cpu_backend.log_softmax_forward(c(x), scale, y.view);
      reference_backend.log_softmax_forward(c(x), scale, want_y.view);
      // y = scale x - logsumexp(scale x): terms of size |scale x| cancel (exactly, for one column).
      const double terms = max_term(rows, cols, [&](index_t i, index_t j) { return scale * x.view(i, j); });
      FROSTER_REQUIRE_CLOSE(y.view, want_y.view, tol::cross_backend_fp32(cols).with_term_scale(terms));
    }
}

TEST_CASE("softmax of huge finite scores matches the reference instead of overflowing", "[cpu][rows]") {
  // scale x - max as one FMA keeps the maximum's rounding residual, up to half an ulp of scale x either side of
  // 0: beyond |scale x| ~ 2^30 it overflows exp or underflows the maximum's own term (the rows came out NaN or
  // uniform), unless the kernel shifts by the rounded product there.
  const CpuBackend cpu_backend({.threads = 2});
  INFO("isa " << cpu::to_string(cpu_backend.isa()));
  for (index_t cols : {index_t(1), index_t(7), index_t(17), index_t(197)}) {
    CAPTURE(cols);
    const index_t rows = 3;
    LaidOut<float> x(rows, cols, Layout::row_major, 95);
    x.view(0, 0) = 1e12f;                          // a clear maximum
    x.view(1, cols / 2) = 1e12f;                   // two near-equal maxima: fp32 scores cannot tell them apart
    if (cols > 1) x.view(1, 0) = 1e12f;
    x.view(2, cols - 1) = -3e11f;                  // huge and negative: the other columns hold the maximum
    for (const float scale : {0.37f, 1.0f, 100.0f}) {
      CAPTURE(scale);
      LaidOut<float> y(rows, cols, Layout::row_major, 96), want(rows, cols, Layout::row_major, 96);
      cpu_backend.softmax_forward(c(x), scale, false, y.view);
      reference_backend.softmax_forward(c(x), scale, false, want.view);
      for (index_t i = 0; i < rows; ++i)
        for (index_t j = 0; j < cols; ++j) REQUIRE(std::isfinite(y.view(i, j)));
      FROSTER_REQUIRE_CLOSE(y.view, want.view, tol::cross_backend_fp32(cols));
    }
  }
}

TEST_CASE("softmax with a scale near the float range matches the reference", "[cpu][rows]") {
  // scale log2(e) overflows fp32 above ~2.4e38 although scale x stays small for tiny x: the AVX-512 exponential
  // folds that product into its argument, so such rows must take the one-row kernel.
  const CpuBackend cpu_backend({.threads = 2});
  INFO("isa " << cpu::to_string(cpu_backend.isa()));
  for (const float scale : {3e38f, -3e38f})
    for (index_t cols : {index_t(7), index_t(197)}) {
      CAPTURE(scale, cols);
      const index_t rows = 5;
      LaidOut<float> x(rows, cols, Layout::row_major, 93, 3e-39);  // scale x of a few units
      LaidOut<float> y(rows, cols, Layout::row_major, 94), want(rows, cols, Layout::row_major, 94);
      cpu_backend.softmax_forward(c(x), scale, false, y.view);
      reference_backend.softmax_forward(c(x), scale, false, want.view);
      FROSTER_REQUIRE_CLOSE(y.view, want.view, tol::cross_backend_fp32(cols));
    }
}

TEST_CASE("NaN and Inf propagate as in the reference, without a crash", "[cpu][rows]") {
  const CpuBackend cpu_backend({.threads = 2});
  INFO("isa " << cpu::to_string(cpu_backend.isa()));
  for (const float bad : {quiet_nan, inf, -inf})
    for (index_t cols : {index_t(1), index_t(7), index_t(17), index_t(197)}) {
      const index_t rows = 4;
      INFO("bad value " << (std::isnan(bad) ? "NaN" : bad > 0 ? "+Inf" : "-Inf") << ", cols " << cols);
      // The bad value at the first, a middle and the last column of rows 0..2 (in the vector body and the tail);
      // row 3 stays finite and must stay unaffected.
      LaidOut<float> x(rows, cols, Layout::row_major, 80 + std::uint64_t(cols));
      LaidOut<float> dy(rows, cols, Layout::row_major, 81);
      x.view(0, 0) = bad;
      x.view(1, cols / 2) = bad;
      x.view(2, cols - 1) = bad;
      const auto same = [&](const char* op, const auto& run, double term_scale = 0) {
        INFO(op);
        LaidOut<float> got(rows, cols, Layout::row_major, 82), want(rows, cols, Layout::row_major, 82);
        run(cpu_backend, got.view);
        run(reference_backend, want.view);
        for (index_t j = 0; j < cols; ++j) REQUIRE(std::isfinite(got.view(3, j)));
        require_same_nonfinite_then_close(got.view, want.view,
                                          tol::cross_backend_fp32(cols).with_term_scale(term_scale));
      };
      // Causal: a bad value in a masked column must not reach its row.
      same("softmax", [&](const auto& be, TensorView<float> out) { be.softmax_forward(c(x), 1.0f, false, out); });
      same("causal softmax",
           [&](const auto& be, TensorView<float> out) { be.softmax_forward(c(x), 1.0f, true, out); });
      same("log_softmax", [&](const auto& be, TensorView<float> out) { be.log_softmax_forward(c(x), 0.5f, out); },
           max_term(rows, cols, [&](index_t i, index_t j) { return 0.5f * x.view(i, j); }));
      same("l2_normalize", [&](const auto& be, TensorView<float> out) {
        Vec norms(rows, 83);
        be.l2_normalize_forward(c(x), out, norms.view);
      });
      Vec gamma(cols, 84), beta(cols, 85), mean(rows, 86), rstd(rows, 87);
      same("layer_norm_forward", [&](const auto& be, TensorView<float> out) {
        Vec m(rows, 86), r(rows, 87);
        be.layer_norm_forward(c(x), gamma.c(), beta.c(), 1e-5f, out, m.view, r.view);
      });
      same("layer_norm_backward (bad dy)", [&](const auto& be, TensorView<float> out) {
        Vec dgamma(cols, 88), dbeta(cols, 89);
        be.layer_norm_backward(c(dy), gamma.c(), mean.c(), rstd.c(), c(x), out, dgamma.view, dbeta.view);
      }, layer_norm_dx_terms(c(x), gamma.c(), rstd.c()));
      same("cosine", [&](const auto& be, TensorView<float> out) {
        Vec cos(rows, 90), na(rows, 91), nb(rows, 92);
        be.cosine_forward(c(x), c(dy), 1e-8f, cos.view, na.view, nb.view);
        be.cosine_backward(c(x), c(dy), cos.c(), na.c(), nb.c(), 1e-8f, 1.0f, out, TensorView<float>{});
      }, max_term(rows, 1, [&](index_t i, index_t) {
        double n = 0;
        for (index_t j = 0; j < cols; ++j) n += double(x.view(i, j)) * double(x.view(i, j));
        return 1.0 / std::max(std::sqrt(n), 1e-8);
      }));
    }
}

TEST_CASE("in-place calls give the out-of-place result where the reference allows them", "[cpu][rows]") {
  // The reference writes each output element after every read of its row (and reads no other row), so an output
  // may alias an input of the same extents; the CPU kernels keep that property.
  const CpuBackend cpu_backend({.threads = 2});
  INFO("isa " << cpu::to_string(cpu_backend.isa()));
  for (index_t cols : {index_t(3), index_t(17), index_t(768)}) {
    const index_t rows = 37;
    CAPTURE(cols);
    LaidOut<float> x(rows, cols, Layout::padded_rows, 100 + std::uint64_t(cols), 2.0);
    LaidOut<float> dy(rows, cols, Layout::padded_rows, 101);
    const auto in_place = [&](const LaidOut<float>& input, const auto& run_cpu, const auto& run_ref) {
      LaidOut<float> want(rows, cols, Layout::padded_rows, 102);
      run_ref(c(input), want.view);
      auto buffer = twin(input, Layout::padded_rows);
      run_cpu(ConstView<float>(buffer.view), buffer.view);
      FROSTER_REQUIRE_CLOSE(buffer.view, want.view, tol::cross_backend_fp32(cols));
    };
    in_place(
        x, [&](ConstView<float> in, TensorView<float> out) { cpu_backend.softmax_forward(in, 0.5f, true, out); },
        [&](ConstView<float> in, TensorView<float> out) { reference_backend.softmax_forward(in, 0.5f, true, out); });
    in_place(
        x, [&](ConstView<float> in, TensorView<float> out) { cpu_backend.log_softmax_forward(in, 2.0f, out); },
        [&](ConstView<float> in, TensorView<float> out) { reference_backend.log_softmax_forward(in, 2.0f, out); });
    Vec norms(rows, 103);
    in_place(
        x, [&](ConstView<float> in, TensorView<float> out) { cpu_backend.l2_normalize_forward(in, out, norms.view); },
        [&](ConstView<float> in, TensorView<float> out) { reference_backend.l2_normalize_forward(in, out, norms.view); });
    Vec gamma(cols, 104), beta(cols, 105), mean(rows, 106), rstd(rows, 107);
    in_place(
        x,
        [&](ConstView<float> in, TensorView<float> out) {
          cpu_backend.layer_norm_forward(in, gamma.c(), beta.c(), 1e-5f, out, mean.view, rstd.view);
        },
        [&](ConstView<float> in, TensorView<float> out) {
          reference_backend.layer_norm_forward(in, gamma.c(), beta.c(), 1e-5f, out, mean.view, rstd.view);
        });
    // Backward passes: dx overwrites dy.
    LaidOut<float> y(rows, cols, Layout::padded_rows, 108);
    reference_backend.softmax_forward(c(x), 1.0f, false, y.view);
    in_place(
        dy, [&](ConstView<float> d, TensorView<float> out) { cpu_backend.softmax_backward(c(y), d, 1.0f, out); },
        [&](ConstView<float> d, TensorView<float> out) { reference_backend.softmax_backward(c(y), d, 1.0f, out); });
    reference_backend.l2_normalize_forward(c(x), y.view, norms.view);
    in_place(
        dy,
        [&](ConstView<float> d, TensorView<float> out) { cpu_backend.l2_normalize_backward(c(y), norms.c(), d, out); },
        [&](ConstView<float> d, TensorView<float> out) {
          reference_backend.l2_normalize_backward(c(y), norms.c(), d, out);
        });
    reference_backend.layer_norm_forward(c(x), gamma.c(), beta.c(), 1e-5f, y.view, mean.view, rstd.view);
    Vec dgamma(cols, 109), dbeta(cols, 110), want_dgamma(cols, 109), want_dbeta(cols, 110);
    in_place(
        dy,
        [&](ConstView<float> d, TensorView<float> out) {
          cpu_backend.layer_norm_backward(c(x), gamma.c(), mean.c(), rstd.c(), d, out, dgamma.view, dbeta.view);
        },
        [&](ConstView<float> d, TensorView<float> out) {
          reference_backend.layer_norm_backward(c(x), gamma.c(), mean.c(), rstd.c(), d, out, want_dgamma.view,
                                                want_dbeta.view);
        });
    FROSTER_REQUIRE_CLOSE(dgamma.view, want_dgamma.view, tol::cross_backend_fp32(rows));
  }
}

TEST_CASE("fp64 row ops run the reference loops", "[cpu][rows]") {
  const CpuBackend cpu_backend({.threads = 2});
  const index_t rows = 5, cols = 19;
  LaidOut<double> x(rows, cols, Layout::row_major, 120);
  LaidOut<double> got(rows, cols, Layout::row_major, 121), want(rows, cols, Layout::row_major, 121);
  cpu_backend.softmax_forward(ConstView<double>(x.view), 0.5, true, got.view);
  reference_backend.softmax_forward(ConstView<double>(x.view), 0.5, true, want.view);
  FROSTER_REQUIRE_CLOSE(got.view, want.view, tol::same_math_fp64);
  cpu_backend.log_softmax_forward(ConstView<double>(x.view), 0.5, got.view);
  reference_backend.log_softmax_forward(ConstView<double>(x.view), 0.5, want.view);
  FROSTER_REQUIRE_CLOSE(got.view, want.view, tol::same_math_fp64);
  auto gamma = random_tensor<double>({cols}, 122), beta = random_tensor<double>({cols}, 123);
  auto mean = Tensor<double>::host({rows}), rstd = Tensor<double>::host({rows});
  cpu_backend.layer_norm_forward(ConstView<double>(x.view), gamma.cview(), beta.cview(), 1e-5, got.view, mean.view(),
                                 rstd.view());
  reference_backend.layer_norm_forward(ConstView<double>(x.view), gamma.cview(), beta.cview(), 1e-5, want.view,
                                       mean.view(), rstd.view());
  FROSTER_REQUIRE_CLOSE(got.view, want.view, tol::same_math_fp64);
}
