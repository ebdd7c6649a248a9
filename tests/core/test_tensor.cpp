// Tensor<T>: aligned host storage, zero fill, move-only ownership, views. NormalRng: determinism and moments.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <froster/core/random.hpp>
#include <froster/core/tensor.hpp>

using namespace froster;

namespace {

bool is_host_aligned(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % host_alignment == 0; }

}  // namespace

TEST_CASE("Tensor::host storage is 64-byte aligned for every size", "[core]") {
  static_assert(host_alignment == 64);
  // Odd element counts, sizes that are not a multiple of the alignment, and zero elements.
  const std::vector<Dims> shapes = {{1}, {3}, {7, 3}, {5, 13}, {16}, {17}, {0}, {0, 5}, {4, 0}, {1, 1, 1}};
  for (const Dims& shape : shapes) {
    INFO("extents " << shape.str());
    auto f = Tensor<float>::host(shape);
    auto d = Tensor<double>::host(shape);
    auto i = Tensor<std::int64_t>::host(shape);
    REQUIRE(f.allocated());
    REQUIRE(f.data() != nullptr);  // never null, even for zero elements
    REQUIRE(is_host_aligned(f.data()));
    REQUIRE(is_host_aligned(d.data()));
    REQUIRE(is_host_aligned(i.data()));
    REQUIRE(f.extents() == shape);
    REQUIRE(f.numel() == shape.product());
    REQUIRE(f.device() == Device::host());
  }
  // Several live allocations, each aligned on its own.
  std::vector<Tensor<float>> many;
  for (index_t n = 1; n <= 33; ++n) many.push_back(Tensor<float>::host({n}));
  for (const auto& t : many) REQUIRE(is_host_aligned(t.data()));
}

TEST_CASE("Tensor::host rejects negative extents", "[core]") {
  REQUIRE_THROWS_AS(Tensor<float>::host({2, -3}), ShapeError);
  REQUIRE_THROWS_WITH(Tensor<float>::host({2, -3}),
                      Catch::Matchers::Contains("non-negative") && Catch::Matchers::Contains("[2, -3]"));
}

TEST_CASE("Tensor::host_zeros is zero-filled", "[core]") {
  // Dirty the heap first so that a missing fill would likely show.
  for (int k = 0; k < 4; ++k) {
    auto junk = Tensor<double>::host({37, 11});
    for (index_t i = 0; i < junk.numel(); ++i) junk.data()[i] = 1234.5;
  }
  auto z = Tensor<double>::host_zeros({37, 11});
  for (index_t i = 0; i < z.numel(); ++i) REQUIRE(z.data()[i] == 0.0);
  auto zi = Tensor<std::int32_t>::host_zeros({5, 3});
  for (index_t i = 0; i < zi.numel(); ++i) REQUIRE(zi.data()[i] == 0);
  REQUIRE_NOTHROW(Tensor<float>::host_zeros({0, 4}));
}

TEST_CASE("Tensor is move-only and moves its storage", "[core]") {
  static_assert(!std::is_copy_constructible_v<Tensor<float>>);
  static_assert(!std::is_copy_assignable_v<Tensor<float>>);
  static_assert(std::is_nothrow_move_constructible_v<Tensor<float>>);
  static_assert(std::is_nothrow_move_assignable_v<Tensor<float>>);

  auto a = Tensor<float>::host({3, 4});
  float* storage = a.data();
  a.data()[5] = 2.5f;

  SECTION("move construction transfers the pointer, no copy") {
    Tensor<float> b = std::move(a);
    REQUIRE(b.data() == storage);
    REQUIRE(b.extents() == Dims{3, 4});
    REQUIRE(b.data()[5] == 2.5f);
  }
  SECTION("move assignment releases the old storage and takes the new") {
    auto b = Tensor<float>::host({2});
    b = std::move(a);
    REQUIRE(b.data() == storage);
    REQUIRE(b.extents() == Dims{3, 4});
    REQUIRE(b.numel() == 12);
  }
  SECTION("a moved-from tensor is empty: unallocated, no elements, a null view") {
    Tensor<float> b = std::move(a);
    REQUIRE_FALSE(a.allocated());  // NOLINT(bugprone-use-after-move): the moved-from state is what is tested
    // Its shape must agree with its (absent) storage: views of it are null rather than throwing.
    REQUIRE(a.numel() == 0);
    REQUIRE(a.view().is_null());
    auto c = Tensor<float>::host({1});
    c = std::move(b);
    REQUIRE(b.numel() == 0);
    REQUIRE(b.cview().is_null());
  }
  SECTION("a default tensor is unallocated with a null view") {
    Tensor<float> empty;
    REQUIRE_FALSE(empty.allocated());
    REQUIRE(empty.numel() == 0);
    REQUIRE(empty.view().is_null());
  }
}

TEST_CASE("Tensor views cover the whole tensor, row-major", "[core]") {
  auto t = Tensor<float>::host({3, 5});
  const TensorView<float> v = t.view();
  REQUIRE(v.data() == t.data());
  REQUIRE(v.extents() == Dims{3, 5});
  REQUIRE(v.strides() == row_major_strides({3, 5}));
  REQUIRE(v.is_contiguous());
  REQUIRE(v.device() == t.device());

  const Tensor<float>& ct = t;
  static_assert(std::is_same_v<decltype(ct.view()), ConstView<float>>);
  static_assert(std::is_same_v<decltype(t.cview()), ConstView<float>>);
  REQUIRE(ct.view().data() == t.data());
  REQUIRE(t.cview().extents() == Dims{3, 5});

  // Implicit conversions let a tensor be passed where a view is expected.
  const TensorView<float> implicit = t;
  const ConstView<float> implicit_const = ct;
  REQUIRE(implicit.data() == t.data());
  REQUIRE(implicit_const.extents() == t.extents());

  // Writes through the view are the tensor's elements.
  v(2, 4) = 7.0f;
  REQUIRE(t.data()[14] == 7.0f);
  REQUIRE(t.rank() == 2);
  REQUIRE(t.extent(1) == 5);
}

TEST_CASE("NormalRng is deterministic per seed", "[core]") {
  NormalRng a(42), b(42), c(43);
  std::vector<double> xa, xb, xc;
  for (int i = 0; i < 1000; ++i) {
    xa.push_back(a.normal());
    xb.push_back(b.normal());
    xc.push_back(c.normal());
  }
  REQUIRE(xa == xb);
  int equal = 0;
  for (std::size_t i = 0; i < xa.size(); ++i) equal += xa[i] == xc[i];
  REQUIRE(equal == 0);

  // Interleaving uniform() and normal() is deterministic too.
  NormalRng d(7), e(7);
  for (int i = 0; i < 100; ++i) {
    REQUIRE(d.uniform() == e.uniform());
    REQUIRE(d.normal() == e.normal());
  }
}

TEST_CASE("NormalRng::uniform stays strictly inside (0, 1)", "[core]") {
  NormalRng rng(3);
  double lo = 1, hi = 0, sum = 0;
  const int n = 100000;
  for (int i = 0; i < n; ++i) {
    const double u = rng.uniform();
    lo = std::min(lo, u);
    hi = std::max(hi, u);
    sum += u;
  }
  REQUIRE(lo > 0.0);
  REQUIRE(hi < 1.0);  // log(uniform()) in Box-Muller must never see 0
  // Mean 1/2, standard deviation sqrt(1/12); the sample mean's standard error is that over sqrt(n).
  const double se = std::sqrt(1.0 / 12.0 / n);
  REQUIRE(std::abs(sum / n - 0.5) < 5 * se);
}

TEST_CASE("NormalRng::normal has mean 0 and variance 1", "[core]") {
  const int n = 100000;
  for (std::uint64_t seed : {1u, 2024u}) {
    NormalRng rng(seed);
    double sum = 0, sum_sq = 0, sum_4 = 0;
    std::vector<double> x(n);
    int non_finite = 0;
    for (double& v : x) {
      v = rng.normal();
      non_finite += !std::isfinite(v);
      sum += v;
    }
    REQUIRE(non_finite == 0);
    const double mean = sum / n;
    for (double v : x) {
      sum_sq += (v - mean) * (v - mean);
      sum_4 += (v - mean) * (v - mean) * (v - mean) * (v - mean);
    }
    const double var = sum_sq / (n - 1);
    INFO("seed " << seed << ": mean " << mean << ", variance " << var << ", kurtosis " << sum_4 / n / (var * var));
    // Standard errors for N(0, 1): mean 1/sqrt(n), sample variance sqrt(2/(n-1)), fourth moment sqrt(96/n).
    // Five standard errors: loose enough never to flag a correct generator on some seed, tight enough to
    // catch a wrong scale, a shift, or a uniform posing as a normal (kurtosis 1.8 instead of 3).
    REQUIRE(std::abs(mean) < 5.0 / std::sqrt(double(n)));
    REQUIRE(std::abs(var - 1.0) < 5.0 * std::sqrt(2.0 / (n - 1)));
    REQUIRE(std::abs(sum_4 / n - 3.0) < 5.0 * std::sqrt(96.0 / n));
  }
}
