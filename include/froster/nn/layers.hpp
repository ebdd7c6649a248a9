#pragma once
/// @file
/// The two parameterised layers of a CLIP transformer, as thin wrappers over backend ops: `LayerNorm` (eps 1e-5,
/// per row) and `Linear` (`y = x W^T + b`, W stored [out, in] as `torch.nn.Linear.weight`). Parameters live in
/// a ParameterSet under the caller's names; the layers keep no activations (their owners decide what to keep,
/// which is what gradient checkpointing needs).

#include <optional>
#include <string>

#include "froster/backends/fused.hpp"
#include "froster/nn/parameters.hpp"

namespace froster::nn {

/// A [1, n] row of ones, grown on demand: column sums (bias gradients) and row broadcasts are GEMMs with it.
template <class B, class T>
class Ones {
 public:
  explicit Ones(B& backend) : backend_(&backend) {}
  ConstView<T> row(index_t n) {
    if (!ones_.allocated() || ones_.extent(1) < n) {
      ones_ = backend_->template allocate<T>({1, n});
      backend_->fill(ones_.view(), T(1));
    }
    return ConstView<T>(ones_.data(), {1, n}, ones_.device());
  }

 private:
  B* backend_;
  Tensor<T> ones_;
};

/// grad_bias [n] += column sums of dy [rows, n].
template <class B, class T>
void accumulate_column_sums(B& backend, Ones<B, T>& ones, ConstView<T> dy, TensorView<T> grad_bias) {
  const TensorView<T> row(grad_bias.data(), {1, grad_bias.numel()}, grad_bias.device());
  backend.gemm(T(1), ones.row(dy.rows()), Transpose::no, dy, Transpose::no, T(1), row);
}

/// A layer's forward GEMM operand op(W) (W a parameter's storage, which never moves), packed once where the
/// backend can (HasPackedGemm) while its owner's weights are packed, else read from W on every call. The packed
/// copy does not follow writes to W: whoever changes weights that are packed packs them again (or unpacks them).
template <class B, class T>
class ForwardWeight {
 public:
  ForwardWeight(ConstView<T> weight, Transpose t) : weight_(weight), t_(t) {}

  void pack(B& backend) {
    if constexpr (HasPackedGemm<B, T>) packed_.emplace(backend.pack_gemm_operand(weight_, t_));
  }
  void unpack() { packed_.reset(); }
  bool packed() const { return packed_.has_value(); }

  /// y = epi(x op(W)), from the packed copy where there is one.
  void fused_gemm(B& backend, ConstView<T> x, const LinearEpilogue<T>& epi, TensorView<T> y) const {
    if constexpr (HasPackedGemm<B, T>) {
      if (packed_) return backend.fused_gemm(T(1), x, Transpose::no, *packed_, epi, y);
    }
    froster::fused_gemm(backend, T(1), x, Transpose::no, weight_, t_, epi, y);
  }

 private:
  ConstView<T> weight_;
  Transpose t_;
  std::optional<PackedGemmOperandOf<B, T>> packed_;
};

template <class B, class T = float>
  requires BackendFor<B, T>
class LayerNorm {
 public:
  static constexpr double eps = 1e-5;

  LayerNorm(ParameterSet<B, T>& params, const std::string& prefix, index_t width)
      : gamma_(&params.add(prefix + ".weight", {width}, Init::ones())),
        beta_(&params.add(prefix + ".bias", {width}, Init::zeros())) {}

  /// y = LN(x) per row; mean and rstd [rows] are kept by the caller for backward.
  void forward(B& backend, ConstView<T> x, TensorView<T> y, TensorView<T> mean, TensorView<T> rstd) const {
    backend.layer_norm_forward(x, gamma_->value.cview(), beta_->value.cview(), T(eps), y, mean, rstd);
  }

  /// dx = (written), dgamma and dbeta accumulate.
  void backward(B& backend, ConstView<T> x, ConstView<T> mean, ConstView<T> rstd, ConstView<T> dy,
                TensorView<T> dx) const {
    backend.layer_norm_backward(x, gamma_->value.cview(), mean, rstd, dy, dx, gamma_->grad.view(),
                                beta_->grad.view());
  }

  index_t width() const { return gamma_->value.extent(0); }

 private:
  typename ParameterSet<B, T>::Entry* gamma_;
  typename ParameterSet<B, T>::Entry* beta_;
};

template <class B, class T = float>
  requires BackendFor<B, T>
class Linear {
 public:
  /// `weight_name`/`bias_name` are full names (OpenAI CLIP names some weights without a `.weight` suffix);
  /// an empty bias name means no bias.
  Linear(ParameterSet<B, T>& params, const std::string& weight_name, const std::string& bias_name, index_t in,
         index_t out, Init weight_init)
      : weight_(&params.add(weight_name, {out, in}, weight_init)),
        bias_(bias_name.empty() ? nullptr : &params.add(bias_name, {out}, Init::zeros())),
        forward_weight_(weight_->value.cview(), Transpose::yes) {}

  /// y = epilogue(x W^T + b): `epi` adds what the caller fuses (residual, activation saving its input).
  void forward(B& backend, ConstView<T> x, LinearEpilogue<T> epi, TensorView<T> y) const {
    if (bias_ != nullptr) epi.bias = bias_->value.cview();
    forward_weight_.fused_gemm(backend, x, epi, y);
  }

  /// Forward reads W^T packed once (backends with packed operands) until `unpack_weight`; see ForwardWeight.
  void pack_weight(B& backend) { forward_weight_.pack(backend); }
  void unpack_weight() { forward_weight_.unpack(); }
  bool weight_packed() const { return forward_weight_.packed(); }

  /// dx = epilogue(dy W): written, or accumulated through `epi.residual` (an activation derivative may be fused).
  void backward_input(B& backend, ConstView<T> dy, const LinearEpilogue<T>& epi, TensorView<T> dx) const {
    fused_gemm(backend, T(1), dy, Transpose::no, weight_->value.cview(), Transpose::no, epi, dx);
  }

  /// dW += dy^T x, db += column sums of dy.
  void backward_parameters(B& backend, Ones<B, T>& ones, ConstView<T> x, ConstView<T> dy) const {
    backend.gemm(T(1), dy, Transpose::yes, x, Transpose::no, T(1), weight_->grad.view());
    if (bias_ != nullptr) accumulate_column_sums(backend, ones, dy, bias_->grad.view());
  }

  ConstView<T> weight() const { return weight_->value.cview(); }
  index_t in_features() const { return weight_->value.extent(1); }
  index_t out_features() const { return weight_->value.extent(0); }

 private:
  typename ParameterSet<B, T>::Entry* weight_;
  typename ParameterSet<B, T>::Entry* bias_;
  ForwardWeight<B, T> forward_weight_;
};

}  // namespace froster::nn
