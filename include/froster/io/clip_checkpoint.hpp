#pragma once
/// @file
/// CLIP checkpoints as state dicts: the model configuration read from the tensors themselves, as OpenAI's
/// `build_model` does, and the Hugging Face `CLIPModel` naming translated to OpenAI's (the naming froster's
/// encoders use), so one loader serves both. No backend is involved: these are host-side renamings and copies.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "froster/io/state_dict.hpp"
#include "froster/nn/text_transformer.hpp"
#include "froster/nn/vision_transformer.hpp"

namespace froster::io {

/// A whole CLIP: both encoders' configurations and the shared embedding width.
struct ClipConfig {
  nn::VisionConfig vision;
  nn::TextConfig text;
  index_t embed_dim = 0;
};

/// Which naming a state dict uses.
enum class ClipNaming : std::uint8_t { openai, hugging_face };

namespace clip_detail {

inline const Tensor<float>& tensor_of(const StateDict& sd, std::string_view name, int rank) {
  require<FormatError>(sd.contains(name), "CLIP checkpoint: tensor '", name, "' is missing");
  const Tensor<float>& t = sd.at(name);
  require<FormatError>(t.rank() == rank, "CLIP checkpoint: tensor '", name, "' must have rank ", rank, ", has extents ",
                       t.extents());
  return t;
}

/// The number of distinct `<prefix><N>.` layer indices among the names: 0..N-1 must all be present.
inline index_t count_layers(const StateDict& sd, std::string_view prefix) {
  std::set<index_t> seen;
  for (const auto& e : sd) {
    if (!e.name.starts_with(prefix)) continue;
    const std::string_view rest = std::string_view(e.name).substr(prefix.size());
    index_t n = 0;
    std::size_t i = 0;
    for (; i < rest.size() && rest[i] >= '0' && rest[i] <= '9' && n < 100000; ++i) n = n * 10 + (rest[i] - '0');
    if (i > 0 && i < rest.size() && rest[i] == '.') seen.insert(n);
  }
  const index_t layers = index_t(seen.size());
  require<FormatError>(layers == 0 || *seen.rbegin() == layers - 1, "CLIP checkpoint: layers under '", prefix,
                       "' are not numbered 0..", layers - 1, " (highest ", seen.empty() ? -1 : *seen.rbegin(), ")");
  return layers;
}

inline Tensor<float> transposed(const Tensor<float>& t) {
  const index_t r = t.extent(0), c = t.extent(1);
  Tensor<float> out = Tensor<float>::host({c, r});
  for (index_t i = 0; i < r; ++i)
    for (index_t j = 0; j < c; ++j) out.data()[j * r + i] = t.data()[i * c + j];
  return out;
}

inline Tensor<float> copied(const Tensor<float>& t) {
  Tensor<float> out = Tensor<float>::host(t.extents());
  std::copy(t.data(), t.data() + t.numel(), out.data());
  return out;
}

/// Stacks equal-width matrices (or vectors) along the first dimension: q, k, v -> in_proj.
inline Tensor<float> stacked(const std::vector<const Tensor<float>*>& parts) {
  Dims extents = parts[0]->extents();
  index_t rows = 0;
  for (const Tensor<float>* p : parts) {
    Dims e = p->extents();
    e[0] = extents[0];
    require<FormatError>(e == extents, "CLIP checkpoint: q, k, v projections differ in shape: ", parts[0]->extents(),
                         " vs ", p->extents());
    rows += p->extent(0);
  }
  extents[0] = rows;
  Tensor<float> out = Tensor<float>::host(extents);
  float* dst = out.data();
  for (const Tensor<float>* p : parts) dst = std::copy(p->data(), p->data() + p->numel(), dst);
  return out;
}

}  // namespace clip_detail

/// The tensors that mark a CLIP in each naming: the image tower's and the text tower's first weight.
inline constexpr std::string_view openai_clip_roots[] = {"visual.conv1.weight", "token_embedding.weight"};
inline constexpr std::string_view hugging_face_clip_roots[] = {"vision_model.embeddings.patch_embedding.weight",
                                                              "text_model.embeddings.token_embedding.weight"};

/// OpenAI names carry `visual.conv1.weight`; Hugging Face ones `vision_model.embeddings.patch_embedding.weight`.
inline ClipNaming detect_clip_naming(const StateDict& sd) {
  const auto has_any = [&](const auto& roots) {
    return std::any_of(std::begin(roots), std::end(roots), [&](std::string_view r) { return sd.contains(r); });
  };
  if (has_any(openai_clip_roots)) return ClipNaming::openai;
  if (has_any(hugging_face_clip_roots)) return ClipNaming::hugging_face;
  require<FormatError>(!sd.contains("visual.layer1.0.conv1.weight"),
                       "CLIP checkpoint: a ResNet image encoder (visual.layer1...) is not supported, only ViT");
  throw FormatError(froster::detail::concat("CLIP checkpoint: neither OpenAI names (visual.conv1.weight, ",
                                   "token_embedding.weight) nor Hugging Face names (vision_model.embeddings..., ",
                                   "text_model.embeddings...) found among ", sd.size(), " tensors"));
}

/// Renames a Hugging Face `CLIPModel` state dict to OpenAI's naming: q/k/v projections stacked into in_proj,
/// projections transposed (`visual_projection.weight` [E, D] -> `visual.proj` [D, E]). Buffers such as
/// `position_ids` are dropped; any other tensor it does not know is an error naming it.
inline StateDict hugging_face_to_openai(const StateDict& hf) {
  StateDict out;
  std::set<std::string> used;
  const auto take = [&](const std::string& name) -> const Tensor<float>& {
    require<FormatError>(hf.contains(name), "CLIP checkpoint (Hugging Face naming): tensor '", name, "' is missing");
    used.insert(name);
    return hf.at(name);
  };
  const auto rename = [&](const std::string& from, const std::string& to) {
    out.insert(to, clip_detail::copied(take(from)), hf.entry(from).stored);
  };
  const auto tower = [&](const std::string& hf_prefix, const std::string& oa_prefix) {
    const index_t layers = clip_detail::count_layers(hf, hf_prefix + ".encoder.layers.");
    for (index_t i = 0; i < layers; ++i) {
      const std::string h = hf_prefix + ".encoder.layers." + std::to_string(i) + ".";
      const std::string o = oa_prefix + ".resblocks." + std::to_string(i) + ".";
      for (const char* kind : {"weight", "bias"}) {
        const std::string k = kind;
        out.insert(o + "attn.in_proj_" + k,
                   clip_detail::stacked({&take(h + "self_attn.q_proj." + k), &take(h + "self_attn.k_proj." + k),
                                    &take(h + "self_attn.v_proj." + k)}),
                   hf.entry(h + "self_attn.q_proj." + k).stored);
        rename(h + "self_attn.out_proj." + k, o + "attn.out_proj." + k);
        rename(h + "layer_norm1." + k, o + "ln_1." + k);
        rename(h + "layer_norm2." + k, o + "ln_2." + k);
        rename(h + "mlp.fc1." + k, o + "mlp.c_fc." + k);
        rename(h + "mlp.fc2." + k, o + "mlp.c_proj." + k);
      }
    }
  };
  if (hf.contains("vision_model.embeddings.patch_embedding.weight")) {
    rename("vision_model.embeddings.class_embedding", "visual.class_embedding");
    rename("vision_model.embeddings.patch_embedding.weight", "visual.conv1.weight");
    rename("vision_model.embeddings.position_embedding.weight", "visual.positional_embedding");
    for (const char* k : {"weight", "bias"}) {
      rename(std::string("vision_model.pre_layrnorm.") + k, std::string("visual.ln_pre.") + k);
      rename(std::string("vision_model.post_layernorm.") + k, std::string("visual.ln_post.") + k);
    }
    tower("vision_model", "visual.transformer");
    out.insert("visual.proj", clip_detail::transposed(clip_detail::tensor_of(hf, "visual_projection.weight", 2)));
    used.insert("visual_projection.weight");
  }
  if (hf.contains("text_model.embeddings.token_embedding.weight")) {
    rename("text_model.embeddings.token_embedding.weight", "token_embedding.weight");
    rename("text_model.embeddings.position_embedding.weight", "positional_embedding");
    for (const char* k : {"weight", "bias"})
      rename(std::string("text_model.final_layer_norm.") + k, std::string("ln_final.") + k);
    tower("text_model", "transformer");
    out.insert("text_projection", clip_detail::transposed(clip_detail::tensor_of(hf, "text_projection.weight", 2)));
    used.insert("text_projection.weight");
  }
  if (hf.contains("logit_scale")) rename("logit_scale", "logit_scale");
  for (const auto& e : hf) {
    if (used.count(e.name) != 0 || e.name.ends_with("position_ids")) continue;
    throw FormatError(froster::detail::concat("CLIP checkpoint (Hugging Face naming): unexpected tensor '", e.name, "' ",
                                     e.tensor.extents()));
  }
  return out;
}

/// The configuration of an OpenAI-named CLIP state dict, read from tensor shapes as OpenAI's `build_model`:
/// widths, layer counts, patch size, resolution, context length, vocabulary; heads = width / 64 unless
/// `vision_heads` / `text_heads` say otherwise (Hugging Face's config.json does).
inline ClipConfig infer_clip_config(const StateDict& sd, index_t vision_heads = 0, index_t text_heads = 0) {
  ClipConfig c;
  const Tensor<float>& conv = clip_detail::tensor_of(sd, "visual.conv1.weight", 4);
  const Tensor<float>& pos = clip_detail::tensor_of(sd, "visual.positional_embedding", 2);
  const Tensor<float>& proj = clip_detail::tensor_of(sd, "visual.proj", 2);
  c.vision.width = conv.extent(0);
  c.vision.patch_size = conv.extent(3);
  const index_t grid = index_t(std::lround(std::sqrt(double(pos.extent(0) - 1))));
  require<FormatError>(grid > 0 && grid * grid + 1 == pos.extent(0), "CLIP checkpoint: visual.positional_embedding has ",
                       pos.extent(0), " rows, not a square grid of patches plus a class token");
  c.vision.image_size = grid * c.vision.patch_size;
  c.vision.layers = clip_detail::count_layers(sd, "visual.transformer.resblocks.");
  c.vision.heads = vision_heads > 0 ? vision_heads : c.vision.width / 64;
  c.vision.output_dim = proj.extent(1);

  const Tensor<float>& tokens = clip_detail::tensor_of(sd, "token_embedding.weight", 2);
  const Tensor<float>& text_pos = clip_detail::tensor_of(sd, "positional_embedding", 2);
  const Tensor<float>& text_proj = clip_detail::tensor_of(sd, "text_projection", 2);
  c.text.vocab_size = tokens.extent(0);
  c.text.width = clip_detail::tensor_of(sd, "ln_final.weight", 1).extent(0);
  c.text.context_length = text_pos.extent(0);
  c.text.layers = clip_detail::count_layers(sd, "transformer.resblocks.");
  c.text.heads = text_heads > 0 ? text_heads : c.text.width / 64;
  c.text.output_dim = text_proj.extent(1);
  c.embed_dim = c.text.output_dim;
  require<FormatError>(c.vision.output_dim == c.embed_dim, "CLIP checkpoint: visual.proj projects to ",
                       c.vision.output_dim, " but text_projection to ", c.embed_dim);
  require<FormatError>(c.vision.layers > 0 && c.text.layers > 0, "CLIP checkpoint: no transformer blocks found (",
                       c.vision.layers, " vision, ", c.text.layers, " text)");
  require<FormatError>(c.vision.heads > 0 && c.vision.width % c.vision.heads == 0 && c.text.heads > 0 &&
                           c.text.width % c.text.heads == 0,
                       "CLIP checkpoint: widths ", c.vision.width, " (vision) and ", c.text.width,
                       " (text) do not split into heads of 64; give the head counts explicitly");
  return c;
}

}  // namespace froster::io
