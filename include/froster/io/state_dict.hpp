#pragma once
/// @file
/// `StateDict`: named fp32 host tensors in file order — what every checkpoint reader returns and every writer and
/// model loader takes. Lookups that fail name the missing tensor.

#include <algorithm>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "froster/core/error.hpp"
#include "froster/core/tensor.hpp"

namespace froster::io {

/// Where a tensor came from and what it was stored as, kept for error messages and for saving back.
enum class StoredType { f32, f16, bf16, f64, i64, i32, i16, i8, u8, boolean };

inline const char* stored_type_name(StoredType t) {
  switch (t) {
    case StoredType::f32: return "F32";
    case StoredType::f16: return "F16";
    case StoredType::bf16: return "BF16";
    case StoredType::f64: return "F64";
    case StoredType::i64: return "I64";
    case StoredType::i32: return "I32";
    case StoredType::i16: return "I16";
    case StoredType::i8: return "I8";
    case StoredType::u8: return "U8";
    case StoredType::boolean: return "BOOL";
  }
  return "?";
}

class StateDict {
 public:
  struct Entry {
    std::string name;
    Tensor<float> tensor;
    StoredType stored = StoredType::f32;
  };

  StateDict() = default;
  StateDict(StateDict&&) noexcept = default;
  StateDict& operator=(StateDict&&) noexcept = default;

  /// Adds a tensor; a name already present is an error (checkpoints never hold one name twice).
  void insert(std::string name, Tensor<float> tensor, StoredType stored = StoredType::f32) {
    require<ValueError>(!contains(name), "state dict already holds a tensor named '", name, "'");
    index_.emplace(name, entries_.size());
    entries_.push_back(Entry{std::move(name), std::move(tensor), stored});
  }

  bool contains(std::string_view name) const { return index_.find(std::string(name)) != index_.end(); }
  std::size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }

  /// The tensor named `name`; throws ValueError naming it when absent.
  const Tensor<float>& at(std::string_view name) const { return entries_[position(name)].tensor; }
  Tensor<float>& at(std::string_view name) { return entries_[position(name)].tensor; }
  const Entry& entry(std::string_view name) const { return entries_[position(name)]; }

  /// Names in insertion (file) order.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    out.reserve(entries_.size());
    for (const Entry& e : entries_) out.push_back(e.name);
    return out;
  }

  const std::vector<Entry>& entries() const { return entries_; }

  /// Moves every tensor of `other` in, named `prefix` + its name (the inverse of extract_prefix). A name already
  /// present is an error, found before anything moves.
  void merge(StateDict&& other, std::string_view prefix = "") {
    for (const Entry& e : other.entries_) {
      const std::string name = std::string(prefix) + e.name;
      require<ValueError>(!contains(name), "state dict already holds a tensor named '", name, "'");
    }
    for (Entry& e : other.entries_) insert(std::string(prefix) + e.name, std::move(e.tensor), e.stored);
    other = StateDict{};
  }

  /// Moves the tensors whose names start with `prefix` out of this dict, renamed without it (file order kept on
  /// both sides); the others stay.
  StateDict extract_prefix(std::string_view prefix) {
    StateDict out, rest;
    for (Entry& e : entries_) {
      if (e.name.starts_with(prefix)) out.insert(e.name.substr(prefix.size()), std::move(e.tensor), e.stored);
      else rest.insert(std::move(e.name), std::move(e.tensor), e.stored);
    }
    *this = std::move(rest);
    return out;
  }
  auto begin() const { return entries_.begin(); }
  auto end() const { return entries_.end(); }

 private:
  std::size_t position(std::string_view name) const {
    auto it = index_.find(std::string(name));
    if (it == index_.end()) throw ValueError(froster::detail::concat("no tensor named '", name, "' (", entries_.size(),
                                                            " tensors present)"));
    return it->second;
  }

  std::vector<Entry> entries_;
  std::unordered_map<std::string, std::size_t> index_;
};

}  // namespace froster::io
