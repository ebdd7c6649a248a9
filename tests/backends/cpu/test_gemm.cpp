// CPU backend SGEMM against the reference backend, at the ISA level this run was given (FROSTER_ISA, see
// support/catch_main_isa.cpp): every transpose, sizes around the register tile and cache blocks (1, 3, 17, 197,
// 1576, primes, M or N = 1, k over several k blocks), strided and column-major views, alpha / beta, NaN in C with
// beta = 0, k = 0, the fused epilogue, and bitwise independence from the thread count. Big shapes stay few and
// thin, so the suite runs in seconds under the sanitizer build too.

#include <catch2/catch.hpp>
#include <froster/cpu.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "support/layouts.hpp"
#include "support/scoped_value.hpp"
#include "support/tolerance.hpp"

using namespace froster;
using froster::test::LaidOut;
using froster::test::Layout;
namespace tol = froster::test::tol;

namespace {

const ReferenceBackend reference_backend;
constexpr float nan_value = std::numeric_limits<float>::quiet_NaN();

struct Shape {
  index_t m, n, k;
};

const char* name(Transpose t) { return t == Transpose::no ? "n" : "t"; }

/// op(X) is [rows, cols]: X is stored [rows, cols], or [cols, rows] when transposed.
LaidOut<float> operand(index_t rows, index_t cols, Transpose t, Layout layout, std::uint64_t seed) {
  return t == Transpose::no ? LaidOut<float>(rows, cols, layout, seed) : LaidOut<float>(cols, rows, layout, seed);
}

/// Runs C = alpha op(A) op(B) + beta C on the CPU backend and on the reference, from the same inputs, and
/// compares. A NaN-filled C checks that beta = 0 overwrites.
void check_gemm(const CpuBackend& cpu_backend, Shape s, Transpose ta, Transpose tb, float alpha, float beta,
                Layout la, Layout lb, Layout lc, bool nan_c = false) {
  CAPTURE(s.m, s.n, s.k, name(ta), name(tb), alpha, beta, to_string(la), to_string(lb), to_string(lc), nan_c);
  const LaidOut<float> a = operand(s.m, s.k, ta, la, 11), b = operand(s.k, s.n, tb, lb, 12);
  LaidOut<float> got(s.m, s.n, lc, 13), want(s.m, s.n, lc, 13);
  if (nan_c)
    for (index_t i = 0; i < s.m; ++i)
      for (index_t j = 0; j < s.n; ++j) got.view(i, j) = want.view(i, j) = nan_value;
  cpu_backend.gemm(alpha, ConstView<float>(a.view), ta, ConstView<float>(b.view), tb, beta, got.view);
  reference_backend.gemm(alpha, ConstView<float>(a.view), ta, ConstView<float>(b.view), tb, beta, want.view);
  FROSTER_REQUIRE_CLOSE(got.view, want.view, tol::cross_backend_fp32(s.k));
}

Tensor<float> run_with_threads(int threads, Shape s, Transpose ta, Transpose tb) {
  const LaidOut<float> a = operand(s.m, s.k, ta, Layout::row_major, 21), b = operand(s.k, s.n, tb, Layout::row_major, 22);
  LaidOut<float> c(s.m, s.n, Layout::row_major, 23);
  CpuBackend({.threads = threads}).gemm(0.75f, ConstView<float>(a.view), ta, ConstView<float>(b.view), tb, -0.5f, c.view);
  return std::move(c.storage);
}

}  // namespace

TEST_CASE("gemm matches the reference for every transpose and odd sizes", "[cpu][gemm]") {
  const CpuBackend cpu_backend({.threads = 2});
  INFO("isa " << cpu::to_string(cpu_backend.isa()));
  const Transpose ta = GENERATE(Transpose::no, Transpose::yes);
  const Transpose tb = GENERATE(Transpose::no, Transpose::yes);
  // Around every tile width (4, 6, 12 rows; 4, 16, 32 columns), one and several k blocks (256 steps), rows over
  // several MC blocks per thread, M = 1 and N = 1 (vector products), and the CLIP row count 1576 on thin shapes.
  const Shape shapes[] = {{1, 1, 1},      {3, 17, 1},   {17, 3, 5},    {1, 197, 61},  {197, 1, 31},
                          {13, 31, 7},    {7, 16, 8},   {6, 32, 257},  {61, 67, 300}, {197, 23, 197},
                          {127, 5, 521},  {1, 2, 600},  {1576, 3, 17}, {5, 1576, 9},  {389, 37, 2}};
  for (const Shape& s : shapes) check_gemm(cpu_backend, s, ta, tb, 1.0f, 0.0f, Layout::row_major, Layout::row_major, Layout::row_major);
}

TEST_CASE("gemm reads and writes any strides", "[cpu][gemm]") {
  const CpuBackend cpu_backend({.threads = 2});
  const auto la = GENERATE(Layout::row_major, Layout::column_major, Layout::padded_rows, Layout::reversed_rows);
  const auto lb = GENERATE(Layout::row_major, Layout::column_major, Layout::padded_rows, Layout::reversed_rows);
  const auto lc = GENERATE(Layout::row_major, Layout::column_major, Layout::padded_rows, Layout::reversed_rows);
  // Both transposes of A over the layout combinations (the strides test runs long under the sanitizers).
  const Transpose ta = (int(la) + int(lb) + int(lc)) % 2 == 0 ? Transpose::no : Transpose::yes;
  for (const Shape s : {Shape{37, 29, 41}, Shape{1, 19, 23}, Shape{23, 1, 11}})
    check_gemm(cpu_backend, s, ta, Transpose::yes, -0.5f, 0.25f, la, lb, lc);
}

TEST_CASE("gemm applies alpha and beta, and beta = 0 overwrites NaN in C", "[cpu][gemm]") {
  const CpuBackend cpu_backend({.threads = 2});
  const float alpha = GENERATE(1.0f, -0.75f, 0.0f);
  const float beta = GENERATE(0.0f, 1.0f, -0.5f, 2.0f);
  // Row-major C (the direct store), column-major C (computed transposed) and padded C with partial tiles; k over
  // two k blocks, so beta applies in the first and 1 in the second.
  for (const Layout lc : {Layout::row_major, Layout::column_major, Layout::padded_rows})
    check_gemm(cpu_backend, {13, 21, 270}, Transpose::no, Transpose::no, alpha, beta, Layout::row_major,
               Layout::row_major, lc);
  for (const Layout lc : {Layout::row_major, Layout::column_major, Layout::reversed_rows})
    check_gemm(cpu_backend, {19, 40, 33}, Transpose::yes, Transpose::yes, alpha, 0.0f, Layout::row_major,
               Layout::row_major, lc, /*nan_c=*/true);
  // One row with contiguous rows of op(B): the unpacked one-row path, over two k blocks.
  check_gemm(cpu_backend, {1, 40, 270}, Transpose::no, Transpose::no, alpha, beta, Layout::row_major,
             Layout::row_major, Layout::row_major, /*nan_c=*/beta == 0.0f);
}

TEST_CASE("gemm with k = 0 scales C by beta", "[cpu][gemm]") {
  const CpuBackend cpu_backend({.threads = 2});
  for (const float beta : {0.0f, 1.0f, -2.0f})
    for (const Layout lc : {Layout::row_major, Layout::column_major})
      check_gemm(cpu_backend, {7, 9, 0}, Transpose::no, Transpose::yes, 1.5f, beta, Layout::row_major,
                 Layout::row_major, lc, /*nan_c=*/beta == 0.0f);
  // An empty C is a no-op.
  check_gemm(cpu_backend, {0, 5, 3}, Transpose::no, Transpose::no, 1.0f, 0.0f, Layout::row_major, Layout::row_major,
             Layout::row_major);
}

TEST_CASE("gemm runs in column chunks when packed op(B) and C exceed the budget", "[cpu][gemm]") {
  const CpuBackend cpu_backend({.threads = 2});
  const Transpose tb = GENERATE(Transpose::no, Transpose::yes);
  // A few column panels of k = 40 (and their 29 rows of C) per chunk.
  const froster::test::ScopedValue budget(cpu::detail::gemm_chunk_budget, index_t(64 * (40 + 29)));
  check_gemm(cpu_backend, {29, 301, 40}, Transpose::no, tb, 1.0f, 0.5f, Layout::row_major, Layout::padded_rows,
             Layout::row_major);
  check_gemm(cpu_backend, {29, 301, 40}, Transpose::yes, tb, 1.0f, 0.0f, Layout::row_major, Layout::row_major,
             Layout::column_major);
}

TEST_CASE("gemm results do not depend on the thread count", "[cpu][gemm][threads]") {
  const Transpose ta = GENERATE(Transpose::no, Transpose::yes);
  // Tall (C split by rows), few rows over evenly splitting columns and wide-and-short (split by columns) shapes,
  // several k blocks; 1 to 5 threads move the block boundaries across tiles.
  for (const Shape s : {Shape{301, 130, 300}, Shape{64, 512, 200}, Shape{7, 901, 100}}) {
    CAPTURE(s.m, s.n, s.k, name(ta));
    const Tensor<float> one = run_with_threads(1, s, ta, Transpose::yes);
    for (int threads : {2, 3, 5}) {
      CAPTURE(threads);
      const Tensor<float> many = run_with_threads(threads, s, ta, Transpose::yes);
      REQUIRE(std::memcmp(one.data(), many.data(), sizeof(float) * std::size_t(s.m * s.n)) == 0);
    }
  }
}

TEST_CASE("gemm shares rows between threads only where each gets enough of them", "[cpu][gemm][threads]") {
  using cpu::detail::gemm_thread_split;
  const index_t mr = 12, nr = 32, few = cpu::detail::gemm_min_row_split_panels;
  // {tm, tn}: tm threads share the rows of each of tn column blocks.
  SECTION("many rows: shared, each thread streaming every B panel is amortised over its tiles") {
    REQUIRE(gemm_thread_split(2, 132, 24, mr, nr) == std::pair<index_t, index_t>{2, 1});  // ViT's 1576 x 768
    REQUIRE(gemm_thread_split(2, 2 * few, 16, mr, nr) == std::pair<index_t, index_t>{2, 1});
  }
  SECTION("few rows per thread and columns that split evenly: the columns are split") {
    REQUIRE(gemm_thread_split(2, 6, 16, mr, nr) == std::pair<index_t, index_t>{1, 2});  // 64 x 512
    REQUIRE(gemm_thread_split(2, 2 * (few - 1), 16, mr, nr) == std::pair<index_t, index_t>{1, 2});
    REQUIRE(gemm_thread_split(4, 6, 16, mr, nr) == std::pair<index_t, index_t>{1, 4});
    // Four threads with enough rows for two: rows shared by two threads in each of two column blocks.
    REQUIRE(gemm_thread_split(4, 4 * (few - 1), 16, mr, nr) == std::pair<index_t, index_t>{2, 2});
  }
  SECTION("few rows but columns that do not split evenly: the padded-work rule decides") {
    // 5 panels are groups of 4 and 1: split by columns one thread would compute 4 of the 5.
    REQUIRE_FALSE(cpu::detail::gemm_columns_split_evenly(2, 5));
    REQUIRE(gemm_thread_split(2, 6, 5, mr, nr) == std::pair<index_t, index_t>{2, 1});
    // One group of panels cannot be shared at all.
    REQUIRE(gemm_thread_split(2, 6, 4, mr, nr) == std::pair<index_t, index_t>{2, 1});
  }
  SECTION("one thread takes everything") {
    REQUIRE(gemm_thread_split(1, 6, 16, mr, nr) == std::pair<index_t, index_t>{1, 1});
  }
}

TEST_CASE("gemm results are bitwise identical run to run", "[cpu][gemm][threads]") {
  // Rows are handed out to the threads as they come free, so which thread computes which tile varies between runs;
  // the arithmetic of each element must not.
  const Shape s{301, 97, 520};
  const Tensor<float> first = run_with_threads(2, s, Transpose::no, Transpose::no);
  for (int run = 0; run < 4; ++run) {
    const Tensor<float> again = run_with_threads(2, s, Transpose::no, Transpose::no);
    REQUIRE(std::memcmp(first.data(), again.data(), sizeof(float) * std::size_t(s.m * s.n)) == 0);
  }
}

TEST_CASE("a one-row gemm is bitwise the first row of the same product through the tiles", "[cpu][gemm]") {
  // M = 1 with contiguous rows of op(B) (a bias gradient: a row of ones times dY) skips packing; each element must
  // still get the tiled path's arithmetic, so it equals row 0 of the product with more rows. Columns around the
  // vector and group widths, k over one and several k blocks, every alpha/beta branch, 1 to 3 threads.
  const float beta = GENERATE(0.0f, 1.0f, -0.5f);
  const Transpose ta = GENERATE(Transpose::no, Transpose::yes);
  for (const Shape s : {Shape{1, 1, 1}, Shape{1, 17, 3}, Shape{1, 197, 300}, Shape{1, 1576, 77}, Shape{1, 701, 1576},
                        Shape{1, 3077, 100}}) {
    CAPTURE(s.n, s.k, beta, name(ta));
    const index_t rows = 13;
    const LaidOut<float> a = operand(rows, s.k, ta, Layout::row_major, 41);
    const LaidOut<float> b(s.k, s.n, Layout::padded_rows, 42);
    LaidOut<float> tiled(rows, s.n, Layout::row_major, 43);
    CpuBackend({.threads = 2}).gemm(0.75f, ConstView<float>(a.view), ta, ConstView<float>(b.view), Transpose::no, beta,
                                    tiled.view);
    const ConstView<float> a_row = ta == Transpose::no ? ConstView<float>(a.view).slice_rows(0, 1)
                                                       : ConstView<float>(a.view).transposed().slice_rows(0, 1).transposed();
    for (int threads : {1, 2, 3}) {
      CAPTURE(threads);
      LaidOut<float> row(1, s.n, Layout::row_major, 43);  // the same C values as row 0 of `tiled` had
      CpuBackend({.threads = threads}).gemm(0.75f, a_row, ta, ConstView<float>(b.view), Transpose::no, beta, row.view);
      for (index_t j = 0; j < s.n; ++j) REQUIRE(std::memcmp(&row.view(0, j), &tiled.view(0, j), sizeof(float)) == 0);
    }
  }
}

TEST_CASE("gemm epilogue sees every finished element once", "[cpu][gemm]") {
  // A fused bias add + GELU, against GEMM, bias and GELU done one after the other by the reference.
  const CpuBackend cpu_backend({.threads = 2});
  const Layout lc = GENERATE(Layout::row_major, Layout::column_major);
  const index_t k = GENERATE(index_t(0), index_t(300));
  const index_t m = GENERATE(index_t(45), index_t(1));  // 1: the one-row path (no packing) calls it too
  const Shape s{m, 37, k};
  CAPTURE(to_string(lc), k, m);
  // b is op(B)^T; stored column-major for M = 1, so that op(B) has contiguous rows and the one-row path runs.
  const LaidOut<float> a(s.m, s.k, Layout::row_major, 31);
  const LaidOut<float> b(s.n, s.k, m == 1 ? Layout::column_major : Layout::row_major, 32);
  const LaidOut<float> bias(1, s.n, Layout::row_major, 33);
  LaidOut<float> got(s.m, s.n, lc, 34), want(s.m, s.n, lc, 34);
  std::vector<int> visits(std::size_t(s.m * s.n), 0);
  const auto epilogue = [&](auto tag, index_t row, index_t col, float* values, index_t count) {
    for (index_t q = 0; q < count; ++q) {
      values[q] += bias.view(0, col + q);
      ++visits[std::size_t(row * s.n + col + q)];  // distinct elements: no two threads touch one counter
    }
    activation_forward_row(tag, Activation::gelu, count, values, values);
  };
  REQUIRE(cpu::gemm(cpu_backend.context(), 0.5f, ConstView<float>(a.view), Transpose::no, ConstView<float>(b.view),
                    Transpose::yes, 1.0f, got.view, epilogue));
  reference_backend.gemm(0.5f, ConstView<float>(a.view), Transpose::no, ConstView<float>(b.view), Transpose::yes,
                         1.0f, want.view);
  for (index_t i = 0; i < s.m; ++i)
    for (index_t j = 0; j < s.n; ++j) want.view(i, j) += bias.view(0, j);
  reference_backend.activation_forward(Activation::gelu, ConstView<float>(want.view), want.view);
  FROSTER_REQUIRE_CLOSE(got.view, want.view, tol::cross_backend_fp32(s.k));
  for (int v : visits) REQUIRE(v == 1);
}

TEST_CASE("gemm in double runs the reference loops", "[cpu][gemm]") {
  const CpuBackend cpu_backend({.threads = 2});
  auto a = Tensor<double>::host({5, 7}), b = Tensor<double>::host({7, 3});
  auto got = Tensor<double>::host({5, 3}), want = Tensor<double>::host({5, 3});
  for (index_t i = 0; i < a.numel(); ++i) a.data()[i] = double(i % 5) - 1.5;
  for (index_t i = 0; i < b.numel(); ++i) b.data()[i] = double(i % 3) + 0.25;
  REQUIRE_FALSE(cpu::gemm(cpu_backend.context(), 1.0, a.cview(), Transpose::no, b.cview(), Transpose::no, 0.0,
                          got.view()));
  cpu_backend.gemm(1.0, a.cview(), Transpose::no, b.cview(), Transpose::no, 0.0, got.view());
  reference_backend.gemm(1.0, a.cview(), Transpose::no, b.cview(), Transpose::no, 0.0, want.view());
  FROSTER_REQUIRE_CLOSE(got.view(), want.view(), tol::same_math_fp64);
}
