#pragma once
/// @file
/// Compiles the CPU kernels once per instruction set. The kernel bodies (`kernels/*-inl.hpp`) are written once
/// against the SIMD vocabulary (`simd/*-inl.hpp`) and included here into `froster::cpu::scalar`, `::avx2` and
/// `::avx512`, the latter two between `#pragma GCC target` pushes: header-only runtime dispatch with no special
/// compiler flags for the consumer. Every kernel takes its level's `Tag` first, so `dispatch` can pick the level
/// at run time and argument-dependent lookup finds the right namespace.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <utility>

#include "froster/backends/cpu/isa.hpp"
#include "froster/backends/ops.hpp"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__)
#define FROSTER_CPU_X86_KERNELS 1
// GCC 12's AVX-512 intrinsics seed their masked builtins with self-initialised "undefined" vectors, which its
// -Wmaybe-uninitialized reports wherever they are inlined. Warnings are judged by the state at the header's lines,
// so the headers are included with that warning off.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#else
#define FROSTER_CPU_X86_KERNELS 0
#endif

namespace froster::cpu {

namespace scalar {
#include "froster/backends/cpu/simd/scalar-inl.hpp"
#include "froster/backends/cpu/kernels/all-inl.hpp"
}  // namespace scalar

#if FROSTER_CPU_X86_KERNELS
#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace avx2 {
#include "froster/backends/cpu/simd/avx2-inl.hpp"
#include "froster/backends/cpu/simd/math-inl.hpp"
#include "froster/backends/cpu/kernels/all-inl.hpp"
}  // namespace avx2
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")
#pragma GCC diagnostic push  // the same GCC 12 false positive, for when <immintrin.h> was included before us
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
namespace avx512 {
#include "froster/backends/cpu/simd/avx512-inl.hpp"
#include "froster/backends/cpu/simd/math-inl.hpp"
#include "froster/backends/cpu/kernels/all-inl.hpp"
}  // namespace avx512
#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif

/// Calls `f(tag)` with the `Tag` of `isa`'s namespace; levels this build lacks fall back to the best it has.
template <class F>
decltype(auto) dispatch(Isa isa, F&& f) {
#if FROSTER_CPU_X86_KERNELS
  if (isa == Isa::avx512) return f(avx512::Tag{});
  if (isa == Isa::avx2) return f(avx2::Tag{});
#endif
  (void)isa;
  return f(scalar::Tag{});
}

}  // namespace froster::cpu
