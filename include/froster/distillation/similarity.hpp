#pragma once
/// @file
/// `SimilarityLogits`: CLIP's image-text logits `exp(logit_scale) * norm(image) @ norm(text)^T`, with gradients to
/// both feature sets and to `logit_scale` (which CLIP stores as a log, initialised to log(1 / 0.07)).

#include <cmath>

#include "froster/distillation/normalize.hpp"

namespace froster {

template <class B, class T = float>
  requires BackendFor<B, T>
class SimilarityLogits {
 public:
  explicit SimilarityLogits(B& backend) : backend_(&backend), image_norm_(backend), text_norm_(backend) {}

  /// image [N, E], text [K, E] -> logits [N, K]. The view stays valid until the next forward.
  ConstView<T> forward(ConstView<T> image, ConstView<T> text, T logit_scale) {
    constexpr std::string_view op = "SimilarityLogits::forward";
    check::matrix(op, "image", image);
    check::matrix(op, "text", text);
    require<ShapeError>(image.cols() == text.cols(), op, ": image and text features must have the same width, got ",
                        image, " and ", text);
    require<ValueError>(std::isfinite(double(logit_scale)), op, ": logit_scale must be finite, got ", logit_scale);
    scale_ = T(std::exp(double(logit_scale)));
    const ConstView<T> image_n = image_norm_.forward(image);
    const ConstView<T> text_n = text_norm_.forward(text);
    auto logits = ensure_allocated(*backend_, logits_, {image.rows(), text.rows()});
    backend_->gemm(scale_, image_n, Transpose::no, text_n, Transpose::yes, T(0), logits);
    return logits;
  }

  /// Writes d_image and d_text (each skipped when null) and returns d loss / d logit_scale.
  double backward(ConstView<T> d_logits, TensorView<T> d_image = {}, TensorView<T> d_text = {}) {
    constexpr std::string_view op = "SimilarityLogits::backward";
    require<Error>(logits_.allocated(), op, ": call forward first");
    check::same_extents(op, "logits", logits_.cview(), "d_logits", d_logits);
    check::optional_like(op, "d_image", d_image, "image", image_norm_.output());
    check::optional_like(op, "d_text", d_text, "text", text_norm_.output());
    if (!d_image.is_null()) {  // d norm(image) = scale dL @ norm(text)
      auto g = ensure_allocated(*backend_, d_image_n_, image_norm_.output().extents());
      backend_->gemm(scale_, d_logits, Transpose::no, text_norm_.output(), Transpose::no, T(0), g);
      image_norm_.backward(ConstView<T>(g), d_image);
    }
    if (!d_text.is_null()) {  // d norm(text) = scale dL^T @ norm(image)
      auto g = ensure_allocated(*backend_, d_text_n_, text_norm_.output().extents());
      backend_->gemm(scale_, d_logits, Transpose::yes, image_norm_.output(), Transpose::no, T(0), g);
      text_norm_.backward(ConstView<T>(g), d_text);
    }
    return backend_->dot(d_logits, logits_.cview());  // d logits / d logit_scale = logits
  }

 private:
  B* backend_;
  L2Normalize<B, T> image_norm_, text_norm_;
  T scale_ = T(1);
  Tensor<T> logits_, d_image_n_, d_text_n_;
};

}  // namespace froster
