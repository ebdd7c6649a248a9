#pragma once
/// @file
/// Reading and writing safetensors files (https://github.com/huggingface/safetensors), the format of Hugging Face
/// checkpoints. Layout: an 8-byte little-endian header length N, N bytes of JSON header, then the data region.
/// The header maps tensor names to `{"dtype", "shape", "data_offsets": [begin, end]}` (offsets relative to the data
/// region) and may hold `"__metadata__"`, a string -> string map.
///
/// Reading follows the reference (Rust) implementation's rules and checks everything before touching tensor data:
/// header length within the file and at most 100 MB, the header a JSON object starting with `{`, each entry
/// well-typed, `end - begin == numel * dtype size`, and the tensors, sorted by offset, tiling the data region
/// exactly (no overlap, no hole, no trailing bytes). Duplicate keys, which the reference silently collapses, are an
/// error here. Every value is converted to fp32: F32/F16/BF16 exactly, F64 rounded to nearest; integer and bool
/// tensors only when every value is exactly representable (CLIP checkpoints hold an int64 `position_ids`).
///
/// Writing produces what the Python `safetensors` package writes for the same dict: tensors sorted by name, compact
/// JSON with `__metadata__` first, header padded with spaces to a multiple of 8.

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <numeric>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "froster/core/error.hpp"
#include "froster/core/tensor.hpp"
#include "froster/io/float16.hpp"
#include "froster/io/mapped_file.hpp"
#include "froster/io/state_dict.hpp"

namespace froster::io {

static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian host");

struct SafetensorsOptions {
  /// Largest JSON header accepted, in bytes (the reference implementation's limit).
  std::uint64_t max_header_bytes = 100'000'000;
};

/// One tensor entry of a validated header.
struct SafetensorsTensorInfo {
  std::string name;
  std::string dtype;            ///< As written: "F32", "BF16", "I64", ...
  std::vector<index_t> shape;   ///< Empty for a 0-d scalar.
  std::uint64_t begin = 0;      ///< Byte offsets into the data region.
  std::uint64_t end = 0;
};

/// A validated header: tensors in data-offset order (ties between empty tensors in header order).
struct SafetensorsHeader {
  std::vector<SafetensorsTensorInfo> tensors;
  std::map<std::string, std::string> metadata;  ///< `__metadata__`; empty when absent.
  std::uint64_t data_begin = 0;                 ///< File offset of the data region (8 + header length).
};

/// A loaded file: the fp32 tensors (in data-offset order, each with the StoredType it had on disk) and the
/// `__metadata__` map. A 0-d tensor is a rank-0 `Tensor` holding one value at `data()[0]`.
struct SafetensorsFile {
  StateDict tensors;
  std::map<std::string, std::string> metadata;
};

/// Element type written by `save_safetensors`.
enum class SaveType { f32, f16, bf16 };

namespace safetensors_detail {

/// Element size of the dtypes froster converts, 0 for any other dtype string.
inline std::size_t dtype_size(std::string_view dtype, StoredType* stored = nullptr) {
  struct Known {
    std::string_view name;
    StoredType type;
    std::size_t size;
  };
  static constexpr Known known[] = {
      {"F32", StoredType::f32, 4}, {"F16", StoredType::f16, 2}, {"BF16", StoredType::bf16, 2},
      {"F64", StoredType::f64, 8}, {"I64", StoredType::i64, 8}, {"I32", StoredType::i32, 4},
      {"I16", StoredType::i16, 2}, {"I8", StoredType::i8, 1},   {"U8", StoredType::u8, 1},
      {"BOOL", StoredType::boolean, 1}};
  for (const Known& k : known)
    if (k.name == dtype) {
      if (stored != nullptr) *stored = k.type;
      return k.size;
    }
  return 0;
}

template <class... Parts>
[[noreturn]] void fail(std::string_view file, const Parts&... parts) {
  throw FormatError(froster::detail::concat("safetensors '", file, "': ", parts...));
}

inline std::string shape_string(const std::vector<index_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

/// SAX handler for the header: builds the entries directly (no DOM), so memory stays proportional to the number of
/// tensors, arrays are capped at `max_rank` numbers and nesting at a small depth, and duplicate keys are caught.
class HeaderSax {
 public:
  using json = nlohmann::json;

  explicit HeaderSax(std::string_view file) : file_(file) {}

  std::vector<SafetensorsTensorInfo> tensors;
  std::map<std::string, std::string> metadata;

  bool null() { return scalar("null"); }
  bool boolean(bool) { return scalar("a boolean"); }
  bool number_integer(json::number_integer_t v) {
    if (in_number_array()) fail(file_, where(), " holds the negative number ", v);
    return scalar("a number");
  }
  bool number_unsigned(json::number_unsigned_t v) {
    if (in_number_array()) {
      add_number(v);
      return true;
    }
    return scalar("a number");
  }
  bool number_float(json::number_float_t, const json::string_t& text) {
    if (in_number_array()) fail(file_, where(), " holds ", text, ", not an integer in [0, 2^64)");
    return scalar("a number");
  }
  bool string(json::string_t& s) {
    if (skip_depth_ > 0) return true;
    if (depth_ == 2 && in_metadata_) {
      metadata.emplace(key_, std::move(s));
      return true;
    }
    if (depth_ == 2 && field_ == Field::dtype) {
      current_.dtype = std::move(s);
      return true;
    }
    return scalar("a string");
  }
  bool binary(json::binary_t&) { return scalar("binary data"); }

  bool start_object(std::size_t) { return open(true); }
  bool start_array(std::size_t) { return open(false); }

  bool key(json::string_t& k) {
    if (skip_depth_ > 0) return true;
    if (depth_ == 1) {
      if (!names_.insert(k).second) fail(file_, "the header names '", k, "' twice");
      in_metadata_ = (k == "__metadata__");
      field_ = Field::other;
      offsets_count_ = 0;
      current_ = SafetensorsTensorInfo{};
      current_.name = std::move(k);
      seen_ = 0;
      return true;
    }
    // depth 2: a field of a tensor entry or a metadata key.
    if (in_metadata_) {
      if (metadata.count(k) != 0) fail(file_, "__metadata__ names '", k, "' twice");
      key_ = std::move(k);
      return true;
    }
    field_ = k == "dtype" ? Field::dtype : k == "shape" ? Field::shape : k == "data_offsets" ? Field::offsets
                                                                                             : Field::other;
    if (field_ != Field::other) {
      const unsigned bit = 1u << static_cast<unsigned>(field_);
      if ((seen_ & bit) != 0) fail(file_, "tensor '", current_.name, "' has two '", k, "' fields");
      seen_ |= bit;
    }
    return true;
  }

  bool end_object() {
    if (skip_depth_ > 0) return close();
    if (depth_ == 2 && !in_metadata_) {
      if ((seen_ & 1u) == 0) fail(file_, "tensor '", current_.name, "' has no 'dtype'");
      if ((seen_ & 2u) == 0) fail(file_, "tensor '", current_.name, "' has no 'shape'");
      if ((seen_ & 4u) == 0) fail(file_, "tensor '", current_.name, "' has no 'data_offsets'");
      if (offsets_count_ != 2)
        fail(file_, "tensor '", current_.name, "': 'data_offsets' should hold 2 numbers, found ", offsets_count_);
      tensors.push_back(std::move(current_));
    }
    return close();
  }
  bool end_array() {
    if (skip_depth_ == 0 && depth_ == 3 && field_ == Field::offsets && offsets_count_ != 2)
      fail(file_, "tensor '", current_.name, "': 'data_offsets' should hold 2 numbers, found ", offsets_count_);
    return close();
  }

  bool parse_error(std::size_t position, const std::string&, const nlohmann::json::exception& e) {
    fail(file_, "the header is not valid JSON (near byte ", position + 7, " of the file): ", e.what());
  }

 private:
  enum class Field { dtype = 0, shape = 1, offsets = 2, other = 3 };
  static constexpr int max_skip_depth = 32;  // nesting allowed inside unknown fields

  bool in_number_array() const {
    return skip_depth_ == 0 && depth_ == 3 && (field_ == Field::shape || field_ == Field::offsets);
  }

  std::string where() const {
    return froster::detail::concat("tensor '", current_.name, "': '",
                                   field_ == Field::shape ? "shape" : "data_offsets", "'");
  }

  void add_number(std::uint64_t v) {
    if (field_ == Field::shape) {
      if (current_.shape.size() >= static_cast<std::size_t>(max_rank))
        fail(file_, "tensor '", current_.name, "' has more than ", max_rank, " dimensions");
      if (v > static_cast<std::uint64_t>(std::numeric_limits<index_t>::max()))
        fail(file_, "tensor '", current_.name, "' has the extent ", v, ", beyond 2^63 - 1");
      current_.shape.push_back(static_cast<index_t>(v));
    } else {
      if (offsets_count_ >= 2) fail(file_, "tensor '", current_.name, "': 'data_offsets' holds more than 2 numbers");
      (offsets_count_ == 0 ? current_.begin : current_.end) = v;
      ++offsets_count_;
    }
  }

  /// A scalar value where it is not expected: fine inside an unknown field, an error elsewhere.
  bool scalar(const char* what) {
    if (skip_depth_ > 0) return true;
    if (depth_ == 2 && field_ == Field::other && !in_metadata_) return true;
    unexpected(what);
  }

  bool open(bool object) {
    const char* what = object ? "an object" : "an array";
    if (skip_depth_ > 0) {
      if (++skip_depth_ > max_skip_depth) fail(file_, "the header nests deeper than ", max_skip_depth, " levels");
      ++depth_;
      return true;
    }
    if (depth_ == 0 && !object) unexpected(what);
    if (depth_ == 1 && !object) unexpected(what);
    if (depth_ >= 3) unexpected(what);
    if (depth_ == 2) {
      if (in_metadata_) unexpected(what);
      if (field_ == Field::other) {
        skip_depth_ = 1;
      } else if (object || field_ == Field::dtype) {
        unexpected(what);
      }
    }
    ++depth_;
    return true;
  }

  bool close() {
    if (skip_depth_ > 0) --skip_depth_;
    --depth_;
    return true;
  }

  [[noreturn]] void unexpected(const char* what) const {
    if (depth_ == 0) fail(file_, "the header should be a JSON object, found ", what);
    if (depth_ == 1) fail(file_, "header entry '", current_.name, "' should be an object, found ", what);
    if (in_metadata_) fail(file_, "__metadata__ value of '", key_, "' should be a string, found ", what);
    if (depth_ == 2) {
      const char* expected = field_ == Field::dtype ? "a string" : "an array of non-negative integers";
      const char* name = field_ == Field::dtype ? "dtype" : field_ == Field::shape ? "shape" : "data_offsets";
      fail(file_, "tensor '", current_.name, "': '", name, "' should be ", expected, ", found ", what);
    }
    fail(file_, where(), " should hold non-negative integers, found ", what);
  }

  std::string_view file_;
  int depth_ = 0;
  int skip_depth_ = 0;
  bool in_metadata_ = false;
  Field field_ = Field::other;
  unsigned seen_ = 0;
  int offsets_count_ = 0;
  std::string key_;
  SafetensorsTensorInfo current_;
  std::unordered_set<std::string> names_;
};

template <class U>
U load(const std::byte* p) {
  U v;
  std::memcpy(&v, p, sizeof(U));
  return v;
}

}  // namespace safetensors_detail

/// Reads and validates the header of a safetensors file held in `bytes`, without reading tensor data.
/// Throws FormatError (naming `name_for_errors`, and the tensor where there is one) on any violation of the format,
/// an unknown dtype included.
inline SafetensorsHeader parse_safetensors_header(std::span<const std::byte> bytes, std::string_view name_for_errors,
                                                  const SafetensorsOptions& options = {}) {
  using safetensors_detail::fail;
  const std::string_view file = name_for_errors;
  if (bytes.size() < 8)
    fail(file, "the file is ", bytes.size(), " bytes long, shorter than the 8-byte header length");
  const auto n = safetensors_detail::load<std::uint64_t>(bytes.data());
  if (n > options.max_header_bytes)
    fail(file, "the header length is ", n, " bytes, more than the limit of ", options.max_header_bytes);
  if (n > bytes.size() - 8)
    fail(file, "the header length is ", n, " bytes but only ", bytes.size() - 8,
         " bytes follow the length field (truncated file?)");
  const auto* header = reinterpret_cast<const char*>(bytes.data() + 8);
  if (n == 0 || header[0] != '{')
    fail(file, "the header should start with '{' at byte 8, found ",
         n == 0 ? std::string("an empty header") : "byte " + std::to_string(static_cast<unsigned char>(header[0])));

  safetensors_detail::HeaderSax sax(file);
  try {
    nlohmann::json::sax_parse(header, header + n, &sax);
  } catch (const nlohmann::json::exception& e) {  // syntax errors arrive through HeaderSax::parse_error already
    fail(file, "the header is not valid JSON: ", e.what());
  }

  SafetensorsHeader out;
  out.metadata = std::move(sax.metadata);
  out.data_begin = 8 + n;
  const std::uint64_t data_size = bytes.size() - 8 - n;
  for (const SafetensorsTensorInfo& t : sax.tensors) {
    const std::size_t es = safetensors_detail::dtype_size(t.dtype);
    if (es == 0)
      fail(file, "tensor '", t.name, "' has dtype '", t.dtype,
           "', which froster does not read (F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL)");
    std::uint64_t bytes_needed = es;
    for (index_t e : t.shape)
      if (__builtin_mul_overflow(bytes_needed, static_cast<std::uint64_t>(e), &bytes_needed))
        fail(file, "tensor '", t.name, "' has shape ", safetensors_detail::shape_string(t.shape),
             " whose size overflows 64 bits");
    // Tensor<float>::host refuses extents whose running product overflows before a zero extent makes it empty.
    index_t elements = 1;
    for (index_t e : t.shape) {
      if (e != 0 && elements > std::numeric_limits<index_t>::max() / index_t(sizeof(float)) / e)
        fail(file, "tensor '", t.name, "' has shape ", safetensors_detail::shape_string(t.shape),
             ", more elements than memory can address");
      elements *= e;
    }
    if (t.begin > t.end)
      fail(file, "tensor '", t.name, "' has data_offsets [", t.begin, ", ", t.end, "] with begin after end");
    if (t.end > data_size)
      fail(file, "tensor '", t.name, "' has data_offsets [", t.begin, ", ", t.end, "] beyond the data region of ",
           data_size, " bytes (truncated file?)");
    if (t.end - t.begin != bytes_needed)
      fail(file, "tensor '", t.name, "' has data_offsets [", t.begin, ", ", t.end, "] holding ", t.end - t.begin,
           " bytes, but shape ", safetensors_detail::shape_string(t.shape), " of ", t.dtype, " needs ",
           bytes_needed);
  }
  // Sorted by offsets, the tensors must tile the data region exactly, as the reference requires.
  std::vector<std::size_t> order(sax.tensors.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const auto& x = sax.tensors[a];
    const auto& y = sax.tensors[b];
    return x.begin != y.begin ? x.begin < y.begin : x.end < y.end;
  });
  std::uint64_t covered = 0;
  const SafetensorsTensorInfo* previous = nullptr;
  for (std::size_t i : order) {
    const SafetensorsTensorInfo& t = sax.tensors[i];
    if (t.begin < covered)
      fail(file, "tensor '", t.name, "' (data_offsets [", t.begin, ", ", t.end, "]) overlaps tensor '",
           previous->name, "' (data_offsets [", previous->begin, ", ", previous->end, "])");
    if (t.begin > covered)
      fail(file, "the data region has a hole: bytes [", covered, ", ", t.begin, ") belong to no tensor (before '",
           t.name, "')");
    covered = t.end;
    previous = &t;
  }
  if (covered != data_size)
    fail(file, "the data region has ", data_size - covered, " bytes after the last tensor (bytes [", covered, ", ",
         data_size, ") belong to no tensor)");
  out.tensors.reserve(order.size());
  for (std::size_t i : order) out.tensors.push_back(std::move(sax.tensors[i]));
  return out;
}

/// Parses a whole safetensors file held in `bytes`: validates the header (see parse_safetensors_header), then
/// converts every tensor to fp32. Throws FormatError naming `name_for_errors` and the tensor on a malformed file or
/// a value fp32 cannot hold exactly (integer tensors) or at all (F64 beyond the float range).
inline SafetensorsFile parse_safetensors(std::span<const std::byte> bytes, std::string_view name_for_errors,
                                         const SafetensorsOptions& options = {}) {
  using safetensors_detail::fail;
  using safetensors_detail::load;
  SafetensorsHeader header = parse_safetensors_header(bytes, name_for_errors, options);
  SafetensorsFile out;
  out.metadata = std::move(header.metadata);
  const std::byte* data = bytes.data() + header.data_begin;
  for (SafetensorsTensorInfo& t : header.tensors) {
    StoredType stored = StoredType::f32;
    const std::size_t es = safetensors_detail::dtype_size(t.dtype, &stored);
    const std::size_t numel = static_cast<std::size_t>((t.end - t.begin) / es);
    Tensor<float> tensor = Tensor<float>::host(Dims(std::span<const index_t>(t.shape)));
    float* dst = tensor.data();
    const std::byte* src = data + t.begin;
    auto inexact = [&](auto v) {
      fail(name_for_errors, "tensor '", t.name, "' (", t.dtype, ") holds ", v,
           ", which float32 cannot represent exactly");
    };
    switch (stored) {
      case StoredType::f32:
        if (numel > 0) std::memcpy(dst, src, numel * 4);
        break;
      case StoredType::f16:
        for (std::size_t i = 0; i < numel; ++i) dst[i] = half_to_float(load<std::uint16_t>(src + 2 * i));
        break;
      case StoredType::bf16:
        for (std::size_t i = 0; i < numel; ++i) dst[i] = bf16_to_float(load<std::uint16_t>(src + 2 * i));
        break;
      case StoredType::f64:
        for (std::size_t i = 0; i < numel; ++i) {
          const auto v = load<double>(src + 8 * i);
          // Converting a finite double beyond the float range is undefined behaviour; refuse it.
          if (std::isfinite(v) && std::fabs(v) > static_cast<double>(std::numeric_limits<float>::max()))
            fail(name_for_errors, "tensor '", t.name, "' (F64) holds ", v, " at element ", i,
                 ", beyond the float32 range");
          dst[i] = static_cast<float>(v);
        }
        break;
      case StoredType::i64:
        for (std::size_t i = 0; i < numel; ++i) {
          const auto v = load<std::int64_t>(src + 8 * i);
          const auto f = static_cast<float>(v);
          if (!(f >= -0x1p63f && f < 0x1p63f) || static_cast<std::int64_t>(f) != v) inexact(v);
          dst[i] = f;
        }
        break;
      case StoredType::i32:
        for (std::size_t i = 0; i < numel; ++i) {
          const auto v = load<std::int32_t>(src + 4 * i);
          const auto f = static_cast<float>(v);
          if (static_cast<std::int64_t>(f) != v) inexact(v);
          dst[i] = f;
        }
        break;
      case StoredType::i16:
        for (std::size_t i = 0; i < numel; ++i) dst[i] = static_cast<float>(load<std::int16_t>(src + 2 * i));
        break;
      case StoredType::i8:
        for (std::size_t i = 0; i < numel; ++i) dst[i] = static_cast<float>(load<std::int8_t>(src + i));
        break;
      case StoredType::u8:
        for (std::size_t i = 0; i < numel; ++i) dst[i] = static_cast<float>(load<std::uint8_t>(src + i));
        break;
      case StoredType::boolean:
        for (std::size_t i = 0; i < numel; ++i) {
          const auto v = load<std::uint8_t>(src + i);
          if (v > 1)
            fail(name_for_errors, "tensor '", t.name, "' (BOOL) holds the byte ", unsigned(v), " at element ", i,
                 "; a bool is 0 or 1");
          dst[i] = static_cast<float>(v);
        }
        break;
    }
    out.tensors.insert(std::move(t.name), std::move(tensor), stored);
  }
  return out;
}

/// Loads a safetensors file through a memory map. Throws IoError when the file cannot be opened or mapped, and
/// FormatError as parse_safetensors does.
inline SafetensorsFile load_safetensors(const std::string& path, const SafetensorsOptions& options = {}) {
  const MappedFile file(path);
  return parse_safetensors(file.bytes(), path, options);
}

namespace safetensors_detail {

/// Number of values a state dict tensor holds: a rank-0 tensor with storage is a scalar (one value).
inline std::size_t value_count(const StateDict::Entry& e) {
  require<ValueError>(e.tensor.allocated(), "save_safetensors: tensor '", e.name, "' has no storage");
  require<ValueError>(e.tensor.device().is_host(), "save_safetensors: tensor '", e.name,
                      "' is not on the host");
  return static_cast<std::size_t>(e.tensor.extents().product());
}

/// JSON string literal, as serde_json writes it (UTF-8 kept, control characters escaped).
inline std::string json_string(const std::string& s, std::string_view what) {
  try {
    return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
  } catch (const nlohmann::json::exception&) {
    throw ValueError(froster::detail::concat("save_safetensors: ", what, " is not valid UTF-8"));
  }
}

inline const char* save_type_name(SaveType t) {
  return t == SaveType::f32 ? "F32" : t == SaveType::f16 ? "F16" : "BF16";
}

inline std::size_t save_type_size(SaveType t) { return t == SaveType::f32 ? 4 : 2; }

/// Entries sorted by name: the Python package sorts by dtype (one dtype here), then by name.
inline std::vector<const StateDict::Entry*> sorted_entries(const StateDict& dict) {
  std::vector<const StateDict::Entry*> sorted;
  sorted.reserve(dict.size());
  for (const StateDict::Entry& e : dict) sorted.push_back(&e);
  std::sort(sorted.begin(), sorted.end(), [](const auto* a, const auto* b) { return a->name < b->name; });
  return sorted;
}

/// The JSON header, byte for byte as serde_json writes it for the Python package, padded with spaces to a
/// multiple of 8 (so the data region starts aligned).
inline std::string make_header(const std::vector<const StateDict::Entry*>& sorted,
                               const std::map<std::string, std::string>& metadata, SaveType type) {
  std::string h = "{";
  if (!metadata.empty()) {
    h += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : metadata) {
      if (!first) h += ',';
      first = false;
      h += json_string(k, "metadata key '" + k + "'") + ':' + json_string(v, "metadata value of '" + k + "'");
    }
    h += '}';
  }
  std::uint64_t offset = 0;
  for (const StateDict::Entry* e : sorted) {
    require<ValueError>(e->name != "__metadata__", "save_safetensors: a tensor cannot be named '__metadata__'");
    const std::uint64_t bytes = value_count(*e) * save_type_size(type);
    if (h.size() > 1) h += ',';
    h += json_string(e->name, "tensor name '" + e->name + "'");
    h += ":{\"dtype\":\"";
    h += save_type_name(type);
    h += "\",\"shape\":[";
    for (int d = 0; d < e->tensor.rank(); ++d) {  // appended piece by piece: GCC 12 misreports "a" + b (bug 105329)
      if (d > 0) h += ',';
      h += std::to_string(e->tensor.extent(d));
    }
    h += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + bytes) + "]}";
    offset += bytes;
  }
  h += '}';
  h.append((8 - h.size() % 8) % 8, ' ');
  return h;
}

/// Converts `count` values of `e` from element `first` into `out` (little-endian bytes of `type`); throws
/// ValueError when a finite value overflows F16/BF16 (saving it as infinity would silently break the model).
inline void encode(const StateDict::Entry& e, std::size_t first, std::size_t count, SaveType type, std::byte* out) {
  const float* src = e.tensor.data() + first;
  if (type == SaveType::f32) {
    if (count > 0) std::memcpy(out, src, count * 4);
    return;
  }
  const std::uint16_t infinity = type == SaveType::f16 ? 0x7c00u : 0x7f80u;
  for (std::size_t i = 0; i < count; ++i) {
    const std::uint16_t v = type == SaveType::f16 ? float_to_half(src[i]) : float_to_bf16(src[i]);
    if ((v & 0x7fffu) == infinity && std::isfinite(src[i]))
      throw ValueError(froster::detail::concat("save_safetensors: tensor '", e.name, "' holds ", src[i],
                                               " at element ", first + i, ", too large for ", save_type_name(type)));
    std::memcpy(out + 2 * i, &v, 2);
  }
}

}  // namespace safetensors_detail

/// The bytes of a safetensors file holding `dict` (see save_safetensors); for small dicts and tests.
/// Throws ValueError on a tensor that cannot be saved (no storage, not on the host, a name or metadata that is not
/// UTF-8, a tensor named `__metadata__`, a finite value too large for F16/BF16).
inline std::vector<std::byte> serialize_safetensors(const StateDict& dict,
                                                    const std::map<std::string, std::string>& metadata = {},
                                                    SaveType type = SaveType::f32) {
  const auto sorted = safetensors_detail::sorted_entries(dict);
  const std::string header = safetensors_detail::make_header(sorted, metadata, type);
  const std::size_t es = safetensors_detail::save_type_size(type);
  std::size_t total = 8 + header.size();
  for (const auto* e : sorted) total += safetensors_detail::value_count(*e) * es;
  std::vector<std::byte> out(total);
  const std::uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  std::memcpy(out.data() + 8, header.data(), header.size());
  std::size_t at = 8 + header.size();
  for (const auto* e : sorted) {
    const std::size_t count = safetensors_detail::value_count(*e);
    safetensors_detail::encode(*e, 0, count, type, out.data() + at);
    at += count * es;
  }
  return out;
}

/// Writes `dict` as a safetensors file that the Python `safetensors` package (and froster) load: tensors sorted by
/// name, stored as `type` (F32 by default; F16/BF16 round to nearest even), `metadata` as `__metadata__` (omitted
/// when empty). The file is written to `path + ".tmp"` and renamed over `path`, so a failed save leaves no half
/// file. Throws ValueError as serialize_safetensors does (the header is checked before anything is written) and
/// IoError when writing fails.
inline void save_safetensors(const std::string& path, const StateDict& dict,
                             const std::map<std::string, std::string>& metadata = {},
                             SaveType type = SaveType::f32) {
  const auto sorted = safetensors_detail::sorted_entries(dict);
  const std::string header = safetensors_detail::make_header(sorted, metadata, type);
  const std::size_t es = safetensors_detail::save_type_size(type);
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) throw IoError(froster::detail::concat("cannot write '", tmp, "': ", std::strerror(errno)));
  int err = 0;
  auto put = [&](const void* p, std::size_t size, std::size_t count) {
    if (err == 0 && count > 0 && std::fwrite(p, size, count, f) != count) err = errno != 0 ? errno : EIO;
  };
  const std::uint64_t n = header.size();
  put(&n, 8, 1);
  put(header.data(), 1, header.size());
  try {
    std::vector<std::byte> buffer;
    constexpr std::size_t chunk = std::size_t{1} << 16;
    for (const auto* e : sorted) {
      const std::size_t count = safetensors_detail::value_count(*e);
      if (type == SaveType::f32) {  // no conversion: write straight from the tensor
        put(e->tensor.data(), 4, count);
        continue;
      }
      buffer.resize(chunk * es);
      for (std::size_t first = 0; err == 0 && first < count; first += chunk) {
        const std::size_t m = std::min(chunk, count - first);
        safetensors_detail::encode(*e, first, m, type, buffer.data());
        put(buffer.data(), es, m);
      }
    }
  } catch (...) {
    std::fclose(f);
    std::remove(tmp.c_str());
    throw;
  }
  if (std::fclose(f) != 0 && err == 0) err = errno != 0 ? errno : EIO;
  if (err == 0 && std::rename(tmp.c_str(), path.c_str()) != 0) err = errno;
  if (err != 0) {
    std::remove(tmp.c_str());
    throw IoError(froster::detail::concat("cannot write '", path, "': ", std::strerror(err)));
  }
}

}  // namespace froster::io
