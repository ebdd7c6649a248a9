// PyTorch parity of every distillation component on the CPU backend, at the ISA level of this run: the cases of
// tests/distillation/test_parity.cpp with CpuBackend as the backend.
#include <froster/cpu.hpp>

#define FROSTER_PARITY_BACKENDS froster::CpuBackend
#include "distillation/test_parity.cpp"
