// Bad input: mismatched shapes, empty batches, zero-norm rows, NaN/Inf, non-contiguous views, wrong devices and
// out-of-range arguments. Each rejection throws the documented exception and leaves every output untouched.

#include <catch2/catch.hpp>
#include <froster/froster.hpp>

#include <cmath>
#include <limits>

#include "support/layouts.hpp"
#include "support/random.hpp"
#include "support/tolerance.hpp"

using namespace froster;
using Catch::Matchers::Contains;
using froster::test::LaidOut;
using froster::test::Layout;
using froster::test::random_tensor;
namespace tol = froster::test::tol;

namespace {

ReferenceBackend backend;
constexpr float sentinel = 12345.0f;
const float nan_value = std::numeric_limits<float>::quiet_NaN();
const float inf_value = std::numeric_limits<float>::infinity();

Tensor<float> filled(Dims extents, float value = sentinel) {
  auto t = Tensor<float>::host(extents);
  for (index_t i = 0; i < t.numel(); ++i) t.data()[i] = value;
  return t;
}

bool untouched(const Tensor<float>& t) {
  for (index_t i = 0; i < t.numel(); ++i)
    if (t.data()[i] != sentinel) return false;
  return true;
}

}  // namespace

TEST_CASE("mismatched shapes are rejected with both shapes in the message", "[bad-input]") {
  const auto a = random_tensor<float>({4, 3}, 1);
  const auto b = random_tensor<float>({4, 5}, 2);
  auto da = filled({4, 3});
  CosineDistillationLoss<ReferenceBackend> cosine(backend);
  REQUIRE_THROWS_MATCHES(cosine.compute(a.cview(), b.cview(), da.view()), ShapeError,
                         Catch::Matchers::Predicate<ShapeError>([](const ShapeError& e) {
                           const std::string m = e.what();
                           return m.find("teacher") != std::string::npos && m.find("[4, 3]") != std::string::npos &&
                                  m.find("[4, 5]") != std::string::npos;
                         }, "names the argument and both shapes"));
  REQUIRE(untouched(da));

  auto wrong_grad = filled({3, 3});
  REQUIRE_THROWS_AS(cosine.compute(a.cview(), a.cview(), wrong_grad.view()), ShapeError);
  REQUIRE(untouched(wrong_grad));

  ResidualProjector<ReferenceBackend> proj(backend, {.dim = 5});
  REQUIRE_THROWS_WITH(proj.forward(a.cview()), Contains("z must be [rows, 5]") && Contains("[4, 3]"));

  auto c = filled({4, 4});
  REQUIRE_THROWS_WITH(backend.gemm(1.0f, a.cview(), Transpose::no, b.cview(), Transpose::no, 0.0f, c.view()),
                      Contains("inner extents differ"));
  REQUIRE(untouched(c));

  TemporalPool<ReferenceBackend> pool(backend, Pooling::mean);
  REQUIRE_THROWS_WITH(pool.forward(b.cview(), 3), Contains("not a multiple of frames = 3"));
  REQUIRE_THROWS_AS(pool.forward(b.cview(), 0), ValueError);

  SimilarityLogits<ReferenceBackend> sim(backend);
  REQUIRE_THROWS_WITH(sim.forward(a.cview(), b.cview(), 1.0f), Contains("same width"));
}

TEST_CASE("an empty batch is an error for every loss", "[bad-input]") {
  const auto empty = Tensor<float>::host({0, 3});
  auto labels = Tensor<std::int64_t>::host({0});
  REQUIRE_THROWS_WITH(CosineDistillationLoss<ReferenceBackend>(backend).compute(empty.cview(), empty.cview()),
                      Contains("empty batch"));
  REQUIRE_THROWS_AS(MseLoss<ReferenceBackend>(backend).compute(empty.cview(), empty.cview()), ShapeError);
  REQUIRE_THROWS_AS(L1Loss<ReferenceBackend>(backend).compute(empty.cview(), empty.cview()), ShapeError);
  REQUIRE_THROWS_AS(KlDivergenceLoss<ReferenceBackend>(backend).compute(empty.cview(), empty.cview()), ShapeError);
  REQUIRE_THROWS_AS(SoftCrossEntropyLoss<ReferenceBackend>(backend).compute(empty.cview(), empty.cview()), ShapeError);
  REQUIRE_THROWS_AS(CrossEntropyLoss<ReferenceBackend>(backend).compute(empty.cview(), labels.cview()), ShapeError);
  FeatureDistiller<ReferenceBackend> distiller(backend, {.dim = 3});
  auto d = Tensor<float>::host({0, 3});
  REQUIRE_THROWS_WITH(distiller.step(empty.cview(), empty.cview(), d.view()), Contains("empty batch"));
}

TEST_CASE("zero-norm rows: cosine follows PyTorch's eps clamp, L2Normalize gives NaN", "[bad-input]") {
  auto a = random_tensor<float>({3, 4}, 3);
  const auto b = random_tensor<float>({3, 4}, 4);
  for (index_t j = 0; j < 4; ++j) a.view()(1, j) = 0.0f;
  auto da = Tensor<float>::host({3, 4});
  CosineDistillationLoss<ReferenceBackend> cosine(backend);
  const double loss = cosine.compute(a.cview(), b.cview(), da.view());
  REQUIRE(cosine.cosines()(1) == 0.0f);  // cos = 0 / (eps |b|): the row contributes exactly 1 to the sum
  double others = 0;
  for (index_t i : {0, 2}) others += 1.0 - double(cosine.cosines()(i));
  REQUIRE(loss == Approx((others + 1.0) / 3.0).epsilon(1e-6));
  // d/da of the zero row: -(1/N) b / (eps |b|), large but finite, as PyTorch computes it.
  double nb = 0;
  for (index_t j = 0; j < 4; ++j) nb += double(b.view()(1, j)) * double(b.view()(1, j));
  nb = std::sqrt(nb);
  for (index_t j = 0; j < 4; ++j) {
    REQUIRE(std::isfinite(da.view()(1, j)));
    REQUIRE(da.view()(1, j) == Approx(-double(b.view()(1, j)) / (1e-8 * nb) / 3.0).epsilon(1e-5));
  }

  L2Normalize<ReferenceBackend> norm(backend);
  const auto y = norm.forward(a.cview());
  REQUIRE(std::isnan(y(1, 0)));   // 0 / 0, exactly like x / x.norm() in PyTorch
  REQUIRE(std::isfinite(y(0, 0)));  // other rows unaffected
}

TEST_CASE("NaN or Inf inputs: losses throw NumericError and write no gradient", "[bad-input]") {
  const float bad = GENERATE(nan_value, inf_value);
  auto a = random_tensor<float>({3, 4}, 5);
  const auto b = random_tensor<float>({3, 4}, 6);
  a.view()(2, 1) = bad;
  auto da = filled({3, 4});
  REQUIRE_THROWS_AS(CosineDistillationLoss<ReferenceBackend>(backend).compute(a.cview(), b.cview(), da.view()),
                    NumericError);
  REQUIRE(untouched(da));
  REQUIRE_THROWS_AS(MseLoss<ReferenceBackend>(backend).compute(a.cview(), b.cview(), da.view()), NumericError);
  REQUIRE_THROWS_AS(L1Loss<ReferenceBackend>(backend).compute(a.cview(), b.cview(), da.view()), NumericError);
  REQUIRE_THROWS_AS(KlDivergenceLoss<ReferenceBackend>(backend).compute(a.cview(), b.cview(), da.view()),
                    NumericError);
  REQUIRE_THROWS_AS(SoftCrossEntropyLoss<ReferenceBackend>(backend).compute(a.cview(), b.cview(), da.view()),
                    NumericError);
  REQUIRE(untouched(da));

  FeatureDistiller<ReferenceBackend> distiller(backend, {.dim = 4});
  auto d_student = filled({3, 4});
  REQUIRE_THROWS_WITH(distiller.step(a.cview(), b.cview(), d_student.view()), Contains("no gradient was written"));
  REQUIRE(untouched(d_student));
  const auto grad_w1 = distiller.projector().grad_w1();
  for (index_t i = 0; i < grad_w1.rows(); ++i)
    for (index_t j = 0; j < grad_w1.cols(); ++j) REQUIRE(grad_w1(i, j) == 0.0f);

  // Element ops propagate NaN/Inf by IEEE rules rather than throwing.
  auto y = Tensor<float>::host({3, 4});
  backend.activation_forward(Activation::gelu, a.cview(), y.view());
  REQUIRE(!std::isfinite(y.view()(2, 1)));
}

TEST_CASE("labels out of range and invalid options are ValueErrors", "[bad-input]") {
  const auto logits = random_tensor<float>({3, 4}, 7);
  auto labels = Tensor<std::int64_t>::host({3});
  labels.view()(0) = 1;
  labels.view()(1) = 4;  // == classes
  labels.view()(2) = 0;
  auto d = filled({3, 4});
  REQUIRE_THROWS_WITH(CrossEntropyLoss<ReferenceBackend>(backend).compute(logits.cview(), labels.cview(), d.view()),
                      Contains("labels[1] = 4") && Contains("[0, 4)"));
  REQUIRE(untouched(d));
  labels.view()(1) = -1;
  REQUIRE_THROWS_AS(CrossEntropyLoss<ReferenceBackend>(backend).compute(logits.cview(), labels.cview(), d.view()),
                    ValueError);
  REQUIRE(untouched(d));

  REQUIRE_THROWS_AS(KlDivergenceLoss<ReferenceBackend>(backend, {.temperature = 0.0f}), ValueError);
  REQUIRE_THROWS_AS(KlDivergenceLoss<ReferenceBackend>(backend, {.temperature = -1.0f}), ValueError);
  REQUIRE_THROWS_AS(ResidualProjector<ReferenceBackend>(backend, {.dim = 0}), ValueError);
  REQUIRE_THROWS_AS(ResidualProjector<ReferenceBackend>(backend, {.dim = 4, .hidden = -2}), ValueError);
  REQUIRE_THROWS_AS(FeatureDistiller<ReferenceBackend>(backend, {.dim = 4, .weight = nan_value}), ValueError);
  SimilarityLogits<ReferenceBackend> sim(backend);
  REQUIRE_THROWS_AS(sim.forward(logits.cview(), logits.cview(), inf_value), ValueError);
}

TEST_CASE("backward before forward is a clear error", "[bad-input]") {
  auto d = filled({2, 3});
  const auto g = random_tensor<float>({2, 3}, 8);
  REQUIRE_THROWS_WITH(L2Normalize<ReferenceBackend>(backend).backward(g.cview(), d.view()), Contains("forward first"));
  REQUIRE_THROWS_WITH(ResidualProjector<ReferenceBackend>(backend, {.dim = 3}).backward(g.cview(), d.view()),
                      Contains("forward first"));
  REQUIRE_THROWS_WITH(TemporalPool<ReferenceBackend>(backend, Pooling::max).backward(g.cview(), d.view()),
                      Contains("forward first"));
  REQUIRE(untouched(d));
}

TEST_CASE("device views are rejected by the host backends", "[bad-input]") {
  auto host = random_tensor<float>({2, 3}, 9);
  const ConstView<float> on_gpu(host.data(), {2, 3}, Device::cuda(0));
  auto out = filled({2, 3});
  REQUIRE_THROWS_WITH(backend.copy(on_gpu, out.view()), Contains("must live on host") && Contains("on cuda"));
  REQUIRE(untouched(out));
}

TEST_CASE("non-contiguous views give the same results as dense ones", "[bad-input]") {
  const auto layout = GENERATE(Layout::column_major, Layout::padded_rows, Layout::reversed_rows);
  CAPTURE(to_string(layout));
  const index_t rows = 5, dim = 6;
  LaidOut<float> student(rows, dim, layout, 10);
  LaidOut<float> teacher(rows, dim, layout, 11);
  LaidOut<float> d_strided(rows, dim, layout, 12);
  LaidOut<float> student_dense(rows, dim, Layout::row_major, 10);
  LaidOut<float> teacher_dense(rows, dim, Layout::row_major, 11);
  auto d_dense = Tensor<float>::host({rows, dim});
  FeatureDistiller<ReferenceBackend> strided(backend, {.dim = dim, .seed = 1});
  FeatureDistiller<ReferenceBackend> dense(backend, {.dim = dim, .seed = 1});
  const double l_strided = strided.step(student.view, teacher.view, d_strided.view);
  const double l_dense = dense.step(student_dense.view, teacher_dense.view, d_dense.view());
  REQUIRE(l_strided == l_dense);
  FROSTER_REQUIRE_CLOSE(d_strided.view, d_dense.cview(), tol::same_math_fp64);
  FROSTER_REQUIRE_CLOSE(strided.projector().grad_w1(), dense.projector().grad_w1(), tol::same_math_fp64);
}
