#pragma once
/// @file
/// `TemporalPool`: pools `[clips * frames, channels]` over the frames of each clip to `[clips, channels]`.
/// Mean is what FROSTER uses on per-frame logits; max routes each gradient to the first maximal frame.

#include <cstdint>

#include "froster/backends/backend.hpp"

namespace froster {

template <class B, class T = float>
  requires BackendFor<B, T>
class TemporalPool {
 public:
  TemporalPool(B& backend, Pooling mode) : backend_(&backend), mode_(mode) {}

  /// x [clips * frames, channels] -> [clips, channels]; the view stays valid until the next forward.
  ConstView<T> forward(ConstView<T> x, index_t frames) {
    check::temporal("TemporalPool::forward", x, frames);
    const Dims out{x.rows() / frames, x.cols()};
    auto y = ensure_allocated(*backend_, y_, out);
    TensorView<std::int64_t> argmax;
    if (mode_ == Pooling::max) argmax = ensure_allocated(*backend_, argmax_, out);
    backend_->temporal_pool_forward(mode_, x, frames, y, argmax);
    frames_ = frames;
    return y;
  }

  /// dx [clips * frames, channels] (written) from dy [clips, channels].
  void backward(ConstView<T> dy, TensorView<T> dx) {
    require<Error>(frames_ > 0, "TemporalPool::backward: call forward first");
    check::same_extents("TemporalPool::backward", "y", y_.cview(), "dy", dy);
    backend_->temporal_pool_backward(mode_, frames_, dy, argmax_.cview(), dx);
  }

  Pooling mode() const { return mode_; }

 private:
  B* backend_;
  Pooling mode_;
  index_t frames_ = 0;
  Tensor<T> y_;
  Tensor<std::int64_t> argmax_;
};

}  // namespace froster
