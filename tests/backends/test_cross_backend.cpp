// EigenBackend against ReferenceBackend (the ground truth) on random shapes, including 1, odd and prime sizes,
// and on strided layouts (column-major, padded rows, negative row stride), in float32.

#include <catch2/catch.hpp>
#include <froster/eigen.hpp>
#include <froster/froster.hpp>

#include <limits>

#include "support/layouts.hpp"
#include "support/random.hpp"
#include "support/tolerance.hpp"

using namespace froster;
using froster::test::LaidOut;
using froster::test::Layout;
using froster::test::random_tensor;
namespace tol = froster::test::tol;

namespace {

ReferenceBackend reference_backend;
EigenBackend eigen_backend;

const index_t sizes[] = {1, 2, 3, 7, 13, 17, 31, 64, 97};

index_t pick(NormalRng& rng) { return sizes[index_t(rng.uniform() * std::size(sizes))]; }

Tensor<float> dense_copy(ConstView<float> v) {
  auto t = Tensor<float>::host(v.extents());
  reference_backend.copy(v, t.view());
  return t;
}

}  // namespace

TEST_CASE("gemm: Eigen matches reference for every transpose, layout and odd shape", "[cross-backend]") {
  NormalRng shapes(2024);
  const auto ta = GENERATE(Transpose::no, Transpose::yes);
  const auto tb = GENERATE(Transpose::no, Transpose::yes);
  const auto layout = GENERATE(Layout::row_major, Layout::column_major, Layout::padded_rows, Layout::reversed_rows);
  for (int trial = 0; trial < 6; ++trial) {
    const index_t m = pick(shapes), n = pick(shapes), k = pick(shapes);
    const float alpha = trial % 2 ? 0.75f : 1.0f;
    const float beta = trial % 3 == 0 ? 0.0f : (trial % 3 == 1 ? 1.0f : -0.5f);
    CAPTURE(m, n, k, alpha, beta, to_string(layout));
    LaidOut<float> a(ta == Transpose::no ? m : k, ta == Transpose::no ? k : m, layout, 10 + trial);
    LaidOut<float> b(tb == Transpose::no ? k : n, tb == Transpose::no ? n : k, layout, 20 + trial);
    LaidOut<float> c_ref(m, n, layout, 30 + trial);
    LaidOut<float> c_eig(m, n, layout, 30 + trial);
    if (beta == 0.0f) {  // beta == 0 overwrites C: NaN already in C must not leak into the result
      c_ref.view(0, 0) = std::numeric_limits<float>::quiet_NaN();
      c_eig.view(0, 0) = std::numeric_limits<float>::quiet_NaN();
    }
    reference_backend.gemm(alpha, ConstView<float>(a.view), ta, ConstView<float>(b.view), tb, beta, c_ref.view);
    eigen_backend.gemm(alpha, ConstView<float>(a.view), ta, ConstView<float>(b.view), tb, beta, c_eig.view);
    FROSTER_REQUIRE_CLOSE(c_eig.view, c_ref.view, tol::cross_backend_fp32(k));
  }
}

TEST_CASE("gemm with an empty inner dimension scales C by beta", "[cross-backend]") {
  auto a = Tensor<float>::host({3, 0});
  auto b = Tensor<float>::host({0, 4});
  auto c = random_tensor<float>({3, 4}, 5);
  auto expected = dense_copy(c.cview());
  reference_backend.axpby(0.5f, expected.cview(), 0.0f, expected.view());
  eigen_backend.gemm(1.0f, a.cview(), Transpose::no, b.cview(), Transpose::no, 0.5f, c.view());
  FROSTER_REQUIRE_CLOSE(c.cview(), expected.cview(), tol::same_math_fp64);
}

TEST_CASE("elementwise, row and reduction ops: Eigen matches reference", "[cross-backend]") {
  // Sections re-run the test case, so the trial comes from a generator rather than a loop around them.
  const auto layout = GENERATE(Layout::row_major, Layout::column_major, Layout::padded_rows, Layout::reversed_rows);
  const int trial = GENERATE(range(0, 5));
  NormalRng shapes(77 + std::uint64_t(trial));
  {
    const index_t rows = pick(shapes), cols = pick(shapes);
    CAPTURE(rows, cols, to_string(layout));
    LaidOut<float> x(rows, cols, layout, 100 + trial, 2.0);
    LaidOut<float> dy(rows, cols, layout, 200 + trial);
    const ConstView<float> cx = x.view, cdy = dy.view;
    auto out_ref = Tensor<float>::host({rows, cols});
    auto out_eig = Tensor<float>::host({rows, cols});
    auto rows_ref = Tensor<float>::host({rows});
    auto rows_eig = Tensor<float>::host({rows});

    SECTION("axpby") {
      LaidOut<float> y_ref(rows, cols, layout, 300 + trial), y_eig(rows, cols, layout, 300 + trial);
      reference_backend.axpby(0.3f, cx, -1.5f, y_ref.view);
      eigen_backend.axpby(0.3f, cx, -1.5f, y_eig.view);
      FROSTER_REQUIRE_CLOSE(y_eig.view, y_ref.view, tol::cross_backend_fp32(1));
    }
    SECTION("sum and dot") {
      const auto sum_tol = tol::cross_backend_fp32(rows * cols);
      FROSTER_REQUIRE_CLOSE(eigen_backend.sum(cx), reference_backend.sum(cx), sum_tol);
      FROSTER_REQUIRE_CLOSE(eigen_backend.dot(cx, cdy), reference_backend.dot(cx, cdy), sum_tol);
    }
    SECTION("activations forward and backward") {
      for (Activation act : {Activation::gelu, Activation::quick_gelu}) {
        reference_backend.activation_forward(act, cx, out_ref.view());
        eigen_backend.activation_forward(act, cx, out_eig.view());
        FROSTER_REQUIRE_CLOSE(out_eig.cview(), out_ref.cview(), tol::cross_backend_fp32(1));
        reference_backend.activation_backward(act, cx, cdy, out_ref.view());
        eigen_backend.activation_backward(act, cx, cdy, out_eig.view());
        FROSTER_REQUIRE_CLOSE(out_eig.cview(), out_ref.cview(), tol::cross_backend_fp32(1));
      }
    }
    SECTION("l2 normalise forward and backward") {
      reference_backend.l2_normalize_forward(cx, out_ref.view(), rows_ref.view());
      eigen_backend.l2_normalize_forward(cx, out_eig.view(), rows_eig.view());
      FROSTER_REQUIRE_CLOSE(out_eig.cview(), out_ref.cview(), tol::cross_backend_fp32(cols));
      FROSTER_REQUIRE_CLOSE(rows_eig.cview(), rows_ref.cview(), tol::cross_backend_fp32(cols));
      auto dx_ref = Tensor<float>::host({rows, cols});
      auto dx_eig = Tensor<float>::host({rows, cols});
      reference_backend.l2_normalize_backward(out_ref.cview(), rows_ref.cview(), cdy, dx_ref.view());
      eigen_backend.l2_normalize_backward(out_ref.cview(), rows_ref.cview(), cdy, dx_eig.view());
      FROSTER_REQUIRE_CLOSE(dx_eig.cview(), dx_ref.cview(), tol::cross_backend_fp32(cols));
    }
    SECTION("cosine forward and backward") {
      auto na_ref = Tensor<float>::host({rows}), nb_ref = Tensor<float>::host({rows});
      auto na_eig = Tensor<float>::host({rows}), nb_eig = Tensor<float>::host({rows});
      reference_backend.cosine_forward(cx, cdy, 1e-8f, rows_ref.view(), na_ref.view(), nb_ref.view());
      eigen_backend.cosine_forward(cx, cdy, 1e-8f, rows_eig.view(), na_eig.view(), nb_eig.view());
      FROSTER_REQUIRE_CLOSE(rows_eig.cview(), rows_ref.cview(), tol::cross_backend_fp32(cols));
      FROSTER_REQUIRE_CLOSE(na_eig.cview(), na_ref.cview(), tol::cross_backend_fp32(cols));
      FROSTER_REQUIRE_CLOSE(nb_eig.cview(), nb_ref.cview(), tol::cross_backend_fp32(cols));
      auto db_ref = Tensor<float>::host({rows, cols}), db_eig = Tensor<float>::host({rows, cols});
      reference_backend.cosine_backward(cx, cdy, rows_ref.cview(), na_ref.cview(), nb_ref.cview(), 1e-8f, -0.25f,
                                        out_ref.view(), db_ref.view());
      eigen_backend.cosine_backward(cx, cdy, rows_ref.cview(), na_ref.cview(), nb_ref.cview(), 1e-8f, -0.25f,
                                    out_eig.view(), db_eig.view());
      // Each gradient is a difference of terms of size |scale| / |a_i| (or / |b_i|); at cols == 1 they cancel
      // exactly, so the comparison is against the size of the terms.
      double smallest_norm = std::numeric_limits<double>::infinity();
      for (index_t i = 0; i < rows; ++i)
        smallest_norm = std::min({smallest_norm, double(na_ref.view()(i)), double(nb_ref.view()(i))});
      const auto grad_tol = tol::cross_backend_fp32(cols).with_term_scale(0.25 / smallest_norm);
      FROSTER_REQUIRE_CLOSE(out_eig.cview(), out_ref.cview(), grad_tol);
      FROSTER_REQUIRE_CLOSE(db_eig.cview(), db_ref.cview(), grad_tol);
    }
  }
}

TEST_CASE("components: Eigen matches reference end to end", "[cross-backend]") {
  NormalRng shapes(99);
  for (int trial = 0; trial < 4; ++trial) {
    const index_t rows = pick(shapes), dim = pick(shapes), hidden = pick(shapes);
    CAPTURE(rows, dim, hidden);
    const auto student = random_tensor<float>({rows, dim}, 400 + trial);
    const auto teacher = random_tensor<float>({rows, dim}, 500 + trial);
    const auto w2 = random_tensor<float>({dim, hidden}, 600 + trial, 0.5);
    FeatureDistillerConfig config{.dim = dim, .hidden = hidden, .seed = 9, .weight = 2.0};
    FeatureDistiller<ReferenceBackend> ref(reference_backend, config);
    FeatureDistiller<EigenBackend> eig(eigen_backend, config);
    ref.projector().load(ref.projector().w1(), w2.cview());
    eig.projector().load(eig.projector().w1(), w2.cview());
    auto d_ref = Tensor<float>::host({rows, dim}), d_eig = Tensor<float>::host({rows, dim});
    const double loss_ref = ref.step(student.cview(), teacher.cview(), d_ref.view());
    const double loss_eig = eig.step(student.cview(), teacher.cview(), d_eig.view());
    const auto reduction = std::max(dim, hidden) * rows;
    FROSTER_REQUIRE_CLOSE(loss_eig, loss_ref, tol::cross_backend_fp32(reduction));
    FROSTER_REQUIRE_CLOSE(d_eig.cview(), d_ref.cview(), tol::cross_backend_fp32(reduction));
    FROSTER_REQUIRE_CLOSE(eig.projector().grad_w1(), ref.projector().grad_w1(), tol::cross_backend_fp32(reduction));
    FROSTER_REQUIRE_CLOSE(eig.projector().grad_w2(), ref.projector().grad_w2(), tol::cross_backend_fp32(reduction));
  }
}
