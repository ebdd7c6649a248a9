// Every kernel body of the CPU backend, for one ISA (no include guard: ../kernels.hpp includes it once per level).
// One file per topic, each owned and tested on its own.
#include "froster/backends/cpu/kernels/elementwise-inl.hpp"
#include "froster/backends/cpu/kernels/rows-inl.hpp"
#include "froster/backends/cpu/kernels/reductions-inl.hpp"
#include "froster/backends/cpu/kernels/attention-inl.hpp"
#include "froster/backends/cpu/kernels/gemm-inl.hpp"
#include "froster/backends/cpu/kernels/fused-inl.hpp"
