// Finite-difference gradient checks in double of the CLIP encoders on the reference backend: the pixels, the
// token embeddings and every parameter of tiny models (plain, temporal expand view, causal text), and gradient
// checkpointing giving the same gradients as keeping every activation.

#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <froster/froster.hpp>

#include "support/gradcheck.hpp"
#include "support/random.hpp"
#include "support/tolerance.hpp"

namespace {

using froster::ConstView;
using froster::index_t;
using froster::ReferenceBackend;
using froster::Tensor;
using froster::TensorView;

using froster::test::flat;

/// loss = sum(features * weights): its gradient with respect to the features is `weights`.
double weighted_sum(ConstView<double> features, ConstView<double> weights) {
  double s = 0;
  for (index_t i = 0; i < features.rows(); ++i)
    for (index_t j = 0; j < features.cols(); ++j) s += features(i, j) * weights(i, j);
  return s;
}

/// Checks d loss / d parameter for every parameter of `model` (after backward) by central differences. The key
/// third of attention's in_proj_bias has an exactly zero gradient (softmax ignores a shift shared by all keys), where
/// a finite difference is pure round-off: it is checked to be zero instead. Not so under the temporal expand view,
/// whose implicit zero keys keep a score of 0 while the bias shifts the others.
template <class Model, class Forward>
void require_parameter_gradients(Model& model, Forward&& loss, bool key_bias_shift_invariant = true) {
  for (auto& entry : model.parameters().entries()) {
    INFO("parameter " << entry.name);
    Tensor<double> analytic = Tensor<double>::host(entry.grad.extents());
    std::copy(entry.grad.data(), entry.grad.data() + entry.grad.numel(), analytic.data());
    const TensorView<double> values = flat(entry.value.view()), grads = flat(analytic.view());
    std::vector<std::pair<index_t, index_t>> checked{{0, values.numel()}};
    if (key_bias_shift_invariant && entry.name.ends_with("attn.in_proj_bias")) {
      const index_t width = values.numel() / 3;
      for (index_t i = width; i < 2 * width; ++i) REQUIRE(std::abs(grads(0, i)) < 1e-12);
      checked = {{0, width}, {2 * width, width}};
    }
    for (auto [begin, count] : checked) {
      const auto part = [&](TensorView<double> v) { return TensorView<double>(v.data() + begin, {1, count}); };
      const auto report = froster::test::check_gradient(loss, part(values), ConstView<double>(part(grads)));
      INFO(report.message);
      REQUIRE(report.ok);
    }
  }
}

froster::nn::VisionConfig tiny_vision(bool temporal, bool checkpointing) {
  return {.image_size = 6, .patch_size = 3, .width = 8, .layers = 2, .heads = 2, .output_dim = 3,
          .temporal_expand_view = temporal, .gradient_checkpointing = checkpointing};
}

}  // namespace

TEST_CASE("VisionTransformer gradients match finite differences in double", "[nn][gradients]") {
  const bool temporal = GENERATE(false, true);
  INFO("temporal expand view " << temporal);
  ReferenceBackend backend;
  froster::nn::VisionTransformer<ReferenceBackend, double> model(backend, tiny_vision(temporal, false), 11);
  const index_t frames = temporal ? 3 : 1, images = temporal ? 6 : 2;
  Tensor<double> pixels = froster::test::random_tensor<double>({images, 3, 6, 6}, 1);
  const Tensor<double> weights = froster::test::random_tensor<double>({images, 3}, 2);
  auto loss = [&] { return weighted_sum(model.forward(pixels.cview(), frames), weights.cview()); };

  loss();
  Tensor<double> d_pixels = Tensor<double>::host(pixels.extents());
  model.backward(weights.cview(), d_pixels.view());
  const auto report = froster::test::check_gradient(loss, flat(pixels.view()), flat(d_pixels.view()));
  INFO(report.message);
  REQUIRE(report.ok);
  require_parameter_gradients(model, loss, !temporal);
}

TEST_CASE("TextTransformer gradients match finite differences in double", "[nn][gradients]") {
  ReferenceBackend backend;
  froster::nn::TextTransformer<ReferenceBackend, double> model(
      backend, {.context_length = 5, .vocab_size = 9, .width = 8, .layers = 2, .heads = 2, .output_dim = 3}, 12);
  // Sequences of different lengths (end token 8 = the highest id), one token repeated so the table's rows
  // accumulate.
  const std::int64_t ids[] = {7, 3, 3, 8, 0, 7, 8, 0, 0, 0};
  const ConstView<std::int64_t> tokens(ids, {2, 5});
  const Tensor<double> weights = froster::test::random_tensor<double>({2, 3}, 3);
  auto loss = [&] { return weighted_sum(model.forward(tokens), weights.cview()); };
  loss();
  model.backward(weights.cview());
  require_parameter_gradients(model, loss);
}

TEST_CASE("TextTransformer gradient with respect to the input embeddings", "[nn][gradients]") {
  // End positions {3, 1}: every position computed; {2, 1}: the last one skipped (its gradient must be zero).
  const std::vector<index_t> ends = GENERATE(std::vector<index_t>{3, 1}, std::vector<index_t>{2, 1});
  INFO("end positions " << ends[0] << ", " << ends[1]);
  ReferenceBackend backend;
  froster::nn::TextTransformer<ReferenceBackend, double> model(
      backend, {.context_length = 4, .vocab_size = 9, .width = 8, .layers = 1, .heads = 2, .output_dim = 3}, 13);
  Tensor<double> embeddings = froster::test::random_tensor<double>({2 * 4, 8}, 4);
  const Tensor<double> weights = froster::test::random_tensor<double>({2, 3}, 5);
  auto loss = [&] { return weighted_sum(model.forward_embeddings(embeddings.cview(), 2, ends), weights.cview()); };
  loss();
  Tensor<double> d_embeddings = Tensor<double>::host(embeddings.extents());
  model.backward(weights.cview(), d_embeddings.view());
  const auto report = froster::test::check_gradient(loss, embeddings.view(), d_embeddings.cview());
  INFO(report.message);
  REQUIRE(report.ok);
}

TEST_CASE("TextTransformer forward from ids writes the gradient of the embeddings it gathered", "[nn][gradients]") {
  // The embeddings of a forward from ids are the token table's rows plus the positional embedding: the gradient
  // written to d_embeddings is the one the table's rows receive, and zero past the last end token.
  ReferenceBackend backend;
  froster::nn::TextTransformer<ReferenceBackend, double> model(
      backend, {.context_length = 5, .vocab_size = 9, .width = 8, .layers = 1, .heads = 2, .output_dim = 3}, 14);
  const std::int64_t ids[] = {7, 3, 8, 0, 0, 5, 8, 0, 0, 0};  // ends at 2 and 1: positions 3 and 4 skipped
  const ConstView<std::int64_t> tokens(ids, {2, 5});
  const Tensor<double> weights = froster::test::random_tensor<double>({2, 3}, 6);
  model.forward(tokens);
  Tensor<double> d_embeddings = Tensor<double>::host({2 * 5, 8});
  model.backward(weights.cview(), d_embeddings.view());
  // The table rows of ids 7, 3 and 5 are each gathered once: their gradients are those rows of d_embeddings.
  const auto& table = model.parameters().at("token_embedding.weight").grad;
  for (const auto& [row, id] : {std::pair{0, 7}, std::pair{1, 3}, std::pair{5, 5}})
    for (index_t j = 0; j < 8; ++j) REQUIRE(d_embeddings.cview()(row, j) == table.cview()(id, j));
  for (const index_t row : {3, 4, 7, 8, 9})
    for (index_t j = 0; j < 8; ++j) REQUIRE(d_embeddings.cview()(row, j) == 0.0);
  // ... and the gradient is the loss's: finite differences through the embeddings of the same sequences.
  Tensor<double> embeddings = Tensor<double>::host({2 * 5, 8});
  const ConstView<double> table_values = model.parameters().at("token_embedding.weight").value.cview();
  const ConstView<double> positions = model.parameters().at("positional_embedding").value.cview();
  for (index_t r = 0; r < 10; ++r)
    for (index_t j = 0; j < 8; ++j) embeddings.view()(r, j) = table_values(ids[r], j) + positions(r % 5, j);
  auto loss = [&] { return weighted_sum(model.forward_embeddings(embeddings.cview(), 2, {2, 1}), weights.cview()); };
  const auto report = froster::test::check_gradient(loss, embeddings.view(), d_embeddings.cview());
  INFO(report.message);
  REQUIRE(report.ok);
}

TEST_CASE("Gradient checkpointing recomputes the same gradients and keeps less memory", "[nn][gradients]") {
  // The same operations in the same order either way (checkpointing reuses the last block's activations from
  // forward and recomputes the others): bitwise equal gradients.
  ReferenceBackend backend;
  auto run = [&](bool checkpointing, std::size_t& activation_bytes) {
    froster::nn::VisionTransformer<ReferenceBackend, double> model(backend, tiny_vision(true, checkpointing), 21);
    const Tensor<double> pixels = froster::test::random_tensor<double>({6, 3, 6, 6}, 6);
    const Tensor<double> weights = froster::test::random_tensor<double>({6, 3}, 7);
    const auto all_gradients = [&] {
      std::vector<double> grads;
      for (auto& e : model.parameters().entries())
        grads.insert(grads.end(), e.grad.data(), e.grad.data() + e.grad.numel());
      return grads;
    };
    model.forward(pixels.cview(), 3);
    model.backward(weights.cview());
    activation_bytes = model.activation_bytes();
    const std::vector<double> grads = all_gradients();
    // A second backward without a forward accumulates the same gradients again. Checkpointing, the first used the
    // last block's activations as forward left them; recomputing the earlier blocks replaced them, so this one
    // must recompute them.
    model.backward(weights.cview());
    const std::vector<double> twice = all_gradients();
    std::vector<double> doubled(grads);
    for (double& g : doubled) g *= 2.0;
    FROSTER_REQUIRE_CLOSE(ConstView<double>(twice.data(), {index_t(twice.size())}),
                          ConstView<double>(doubled.data(), {index_t(doubled.size())}),
                          froster::test::tol::same_math_fp64);
    return grads;
  };
  std::size_t kept = 0, recomputed = 0;
  const auto full = run(false, kept);
  const auto checkpointed = run(true, recomputed);
  REQUIRE(full == checkpointed);
  REQUIRE(recomputed < kept);

  // Switching checkpointing between forward and backward drops what forward kept: backward asks for a new forward.
  froster::nn::VisionTransformer<ReferenceBackend, double> model(backend, tiny_vision(false, true), 22);
  model.forward(froster::test::random_tensor<double>({2, 3, 6, 6}, 8).cview());
  model.transformer().set_gradient_checkpointing(false);
  CHECK_THROWS_WITH(model.backward(froster::test::random_tensor<double>({2, 3}, 9).cview()),
                    Catch::Contains("run a training forward first"));
}

TEST_CASE("Encoders reject inputs of the wrong shape or out-of-vocabulary tokens", "[nn][errors]") {
  ReferenceBackend backend;
  froster::nn::VisionTransformer<ReferenceBackend, double> vision(backend, tiny_vision(true, false));
  const Tensor<double> wrong_size = Tensor<double>::host_zeros({2, 3, 9, 9});
  CHECK_THROWS_AS(vision.forward(wrong_size.cview()), froster::ShapeError);
  const Tensor<double> five = Tensor<double>::host_zeros({5, 3, 6, 6});
  CHECK_THROWS_WITH(vision.forward(five.cview(), 3), Catch::Contains("5 images are not whole clips of 3 frames"));
  const Tensor<double> d = Tensor<double>::host_zeros({2, 3});
  CHECK_THROWS_WITH(vision.backward(d.cview()), Catch::Contains("call forward first"));

  froster::nn::TextTransformer<ReferenceBackend, double> text(
      backend, {.context_length = 5, .vocab_size = 9, .width = 8, .layers = 1, .heads = 2, .output_dim = 3});
  const std::int64_t bad[] = {1, 9};
  CHECK_THROWS_WITH(text.forward(ConstView<std::int64_t>(bad, {1, 2})),
                    Catch::Contains("token id 9 at [0, 1] is outside the vocabulary [0, 9)"));
  const std::int64_t too_long[6] = {};
  CHECK_THROWS_AS(text.forward(ConstView<std::int64_t>(too_long, {1, 6})), froster::ShapeError);
  CHECK_THROWS_WITH(froster::nn::VisionTransformer<ReferenceBackend>(backend, {.image_size = 7, .patch_size = 3}),
                    Catch::Contains("image_size 7 must be a positive multiple of patch_size 3"));
}

TEST_CASE("Inference forwards keep no activations, give the same features, and refuse backward", "[nn][inference]") {
  ReferenceBackend backend;
  froster::nn::VisionTransformer<ReferenceBackend, double> model(backend, tiny_vision(true, false), 31);
  const Tensor<double> pixels = froster::test::random_tensor<double>({6, 3, 6, 6}, 8);
  const std::size_t untouched = model.activation_bytes();
  const ConstView<double> inference = model.forward(pixels.cview(), 3, false);
  const std::vector<double> first(inference.data(), inference.data() + inference.numel());
  const std::size_t inference_bytes = model.activation_bytes() - untouched;
  for (const auto& e : model.parameters().entries()) CHECK(!e.grad.allocated());  // no gradient memory yet

  const Tensor<double> weights = froster::test::random_tensor<double>({6, 3}, 9);
  CHECK_THROWS_WITH(model.backward(weights.cview()), Catch::Contains("kept no activations"));
  for (const auto& e : model.parameters().entries()) CHECK(!e.grad.allocated());

  const ConstView<double> training = model.forward(pixels.cview(), 3);
  CHECK(std::vector<double>(training.data(), training.data() + training.numel()) == first);
  CHECK(model.activation_bytes() - untouched > inference_bytes);
  model.backward(weights.cview());

  // The text encoder's inference pools the end tokens of sequences of different lengths (ends at 3, 1 and 4).
  froster::nn::TextTransformer<ReferenceBackend, double> text(
      backend, {.context_length = 5, .vocab_size = 9, .width = 8, .layers = 2, .heads = 2, .output_dim = 3}, 32);
  const std::int64_t ids[] = {7, 3, 3, 8, 0, 7, 8, 0, 0, 0, 1, 2, 3, 4, 8};
  const ConstView<std::int64_t> tokens(ids, {3, 5});
  const ConstView<double> text_inference = text.forward(tokens, false);
  const std::vector<double> text_first(text_inference.data(), text_inference.data() + text_inference.numel());
  CHECK_THROWS_WITH(text.backward(froster::test::random_tensor<double>({3, 3}, 10).cview()),
                    Catch::Contains("kept no activations"));
  const ConstView<double> text_training = text.forward(tokens);
  CHECK(std::vector<double>(text_training.data(), text_training.data() + text_training.numel()) == text_first);
}

TEST_CASE("Transformer::forward_at equals forward at the selected rows", "[nn][inference]") {
  ReferenceBackend backend;
  froster::nn::ParameterSet<ReferenceBackend, double> params(backend);
  const index_t layers = GENERATE(1, 2);
  froster::nn::Transformer<ReferenceBackend, double> transformer(backend, params, "t",
                                                                 {.width = 8, .layers = layers, .heads = 2});
  params.initialize(41);
  const Tensor<double> x = froster::test::random_tensor<double>({2 * 5, 8}, 42);
  const froster::AttentionSpec spec{.batch = 2, .tokens = 5, .mask = froster::AttentionMask::causal};
  const ConstView<double> full = transformer.forward(x.cview(), spec, false);
  const std::vector<double> expected(full.data(), full.data() + full.numel());
  // Unordered, repeated, first and last rows.
  const std::vector<index_t> rows{9, 0, 3, 3, 6};
  const ConstView<double> at = transformer.forward_at(x.cview(), spec, rows);
  REQUIRE(at.rows() == index_t(rows.size()));
  REQUIRE(at.cols() == 8);
  for (std::size_t i = 0; i < rows.size(); ++i)
    for (index_t j = 0; j < 8; ++j) REQUIRE(at(index_t(i), j) == expected[std::size_t(rows[i] * 8 + j)]);
  CHECK_FALSE(transformer.kept_activations());
  CHECK_THROWS_WITH(transformer.backward(full, {}), Catch::Contains("without keeping activations"));
  // The same refusal when forward_at is the first forward a transformer runs.
  froster::nn::ParameterSet<ReferenceBackend, double> fresh_params(backend);
  froster::nn::Transformer<ReferenceBackend, double> fresh(backend, fresh_params, "u", {.width = 8, .layers = 1, .heads = 2});
  fresh_params.initialize(43);
  fresh.forward_at(x.cview(), spec, rows);
  CHECK_THROWS_WITH(fresh.backward(at, {}), Catch::Contains("without keeping activations"));

  CHECK_THROWS_WITH(transformer.forward_at(x.cview(), spec, std::vector<index_t>{}),
                    Catch::Contains("between 1 and x's 10 rows can be selected"));
  CHECK_THROWS_WITH(transformer.forward_at(x.cview(), spec, std::vector<index_t>(11, 0)),
                    Catch::Contains("got 11"));
  CHECK_THROWS_WITH(transformer.forward_at(x.cview(), spec, std::vector<index_t>{0, 10}),
                    Catch::Contains("selected row 10 is outside x's 10 rows"));
  CHECK_THROWS_AS(transformer.forward_at(x.cview(), spec, std::vector<index_t>{-1}), froster::ShapeError);
}
