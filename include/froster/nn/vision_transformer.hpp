#pragma once
/// @file
/// `VisionTransformer`: CLIP's image encoder over frame batches [N, 3, H, W] (N = clips * frames):
/// patch embedding (a stride-`patch` convolution run as a GEMM over patches), class token, positional embedding,
/// `ln_pre`, the transformer, `ln_post` on the class token, projection to [N, output_dim]. Forward and backward to
/// every parameter and to the pixels. Optionally the video student's temporal "expand view": every frame's queries
/// attend to its own, the previous and the next frame's keys (`AttentionMask::temporal_neighbours`).
/// Parameter names are OpenAI CLIP's (`visual.conv1.weight`, `visual.proj`, ...).

#include <cmath>
#include <string>
#include <vector>

#include "froster/nn/transformer.hpp"

namespace froster::nn {

struct VisionConfig {
  index_t image_size = 224;
  index_t patch_size = 16;
  index_t width = 768;
  index_t layers = 12;
  index_t heads = 0;  ///< 0: width / 64.
  index_t output_dim = 512;
  bool temporal_expand_view = false;  ///< The video student's neighbouring-frame attention, in every block.
  TemporalPadding temporal_padding = TemporalPadding::zero_keys;
  bool gradient_checkpointing = false;

  index_t grid() const { return image_size / patch_size; }
  index_t tokens() const { return grid() * grid() + 1; }
};

template <class B, class T = float>
  requires BackendFor<B, T>
class VisionTransformer {
 public:
  VisionTransformer(B& backend, VisionConfig config, std::uint64_t seed = 0)
      : backend_(&backend), config_(validated(config)), params_(backend), ones_(backend),
        conv1_(&params_.add("visual.conv1.weight", {config.width, 3, config.patch_size, config.patch_size},
                            Init::normal(std::pow(double(3 * config.patch_size * config.patch_size), -0.5)))),
        class_embedding_(&params_.add("visual.class_embedding", {config.width},
                                      Init::normal(std::pow(double(config.width), -0.5)))),
        positional_embedding_(&params_.add("visual.positional_embedding", {config.tokens(), config.width},
                                           Init::normal(std::pow(double(config.width), -0.5)))),
        ln_pre_(params_, "visual.ln_pre", config.width),
        transformer_(backend, params_, "visual.transformer",
                     {config.width, config.layers, config.heads, config.gradient_checkpointing}),
        ln_post_(params_, "visual.ln_post", config.width),
        proj_(&params_.add("visual.proj", {config.width, config.output_dim},
                           Init::normal(std::pow(double(config.width), -0.5)))),
        conv_forward_(conv_weight(), Transpose::yes) {
    params_.initialize(seed);
  }

  const VisionConfig& config() const { return config_; }
  ParameterSet<B, T>& parameters() { return params_; }
  const ParameterSet<B, T>& parameters() const { return params_; }
  Transformer<B, T>& transformer() { return transformer_; }
  void zero_grad() { params_.zero_grad(); }

  /// Switches the temporal expand view on or off (VisionConfig::temporal_expand_view, temporal_padding): it has no
  /// parameters of its own, so a checkpoint loads the same either way (a FROSTER / Open-VCLIP student is a CLIP
  /// checkpoint run with it). Takes effect at the next forward (a backward follows the mode of its forward).
  void set_temporal_expand_view(bool on, TemporalPadding padding = TemporalPadding::zero_keys) {
    config_.temporal_expand_view = on;
    config_.temporal_padding = padding;
  }

  /// Forward reads the patch embedding's and every block's weights packed once (backends with packed operands:
  /// CpuBackend) instead of packing them on each GEMM, until `unpack_weights`: for weights that stay unchanged
  /// over many forwards (a frozen teacher, inference). After changing the weights (an optimiser step, `load`),
  /// pack again. Costs a second copy of those weights.
  void pack_weights() {
    transformer_.pack_weights();
    conv_forward_.pack(*backend_);
  }
  void unpack_weights() {
    transformer_.unpack_weights();
    conv_forward_.unpack();
  }
  bool weights_packed() const { return transformer_.weights_packed(); }

  /// Features [N, output_dim] of images [N, 3, image_size, image_size] (dense row-major), which must stay alive
  /// and unchanged until backward. With the temporal expand view, N = clips * `frames`, a clip's frames
  /// consecutive. The result stays valid until the next forward.
  /// `keep_activations = false` (inference) keeps nothing for backward: one block's activations at a time, and the
  /// last block's MLP at the class tokens alone (Transformer::forward_at).
  ConstView<T> forward(ConstView<T> images, index_t frames = 1, bool keep_activations = true) {
    constexpr std::string_view op = "VisionTransformer::forward";
    const index_t s = config_.image_size, d = config_.width;
    require<ShapeError>(images.rank() == 4 && images.extent(1) == 3 && images.extent(2) == s &&
                            images.extent(3) == s && images.is_contiguous(),
                        op, ": images must be dense [N, 3, ", s, ", ", s, "], got ", images);
    const index_t n = images.extent(0);
    require<ShapeError>(n > 0, op, ": no images");
    require<ValueError>(frames >= 1 && n % frames == 0, op, ": ", n, " images are not whole clips of ", frames,
                        " frames");
    const index_t tokens = config_.tokens(), g2 = config_.grid() * config_.grid();
    images_ = images;
    frames_ = frames;
    images_to_patches(images, ensure_allocated(*backend_, patches_, {n * g2, patch_length()}));

    // Token rows: [class + pos[0]; patches W^T + pos[1:]] per image.
    const TensorView<T> x0 = ensure_allocated(*backend_, x0_, {n * tokens, d});
    const ConstView<T> pos = positional_embedding_->value.cview();
    for (index_t i = 0; i < n; ++i)
      conv_forward_.fused_gemm(*backend_, patches_.cview().slice_rows(i * g2, g2), {.residual = pos.slice_rows(1, g2)},
                               x0.slice_rows(i * tokens + 1, g2));
    const TensorView<T> class_rows = token_rows(x0, 0, n);
    backend_->copy(broadcast_row(class_embedding_->value.cview(), n), class_rows);
    backend_->axpby(T(1), broadcast_row(pos.slice_rows(0, 1), n), T(1), class_rows);

    const TensorView<T> x = ensure_allocated(*backend_, ln_pre_out_, {n * tokens, d});
    ln_pre_.forward(*backend_, x0_.cview(), x, ensure_allocated(*backend_, ln_pre_mean_, {n * tokens}),
                    ensure_allocated(*backend_, ln_pre_rstd_, {n * tokens}));
    AttentionSpec spec{.batch = n, .tokens = tokens};
    if (config_.temporal_expand_view) {
      spec.mask = AttentionMask::temporal_neighbours;
      spec.frames = frames;
      spec.padding = config_.temporal_padding;
    }
    // Only the class tokens' outputs are read: inference runs the last block's MLP at those rows alone.
    if (keep_activations) {
      class_out_ = token_rows(transformer_.forward(ln_pre_out_.cview(), spec), 0, n);
    } else {
      std::vector<index_t> class_token_rows(static_cast<std::size_t>(n));
      for (index_t i = 0; i < n; ++i) class_token_rows[std::size_t(i)] = i * tokens;
      class_out_ = transformer_.forward_at(ln_pre_out_.cview(), spec, class_token_rows);
    }

    const TensorView<T> post = ensure_allocated(*backend_, post_, {n, d});
    ln_post_.forward(*backend_, class_out_, post, ensure_allocated(*backend_, ln_post_mean_, {n}),
                     ensure_allocated(*backend_, ln_post_rstd_, {n}));
    const TensorView<T> out = ensure_allocated(*backend_, out_, {n, config_.output_dim});
    backend_->gemm(T(1), post_.cview(), Transpose::no, proj_->value.cview(), Transpose::no, T(0), out);
    return out;
  }

  /// From d_features [N, output_dim]: accumulates every parameter gradient; writes d_images (may be null).
  void backward(ConstView<T> d_features, TensorView<T> d_images = {}) {
    constexpr std::string_view op = "VisionTransformer::backward";
    require<Error>(out_.allocated(), op, ": call forward first");
    require<Error>(transformer_.kept_activations(), op,
                   ": the last forward kept no activations (keep_activations = false); run a training forward first");
    check::same_extents(op, "features", out_.cview(), "d_features", d_features);
    if (!d_images.is_null()) {
      check::same_extents(op, "images", images_, "d_images", d_images);
      require<ShapeError>(d_images.is_contiguous(), op, ": d_images must be dense, got ", d_images);
    }
    const index_t n = images_.extent(0), tokens = config_.tokens(), d = config_.width;
    const index_t g2 = config_.grid() * config_.grid();
    params_.ensure_gradients();

    backend_->gemm(T(1), post_.cview(), Transpose::yes, d_features, Transpose::no, T(1), proj_->grad.view());
    const TensorView<T> d_post = ensure_allocated(*backend_, d_post_, {n, d});
    backend_->gemm(T(1), d_features, Transpose::no, proj_->value.cview(), Transpose::yes, T(0), d_post);
    const TensorView<T> d_y = ensure_allocated(*backend_, d_y_, {n * tokens, d});
    backend_->fill(d_y, T(0));
    ln_post_.backward(*backend_, class_out_, ln_post_mean_.cview(), ln_post_rstd_.cview(), d_post_.cview(),
                      token_rows(d_y, 0, n));

    const TensorView<T> d_x = ensure_allocated(*backend_, d_x_, {n * tokens, d});
    transformer_.backward(d_y_.cview(), d_x);
    const TensorView<T> d_x0 = d_y;  // d_y is spent: reuse it
    ln_pre_.backward(*backend_, x0_.cview(), ln_pre_mean_.cview(), ln_pre_rstd_.cview(), d_x_.cview(), d_x0);

    // Embeddings: sums over images (GEMMs with a row of ones).
    const ConstView<T> ones = ones_.row(n);
    const TensorView<T> grad_pos = positional_embedding_->grad.view();
    backend_->gemm(T(1), ones, Transpose::no, ConstView<T>(d_x0.reshaped({n, tokens * d})), Transpose::no, T(1),
                   grad_pos.reshaped({1, tokens * d}));
    backend_->gemm(T(1), ones, Transpose::no, ConstView<T>(token_rows(d_x0, 0, n)), Transpose::no, T(1),
                   class_embedding_->grad.view().reshaped({1, d}));
    const TensorView<T> grad_conv = conv1_->grad.view().reshaped({d, patch_length()});
    const TensorView<T> d_patches =
        d_images.is_null() ? TensorView<T>{} : ensure_allocated(*backend_, d_patches_, {n * g2, patch_length()});
    for (index_t i = 0; i < n; ++i) {
      const ConstView<T> d_tokens = d_x0.slice_rows(i * tokens + 1, g2);
      backend_->gemm(T(1), d_tokens, Transpose::yes, patches_.cview().slice_rows(i * g2, g2), Transpose::no, T(1),
                     grad_conv);
      if (!d_images.is_null())
        backend_->gemm(T(1), d_tokens, Transpose::no, conv_weight(), Transpose::no, T(0),
                       d_patches.slice_rows(i * g2, g2));
    }
    if (!d_images.is_null()) patches_to_images(d_patches_.cview(), d_images);
  }

  /// Bytes of activation memory held for backward after a forward (inputs to every op that backward reads).
  std::size_t activation_bytes() const {
    std::size_t n = transformer_.activation_bytes();
    for (const Tensor<T>* t : {&patches_, &x0_, &ln_pre_out_, &ln_pre_mean_, &ln_pre_rstd_, &post_, &ln_post_mean_,
                               &ln_post_rstd_, &out_, &d_post_, &d_y_, &d_x_, &d_patches_})
      n += std::size_t(t->numel()) * sizeof(T);
    return n;
  }

 private:
  static VisionConfig validated(VisionConfig c) {
    require<ValueError>(c.patch_size > 0 && c.image_size > 0 && c.image_size % c.patch_size == 0,
                        "VisionTransformer: image_size ", c.image_size, " must be a positive multiple of patch_size ",
                        c.patch_size);
    require<ValueError>(c.width > 0 && c.layers > 0 && c.output_dim > 0,
                        "VisionTransformer: width, layers and output_dim must be positive, got ", c.width, ", ",
                        c.layers, ", ", c.output_dim);
    if (c.heads == 0) c.heads = c.width / 64;
    return c;
  }

  index_t patch_length() const { return 3 * config_.patch_size * config_.patch_size; }
  ConstView<T> conv_weight() const { return conv1_->value.cview().reshaped({config_.width, patch_length()}); }

  /// Rows `token` of each of the n sequences in packed rows [n * tokens, width]: a strided [n, width] view.
  template <class U>
  TensorView<U> token_rows(TensorView<U> x, index_t token, index_t n) const {
    const index_t stride = config_.tokens() * x.stride(0);
    return TensorView<U>(x.data() + token * x.stride(0), {n, x.cols()}, {stride, x.stride(1)}, x.device());
  }

  /// A [1, d] row seen as n equal rows (row stride 0), an input for copy/axpby.
  static ConstView<T> broadcast_row(ConstView<T> row, index_t n) {
    const index_t d = row.numel();
    return ConstView<T>(row.data(), {n, d}, {0, row.rank() == 1 ? row.stride(0) : row.stride(1)}, row.device());
  }

  /// images [N, 3, S, S] <-> patches [N * g^2, 3 p^2] (row = patch, column = (channel, dy, dx) as conv1's weight).
  /// Runs as rank-2 copies through the backend, each a [g patches, p pixels] piece of one image row.
  template <class Copy>
  void for_each_patch_piece(index_t n, Copy&& copy) const {
    const index_t p = config_.patch_size, g = config_.grid(), s = config_.image_size, len = patch_length();
    for (index_t i = 0; i < n; ++i)
      for (index_t c = 0; c < 3; ++c)
        for (index_t gy = 0; gy < g; ++gy)
          for (index_t py = 0; py < p; ++py)
            copy(((i * 3 + c) * s + gy * p + py) * s, ((i * g + gy) * g) * len + (c * p + py) * p);
  }

  void images_to_patches(ConstView<T> images, TensorView<T> patches) const {
    const index_t p = config_.patch_size, g = config_.grid(), len = patch_length();
    for_each_patch_piece(images.extent(0), [&](index_t pixel, index_t patch) {
      backend_->copy(ConstView<T>(images.data() + pixel, {g, p}, {p, 1}, images.device()),
                     TensorView<T>(patches.data() + patch, {g, p}, {len, 1}, patches.device()));
    });
  }

  void patches_to_images(ConstView<T> patches, TensorView<T> images) const {
    const index_t p = config_.patch_size, g = config_.grid(), len = patch_length();
    for_each_patch_piece(images.extent(0), [&](index_t pixel, index_t patch) {
      backend_->copy(ConstView<T>(patches.data() + patch, {g, p}, {len, 1}, patches.device()),
                     TensorView<T>(images.data() + pixel, {g, p}, {p, 1}, images.device()));
    });
  }

  B* backend_;
  VisionConfig config_;
  ParameterSet<B, T> params_;
  Ones<B, T> ones_;
  typename ParameterSet<B, T>::Entry* conv1_;
  typename ParameterSet<B, T>::Entry* class_embedding_;
  typename ParameterSet<B, T>::Entry* positional_embedding_;
  LayerNorm<B, T> ln_pre_;
  Transformer<B, T> transformer_;
  LayerNorm<B, T> ln_post_;
  typename ParameterSet<B, T>::Entry* proj_;
  ForwardWeight<B, T> conv_forward_;  ///< The patch embedding as its forward GEMM reads it.

  ConstView<T> images_;
  index_t frames_ = 1;
  ConstView<T> class_out_;  ///< The transformer's output at each image's class token [N, width].
  Tensor<T> patches_, x0_, ln_pre_out_, ln_pre_mean_, ln_pre_rstd_, post_, ln_post_mean_, ln_post_rstd_, out_;
  Tensor<T> d_post_, d_y_, d_x_, d_patches_;
};

}  // namespace froster::nn
