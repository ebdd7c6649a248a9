#pragma once
/// @file
/// IEEE binary16 ("half", F16) and bfloat16 (BF16) <-> float32 conversions on raw 16-bit patterns, for checkpoint
/// readers and writers. Widening is exact; narrowing rounds to nearest, ties to even (as PyTorch's `.half()` and
/// `.bfloat16()` do), overflows to infinity, and keeps NaN a (quiet) NaN with its sign. No hardware half type is
/// needed, so the results are the same on every compiler and CPU.

#include <bit>
#include <cstdint>

namespace froster::io {

/// Binary16 bit pattern -> float (exact: every half is a float). NaN payloads are kept.
inline float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16;
  const std::uint32_t exponent = (h >> 10) & 0x1fu;
  const std::uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0x1f) return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));  // inf, NaN
  if (exponent != 0) return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
  // Zero or subnormal: mantissa * 2^-24, exact in float (at most 10 significant bits).
  const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
  return sign != 0 ? -magnitude : magnitude;
}

/// Float -> binary16 bit pattern, round to nearest even; |x| >= 65520 becomes infinity; NaN stays a quiet NaN.
inline std::uint16_t float_to_half(float f) {
  const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  const auto sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
  const std::uint32_t ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) return static_cast<std::uint16_t>(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));  // NaN
  // 65520 is halfway between 65504 (the largest half, odd mantissa) and 65536: ties go up, to infinity.
  if (ax >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u);
  if (ax >= 0x38800000u) {  // a normal half (>= 2^-14): rebias the exponent, round away the low 13 bits
    const std::uint32_t v = ax - 0x38000000u;
    const std::uint32_t rounded = v + 0xfffu + ((v >> 13) & 1u);  // a carry into the exponent is correct
    return static_cast<std::uint16_t>(sign | (rounded >> 13));
  }
  // Subnormal half (or zero): adding 0.5 (whose float ulp is 2^-24, the half subnormal step) lets the FPU round
  // to nearest even; the low bits of the sum are then the half's mantissa (0x400 = the smallest normal: right).
  const float sum = std::bit_cast<float>(ax) + 0.5f;
  return static_cast<std::uint16_t>(sign | (std::bit_cast<std::uint32_t>(sum) - 0x3f000000u));
}

/// Bfloat16 bit pattern -> float (exact: bfloat16 is the top half of a float).
inline float bf16_to_float(std::uint16_t b) { return std::bit_cast<float>(std::uint32_t(b) << 16); }

/// Float -> bfloat16 bit pattern, round to nearest even (values near FLT_MAX may round to infinity); NaN stays a
/// quiet NaN with its sign.
inline std::uint16_t float_to_bf16(float f) {
  const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((x >> 16) | 0x0040u);
  const std::uint32_t rounded = x + 0x7fffu + ((x >> 16) & 1u);
  return static_cast<std::uint16_t>(rounded >> 16);
}

}  // namespace froster::io
