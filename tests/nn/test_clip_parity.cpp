// Parity with PyTorch: the vision transformer (plain and with the temporal expand view) and the text transformer
// on the reference and cpu backends, in float32, against OpenAI CLIP's PyTorch model with the same weights
// (tests/reference/make_clip_fixtures.py): features, the gradient of every parameter and of the pixels. Packed
// weights (pack_weights) against unpacked ones, bitwise.

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <froster/cpu.hpp>
#include <froster/froster.hpp>

#include "support/fixtures.hpp"
#include "support/tolerance.hpp"

namespace {

using froster::ConstView;
using froster::index_t;
using froster::Tensor;
using froster::TensorView;
using froster::test::Fixture;
using froster::test::tol::pytorch_encoder_fp32;

const Fixture& clip_fixture() {
  static const Fixture f(froster::test::fixture_path("clip_encoders.fxt"));
  return f;
}

index_t config(const std::string& name) { return clip_fixture().i64(name)(0); }


/// Loads every fixture parameter under `prefix` into `params` and checks that the model has no other.
template <class Params>
void load_parameters(Params& params, const std::string& prefix) {
  const auto names = clip_fixture().names_with_prefix(prefix);
  REQUIRE(names.size() == params.size());
  for (const std::string& full : names) {
    const std::string name = full.substr(prefix.size());
    INFO("parameter " << name);
    params.load(name, clip_fixture().f32(full));
  }
}

/// Every parameter's gradient against `prefix + name`.
template <class Params>
void require_gradients(Params& params, const std::string& prefix) {
  for (auto& entry : params.entries()) {
    INFO("gradient of " << entry.name);
    const ConstView<float> expected = clip_fixture().f32(prefix + entry.name);
    REQUIRE(entry.grad.extents() == expected.extents());
    FROSTER_REQUIRE_CLOSE(entry.grad.cview(), expected, pytorch_encoder_fp32);
  }
}

froster::nn::VisionConfig vision_config(bool temporal) {
  return {.image_size = config("vision/config/image_size"),
          .patch_size = config("vision/config/patch_size"),
          .width = config("vision/config/width"),
          .layers = config("vision/config/layers"),
          .heads = config("vision/config/heads"),
          .output_dim = config("vision/config/output_dim"),
          .temporal_expand_view = temporal};
}

froster::nn::TextConfig text_config() {
  return {.context_length = config("text/config/context_length"),
          .vocab_size = config("text/config/vocab_size"),
          .width = config("text/config/width"),
          .layers = config("text/config/layers"),
          .heads = config("text/config/heads"),
          .output_dim = config("text/config/output_dim")};
}

}  // namespace

TEMPLATE_TEST_CASE("VisionTransformer matches PyTorch CLIP: features, parameter and pixel gradients", "[nn][clip]",
                   froster::ReferenceBackend, froster::CpuBackend) {
  const std::string mode = GENERATE("full", "temporal");
  const bool checkpointing = GENERATE(false, true);
  INFO("mode " << mode << ", gradient checkpointing " << checkpointing);
  TestType backend;
  auto cfg = vision_config(mode == "temporal");
  cfg.gradient_checkpointing = checkpointing;
  froster::nn::VisionTransformer<TestType, float> model(backend, cfg);
  load_parameters(model.parameters(), "vision/param/");

  const std::string c = "vision/" + mode + "/";
  const ConstView<float> images = clip_fixture().f32(c + "images");
  const ConstView<float> features = model.forward(images, config(c + "frames"));
  FROSTER_REQUIRE_CLOSE(features, clip_fixture().f32(c + "features"), pytorch_encoder_fp32);

  Tensor<float> d_images = Tensor<float>::host(images.extents());
  model.backward(clip_fixture().f32(c + "d_features"), d_images.view());
  FROSTER_REQUIRE_CLOSE(d_images.cview(), clip_fixture().f32(c + "d_images"), pytorch_encoder_fp32);
  require_gradients(model.parameters(), c + "grad/");
}

TEMPLATE_TEST_CASE("TextTransformer matches PyTorch CLIP: features and parameter gradients", "[nn][clip]",
                   froster::ReferenceBackend, froster::CpuBackend) {
  // "text_short": every prompt ends before the context does (froster skips the positions after the last end token).
  const std::string c = GENERATE("text/", "text_short/");
  const bool checkpointing = GENERATE(false, true);
  INFO("case " << c << ", gradient checkpointing " << checkpointing);
  TestType backend;
  auto cfg = text_config();
  cfg.gradient_checkpointing = checkpointing;
  froster::nn::TextTransformer<TestType, float> model(backend, cfg);
  load_parameters(model.parameters(), "text/param/");

  const ConstView<float> features = model.forward(clip_fixture().i64(c + "tokens"));
  FROSTER_REQUIRE_CLOSE(features, clip_fixture().f32(c + "features"), pytorch_encoder_fp32);
  model.backward(clip_fixture().f32(c + "d_features"));
  require_gradients(model.parameters(), c + "grad/");
}

namespace {

/// Copies a host view's values out (the encoders' results are overwritten by the next forward).
std::vector<float> values(ConstView<float> v) { return std::vector<float>(v.data(), v.data() + v.numel()); }

template <class Params>
std::vector<float> gradients(const Params& params) {
  std::vector<float> all;
  for (const auto& e : params.entries()) all.insert(all.end(), e.grad.data(), e.grad.data() + e.grad.numel());
  return all;
}

}  // namespace

TEST_CASE("Packed weights give bitwise the features and gradients of unpacked ones", "[nn][clip][packed]") {
  froster::CpuBackend backend({.threads = 2});
  froster::nn::VisionTransformer<froster::CpuBackend, float> vision(backend, vision_config(true));
  load_parameters(vision.parameters(), "vision/param/");
  froster::nn::TextTransformer<froster::CpuBackend, float> text(backend, text_config());
  load_parameters(text.parameters(), "text/param/");
  const ConstView<float> images = clip_fixture().f32("vision/temporal/images");
  const index_t frames = config("vision/temporal/frames");
  const ConstView<std::int64_t> tokens = clip_fixture().i64("text_short/tokens");

  // Training forwards and backwards, unpacked then packed: the same products from the same panels.
  const auto run = [&] {
    vision.zero_grad();
    text.zero_grad();
    std::vector<float> out = values(vision.forward(images, frames));
    vision.backward(clip_fixture().f32("vision/temporal/d_features"));
    const std::vector<float> t = values(text.forward(tokens));
    text.backward(clip_fixture().f32("text_short/d_features"));
    out.insert(out.end(), t.begin(), t.end());
    for (const auto& g : {gradients(vision.parameters()), gradients(text.parameters())})
      out.insert(out.end(), g.begin(), g.end());
    return out;
  };
  const std::vector<float> unpacked = run();
  REQUIRE_FALSE(vision.weights_packed());
  // Inference forwards compute the pooled tokens' last block alone (Transformer::forward_at), bitwise as training.
  const auto vision_end = unpacked.begin() + vision.config().output_dim * images.extent(0);
  const std::vector<float> text_training(vision_end, vision_end + text.config().output_dim * tokens.extent(0));
  REQUIRE(values(vision.forward(images, frames, false)) == std::vector<float>(unpacked.begin(), vision_end));
  REQUIRE(values(text.forward(tokens, false)) == text_training);
  vision.pack_weights();
  text.pack_weights();
  REQUIRE(vision.weights_packed());
  REQUIRE(text.weights_packed());
  const std::vector<float> packed = run();
  REQUIRE(packed.size() == unpacked.size());
  REQUIRE(std::memcmp(packed.data(), unpacked.data(), packed.size() * sizeof(float)) == 0);
  // Inference forwards read the packed copies as well.
  const std::vector<float> vision_before = values(vision.forward(images, frames, false));
  const std::vector<float> text_before = values(text.forward(tokens, false));
  REQUIRE(vision_before == std::vector<float>(unpacked.begin(), vision_end));
  REQUIRE(text_before == text_training);

  // They read the packed copies, not the weights: writes to a block weight and to the patch embedding go unseen
  // until the weights are packed again.
  const auto scale = [](auto& params, const std::string& name) {
    auto& e = params.at(name);
    for (index_t i = 0; i < e.value.numel(); ++i) e.value.data()[i] *= 2.0f;
  };
  scale(vision.parameters(), "visual.conv1.weight");
  scale(vision.parameters(), "visual.transformer.resblocks.0.mlp.c_fc.weight");
  scale(text.parameters(), "transformer.resblocks.0.mlp.c_fc.weight");
  REQUIRE(values(vision.forward(images, frames, false)) == vision_before);
  REQUIRE(values(text.forward(tokens, false)) == text_before);
  vision.pack_weights();
  text.pack_weights();
  REQUIRE(values(vision.forward(images, frames, false)) != vision_before);
  REQUIRE(values(text.forward(tokens, false)) != text_before);

  vision.unpack_weights();
  text.unpack_weights();
  REQUIRE_FALSE(vision.weights_packed());
  REQUIRE_FALSE(text.weights_packed());
}

TEST_CASE("Packing weights is a no-op on backends without packed operands", "[nn][clip][packed]") {
  froster::ReferenceBackend backend;
  froster::nn::TextTransformer<froster::ReferenceBackend, float> text(backend, text_config());
  text.pack_weights();
  REQUIRE_FALSE(text.weights_packed());
}
