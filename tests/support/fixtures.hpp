#pragma once
// Reader of the PyTorch fixture files written by tests/reference/make_fixtures.py.
//
// Format (little-endian), version 1:
//   magic "FRSTFIX\0" (8 bytes), uint32 version, uint32 entry count, then per entry:
//   uint32 name length, name bytes (UTF-8), uint8 dtype (0 = f32, 1 = f64, 2 = i64), uint8 rank,
//   int64 extents[rank], then the elements, dense row-major. Scalars are stored with extents [1].
// When the format changes, bump the version in both places and re-run:
//   python3 tests/reference/make_fixtures.py

#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include <froster/core/error.hpp>
#include <froster/core/tensor.hpp>

namespace froster::test {

class Fixture {
 public:
  static constexpr std::uint32_t version = 1;

  explicit Fixture(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    require(in.good(), "cannot open fixture ", path, " (regenerate with python3 tests/reference/make_fixtures.py)");
    char magic[8];
    read(in, magic, 8, path);
    require(std::memcmp(magic, "FRSTFIX\0", 8) == 0, path, ": not a froster fixture file (bad magic)");
    const auto file_version = read_pod<std::uint32_t>(in, path);
    require(file_version == version, path, ": fixture format version ", file_version, ", this test reads version ",
            version, "; re-run python3 tests/reference/make_fixtures.py");
    const auto count = read_pod<std::uint32_t>(in, path);
    for (std::uint32_t e = 0; e < count; ++e) {
      const auto name_length = read_pod<std::uint32_t>(in, path);
      require(name_length < 4096, path, ": implausible name length ", name_length);
      std::string name(name_length, '\0');
      read(in, name.data(), name_length, path);
      const auto dtype = read_pod<std::uint8_t>(in, path);
      const auto rank = read_pod<std::uint8_t>(in, path);
      require(rank <= max_rank, path, ": entry ", name, " has rank ", int(rank));
      Dims extents;
      std::vector<index_t> dims(rank);
      for (auto& d : dims) d = read_pod<std::int64_t>(in, path);
      extents = Dims(std::span<const index_t>(dims));
      if (dtype == 0) entries_.emplace(name, read_tensor<float>(in, extents, path));
      else if (dtype == 1) entries_.emplace(name, read_tensor<double>(in, extents, path));
      else if (dtype == 2) entries_.emplace(name, read_tensor<std::int64_t>(in, extents, path));
      else throw Error(path + ": entry " + name + " has unknown dtype " + std::to_string(dtype));
    }
  }

  template <class T>
  ConstView<T> get(const std::string& name) const {
    auto it = entries_.find(name);
    require(it != entries_.end(), "fixture has no entry '", name, "'");
    const auto* t = std::get_if<Tensor<T>>(&it->second);
    require(t != nullptr, "fixture entry '", name, "' has another element type than ", to_string(dtype_of<T>()));
    return t->cview();
  }

  ConstView<float> f32(const std::string& name) const { return get<float>(name); }
  ConstView<double> f64(const std::string& name) const { return get<double>(name); }
  ConstView<std::int64_t> i64(const std::string& name) const { return get<std::int64_t>(name); }
  bool has(const std::string& name) const { return entries_.count(name) != 0; }
  /// Names that start with `prefix`, in sorted order.
  std::vector<std::string> names_with_prefix(const std::string& prefix) const {
    std::vector<std::string> out;
    for (auto it = entries_.lower_bound(prefix); it != entries_.end() && it->first.rfind(prefix, 0) == 0; ++it)
      out.push_back(it->first);
    return out;
  }

 private:
  static void read(std::ifstream& in, char* dst, std::size_t n, const std::string& path) {
    in.read(dst, static_cast<std::streamsize>(n));
    require(in.good(), path, ": truncated fixture file");
  }
  template <class P>
  static P read_pod(std::ifstream& in, const std::string& path) {
    P value;
    read(in, reinterpret_cast<char*>(&value), sizeof(P), path);
    return value;
  }
  template <class T>
  static Tensor<T> read_tensor(std::ifstream& in, Dims extents, const std::string& path) {
    Tensor<T> t = Tensor<T>::host(extents);
    read(in, reinterpret_cast<char*>(t.data()), static_cast<std::size_t>(t.numel()) * sizeof(T), path);
    return t;
  }

  std::map<std::string, std::variant<Tensor<float>, Tensor<double>, Tensor<std::int64_t>>> entries_;
};

/// Path of a committed fixture file.
inline std::string fixture_path(const std::string& file) { return std::string(FROSTER_TEST_DATA_DIR) + "/" + file; }

}  // namespace froster::test
