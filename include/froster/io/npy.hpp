#pragma once
/// @file
/// Writing NumPy `.npy` files (format version 1.0, little-endian float32, C order): what the CLI's embed commands
/// write, readable by `numpy.load`. Written to a temporary file and renamed, so a failed write leaves no half file.

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#include "froster/core/error.hpp"
#include "froster/core/tensor_view.hpp"

namespace froster::io {

/// The 10-byte preamble and the header dict, padded with spaces and a newline to a multiple of 64 bytes.
inline std::string npy_header(const Dims& extents) {
  // A Python tuple: "()", "(3,)", "(2, 3)".
  std::string shape = "(";
  for (int d = 0; d < extents.size(); ++d) shape += (d > 0 ? ", " : "") + std::to_string(extents[d]);
  shape += extents.size() == 1 ? ",)" : ")";
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
  const std::size_t unpadded = 10 + dict.size() + 1;
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict += '\n';
  std::string out = "\x93NUMPY";
  out += char(1);
  out += char(0);
  out += char(dict.size() & 0xff);
  out += char((dict.size() >> 8) & 0xff);
  return out + dict;
}

/// Writes a host float view (any rank, any strides) as a C-order float32 `.npy` file.
inline void save_npy(const std::string& path, ConstView<float> values) {
  require<ShapeError>(values.device().kind == DeviceKind::host, "save_npy: values must be on the host, got ", values);
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) throw IoError(froster::detail::concat("cannot write '", tmp, "': ", std::strerror(errno)));
  const std::string header = npy_header(values.extents());
  bool ok = std::fwrite(header.data(), 1, header.size(), f) == header.size();
  // Walk every index in C order (little-endian hosts only: x86-64 and aarch64).
  const int rank = values.rank();
  Dims index = values.extents();
  for (int d = 0; d < rank; ++d) index[d] = 0;
  for (index_t n = 0; ok && n < values.numel(); ++n) {
    index_t offset = 0;
    for (int d = 0; d < rank; ++d) offset += index[d] * values.stride(d);
    ok = std::fwrite(values.data() + offset, sizeof(float), 1, f) == 1;
    for (int d = rank - 1; d >= 0; --d) {
      if (++index[d] < values.extent(d)) break;
      index[d] = 0;
    }
  }
  ok = (std::fclose(f) == 0) && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    throw IoError(froster::detail::concat("cannot write '", path, "': ", std::strerror(err)));
  }
}

}  // namespace froster::io
