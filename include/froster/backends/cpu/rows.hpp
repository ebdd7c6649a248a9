#pragma once
/// @file
/// Row-wise kernel drivers of the CPU backend (copy, fill, L2 normalisation, cosine, LayerNorm, softmax,
/// log-softmax): split rows over the pool, dispatch to the ISA's kernel. Each returns false for cases it does
/// not take (the backend then runs the reference loops). Arguments arrive checked.

#include <type_traits>

#include "froster/backends/cpu/context.hpp"
#include "froster/backends/cpu/kernels.hpp"
#include "froster/core/tensor_view.hpp"

namespace froster::cpu {

// Not yet vectorised: each declines, and the reference loops run.
template <class T>
bool copy(Context, ConstView<T>, TensorView<T>) { return false; }
template <class T>
bool fill(Context, TensorView<T>, T) { return false; }
template <class T>
bool l2_normalize_forward(Context, ConstView<T>, TensorView<T>, TensorView<T>) { return false; }
template <class T>
bool l2_normalize_backward(Context, ConstView<T>, ConstView<T>, ConstView<T>, TensorView<T>) { return false; }
template <class T>
bool cosine_forward(Context, ConstView<T>, ConstView<T>, T, TensorView<T>, TensorView<T>, TensorView<T>) { return false; }
template <class T>
bool cosine_backward(Context, ConstView<T>, ConstView<T>, ConstView<T>, ConstView<T>, ConstView<T>, T, T, TensorView<T>,
                     TensorView<T>) { return false; }
template <class T>
bool layer_norm_forward(Context, ConstView<T>, ConstView<T>, ConstView<T>, T, TensorView<T>, TensorView<T>,
                        TensorView<T>) { return false; }
template <class T>
bool layer_norm_backward(Context, ConstView<T>, ConstView<T>, ConstView<T>, ConstView<T>, ConstView<T>, TensorView<T>,
                         TensorView<T>, TensorView<T>) { return false; }
template <class T>
bool softmax_forward(Context, ConstView<T>, T, bool, TensorView<T>) { return false; }
template <class T>
bool softmax_backward(Context, ConstView<T>, ConstView<T>, T, TensorView<T>) { return false; }
template <class T>
bool log_softmax_forward(Context, ConstView<T>, T, TensorView<T>) { return false; }

}  // namespace froster::cpu
