#pragma once
/// @file
/// `ResidualProjector`: FROSTER's residual feature projector `h(z) = z + alpha * W2 gelu(W1 z)` applied to each row
/// of `z` [rows, dim]. No biases; exact erf GELU; `W1` [hidden, dim] Kaiming-normal (fan-in, gain sqrt 2, as
/// `torch.nn.init.kaiming_normal_`), `W2` [dim, hidden] zero so training starts from the identity map. Weights are
/// stored as `torch.nn.Linear.weight` is, so PyTorch state dicts load directly.

#include <array>
#include <cmath>
#include <cstdint>

#include "froster/backends/backend.hpp"
#include "froster/backends/fused.hpp"
#include "froster/core/parameter.hpp"
#include "froster/core/random.hpp"

namespace froster {

struct ResidualProjectorConfig {
  index_t dim = 0;             ///< Input and output width D.
  index_t hidden = 0;          ///< Hidden width; 0 means D.
  double alpha = 0.1;          ///< Residual scale.
  std::uint64_t seed = 0;      ///< Seed of W1's initialisation; the same seed gives the same weights everywhere.
};

template <class B, class T = float>
  requires BackendFor<B, T>
class ResidualProjector {
 public:
  ResidualProjector(B& backend, ResidualProjectorConfig config) : backend_(&backend), config_(config) {
    require<ValueError>(config.dim > 0, "ResidualProjector: dim must be positive, got ", config.dim);
    require<ValueError>(config.hidden >= 0, "ResidualProjector: hidden must be >= 0 (0 means dim), got ",
                        config.hidden);
    require<ValueError>(std::isfinite(config.alpha), "ResidualProjector: alpha must be finite, got ", config.alpha);
    if (config_.hidden == 0) config_.hidden = config_.dim;
    const index_t d = config_.dim, h = config_.hidden;
    w1_ = backend.template allocate<T>({h, d});
    w2_ = backend.template allocate<T>({d, h});
    grad_w1_ = backend.template allocate<T>({h, d});
    grad_w2_ = backend.template allocate<T>({d, h});
    reset_parameters(config_.seed);
    zero_grad();
  }

  /// W1 ~ N(0, 2 / dim) from `seed`, W2 = 0.
  void reset_parameters(std::uint64_t seed) {
    Tensor<T> host = Tensor<T>::host(w1_.extents());
    NormalRng rng(seed);
    const double std_dev = std::sqrt(2.0 / double(config_.dim));
    T* p = host.data();
    for (index_t i = 0; i < host.numel(); ++i) p[i] = T(std_dev * rng.normal());
    backend_->copy(host.cview(), w1_.view());
    backend_->fill(w2_.view(), T(0));
  }

  /// Copies weights in (e.g. from a PyTorch state dict): w1 [hidden, dim], w2 [dim, hidden].
  void load(ConstView<T> w1, ConstView<T> w2) {
    check::same_extents("ResidualProjector::load", "W1", w1_.cview(), "w1", w1);
    check::same_extents("ResidualProjector::load", "W2", w2_.cview(), "w2", w2);
    backend_->copy(w1, w1_.view());
    backend_->copy(w2, w2_.view());
  }

  /// h = z + alpha W2 gelu(W1 z) for z [rows, dim]. `z` must stay alive and unchanged until `backward`; the
  /// returned view stays valid until the next forward.
  ConstView<T> forward(ConstView<T> z) {
    constexpr std::string_view op = "ResidualProjector::forward";
    check::matrix(op, "z", z);
    require<ShapeError>(z.cols() == config_.dim, op, ": z must be [rows, ", config_.dim, "], got ", z);
    const index_t n = z.rows();
    auto pre = ensure_allocated(*backend_, pre_, {n, config_.hidden});
    auto hidden = ensure_allocated(*backend_, hidden_, {n, config_.hidden});
    auto out = ensure_allocated(*backend_, out_, z.extents());
    // Two fused GEMMs: hidden = gelu(pre) with pre = z W1^T saved, then out = z + alpha hidden W2^T (backends
    // without a fused_gemm member compose these from gemm, activation_forward and copy).
    fused_gemm(*backend_, T(1), z, Transpose::no, w1_.cview(), Transpose::yes,
               {.activation = Activation::gelu, .save_pre = pre}, hidden);
    fused_gemm(*backend_, T(config_.alpha), hidden, Transpose::no, w2_.cview(), Transpose::yes, {.residual = z}, out);
    input_ = z;
    return out;
  }

  /// From dh [rows, dim]: writes dz, accumulates dW1 and dW2 (`+=`).
  void backward(ConstView<T> dh, TensorView<T> dz) {
    constexpr std::string_view op = "ResidualProjector::backward";
    require<Error>(out_.allocated(), op, ": call forward first");
    check::same_extents(op, "h", out_.cview(), "dh", dh);
    check::same_extents(op, "z", out_.cview(), "dz", dz);
    const T alpha = T(config_.alpha);
    auto d_pre = ensure_allocated(*backend_, d_pre_, pre_.extents());
    backend_->gemm(alpha, dh, Transpose::yes, hidden_.cview(), Transpose::no, T(1), grad_w2_.view());
    // d_pre = (alpha dh W2) * gelu'(pre), then dz = dh + d_pre W1, each one fused GEMM.
    fused_gemm(*backend_, alpha, dh, Transpose::no, w2_.cview(), Transpose::no,
               {.activation = Activation::gelu, .derivative_at = pre_.cview()}, d_pre);
    backend_->gemm(T(1), ConstView<T>(d_pre), Transpose::yes, input_, Transpose::no, T(1), grad_w1_.view());
    fused_gemm(*backend_, T(1), d_pre, Transpose::no, w1_.cview(), Transpose::no, {.residual = dh}, dz);
  }

  void zero_grad() {
    backend_->fill(grad_w1_.view(), T(0));
    backend_->fill(grad_w2_.view(), T(0));
  }

  /// Parameters with their gradients, for an optimiser: {"w1", ...}, {"w2", ...}.
  std::array<Parameter<T>, 2> parameters() {
    return {Parameter<T>{"w1", w1_.view(), grad_w1_.view()}, Parameter<T>{"w2", w2_.view(), grad_w2_.view()}};
  }

  ConstView<T> w1() const { return w1_.cview(); }
  ConstView<T> w2() const { return w2_.cview(); }
  ConstView<T> grad_w1() const { return grad_w1_.cview(); }
  ConstView<T> grad_w2() const { return grad_w2_.cview(); }
  const ResidualProjectorConfig& config() const { return config_; }

  /// Multiply-adds of one forward over `rows` rows, times two: 4 rows dim hidden. A backward is twice that.
  double forward_flops(index_t rows) const { return 4.0 * double(rows) * double(config_.dim) * double(config_.hidden); }

 private:
  B* backend_;
  ResidualProjectorConfig config_;
  Tensor<T> w1_, w2_, grad_w1_, grad_w2_;
  Tensor<T> pre_, hidden_, out_, d_pre_;
  ConstView<T> input_;
};

}  // namespace froster
