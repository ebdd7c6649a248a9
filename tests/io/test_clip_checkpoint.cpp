// CLIP checkpoints through files: a model saved with save_safetensors loads back identical (every parameter and
// the logit scale, bitwise), and a Hugging Face model directory (model.safetensors + config.json with the head
// counts) loads through load_clip_checkpoint and computes what transformers' CLIPModel computes.

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#include <froster/froster.hpp>
#include <froster/io/clip_loader.hpp>
#include <froster/io/safetensors.hpp>

#include "support/fixtures.hpp"
#include "support/scratch_dir.hpp"
#include "support/tolerance.hpp"

namespace {

namespace fs = std::filesystem;
using froster::ConstView;
using froster::index_t;
using froster::Tensor;


}  // namespace

TEST_CASE("A CLIP saved to safetensors loads back bitwise identical", "[io][clip]") {
  const froster::test::ScratchDir dir("froster_clip_checkpoint");
  froster::ReferenceBackend backend;
  froster::io::ClipConfig config;
  config.vision = {.image_size = 8, .patch_size = 4, .width = 64, .layers = 2, .heads = 0, .output_dim = 7};
  config.text = {.context_length = 5, .vocab_size = 11, .width = 64, .layers = 1, .heads = 0, .output_dim = 7};
  config.embed_dim = 7;
  froster::ClipModel<froster::ReferenceBackend> original(backend, config, 3);
  original.set_logit_scale(3.25);
  const std::string path = (dir.path / "clip.safetensors").string();
  froster::io::save_safetensors(path, original.state_dict());

  const froster::io::ClipCheckpoint loaded = froster::io::load_clip_checkpoint(path);
  CHECK(loaded.format == "safetensors");
  auto model = froster::ClipModel<froster::ReferenceBackend>::from_state_dict(backend, loaded.state);
  CHECK(model->config().vision.layers == 2);
  CHECK(model->config().text.vocab_size == 11);
  CHECK(model->logit_scale() == 3.25);
  const froster::io::StateDict a = original.state_dict(), b = model->state_dict();
  REQUIRE(a.names() == b.names());
  for (const auto& e : a) {
    INFO(e.name);
    const Tensor<float>& t = b.at(e.name);
    REQUIRE(t.extents() == e.tensor.extents());
    CHECK(std::equal(e.tensor.data(), e.tensor.data() + e.tensor.numel(), t.data()));
  }
}

TEST_CASE("A Hugging Face CLIP directory loads with its config.json and matches transformers", "[io][clip]") {
  const froster::test::ScratchDir dir("froster_clip_checkpoint");
  const froster::test::Fixture hf(froster::test::fixture_path("clip_hf.fxt"));
  froster::io::StateDict sd;
  for (const std::string& full : hf.names_with_prefix("state/")) {
    const std::string name = full.substr(6);
    if (name.ends_with("position_ids")) continue;  // int64 buffers: the safetensors tests cover their conversion
    const ConstView<float> v = hf.f32(full);
    Tensor<float> t = Tensor<float>::host(v.extents());
    std::copy(v.data(), v.data() + v.numel(), t.data());
    sd.insert(name, std::move(t));
  }
  froster::io::save_safetensors((dir.path / "model.safetensors").string(), sd);
  {
    std::ofstream config(dir.path / "config.json");
    config << R"({"text_config": {"num_attention_heads": 2, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-05},
                  "vision_config": {"num_attention_heads": 2, "hidden_act": "quick_gelu"}, "projection_dim": 5})";
  }
  const froster::io::ClipCheckpoint ckpt = froster::io::load_clip_checkpoint(dir.path.string());
  CHECK(ckpt.vision_heads == 2);
  CHECK(ckpt.text_heads == 2);
  CHECK(ckpt.format.find("hugging face directory") != std::string::npos);
  froster::ReferenceBackend backend;
  auto model = froster::ClipModel<froster::ReferenceBackend>::from_state_dict(backend, ckpt.state, ckpt.vision_heads,
                                                                              ckpt.text_heads);
  FROSTER_REQUIRE_CLOSE(model->encode_image(hf.f32("pixels")), hf.f32("image_features"),
                        froster::test::tol::pytorch_encoder_fp32);
  FROSTER_REQUIRE_CLOSE(model->encode_text(hf.i64("tokens")), hf.f32("text_features"),
                        froster::test::tol::pytorch_encoder_fp32);

  // A configuration froster cannot run is refused by name.
  {
    std::ofstream config(dir.path / "config.json");
    config << R"({"vision_config": {"hidden_act": "gelu"}})";
  }
  CHECK_THROWS_WITH(froster::io::load_clip_checkpoint(dir.path.string()), Catch::Contains("vision_config.hidden_act"));
  fs::remove(dir.path / "model.safetensors");
  CHECK_THROWS_AS(froster::io::load_clip_checkpoint(dir.path.string()), froster::IoError);
  CHECK_THROWS_AS(froster::io::load_clip_checkpoint((dir.path / "absent.pt").string()), froster::IoError);
}
