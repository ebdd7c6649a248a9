#pragma once
/// @file
/// `Tensor<T>`: an owning, dense row-major tensor. Its storage comes from a backend's allocator (64-byte aligned
/// host memory for the host backends; device memory for a CUDA backend), so one type serves every device.

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <utility>

#include "froster/core/tensor_view.hpp"

namespace froster {

/// Alignment of host storage: one cache line, and the width of an AVX-512 register.
inline constexpr std::size_t host_alignment = 64;

/// Releases storage with the function of the allocator that made it.
struct StorageDeleter {
  void (*release)(void*) = nullptr;
  void operator()(void* p) const {
    if (p != nullptr && release != nullptr) release(p);
  }
};

namespace detail {
inline void release_host(void* p) { std::free(p); }
}  // namespace detail

/// Allocates `bytes` of 64-byte aligned host memory (at least one cache line, so the pointer is never null).
inline std::unique_ptr<void, StorageDeleter> allocate_host_bytes(std::size_t bytes) {
  std::size_t rounded = (bytes + host_alignment - 1) / host_alignment * host_alignment;
  if (rounded == 0) rounded = host_alignment;
  void* p = std::aligned_alloc(host_alignment, rounded);
  if (p == nullptr) throw std::bad_alloc();
  return std::unique_ptr<void, StorageDeleter>(p, StorageDeleter{&detail::release_host});
}

template <class T>
class Tensor {
  static_assert(!std::is_const_v<T>, "Tensor<T> owns mutable storage; use ConstView<T> for read-only access");

 public:
  using value_type = T;

  Tensor() = default;

  /// Adopts storage made by an allocator; `storage` must hold at least `extents.product()` elements.
  Tensor(std::unique_ptr<void, StorageDeleter> storage, Dims extents, Device device)
      : storage_(std::move(storage)), extents_(extents), device_(device) {}

  /// Uninitialised host tensor, 64-byte aligned.
  static Tensor host(Dims extents) {
    index_t elements = 1;
    for (index_t e : extents) {
      require<ShapeError>(e >= 0, "extents must be non-negative, got ", extents);
      require<ShapeError>(e == 0 || elements <= std::numeric_limits<index_t>::max() / index_t(sizeof(T)) / e,
                          "extents ", extents, " hold more bytes than memory can address");
      elements *= e;
    }
    return Tensor(allocate_host_bytes(static_cast<std::size_t>(extents.product()) * sizeof(T)), extents,
                  Device::host());
  }

  /// Zero-filled host tensor.
  static Tensor host_zeros(Dims extents) {
    Tensor t = host(extents);
    std::memset(t.data(), 0, static_cast<std::size_t>(t.numel()) * sizeof(T));
    return t;
  }

  /// A moved-from tensor is empty (rank 0, no storage), not a shape without memory.
  Tensor(Tensor&& other) noexcept
      : storage_(std::move(other.storage_)), extents_(std::exchange(other.extents_, Dims{})), device_(other.device_) {}
  Tensor& operator=(Tensor&& other) noexcept {
    storage_ = std::move(other.storage_);
    extents_ = std::exchange(other.extents_, Dims{});
    device_ = other.device_;
    return *this;
  }
  Tensor(const Tensor&) = delete;  // copies go through a backend's copy(), which knows the device
  Tensor& operator=(const Tensor&) = delete;

  T* data() { return static_cast<T*>(storage_.get()); }
  const T* data() const { return static_cast<const T*>(storage_.get()); }
  const Dims& extents() const { return extents_; }
  Device device() const { return device_; }
  int rank() const { return extents_.size(); }
  index_t extent(int d) const { return extents_[d]; }
  /// Elements held: a rank-0 tensor with storage is a scalar (one element, as a 0-d PyTorch tensor); an empty
  /// (default or moved-from) tensor holds none.
  index_t numel() const { return storage_ == nullptr ? 0 : extents_.product(); }
  bool allocated() const { return storage_ != nullptr; }

  TensorView<T> view() { return TensorView<T>(data(), extents_, device_); }
  ConstView<T> view() const { return ConstView<T>(data(), extents_, device_); }
  ConstView<T> cview() const { return view(); }
  operator TensorView<T>() { return view(); }           // NOLINT(google-explicit-constructor)
  operator ConstView<T>() const { return view(); }      // NOLINT(google-explicit-constructor)

 private:
  std::unique_ptr<void, StorageDeleter> storage_;
  Dims extents_{};
  Device device_ = Device::host();
};

}  // namespace froster
