// Finite-difference gradient checks, in double on the reference backend, for every distillation op and component.
// Each check builds a scalar loss L = <w, output> with a random weight w (or the component's own scalar loss) and
// compares the analytic gradient of every input and parameter against central differences.

#include <catch2/catch.hpp>
#include <froster/froster.hpp>

#include "support/gradcheck.hpp"
#include "support/random.hpp"

using namespace froster;
using froster::test::check_gradient;
using froster::test::check_scalar_gradient;
using froster::test::random_tensor;

namespace {

ReferenceBackend backend;

/// <w, v> for host views of equal extents.
double weighted_sum(ConstView<double> w, ConstView<double> v) { return backend.dot(w, v); }

}  // namespace

TEST_CASE("L2Normalize gradient", "[gradient]") {
  auto x = random_tensor<double>({5, 7}, 1);
  const auto w = random_tensor<double>({5, 7}, 2);
  L2Normalize<ReferenceBackend, double> norm(backend);
  auto loss = [&] { return weighted_sum(w.cview(), norm.forward(x.cview())); };
  loss();
  auto dx = Tensor<double>::host({5, 7});
  norm.backward(w.cview(), dx.view());
  FROSTER_REQUIRE_GRADIENT(check_gradient(loss, x.view(), dx.cview()));
}

TEST_CASE("ResidualProjector gradients to input, W1 and W2", "[gradient]") {
  const index_t rows = 6, dim = 5;
  const index_t hidden = GENERATE(index_t(5), index_t(3), index_t(8));
  ResidualProjector<ReferenceBackend, double> proj(backend, {.dim = dim, .hidden = hidden, .alpha = 0.1, .seed = 7});
  auto z = random_tensor<double>({rows, dim}, 3);
  auto w1 = random_tensor<double>({hidden, dim}, 4);
  auto w2 = random_tensor<double>({dim, hidden}, 5);  // non-zero, so the residual path carries gradient
  const auto w = random_tensor<double>({rows, dim}, 6);
  auto loss = [&] {
    proj.load(w1.cview(), w2.cview());
    return weighted_sum(w.cview(), proj.forward(z.cview()));
  };
  loss();
  auto dz = Tensor<double>::host({rows, dim});
  proj.zero_grad();
  proj.backward(w.cview(), dz.view());
  FROSTER_REQUIRE_GRADIENT(check_gradient(loss, z.view(), dz.cview()));
  FROSTER_REQUIRE_GRADIENT(check_gradient(loss, w1.view(), proj.grad_w1()));
  FROSTER_REQUIRE_GRADIENT(check_gradient(loss, w2.view(), proj.grad_w2()));
}

TEST_CASE("Cosine, MSE and L1 losses: gradients to both inputs", "[gradient]") {
  auto a = random_tensor<double>({7, 4}, 11);
  auto b = random_tensor<double>({7, 4}, 12);
  auto da = Tensor<double>::host({7, 4});
  auto db = Tensor<double>::host({7, 4});
  SECTION("cosine") {
    CosineDistillationLoss<ReferenceBackend, double> loss_fn(backend);
    auto loss = [&] { return loss_fn.compute(a.cview(), b.cview()); };
    loss_fn.compute(a.cview(), b.cview(), da.view(), db.view());
    FROSTER_REQUIRE_GRADIENT(check_gradient(loss, a.view(), da.cview()));
    FROSTER_REQUIRE_GRADIENT(check_gradient(loss, b.view(), db.cview()));
  }
  SECTION("cosine with a row whose norm is below eps (the clamp branch)") {
    // eps large enough that row 2 of `a` (scaled to norm ~1e-3) is clamped, small enough for finite differences.
    CosineDistillationLoss<ReferenceBackend, double> loss_fn(backend, {.eps = 1e-2});
    for (index_t j = 0; j < 4; ++j) a.view()(2, j) *= 1e-3;
    auto loss = [&] { return loss_fn.compute(a.cview(), b.cview()); };
    loss_fn.compute(a.cview(), b.cview(), da.view(), db.view());
    // PyTorch's clamp is invisible to autograd, so the gradient is *not* the derivative of the clamped value in
    // that row: d/da = b / (ca cb) - cos a / (|a| ca) while the value is <a, b> / (eps cb). Check the other rows
    // numerically, and that row against the closed form.
    const double na = std::sqrt(backend.dot(ConstView<double>(a.view().slice_rows(2, 1)),
                                            ConstView<double>(a.view().slice_rows(2, 1))));
    const double nb = std::sqrt(backend.dot(ConstView<double>(b.view().slice_rows(2, 1)),
                                            ConstView<double>(b.view().slice_rows(2, 1))));
    const double ab = backend.dot(ConstView<double>(a.view().slice_rows(2, 1)), ConstView<double>(b.view().slice_rows(2, 1)));
    const double cos = ab / (1e-2 * nb);
    for (index_t j = 0; j < 4; ++j) {
      const double expected = -(b.view()(2, j) / (1e-2 * nb) - cos * a.view()(2, j) / (na * 1e-2)) / 7.0;
      REQUIRE(da.view()(2, j) == Approx(expected).epsilon(1e-12));
    }
    auto unclamped_rows = [&](TensorView<double> v) { return v.slice_rows(3, 4); };
    FROSTER_REQUIRE_GRADIENT(check_gradient(loss, unclamped_rows(a.view()), ConstView<double>(unclamped_rows(da.view()))));
  }
  SECTION("mse") {
    MseLoss<ReferenceBackend, double> loss_fn(backend);
    auto loss = [&] { return loss_fn.compute(a.cview(), b.cview()); };
    loss_fn.compute(a.cview(), b.cview(), da.view(), db.view());
    FROSTER_REQUIRE_GRADIENT(check_gradient(loss, a.view(), da.cview()));
    FROSTER_REQUIRE_GRADIENT(check_gradient(loss, b.view(), db.cview()));
  }
  SECTION("l1") {
    L1Loss<ReferenceBackend, double> loss_fn(backend);
    auto loss = [&] { return loss_fn.compute(a.cview(), b.cview()); };
    loss_fn.compute(a.cview(), b.cview(), da.view(), db.view());
    FROSTER_REQUIRE_GRADIENT(check_gradient(loss, a.view(), da.cview()));
    FROSTER_REQUIRE_GRADIENT(check_gradient(loss, b.view(), db.cview()));
  }
}

TEST_CASE("KL divergence with temperature: gradients to student and teacher logits", "[gradient]") {
  const double temperature = GENERATE(1.0, 2.0, 4.0);
  auto s = random_tensor<double>({5, 6}, 21, 2.0);
  auto t = random_tensor<double>({5, 6}, 22, 2.0);
  auto ds = Tensor<double>::host({5, 6});
  auto dt = Tensor<double>::host({5, 6});
  KlDivergenceLoss<ReferenceBackend, double> loss_fn(backend, {.temperature = temperature});
  auto loss = [&] { return loss_fn.compute(s.cview(), t.cview()); };
  loss_fn.compute(s.cview(), t.cview(), ds.view(), dt.view());
  FROSTER_REQUIRE_GRADIENT(check_gradient(loss, s.view(), ds.cview()));
  FROSTER_REQUIRE_GRADIENT(check_gradient(loss, t.view(), dt.cview()));
}

TEST_CASE("Cross-entropy, hard and soft targets: gradient to logits", "[gradient]") {
  auto logits = random_tensor<double>({6, 5}, 31, 2.0);
  auto dlogits = Tensor<double>::host({6, 5});
  SECTION("hard labels") {
    auto labels = Tensor<std::int64_t>::host({6});
    for (index_t i = 0; i < 6; ++i) labels.view()(i) = (3 * i + 1) % 5;
    CrossEntropyLoss<ReferenceBackend, double> loss_fn(backend);
    auto loss = [&] { return loss_fn.compute(logits.cview(), labels.cview()); };
    loss_fn.compute(logits.cview(), labels.cview(), dlogits.view());
    FROSTER_REQUIRE_GRADIENT(check_gradient(loss, logits.view(), dlogits.cview()));
  }
  SECTION("soft targets, rows not summing to one") {
    auto targets = random_tensor<double>({6, 5}, 32);
    for (index_t i = 0; i < 6; ++i)
      for (index_t j = 0; j < 5; ++j) targets.view()(i, j) = std::abs(targets.view()(i, j));
    SoftCrossEntropyLoss<ReferenceBackend, double> loss_fn(backend);
    auto loss = [&] { return loss_fn.compute(logits.cview(), targets.cview()); };
    loss_fn.compute(logits.cview(), targets.cview(), dlogits.view());
    FROSTER_REQUIRE_GRADIENT(check_gradient(loss, logits.view(), dlogits.cview()));
  }
}

TEST_CASE("SimilarityLogits gradients to image, text and logit_scale", "[gradient]") {
  auto image = random_tensor<double>({5, 4}, 41);
  auto text = random_tensor<double>({3, 4}, 42);
  const auto w = random_tensor<double>({5, 3}, 43);
  double logit_scale = std::log(1 / 0.07) / 4;  // smaller than CLIP's so finite differences stay well conditioned
  SimilarityLogits<ReferenceBackend, double> sim(backend);
  auto loss = [&] { return weighted_sum(w.cview(), sim.forward(image.cview(), text.cview(), logit_scale)); };
  loss();
  auto d_image = Tensor<double>::host({5, 4});
  auto d_text = Tensor<double>::host({3, 4});
  const double d_scale = sim.backward(w.cview(), d_image.view(), d_text.view());
  FROSTER_REQUIRE_GRADIENT(check_gradient(loss, image.view(), d_image.cview()));
  FROSTER_REQUIRE_GRADIENT(check_gradient(loss, text.view(), d_text.cview()));
  FROSTER_REQUIRE_GRADIENT(check_scalar_gradient(loss, logit_scale, d_scale));
}

TEST_CASE("TemporalPool gradients, mean and max", "[gradient]") {
  const Pooling mode = GENERATE(Pooling::mean, Pooling::max);
  const index_t clips = 3, frames = 4, channels = 5;
  auto x = random_tensor<double>({clips * frames, channels}, 51);
  const auto w = random_tensor<double>({clips, channels}, 52);
  TemporalPool<ReferenceBackend, double> pool(backend, mode);
  auto loss = [&] { return weighted_sum(w.cview(), pool.forward(x.cview(), frames)); };
  loss();
  auto dx = Tensor<double>::host({clips * frames, channels});
  pool.backward(w.cview(), dx.view());
  FROSTER_REQUIRE_GRADIENT(check_gradient(loss, x.view(), dx.cview()));
}

TEST_CASE("Activation gradients (GELU, QuickGELU)", "[gradient]") {
  const Activation act = GENERATE(Activation::gelu, Activation::quick_gelu);
  auto x = random_tensor<double>({4, 9}, 61, 2.0);
  const auto w = random_tensor<double>({4, 9}, 62);
  auto y = Tensor<double>::host({4, 9});
  auto loss = [&] {
    backend.activation_forward(act, x.cview(), y.view());
    return weighted_sum(w.cview(), y.cview());
  };
  auto dx = Tensor<double>::host({4, 9});
  backend.activation_backward(act, x.cview(), w.cview(), dx.view());
  FROSTER_REQUIRE_GRADIENT(check_gradient(loss, x.view(), dx.cview()));
}

TEST_CASE("FeatureDistiller: gradients to the student and the projector", "[gradient]") {
  const FeatureLoss kind = GENERATE(FeatureLoss::cosine, FeatureLoss::mse, FeatureLoss::l1);
  const bool normalize = GENERATE(true, false);
  const index_t rows = 5, dim = 6;
  FeatureDistiller<ReferenceBackend, double> distiller(
      backend, {.dim = dim, .hidden = 4, .seed = 3, .loss = kind, .weight = 2.0, .normalize = normalize});
  auto student = random_tensor<double>({rows, dim}, 71);
  const auto teacher = random_tensor<double>({rows, dim}, 72);
  auto w1 = random_tensor<double>({4, dim}, 73);
  auto w2 = random_tensor<double>({dim, 4}, 74);
  auto loss = [&] {
    distiller.projector().load(w1.cview(), w2.cview());
    return distiller.evaluate(student.cview(), teacher.cview());
  };
  loss();
  auto d_student = Tensor<double>::host({rows, dim});
  distiller.projector().zero_grad();
  const double value = distiller.step(student.cview(), teacher.cview(), d_student.view());
  REQUIRE(value == Approx(loss()).epsilon(1e-14));
  FROSTER_REQUIRE_GRADIENT(check_gradient(loss, student.view(), d_student.cview()));
  FROSTER_REQUIRE_GRADIENT(check_gradient(loss, w1.view(), distiller.projector().grad_w1()));
  FROSTER_REQUIRE_GRADIENT(check_gradient(loss, w2.view(), distiller.projector().grad_w2()));
}

TEST_CASE("LayerNorm gradients to input, gamma and beta", "[gradient]") {
  const index_t rows = 4, cols = 7;
  auto x = random_tensor<double>({rows, cols}, 81, 2.0);
  auto gamma = random_tensor<double>({cols}, 82);
  auto beta = random_tensor<double>({cols}, 83);
  const auto w = random_tensor<double>({rows, cols}, 84);
  auto y = Tensor<double>::host({rows, cols});
  auto mean = Tensor<double>::host({rows}), rstd = Tensor<double>::host({rows});
  auto loss = [&] {
    backend.layer_norm_forward(x.cview(), gamma.cview(), beta.cview(), 1e-5, y.view(), mean.view(), rstd.view());
    return weighted_sum(w.cview(), y.cview());
  };
  loss();
  auto dx = Tensor<double>::host({rows, cols});
  auto dgamma = Tensor<double>::host_zeros({cols}), dbeta = Tensor<double>::host_zeros({cols});
  backend.layer_norm_backward(x.cview(), gamma.cview(), mean.cview(), rstd.cview(), w.cview(), dx.view(),
                              dgamma.view(), dbeta.view());
  FROSTER_REQUIRE_GRADIENT(check_gradient(loss, x.view(), dx.cview()));
  FROSTER_REQUIRE_GRADIENT(check_gradient(loss, gamma.view(), dgamma.cview()));
  FROSTER_REQUIRE_GRADIENT(check_gradient(loss, beta.view(), dbeta.cview()));
}

TEST_CASE("Softmax gradients, full and causal", "[gradient]") {
  const bool causal = GENERATE(false, true);
  const index_t tokens = 5;
  auto x = random_tensor<double>({2 * tokens, tokens}, 91, 2.0);  // two [tokens, tokens] score blocks
  const auto w = random_tensor<double>({2 * tokens, tokens}, 92);
  auto y = Tensor<double>::host({2 * tokens, tokens});
  auto loss = [&] {
    backend.softmax_forward(x.cview(), 0.7, causal, y.view());
    return weighted_sum(w.cview(), y.cview());
  };
  loss();
  if (causal) REQUIRE(y.view()(tokens + 1, 2) == 0.0);  // query 1 of the second block cannot see key 2
  auto dx = Tensor<double>::host({2 * tokens, tokens});
  backend.softmax_backward(y.cview(), w.cview(), 0.7, dx.view());
  FROSTER_REQUIRE_GRADIENT(check_gradient(loss, x.view(), dx.cview()));
}
