// CpuBackend::fused_gemm (the epilogue runs inside the SGEMM) against the composition of the concept's ops on the
// reference backend (froster/backends/fused.hpp), at the ISA level this run was given (support/catch_main_isa.cpp):
// M in {1, 3, 17, 197, 1576}, N and K not multiples of 8 or 16, every combination the projector and a CLIP linear
// layer use (bias, residual, residual in place, GELU / QuickGELU with the pre-activation saved, the derivative
// product), strided and reversed views, layouts the SIMD path declines (composition fallback), fp64, and
// independence from the thread count.

#include <catch2/catch.hpp>
#include <froster/cpu.hpp>
#include <froster/froster.hpp>

#include <algorithm>
#include <cstring>
#include <optional>

#include "support/layouts.hpp"
#include "support/random.hpp"
#include "support/scoped_value.hpp"
#include "support/tolerance.hpp"

using namespace froster;
using froster::test::LaidOut;
using froster::test::Layout;
using froster::test::random_tensor;
namespace tol = froster::test::tol;

namespace {

const ReferenceBackend reference_backend;

static_assert(HasFusedGemm<CpuBackend, float> && HasFusedGemm<CpuBackend, double>);

struct Case {
  const char* name;
  bool bias, residual, residual_in_place;
  std::optional<Activation> act;
  bool save_pre, derivative;
};

const Case cases[] = {
    {"bias", true, false, false, std::nullopt, false, false},
    {"residual", false, true, false, std::nullopt, false, false},
    {"residual in place", false, true, true, std::nullopt, false, false},
    {"bias + residual", true, true, false, std::nullopt, false, false},
    {"gelu, pre saved", false, false, false, Activation::gelu, true, false},
    {"bias + quick_gelu", true, false, false, Activation::quick_gelu, false, false},
    {"bias + quick_gelu, pre saved", true, false, false, Activation::quick_gelu, true, false},
    {"bias + residual + gelu, pre saved", true, true, false, Activation::gelu, true, false},
    {"gelu derivative", false, false, false, Activation::gelu, false, true},
    {"quick_gelu derivative + residual", false, true, false, Activation::quick_gelu, false, true},
};

/// The epilogue of case `cs` writing `c` (its residual, in place, is `c` itself) and `pre`; bias [1, n].
LinearEpilogue<float> epilogue_of(const Case& cs, const LaidOut<float>& bias, const LaidOut<float>& residual,
                                  const LaidOut<float>& at, const LaidOut<float>& c, LaidOut<float>& pre) {
  LinearEpilogue<float> epi{.activation = cs.act};
  if (cs.bias) epi.bias = ConstView<float>(bias.view.data(), {bias.view.cols()});
  if (cs.residual) epi.residual = cs.residual_in_place ? ConstView<float>(c.view) : ConstView<float>(residual.view);
  if (cs.save_pre) epi.save_pre = pre.view;
  if (cs.derivative) epi.derivative_at = at.view;
  return epi;
}

/// op(X) is [rows, cols]: X is stored [rows, cols], or [cols, rows] when transposed.
LaidOut<float> operand(index_t rows, index_t cols, Transpose t, Layout layout, std::uint64_t seed) {
  return t == Transpose::no ? LaidOut<float>(rows, cols, layout, seed) : LaidOut<float>(cols, rows, layout, seed);
}

/// fused_gemm on `cpu_backend` and the composition on the reference from the same inputs; C and save_pre compared.
void check_fused(const CpuBackend& cpu_backend, const Case& cs, index_t m, index_t n, index_t k, Transpose ta,
                 Transpose tb, Layout lc, Layout lx) {
  CAPTURE(cs.name, m, n, k, ta == Transpose::yes, tb == Transpose::yes, to_string(lc), to_string(lx));
  const float alpha = 0.625f;
  const LaidOut<float> a = operand(m, k, ta, Layout::row_major, 11), b = operand(k, n, tb, Layout::padded_rows, 12);
  const LaidOut<float> bias(1, n, Layout::row_major, 13), residual(m, n, lx, 14), at(m, n, lx, 15);
  LaidOut<float> got(m, n, lc, 16), want(m, n, lc, 16), got_pre(m, n, lx, 17), want_pre(m, n, lx, 17);
  const auto epilogue = [&](const LaidOut<float>& c, LaidOut<float>& pre) {
    return epilogue_of(cs, bias, residual, at, c, pre);
  };
  fused_gemm(cpu_backend, alpha, a.view, ta, b.view, tb, epilogue(got, got_pre), got.view);
  fused_gemm(reference_backend, alpha, a.view, ta, b.view, tb, epilogue(want, want_pre), want.view);
  // The residual and bias add O(1) terms to sums of k products: the tolerance of a k (+ 2) long reduction.
  FROSTER_REQUIRE_CLOSE(got.view, want.view, tol::cross_backend_fp32(k + 2));
  FROSTER_REQUIRE_CLOSE(got_pre.view, want_pre.view, tol::cross_backend_fp32(k + 2));
}

}  // namespace

TEST_CASE("fused_gemm matches the composition on the reference backend", "[cpu][fused]") {
  const CpuBackend cpu_backend({.threads = 2});
  INFO("isa " << cpu::to_string(cpu_backend.isa()));
  const index_t m = GENERATE(index_t(1), index_t(3), index_t(17), index_t(197), index_t(1576));
  // The projector's and a linear layer's transposes: x W^T (forward) and dY W (backward), and A^T B.
  const auto [ta, tb] = GENERATE(std::pair{Transpose::no, Transpose::yes}, std::pair{Transpose::no, Transpose::no},
                                 std::pair{Transpose::yes, Transpose::no});
  const index_t n = m == 1576 ? 37 : 101, k = m == 1576 ? 45 : 83;
  int variant = 0;
  for (const Case& cs : cases) {
    // C in every layout (column-major C runs through the GEMM's scratch tile), the epilogue's operands with
    // padded or reversed rows (the SIMD path) and column-major (declined: the composition of CpuBackend's ops).
    const Layout lc = std::array{Layout::row_major, Layout::padded_rows, Layout::column_major}[variant % 3];
    const Layout lx = std::array{Layout::padded_rows, Layout::reversed_rows, Layout::row_major,
                                 Layout::column_major}[variant % 4];
    ++variant;
    check_fused(cpu_backend, cs, m, n, k, ta, tb, lc, lx);
  }
}

TEST_CASE("fused_gemm with k = 0 and column counts around the register tile", "[cpu][fused]") {
  const CpuBackend cpu_backend({.threads = 2});
  for (const index_t n : {1, 7, 15, 16, 17, 31, 33})
    for (const Case& cs : cases) {
      check_fused(cpu_backend, cs, 9, n, 0, Transpose::no, Transpose::yes, Layout::row_major, Layout::padded_rows);
      check_fused(cpu_backend, cs, 13, n, 300, Transpose::no, Transpose::yes, Layout::row_major, Layout::row_major);
    }
}

TEST_CASE("fused_gemm in double composes CpuBackend's ops", "[cpu][fused]") {
  const CpuBackend cpu_backend({.threads = 2});
  const auto a = random_tensor<double>({19, 23}, 1), b = random_tensor<double>({29, 23}, 2);
  const auto bias = random_tensor<double>({29}, 3), residual = random_tensor<double>({19, 29}, 4);
  auto got = Tensor<double>::host({19, 29}), want = Tensor<double>::host({19, 29});
  auto got_pre = Tensor<double>::host({19, 29}), want_pre = Tensor<double>::host({19, 29});
  fused_gemm(cpu_backend, 0.5, a.cview(), Transpose::no, b.cview(), Transpose::yes,
             {.bias = bias.cview(), .residual = residual.cview(), .activation = Activation::gelu,
              .save_pre = got_pre.view()},
             got.view());
  fused_gemm(reference_backend, 0.5, a.cview(), Transpose::no, b.cview(), Transpose::yes,
             {.bias = bias.cview(), .residual = residual.cview(), .activation = Activation::gelu,
              .save_pre = want_pre.view()},
             want.view());
  FROSTER_REQUIRE_CLOSE(got.cview(), want.cview(), tol::same_math_fp64);
  FROSTER_REQUIRE_CLOSE(got_pre.cview(), want_pre.cview(), tol::same_math_fp64);
}

TEST_CASE("fused_gemm results do not depend on the thread count", "[cpu][fused][threads]") {
  const CpuBackend one({.threads = 1}), two({.threads = 2});
  const auto a = random_tensor<float>({197, 96}, 1), b = random_tensor<float>({77, 96}, 2);
  const auto bias = random_tensor<float>({77}, 3), residual = random_tensor<float>({197, 77}, 4);
  auto c1 = Tensor<float>::host({197, 77}), c2 = Tensor<float>::host({197, 77});
  auto p1 = Tensor<float>::host({197, 77}), p2 = Tensor<float>::host({197, 77});
  const auto run = [&](const CpuBackend& backend, Tensor<float>& c, Tensor<float>& pre) {
    fused_gemm(backend, 1.0f, a.cview(), Transpose::no, b.cview(), Transpose::yes,
               {.bias = bias.cview(), .residual = residual.cview(), .activation = Activation::quick_gelu,
                .save_pre = pre.view()},
               c.view());
  };
  run(one, c1, p1);
  run(two, c2, p2);
  REQUIRE(std::memcmp(c1.data(), c2.data(), sizeof(float) * 197 * 77) == 0);
  REQUIRE(std::memcmp(p1.data(), p2.data(), sizeof(float) * 197 * 77) == 0);
}

TEST_CASE("CpuBackend::fused_gemm checks its arguments before writing", "[cpu][fused][errors]") {
  const CpuBackend cpu_backend({.threads = 2});
  const auto a = random_tensor<float>({4, 3}, 1), b = random_tensor<float>({3, 5}, 2);
  const auto bias = random_tensor<float>({6}, 3);
  auto c = random_tensor<float>({4, 5}, 5);
  const auto c_before = random_tensor<float>({4, 5}, 5);
  REQUIRE_THROWS_WITH(cpu_backend.fused_gemm(1.0f, a.cview(), Transpose::no, b.cview(), Transpose::no,
                                             LinearEpilogue<float>{.bias = bias.cview()}, c.view()),
                      Catch::Matchers::Contains("fused_gemm: bias must be [5]"));
  FROSTER_REQUIRE_CLOSE(c.cview(), c_before.cview(), tol::same_math_fp64);
}

namespace {

static_assert(HasPackedGemm<CpuBackend, float> && !HasPackedGemm<CpuBackend, double>);
static_assert(!HasPackedGemm<ReferenceBackend, float>);

/// fused_gemm from `packed` (op(B) packed by `packer`) against the same call from the unpacked op(B): bitwise equal.
void check_packed(const CpuBackend& cpu_backend, const CpuBackend& packer, const Case& cs, index_t m, index_t n,
                  index_t k, Transpose tb, Layout lb, Layout lc) {
  CAPTURE(cs.name, m, n, k, tb == Transpose::yes, to_string(lb), to_string(lc), cpu::to_string(packer.isa()));
  const LaidOut<float> a = operand(m, k, Transpose::no, Layout::padded_rows, 31), b = operand(k, n, tb, lb, 32);
  const LaidOut<float> bias(1, n, Layout::row_major, 33), residual(m, n, Layout::padded_rows, 34);
  const LaidOut<float> at(m, n, Layout::row_major, 35);
  LaidOut<float> got(m, n, lc, 36), want(m, n, lc, 36), got_pre(m, n, Layout::row_major, 37),
      want_pre(m, n, Layout::row_major, 37);
  const auto epilogue = [&](const LaidOut<float>& c, LaidOut<float>& pre) {
    return epilogue_of(cs, bias, residual, at, c, pre);
  };
  const cpu::PackedGemmOperand packed = packer.pack_gemm_operand(b.view, tb);
  REQUIRE(packed.rows() == k);
  REQUIRE(packed.cols() == n);
  cpu_backend.fused_gemm(0.625f, a.view, Transpose::no, packed, epilogue(got, got_pre), got.view);
  cpu_backend.fused_gemm(0.625f, ConstView<float>(a.view), Transpose::no, ConstView<float>(b.view), tb,
                         epilogue(want, want_pre), want.view);
  // Not a tolerance: the same packed panels go through the same arithmetic.
  for (index_t i = 0; i < m; ++i)
    for (index_t j = 0; j < n; ++j) {
      CAPTURE(i, j);
      REQUIRE(std::memcmp(&got.view(i, j), &want.view(i, j), sizeof(float)) == 0);
      REQUIRE(std::memcmp(&got_pre.view(i, j), &want_pre.view(i, j), sizeof(float)) == 0);
    }
}

}  // namespace

TEST_CASE("fused_gemm from a pre-packed op(B) is bitwise the unpacked result", "[cpu][fused][packed]") {
  const CpuBackend cpu_backend({.threads = 2});
  INFO("isa " << cpu::to_string(cpu_backend.isa()));
  const index_t m = GENERATE(index_t(1), index_t(3), index_t(17), index_t(197));
  const Transpose tb = GENERATE(Transpose::yes, Transpose::no);
  int variant = 0;
  for (const Case& cs : cases) {
    // op(B) from every layout (the packing reads any strides); C row-major (the packed path) or column-major (the
    // GEMM's scratch tile; without an epilogue, the transposed product, which reads op(B) unpacked).
    const Layout lb = std::array{Layout::row_major, Layout::padded_rows, Layout::reversed_rows,
                                 Layout::column_major}[variant % 4];
    const Layout lc = variant % 3 == 2 ? Layout::column_major : Layout::row_major;
    ++variant;
    check_packed(cpu_backend, cpu_backend, cs, m, 101, 83, tb, lb, lc);
  }
  check_packed(cpu_backend, cpu_backend, cases[0], m, 33, 300, tb, Layout::row_major, Layout::row_major);
  // Packed at another level than the product's (scalar panels are narrower): the product packs op(B) itself.
  check_packed(cpu_backend, CpuBackend({.threads = 1, .isa = cpu::Isa::scalar}), cases[6], m, 101, 83, tb,
               Layout::row_major, Layout::row_major);
}

TEST_CASE("fused_gemm from a pre-packed op(B) in column chunks", "[cpu][fused][packed]") {
  const CpuBackend cpu_backend({.threads = 2});
  const Transpose tb = GENERATE(Transpose::no, Transpose::yes);
  const froster::test::ScopedValue budget(cpu::detail::gemm_chunk_budget, index_t(64 * (40 + 29)));  // a few panels
  check_packed(cpu_backend, cpu_backend, cases[6], 29, 301, 40, tb, Layout::padded_rows, Layout::row_major);
}

TEST_CASE("fused_gemm from a pre-packed op(B) reads the packed copy, not the source", "[cpu][fused][packed]") {
  const CpuBackend cpu_backend({.threads = 2});
  const auto a = random_tensor<float>({197, 64}, 1);
  auto w = random_tensor<float>({45, 64}, 2);
  auto before = Tensor<float>::host({197, 45}), after = Tensor<float>::host({197, 45});
  const cpu::PackedGemmOperand packed = cpu_backend.pack_gemm_operand(w.cview(), Transpose::yes);
  cpu_backend.fused_gemm(1.0f, a.cview(), Transpose::no, packed, {}, before.view());
  std::fill(w.data(), w.data() + w.numel(), 0.0f);  // the documented contract: the copy does not follow writes
  cpu_backend.fused_gemm(1.0f, a.cview(), Transpose::no, packed, {}, after.view());
  REQUIRE(std::memcmp(before.data(), after.data(), sizeof(float) * 197 * 45) == 0);
  REQUIRE(packed.bytes() >= sizeof(float) * 45 * 64);
}

TEST_CASE("fused_gemm from a pre-packed op(B) checks its arguments against the source",
          "[cpu][fused][packed][errors]") {
  const CpuBackend cpu_backend({.threads = 2});
  const auto a = random_tensor<float>({4, 3}, 1), w = random_tensor<float>({5, 3}, 2);
  auto c = random_tensor<float>({4, 6}, 5);
  const auto c_before = random_tensor<float>({4, 6}, 5);
  const cpu::PackedGemmOperand packed = cpu_backend.pack_gemm_operand(w.cview(), Transpose::yes);
  REQUIRE_THROWS_AS(cpu_backend.fused_gemm(1.0f, a.cview(), Transpose::no, packed, {}, c.view()), ShapeError);
  FROSTER_REQUIRE_CLOSE(c.cview(), c_before.cview(), tol::same_math_fp64);
}
