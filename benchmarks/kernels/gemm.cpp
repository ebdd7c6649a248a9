// SGEMM of the CPU backend against Eigen and OpenBLAS on the GEMMs of a CLIP ViT-B/16 layer over 8 frames x 197
// tokens (M = 1576 rows), 2 threads each (FROSTER_BENCH_THREADS=n changes that), plus the FMA peak of the
// machine. Results: GEMM.md.
//
//   gemm/<impl>/<M>x<N>x<K>/nt   forward of a Linear [N, K] (torch layout): Y[M,N] = X[M,K] W[N,K]^T
//   gemm/<impl>/<M>x<N>x<K>/nn   its input gradient:  dX[M,K] = dY[M,N] W[N,K]
//   gemm/<impl>/<M>x<N>x<K>/tn   its weight gradient: dW[N,K] = dY[M,N]^T X[M,K]
//   peak/fma/<isa>               independent FMA chains on every thread: the machine's multiply-add peak
//
// <impl> is froster (CpuBackend, 2 threads), eigen (Eigen 3.4 over OpenMP, 2 threads) or openblas (cblas_sgemm,
// 2 threads; set OPENBLAS_CORETYPE to the kernel family the CPU really has). Every case reports GFLOP/s = 2MNK / s
// of wall time; the CPU column is the process's CPU time (all threads), which on a shared machine gives the rate
// per core-second actually received (threads that spin while waiting are charged for it).

#include <benchmark/benchmark.h>
#include <cblas.h>

#include <Eigen/Core>
#include <cstdint>
#include <string>

#include "../bench_options.hpp"
#include "froster/core/random.hpp"
#include "froster/cpu.hpp"

namespace {

using froster::index_t;
using froster::Tensor;
using froster::Transpose;

const int kThreads = froster::bench::threads();
constexpr index_t kRows = 1576;  // 8 frames x 197 tokens

Tensor<float> normal_tensor(froster::Dims extents, std::uint64_t seed) {
  Tensor<float> t = Tensor<float>::host(extents);
  froster::NormalRng rng(seed);
  for (index_t i = 0; i < t.numel(); ++i) t.data()[i] = float(rng.normal());
  return t;
}

enum class Op { nt, nn, tn };
enum class Impl { froster, eigen, openblas };

const char* name(Op op) { return op == Op::nt ? "nt" : op == Op::nn ? "nn" : "tn"; }
const char* name(Impl impl) { return impl == Impl::froster ? "froster" : impl == Impl::eigen ? "eigen" : "openblas"; }

using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Map = Eigen::Map<RowMajor, Eigen::Aligned64>;
using ConstMap = Eigen::Map<const RowMajor, Eigen::Aligned64>;

/// One layer's GEMM: the operands as a torch Linear holds them (X [M,K], W [N,K], dY [M,N]) and the output.
void bm_gemm(benchmark::State& state, Impl impl, Op op, index_t n, index_t k) {
  const index_t m = kRows;
  const Tensor<float> x = normal_tensor({m, k}, 1), w = normal_tensor({n, k}, 2), dy = normal_tensor({m, n}, 3);
  Tensor<float> out = op == Op::nt ? Tensor<float>::host({m, n}) : op == Op::nn ? Tensor<float>::host({m, k})
                                                                                 : Tensor<float>::host({n, k});
  const froster::CpuBackend cpu({.threads = kThreads});
  Eigen::setNbThreads(kThreads);
  openblas_set_num_threads(kThreads);
  const auto run = [&] {
    switch (impl) {
      case Impl::froster:
        if (op == Op::nt) cpu.gemm(1.0f, x.cview(), Transpose::no, w.cview(), Transpose::yes, 0.0f, out.view());
        if (op == Op::nn) cpu.gemm(1.0f, dy.cview(), Transpose::no, w.cview(), Transpose::no, 0.0f, out.view());
        if (op == Op::tn) cpu.gemm(1.0f, dy.cview(), Transpose::yes, x.cview(), Transpose::no, 0.0f, out.view());
        break;
      case Impl::eigen: {
        const ConstMap ex(x.data(), m, k), ew(w.data(), n, k), edy(dy.data(), m, n);
        Map eo(out.data(), out.extent(0), out.extent(1));
        if (op == Op::nt) eo.noalias() = ex * ew.transpose();
        if (op == Op::nn) eo.noalias() = edy * ew;
        if (op == Op::tn) eo.noalias() = edy.transpose() * ex;
        break;
      }
      case Impl::openblas: {
        const int im = int(m), in = int(n), ik = int(k);
        if (op == Op::nt)
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, im, in, ik, 1.0f, x.data(), ik, w.data(), ik, 0.0f,
                      out.data(), in);
        if (op == Op::nn)
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, im, ik, in, 1.0f, dy.data(), in, w.data(), ik, 0.0f,
                      out.data(), ik);
        if (op == Op::tn)
          cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, in, ik, im, 1.0f, dy.data(), in, x.data(), ik, 0.0f,
                      out.data(), ik);
        break;
      }
    }
  };
  run();  // warm up: packing buffers, thread pools, page faults
  for (auto _ : state) {
    run();
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2e-9 * double(m) * double(n) * double(k),
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

// --- FMA peak: 12 independent accumulator chains per thread (more than latency x FMA pipes on current cores) -----

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2,fma"), noinline)) float fma_chains_avx2(std::int64_t iterations) {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(float(i));
  const __m256 a = _mm256_set1_ps(0.999f), b = _mm256_set1_ps(1e-3f);
  for (std::int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(a, acc[i], b);
  }
  __m256 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, acc[i]);
  return _mm256_cvtss_f32(s);
}

__attribute__((target("avx512f"), noinline)) float fma_chains_avx512(std::int64_t iterations) {
  __m512 acc[24];
  for (int i = 0; i < 24; ++i) acc[i] = _mm512_set1_ps(float(i));
  const __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(1e-3f);
  for (std::int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 24
    for (int i = 0; i < 24; ++i) acc[i] = _mm512_fmadd_ps(a, acc[i], b);
  }
  __m512 s = acc[0];
  for (int i = 1; i < 24; ++i) s = _mm512_add_ps(s, acc[i]);
  alignas(64) float lanes[16];  // not _mm512_reduce_add_ps: GCC 12 warns inside it (-Wuninitialized)
  _mm512_store_ps(lanes, s);
  return lanes[0];
}

void bm_peak(benchmark::State& state, froster::cpu::Isa isa) {
  constexpr std::int64_t iterations = 1 << 20;
  froster::cpu::ThreadPool pool(kThreads);
  const bool wide = isa == froster::cpu::Isa::avx512;
  for (auto _ : state) {
    pool.parallel_for(kThreads, [&](index_t) {
      benchmark::DoNotOptimize(wide ? fma_chains_avx512(iterations) : fma_chains_avx2(iterations));
    });
  }
  const double flops_per_iteration = wide ? 24.0 * 16 * 2 : 12.0 * 8 * 2;
  state.counters["GFLOP/s"] = benchmark::Counter(1e-9 * flops_per_iteration * double(iterations) * kThreads,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}
#endif

const bool registered = [] {
#if defined(__x86_64__) && defined(__GNUC__)
  const froster::cpu::Isa best = froster::cpu::detect_isa();
  // Five repetitions whatever the command line says: on a shared machine one short run can be taken half by a
  // neighbour, and the peak is the best the cores do (benchmarks/summarize.py takes the best repetition).
  for (const auto& [isa, label] : {std::pair{froster::cpu::Isa::avx2, "peak/fma/avx2"},
                                   std::pair{froster::cpu::Isa::avx512, "peak/fma/avx512"}})
    if (best >= isa)
      froster::bench::apply_smoke_mode(
          benchmark::RegisterBenchmark(label, bm_peak, isa)->MeasureProcessCPUTime()->UseRealTime()->Repetitions(5));
#endif
  const std::pair<index_t, index_t> shapes[] = {{768, 768}, {2304, 768}, {3072, 768}, {768, 3072}};
  for (const auto& [n, k] : shapes)
    for (Op op : {Op::nt, Op::nn, Op::tn})
      for (Impl impl : {Impl::froster, Impl::eigen, Impl::openblas}) {
        const std::string label = std::string("gemm/") + name(impl) + "/" + std::to_string(kRows) + "x" +
                                  std::to_string(n) + "x" + std::to_string(k) + "/" + name(op);
        froster::bench::apply_smoke_mode(benchmark::RegisterBenchmark(label.c_str(), bm_gemm, impl, op, n, k)
                                             ->MeasureProcessCPUTime()
                                             ->UseRealTime()
                                             ->MinTime(0.3));
      }
  return true;
}();

}  // namespace
