#pragma once
/// @file
/// `ParameterSet`: the named trainable tensors of a model and their gradients, allocated on its backend. Names
/// follow the checkpoint naming of the reference implementation (OpenAI CLIP: `transformer.resblocks.0.ln_1.weight`),
/// so loading a state dict is a lookup per name. Entries never move once added: components keep references.
/// Gradient buffers are allocated (zeroed) on first need — `zero_grad()`, `parameters()`, or a backward pass through
/// `ensure_gradients()` — so a model used only for inference holds no memory for them.

#include <cmath>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "froster/backends/backend.hpp"
#include "froster/core/parameter.hpp"
#include "froster/core/random.hpp"

namespace froster::nn {

/// How a parameter starts when a model is built from scratch (checkpoints overwrite it).
struct Init {
  enum class Kind : std::uint8_t { zeros, ones, normal } kind = Kind::zeros;
  double std_dev = 0;

  static Init zeros() { return {Kind::zeros, 0}; }
  static Init ones() { return {Kind::ones, 0}; }
  static Init normal(double std_dev) { return {Kind::normal, std_dev}; }
};

template <class B, class T = float>
  requires BackendFor<B, T>
class ParameterSet {
 public:
  struct Entry {
    std::string name;
    Tensor<T> value;
    Tensor<T> grad;
    Init init;
  };

  explicit ParameterSet(B& backend) : backend_(&backend) {}
  ParameterSet(const ParameterSet&) = delete;
  ParameterSet& operator=(const ParameterSet&) = delete;

  /// Adds a parameter (its gradient buffer comes on first need); a repeated name is an error.
  Entry& add(std::string name, Dims extents, Init init) {
    require<ValueError>(find(name) == nullptr, "ParameterSet: a parameter named '", name, "' exists already");
    return entries_.emplace_back(Entry{std::move(name), backend_->template allocate<T>(extents), Tensor<T>{}, init});
  }

  /// Allocates zeroed gradient buffers where there are none yet; backward passes call it before accumulating.
  void ensure_gradients() {
    for (Entry& e : entries_)
      if (!e.grad.allocated()) {
        e.grad = backend_->template allocate<T>(e.value.extents());
        backend_->fill(matrix_of(e.grad.view()), T(0));
      }
  }

  /// Sets every parameter from its `Init`, drawing normals from one stream seeded by `seed` in insertion order
  /// (the same seed gives the same model on every backend).
  void initialize(std::uint64_t seed) {
    NormalRng rng(seed);
    for (Entry& e : entries_) {
      Tensor<T> host = Tensor<T>::host(e.value.extents());
      T* p = host.data();
      for (index_t i = 0; i < host.numel(); ++i) {
        switch (e.init.kind) {
          case Init::Kind::zeros: p[i] = T(0); break;
          case Init::Kind::ones: p[i] = T(1); break;
          case Init::Kind::normal: p[i] = T(e.init.std_dev * rng.normal()); break;
        }
      }
      backend_->copy(matrix_of(host.cview()), matrix_of(e.value.view()));
    }
  }

  void zero_grad() {
    ensure_gradients();
    for (Entry& e : entries_) backend_->fill(matrix_of(e.grad.view()), T(0));
  }

  Entry* find(std::string_view name) {
    for (Entry& e : entries_)
      if (e.name == name) return &e;
    return nullptr;
  }
  const Entry* find(std::string_view name) const { return const_cast<ParameterSet*>(this)->find(name); }

  /// The entry named `name`; throws ValueError naming it when absent.
  Entry& at(std::string_view name) {
    Entry* e = find(name);
    require<ValueError>(e != nullptr, "no parameter named '", name, "' (", entries_.size(), " parameters)");
    return *e;
  }

  /// Copies `values` into parameter `name` (shapes must match exactly; the message names both).
  void load(std::string_view name, ConstView<T> values) {
    Entry& e = at(name);
    require<ShapeError>(values.extents() == e.value.extents(), "parameter '", name, "' has extents ",
                        e.value.extents(), ", the values given have ", values.extents());
    backend_->copy(matrix_of(values), matrix_of(e.value.view()));
  }

  /// Every parameter with its gradient, in insertion order, for an optimiser.
  std::vector<Parameter<T>> parameters() {
    ensure_gradients();
    std::vector<Parameter<T>> out;
    out.reserve(entries_.size());
    for (Entry& e : entries_) out.push_back({e.name, e.value.view(), e.grad.view()});
    return out;
  }

  std::deque<Entry>& entries() { return entries_; }
  const std::deque<Entry>& entries() const { return entries_; }
  std::size_t size() const { return entries_.size(); }
  index_t numel() const {
    index_t n = 0;
    for (const Entry& e : entries_) n += e.value.numel();
    return n;
  }

  /// Any dense tensor seen as a [1, numel] matrix: the backend's copy and fill take rank-2 views.
  template <class U>
  static TensorView<U> matrix_of(TensorView<U> v) {
    return TensorView<U>(v.data(), {1, v.numel()}, v.device());
  }

 private:
  B* backend_;
  std::deque<Entry> entries_;
};

}  // namespace froster::nn
