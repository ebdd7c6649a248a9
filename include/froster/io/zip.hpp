#pragma once
/// @file
/// `ZipArchive`: a minimal, validating reader of ZIP archives held in memory (a `MappedFile`'s bytes), enough for
/// the archives `torch.save` writes: STORED (uncompressed) entries, ZIP64 records and extra fields, any archive
/// comment. Compressed members (TorchScript archives deflate their code/) are listed but cannot be read: `at`
/// refuses them by name. Nothing is decompressed or copied; entries are spans into the caller's bytes, which must outlive the
/// archive. Every offset and size is checked against the buffer before use, so a hostile file gives a
/// `FormatError`, never an out-of-bounds read.

#include <zlib.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "froster/core/error.hpp"

namespace froster::io {

namespace zip_detail {

/// Little-endian unsigned integer of `N` bytes at `at`; the caller has checked the bounds.
template <class U>
U load_le(std::span<const std::byte> bytes, std::size_t at) {
  U v = 0;
  for (std::size_t i = 0; i < sizeof(U); ++i) v |= static_cast<U>(static_cast<U>(bytes[at + i]) << (8 * i));
  return v;
}

/// True when [offset, offset + length) lies inside a buffer of `size` bytes (no overflow).
inline bool in_bounds(std::uint64_t offset, std::uint64_t length, std::uint64_t size) {
  return offset <= size && length <= size - offset;
}

}  // namespace zip_detail

/// One member of a ZIP archive.
struct ZipEntry {
  std::string name;
  std::span<const std::byte> data;  ///< the bytes as stored (compressed ones when method != 0)
  std::uint32_t crc32 = 0;          ///< checksum from the central directory
  std::uint16_t method = 0;         ///< 0 = STORED; anything else is compressed (listed, but not readable)
  std::uint64_t local_offset = 0;   ///< where the entry's local header starts, for error messages
};


class ZipArchive {
 public:
  /// Parses the central directory of `bytes`. `label` (usually the path) names the archive in error messages.
  /// Throws FormatError when the bytes are not a ZIP archive, when a record is truncated or points outside the
  /// buffer, when an entry is compressed or encrypted, or when a name appears twice.
  ZipArchive(std::span<const std::byte> bytes, std::string label) : bytes_(bytes), label_(std::move(label)) {
    parse();
  }

  /// Entries in central-directory order.
  const std::vector<ZipEntry>& entries() const { return entries_; }
  std::size_t size() const { return entries_.size(); }

  /// The entry named `name`, or nullptr (compressed entries included: check `method`, or use `at`).
  const ZipEntry* find(std::string_view name) const {
    auto it = index_.find(std::string(name));
    return it == index_.end() ? nullptr : &entries_[it->second];
  }

  /// The STORED entry named `name`; throws FormatError naming the archive and the entry when it is absent or
  /// compressed.
  const ZipEntry& at(std::string_view name) const {
    const ZipEntry* e = find(name);
    if (e == nullptr) fail("has no entry '", name, "'");
    require_stored(*e);
    return *e;
  }

  /// Throws FormatError naming the entry unless it is STORED (uncompressed).
  void require_stored(const ZipEntry& e) const {
    if (e.method != 0)
      fail("entry '", e.name, "' is compressed (method ", e.method,
           "); only STORED entries can be read, as torch.save writes them");
  }

  /// Throws FormatError when the entry's bytes do not match its CRC-32 (a corrupted or altered file).
  void verify_crc(const ZipEntry& e) const {
    uLong crc = ::crc32(0L, Z_NULL, 0);
    std::span<const std::byte> rest = e.data;
    while (!rest.empty()) {  // zlib takes uInt lengths: feed large entries in chunks
      const std::size_t n = std::min<std::size_t>(rest.size(), std::size_t{1} << 30);
      crc = ::crc32(crc, reinterpret_cast<const Bytef*>(rest.data()), static_cast<uInt>(n));
      rest = rest.subspan(n);
    }
    if (static_cast<std::uint32_t>(crc) != e.crc32)
      fail("entry '", e.name, "' is corrupted: CRC-32 of its ", e.data.size(), " bytes is ",
           static_cast<std::uint32_t>(crc), ", the directory says ", e.crc32);
  }

  const std::string& label() const { return label_; }

 private:
  static constexpr std::uint32_t sig_local = 0x04034b50;
  static constexpr std::uint32_t sig_central = 0x02014b50;
  static constexpr std::uint32_t sig_eocd = 0x06054b50;
  static constexpr std::uint32_t sig_eocd64 = 0x06064b50;
  static constexpr std::uint32_t sig_locator64 = 0x07064b50;
  static constexpr std::size_t eocd_size = 22;
  static constexpr std::size_t locator64_size = 20;
  static constexpr std::size_t eocd64_size = 56;
  static constexpr std::size_t central_size = 46;
  static constexpr std::size_t local_size = 30;

  template <class... Parts>
  [[noreturn]] void fail(const Parts&... parts) const {
    throw FormatError(froster::detail::concat("zip archive '", label_, "' ", parts...));
  }

  template <class U>
  U u(std::uint64_t at) const {
    if (!zip_detail::in_bounds(at, sizeof(U), bytes_.size())) fail("is truncated: a record at byte ", at, " ends past the end");
    return zip_detail::load_le<U>(bytes_, static_cast<std::size_t>(at));
  }

  void parse() {
    const std::uint64_t size = bytes_.size();
    if (size < eocd_size) fail("is too short (", size, " bytes) to be a ZIP archive");
    // The end-of-central-directory record sits before a comment of at most 65535 bytes: search backwards.
    std::uint64_t eocd = 0;
    bool found = false;
    const std::uint64_t lowest = size - eocd_size > 0xFFFF ? size - eocd_size - 0xFFFF : 0;
    for (std::uint64_t at = size - eocd_size + 1; at-- > lowest;) {
      if (u<std::uint32_t>(at) == sig_eocd && at + eocd_size + u<std::uint16_t>(at + 20) == size) {
        eocd = at;
        found = true;
        break;
      }
    }
    if (!found) fail("has no end-of-central-directory record (not a ZIP archive, or truncated)");

    std::uint64_t count = u<std::uint16_t>(eocd + 10);
    std::uint64_t cd_size = u<std::uint32_t>(eocd + 12);
    std::uint64_t cd_offset = u<std::uint32_t>(eocd + 16);
    if (u<std::uint16_t>(eocd + 4) != 0 || u<std::uint16_t>(eocd + 6) != 0) fail("spans several disks (unsupported)");

    // ZIP64: a locator just before the record points at the 64-bit record, which then has the real values.
    if (eocd >= locator64_size && u<std::uint32_t>(eocd - locator64_size) == sig_locator64) {
      const std::uint64_t rec = u<std::uint64_t>(eocd - locator64_size + 8);
      if (!zip_detail::in_bounds(rec, eocd64_size, eocd - locator64_size))
        fail("has a ZIP64 locator pointing at byte ", rec, ", outside the file");
      if (u<std::uint32_t>(rec) != sig_eocd64) fail("has no ZIP64 end-of-central-directory record at byte ", rec);
      count = u<std::uint64_t>(rec + 32);
      cd_size = u<std::uint64_t>(rec + 40);
      cd_offset = u<std::uint64_t>(rec + 48);
    }
    if (!zip_detail::in_bounds(cd_offset, cd_size, size))
      fail("has a central directory (", cd_size, " bytes at byte ", cd_offset, ") outside the file of ", size,
           " bytes");
    if (count > cd_size / central_size)
      fail("claims ", count, " entries in a central directory of only ", cd_size, " bytes");

    entries_.reserve(static_cast<std::size_t>(count));
    std::uint64_t at = cd_offset;
    const std::uint64_t cd_end = cd_offset + cd_size;
    for (std::uint64_t i = 0; i < count; ++i) {
      if (!zip_detail::in_bounds(at, central_size, cd_end)) fail("central directory entry ", i, " is truncated");
      if (u<std::uint32_t>(at) != sig_central) fail("central directory entry ", i, " at byte ", at, " has a bad signature");
      const std::uint16_t flags = u<std::uint16_t>(at + 8);
      const std::uint16_t method = u<std::uint16_t>(at + 10);
      const std::uint32_t crc = u<std::uint32_t>(at + 16);
      std::uint64_t csize = u<std::uint32_t>(at + 20);
      std::uint64_t usize = u<std::uint32_t>(at + 24);
      const std::uint64_t name_len = u<std::uint16_t>(at + 28);
      const std::uint64_t extra_len = u<std::uint16_t>(at + 30);
      const std::uint64_t comment_len = u<std::uint16_t>(at + 32);
      std::uint64_t local = u<std::uint32_t>(at + 42);
      const std::uint64_t var_len = name_len + extra_len + comment_len;
      if (!zip_detail::in_bounds(at + central_size, var_len, cd_end))
        fail("central directory entry ", i, " has name/extra/comment fields running past the directory");
      std::string name(reinterpret_cast<const char*>(bytes_.data() + at + central_size), name_len);

      // ZIP64 extra field: 64-bit values for exactly the fields whose 32-bit slot is all ones, in this order.
      std::uint64_t x = at + central_size + name_len;
      const std::uint64_t x_end = x + extra_len;
      while (x + 4 <= x_end) {
        const std::uint16_t id = u<std::uint16_t>(x);
        const std::uint64_t len = u<std::uint16_t>(x + 2);
        if (x + 4 + len > x_end) fail("entry '", name, "' has an extra field running past its end");
        if (id == 0x0001) {
          std::uint64_t p = x + 4;
          auto take = [&](std::uint64_t& field) {
            if (field != 0xFFFFFFFFu) return;
            if (p + 8 > x + 4 + len) fail("entry '", name, "' has a ZIP64 extra field too short for its sizes");
            field = u<std::uint64_t>(p);
            p += 8;
          };
          take(usize);
          take(csize);
          take(local);
        }
        x += 4 + len;
      }

      if ((flags & 0x1) != 0) fail("entry '", name, "' is encrypted (unsupported)");
      if (method == 0 && csize != usize)
        fail("entry '", name, "' is STORED but its sizes differ (", csize, " stored, ", usize, " uncompressed)");

      // The data follows the local header, whose name and extra lengths may differ from the central copy
      // (torch pads the local extra field to align tensor data).
      if (!zip_detail::in_bounds(local, local_size, size)) fail("entry '", name, "' has its local header outside the file");
      if (u<std::uint32_t>(local) != sig_local) fail("entry '", name, "' has a bad local header signature at byte ", local);
      const std::uint64_t local_name_len = u<std::uint16_t>(local + 26);
      const std::uint64_t local_extra_len = u<std::uint16_t>(local + 28);
      const std::uint64_t data_at = local + local_size + local_name_len + local_extra_len;
      if (local_name_len != name_len ||
          !zip_detail::in_bounds(local + local_size, local_name_len, size) ||
          std::string_view(reinterpret_cast<const char*>(bytes_.data() + local + local_size), local_name_len) != name)
        fail("entry '", name, "' has a local header (byte ", local, ") whose name differs from the directory's");
      if (!zip_detail::in_bounds(data_at, csize, size))
        fail("entry '", name, "' (", csize, " bytes at byte ", data_at, ") runs past the end of the file (", size,
             " bytes): truncated?");

      if (!index_.emplace(name, entries_.size()).second) fail("holds two entries named '", name, "'");
      entries_.push_back(ZipEntry{std::move(name),
                                  bytes_.subspan(static_cast<std::size_t>(data_at), static_cast<std::size_t>(csize)),
                                  crc, method, local});
      at += central_size + var_len;
    }
  }

  std::span<const std::byte> bytes_;
  std::string label_;
  std::vector<ZipEntry> entries_;
  std::map<std::string, std::size_t> index_;
};

/// Writes a ZIP archive of STORED (uncompressed) entries with CRC-32s, the layout torch.save produces; used by
/// tests and the fuzz harness to wrap bytes into archives. `zip64` writes ZIP64 extra fields and end records even
/// for small archives (as torch does for large ones).
inline std::vector<std::byte> write_stored_zip(
    const std::vector<std::pair<std::string, std::span<const std::byte>>>& entries, bool zip64 = false) {
  std::vector<std::byte> out;
  auto put = [&out](std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xFF));
  };
  auto put_bytes = [&out](const void* p, std::size_t n) {
    const auto* b = static_cast<const std::byte*>(p);
    out.insert(out.end(), b, b + n);
  };
  const std::uint64_t ones32 = 0xFFFFFFFFu;
  std::vector<std::uint64_t> offsets;
  std::vector<std::uint32_t> crcs;
  for (const auto& [name, data] : entries) {
    uLong crc = ::crc32(0L, Z_NULL, 0);
    if (!data.empty()) crc = ::crc32(crc, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size()));
    crcs.push_back(static_cast<std::uint32_t>(crc));
    offsets.push_back(out.size());
    put(0x04034b50, 4);
    put(zip64 ? 45 : 20, 2);
    put(0, 2);  // flags
    put(0, 2);  // STORED
    put(0, 4);  // time, date
    put(crcs.back(), 4);
    put(zip64 ? ones32 : data.size(), 4);
    put(zip64 ? ones32 : data.size(), 4);
    put(name.size(), 2);
    put(zip64 ? 20 : 0, 2);
    put_bytes(name.data(), name.size());
    if (zip64) {
      put(0x0001, 2);
      put(16, 2);
      put(data.size(), 8);
      put(data.size(), 8);
    }
    if (!data.empty()) put_bytes(data.data(), data.size());
  }
  const std::uint64_t cd_offset = out.size();
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const auto& [name, data] = entries[i];
    put(0x02014b50, 4);
    put(zip64 ? 45 : 20, 2);
    put(zip64 ? 45 : 20, 2);
    put(0, 2);
    put(0, 2);
    put(0, 4);
    put(crcs[i], 4);
    put(zip64 ? ones32 : data.size(), 4);
    put(zip64 ? ones32 : data.size(), 4);
    put(name.size(), 2);
    put(zip64 ? 28 : 0, 2);
    put(0, 2);  // comment
    put(0, 2);  // disk
    put(0, 2);  // internal attributes
    put(0, 4);  // external attributes
    put(zip64 ? ones32 : offsets[i], 4);
    put_bytes(name.data(), name.size());
    if (zip64) {
      put(0x0001, 2);
      put(24, 2);
      put(data.size(), 8);
      put(data.size(), 8);
      put(offsets[i], 8);
    }
  }
  const std::uint64_t cd_size = out.size() - cd_offset;
  if (zip64) {
    const std::uint64_t rec = out.size();
    put(0x06064b50, 4);
    put(44, 8);
    put(45, 2);
    put(45, 2);
    put(0, 4);
    put(0, 4);
    put(entries.size(), 8);
    put(entries.size(), 8);
    put(cd_size, 8);
    put(cd_offset, 8);
    put(0x07064b50, 4);
    put(0, 4);
    put(rec, 8);
    put(1, 4);
  }
  put(0x06054b50, 4);
  put(0, 2);
  put(0, 2);
  put(zip64 ? 0xFFFF : entries.size(), 2);
  put(zip64 ? 0xFFFF : entries.size(), 2);
  put(zip64 ? ones32 : cd_size, 4);
  put(zip64 ? ones32 : cd_offset, 4);
  put(0, 2);
  return out;
}

}  // namespace froster::io
