#pragma once
/// @file
/// `ClipModel`: CLIP's two encoders and its logit scale, loaded from an OpenAI-named state dict (Hugging Face
/// checkpoints are renamed first, io/clip_checkpoint.hpp), and zero-shot classification:
///
///     classifier = renormalise(mean over templates of normalise(encode_text(template(class))))     [classes, E]
///     logits     = exp(logit_scale) * normalise(encode_image(frames)) classifier^T, averaged over each clip's frames
///
/// An image is a clip of one frame.

#include <cmath>
#include <memory>
#include <set>
#include <type_traits>
#include <string>
#include <vector>

#include "froster/io/clip_checkpoint.hpp"
#include "froster/nn/text_transformer.hpp"
#include "froster/nn/vision_transformer.hpp"

namespace froster {

template <class B, class T = float>
  requires BackendFor<B, T>
class ClipModel {
 public:
  /// CLIP's initial logit scale, log(1 / 0.07), for a model built from scratch.
  static constexpr double initial_logit_scale = 2.6592600369262695;

  ClipModel(B& backend, const io::ClipConfig& config, std::uint64_t seed = 0)
      : backend_(&backend), config_(config), visual_(backend, config.vision, seed), text_(backend, config.text, seed + 1) {}

  /// Copies every encoder parameter from `sd` (OpenAI naming). A missing or misshapen tensor is an error naming it;
  /// so is a tensor the model does not know, except OpenAI's bookkeeping entries (input_resolution, context_length,
  /// vocab_size) and `logit_scale`, which sets the logit scale. Everything is checked before anything is written:
  /// a rejected state dict leaves the model as it was.
  void load(const io::StateDict& sd) {
    std::set<std::string> known;
    for (const auto* params : {&visual_.parameters(), &text_.parameters()})
      for (const auto& e : params->entries()) {
        require<FormatError>(sd.contains(e.name), "CLIP checkpoint: tensor '", e.name, "' is missing");
        const Tensor<float>& t = sd.at(e.name);
        require<FormatError>(t.extents() == e.value.extents(), "CLIP checkpoint: tensor '", e.name, "' has extents ",
                             t.extents(), ", the model needs ", e.value.extents());
        known.insert(e.name);
      }
    const Tensor<float>* logit_scale = nullptr;
    for (const auto& e : sd) {
      if (known.count(e.name) != 0) continue;
      if (e.name == "logit_scale") {
        // 0-d in OpenAI's and Hugging Face's checkpoints, or [1].
        require<FormatError>(e.tensor.numel() == 1,
                             "CLIP checkpoint: logit_scale must hold one value, has extents ",
                             e.tensor.extents());
        logit_scale = &e.tensor;
        continue;
      }
      // OpenAI's bookkeeping entries, and the causal mask its TorchScript files keep as a buffer.
      if (e.name == "input_resolution" || e.name == "context_length" || e.name == "vocab_size" ||
          e.name.ends_with(".attn_mask"))
        continue;
      throw FormatError(detail::concat("CLIP checkpoint: unexpected tensor '", e.name, "' ", e.tensor.extents(),
                                       " (the model has no such parameter)"));
    }

    const auto load_set = [&](auto& params) {
      for (auto& e : params.entries()) {
        const Tensor<float>& t = sd.at(e.name);
        if constexpr (std::is_same_v<T, float>) {
          params.load(e.name, t.cview());
        } else {
          Tensor<T> converted = Tensor<T>::host(t.extents());
          for (index_t i = 0; i < t.numel(); ++i) converted.data()[i] = T(t.data()[i]);
          params.load(e.name, converted.cview());
        }
      }
    };
    load_set(visual_.parameters());
    load_set(text_.parameters());
    if (logit_scale != nullptr) logit_scale_ = double(logit_scale->data()[0]);
    // Packed copies of the old weights would be stale.
    if (visual_.weights_packed()) visual_.pack_weights();
    if (text_.weights_packed()) text_.pack_weights();
  }

  /// A model configured and loaded from a state dict in either naming (`vision_heads`/`text_heads`: 0 = width/64).
  static std::unique_ptr<ClipModel> from_state_dict(B& backend, const io::StateDict& sd, index_t vision_heads = 0,
                                                    index_t text_heads = 0) {
    if (io::detect_clip_naming(sd) == io::ClipNaming::hugging_face) {
      const io::StateDict renamed = io::hugging_face_to_openai(sd);
      return from_state_dict(backend, renamed, vision_heads, text_heads);
    }
    auto model = std::make_unique<ClipModel>(backend, io::infer_clip_config(sd, vision_heads, text_heads));
    model->load(sd);
    return model;
  }

  /// Every parameter as fp32 host tensors under OpenAI's names, plus `logit_scale`: what `save_safetensors` writes
  /// for PyTorch users (OpenAI's `build_model` and froster's `from_state_dict` both read it back).
  io::StateDict state_dict() const {
    io::StateDict sd;
    const auto add_set = [&](const auto& params) {
      for (const auto& e : params.entries()) {
        Tensor<T> host = Tensor<T>::host(e.value.extents());
        backend_->copy(nn::ParameterSet<B, T>::matrix_of(e.value.cview()), nn::ParameterSet<B, T>::matrix_of(host.view()));
        Tensor<float> out = Tensor<float>::host(e.value.extents());
        for (index_t i = 0; i < host.numel(); ++i) out.data()[i] = float(host.data()[i]);
        sd.insert(e.name, std::move(out));
      }
    };
    add_set(visual_.parameters());
    add_set(text_.parameters());
    Tensor<float> scale = Tensor<float>::host({});  // 0-d, as OpenAI's: storage for one element
    scale.data()[0] = float(logit_scale_);
    sd.insert("logit_scale", std::move(scale));
    return sd;
  }

  const io::ClipConfig& config() const { return config_; }
  nn::VisionTransformer<B, T>& visual() { return visual_; }
  nn::TextTransformer<B, T>& text() { return text_; }
  /// The logit scale as stored (a log): logits are multiplied by exp(logit_scale()).
  double logit_scale() const { return logit_scale_; }

  /// Both encoders' forwards read their weights packed once (see VisionTransformer::pack_weights): for inference
  /// and a frozen teacher. `load` packs the new weights again; other writes to the weights need pack_weights().
  void pack_weights() {
    visual_.pack_weights();
    text_.pack_weights();
  }
  void unpack_weights() {
    visual_.unpack_weights();
    text_.unpack_weights();
  }
  void set_logit_scale(double log_scale) { logit_scale_ = log_scale; }

  /// Unnormalised image features [N, E] (what OpenAI's encode_image returns), inference only: nothing is kept for
  /// backward (train through `visual().forward`).
  ConstView<T> encode_image(ConstView<T> images, index_t frames = 1) { return visual_.forward(images, frames, false); }
  /// Unnormalised text features [N, E] of host token ids [N, L], inference only (train through `text().forward`).
  ConstView<T> encode_text(ConstView<std::int64_t> tokens) { return text_.forward(tokens, false); }

 private:
  B* backend_;
  io::ClipConfig config_;
  nn::VisionTransformer<B, T> visual_;
  nn::TextTransformer<B, T> text_;
  double logit_scale_ = initial_logit_scale;
};

/// A zero-shot classifier: one normalised text embedding per class, averaged over prompt templates.
template <class B, class T = float>
  requires BackendFor<B, T>
class ZeroShotClassifier {
 public:
  /// `text_features` [classes * templates, E], class-major (class c's templates are rows c*templates ...).
  ZeroShotClassifier(B& backend, ConstView<T> text_features, index_t templates) : backend_(&backend) {
    constexpr std::string_view op = "ZeroShotClassifier";
    check::matrix(op, "text_features", text_features);
    require<ValueError>(templates > 0 && text_features.rows() > 0 && text_features.rows() % templates == 0, op, ": ",
                        text_features.rows(), " text features are not whole groups of ", templates, " templates");
    const index_t classes = text_features.rows() / templates, e = text_features.cols();
    Tensor<T> normalised = backend.template allocate<T>(text_features.extents());
    Tensor<T> norms = backend.template allocate<T>({text_features.rows()});
    backend.l2_normalize_forward(text_features, normalised.view(), norms.view());
    Tensor<T> mean = backend.template allocate<T>({classes, e});
    backend.temporal_pool_forward(Pooling::mean, normalised.cview(), templates, mean.view(), TensorView<std::int64_t>{});
    weights_ = backend.template allocate<T>({classes, e});
    norms = backend.template allocate<T>({classes});
    backend.l2_normalize_forward(mean.cview(), weights_.view(), norms.view());
  }

  index_t classes() const { return weights_.extent(0); }
  ConstView<T> weights() const { return weights_.cview(); }

  /// Logits [clips, classes] of image features [clips * frames, E]: exp(logit_scale) times the cosine similarity,
  /// per frame, averaged over each clip's frames. The result stays valid until the next call.
  ConstView<T> logits(ConstView<T> image_features, double logit_scale, index_t frames = 1) {
    constexpr std::string_view op = "ZeroShotClassifier::logits";
    check::matrix(op, "image_features", image_features);
    require<ShapeError>(image_features.cols() == weights_.extent(1), op, ": image features must be [N, ",
                        weights_.extent(1), "], got ", image_features);
    require<ValueError>(frames > 0 && image_features.rows() % frames == 0, op, ": ", image_features.rows(),
                        " frames are not whole clips of ", frames);
    const index_t n = image_features.rows();
    const TensorView<T> normalised = ensure_allocated(*backend_, normalised_, image_features.extents());
    backend_->l2_normalize_forward(image_features, normalised, ensure_allocated(*backend_, norms_, {n}));
    const TensorView<T> per_frame = ensure_allocated(*backend_, per_frame_, {n, classes()});
    backend_->gemm(T(std::exp(logit_scale)), ConstView<T>(normalised), Transpose::no, weights_.cview(), Transpose::yes,
                   T(0), per_frame);
    const TensorView<T> out = ensure_allocated(*backend_, logits_, {n / frames, classes()});
    backend_->temporal_pool_forward(Pooling::mean, ConstView<T>(per_frame), frames, out, TensorView<std::int64_t>{});
    return out;
  }

  /// Softmax over classes of `logits` [clips, classes].
  ConstView<T> probabilities(ConstView<T> logits) {
    const TensorView<T> p = ensure_allocated(*backend_, probabilities_, logits.extents());
    backend_->softmax_forward(logits, T(1), false, p);
    return p;
  }

 private:
  B* backend_;
  Tensor<T> weights_, normalised_, norms_, per_frame_, logits_, probabilities_;
};

}  // namespace froster
