// Distillation step benchmark: ResidualProjector (D = H = 512) followed by CosineDistillationLoss, over N rows
// (N = batch x frames), per backend, float32. See README.md for what each case measures and the results.
//
//   distill/<backend>/forward/N           projector forward + loss value
//   distill/<backend>/forward_backward/N  forward + loss with d_projected + projector backward (dz, dW1, dW2)
//   distill/cpu/step{,_composed}/N        FeatureDistiller::step as FROSTER runs it (student and teacher
//                                         normalised, cosine, weight 2): the CPU backend's fused step (which
//                                         leaves few rows per thread, e.g. N = 64 on 2 threads, to the
//                                         composition), and the composition of its ops (`fused = false`)
//
// <backend> is `reference`, `eigen`, or `eigen_composition`: the same math written directly with Eigen matrices,
// the baseline that shows what froster's Eigen backend costs over hand-written Eigen.

#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <string>
#include <type_traits>
#include <unsupported/Eigen/SpecialFunctions>

#include "bench_options.hpp"
#include "froster/cpu.hpp"
#include "froster/eigen.hpp"
#include "froster/froster.hpp"

namespace {

using froster::index_t;
using froster::Tensor;

constexpr index_t kDim = 512;
constexpr index_t kHidden = 512;
constexpr double kAlpha = 0.1;
constexpr float kEps = 1e-8f;

/// The benchmark's data, shared by every backend so they all do the same arithmetic on the same values.
struct Inputs {
  Tensor<float> z, teacher, w1, w2;
};

Tensor<float> normal_tensor(froster::Dims extents, double std_dev, std::uint64_t seed) {
  Tensor<float> t = Tensor<float>::host(extents);
  froster::NormalRng rng(seed);
  for (index_t i = 0; i < t.numel(); ++i) t.data()[i] = float(std_dev * rng.normal());
  return t;
}

Inputs make_inputs(index_t n) {
  // W2 is non-zero (as after some training) so the output is not just z; GEMM cost does not depend on values.
  return {normal_tensor({n, kDim}, 1.0, 1), normal_tensor({n, kDim}, 1.0, 2),
          normal_tensor({kHidden, kDim}, std::sqrt(2.0 / double(kDim)), 3),
          normal_tensor({kDim, kHidden}, 0.02, 4)};
}

froster::ResidualProjectorConfig projector_config() { return {kDim, kHidden, kAlpha, 0}; }

/// Floating-point operations of one projector forward over `n` rows, from the projector's own accounting.
double forward_flops(index_t n) {
  froster::ReferenceBackend backend;
  return froster::ResidualProjector<froster::ReferenceBackend>(backend, projector_config()).forward_flops(n);
}

/// rows/s and GFLOP/s over real time (Eigen's GEMM runs on several OpenMP threads, so CPU time would mislead).
void set_counters(benchmark::State& state, index_t n, double flops_per_iteration) {
  state.counters["rows/s"] = benchmark::Counter(double(n), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops_per_iteration * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// --- froster backends --------------------------------------------------------------------------------------------

/// The backend of a case: CpuBackend on the benchmarks' thread count (bench_options.hpp), the others as built.
template <class B>
B make_backend() {
  if constexpr (std::is_same_v<B, froster::CpuBackend>) return B({.threads = froster::bench::threads()});
  else return B{};
}

template <class B>
void bench_forward(benchmark::State& state) {
  const index_t n = state.range(0);
  B backend = make_backend<B>();
  const Inputs in = make_inputs(n);
  froster::ResidualProjector<B> projector(backend, projector_config());
  projector.load(in.w1.cview(), in.w2.cview());
  froster::CosineDistillationLoss<B> loss(backend);
  for (auto _ : state) {
    const auto projected = projector.forward(in.z.cview());
    double value = loss.compute(projected, in.teacher.cview());
    benchmark::DoNotOptimize(value);
  }
  set_counters(state, n, projector.forward_flops(n));
}

template <class B>
void bench_forward_backward(benchmark::State& state) {
  const index_t n = state.range(0);
  B backend = make_backend<B>();
  const Inputs in = make_inputs(n);
  froster::ResidualProjector<B> projector(backend, projector_config());
  projector.load(in.w1.cview(), in.w2.cview());
  froster::CosineDistillationLoss<B> loss(backend);
  Tensor<float> d_projected = Tensor<float>::host({n, kDim});
  Tensor<float> dz = Tensor<float>::host({n, kDim});
  for (auto _ : state) {
    const auto projected = projector.forward(in.z.cview());
    double value = loss.compute(projected, in.teacher.cview(), d_projected.view());
    projector.backward(d_projected.cview(), dz.view());  // accumulates dW1, dW2 as a training step would
    benchmark::DoNotOptimize(value);
    benchmark::DoNotOptimize(dz.data());
  }
  set_counters(state, n, 3 * projector.forward_flops(n));  // backward = 2x forward
}

/// FeatureDistiller::step on the CPU backend: FROSTER's configuration, fused or composed.
template <bool Fused>
void bench_cpu_step(benchmark::State& state) {
  const index_t n = state.range(0);
  froster::CpuBackend backend = make_backend<froster::CpuBackend>();
  const Inputs in = make_inputs(n);
  froster::FeatureDistiller<froster::CpuBackend> distiller(
      backend, {.dim = kDim, .hidden = kHidden, .alpha = kAlpha, .weight = 2.0, .fused = Fused});
  distiller.projector().load(in.w1.cview(), in.w2.cview());
  Tensor<float> dz = Tensor<float>::host({n, kDim});
  for (auto _ : state) {
    double value = distiller.step(in.z.cview(), in.teacher.cview(), dz.view());
    benchmark::DoNotOptimize(value);
    benchmark::DoNotOptimize(dz.data());
  }
  set_counters(state, n, 3 * distiller.projector().forward_flops(n));
}

// --- eigen_composition: the same math in plain Eigen ------------------------------------------------------------

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Vector = Eigen::VectorXf;

RowMatrix to_eigen(const Tensor<float>& t) {
  return Eigen::Map<const RowMatrix>(t.data(), t.extents()[0], t.extents()[1]);
}

/// Hand-written Eigen of what ResidualProjector + CosineDistillationLoss compute, with the same buffers reused.
struct Composition {
  RowMatrix z, teacher, w1, w2, grad_w1, grad_w2;
  RowMatrix pre, hidden, out, d_out, d_pre, dz;
  Vector cos, norm_out, norm_teacher;

  explicit Composition(const Inputs& in)
      : z(to_eigen(in.z)), teacher(to_eigen(in.teacher)), w1(to_eigen(in.w1)), w2(to_eigen(in.w2)),
        grad_w1(RowMatrix::Zero(kHidden, kDim)), grad_w2(RowMatrix::Zero(kDim, kHidden)) {}

  double forward() {
    const float alpha = float(kAlpha);
    pre.noalias() = z * w1.transpose();
    hidden = 0.5f * pre.array() * (1.0f + (pre.array() * float(std::numbers::sqrt2 / 2)).erf());
    out = z;
    out.noalias() += alpha * hidden * w2.transpose();
    norm_out = out.rowwise().norm();
    norm_teacher = teacher.rowwise().norm();
    cos = out.cwiseProduct(teacher).rowwise().sum().array() /
          (norm_out.array().max(kEps) * norm_teacher.array().max(kEps));
    return 1.0 - cos.cast<double>().sum() / double(z.rows());
  }

  void backward() {
    const float alpha = float(kAlpha);
    const float scale = -1.0f / float(z.rows());
    // d loss / d out_i = scale (t_i / (|o_i| |t_i|) - cos_i o_i / |o_i|^2), with the eps clamps of the loss.
    const Vector clamped_out = norm_out.array().max(kEps);
    const Vector cross = scale / (clamped_out.array() * norm_teacher.array().max(kEps));
    const Vector self = scale * cos.array() / (norm_out.array() * clamped_out.array());
    d_out = cross.asDiagonal() * teacher;
    d_out -= self.asDiagonal() * out;
    grad_w2.noalias() += alpha * d_out.transpose() * hidden;
    d_pre.noalias() = alpha * d_out * w2;
    const float inv_sqrt_2pi = float(1 / std::sqrt(2 * std::numbers::pi));
    d_pre.array() *= 0.5f * (1.0f + (pre.array() * float(std::numbers::sqrt2 / 2)).erf()) +
                     pre.array() * inv_sqrt_2pi * (-0.5f * pre.array().square()).exp();
    grad_w1.noalias() += d_pre.transpose() * z;
    dz = d_out;
    dz.noalias() += d_pre * w1;
  }
};

void bench_composition_forward(benchmark::State& state) {
  const index_t n = state.range(0);
  Composition c(make_inputs(n));
  for (auto _ : state) {
    double value = c.forward();
    benchmark::DoNotOptimize(value);
  }
  set_counters(state, n, forward_flops(n));
}

void bench_composition_forward_backward(benchmark::State& state) {
  const index_t n = state.range(0);
  Composition c(make_inputs(n));
  for (auto _ : state) {
    double value = c.forward();
    c.backward();
    benchmark::DoNotOptimize(value);
    benchmark::DoNotOptimize(c.dz.data());
  }
  set_counters(state, n, 3 * forward_flops(n));
}

// --- registration ------------------------------------------------------------------------------------------------

constexpr index_t kRows[] = {64, 512, 4096};

/// Registers `name`/N for every N up to `max_rows`, timed in real time. Three repetitions, reported as
/// mean/median/stddev/cv, because the benchmark machine may be shared.
void register_case(const std::string& name, void (*fn)(benchmark::State&), bool slow, index_t max_rows = kRows[2]) {
  auto* b = benchmark::RegisterBenchmark(name.c_str(), fn)
                ->UseRealTime()
                ->Unit(benchmark::kMillisecond)
                ->Repetitions(3)
                ->ReportAggregatesOnly(true);
  if (slow) b->MinTime(0.1);
  froster::bench::apply_smoke_mode(b);
  for (const index_t n : kRows)
    if (n <= max_rows) b->Arg(n);
}

const bool registered = [] {
  Eigen::setNbThreads(froster::bench::threads());  // Eigen's GEMMs (eigen, eigen_composition) on the same count
  // The reference backend runs scalar double loops at ~1 GFLOP/s: one forward_backward over 4096 rows takes over
  // 10 s, so that case is left out, and the reference cases run as few iterations as 0.1 s allows.
  register_case("distill/reference/forward", bench_forward<froster::ReferenceBackend>, true);
  register_case("distill/reference/forward_backward", bench_forward_backward<froster::ReferenceBackend>, true, 512);
  register_case("distill/eigen/forward", bench_forward<froster::EigenBackend>, false);
  register_case("distill/eigen/forward_backward", bench_forward_backward<froster::EigenBackend>, false);
  register_case("distill/cpu/forward", bench_forward<froster::CpuBackend>, false);
  register_case("distill/cpu/forward_backward", bench_forward_backward<froster::CpuBackend>, false);
  register_case("distill/cpu/step", bench_cpu_step<true>, false);
  register_case("distill/cpu/step_composed", bench_cpu_step<false>, false);
  register_case("distill/eigen_composition/forward", bench_composition_forward, false);
  register_case("distill/eigen_composition/forward_backward", bench_composition_forward_backward, false);
  return true;
}();

}  // namespace

BENCHMARK_MAIN();
