// fused_gemm (froster/backends/fused.hpp) on backends without a fused member: the composition of the concept's ops
// against a direct computation from the definition, in double; argument errors (clear messages, outputs untouched);
// a user's backend with its own GEMM and no member; dispatch to a member where a backend has one; and a finite
// difference check of a residual MLP's input gradient written with the derivative and residual modes.

#include <catch2/catch.hpp>
#include <froster/froster.hpp>

#include <cmath>
#include <numbers>
#include <array>
#include <optional>

#include "support/gradcheck.hpp"
#include "support/random.hpp"
#include "support/tolerance.hpp"

using namespace froster;
using Catch::Matchers::Contains;
using froster::test::random_tensor;
namespace tol = froster::test::tol;

namespace {

const ReferenceBackend reference_backend;

double act_value(Activation act, double x) {
  if (act == Activation::gelu) return 0.5 * x * (1.0 + std::erf(x / std::numbers::sqrt2));
  return x / (1.0 + std::exp(-1.702 * x));
}

double act_derivative(Activation act, double x) {
  if (act == Activation::gelu)
    return 0.5 * (1.0 + std::erf(x / std::numbers::sqrt2)) + x * std::exp(-0.5 * x * x) / std::sqrt(2 * std::numbers::pi);
  const double s = 1.0 / (1.0 + std::exp(-1.702 * x));
  return s + 1.702 * x * s * (1.0 - s);
}

/// What fused_gemm must compute, element by element from its definition.
struct Expected {
  Tensor<double> c, pre;
};

Expected direct(double alpha, ConstView<double> a, Transpose ta, ConstView<double> b, Transpose tb,
                const LinearEpilogue<double>& epi) {
  const ConstView<double> oa = ta == Transpose::no ? a : a.transposed();
  const ConstView<double> ob = tb == Transpose::no ? b : b.transposed();
  const index_t m = oa.rows(), n = ob.cols(), k = oa.cols();
  Expected out{Tensor<double>::host({m, n}), Tensor<double>::host({m, n})};
  for (index_t i = 0; i < m; ++i)
    for (index_t j = 0; j < n; ++j) {
      double v = 0;
      for (index_t p = 0; p < k; ++p) v += oa(i, p) * ob(p, j);
      v *= alpha;
      if (!epi.bias.is_null()) v += epi.bias(j);
      if (!epi.residual.is_null()) v += epi.residual(i, j);  // computed before fused_gemm writes C
      out.pre.view()(i, j) = v;
      if (epi.activation && !epi.derivative_at.is_null()) v *= act_derivative(*epi.activation, epi.derivative_at(i, j));
      else if (epi.activation) v = act_value(*epi.activation, v);
      out.c.view()(i, j) = v;
    }
  return out;
}

/// A user's backend: its own GEMM (a plain loop), everything else inherited, no fused member.
struct LoopGemmBackend : ReferenceBackend {
  mutable int gemm_calls = 0;
  template <class T>
  void gemm(T alpha, ConstView<T> a, Transpose ta, ConstView<T> b, Transpose tb, T beta, TensorView<T> c) const {
    check::gemm("gemm", a, ta, b, tb, c);
    ++gemm_calls;
    const ConstView<T> oa = ta == Transpose::no ? a : a.transposed();
    const ConstView<T> ob = tb == Transpose::no ? b : b.transposed();
    for (index_t i = 0; i < c.rows(); ++i)
      for (index_t j = 0; j < c.cols(); ++j) {
        T s = 0;
        for (index_t p = 0; p < oa.cols(); ++p) s += oa(i, p) * ob(p, j);
        c(i, j) = alpha * s + (beta == T(0) ? T(0) : beta * c(i, j));
      }
  }
};

/// A backend with its own fused member: fused_gemm must call it.
struct MemberBackend : ReferenceBackend {
  mutable int fused_calls = 0;
  template <class T>
  void fused_gemm(T alpha, ConstView<T> a, Transpose ta, ConstView<T> b, Transpose tb, const LinearEpilogue<T>& epi,
                  TensorView<T> c) const {
    ++fused_calls;
    fused_gemm_composed(*this, alpha, a, ta, b, tb, epi, c);
  }
};

static_assert(Backend<LoopGemmBackend> && !HasFusedGemm<LoopGemmBackend, double>);
static_assert(!HasFusedGemm<ReferenceBackend, float>);
static_assert(HasFusedGemm<MemberBackend, float> && HasFusedGemm<MemberBackend, double>);

struct Case {
  const char* name;
  bool bias, residual, residual_in_place;
  std::optional<Activation> act;
  bool save_pre, derivative;
};

const Case cases[] = {
    {"plain", false, false, false, std::nullopt, false, false},
    {"bias", true, false, false, std::nullopt, false, false},
    {"residual", false, true, false, std::nullopt, false, false},
    {"residual in place", false, true, true, std::nullopt, false, false},
    {"bias + gelu, pre saved", true, false, false, Activation::gelu, true, false},
    {"bias + quick_gelu", true, false, false, Activation::quick_gelu, false, false},
    {"bias + residual + quick_gelu, pre saved", true, true, false, Activation::quick_gelu, true, false},
    {"gelu derivative", false, false, false, Activation::gelu, false, true},
    {"bias + residual + quick_gelu derivative", true, true, false, Activation::quick_gelu, false, true},
};

/// Runs fused_gemm on `backend` and compares with the direct computation.
template <class B>
void check_case(B& backend, const Case& cs, index_t m, index_t n, index_t k, Transpose ta, Transpose tb) {
  CAPTURE(cs.name, m, n, k, ta == Transpose::yes, tb == Transpose::yes);
  const double alpha = 0.75;
  const auto a = ta == Transpose::no ? random_tensor<double>({m, k}, 1) : random_tensor<double>({k, m}, 1);
  const auto b = tb == Transpose::no ? random_tensor<double>({k, n}, 2) : random_tensor<double>({n, k}, 2);
  const auto bias = random_tensor<double>({n}, 3);
  const auto residual = random_tensor<double>({m, n}, 4);
  const auto at = random_tensor<double>({m, n}, 5);
  auto c = random_tensor<double>({m, n}, 6);
  auto pre = random_tensor<double>({m, n}, 7);
  LinearEpilogue<double> epi{.activation = cs.act};
  if (cs.bias) epi.bias = bias.cview();
  if (cs.residual) epi.residual = cs.residual_in_place ? c.cview() : residual.cview();
  if (cs.save_pre) epi.save_pre = pre.view();
  if (cs.derivative) epi.derivative_at = at.cview();
  const Expected want = direct(alpha, a.cview(), ta, b.cview(), tb, epi);
  fused_gemm(backend, alpha, a.cview(), ta, b.cview(), tb, epi, c.view());
  FROSTER_REQUIRE_CLOSE(c.cview(), want.c.cview(), tol::same_math_fp64);
  if (cs.save_pre) FROSTER_REQUIRE_CLOSE(pre.cview(), want.pre.cview(), tol::same_math_fp64);
}

}  // namespace

TEST_CASE("fused_gemm composition matches the definition", "[fused]") {
  const auto ta = GENERATE(Transpose::no, Transpose::yes);
  const auto tb = GENERATE(Transpose::no, Transpose::yes);
  for (const Case& cs : cases)
    for (const auto [m, n, k] : {std::array<index_t, 3>{1, 1, 1}, {3, 5, 7}, {17, 13, 9}, {6, 4, 0}})
      check_case(reference_backend, cs, m, n, k, ta, tb);
}

TEST_CASE("fused_gemm runs on a user's backend without a fused member", "[fused][custom-backend]") {
  LoopGemmBackend loop;
  for (const Case& cs : cases) check_case(loop, cs, 7, 5, 6, Transpose::no, Transpose::yes);
  // The composition uses gemm for the product and a rank-1 gemm for the bias, nothing the user did not write.
  loop.gemm_calls = 0;
  check_case(loop, cases[1], 3, 4, 5, Transpose::no, Transpose::no);
  REQUIRE(loop.gemm_calls == 2);
}

TEST_CASE("fused_gemm calls a backend's own member", "[fused]") {
  MemberBackend member;
  check_case(member, cases[6], 5, 4, 3, Transpose::no, Transpose::yes);
  REQUIRE(member.fused_calls == 1);
}

TEST_CASE("fused_gemm rejects bad arguments before writing anything", "[fused][errors]") {
  const auto a = random_tensor<float>({4, 3}, 1), b = random_tensor<float>({3, 5}, 2);
  const auto bias = random_tensor<float>({5}, 3), residual = random_tensor<float>({4, 5}, 4);
  auto c = random_tensor<float>({4, 5}, 5), pre = random_tensor<float>({4, 5}, 6);
  const auto c_before = random_tensor<float>({4, 5}, 5), pre_before = random_tensor<float>({4, 5}, 6);
  const auto run = [&](const LinearEpilogue<float>& epi, TensorView<float> out = {}) {
    fused_gemm(reference_backend, 1.0f, a.cview(), Transpose::no, b.cview(), Transpose::no, epi,
               out.is_null() ? c.view() : out);
  };
  const auto wrong_bias = random_tensor<float>({4}, 8);
  const auto wrong_residual = random_tensor<float>({5, 4}, 9);
  REQUIRE_THROWS_WITH(run({.bias = wrong_bias.cview()}), Contains("fused_gemm: bias must be [5]") && Contains("[4]"));
  REQUIRE_THROWS_AS(run({.bias = wrong_bias.cview()}), ShapeError);
  REQUIRE_THROWS_WITH(run({.residual = wrong_residual.cview()}),
                      Contains("fused_gemm: residual must be [4, 5]") && Contains("[5, 4]"));
  REQUIRE_THROWS_WITH(run({.bias = bias.cview(), .save_pre = pre.view()}),
                      Contains("save_pre receives the activation's input, but no activation was given"));
  REQUIRE_THROWS_AS(run({.bias = bias.cview(), .save_pre = pre.view()}), ValueError);
  REQUIRE_THROWS_WITH(run({.derivative_at = residual.cview()}), Contains("derivative_at") && Contains("no activation"));
  REQUIRE_THROWS_WITH(run({.activation = Activation::gelu, .save_pre = pre.view(), .derivative_at = residual.cview()}),
                      Contains("exclude each other"));
  // Overlaps: an output over an input, the outputs over each other; a residual over part of C.
  REQUIRE_THROWS_WITH(run({.activation = Activation::gelu, .save_pre = c.view()}),
                      Contains("c must not overlap save_pre"));
  auto shifted = Tensor<float>::host({5, 5});
  const TensorView<float> c_in_shifted = shifted.view().slice_rows(0, 4), residual_shifted = shifted.view().slice_rows(1, 4);
  REQUIRE_THROWS_WITH(run({.residual = residual_shifted}, c_in_shifted), Contains("c must not overlap residual"));
  REQUIRE_THROWS_WITH(run({.activation = Activation::gelu, .derivative_at = c.cview()}),
                      Contains("c must not overlap derivative_at"));
  const TensorView<float> a_as_c(const_cast<float*>(a.data()), {4, 3});
  REQUIRE_THROWS_WITH(fused_gemm(reference_backend, 1.0f, a.cview(), Transpose::no,
                                 random_tensor<float>({3, 3}, 10).cview(), Transpose::no, {}, a_as_c),
                      Contains("c must not overlap A"));
  FROSTER_REQUIRE_CLOSE(c.cview(), c_before.cview(), tol::same_math_fp64);
  FROSTER_REQUIRE_CLOSE(pre.cview(), pre_before.cview(), tol::same_math_fp64);
}

TEST_CASE("fused_gemm's derivative and residual modes give a residual MLP's input gradient", "[fused][gradcheck]") {
  // y = x + alpha W2 act(W1 x + b1) per row; loss = <y, g>. Backward: d_pre = (alpha g W2) * act'(pre),
  // dx = g + d_pre W1, db1 = column sums of d_pre.
  const index_t rows = 4, dim = 5, hidden = 6;
  const double alpha = 0.7;
  const Activation act = GENERATE(Activation::gelu, Activation::quick_gelu);
  auto x = random_tensor<double>({rows, dim}, 1);
  auto b1 = random_tensor<double>({hidden}, 2);
  const auto w1 = random_tensor<double>({hidden, dim}, 3), w2 = random_tensor<double>({dim, hidden}, 4);
  const auto g = random_tensor<double>({rows, dim}, 5);
  auto pre = Tensor<double>::host({rows, hidden}), h = Tensor<double>::host({rows, hidden});
  auto y = Tensor<double>::host({rows, dim});
  const auto forward = [&] {
    fused_gemm(reference_backend, 1.0, x.cview(), Transpose::no, w1.cview(), Transpose::yes,
               {.bias = b1.cview(), .activation = act, .save_pre = pre.view()}, h.view());
    fused_gemm(reference_backend, alpha, h.cview(), Transpose::no, w2.cview(), Transpose::yes,
               {.residual = x.cview()}, y.view());
    return reference_backend.dot(y.cview(), g.cview());
  };
  forward();
  auto d_pre = Tensor<double>::host({rows, hidden}), dx = Tensor<double>::host({rows, dim});
  fused_gemm(reference_backend, alpha, g.cview(), Transpose::no, w2.cview(), Transpose::no,
             {.activation = act, .derivative_at = pre.cview()}, d_pre.view());
  fused_gemm(reference_backend, 1.0, d_pre.cview(), Transpose::no, w1.cview(), Transpose::no,
             {.residual = g.cview()}, dx.view());
  auto db1 = Tensor<double>::host({hidden});
  for (index_t j = 0; j < hidden; ++j) {
    db1.view()(j) = 0;
    for (index_t i = 0; i < rows; ++i) db1.view()(j) += d_pre.cview()(i, j);
  }
  FROSTER_REQUIRE_GRADIENT(froster::test::check_gradient(forward, x.view(), dx.cview()));
  FROSTER_REQUIRE_GRADIENT(froster::test::check_gradient(forward, b1.view(), db1.cview()));
}
