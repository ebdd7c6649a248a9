// ClipModel: configuration read from checkpoints in both namings, loading, features against PyTorch (OpenAI CLIP
// and Hugging Face transformers' CLIPModel), zero-shot classification, and clear errors for broken checkpoints.

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <string>

#include <froster/cpu.hpp>
#include <froster/froster.hpp>

#include "support/fixtures.hpp"
#include "support/random.hpp"
#include "support/tolerance.hpp"

namespace {

using froster::ConstView;
using froster::index_t;
using froster::Tensor;
using froster::io::StateDict;
using froster::test::Fixture;
using froster::test::tol::pytorch_encoder_fp32;

const Fixture& openai_fixture() {
  static const Fixture f(froster::test::fixture_path("clip_encoders.fxt"));
  return f;
}
const Fixture& hf_fixture() {
  static const Fixture f(froster::test::fixture_path("clip_hf.fxt"));
  return f;
}

Tensor<float> copy_of(ConstView<float> v) {
  Tensor<float> t = Tensor<float>::host(v.extents());
  std::copy(v.data(), v.data() + v.numel(), t.data());
  return t;
}

/// The fixture entries under `prefix` as a state dict (what a checkpoint reader returns). Integer buffers
/// (Hugging Face's position_ids) become float as the readers convert them.
StateDict state_dict_from(const Fixture& f, const std::string& prefix, StateDict sd = {}) {
  for (const std::string& full : f.names_with_prefix(prefix)) {
    const std::string name = full.substr(prefix.size());
    if (name.ends_with("position_ids")) {
      const ConstView<std::int64_t> ids = f.i64(full);
      Tensor<float> t = Tensor<float>::host(ids.extents());
      for (index_t i = 0; i < t.numel(); ++i) t.data()[i] = float(ids.data()[i]);
      sd.insert(name, std::move(t), froster::io::StoredType::i64);
    } else {
      sd.insert(name, copy_of(f.f32(full)));
    }
  }
  return sd;
}

StateDict openai_state_dict() {
  return state_dict_from(openai_fixture(), "text/param/", state_dict_from(openai_fixture(), "vision/param/"));
}


}  // namespace

TEST_CASE("The CLIP configuration is read from an OpenAI-named state dict", "[model][clip]") {
  const StateDict sd = openai_state_dict();
  REQUIRE(froster::io::detect_clip_naming(sd) == froster::io::ClipNaming::openai);
  const auto c = froster::io::infer_clip_config(sd, 2, 2);
  const auto cfg = [](const std::string& n) { return openai_fixture().i64(n)(0); };
  CHECK(c.vision.image_size == cfg("vision/config/image_size"));
  CHECK(c.vision.patch_size == cfg("vision/config/patch_size"));
  CHECK(c.vision.width == cfg("vision/config/width"));
  CHECK(c.vision.layers == cfg("vision/config/layers"));
  CHECK(c.vision.heads == 2);
  CHECK(c.vision.output_dim == cfg("vision/config/output_dim"));
  CHECK(c.text.context_length == cfg("text/config/context_length"));
  CHECK(c.text.vocab_size == cfg("text/config/vocab_size"));
  CHECK(c.text.width == cfg("text/config/width"));
  CHECK(c.text.layers == cfg("text/config/layers"));
  CHECK(c.embed_dim == cfg("text/config/output_dim"));
  // Heads default to width / 64 as the reference; width 8 has none, which is an error telling what to do.
  CHECK_THROWS_WITH(froster::io::infer_clip_config(sd), Catch::Contains("give the head counts explicitly"));
}

TEMPLATE_TEST_CASE("ClipModel from an OpenAI state dict matches OpenAI CLIP's features", "[model][clip]",
                   froster::ReferenceBackend, froster::CpuBackend) {
  TestType backend;
  auto model = froster::ClipModel<TestType>::from_state_dict(backend, openai_state_dict(), 2, 2);
  FROSTER_REQUIRE_CLOSE(model->encode_image(openai_fixture().f32("vision/full/images")),
                        openai_fixture().f32("vision/full/features"), pytorch_encoder_fp32);
  FROSTER_REQUIRE_CLOSE(model->encode_text(openai_fixture().i64("text/tokens")), openai_fixture().f32("text/features"),
                        pytorch_encoder_fp32);
  CHECK(model->logit_scale() == Approx(froster::ClipModel<TestType>::initial_logit_scale));
}

TEST_CASE("A rejected state dict leaves the model as it was", "[model][clip][errors]") {
  froster::ReferenceBackend backend;
  const StateDict good = openai_state_dict();
  froster::ClipModel<froster::ReferenceBackend> model(backend, froster::io::infer_clip_config(good, 2, 2), 5);
  const StateDict before = model.state_dict();
  // Every parameter present and well shaped, plus one the model does not have (found after the parameters).
  StateDict extra = openai_state_dict();
  extra.insert("projector_v.0.weight", Tensor<float>::host({5, 5}));
  CHECK_THROWS_WITH(model.load(extra), Catch::Contains("unexpected tensor 'projector_v.0.weight'"));
  const StateDict after = model.state_dict();
  for (const auto& e : before) {
    INFO(e.name);
    CHECK(std::equal(e.tensor.data(), e.tensor.data() + e.tensor.numel(), after.at(e.name).data()));
  }
}

TEST_CASE("ClipModel::load packs the new weights again where the old ones were packed", "[model][clip][packed]") {
  froster::CpuBackend backend({.threads = 2});
  const StateDict sd = openai_state_dict();
  froster::ClipModel<froster::CpuBackend> model(backend, froster::io::infer_clip_config(sd, 2, 2), 5);
  model.pack_weights();  // packs the random initial weights
  model.load(sd);
  REQUIRE(model.visual().weights_packed());
  REQUIRE(model.text().weights_packed());
  FROSTER_REQUIRE_CLOSE(model.encode_image(openai_fixture().f32("vision/full/images")),
                        openai_fixture().f32("vision/full/features"), pytorch_encoder_fp32);
  FROSTER_REQUIRE_CLOSE(model.encode_text(openai_fixture().i64("text/tokens")), openai_fixture().f32("text/features"),
                        pytorch_encoder_fp32);
}

TEMPLATE_TEST_CASE("ClipModel from a Hugging Face CLIPModel state dict matches transformers", "[model][clip]",
                   froster::ReferenceBackend, froster::CpuBackend) {
  TestType backend;
  const StateDict sd = state_dict_from(hf_fixture(), "state/");
  REQUIRE(froster::io::detect_clip_naming(sd) == froster::io::ClipNaming::hugging_face);
  auto model = froster::ClipModel<TestType>::from_state_dict(backend, sd, 2, 2);
  CHECK(model->logit_scale() == Approx(hf_fixture().f64("logit_scale")(0)));

  const ConstView<float> image = model->encode_image(hf_fixture().f32("pixels"));
  FROSTER_REQUIRE_CLOSE(image, hf_fixture().f32("image_features"), pytorch_encoder_fp32);
  const ConstView<float> text = model->encode_text(hf_fixture().i64("tokens"));
  FROSTER_REQUIRE_CLOSE(text, hf_fixture().f32("text_features"), pytorch_encoder_fp32);

  // Zero-shot with one template per class is CLIP's logits_per_image.
  froster::ZeroShotClassifier<TestType> classifier(backend, text, 1);
  FROSTER_REQUIRE_CLOSE(classifier.logits(image, model->logit_scale()), hf_fixture().f32("logits_per_image"),
                        pytorch_encoder_fp32);
}

TEMPLATE_TEST_CASE("Gradients of a Hugging Face CLIPModel loaded by froster match transformers' autograd",
                   "[model][clip]", froster::ReferenceBackend, froster::CpuBackend) {
  TestType backend;
  auto model = froster::ClipModel<TestType>::from_state_dict(backend, state_dict_from(hf_fixture(), "state/"), 2, 2);
  model->visual().forward(hf_fixture().f32("pixels"));
  model->visual().backward(hf_fixture().f32("d_image_features"));
  model->text().forward(hf_fixture().i64("tokens"));
  model->text().backward(hf_fixture().f32("d_text_features"));
  // transformers' gradients under Hugging Face names, renamed like the weights (q/k/v stacked, projections
  // transposed): each must equal froster's gradient of the parameter it becomes.
  const StateDict expected = froster::io::hugging_face_to_openai(state_dict_from(hf_fixture(), "grad/"));
  std::size_t compared = 0;
  for (auto* params : {&model->visual().parameters(), &model->text().parameters()})
    for (auto& e : params->entries()) {
      INFO("gradient of " << e.name);
      const Tensor<float>& g = expected.at(e.name);
      REQUIRE(g.extents() == e.grad.extents());
      FROSTER_REQUIRE_CLOSE(e.grad.cview(), g.cview(), pytorch_encoder_fp32);
      ++compared;
    }
  CHECK(compared == expected.size() - (expected.contains("logit_scale") ? 1 : 0));  // every gradient compared
}

TEST_CASE("ZeroShotClassifier averages normalised templates and per-frame logits", "[model][zero-shot]") {
  froster::ReferenceBackend backend;
  const index_t classes = 3, templates = 4, e = 5, clips = 2, frames = 3;
  const Tensor<double> text = froster::test::random_tensor<double>({classes * templates, e}, 1);
  const Tensor<double> images = froster::test::random_tensor<double>({clips * frames, e}, 2);
  froster::ZeroShotClassifier<froster::ReferenceBackend, double> classifier(backend, text.cview(), templates);
  const double log_scale = 1.5;

  // The same in plain loops: normalise, mean, renormalise; cosine per frame times exp(scale), mean over frames.
  auto normalised = [&](const double* row) {
    std::vector<double> v(row, row + e);
    double n = 0;
    for (double x : v) n += x * x;
    for (double& x : v) x /= std::sqrt(n);
    return v;
  };
  std::vector<std::vector<double>> weights;
  for (index_t c = 0; c < classes; ++c) {
    std::vector<double> mean(e, 0.0);
    for (index_t k = 0; k < templates; ++k) {
      const auto v = normalised(text.data() + (c * templates + k) * e);
      for (index_t j = 0; j < e; ++j) mean[j] += v[j] / templates;
    }
    weights.push_back(normalised(mean.data()));
  }
  Tensor<double> expected = Tensor<double>::host({clips, classes});
  for (index_t clip = 0; clip < clips; ++clip)
    for (index_t c = 0; c < classes; ++c) {
      double sum = 0;
      for (index_t f = 0; f < frames; ++f) {
        const auto v = normalised(images.data() + (clip * frames + f) * e);
        double dot = 0;
        for (index_t j = 0; j < e; ++j) dot += v[j] * weights[c][j];
        sum += std::exp(log_scale) * dot;
      }
      expected.data()[clip * classes + c] = sum / frames;
    }
  const ConstView<double> logits = classifier.logits(images.cview(), log_scale, frames);
  FROSTER_REQUIRE_CLOSE(logits, expected.cview(), froster::test::tol::same_math_fp64);
  const ConstView<double> p = classifier.probabilities(logits);
  for (index_t clip = 0; clip < clips; ++clip) {
    double total = 0;
    for (index_t c = 0; c < classes; ++c) total += p(clip, c);
    CHECK(total == Approx(1.0).epsilon(1e-12));
  }
  CHECK_THROWS_WITH(classifier.logits(images.cview(), log_scale, 4), Catch::Contains("not whole clips of 4"));
  CHECK_THROWS_AS((froster::ZeroShotClassifier<froster::ReferenceBackend, double>(backend, text.cview(), 5)),
                  froster::ValueError);
}

TEST_CASE("Broken CLIP checkpoints give errors naming the tensor", "[model][clip][errors]") {
  froster::ReferenceBackend backend;
  using Model = froster::ClipModel<froster::ReferenceBackend>;
  const auto without = [](const std::string& skip) {
    StateDict sd;
    for (const auto& e : openai_state_dict())
      if (e.name != skip) sd.insert(e.name, copy_of(e.tensor.cview()));
    return sd;
  };
  CHECK_THROWS_WITH(Model::from_state_dict(backend, without("visual.transformer.resblocks.1.mlp.c_fc.bias"), 2, 2),
                    Catch::Contains("'visual.transformer.resblocks.1.mlp.c_fc.bias' is missing"));
  CHECK_THROWS_WITH(Model::from_state_dict(backend, without("text_projection"), 2, 2),
                    Catch::Contains("'text_projection' is missing"));

  StateDict extra = openai_state_dict();
  extra.insert("visual.transformer.resblocks.0.attn.bias_k", Tensor<float>::host_zeros({1, 8}));
  CHECK_THROWS_WITH(Model::from_state_dict(backend, extra, 2, 2),
                    Catch::Contains("unexpected tensor 'visual.transformer.resblocks.0.attn.bias_k'"));

  StateDict misshapen;
  for (const auto& e : openai_state_dict()) {
    if (e.name == "transformer.resblocks.0.ln_1.weight")
      misshapen.insert(e.name, Tensor<float>::host_zeros({e.tensor.numel() + 1}));
    else
      misshapen.insert(e.name, copy_of(e.tensor.cview()));
  }
  CHECK_THROWS_WITH(Model::from_state_dict(backend, misshapen, 2, 2),
                    Catch::Contains("'transformer.resblocks.0.ln_1.weight' has extents"));

  StateDict unknown;
  unknown.insert("encoder.weight", Tensor<float>::host_zeros({2, 2}));
  CHECK_THROWS_AS(Model::from_state_dict(backend, unknown), froster::FormatError);
  StateDict hf = state_dict_from(hf_fixture(), "state/");
  StateDict hf_missing;
  for (const auto& e : hf)
    if (e.name != "vision_model.encoder.layers.0.self_attn.k_proj.weight")
      hf_missing.insert(e.name, copy_of(e.tensor.cview()));
  CHECK_THROWS_WITH(froster::io::hugging_face_to_openai(hf_missing),
                    Catch::Contains("'vision_model.encoder.layers.0.self_attn.k_proj.weight' is missing"));
}
