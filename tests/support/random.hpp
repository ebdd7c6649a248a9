#pragma once
// Seeded random host tensors for tests.

#include <cstdint>

#include <froster/core/random.hpp>
#include <froster/core/tensor.hpp>

namespace froster::test {

/// Normal(0, scale^2) entries from `seed`.
template <class T>
Tensor<T> random_tensor(Dims extents, std::uint64_t seed, double scale = 1.0) {
  Tensor<T> t = Tensor<T>::host(extents);
  NormalRng rng(seed);
  for (index_t i = 0; i < t.numel(); ++i) t.data()[i] = T(scale * rng.normal());
  return t;
}

/// A copy of a host view converted to another element type (fp32 fixtures -> double for gradient checks).
template <class To, class From>
Tensor<To> converted(ConstView<From> v) {
  Tensor<To> t = Tensor<To>::host(v.extents());
  auto out = t.view();
  if (v.rank() == 1)
    for (index_t i = 0; i < v.extent(0); ++i) out(i) = To(v(i));
  else
    for (index_t i = 0; i < v.extent(0); ++i)
      for (index_t j = 0; j < v.extent(1); ++j) out(i, j) = To(v(i, j));
  return t;
}

}  // namespace froster::test
