#pragma once
/// @file
/// Reference temporal pooling over the frame axis of `[clips * frames, channels]`, forward and backward.

#include <cstdint>

#include "froster/backends/ops.hpp"

namespace froster::reference {

/// y[c] = mean or max over frames t of x[c * frames + t]. For max, argmax[c, k] is the frame index (0-based,
/// within the clip) of the first maximum; NaN counts as the maximum, as in torch.max.
template <class T>
void temporal_pool_forward(Pooling mode, ConstView<T> x, index_t frames, TensorView<T> y,
                           TensorView<std::int64_t> argmax) {
  const index_t clips = x.rows() / frames;
  for (index_t c = 0; c < clips; ++c)
    for (index_t k = 0; k < x.cols(); ++k) {
      if (mode == Pooling::mean) {
        double acc = 0;
        for (index_t t = 0; t < frames; ++t) acc += double(x(c * frames + t, k));
        y(c, k) = T(acc / double(frames));
        continue;
      }
      index_t best = 0;
      T best_value = x(c * frames, k);
      for (index_t t = 1; t < frames && best_value == best_value; ++t) {
        const T v = x(c * frames + t, k);
        if (v > best_value || v != v) {
          best = t;
          best_value = v;
        }
      }
      y(c, k) = best_value;
      argmax(c, k) = best;
    }
}

/// dx (written) from dy: mean spreads dy / frames over the clip's frames; max routes dy to the saved argmax.
template <class T>
void temporal_pool_backward(Pooling mode, index_t frames, ConstView<T> dy, ConstView<std::int64_t> argmax,
                            TensorView<T> dx) {
  for (index_t c = 0; c < dy.rows(); ++c)
    for (index_t k = 0; k < dy.cols(); ++k)
      for (index_t t = 0; t < frames; ++t) {
        if (mode == Pooling::mean)
          dx(c * frames + t, k) = T(double(dy(c, k)) / double(frames));
        else
          dx(c * frames + t, k) = argmax(c, k) == t ? dy(c, k) : T(0);
      }
}

}  // namespace froster::reference
