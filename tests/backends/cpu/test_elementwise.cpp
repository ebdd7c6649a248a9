// CPU backend elementwise kernels against the reference backend, at the ISA level this run was given
// (FROSTER_ISA, see support/catch_main_isa.cpp), over sizes around every vector width and strided layouts.

#include <catch2/catch.hpp>
#include <froster/cpu.hpp>

#include <limits>

#include "support/layouts.hpp"
#include "support/tolerance.hpp"

using namespace froster;
using froster::test::LaidOut;
using froster::test::Layout;
namespace tol = froster::test::tol;

namespace {
const ReferenceBackend reference_backend;
const index_t odd_sizes[] = {1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 197};
}  // namespace

TEST_CASE("activations forward and backward match the reference", "[cpu][elementwise]") {
  const CpuBackend cpu_backend({.threads = 2});
  INFO("isa " << cpu::to_string(cpu_backend.isa()));
  const auto layout = GENERATE(Layout::row_major, Layout::padded_rows, Layout::reversed_rows, Layout::column_major);
  const Activation act = GENERATE(Activation::gelu, Activation::quick_gelu);
  for (index_t cols : odd_sizes) {
    const index_t rows = cols % 5 + 1;
    CAPTURE(rows, cols, to_string(layout));
    LaidOut<float> x(rows, cols, layout, 1 + std::uint64_t(cols), 3.0);
    LaidOut<float> dy(rows, cols, layout, 2 + std::uint64_t(cols));
    LaidOut<float> got(rows, cols, layout, 3), want(rows, cols, layout, 3);
    cpu_backend.activation_forward(act, ConstView<float>(x.view), got.view);
    reference_backend.activation_forward(act, ConstView<float>(x.view), want.view);
    FROSTER_REQUIRE_CLOSE(got.view, want.view, tol::cross_backend_fp32(1));
    cpu_backend.activation_backward(act, ConstView<float>(x.view), ConstView<float>(dy.view), got.view);
    reference_backend.activation_backward(act, ConstView<float>(x.view), ConstView<float>(dy.view), want.view);
    FROSTER_REQUIRE_CLOSE(got.view, want.view, tol::cross_backend_fp32(1));
  }
}

TEST_CASE("axpby matches the reference, and beta = 0 overwrites", "[cpu][elementwise]") {
  const CpuBackend cpu_backend({.threads = 2});
  for (index_t cols : odd_sizes) {
    CAPTURE(cols);
    LaidOut<float> x(4, cols, Layout::padded_rows, 5);
    for (float beta : {0.0f, 1.0f, -0.5f}) {
      LaidOut<float> got(4, cols, Layout::padded_rows, 6), want(4, cols, Layout::padded_rows, 6);
      got.view(0, 0) = want.view(0, 0) = std::numeric_limits<float>::quiet_NaN();
      cpu_backend.axpby(0.25f, ConstView<float>(x.view), beta, got.view);
      reference_backend.axpby(0.25f, ConstView<float>(x.view), beta, want.view);
      FROSTER_REQUIRE_CLOSE(got.view, want.view, tol::cross_backend_fp32(1));
    }
  }
}

TEST_CASE("results do not depend on the thread count", "[cpu][threads]") {
  LaidOut<float> x(37, 197, Layout::row_major, 7, 3.0);
  auto one = Tensor<float>::host({37, 197}), many = Tensor<float>::host({37, 197});
  CpuBackend({.threads = 1}).activation_forward(Activation::gelu, ConstView<float>(x.view), one.view());
  CpuBackend({.threads = 3}).activation_forward(Activation::gelu, ConstView<float>(x.view), many.view());
  REQUIRE(std::memcmp(one.data(), many.data(), sizeof(float) * 37 * 197) == 0);
}

TEST_CASE("FROSTER_ISA names are validated", "[cpu][isa]") {
  REQUIRE_THROWS_WITH(cpu::resolve_isa("sse9"), Catch::Matchers::Contains("one of scalar, avx2, avx512"));
  REQUIRE(cpu::resolve_isa("scalar") == cpu::Isa::scalar);
  if (cpu::detect_isa() != cpu::Isa::avx512)
    REQUIRE_THROWS_WITH(cpu::resolve_isa("avx512"), Catch::Matchers::Contains("this CPU supports up to"));
}
