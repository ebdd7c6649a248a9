// Parity with PyTorch: the vision transformer (plain and with the temporal expand view) and the text transformer
// on the reference and cpu backends, in float32, against OpenAI CLIP's PyTorch model with the same weights
// (tests/reference/make_clip_fixtures.py): features, the gradient of every parameter and of the pixels.

#include <catch2/catch.hpp>

#include <cstdint>
#include <string>

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
  const bool checkpointing = GENERATE(false, true);
  INFO("gradient checkpointing " << checkpointing);
  TestType backend;
  auto cfg = text_config();
  cfg.gradient_checkpointing = checkpointing;
  froster::nn::TextTransformer<TestType, float> model(backend, cfg);
  load_parameters(model.parameters(), "text/param/");

  const ConstView<float> features = model.forward(clip_fixture().i64("text/tokens"));
  FROSTER_REQUIRE_CLOSE(features, clip_fixture().f32("text/features"), pytorch_encoder_fp32);
  model.backward(clip_fixture().f32("text/d_features"));
  require_gradients(model.parameters(), "text/grad/");
}
