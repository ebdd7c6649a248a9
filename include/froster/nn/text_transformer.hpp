#pragma once
/// @file
/// `TextTransformer`: CLIP's text encoder. Token ids [N, L] (L <= context_length) -> token embedding + positional
/// embedding -> causal transformer -> `ln_final` at each sequence's end-of-text token (the position of the highest
/// id, as the reference) -> `text_projection` -> [N, output_dim]. Forward and backward to every parameter and to
/// the token embeddings (for prompt learning: `forward_embeddings` takes them directly). Parameter names are OpenAI
/// CLIP's (`token_embedding.weight`, `positional_embedding`, `transformer.resblocks.0...`, `ln_final`,
/// `text_projection`).
///
/// Positions after the batch's last end-of-text token are not computed: under the causal mask no later position
/// reaches an earlier one, so they cannot change any pooled feature, and their gradients are exactly zero. The
/// features and every gradient are those of the whole sequence (checked against PyTorch, which computes all
/// positions); CLIP's prompts end long before the 77-token context, so this skips most of the work.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "froster/nn/transformer.hpp"

namespace froster::nn {

struct TextConfig {
  index_t context_length = 77;
  index_t vocab_size = 49408;
  index_t width = 512;
  index_t layers = 12;
  index_t heads = 0;  ///< 0: width / 64.
  index_t output_dim = 512;
  bool gradient_checkpointing = false;
};

template <class B, class T = float>
  requires BackendFor<B, T>
class TextTransformer {
 public:
  TextTransformer(B& backend, TextConfig config, std::uint64_t seed = 0)
      : backend_(&backend), config_(validated(config)), params_(backend), ones_(backend),
        token_embedding_(&params_.add("token_embedding.weight", {config.vocab_size, config.width},
                                      Init::normal(0.02))),
        positional_embedding_(&params_.add("positional_embedding", {config.context_length, config.width},
                                           Init::normal(0.01))),
        transformer_(backend, params_, "transformer",
                     {config.width, config.layers, config.heads, config.gradient_checkpointing}),
        ln_final_(params_, "ln_final", config.width),
        text_projection_(&params_.add("text_projection", {config.width, config.output_dim},
                                      Init::normal(std::pow(double(config.width), -0.5)))) {
    params_.initialize(seed);
  }

  const TextConfig& config() const { return config_; }
  ParameterSet<B, T>& parameters() { return params_; }
  const ParameterSet<B, T>& parameters() const { return params_; }
  Transformer<B, T>& transformer() { return transformer_; }
  void zero_grad() { params_.zero_grad(); }

  /// Forward reads every block's weights packed once (backends with packed operands: CpuBackend), until
  /// `unpack_weights`: for weights that stay unchanged over many forwards (a frozen text encoder, inference,
  /// prompt learning). After changing the weights, pack again. Costs a second copy of the block weights.
  void pack_weights() { transformer_.pack_weights(); }
  void unpack_weights() { transformer_.unpack_weights(); }
  bool weights_packed() const { return transformer_.weights_packed(); }

  /// Features [N, output_dim] of host token ids [N, L]. The result stays valid until the next forward.
  /// `keep_activations = false` (inference) keeps nothing for backward: one block's activations at a time, and the
  /// last block's MLP at the end tokens alone (Transformer::forward_at).
  ConstView<T> forward(ConstView<std::int64_t> tokens, bool keep_activations = true) {
    constexpr std::string_view op = "TextTransformer::forward";
    require<ShapeError>(tokens.rank() == 2 && tokens.rows() > 0 && tokens.cols() > 0 &&
                            tokens.cols() <= config_.context_length && tokens.device().kind == DeviceKind::host,
                        op, ": tokens must be host [N, L] with 0 < L <= ", config_.context_length, ", got ", tokens);
    const index_t n = tokens.rows(), len = tokens.cols(), d = config_.width;
    std::vector<index_t> end_positions(static_cast<std::size_t>(n), 0);
    for (index_t i = 0; i < n; ++i) {
      index_t best = 0;
      for (index_t t = 0; t < len; ++t) {
        const std::int64_t id = tokens(i, t);
        require<ValueError>(id >= 0 && id < config_.vocab_size, op, ": token id ", id, " at [", i, ", ", t,
                            "] is outside the vocabulary [0, ", config_.vocab_size, ")");
        if (id > tokens(i, best)) best = t;  // the first highest id, as torch.argmax
      }
      end_positions[std::size_t(i)] = best;
    }
    // Only the positions up to the last end token (see the file comment).
    const index_t run = computed_length(end_positions);
    std::vector<index_t> ids(std::size_t(n * run));
    for (index_t i = 0; i < n; ++i)
      for (index_t t = 0; t < run; ++t) ids[std::size_t(i * run + t)] = index_t(tokens(i, t));
    // Gather token embeddings row by row, then add the positional embedding to every sequence in one rank-1 GEMM.
    const TensorView<T> x0 = ensure_allocated(*backend_, embeddings_, {n * run, d});
    const ConstView<T> table = token_embedding_->value.cview();
    for (index_t r = 0; r < n * run; ++r) backend_->copy(table.slice_rows(ids[std::size_t(r)], 1), x0.slice_rows(r, 1));
    backend_->gemm(T(1), ConstView<T>(ones_.row(n).data(), {n, 1}, ones_.row(n).device()), Transpose::no,
                   positional_embedding_->value.cview().slice_rows(0, run).reshaped({1, run * d}), Transpose::no, T(1),
                   x0.reshaped({n, run * d}));
    token_ids_ = std::move(ids);
    input_length_ = len;
    return encode(embeddings_.cview(), n, std::move(end_positions), keep_activations);
  }

  /// Features from embeddings [N * L, width] that already include the positional embedding (prompt learning:
  /// learned context vectors in place of some token embeddings), pooled at `end_positions` [N].
  /// `embeddings` must stay alive and unchanged until backward.
  ConstView<T> forward_embeddings(ConstView<T> embeddings, index_t sequences, std::vector<index_t> end_positions,
                                  bool keep_activations = true) {
    constexpr std::string_view op = "TextTransformer::forward_embeddings";
    check::matrix(op, "embeddings", embeddings);
    require<ShapeError>(sequences > 0 && embeddings.rows() % sequences == 0 && embeddings.cols() == config_.width &&
                            embeddings.rows() / sequences <= config_.context_length,
                        op, ": embeddings must be [", sequences, " * L, ", config_.width, "] with L <= ",
                        config_.context_length, ", got ", embeddings);
    require<ShapeError>(index_t(end_positions.size()) == sequences, op, ": ", sequences,
                        " sequences need as many end positions, got ", end_positions.size());
    const index_t len = embeddings.rows() / sequences;
    for (index_t p : end_positions)
      require<ValueError>(p >= 0 && p < len, op, ": end position ", p, " is outside [0, ", len, ")");
    token_ids_.clear();
    input_length_ = len;
    const index_t run = computed_length(end_positions);
    if (run == len) return encode(embeddings, sequences, std::move(end_positions), keep_activations);
    // Only the positions up to the last end token (see the file comment), copied together.
    const TensorView<T> x0 = ensure_allocated(*backend_, embeddings_, {sequences * run, config_.width});
    for (index_t i = 0; i < sequences; ++i)
      backend_->copy(embeddings.slice_rows(i * len, run), x0.slice_rows(i * run, run));
    return encode(embeddings_.cview(), sequences, std::move(end_positions), keep_activations);
  }

  /// From d_features [N, output_dim]: accumulates every parameter gradient (the token embedding table's only after
  /// `forward` from ids); writes d_embeddings [N * L, width] (may be null; zero after the last end token).
  void backward(ConstView<T> d_features, TensorView<T> d_embeddings = {}) {
    constexpr std::string_view op = "TextTransformer::backward";
    require<Error>(out_.allocated(), op, ": call forward first");
    require<Error>(transformer_.kept_activations(), op,
                   ": the last forward kept no activations (keep_activations = false); run a training forward first");
    check::same_extents(op, "features", out_.cview(), "d_features", d_features);
    const index_t n = out_.extent(0), d = config_.width, len = input_.rows() / n;  // len: the computed positions
    if (!d_embeddings.is_null())
      check::matrix(op, "d_embeddings", d_embeddings, n * input_length_, d);
    params_.ensure_gradients();

    backend_->gemm(T(1), final_.cview(), Transpose::yes, d_features, Transpose::no, T(1),
                   text_projection_->grad.view());
    const TensorView<T> d_final = ensure_allocated(*backend_, d_final_, {n, d});
    backend_->gemm(T(1), d_features, Transpose::no, text_projection_->value.cview(), Transpose::yes, T(0), d_final);
    const TensorView<T> d_pooled = ensure_allocated(*backend_, d_pooled_, {n, d});
    ln_final_.backward(*backend_, pooled_.cview(), ln_final_mean_.cview(), ln_final_rstd_.cview(), d_final_.cview(),
                       d_pooled);
    const TensorView<T> d_y = ensure_allocated(*backend_, d_y_, {n * len, d});
    backend_->fill(d_y, T(0));
    for (index_t i = 0; i < n; ++i)
      backend_->copy(d_pooled_.cview().slice_rows(i, 1), d_y.slice_rows(i * len + end_positions_[std::size_t(i)], 1));

    const bool from_ids = !token_ids_.empty(), trimmed = len < input_length_;
    if (d_embeddings.is_null() && !from_ids) {
      transformer_.backward(d_y_.cview(), {});
      return;
    }
    const TensorView<T> d_x0 = !d_embeddings.is_null() && !trimmed ? d_embeddings
                                                                    : ensure_allocated(*backend_, d_x0_, {n * len, d});
    transformer_.backward(d_y_.cview(), d_x0);
    if (!d_embeddings.is_null() && trimmed) {
      backend_->fill(d_embeddings, T(0));
      for (index_t i = 0; i < n; ++i)
        backend_->copy(ConstView<T>(d_x0).slice_rows(i * len, len), d_embeddings.slice_rows(i * input_length_, len));
    }
    if (!from_ids) return;
    // The positional embedding's gradient sums over sequences; the table's scatters row by row.
    backend_->gemm(T(1), ones_.row(n), Transpose::no, ConstView<T>(d_x0).reshaped({n, len * d}), Transpose::no, T(1),
                   positional_embedding_->grad.view().slice_rows(0, len).reshaped({1, len * d}));
    const TensorView<T> grad_table = token_embedding_->grad.view();
    for (index_t r = 0; r < n * len; ++r)
      backend_->axpby(T(1), ConstView<T>(d_x0).slice_rows(r, 1), T(1),
                      grad_table.slice_rows(token_ids_[std::size_t(r)], 1));
  }

  /// Bytes of activation memory held for backward after a forward.
  std::size_t activation_bytes() const {
    std::size_t n = transformer_.activation_bytes();
    for (const Tensor<T>* t : {&embeddings_, &pooled_, &final_, &ln_final_mean_, &ln_final_rstd_, &out_, &d_final_,
                               &d_pooled_, &d_y_, &d_x0_})
      n += std::size_t(t->numel()) * sizeof(T);
    return n;
  }

 private:
  static TextConfig validated(TextConfig c) {
    require<ValueError>(c.context_length > 0 && c.vocab_size > 0 && c.width > 0 && c.layers > 0 && c.output_dim > 0,
                        "TextTransformer: context_length, vocab_size, width, layers and output_dim must be positive, "
                        "got ", c.context_length, ", ", c.vocab_size, ", ", c.width, ", ", c.layers, ", ",
                        c.output_dim);
    if (c.heads == 0) c.heads = c.width / 64;
    return c;
  }

  /// Positions computed: up to and including the last end token of the batch.
  static index_t computed_length(const std::vector<index_t>& end_positions) {
    return *std::max_element(end_positions.begin(), end_positions.end()) + 1;
  }

  /// The transformer over x0 [n * len, width] (the computed positions only), pooled at `end_positions`.
  ConstView<T> encode(ConstView<T> x0, index_t n, std::vector<index_t> end_positions, bool keep_activations) {
    const index_t len = x0.rows() / n, d = config_.width;
    input_ = x0;
    end_positions_ = std::move(end_positions);
    const AttentionSpec spec{.batch = n, .tokens = len, .mask = AttentionMask::causal};
    std::vector<index_t> end_rows(static_cast<std::size_t>(n));
    for (index_t i = 0; i < n; ++i) end_rows[std::size_t(i)] = i * len + end_positions_[std::size_t(i)];
    // Only the end tokens' outputs are read: inference runs the last block's MLP at those rows alone and reads
    // them where forward_at leaves them; training gathers them into pooled_, which backward reads again.
    ConstView<T> pooled;
    if (keep_activations) {
      gather_rows(*backend_, transformer_.forward(x0, spec), end_rows, ensure_allocated(*backend_, pooled_, {n, d}));
      pooled = pooled_.cview();
    } else {
      pooled = transformer_.forward_at(x0, spec, end_rows);
    }
    const TensorView<T> fin = ensure_allocated(*backend_, final_, {n, d});
    ln_final_.forward(*backend_, pooled, fin, ensure_allocated(*backend_, ln_final_mean_, {n}),
                      ensure_allocated(*backend_, ln_final_rstd_, {n}));
    const TensorView<T> out = ensure_allocated(*backend_, out_, {n, config_.output_dim});
    backend_->gemm(T(1), final_.cview(), Transpose::no, text_projection_->value.cview(), Transpose::no, T(0), out);
    return out;
  }

  B* backend_;
  TextConfig config_;
  ParameterSet<B, T> params_;
  Ones<B, T> ones_;
  typename ParameterSet<B, T>::Entry* token_embedding_;
  typename ParameterSet<B, T>::Entry* positional_embedding_;
  Transformer<B, T> transformer_;
  LayerNorm<B, T> ln_final_;
  typename ParameterSet<B, T>::Entry* text_projection_;

  ConstView<T> input_;       ///< The transformer's input: the computed positions of each sequence.
  index_t input_length_ = 0;  ///< The caller's sequence length (tokens or embeddings), >= the computed one.
  std::vector<index_t> token_ids_;  ///< Of the computed positions.
  std::vector<index_t> end_positions_;
  Tensor<T> embeddings_, pooled_, final_, ln_final_mean_, ln_final_rstd_, out_;
  Tensor<T> d_final_, d_pooled_, d_y_, d_x0_;
};

}  // namespace froster::nn
