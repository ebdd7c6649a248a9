// CpuBackend::cosine_distillation_step (froster/backends/fused_distillation.hpp: normalisation, residual projector
// and cosine loss fused, forward and backward) at the ISA level this run was given (support/catch_main_isa.cpp):
// bitwise the composition FeatureDistiller runs on the same backend (rows 1, 3, 17, 197; widths not multiples of
// the vector width; hidden != dim; several k blocks; weight 1 and 2; padded rows), within fp32 tolerance of the
// reference backend, independent of the thread count; the cases it declines (too few register tiles of rows per
// thread, column-major features) run the composition; every output is left untouched when it rejects its inputs or
// the loss is not finite. Most cases lower the step's rows-per-thread threshold (min_tiles_per_thread) so that the
// fused path runs with few rows on several threads.

#include <catch2/catch.hpp>
#include <froster/cpu.hpp>
#include <froster/froster.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#include "support/layouts.hpp"
#include "support/random.hpp"
#include "support/scoped_value.hpp"
#include "support/tolerance.hpp"

using namespace froster;
using froster::test::LaidOut;
using froster::test::Layout;
using froster::test::converted;
using froster::test::random_tensor;
namespace tol = froster::test::tol;
using froster::test::ScopedValue;

namespace {

static_assert(HasFusedCosineDistillation<CpuBackend, float>);
static_assert(!HasFusedCosineDistillation<ReferenceBackend, float>);

bool bitwise_equal(ConstView<float> a, ConstView<float> b) {
  if (a.extents() != b.extents()) return false;
  for (index_t i = 0; i < a.rows(); ++i)
    if (std::memcmp(&a(i, 0), &b(i, 0), std::size_t(a.cols()) * sizeof(float)) != 0) return false;
  return true;
}

/// A distiller with W1 from `seed` and a non-zero W2 (trained, not the identity start), so every path carries
/// signal.
template <class B>
FeatureDistiller<B> make_distiller(B& backend, index_t dim, index_t hidden, double weight, bool fused) {
  FeatureDistiller<B> distiller(backend, {.dim = dim, .hidden = hidden, .seed = 7, .weight = weight, .fused = fused});
  const index_t h = distiller.projector().config().hidden;
  const Tensor<float> w2 = random_tensor<float>({dim, h}, 11, 0.2);
  const Tensor<float> w1 = converted<float>(distiller.projector().w1());  // load copies from a separate buffer
  distiller.projector().load(w1.cview(), w2.cview());
  return distiller;
}

struct StepResult {
  double loss;
  Tensor<float> d_student, grad_w1, grad_w2;
};

/// One step (twice, so the gradients accumulate) on `backend`; student and teacher laid out as `layout`.
template <class B>
StepResult run_step(B& backend, index_t rows, index_t dim, index_t hidden, double weight, bool fused,
                    Layout layout = Layout::row_major) {
  FeatureDistiller<B> distiller = make_distiller(backend, dim, hidden, weight, fused);
  const LaidOut<float> student(rows, dim, layout, 1), teacher(rows, dim, layout, 2);
  StepResult r{0.0, Tensor<float>::host({rows, dim}), {}, {}};
  distiller.step(student.view, teacher.view, r.d_student.view());
  r.loss = distiller.step(student.view, teacher.view, r.d_student.view());
  r.grad_w1 = converted<float>(distiller.projector().grad_w1());
  r.grad_w2 = converted<float>(distiller.projector().grad_w2());
  return r;
}

/// The fused step taken down to one register tile of rows per thread, for the rest of the scope.
struct FusedWithFewRows {
  ScopedValue<index_t> threshold{cpu::distill_detail::min_tiles_per_thread, index_t(1)};
};

/// Rows of the GEMM micro-kernel's register tile at the backend's ISA level (the fused step's row unit).
index_t gemm_rows(const CpuBackend& cpu) {
  index_t mr = 0;
  cpu::dispatch(cpu.isa(), [&](auto tag) { mr = gemm_blocking(tag).mr; });
  return mr;
}

/// Whether the backend's fused step takes these operands (rather than leaving them to the composition).
bool fused_step_taken(CpuBackend& cpu, index_t rows, index_t dim, index_t hidden, Layout layout) {
  const index_t h = hidden == 0 ? dim : hidden;
  const LaidOut<float> student(rows, dim, layout, 1), teacher(rows, dim, layout, 2);
  const Tensor<float> w1 = random_tensor<float>({h, dim}, 3), w2 = random_tensor<float>({dim, h}, 4);
  LaidOut<float> d_student(rows, dim, layout, 5);
  Tensor<float> g1 = Tensor<float>::host({h, dim}), g2 = Tensor<float>::host({dim, h});
  return cpu
      .cosine_distillation_step(CosineDistillationStep<float>{.student = student.view, .teacher = teacher.view,
                                                              .w1 = w1.cview(), .w2 = w2.cview(),
                                                              .d_student = d_student.view, .grad_w1 = g1.view(),
                                                              .grad_w2 = g2.view()})
      .has_value();
}

void require_identical(const StepResult& a, const StepResult& b) {
  REQUIRE(a.loss == b.loss);
  REQUIRE(bitwise_equal(a.d_student.cview(), b.d_student.cview()));
  REQUIRE(bitwise_equal(a.grad_w1.cview(), b.grad_w1.cview()));
  REQUIRE(bitwise_equal(a.grad_w2.cview(), b.grad_w2.cview()));
}

}  // namespace

TEST_CASE("the fused distillation step is bitwise the composition on the CPU backend", "[cpu][distill]") {
  const FusedWithFewRows few_rows;
  const int threads = GENERATE(1, 2);
  CpuBackend cpu({.threads = threads});
  const index_t rows = GENERATE(1, 3, 17, 197);
  const index_t dim = GENERATE(3, 17, 64);
  const index_t hidden = GENERATE(0, 5, 40);
  const double weight = GENERATE(1.0, 2.0);
  const Layout layout = GENERATE(Layout::row_major, Layout::padded_rows);
  CAPTURE(threads, rows, dim, hidden, weight, froster::test::to_string(layout));
  // Taken where every thread gets a register tile of rows.
  const index_t tiles = (rows + gemm_rows(cpu) - 1) / gemm_rows(cpu);
  REQUIRE(fused_step_taken(cpu, rows, dim, hidden, layout) == (tiles >= threads));
  const StepResult fused = run_step(cpu, rows, dim, hidden, weight, true, layout);
  const StepResult composed = run_step(cpu, rows, dim, hidden, weight, false, layout);
  require_identical(fused, composed);
}

TEST_CASE("the fused distillation step is bitwise the composition across several k blocks", "[cpu][distill]") {
  const FusedWithFewRows few_rows;
  CpuBackend cpu({.threads = 2});
  // dim and hidden above the GEMM's k block (192 or 256 steps): the products run more than one k block per row block.
  const auto [dim, hidden] = GENERATE(std::pair<index_t, index_t>{300, 260}, std::pair<index_t, index_t>{257, 513});
  const index_t rows = GENERATE(13, 70);
  CAPTURE(rows, dim, hidden);
  REQUIRE(fused_step_taken(cpu, rows, dim, hidden, Layout::row_major));
  require_identical(run_step(cpu, rows, dim, hidden, 2.0, true), run_step(cpu, rows, dim, hidden, 2.0, false));
}

TEST_CASE("the fused distillation step matches the reference backend", "[cpu][distill]") {
  const FusedWithFewRows few_rows;
  CpuBackend cpu({.threads = 2});
  ReferenceBackend reference;
  const index_t rows = GENERATE(3, 197);
  const index_t dim = GENERATE(17, 64);
  CAPTURE(rows, dim);
  const StepResult got = run_step(cpu, rows, dim, 48, 2.0, true);
  const StepResult want = run_step(reference, rows, dim, 48, 2.0, true);
  REQUIRE(std::abs(got.loss - want.loss) <= 1e-5 * std::abs(want.loss));
  // Each gradient is a chain of reductions over dim and hidden (and, for the weights, over rows).
  const froster::test::Tolerance chain = tol::cross_backend_fp32(4 * (dim + 48) + rows);
  FROSTER_REQUIRE_CLOSE(got.d_student.cview(), want.d_student.cview(), chain);
  FROSTER_REQUIRE_CLOSE(got.grad_w1.cview(), want.grad_w1.cview(), chain);
  FROSTER_REQUIRE_CLOSE(got.grad_w2.cview(), want.grad_w2.cview(), chain);
}

TEST_CASE("the fused distillation step does not depend on the thread count", "[cpu][distill][threads]") {
  const FusedWithFewRows few_rows;
  CpuBackend one({.threads = 1}), three({.threads = 3});
  const index_t rows = GENERATE(37, 197);
  REQUIRE(fused_step_taken(three, rows, 64, 40, Layout::row_major));
  const StepResult a = run_step(one, rows, 64, 40, 2.0, true);
  const StepResult b = run_step(three, rows, 64, 40, 2.0, true);
  require_identical(a, b);
}

TEST_CASE("the fused distillation step declines what it does not take, and the composition runs",
          "[cpu][distill]") {
  SECTION("fewer register tiles of rows per thread than min_tiles_per_thread, weights whose columns split evenly") {
    // There the composition's GEMMs split the weights' columns over the threads, which ran faster. 256 columns are
    // two or more whole groups of B panels at every ISA level; 8 are one, which two threads cannot share.
    CpuBackend two({.threads = 2});
    // enough: min_tiles_per_thread tiles for each thread; fewer: one tile less for each (23 tiles would still give
    // one of the threads min_tiles_per_thread).
    const index_t enough = 2 * cpu::distill_detail::min_tiles_per_thread * gemm_rows(two);
    const index_t fewer = enough - 2 * gemm_rows(two);
    REQUIRE(fused_step_taken(two, enough, 256, 256, Layout::row_major));
    REQUIRE_FALSE(fused_step_taken(two, fewer, 256, 256, Layout::row_major));
    REQUIRE(fused_step_taken(two, fewer, 256, 8, Layout::row_major));
    CpuBackend one({.threads = 1});
    REQUIRE(fused_step_taken(one, fewer, 256, 256, Layout::row_major));
    require_identical(run_step(two, fewer, 256, 256, 2.0, true), run_step(one, fewer, 256, 256, 2.0, true));
  }
  SECTION("fewer register tiles of rows than threads") {
    const FusedWithFewRows few_rows;
    CpuBackend three({.threads = 3});
    const index_t rows = 2 * gemm_rows(three);
    REQUIRE_FALSE(fused_step_taken(three, rows, 16, 8, Layout::row_major));
    CpuBackend one({.threads = 1});
    REQUIRE(fused_step_taken(one, rows, 16, 8, Layout::row_major));
    require_identical(run_step(three, rows, 16, 8, 2.0, true), run_step(one, rows, 16, 8, 2.0, true));
  }
  SECTION("column-major features") {
    CpuBackend cpu({.threads = 2});
    REQUIRE_FALSE(fused_step_taken(cpu, 40, 16, 8, Layout::column_major));
    // The composition then runs some ops in the reference loops: the same values within fp32 tolerance.
    const StepResult got = run_step(cpu, 40, 16, 8, 2.0, true, Layout::column_major);
    const StepResult want = run_step(cpu, 40, 16, 8, 2.0, true, Layout::row_major);
    REQUIRE(std::abs(got.loss - want.loss) <= 1e-5 * std::abs(want.loss));
    const froster::test::Tolerance chain = tol::cross_backend_fp32(4 * (16 + 8) + 40);
    FROSTER_REQUIRE_CLOSE(got.d_student.cview(), want.d_student.cview(), chain);
    FROSTER_REQUIRE_CLOSE(got.grad_w1.cview(), want.grad_w1.cview(), chain);
    FROSTER_REQUIRE_CLOSE(got.grad_w2.cview(), want.grad_w2.cview(), chain);
  }
}

TEST_CASE("the fused distillation step leaves its outputs untouched when it rejects a step", "[cpu][distill][errors]") {
  const FusedWithFewRows few_rows;
  CpuBackend cpu({.threads = 2});
  const index_t rows = 30, dim = 8, hidden = 5;  // enough register tiles of rows for both threads
  const Tensor<float> student = random_tensor<float>({rows, dim}, 1), teacher = random_tensor<float>({rows, dim}, 2);
  const Tensor<float> w1 = random_tensor<float>({hidden, dim}, 3), w2 = random_tensor<float>({dim, hidden}, 4);
  Tensor<float> d_student = random_tensor<float>({rows, dim}, 5);
  Tensor<float> grad_w1 = random_tensor<float>({hidden, dim}, 6), grad_w2 = random_tensor<float>({dim, hidden}, 7);
  const Tensor<float> d_before = random_tensor<float>({rows, dim}, 5), g1_before = random_tensor<float>({hidden, dim}, 6),
                      g2_before = random_tensor<float>({dim, hidden}, 7);
  const auto untouched = [&] {
    REQUIRE(bitwise_equal(d_student.cview(), d_before.cview()));
    REQUIRE(bitwise_equal(grad_w1.cview(), g1_before.cview()));
    REQUIRE(bitwise_equal(grad_w2.cview(), g2_before.cview()));
  };
  CosineDistillationStep<float> step{.student = student.cview(), .teacher = teacher.cview(), .w1 = w1.cview(),
                                     .w2 = w2.cview(), .d_student = d_student.view(), .grad_w1 = grad_w1.view(),
                                     .grad_w2 = grad_w2.view()};

  SECTION("w2 of the wrong shape") {
    const Tensor<float> bad = random_tensor<float>({dim, hidden + 1}, 8);
    step.w2 = bad.cview();
    REQUIRE_THROWS_WITH(cpu.cosine_distillation_step(step), Catch::Contains("w2"));
    untouched();
  }
  SECTION("d_student overlapping the student") {
    Tensor<float> both = random_tensor<float>({rows, dim}, 9);
    const Tensor<float> both_before = random_tensor<float>({rows, dim}, 9);
    step.student = both.cview();
    step.d_student = both.view();
    REQUIRE_THROWS_WITH(cpu.cosine_distillation_step(step), Catch::Contains("must not overlap"));
    REQUIRE(bitwise_equal(both.cview(), both_before.cview()));
    untouched();
  }
  SECTION("a non-finite loss: returned, nothing written") {
    Tensor<float> nan_student = random_tensor<float>({rows, dim}, 1);
    nan_student.data()[3] = std::numeric_limits<float>::quiet_NaN();
    step.student = nan_student.cview();
    const std::optional<double> loss = cpu.cosine_distillation_step(step);
    REQUIRE(loss.has_value());
    REQUIRE(std::isnan(*loss));
    untouched();
  }
  SECTION("through FeatureDistiller: NumericError, nothing written") {
    FeatureDistiller<CpuBackend> distiller(cpu, {.dim = dim, .hidden = hidden});
    Tensor<float> zero_teacher = Tensor<float>::host({rows, dim});
    cpu.fill(zero_teacher.view(), 0.0f);  // normalising a zero row gives NaN, as in PyTorch
    REQUIRE_THROWS_AS(distiller.step(student.cview(), zero_teacher.cview(), d_student.view()), NumericError);
    untouched();
    for (const ConstView<float>& grad : {distiller.projector().grad_w1(), distiller.projector().grad_w2()})
      for (index_t i = 0; i < grad.numel(); ++i) REQUIRE(grad.data()[i] == 0.0f);
  }
}

TEST_CASE("the fused distillation step in double is declined and composed", "[cpu][distill]") {
  CpuBackend cpu({.threads = 2});
  const Tensor<double> student = random_tensor<double>({4, 6}, 1), teacher = random_tensor<double>({4, 6}, 2);
  const Tensor<double> w1 = random_tensor<double>({5, 6}, 3), w2 = random_tensor<double>({6, 5}, 4);
  Tensor<double> d_student = Tensor<double>::host({4, 6}), g1 = Tensor<double>::host({5, 6}),
                 g2 = Tensor<double>::host({6, 5});
  REQUIRE_FALSE(cpu.cosine_distillation_step(CosineDistillationStep<double>{
                       .student = student.cview(), .teacher = teacher.cview(), .w1 = w1.cview(), .w2 = w2.cview(),
                       .d_student = d_student.view(), .grad_w1 = g1.view(), .grad_w2 = g2.view()})
                    .has_value());
}

TEST_CASE("FeatureDistiller composes the step when d_student is the student itself", "[cpu][distill]") {
  CpuBackend cpu({.threads = 2});
  const index_t rows = 17, dim = 24;
  const Tensor<float> student = random_tensor<float>({rows, dim}, 1), teacher = random_tensor<float>({rows, dim}, 2);
  FeatureDistiller<CpuBackend> separate = make_distiller(cpu, dim, 16, 2.0, true);
  FeatureDistiller<CpuBackend> in_place = make_distiller(cpu, dim, 16, 2.0, true);
  Tensor<float> d_student = Tensor<float>::host({rows, dim});
  const double want = separate.step(student.cview(), teacher.cview(), d_student.view());
  Tensor<float> both = random_tensor<float>({rows, dim}, 1);  // the student's values, overwritten by d_student
  const double got = in_place.step(both.cview(), teacher.cview(), both.view());
  REQUIRE(got == want);
  REQUIRE(bitwise_equal(both.cview(), d_student.cview()));
  REQUIRE(bitwise_equal(in_place.projector().grad_w1(), separate.projector().grad_w1()));
  REQUIRE(bitwise_equal(in_place.projector().grad_w2(), separate.projector().grad_w2()));
}
