#pragma once
/// @file
/// Instruction-set levels of the CPU backend, detected once at run time (CPUID and the OS's XSAVE state, through
/// the compiler's `__builtin_cpu_supports`). `FROSTER_ISA=scalar|avx2|avx512` forces a lower level for tests and
/// benchmarks; asking for a level this CPU lacks, or an unknown name, is an `Error` naming what the CPU has.

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "froster/core/error.hpp"

namespace froster::cpu {

/// Ordered: a higher level implies the lower ones.
enum class Isa : std::uint8_t {
  scalar = 0,  ///< Portable C++; any x86-64 (or other) CPU.
  avx2 = 1,    ///< AVX2 + FMA (Haswell, Zen and later).
  avx512 = 2,  ///< AVX-512 F/BW/VL/DQ (Skylake-SP, Ice Lake, Sapphire Rapids, Zen 4 and later).
};

inline std::string_view to_string(Isa isa) {
  switch (isa) {
    case Isa::scalar: return "scalar";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
  }
  return "?";
}

inline std::optional<Isa> parse_isa(std::string_view name) {
  if (name == "scalar") return Isa::scalar;
  if (name == "avx2") return Isa::avx2;
  if (name == "avx512") return Isa::avx512;
  return std::nullopt;
}

/// The highest level this CPU and OS support.
inline Isa detect_isa() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  static const Isa detected = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma"))
      return Isa::avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::avx2;
    return Isa::scalar;
  }();
  return detected;
#else
  return Isa::scalar;
#endif
}

/// Resolves a requested level (from `FROSTER_ISA` or a caller) against the CPU: the detected level when empty.
inline Isa resolve_isa(std::string_view requested) {
  const Isa available = detect_isa();
  if (requested.empty()) return available;
  const auto isa = parse_isa(requested);
  require(isa.has_value(), "FROSTER_ISA must be one of scalar, avx2, avx512; got '", requested, "'");
  require(*isa <= available, "FROSTER_ISA=", requested, " asks for ", to_string(*isa), " but this CPU supports up to ",
          to_string(available));
  return *isa;
}

/// The level the CPU backend runs at by default: `FROSTER_ISA` if set (read on every call: tests set it), else
/// the detected level.
inline Isa default_isa() {
  const char* env = std::getenv("FROSTER_ISA");
  return resolve_isa(env == nullptr ? std::string_view() : std::string_view(env));
}

}  // namespace froster::cpu
