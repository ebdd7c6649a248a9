#pragma once
/// @file
/// The CPU backend: SIMD kernels (scalar, AVX2, AVX-512) with run-time dispatch and a thread pool.

#include "froster/backends/cpu.hpp"
