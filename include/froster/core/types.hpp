#pragma once
/// @file
/// Index type, element types and devices.

#include <cstdint>
#include <string_view>
#include <type_traits>

namespace froster {

/// Signed index used for every extent, stride and offset (negative strides are allowed in views).
using index_t = std::int64_t;

/// Element type of a tensor.
enum class DType : std::uint8_t { f32, f64, i32, i64 };

constexpr std::string_view to_string(DType t) {
  switch (t) {
    case DType::f32: return "f32";
    case DType::f64: return "f64";
    case DType::i32: return "i32";
    case DType::i64: return "i64";
  }
  return "?";
}

template <class T>
inline constexpr bool is_element_type_v =
    std::is_same_v<T, float> || std::is_same_v<T, double> || std::is_same_v<T, std::int32_t> ||
    std::is_same_v<T, std::int64_t>;

/// The DType tag of a C++ element type.
template <class T>
constexpr DType dtype_of() {
  using U = std::remove_const_t<T>;
  static_assert(is_element_type_v<U>, "froster tensors hold float, double, int32 or int64");
  if constexpr (std::is_same_v<U, float>) return DType::f32;
  else if constexpr (std::is_same_v<U, double>) return DType::f64;
  else if constexpr (std::is_same_v<U, std::int32_t>) return DType::i32;
  else return DType::i64;
}

/// Where a tensor's elements live. Host memory is directly addressable; CUDA memory only through a CUDA backend.
enum class DeviceKind : std::uint8_t { host, cuda };

struct Device {
  DeviceKind kind = DeviceKind::host;
  int index = 0;  ///< CUDA ordinal; 0 for the host.

  static constexpr Device host() { return {DeviceKind::host, 0}; }
  static constexpr Device cuda(int ordinal = 0) { return {DeviceKind::cuda, ordinal}; }
  constexpr bool is_host() const { return kind == DeviceKind::host; }
  friend constexpr bool operator==(Device, Device) = default;
};

inline std::string_view to_string(DeviceKind k) { return k == DeviceKind::host ? "host" : "cuda"; }

}  // namespace froster
