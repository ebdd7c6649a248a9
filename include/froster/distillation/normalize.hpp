#pragma once
/// @file
/// `L2Normalize`: `y = x / ||x||` per row, as PyTorch's `x / x.norm(dim=-1, keepdim=True)`. A zero row gives NaN,
/// exactly as in PyTorch (the losses then report a NumericError); CLIP features are never zero in practice.

#include "froster/backends/backend.hpp"

namespace froster {

template <class B, class T = float>
  requires BackendFor<B, T>
class L2Normalize {
 public:
  explicit L2Normalize(B& backend) : backend_(&backend) {}

  /// Normalises each row of `x` [rows, dim]. The returned view stays valid until the next forward.
  ConstView<T> forward(ConstView<T> x) {
    check::matrix("L2Normalize::forward", "x", x);
    auto y = ensure_allocated(*backend_, y_, x.extents());
    auto norms = ensure_allocated(*backend_, norms_, {x.rows()});
    backend_->l2_normalize_forward(x, y, norms);
    return y;
  }

  /// dx = (dy - y <y, dy>) / ||x|| (written), for the rows of the last forward.
  void backward(ConstView<T> dy, TensorView<T> dx) {
    require<Error>(y_.allocated(), "L2Normalize::backward: call forward first");
    backend_->l2_normalize_backward(y_.cview(), norms_.cview(), dy, dx);
  }

  ConstView<T> output() const { return y_.cview(); }
  ConstView<T> norms() const { return norms_.cview(); }

 private:
  B* backend_;
  Tensor<T> y_;
  Tensor<T> norms_;
};

}  // namespace froster
