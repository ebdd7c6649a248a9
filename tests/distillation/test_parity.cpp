// Parity with PyTorch: every distillation component, on every host backend, in float32, against the outputs and
// autograd gradients PyTorch computed for the same inputs (tests/reference/make_fixtures.py writes the fixtures;
// tests/reference/README.md says how to regenerate them). The bar is tol::pytorch_fp32.

#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <string>

#include <froster/eigen.hpp>
#include <froster/froster.hpp>

#include "support/fixtures.hpp"
#include "support/tolerance.hpp"

// The backends under test; tests/backends/cpu/test_parity_cpu.cpp re-uses this file for the CPU backend at each
// ISA level.
#ifndef FROSTER_PARITY_BACKENDS
#define FROSTER_PARITY_BACKENDS froster::ReferenceBackend, froster::EigenBackend
#endif

namespace {

using froster::ConstView;
using froster::Tensor;
using froster::index_t;
using froster::test::Fixture;
using froster::test::tol::pytorch_fp32;

const Fixture& fixtures() {
  static const Fixture f(froster::test::fixture_path("distillation.fxt"));
  return f;
}

ConstView<float> f32(const std::string& name) { return fixtures().f32(name); }

/// Scalars are stored with extents [1]: PyTorch's results as f32, hyperparameters as f64, counts as i64.
double scalar(const std::string& name) {
  const ConstView<float> v = f32(name);
  REQUIRE(v.numel() == 1);
  return double(v(0));
}
double parameter(const std::string& name) {
  const ConstView<double> v = fixtures().f64(name);
  REQUIRE(v.numel() == 1);
  return v(0);
}
index_t count(const std::string& name) {
  const ConstView<std::int64_t> v = fixtures().i64(name);
  REQUIRE(v.numel() == 1);
  return v(0);
}

/// An output buffer shaped like `v`, filled with NaN so that an element the code under test forgets to write fails.
template <class T = float>
Tensor<T> output_like(ConstView<T> v) {
  Tensor<T> t = Tensor<T>::host(v.extents());
  for (index_t i = 0; i < t.numel(); ++i) t.data()[i] = std::numeric_limits<T>::quiet_NaN();
  return t;
}

/// `factor * v`, for accumulated gradients (factor 2 is exact in floating point).
Tensor<float> scaled(ConstView<float> v, float factor) {
  Tensor<float> t = Tensor<float>::host(v.extents());
  const float* src = v.data();
  for (index_t i = 0; i < t.numel(); ++i) t.data()[i] = factor * src[i];
  return t;
}

#define REQUIRE_PYTORCH(actual, name) FROSTER_REQUIRE_CLOSE((actual), f32(name), pytorch_fp32)
#define REQUIRE_PYTORCH_SCALAR(actual, name) FROSTER_REQUIRE_CLOSE(double(actual), scalar(name), pytorch_fp32)

/// The forward and backward of the residual projector of fixture group `prefix`, including `+=` accumulation.
template <class B>
void check_projector(const std::string& prefix) {
  B backend;
  const ConstView<float> z = f32(prefix + "/z"), w1 = f32(prefix + "/w1"), w2 = f32(prefix + "/w2");
  froster::ResidualProjector<B, float> projector(
      backend, {z.cols(), w1.rows(), parameter(prefix + "/alpha"), /*seed=*/0});
  projector.load(w1, w2);
  Tensor<float> dz = output_like(z);

  REQUIRE_PYTORCH(projector.forward(z), prefix + "/h");
  projector.backward(f32(prefix + "/dh"), dz.view());
  REQUIRE_PYTORCH(dz.cview(), prefix + "/dz");
  REQUIRE_PYTORCH(projector.grad_w1(), prefix + "/dw1");
  REQUIRE_PYTORCH(projector.grad_w2(), prefix + "/dw2");

  SECTION("parameter gradients accumulate until zero_grad") {
    projector.forward(z);
    projector.backward(f32(prefix + "/dh"), dz.view());
    REQUIRE_PYTORCH(dz.cview(), prefix + "/dz");  // activation gradients are written, not accumulated
    FROSTER_REQUIRE_CLOSE(projector.grad_w1(), scaled(f32(prefix + "/dw1"), 2).cview(), pytorch_fp32);
    FROSTER_REQUIRE_CLOSE(projector.grad_w2(), scaled(f32(prefix + "/dw2"), 2).cview(), pytorch_fp32);
    projector.zero_grad();
    projector.forward(z);
    projector.backward(f32(prefix + "/dh"), dz.view());
    REQUIRE_PYTORCH(projector.grad_w1(), prefix + "/dw1");
    REQUIRE_PYTORCH(projector.grad_w2(), prefix + "/dw2");
  }
}

/// A two-input loss of fixture group `prefix`: the scalar and the gradients to both inputs.
template <class Loss>
void check_pair_loss(Loss& loss, const std::string& prefix) {
  const ConstView<float> a = f32(prefix + "/a"), b = f32(prefix + "/b");
  Tensor<float> da = output_like(a), db = output_like(b);
  const double value = loss.compute(a, b, da.view(), db.view());
  REQUIRE_PYTORCH_SCALAR(value, prefix + "/loss");
  REQUIRE_PYTORCH(da.cview(), prefix + "/da");
  REQUIRE_PYTORCH(db.cview(), prefix + "/db");
  REQUIRE_PYTORCH_SCALAR(loss.compute(a, b), prefix + "/loss");  // the forward-only path agrees
}

}  // namespace

TEMPLATE_TEST_CASE("ResidualProjector matches PyTorch", "[parity][projector]", FROSTER_PARITY_BACKENDS) {
  SECTION("hidden == dim") { check_projector<TestType>("projector"); }
  SECTION("hidden != dim") { check_projector<TestType>("projector_wide"); }
}

TEMPLATE_TEST_CASE("L2Normalize matches PyTorch", "[parity][normalize]", FROSTER_PARITY_BACKENDS) {
  TestType backend;
  froster::L2Normalize<TestType, float> normalize(backend);
  const ConstView<float> x = f32("normalize/x");
  Tensor<float> dx = output_like(x);
  REQUIRE_PYTORCH(normalize.forward(x), "normalize/y");
  normalize.backward(f32("normalize/dy"), dx.view());
  REQUIRE_PYTORCH(dx.cview(), "normalize/dx");
}

TEMPLATE_TEST_CASE("CosineDistillationLoss matches PyTorch", "[parity][losses]", FROSTER_PARITY_BACKENDS) {
  TestType backend;
  froster::CosineDistillationLoss<TestType, float> loss(backend);
  check_pair_loss(loss, "cosine");
}

TEMPLATE_TEST_CASE("CosineDistillationLoss matches PyTorch on a zero student row", "[parity][losses]",
                   FROSTER_PARITY_BACKENDS) {
  TestType backend;
  froster::CosineDistillationLoss<TestType, float> loss(backend);
  const std::string prefix = "cosine_zero_row";
  const ConstView<float> a = f32(prefix + "/a"), b = f32(prefix + "/b");
  const auto zero = count(prefix + "/row");
  Tensor<float> da = output_like(a), db = output_like(b);
  REQUIRE_PYTORCH_SCALAR(loss.compute(a, b, da.view(), db.view()), prefix + "/loss");
  // The zero row's gradient is b / (eps ||b|| rows), ~1e7: compared on its own, so that the tolerance's
  // tensor-scale floor does not let it swamp the O(0.1) gradients of the other rows.
  const auto compare_rows = [&](const Tensor<float>& actual, const std::string& name) {
    const ConstView<float> expected = f32(name);
    const index_t rows = expected.rows();
    FROSTER_REQUIRE_CLOSE(actual.cview().slice_rows(0, zero), expected.slice_rows(0, zero), pytorch_fp32);
    FROSTER_REQUIRE_CLOSE(actual.cview().slice_rows(zero, 1), expected.slice_rows(zero, 1), pytorch_fp32);
    FROSTER_REQUIRE_CLOSE(actual.cview().slice_rows(zero + 1, rows - zero - 1),
                          expected.slice_rows(zero + 1, rows - zero - 1), pytorch_fp32);
  };
  compare_rows(da, prefix + "/da");
  compare_rows(db, prefix + "/db");
}

TEMPLATE_TEST_CASE("MseLoss and L1Loss match PyTorch", "[parity][losses]", FROSTER_PARITY_BACKENDS) {
  TestType backend;
  SECTION("mse") {
    froster::MseLoss<TestType, float> loss(backend);
    check_pair_loss(loss, "mse");
  }
  SECTION("l1") {
    froster::L1Loss<TestType, float> loss(backend);
    check_pair_loss(loss, "l1");
  }
}

TEMPLATE_TEST_CASE("KlDivergenceLoss matches PyTorch", "[parity][losses]", FROSTER_PARITY_BACKENDS) {
  TestType backend;
  const std::string prefix = GENERATE(as<std::string>{}, "kl_t2", "kl_t1");
  INFO(prefix);
  froster::KlDivergenceLoss<TestType, float> loss(backend, {float(parameter(prefix + "/temperature"))});
  check_pair_loss(loss, prefix);
}

TEMPLATE_TEST_CASE("CrossEntropyLoss and SoftCrossEntropyLoss match PyTorch", "[parity][losses]",
                   FROSTER_PARITY_BACKENDS) {
  TestType backend;
  SECTION("hard labels") {
    froster::CrossEntropyLoss<TestType, float> loss(backend);
    const ConstView<float> logits = f32("cross_entropy/logits");
    Tensor<float> d_logits = output_like(logits);
    REQUIRE_PYTORCH_SCALAR(loss.compute(logits, fixtures().i64("cross_entropy/labels"), d_logits.view()),
                           "cross_entropy/loss");
    REQUIRE_PYTORCH(d_logits.cview(), "cross_entropy/dlogits");
  }
  SECTION("target probabilities") {
    froster::SoftCrossEntropyLoss<TestType, float> loss(backend);
    const ConstView<float> logits = f32("soft_cross_entropy/logits");
    Tensor<float> d_logits = output_like(logits);
    REQUIRE_PYTORCH_SCALAR(loss.compute(logits, f32("soft_cross_entropy/targets"), d_logits.view()),
                           "soft_cross_entropy/loss");
    REQUIRE_PYTORCH(d_logits.cview(), "soft_cross_entropy/dlogits");
  }
}

TEMPLATE_TEST_CASE("SimilarityLogits matches PyTorch", "[parity][similarity]", FROSTER_PARITY_BACKENDS) {
  TestType backend;
  froster::SimilarityLogits<TestType, float> similarity(backend);
  const ConstView<float> image = f32("similarity/image"), text = f32("similarity/text");
  Tensor<float> d_image = output_like(image), d_text = output_like(text);
  REQUIRE_PYTORCH(similarity.forward(image, text, float(scalar("similarity/logit_scale"))), "similarity/logits");
  const double d_logit_scale = similarity.backward(f32("similarity/dlogits"), d_image.view(), d_text.view());
  REQUIRE_PYTORCH(d_image.cview(), "similarity/dimage");
  REQUIRE_PYTORCH(d_text.cview(), "similarity/dtext");
  REQUIRE_PYTORCH_SCALAR(d_logit_scale, "similarity/dlogit_scale");
}

TEMPLATE_TEST_CASE("TemporalPool matches PyTorch", "[parity][pooling]", FROSTER_PARITY_BACKENDS) {
  TestType backend;
  const auto [prefix, mode] = GENERATE(table<std::string, froster::Pooling>(
      {{"pool_mean", froster::Pooling::mean}, {"pool_max", froster::Pooling::max}}));
  INFO(prefix);
  froster::TemporalPool<TestType, float> pool(backend, mode);
  const ConstView<float> x = f32(prefix + "/x");
  Tensor<float> dx = output_like(x);
  REQUIRE_PYTORCH(pool.forward(x, count(prefix + "/frames")), prefix + "/y");
  pool.backward(f32(prefix + "/dy"), dx.view());
  REQUIRE_PYTORCH(dx.cview(), prefix + "/dx");
}

TEMPLATE_TEST_CASE("FeatureDistiller step matches PyTorch", "[parity][distiller]", FROSTER_PARITY_BACKENDS) {
  TestType backend;
  const ConstView<float> student = f32("distiller/student"), w1 = f32("distiller/w1");
  froster::FeatureDistillerConfig config;
  config.dim = student.cols();
  config.hidden = w1.rows();
  config.alpha = parameter("distiller/alpha");
  config.weight = parameter("distiller/weight");
  froster::FeatureDistiller<TestType, float> distiller(backend, config);
  distiller.projector().load(w1, f32("distiller/w2"));
  Tensor<float> d_student = output_like(student);
  REQUIRE_PYTORCH_SCALAR(distiller.step(student, f32("distiller/teacher"), d_student.view()), "distiller/loss");
  REQUIRE_PYTORCH(d_student.cview(), "distiller/dstudent");
  REQUIRE_PYTORCH(distiller.projector().grad_w1(), "distiller/dw1");
  REQUIRE_PYTORCH(distiller.projector().grad_w2(), "distiller/dw2");
  REQUIRE_PYTORCH_SCALAR(distiller.evaluate(student, f32("distiller/teacher")), "distiller/loss");
}
