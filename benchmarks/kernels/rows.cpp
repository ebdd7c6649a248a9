// Row kernels at CLIP's shapes: LayerNorm, softmax and GELU/QuickGELU, forward and backward, froster's CpuBackend
// against a memcpy of the same bytes (the bandwidth bound of a kernel that reads and writes each element once) and,
// where the composition is natural, the same math written with Eigen arrays.
// Names: <op>/<impl>/<pass>/<rows>x<cols>[/causal|/quick], op in layernorm, softmax, gelu (/quick: QuickGELU);
// impl in froster, memcpy, eigen. See ROWS.md for how to build, run and read these, and for results.
//
// Every implementation runs on 2 threads (FROSTER_BENCH_THREADS=n changes that): CpuBackend({.threads = 2});
// memcpy splits its range over a 2-thread froster::cpu::ThreadPool; the Eigen compositions split rows over 2 OpenMP
// threads (Eigen does not thread coefficient-wise expressions itself).
//
// Counters: GB/s = (bytes read + bytes written) per second of real time, the same nominal count for every impl
// of a case (so ratios are ratios of times). memcpy copies half that many bytes (a copy reads and writes each).
//   layernorm forward  x, gamma, beta -> y, mean, rstd       2 R C + 2 C + 2 R floats
//   layernorm backward x, dy, gamma, mean, rstd -> dx; dgamma, dbeta read and written   3 R C + 5 C + 2 R
//   softmax forward    x -> y                                   2 R C
//   softmax backward   y, dy -> dx                              3 R C
//   (quick_)gelu forward x -> y: 2 R C; backward x, dy -> dx: 3 R C

// froster first: kernels.hpp includes <immintrin.h> with GCC 12's false -Wmaybe-uninitialized reports of the AVX-512
// intrinsics switched off, which only holds when it is the first to include it (Eigen includes it too).
#include "../bench_options.hpp"
#include <froster/core/random.hpp>
#include <froster/cpu.hpp>

#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <unsupported/Eigen/SpecialFunctions>

using namespace froster;

namespace {

const int kThreads = froster::bench::threads();

enum class Op { layernorm, softmax, softmax_causal, gelu, quick_gelu };
enum class Pass { forward, backward };
enum class Impl { froster, memcpy, eigen };

/// Names are <family>/<impl>/<pass>/<rows>x<cols><suffix>.
const char* family(Op op) {
  if (op == Op::layernorm) return "layernorm";
  return op == Op::softmax || op == Op::softmax_causal ? "softmax" : "gelu";
}
const char* suffix(Op op) { return op == Op::softmax_causal ? "/causal" : op == Op::quick_gelu ? "/quick" : ""; }
const char* name(Impl impl) { return impl == Impl::froster ? "froster" : impl == Impl::memcpy ? "memcpy" : "eigen"; }

Tensor<float> normal(Dims extents, std::uint64_t seed, double scale = 1.0) {
  auto t = Tensor<float>::host(extents);
  NormalRng rng(seed);
  for (index_t i = 0; i < t.numel(); ++i) t.data()[i] = float(scale * rng.normal());
  return t;
}

double nominal_floats(Op op, Pass pass, index_t r, index_t c) {
  const double rc = double(r) * double(c);
  if (op == Op::layernorm)
    return pass == Pass::forward ? 2 * rc + 2 * double(c) + 2 * double(r) : 3 * rc + 5 * double(c) + 2 * double(r);
  return pass == Pass::forward ? 2 * rc : 3 * rc;
}

using RowArray = Eigen::Array<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowVector = Eigen::Array<float, 1, Eigen::Dynamic>;

/// Rows [r0, r1) of `rows` for OpenMP thread t of kThreads (the same static split as the froster pool).
template <class F>
void eigen_rows(index_t rows, F&& f) {
#pragma omp parallel for num_threads(kThreads) schedule(static)
  for (int t = 0; t < kThreads; ++t) f(rows * t / kThreads, rows * (t + 1) / kThreads);
}

void bm_rows(benchmark::State& state, Op op, Pass pass, Impl impl, index_t r, index_t c) {
  const bool causal = op == Op::softmax_causal;
  const bool is_softmax = op == Op::softmax || causal;
  const float scale = is_softmax ? 0.125f : 1.0f;  // 1/sqrt(64): attention scores of 64-wide heads
  const float eps = 1e-5f;
  // Softmax's backward input is a real softmax output; the others take normal data.
  auto x = normal({r, c}, 1, is_softmax ? 8.0 : 1.0), dy = normal({r, c}, 2), out = normal({r, c}, 3);
  auto gamma = normal({c}, 4, 0.2), beta = normal({c}, 5, 0.1), dgamma = normal({c}, 6), dbeta = normal({c}, 7);
  auto mean = Tensor<float>::host({r}), rstd = Tensor<float>::host({r});
  const CpuBackend backend({.threads = kThreads});
  if (op == Op::layernorm)
    backend.layer_norm_forward(x.cview(), gamma.cview(), beta.cview(), eps, out.view(), mean.view(), rstd.view());
  if (is_softmax && pass == Pass::backward) backend.softmax_forward(x.cview(), scale, causal, x.view());
  const double bytes = 4 * nominal_floats(op, pass, r, c);
  // memcpy: half the bytes, read once and written once, split over the same kind of pool.
  cpu::ThreadPool pool(kThreads);
  const index_t copy_floats = index_t(bytes / 8);
  auto copy_src = Tensor<float>::host({copy_floats}), copy_dst = Tensor<float>::host({copy_floats});
  std::memset(copy_src.data(), 1, std::size_t(copy_floats) * 4);
  std::memset(copy_dst.data(), 0, std::size_t(copy_floats) * 4);

  Eigen::Map<const RowArray> X(x.data(), r, c), DY(dy.data(), r, c);
  Eigen::Map<RowArray> OUT(out.data(), r, c);
  Eigen::Map<const RowVector> G(gamma.data(), c), B(beta.data(), c);

  auto run = [&] {
    if (impl == Impl::memcpy) {
      pool.parallel_for(kThreads, [&](index_t t) {
        const index_t b = copy_floats * t / kThreads, e = copy_floats * (t + 1) / kThreads;
        std::memcpy(copy_dst.data() + b, copy_src.data() + b, std::size_t(e - b) * 4);
      });
      return;
    }
    if (impl == Impl::froster) {
      switch (op) {
        case Op::layernorm:
          if (pass == Pass::forward)
            backend.layer_norm_forward(x.cview(), gamma.cview(), beta.cview(), eps, out.view(), mean.view(),
                                       rstd.view());
          else
            backend.layer_norm_backward(x.cview(), gamma.cview(), mean.cview(), rstd.cview(), dy.cview(), out.view(),
                                        dgamma.view(), dbeta.view());
          return;
        case Op::softmax:
        case Op::softmax_causal:
          if (pass == Pass::forward) backend.softmax_forward(x.cview(), scale, causal, out.view());
          else backend.softmax_backward(x.cview(), dy.cview(), scale, out.view());
          return;
        case Op::gelu:
        case Op::quick_gelu: {
          const Activation act = op == Op::gelu ? Activation::gelu : Activation::quick_gelu;
          if (pass == Pass::forward) backend.activation_forward(act, x.cview(), out.view());
          else backend.activation_backward(act, x.cview(), dy.cview(), out.view());
          return;
        }
      }
    }
    // Eigen compositions (forward passes and softmax backward).
    switch (op) {
      case Op::layernorm:
        eigen_rows(r, [&](index_t r0, index_t r1) {
          for (index_t i = r0; i < r1; ++i) {
            const auto xi = X.row(i);
            const float m = xi.mean();
            const float inv = 1.0f / std::sqrt((xi - m).square().mean() + eps);
            OUT.row(i) = (xi - m) * inv * G + B;
          }
        });
        return;
      case Op::softmax:
      case Op::softmax_causal:
        eigen_rows(r, [&](index_t r0, index_t r1) {
          for (index_t i = r0; i < r1; ++i) {
            if (pass == Pass::backward) {
              const float dot = (X.row(i) * DY.row(i)).sum();
              OUT.row(i) = scale * X.row(i) * (DY.row(i) - dot);
              continue;
            }
            const index_t v = causal ? i % c + 1 : c;
            const auto s = X.row(i).head(v) * scale;
            const float m = s.maxCoeff();
            OUT.row(i).head(v) = (s - m).exp();
            OUT.row(i).head(v) /= OUT.row(i).head(v).sum();
            OUT.row(i).tail(c - v).setZero();
          }
        });
        return;
      case Op::gelu:
        eigen_rows(r, [&](index_t r0, index_t r1) {
          const auto xb = X.middleRows(r0, r1 - r0);
          OUT.middleRows(r0, r1 - r0) = 0.5f * xb * (1.0f + (xb * 0.70710678f).erf());
        });
        return;
      case Op::quick_gelu:
        eigen_rows(r, [&](index_t r0, index_t r1) {
          const auto xb = X.middleRows(r0, r1 - r0);
          OUT.middleRows(r0, r1 - r0) = xb / (1.0f + (-1.702f * xb).exp());
        });
        return;
    }
  };
  for (auto _ : state) {
    run();
    benchmark::DoNotOptimize(out.data());
    benchmark::DoNotOptimize(copy_dst.data());
    benchmark::ClobberMemory();
  }
  state.counters["GB/s"] = benchmark::Counter(1e-9 * bytes, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(std::to_string(kThreads) + " threads, isa " + std::string(cpu::to_string(backend.isa())));
}

struct Case {
  Op op;
  index_t rows, cols;
};

// ViT-B/16 on 8 frames: 8 * 197 = 1576 tokens of 768 (LayerNorm), 12 heads' [197, 197] score blocks stacked (softmax),
// the MLP's 3072-wide hidden layer (GELU; CLIP's own blocks use QuickGELU). The text encoder: 77 tokens of 512 per
// prompt, 8 and 64 prompts, and 8 heads' causal [77, 77] blocks.
const Case cases[] = {
    {Op::layernorm, 1576, 768},     {Op::layernorm, 77 * 8, 512}, {Op::layernorm, 77 * 64, 512},
    {Op::softmax, 12 * 197, 197},   {Op::softmax_causal, 8 * 77, 77},
    {Op::gelu, 1576, 3072},         {Op::quick_gelu, 1576, 3072},
};

const bool registered = [] {
  for (const Case& cs : cases)
    for (Pass pass : {Pass::forward, Pass::backward})
      for (Impl impl : {Impl::froster, Impl::memcpy, Impl::eigen}) {
        // No Eigen composition of LayerNorm's backward (its column reduction is not a natural Eigen expression
        // over row blocks) or of the activations' backward.
        if (impl == Impl::eigen && pass == Pass::backward && cs.op != Op::softmax && cs.op != Op::softmax_causal)
          continue;
        const std::string label = std::string(family(cs.op)) + "/" + name(impl) + "/" +
                                  (pass == Pass::forward ? "forward/" : "backward/") + std::to_string(cs.rows) + "x" +
                                  std::to_string(cs.cols) + suffix(cs.op);
        froster::bench::apply_smoke_mode(
            benchmark::RegisterBenchmark(label.c_str(), bm_rows, cs.op, pass, impl, cs.rows, cs.cols)->UseRealTime());
      }
  return true;
}();

}  // namespace
