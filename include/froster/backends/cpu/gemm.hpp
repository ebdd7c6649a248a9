#pragma once
/// @file
/// SGEMM driver of the CPU backend: C = alpha op(A) op(B) + beta C. Returns false for cases it does not take
/// (the backend then runs the reference loops). Arguments arrive checked.

#include <type_traits>

#include "froster/backends/cpu/context.hpp"
#include "froster/backends/cpu/kernels.hpp"
#include "froster/core/tensor_view.hpp"

namespace froster::cpu {

template <class T>
bool gemm(Context, T, ConstView<T>, Transpose, ConstView<T>, Transpose, T, TensorView<T>) {
  return false;  // the packed SIMD GEMM replaces this
}

}  // namespace froster::cpu
