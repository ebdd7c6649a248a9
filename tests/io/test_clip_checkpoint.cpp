// CLIP checkpoints through files: a model saved with save_safetensors loads back identical (every parameter and
// the logit scale, bitwise), and a Hugging Face model directory (model.safetensors + config.json with the head
// counts) loads through load_clip_checkpoint and computes what transformers' CLIPModel computes; a training
// checkpoint holding a student, a teacher and projectors loads the CLIP asked for.

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

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

/// A one-layer CLIP small enough to build many times.
froster::io::ClipConfig one_layer_config() {
  froster::io::ClipConfig config;
  config.vision = {.image_size = 8, .patch_size = 4, .width = 64, .layers = 1, .heads = 0, .output_dim = 7};
  config.text = {.context_length = 5, .vocab_size = 11, .width = 64, .layers = 1, .heads = 0, .output_dim = 7};
  config.embed_dim = 7;
  return config;
}

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

TEST_CASE("A training checkpoint with a student, a teacher and projectors loads the CLIP asked for", "[io][clip]") {
  // FROSTER's layout: the fine-tuned student under model., the frozen teacher under raw_model., the distillation
  // projectors at the top level. Two models with different seeds tell which one was loaded.
  const froster::test::ScratchDir dir("froster_clip_checkpoint");
  froster::ReferenceBackend backend;
  const froster::io::ClipConfig config = one_layer_config();
  froster::ClipModel<froster::ReferenceBackend> student(backend, config, 3), teacher(backend, config, 4);
  froster::io::StateDict file;
  file.merge(student.state_dict(), "model.");
  file.merge(teacher.state_dict(), "raw_model.");
  file.insert("projector_v.0.weight", Tensor<float>::host({7, 7}));
  file.insert("projector_v.2.weight", Tensor<float>::host({7, 7}));
  const std::string path = (dir.path / "froster_checkpoint.safetensors").string();
  froster::io::save_safetensors(path, file);

  CHECK_THROWS_WITH(froster::io::load_clip_checkpoint(path),
                    Catch::Contains("2 CLIP models, under the prefixes 'model.', 'raw_model.'") &&
                        Catch::Contains("--prefix"));

  CHECK_THROWS_WITH(froster::io::load_clip_checkpoint(path, {.prefix = "student."}),
                    Catch::Contains("no CLIP under the prefix 'student.'") &&
                        Catch::Contains("found under: 'model.', 'raw_model.'"));

  for (const auto& [prefix, expected] : {std::pair{"model.", &student}, std::pair{"raw_model.", &teacher}}) {
    INFO("prefix " << prefix);
    const froster::io::ClipCheckpoint ckpt = froster::io::load_clip_checkpoint(path, {.prefix = prefix});
    CHECK(ckpt.prefix == prefix);
    // Everything else is left out: the other model's tensors and both projector weights.
    CHECK(ckpt.ignored.size() == expected->state_dict().size() + 2);
    auto loaded = froster::ClipModel<froster::ReferenceBackend>::from_state_dict(backend, ckpt.state);
    const froster::io::StateDict want = expected->state_dict(), got = loaded->state_dict();
    REQUIRE(want.names() == got.names());
    for (const auto& e : want) {
      INFO(e.name);
      CHECK(std::equal(e.tensor.data(), e.tensor.data() + e.tensor.numel(), got.at(e.name).data()));
    }
  }

  // One CLIP under a prefix (a student-only save whose prefix the reader did not strip) needs no choice.
  froster::io::StateDict student_only;
  student_only.merge(student.state_dict(), "model.");
  student_only.insert("prompt_embed", Tensor<float>::host({2, 64}));
  const std::string single = (dir.path / "student.safetensors").string();
  froster::io::save_safetensors(single, student_only);
  const froster::io::ClipCheckpoint ckpt = froster::io::load_clip_checkpoint(single);
  CHECK(ckpt.prefix == "model.");
  CHECK(ckpt.ignored == std::vector<std::string>{"prompt_embed"});
  CHECK(ckpt.state.size() == student.state_dict().size());
}

TEST_CASE("The top-level CLIP of a file that also holds a prefixed one can be chosen", "[io][clip]") {
  const froster::test::ScratchDir dir("froster_clip_checkpoint");
  froster::ReferenceBackend backend;
  const froster::io::ClipConfig config = one_layer_config();
  froster::ClipModel<froster::ReferenceBackend> top(backend, config, 3), other(backend, config, 4);
  froster::io::StateDict file = top.state_dict();
  file.merge(other.state_dict(), "raw_model.");
  const std::string path = (dir.path / "two.safetensors").string();
  froster::io::save_safetensors(path, file);
  CHECK_THROWS_WITH(froster::io::load_clip_checkpoint(path),
                    Catch::Contains("2 CLIP models") && Catch::Contains("(top level)") &&
                        Catch::Contains("'raw_model.'"));
  const froster::io::ClipCheckpoint ckpt = froster::io::load_clip_checkpoint(path, {.prefix = ""});
  CHECK(ckpt.prefix.empty());
  CHECK(ckpt.ignored.size() == other.state_dict().size());
  auto loaded = froster::ClipModel<froster::ReferenceBackend>::from_state_dict(backend, ckpt.state);
  const froster::io::StateDict want = top.state_dict(), got = loaded->state_dict();
  for (const auto& e : want) {
    INFO(e.name);
    CHECK(std::equal(e.tensor.data(), e.tensor.data() + e.tensor.numel(), got.at(e.name).data()));
  }
}

TEST_CASE("A prefix the torch reader already stripped still names the CLIP", "[io][clip]") {
  // torch.save files whose every tensor starts with `model.` come out of the reader without it; asking for
  // `model.` (what the file stores) must find the CLIP now at the top level.
  froster::ReferenceBackend backend;
  const froster::io::ClipConfig config = one_layer_config();
  froster::io::ClipCheckpoint ckpt;
  ckpt.state = froster::ClipModel<froster::ReferenceBackend>(backend, config, 3).state_dict();
  froster::io::clip_detail::select_clip(ckpt, std::string("model."), "model.", "student.pt");
  CHECK(ckpt.prefix.empty());
  CHECK(ckpt.ignored.empty());
  CHECK_THROWS_WITH(froster::io::clip_detail::select_clip(ckpt, std::string("raw_model."), "model.", "student.pt"),
                    Catch::Contains("no CLIP under the prefix 'raw_model.' (CLIPs found under: (top level))"));
}

TEST_CASE("StateDict::merge prefixes names and rejects a duplicate before moving anything", "[io]") {
  froster::io::StateDict a, b, c;
  a.insert("x", Tensor<float>::host({2}));
  b.insert("x", Tensor<float>::host({3}));
  b.insert("y", Tensor<float>::host({1}));
  a.merge(std::move(b), "p.");
  CHECK(a.names() == std::vector<std::string>{"x", "p.x", "p.y"});
  c.insert("y", Tensor<float>::host({4}));
  c.insert("x", Tensor<float>::host({5}));
  CHECK_THROWS_WITH(a.merge(std::move(c)), Catch::Contains("already holds a tensor named 'x'"));
  CHECK(a.size() == 3);
  CHECK(c.size() == 2);  // nothing moved
  const froster::io::StateDict taken = a.extract_prefix("p.");
  CHECK(taken.names() == std::vector<std::string>{"x", "y"});
  CHECK(a.names() == std::vector<std::string>{"x"});
}
