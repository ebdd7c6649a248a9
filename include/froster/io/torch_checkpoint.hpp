#pragma once
/// @file
/// Loads PyTorch checkpoints written by `torch.save` (the zip format of torch >= 1.6) without Python: a ZIP reader
/// finds `<archive>/data.pkl` and the storages `<archive>/data/<key>`, a restricted unpickler (pickle.hpp) rebuilds
/// the object tree without running any code, and the tensors of the state dict are copied out (any strides) and
/// converted to fp32. TorchScript archives (`torch.jit.save`, such as OpenAI's `ViT-B-16.pt`) are read too: their
/// module objects' attributes give the tensors, named by attribute path like `state_dict()` names them.
/// See docs/io_torch_checkpoints.md.

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "froster/core/error.hpp"
#include "froster/core/tensor.hpp"
#include "froster/io/float16.hpp"
#include "froster/io/mapped_file.hpp"
#include "froster/io/pickle.hpp"
#include "froster/io/state_dict.hpp"
#include "froster/io/zip.hpp"

namespace froster::io {

struct TorchLoadOptions {
  /// Key of the top-level dict that holds the state dict. Empty: auto-detect (a dict of tensors itself, else the
  /// first of "state_dict", "model_state", "model_state_dict", "model", "module", "net", "network", "params" that
  /// holds tensors, looking one level deeper when such a value is a dict of dicts).
  std::string state_dict_key;
  /// Prefixes removed, in this order and repeatedly, when EVERY tensor name starts with one (DataParallel's
  /// `module.`, wrappers' `model.`). Empty: keep names as stored.
  std::vector<std::string> strip_prefixes = {"module.", "model."};
  /// Check each used zip entry's CRC-32 (catches corrupted tensor data; costs about a second per GB).
  bool verify_checksums = true;
  /// Accept objects of unknown classes elsewhere in the checkpoint (optimizer wrappers, argparse namespaces):
  /// they become inert placeholders, never constructed. The state dict itself must still be plain.
  bool allow_unknown_globals = false;
  pickle::Limits limits{};
};

/// A loaded checkpoint and what was done to get it.
struct TorchCheckpoint {
  StateDict state_dict;
  std::string source_key;               ///< where the state dict was found ("" = top level, "model_state", ...)
  std::string stripped_prefix;          ///< what strip_prefixes removed from every name ("" = nothing)
  std::vector<std::string> skipped;     ///< non-tensor entries of the state dict: "name (kind)"
  bool torchscript = false;             ///< read from a TorchScript archive's module attributes
};

namespace torch_detail {

template <class U>
U load_unaligned(const std::byte* p) {
  U v;
  std::memcpy(&v, p, sizeof(U));
  return v;
}

class TorchReader {
 public:
  TorchReader(std::span<const std::byte> bytes, std::string label, const TorchLoadOptions& options)
      : bytes_(bytes), label_(std::move(label)), opt_(options) {}

  TorchCheckpoint read() {
    check_container();
    ZipArchive zip(bytes_, label_);
    zip_ = &zip;
    find_root(zip);
    if (const ZipEntry* order = zip.find(root_ + "/byteorder")) {
      zip.require_stored(*order);
      std::string_view s(reinterpret_cast<const char*>(order->data.data()), order->data.size());
      if (s != "little") fail("stores tensors in '", s, "' byte order; only little-endian checkpoints are supported");
    }
    const ZipEntry& pkl = zip.at(root_ + "/data.pkl");
    if (opt_.verify_checksums) zip.verify_crc(pkl);
    pickle::Options po;
    po.limits = opt_.limits;
    po.unknown_globals = out_.torchscript ? pickle::UnknownGlobals::torchscript
                         : opt_.allow_unknown_globals ? pickle::UnknownGlobals::opaque
                                                      : pickle::UnknownGlobals::reject;
    if (out_.torchscript && opt_.allow_unknown_globals) po.unknown_globals = pickle::UnknownGlobals::opaque;
    try {
      graph_ = pickle::load(pkl.data, label_ + ":" + pkl.name, po);
    } catch (const FormatError& e) {
      std::string what = e.what();
      if (what.find("is not allowed") != std::string::npos)
        what += ". If the file stores a whole nn.Module, re-save its state dict (torch.save(model.state_dict(), "
                "path)); to ignore objects outside the state dict set TorchLoadOptions::allow_unknown_globals";
      throw FormatError(what);
    }

    std::vector<std::pair<std::string, pickle::NodeId>> tensors;
    if (out_.torchscript) {
      collect_module(graph_.root_id(), "", tensors, 0);
    } else {
      const pickle::Node* sd = select_state_dict();
      collect_dict(*sd, tensors);
    }
    strip(tensors);
    for (auto& [name, id] : tensors) {
      const std::string full = out_.stripped_prefix + name;
      const pickle::Node& t = graph_.node(id);
      out_.state_dict.insert(name, convert(t, full), t.dtype);
    }
    zip_ = nullptr;
    return std::move(out_);
  }

 private:
  template <class... Parts>
  [[noreturn]] void fail(const Parts&... parts) const {
    throw FormatError(froster::detail::concat("torch checkpoint '", label_, "' ", parts...));
  }

  void check_container() const {
    const auto b = bytes_;
    if (b.size() >= 4 && b[0] == std::byte{'P'} && b[1] == std::byte{'K'}) return;
    if (b.size() >= 2 && b[0] == std::byte{0x80} && static_cast<std::uint8_t>(b[1]) <= 5)
      fail("uses the legacy (pre-1.6, non-zip) torch.save format, which is not supported; re-save it with a "
           "current PyTorch: torch.save(torch.load(old_path, map_location='cpu'), new_path)");
    if (b.size() >= 262 && std::memcmp(b.data() + 257, "ustar", 5) == 0)
      fail("is a tar archive (the oldest torch.save format), which is not supported; re-save it with a current "
           "PyTorch: torch.save(torch.load(old_path, map_location='cpu'), new_path)");
    fail("is not a PyTorch checkpoint (expected a zip archive made by torch.save)");
  }

  /// The archive's top folder: the one holding data.pkl. TorchScript archives also hold code/ and constants.pkl.
  void find_root(const ZipArchive& zip) {
    int found = 0;
    for (const ZipEntry& e : zip.entries()) {
      const auto slash = e.name.find('/');
      if (slash != std::string::npos && e.name.compare(slash, std::string::npos, "/data.pkl") == 0) {
        root_ = e.name.substr(0, slash);
        ++found;
      }
    }
    if (found == 0) fail("holds no <archive>/data.pkl entry (a zip file, but not one written by torch.save)");
    if (found > 1) fail("holds ", found, " data.pkl entries; expected one");
    out_.torchscript = zip.find(root_ + "/constants.pkl") != nullptr;
  }

  const pickle::Node& node(pickle::NodeId id) const { return graph_.node(id); }

  bool has_tensor(const pickle::Node& dict) const {
    if (dict.kind != pickle::Kind::dict) return false;
    for (std::size_t i = 1; i < dict.items.size(); i += 2)
      if (node(dict.items[i]).kind == pickle::Kind::tensor) return true;
    return false;
  }

  std::string key_list(const pickle::Node& dict) const {
    std::string s;
    int n = 0;
    for (std::size_t i = 0; i + 1 < dict.items.size(); i += 2) {
      const pickle::Node& k = node(dict.items[i]);
      if (k.kind != pickle::Kind::string) continue;
      if (n++ == 20) {
        s += ", ...";
        break;
      }
      s += (n > 1 ? ", '" : "'") + k.text + "'";
    }
    return s.empty() ? "none" : s;
  }

  const pickle::Node* select_state_dict() {
    const pickle::Node& root = graph_.root();
    if (root.kind != pickle::Kind::dict)
      fail("holds a ", pickle::kind_name(root.kind), " at the top level; expected a dict (a state dict, or a dict "
           "holding one)");
    if (!opt_.state_dict_key.empty()) {
      const pickle::Node* v = graph_.get(root, opt_.state_dict_key);
      if (v == nullptr) fail("has no key '", opt_.state_dict_key, "' at the top level (keys: ", key_list(root), ")");
      if (v->kind != pickle::Kind::dict)
        fail("holds a ", pickle::kind_name(v->kind), " under '", opt_.state_dict_key, "', not a state dict");
      out_.source_key = opt_.state_dict_key;
      return v;
    }
    static constexpr std::string_view keys[] = {"state_dict", "model_state", "model_state_dict", "model",
                                                "module",     "net",         "network",          "params"};
    const pickle::Node* level = &root;
    std::string path;
    for (int depth = 0; depth < 3; ++depth) {
      if (has_tensor(*level)) {
        out_.source_key = path;
        return level;
      }
      const pickle::Node* next = nullptr;
      for (std::string_view k : keys) {
        const pickle::Node* v = graph_.get(*level, k);
        if (v != nullptr && v->kind == pickle::Kind::dict) {
          next = v;
          path += (path.empty() ? "" : ".") + std::string(k);
          break;
        }
      }
      if (next == nullptr) break;
      level = next;
    }
    fail("holds no state dict: the top-level dict has no tensors and none of the usual keys (state_dict, "
         "model_state, model, ...) holds a dict of tensors (top-level keys: ", key_list(root),
         "); name the key with TorchLoadOptions::state_dict_key");
  }

  /// Tensor entries of a state dict in first-insertion order (a repeated key keeps the last value, like Python).
  void collect_dict(const pickle::Node& dict, std::vector<std::pair<std::string, pickle::NodeId>>& out) {
    std::unordered_map<std::string, std::size_t> seen;
    std::vector<std::pair<std::string, pickle::NodeId>> all;
    for (std::size_t i = 0; i + 1 < dict.items.size(); i += 2) {
      const pickle::Node& k = node(dict.items[i]);
      std::string name = k.kind == pickle::Kind::string ? k.text
                         : k.kind == pickle::Kind::integer ? std::to_string(k.integer)
                                                          : std::string("<") + pickle::kind_name(k.kind) + ">";
      if (k.kind != pickle::Kind::string) {
        out_.skipped.push_back(name + " (non-string key)");
        continue;
      }
      auto [it, fresh] = seen.emplace(name, all.size());
      if (fresh) all.emplace_back(std::move(name), dict.items[i + 1]);
      else all[it->second].second = dict.items[i + 1];
    }
    for (auto& [name, id] : all) {
      if (node(id).kind == pickle::Kind::tensor) out.emplace_back(name, id);
      else out_.skipped.push_back(name + " (" + pickle::kind_name(node(id).kind) + ")");
    }
  }

  /// TorchScript: a module is an object whose state dict maps attribute names to tensors, submodules and others.
  /// Visits are budgeted by the graph's size, so shared or cyclic objects in a hostile file cannot blow up.
  void collect_module(pickle::NodeId id, const std::string& prefix,
                      std::vector<std::pair<std::string, pickle::NodeId>>& out, int depth) {
    if (depth > 64) fail("TorchScript archive: modules nest more than 64 deep at '", prefix, "'");
    if (++visits_ > graph_.size()) fail("TorchScript archive: the module graph shares or cycles objects at '", prefix, "'");
    const pickle::Node& obj = node(id);
    if (obj.kind != pickle::Kind::object) fail("TorchScript archive: expected a module object at '", prefix, "'");
    const pickle::Node& state = node(obj.items[2]);
    if (state.kind != pickle::Kind::dict) return;  // modules without attributes
    for (std::size_t i = 0; i + 1 < state.items.size(); i += 2) {
      const pickle::Node& k = node(state.items[i]);
      if (k.kind != pickle::Kind::string) continue;
      const pickle::NodeId v = state.items[i + 1];
      if (node(v).kind == pickle::Kind::tensor) {
        std::string name = prefix + k.text;
        if (!names_.emplace(name, true).second) fail("TorchScript archive: two tensors are named '", name, "'");
        out.emplace_back(std::move(name), v);
      } else if (node(v).kind == pickle::Kind::object && node(node(v).items[0]).text.starts_with("__torch__.")) {
        collect_module(v, prefix + k.text + ".", out, depth + 1);
      }
    }
  }

  void strip(std::vector<std::pair<std::string, pickle::NodeId>>& tensors) {
    if (tensors.empty()) return;
    for (bool changed = true; changed;) {
      changed = false;
      for (const std::string& p : opt_.strip_prefixes) {
        if (p.empty()) continue;
        bool all = true;
        for (const auto& t : tensors) all = all && t.first.size() > p.size() && t.first.starts_with(p);
        if (!all) continue;
        for (auto& t : tensors) t.first.erase(0, p.size());
        out_.stripped_prefix += p;
        changed = true;
      }
    }
  }

  /// The bytes of a storage, checked once.
  std::span<const std::byte> storage_bytes(const pickle::Node& s, const std::string& tensor) {
    const std::string entry_name = root_ + "/data/" + s.text;
    const ZipEntry* e = zip_->find(entry_name);
    if (e == nullptr) fail("tensor '", tensor, "': its storage entry '", entry_name, "' is missing");
    zip_->require_stored(*e);
    if (opt_.verify_checksums && verified_.emplace(entry_name, true).second) zip_->verify_crc(*e);
    const std::size_t es = pickle::element_size(s.dtype);
    if (static_cast<std::uint64_t>(s.integer) > e->data.size() / es)
      fail("tensor '", tensor, "': storage '", entry_name, "' should hold ", s.integer, " elements of ", es,
           " bytes but has only ", e->data.size(), " bytes (truncated?)");
    return e->data.first(static_cast<std::size_t>(s.integer) * es);
  }

  Tensor<float> convert(const pickle::Node& t, const std::string& name) {
    const pickle::Node& s = node(t.items[0]);
    const int rank = t.rank();
    if (rank > max_rank) fail("tensor '", name, "' has ", rank, " dimensions; at most ", max_rank, " are supported");
    if (t.dtype != s.dtype && s.dtype != StoredType::u8)
      fail("tensor '", name, "' is ", stored_type_name(t.dtype), " over a ", stored_type_name(s.dtype), " storage");
    const std::span<const std::byte> data = storage_bytes(s, name);
    const std::size_t es = pickle::element_size(t.dtype);
    const std::int64_t available = static_cast<std::int64_t>(data.size() / es);

    std::vector<index_t> sizes(t.dims.begin(), t.dims.begin() + rank);
    std::vector<index_t> strides(t.dims.begin() + rank, t.dims.end());
    if (t.integer < 0) fail("tensor '", name, "' has a negative storage offset ", t.integer);
    // Largest element addressed, with overflow checks; zero-size tensors address nothing.
    std::int64_t numel = 1, last = t.integer;
    bool empty = false;
    for (int d = 0; d < rank; ++d) {
      if (sizes[d] < 0 || strides[d] < 0)
        fail("tensor '", name, "' has a negative size or stride (sizes ", Dims(std::span<const index_t>(sizes)),
             ")");
      if (sizes[d] == 0) empty = true;
    }
    if (!empty) {
      for (int d = 0; d < rank; ++d) {
        std::int64_t reach = 0;
        if (__builtin_mul_overflow(sizes[d] - 1, strides[d], &reach) || __builtin_add_overflow(last, reach, &last) ||
            __builtin_mul_overflow(numel, sizes[d], &numel))
          fail("tensor '", name, "' has sizes and strides that overflow 64 bits");
      }
      if (last >= available)
        fail("tensor '", name, "' (offset ", t.integer, ", sizes ", Dims(std::span<const index_t>(sizes)),
             ", strides ", Dims(std::span<const index_t>(strides)), ") addresses element ", last,
             " of a storage of ", available, " elements");
      // Broadcast views (stride 0) could ask for far more memory than the file holds: refuse absurd ones.
      if (numel > std::max<std::int64_t>(16 * available, std::int64_t{1} << 20))
        fail("tensor '", name, "' has ", numel, " elements over a storage of only ", available,
             " (an expanded view); re-save it with .contiguous()");
    }
    const Dims extents{std::span<const index_t>(sizes)};
    Tensor<float> out = Tensor<float>::host(extents);
    if (empty) return out;

    const std::byte* base = data.data();
    float* dst = out.data();
    // Row-major contiguous tensors are one run (a plain memcpy for f32); others walk their strides.
    bool contiguous = true;
    for (std::int64_t d = rank - 1, expect = 1; d >= 0; --d) {  // numel did not overflow, so neither does expect
      if (sizes[d] != 1 && strides[d] != expect) contiguous = false;
      expect *= sizes[d];
    }
    if (contiguous && t.dtype == StoredType::f32) {
      std::memcpy(dst, base + static_cast<std::size_t>(t.integer) * 4, static_cast<std::size_t>(numel) * 4);
      return out;
    }
    // One loop per element type, so the conversion is not dispatched per element.
    auto copy = [&](auto convert_one) {
      if (contiguous) {
        const std::byte* p = base + static_cast<std::size_t>(t.integer) * es;
        for (std::int64_t i = 0; i < numel; ++i) dst[i] = convert_one(p + static_cast<std::size_t>(i) * es);
        return;
      }
      std::vector<index_t> counter(static_cast<std::size_t>(rank), 0);
      std::int64_t index = t.integer;
      for (std::int64_t i = 0; i < numel; ++i) {
        dst[i] = convert_one(base + static_cast<std::size_t>(index) * es);
        for (int d = rank - 1; d >= 0; --d) {  // advance the odometer
          if (++counter[d] < sizes[d]) {
            index += strides[d];
            break;
          }
          index -= (sizes[d] - 1) * strides[d];
          counter[d] = 0;
        }
      }
    };
    auto exact = [&](auto v, const char* type) {
      const float f = static_cast<float>(v);
      if (!(f >= -0x1p63f && f < 0x1p63f) || static_cast<std::int64_t>(f) != static_cast<std::int64_t>(v))
        fail("tensor '", name, "' (", type, ") holds ", v, ", which float32 cannot represent exactly");
      return f;
    };
    switch (t.dtype) {
      case StoredType::f32: copy([](const std::byte* p) { return load_unaligned<float>(p); }); break;
      case StoredType::f64:
        copy([](const std::byte* p) { return static_cast<float>(load_unaligned<double>(p)); });
        break;
      case StoredType::f16:
        copy([](const std::byte* p) { return half_to_float(load_unaligned<std::uint16_t>(p)); });
        break;
      case StoredType::bf16:
        copy([](const std::byte* p) { return bf16_to_float(load_unaligned<std::uint16_t>(p)); });
        break;
      case StoredType::i64: copy([&](const std::byte* p) { return exact(load_unaligned<std::int64_t>(p), "int64"); }); break;
      case StoredType::i32: copy([&](const std::byte* p) { return exact(load_unaligned<std::int32_t>(p), "int32"); }); break;
      case StoredType::i16:
        copy([](const std::byte* p) { return static_cast<float>(load_unaligned<std::int16_t>(p)); });
        break;
      case StoredType::i8: copy([](const std::byte* p) { return static_cast<float>(load_unaligned<std::int8_t>(p)); }); break;
      case StoredType::u8:
        copy([](const std::byte* p) { return static_cast<float>(load_unaligned<std::uint8_t>(p)); });
        break;
      case StoredType::boolean:
        copy([](const std::byte* p) { return load_unaligned<std::uint8_t>(p) != 0 ? 1.0f : 0.0f; });
        break;
    }
    return out;
  }

  std::span<const std::byte> bytes_;
  std::string label_;
  const TorchLoadOptions& opt_;
  const ZipArchive* zip_ = nullptr;
  std::string root_;
  pickle::Pickle graph_;
  TorchCheckpoint out_;
  std::unordered_map<std::string, bool> verified_;
  std::unordered_map<std::string, bool> names_;
  std::size_t visits_ = 0;
};

}  // namespace torch_detail

/// Reads a checkpoint already in memory; `label` names it in errors. Throws FormatError (naming the file and the
/// tensor or entry) for anything malformed, truncated, disallowed or unsupported.
inline TorchCheckpoint read_torch_checkpoint(std::span<const std::byte> bytes, const std::string& label,
                                             const TorchLoadOptions& options = {}) {
  return torch_detail::TorchReader(bytes, label, options).read();
}

/// Reads the checkpoint at `path` (memory-mapped) with what was done to find its state dict.
/// Throws IoError when the file cannot be opened, FormatError as above.
inline TorchCheckpoint read_torch_checkpoint(const std::string& path, const TorchLoadOptions& options = {}) {
  MappedFile file(path);
  return read_torch_checkpoint(file.bytes(), path, options);
}

/// Loads the state dict of the PyTorch checkpoint at `path` as fp32 tensors (see TorchLoadOptions for how it is
/// found and renamed). Non-tensor entries are skipped; use read_torch_checkpoint to see which.
inline StateDict load_torch_checkpoint(const std::string& path, const TorchLoadOptions& options = {}) {
  return std::move(read_torch_checkpoint(path, options).state_dict);
}

}  // namespace froster::io
