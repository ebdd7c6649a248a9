#pragma once
/// @file
/// CLIP's transformer: a stack of pre-LN residual attention blocks over packed rows [batch * tokens, width],
///
///     x1 = x  + out_proj(attention(in_proj(ln_1(x))))
///     y  = x1 + c_proj(quick_gelu(c_fc(ln_2(x1))))
///
/// forward and backward to every parameter and to the input. Parameter names are OpenAI CLIP's
/// (`<prefix>.resblocks.<i>.attn.in_proj_weight`, ...). Activations are kept per block for backward, or, with
/// gradient checkpointing, only each block's input is kept and the block's forward runs again in backward (all but
/// the last block's: forward leaves its activations in the shared buffer).

#include <cmath>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "froster/nn/layers.hpp"

namespace froster::nn {

/// What one block keeps from forward for backward (all [rows, ...] row-major).
template <class T>
struct BlockActivations {
  Tensor<T> ln1, mean1, rstd1, qkv, attn, lse, x1, ln2, mean2, rstd2, pre, hidden;

  template <class B>
  void ensure(B& backend, index_t rows, index_t width, index_t heads, index_t mlp_width, bool for_backward = true) {
    ensure_allocated(backend, ln1, {rows, width});
    ensure_allocated(backend, mean1, {rows});
    ensure_allocated(backend, rstd1, {rows});
    ensure_allocated(backend, qkv, {rows, 3 * width});
    ensure_allocated(backend, attn, {rows, width});
    ensure_allocated(backend, lse, {rows, heads});
    ensure_allocated(backend, x1, {rows, width});
    ensure_allocated(backend, ln2, {rows, width});
    ensure_allocated(backend, mean2, {rows});
    ensure_allocated(backend, rstd2, {rows});
    if (for_backward) ensure_allocated(backend, pre, {rows, mlp_width});
    ensure_allocated(backend, hidden, {rows, mlp_width});
  }

  std::size_t bytes() const {
    std::size_t n = 0;
    for (const Tensor<T>* t : {&ln1, &mean1, &rstd1, &qkv, &attn, &lse, &x1, &ln2, &mean2, &rstd2, &pre, &hidden})
      n += std::size_t(t->numel()) * sizeof(T);
    return n;
  }
};

/// Backward's temporaries, shared by every block (one block runs backward at a time).
template <class T>
struct BlockGradients {
  Tensor<T> d_pre, d_x1, d_tmp, d_qkv;

  template <class B>
  void ensure(B& backend, index_t rows, index_t width, index_t mlp_width) {
    ensure_allocated(backend, d_pre, {rows, mlp_width});
    ensure_allocated(backend, d_x1, {rows, width});
    ensure_allocated(backend, d_tmp, {rows, width});
    ensure_allocated(backend, d_qkv, {rows, 3 * width});
  }

  std::size_t bytes() const {
    return std::size_t(d_pre.numel() + d_x1.numel() + d_tmp.numel() + d_qkv.numel()) * sizeof(T);
  }
};

/// dst row i = src row rows[i] (a copy per row, through the backend).
template <class B, class T>
void gather_rows(B& backend, ConstView<T> src, std::span<const index_t> rows, TensorView<T> dst) {
  for (std::size_t i = 0; i < rows.size(); ++i)
    backend.copy(src.slice_rows(rows[i], 1), dst.slice_rows(index_t(i), 1));
}

/// q, k, v: the three column blocks of the packed [rows, 3 width] in_proj output (row stride 3 width).
template <class V>
V qkv_part(V qkv, int part) {
  const index_t width = qkv.cols() / 3;
  return V(qkv.data() + part * width, {qkv.rows(), width}, {qkv.stride(0), qkv.stride(1)}, qkv.device());
}

template <class B, class T = float>
  requires BackendFor<B, T>
class ResidualAttentionBlock {
 public:
  /// `prefix` e.g. "visual.transformer.resblocks.3"; `layers` sets the initialisation scale (OpenAI CLIP's).
  ResidualAttentionBlock(ParameterSet<B, T>& params, const std::string& prefix, index_t width, index_t heads,
                         index_t layers)
      : width_(width),
        heads_(heads),
        ln_1_(params, prefix + ".ln_1", width),
        in_proj_(params, prefix + ".attn.in_proj_weight", prefix + ".attn.in_proj_bias", width, 3 * width,
                 Init::normal(std::pow(double(width), -0.5))),
        out_proj_(params, prefix + ".attn.out_proj.weight", prefix + ".attn.out_proj.bias", width, width,
                  Init::normal(std::pow(double(width), -0.5) * std::pow(2.0 * double(layers), -0.5))),
        ln_2_(params, prefix + ".ln_2", width),
        c_fc_(params, prefix + ".mlp.c_fc.weight", prefix + ".mlp.c_fc.bias", width, 4 * width,
              Init::normal(std::pow(2.0 * double(width), -0.5))),
        c_proj_(params, prefix + ".mlp.c_proj.weight", prefix + ".mlp.c_proj.bias", 4 * width, width,
                Init::normal(std::pow(double(width), -0.5) * std::pow(2.0 * double(layers), -0.5))) {}

  index_t width() const { return width_; }
  index_t heads() const { return heads_; }
  index_t mlp_width() const { return 4 * width_; }
  T attention_scale() const { return T(1.0 / std::sqrt(double(width_ / heads_))); }

  /// y = block(x); `acts` receives what backward needs (`for_backward`; else the MLP's pre-activation is not
  /// written). `y` must not overlap `x`.
  void forward(B& backend, ConstView<T> x, const AttentionSpec& spec, BlockActivations<T>& acts, TensorView<T> y,
               bool for_backward = true) const {
    acts.ensure(backend, x.rows(), width_, heads_, mlp_width(), for_backward);
    attend(backend, x, spec, acts);
    out_proj_.forward(backend, acts.attn.cview(), {.residual = x}, acts.x1.view());
    ln_2_.forward(backend, acts.x1.cview(), acts.ln2.view(), acts.mean2.view(), acts.rstd2.view());
    c_fc_.forward(backend, acts.ln2.cview(),
                  {.activation = Activation::quick_gelu, .save_pre = for_backward ? acts.pre.view() : TensorView<T>{}},
                  acts.hidden.view());
    c_proj_.forward(backend, acts.hidden.cview(), {.residual = acts.x1.cview()}, y);
  }

  /// Inference: y [rows.size(), width] = block(x) at x's rows `rows` only. LayerNorm, in_proj and attention run
  /// on every row (the keys and values are all needed), the output projection and the MLP on those rows alone.
  /// Row i of y is computed exactly as forward computes row rows[i] (bitwise on backends whose GEMM rows do not
  /// depend on the row count: reference, cpu). `acts` is scratch here: nothing is kept for backward.
  void forward_at(B& backend, ConstView<T> x, const AttentionSpec& spec, std::span<const index_t> rows,
                  BlockActivations<T>& acts, TensorView<T> y) const {
    const index_t selected = index_t(rows.size());
    acts.ensure(backend, x.rows(), width_, heads_, mlp_width(), false);
    attend(backend, x, spec, acts);
    // The selected rows of the attention output and of the residual stream, gathered into the first rows of ln1
    // (spent once in_proj has run) and ln2 (written by ln_2 only after the output projection has read them).
    const TensorView<T> attn_at = acts.ln1.view().slice_rows(0, selected);
    const TensorView<T> x_at = acts.ln2.view().slice_rows(0, selected);
    gather_rows(backend, acts.attn.cview(), rows, attn_at);
    gather_rows(backend, x, rows, x_at);
    const TensorView<T> x1 = acts.x1.view().slice_rows(0, selected);
    out_proj_.forward(backend, attn_at, {.residual = x_at}, x1);
    ln_2_.forward(backend, x1, x_at, acts.mean2.view().slice_rows(0, selected),
                  acts.rstd2.view().slice_rows(0, selected));
    const TensorView<T> hidden = acts.hidden.view().slice_rows(0, selected);
    c_fc_.forward(backend, x_at, {.activation = Activation::quick_gelu}, hidden);
    c_proj_.forward(backend, hidden, {.residual = x1}, y);
  }

  /// Forward reads its four weights packed (backends with packed operands) until `unpack_weights`.
  void pack_weights(B& backend) {
    for (Linear<B, T>* l : {&in_proj_, &out_proj_, &c_fc_, &c_proj_}) l->pack_weight(backend);
  }
  void unpack_weights() {
    for (Linear<B, T>* l : {&in_proj_, &out_proj_, &c_fc_, &c_proj_}) l->unpack_weight();
  }
  bool weights_packed() const { return in_proj_.weight_packed(); }

  /// From dy: writes dx, accumulates every parameter gradient. `x`, `spec` and `acts` are forward's.
  void backward(B& backend, Ones<B, T>& ones, ConstView<T> x, const AttentionSpec& spec,
                const BlockActivations<T>& acts, BlockGradients<T>& grads, ConstView<T> dy, TensorView<T> dx) const {
    grads.ensure(backend, x.rows(), width_, mlp_width());
    // MLP: d_pre = (dy W_proj) * quick_gelu'(pre); d_x1 = dy + LN2'(d_pre W_fc).
    c_proj_.backward_parameters(backend, ones, acts.hidden.cview(), dy);
    c_proj_.backward_input(backend, dy, {.activation = Activation::quick_gelu, .derivative_at = acts.pre.cview()},
                           grads.d_pre.view());
    c_fc_.backward_parameters(backend, ones, acts.ln2.cview(), grads.d_pre.cview());
    c_fc_.backward_input(backend, grads.d_pre.cview(), {}, grads.d_tmp.view());
    ln_2_.backward(backend, acts.x1.cview(), acts.mean2.cview(), acts.rstd2.cview(), grads.d_tmp.cview(),
                   grads.d_x1.view());
    backend.axpby(T(1), dy, T(1), grads.d_x1.view());
    // Attention: dx = d_x1 + LN1'(d_qkv W_in).
    out_proj_.backward_parameters(backend, ones, acts.attn.cview(), grads.d_x1.cview());
    out_proj_.backward_input(backend, grads.d_x1.cview(), {}, grads.d_tmp.view());
    const ConstView<T> qkv = acts.qkv.cview();
    const TensorView<T> d_qkv = grads.d_qkv.view();
    backend.attention_backward(qkv_part(qkv, 0), qkv_part(qkv, 1), qkv_part(qkv, 2), acts.attn.cview(),
                               acts.lse.cview(), grads.d_tmp.cview(), spec, attention_scale(), qkv_part(d_qkv, 0),
                               qkv_part(d_qkv, 1), qkv_part(d_qkv, 2));
    in_proj_.backward_parameters(backend, ones, acts.ln1.cview(), grads.d_qkv.cview());
    in_proj_.backward_input(backend, grads.d_qkv.cview(), {}, grads.d_tmp.view());
    ln_1_.backward(backend, x, acts.mean1.cview(), acts.rstd1.cview(), grads.d_tmp.cview(), dx);
    backend.axpby(T(1), grads.d_x1.cview(), T(1), dx);
  }

 private:
  /// The attention half's first steps, on every row of x: acts.ln1 = ln_1(x), acts.qkv = in_proj(ln1),
  /// acts.attn (and acts.lse) = attention over it.
  void attend(B& backend, ConstView<T> x, const AttentionSpec& spec, BlockActivations<T>& acts) const {
    ln_1_.forward(backend, x, acts.ln1.view(), acts.mean1.view(), acts.rstd1.view());
    in_proj_.forward(backend, acts.ln1.cview(), {}, acts.qkv.view());
    const ConstView<T> qkv = acts.qkv.cview();
    backend.attention_forward(qkv_part(qkv, 0), qkv_part(qkv, 1), qkv_part(qkv, 2), spec, attention_scale(),
                              acts.attn.view(), acts.lse.view());
  }

  index_t width_, heads_;
  LayerNorm<B, T> ln_1_;
  Linear<B, T> in_proj_, out_proj_;
  LayerNorm<B, T> ln_2_;
  Linear<B, T> c_fc_, c_proj_;
};

struct TransformerConfig {
  index_t width = 0;
  index_t layers = 0;
  index_t heads = 0;                   ///< 0: width / 64, as the reference.
  bool gradient_checkpointing = false;  ///< Keep only block inputs; run each block's forward again in backward.
};

template <class B, class T = float>
  requires BackendFor<B, T>
class Transformer {
 public:
  Transformer(B& backend, ParameterSet<B, T>& params, const std::string& prefix, TransformerConfig config)
      : backend_(&backend), config_(config), ones_(backend) {
    require<ValueError>(config.width > 0 && config.layers > 0, "Transformer '", prefix,
                        "': width and layers must be positive, got width ", config.width, ", layers ",
                        config.layers);
    if (config_.heads == 0) config_.heads = config.width / 64;
    require<ValueError>(config_.heads > 0 && config.width % config_.heads == 0, "Transformer '", prefix,
                        "': heads must divide width ", config.width, ", got ", config_.heads,
                        " heads (0 means width / 64)");
    for (index_t i = 0; i < config.layers; ++i)
      blocks_.emplace_back(params, prefix + ".resblocks." + std::to_string(i), config.width, config_.heads,
                           config.layers);
  }

  const TransformerConfig& config() const { return config_; }
  /// Every block's forward reads its weights packed once (backends with packed operands: CpuBackend) instead of
  /// packing them on each GEMM, until `unpack_weights`. For weights that stay unchanged over many forwards (a
  /// frozen teacher, inference); after changing them, pack again. Costs a second copy of the block weights.
  void pack_weights() {
    for (auto& block : blocks_) block.pack_weights(*backend_);
  }
  void unpack_weights() {
    for (auto& block : blocks_) block.unpack_weights();
  }
  bool weights_packed() const { return blocks_.front().weights_packed(); }

  /// Whether the last forward kept what backward needs.
  bool kept_activations() const { return kept_; }
  void set_gradient_checkpointing(bool on) {
    config_.gradient_checkpointing = on;
    activations_.clear();
    kept_ = false;  // the activations the last forward kept are gone: backward needs a new training forward
    shared_holds_ = -1;
  }

  /// Runs every block over x [rows, width]; `x` must stay alive and unchanged until backward. The result stays
  /// valid until the next forward. Without `keep_activations` (inference) the blocks share one set of activations
  /// and two output buffers, and backward is refused until a forward that keeps them.
  ConstView<T> forward(ConstView<T> x, AttentionSpec spec, bool keep_activations = true) {
    return run(x, spec, keep_activations, {});
  }

  /// Inference for callers that read the output at a few rows only (CLIP pools one token per sequence): returns
  /// [rows.size(), width], row i equal to forward(x, spec, false)'s row rows[i]. The last block computes its
  /// output projection and MLP at those rows alone (see ResidualAttentionBlock::forward_at), the others run in
  /// full. Backward is refused afterwards, as after any inference forward.
  ConstView<T> forward_at(ConstView<T> x, AttentionSpec spec, std::span<const index_t> rows) {
    constexpr std::string_view op = "Transformer::forward_at";
    check::matrix(op, "x", x);
    require<ShapeError>(!rows.empty() && index_t(rows.size()) <= x.rows(), op, ": between 1 and x's ", x.rows(),
                        " rows can be selected (the last block's scratch has that many), got ", rows.size());
    for (const index_t r : rows)
      require<ShapeError>(r >= 0 && r < x.rows(), op, ": selected row ", r, " is outside x's ", x.rows(), " rows");
    return run(x, spec, false, rows);
  }

  /// From dy [rows, width]: writes dx (may be null), accumulates every parameter gradient.
  void backward(ConstView<T> dy, TensorView<T> dx) {
    constexpr std::string_view op = "Transformer::backward";
    require<Error>(ran_, op, ": call forward first");
    require<Error>(kept_, op, ": the last forward ran without keeping activations (inference); run forward with "
                   "keep_activations = true before backward");
    check::same_extents(op, "y", stream_.back().cview(), "dy", dy);
    if (!dx.is_null()) check::same_extents(op, "x", input_, "dx", dx);
    for (Tensor<T>& g : d_stream_) ensure_allocated(*backend_, g, input_.extents());
    ConstView<T> d_out = dy;
    for (index_t i = config_.layers - 1; i >= 0; --i) {
      const ConstView<T> in = i == 0 ? input_ : stream_[i - 1].cview();
      // Checkpointing, block i runs again unless the shared buffer still holds its activations (the last block's,
      // right after forward). The recomputed output lands where forward put it: block i + 1 no longer needs it.
      if (config_.gradient_checkpointing && shared_holds_ != i) {
        shared_holds_ = -1;  // until the recomputation has finished
        blocks_[i].forward(*backend_, in, spec_, block_activations(i), stream_[i]);
        shared_holds_ = i;
      }
      TensorView<T> d_in = (i == 0 && !dx.is_null()) ? dx : d_stream_[std::size_t(i % 2)].view();
      blocks_[i].backward(*backend_, ones_, in, spec_, block_activations(i), gradients_, d_out, d_in);
      d_out = d_in;
    }
  }

  /// Bytes of activation memory held for backward now (block inputs, kept activations, backward temporaries).
  std::size_t activation_bytes() const {
    std::size_t n = gradients_.bytes();
    for (const Tensor<T>& s : stream_) n += std::size_t(s.numel()) * sizeof(T);
    n += std::size_t(selected_.numel()) * sizeof(T);
    for (const Tensor<T>& g : d_stream_) n += std::size_t(g.numel()) * sizeof(T);
    for (const BlockActivations<T>& a : activations_) n += a.bytes();
    return n;
  }

 private:
  /// forward, or forward_at when `rows` is not empty.
  ConstView<T> run(ConstView<T> x, AttentionSpec spec, bool keep_activations, std::span<const index_t> rows) {
    constexpr std::string_view op = "Transformer::forward";
    check::matrix(op, "x", x);
    require<ShapeError>(x.cols() == config_.width, op, ": x must be [rows, ", config_.width, "], got ", x);
    spec.heads = config_.heads;
    require<ShapeError>(spec.batch * spec.tokens == x.rows(), op, ": ", spec.batch, " sequences of ", spec.tokens,
                        " tokens need ", spec.batch * spec.tokens, " rows, x has ", x.rows());
    spec_ = spec;
    input_ = x;
    // Set again only once every block has run: after a forward that threw, backward refuses to run on a mix of
    // this forward's tensors and the previous one's.
    ran_ = kept_ = false;
    shared_holds_ = -1;
    const index_t layers = config_.layers, full_layers = rows.empty() ? layers : layers - 1;
    const bool shared = config_.gradient_checkpointing || !keep_activations;
    stream_.resize(std::size_t(keep_activations ? layers : std::min<index_t>(layers, 2)));
    activations_.resize(shared ? 1 : std::size_t(layers));
    ConstView<T> in = x;
    for (index_t i = 0; i < full_layers; ++i) {
      Tensor<T>& buffer = stream_[std::size_t(keep_activations ? i : i % 2)];
      TensorView<T> out = ensure_allocated(*backend_, buffer, x.extents());
      blocks_[i].forward(*backend_, in, spec_, activations_[shared ? 0 : std::size_t(i)], out, keep_activations);
      in = out;
    }
    if (rows.empty()) {
      ran_ = true;
      kept_ = keep_activations;
      if (keep_activations && config_.gradient_checkpointing) shared_holds_ = layers - 1;
      return in;
    }
    const TensorView<T> out = ensure_allocated(*backend_, selected_, {index_t(rows.size()), config_.width});
    blocks_.back().forward_at(*backend_, in, spec_, rows, activations_[0], out);
    ran_ = true;
    return out;
  }

  BlockActivations<T>& block_activations(index_t i) {
    return activations_[config_.gradient_checkpointing ? 0 : std::size_t(i)];
  }

  B* backend_;
  TransformerConfig config_;
  Ones<B, T> ones_;
  std::vector<ResidualAttentionBlock<B, T>> blocks_;
  std::vector<Tensor<T>> stream_;  // block outputs
  Tensor<T> selected_;              // forward_at's output
  std::vector<BlockActivations<T>> activations_;
  BlockGradients<T> gradients_;
  Tensor<T> d_stream_[2];
  AttentionSpec spec_;
  ConstView<T> input_;
  bool ran_ = false;   // a forward has run
  bool kept_ = false;  // ... and kept what backward needs
  index_t shared_holds_ = -1;  // the block whose activations the shared buffer (checkpointing) holds, or -1
};

}  // namespace froster::nn
