#pragma once
/// @file
/// `gunzip_file`: the decompressed content of a gzip file (zlib), as Python's `gzip.open(path).read()` gives it:
/// concatenated members are joined, zero padding after the last member is ignored.

#include <zlib.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <limits>
#include <string>

#include "froster/core/error.hpp"
#include "froster/io/mapped_file.hpp"

namespace froster::io {

/// Decompresses the gzip file at `path`. Throws IoError when it cannot be read, FormatError (naming the file and
/// the compressed byte offset) when it is not gzip, is corrupt or truncated, or decompresses to more than
/// `max_bytes` (a guard against decompression bombs).
inline std::string gunzip_file(const std::string& path, std::size_t max_bytes = std::size_t{256} << 20) {
  MappedFile file(path);
  auto bytes = file.bytes();
  require<FormatError>(!bytes.empty(), "'", path, "' is empty, expected gzip data");

  z_stream zs;
  std::memset(&zs, 0, sizeof zs);
  // 16 + MAX_WBITS: gzip wrapper only.
  require<FormatError>(inflateInit2(&zs, 16 + MAX_WBITS) == Z_OK, "cannot initialise zlib for '", path, "'");
  struct End {
    z_stream* z;
    ~End() { inflateEnd(z); }
  } end{&zs};

  std::string out;
  std::size_t pos = 0;  // compressed bytes consumed
  char chunk[1 << 16];
  bool in_member = true;
  while (true) {
    if (!in_member) {
      // Another member may follow; Python ignores zero bytes after the last one.
      std::size_t k = pos;
      while (k < bytes.size() && bytes[k] == std::byte{0}) ++k;
      if (k == bytes.size()) break;
      require<FormatError>(inflateReset(&zs) == Z_OK, "cannot reset zlib for '", path, "'");
      in_member = true;
    }
    std::size_t avail = bytes.size() - pos;
    zs.next_in = const_cast<Bytef*>(reinterpret_cast<const Bytef*>(bytes.data() + pos));
    zs.avail_in = static_cast<uInt>(std::min<std::size_t>(avail, std::numeric_limits<uInt>::max()));
    zs.next_out = reinterpret_cast<Bytef*>(chunk);
    zs.avail_out = sizeof chunk;
    uInt before = zs.avail_in;
    int rc = inflate(&zs, Z_NO_FLUSH);
    pos += before - zs.avail_in;
    std::size_t produced = sizeof chunk - zs.avail_out;
    require<FormatError>(out.size() + produced <= max_bytes, "'", path, "' decompresses to more than ", max_bytes,
                         " bytes");
    out.append(chunk, produced);
    if (rc == Z_STREAM_END) {
      in_member = false;
      continue;
    }
    if (rc == Z_OK || (rc == Z_BUF_ERROR && produced > 0)) {
      require<FormatError>(pos < bytes.size() || produced > 0, "'", path,
                           "' is truncated: the gzip stream ends at byte ", pos, " before its end marker");
      continue;
    }
    if (rc == Z_BUF_ERROR) {
      throw FormatError(froster::detail::concat("'", path, "' is truncated: the gzip stream ends at byte ", pos,
                                       " before its end marker"));
    }
    std::string reason = zs.msg != nullptr ? std::string(zs.msg) : "zlib error " + std::to_string(rc);
    throw FormatError(froster::detail::concat("'", path, "' is not valid gzip data (near compressed byte ", pos, "): ", reason));
  }
  return out;
}

}  // namespace froster::io
