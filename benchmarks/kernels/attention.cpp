// Multi-head self-attention at CLIP's shapes: froster's fused CPU kernels (CpuBackend, FlashAttention-2 style)
// against a straightforward Eigen composition (per head: S = scale Q K^T, row softmax, O = P V; backward from the
// saved P: dV = P^T dO, dP = dO V^T, dS = P (dP - rowsum(P dP)), dQ = scale dS K, dK = scale dS^T Q).
// Names: attention/<impl>/<case>/<fwd|bwd>. See ATTENTION.md for how to build, run and read these.
//
// Both implementations run on 2 threads (FROSTER_BENCH_THREADS=n changes that): CpuBackend({.threads = 2}); the
// Eigen composition splits heads over 2 OpenMP threads (each head's products are too small for Eigen's own GEMM
// threading to help).
//
// Counters: GFLOP/s over one nominal count shared by both implementations (so their ratio is the ratio of times):
// forward 4 d per visible (query, key) pair, backward 8 d (the four products given P; the fused kernel also
// recomputes S, uncredited). Causal counts only the visible half. `extra_bytes` is what the implementation allocates
// beyond its inputs and outputs: the fused kernel's workspace (cpu::attention_workspace_bytes), the composition's
// saved probabilities (batch * heads * tokens * keys floats) plus its per-thread score buffer.

#include <benchmark/benchmark.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include "../bench_options.hpp"
#include <froster/core/random.hpp>
#include <froster/cpu.hpp>
#include <limits>
#include <string>
#include <vector>

using namespace froster;

namespace {

struct BenchCase {
  const char* name;
  AttentionSpec spec;
  index_t head_dim;
};

// ViT-B/16 on 8 frames (one clip: 197 tokens, 12 heads of 64); its text encoder on 8 prompts (77 tokens causal,
// 8 heads of 64); the FROSTER video student's expand view on the same 8 frames (3 * 197 keys, zero-key padding).
const BenchCase cases[] = {
    {"vit_b16", {.batch = 8, .tokens = 197, .heads = 12}, 64},
    {"text", {.batch = 8, .tokens = 77, .heads = 8, .mask = AttentionMask::causal}, 64},
    {"vit_b16_temporal",
     {.batch = 8, .tokens = 197, .heads = 12, .mask = AttentionMask::temporal_neighbours, .frames = 8}, 64},
};

/// Visible (query, key) pairs per head, zero keys excluded.
double visible_pairs(const AttentionSpec& spec) {
  double pairs = 0;
  for (index_t b = 0; b < spec.batch; ++b)
    for (index_t t = 0; t < spec.tokens; ++t) {
      const AttentionKeys keys = attention_keys(spec, b, t);
      pairs += double(keys.end - keys.begin);
    }
  return pairs;
}

/// Packed qkv [rows, 3 * width] (q, k, v are column slices with row stride 3 * width) plus every other buffer.
struct Problem {
  AttentionSpec spec;
  index_t d, rows, width;
  float scale;
  Tensor<float> qkv, out, lse, dout, dq, dk, dv;
  ConstView<float> q, k, v;

  explicit Problem(const BenchCase& c)
      : spec(c.spec), d(c.head_dim), rows(c.spec.batch * c.spec.tokens), width(c.spec.heads * c.head_dim),
        scale(1.0f / std::sqrt(float(c.head_dim))) {
    qkv = Tensor<float>::host({rows, 3 * width});
    NormalRng rng(7);
    for (index_t i = 0; i < qkv.numel(); ++i) qkv.data()[i] = float(1.5 * rng.normal());
    q = ConstView<float>(qkv.data(), {rows, width}, {3 * width, 1});
    k = ConstView<float>(qkv.data() + width, {rows, width}, {3 * width, 1});
    v = ConstView<float>(qkv.data() + 2 * width, {rows, width}, {3 * width, 1});
    out = Tensor<float>::host({rows, width});
    lse = Tensor<float>::host({rows, spec.heads});
    dout = Tensor<float>::host({rows, width});
    for (index_t i = 0; i < dout.numel(); ++i) dout.data()[i] = float(rng.normal());
    dq = Tensor<float>::host({rows, width});
    dk = Tensor<float>::host({rows, width});
    dv = Tensor<float>::host({rows, width});
  }
};

void set_counters(benchmark::State& state, const Problem& p, bool backward, double extra_bytes) {
  const double flops = (backward ? 8.0 : 4.0) * double(p.d) * visible_pairs(p.spec) * double(p.spec.heads);
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["extra_bytes"] = extra_bytes;
}

void froster_attention(benchmark::State& state, const BenchCase& c, bool backward) {
  Problem p(c);
  const CpuBackend backend({.threads = froster::bench::threads()});
  backend.attention_forward(p.q, p.k, p.v, p.spec, p.scale, p.out.view(), p.lse.view());
  for (auto _ : state) {
    if (backward)
      backend.attention_backward(p.q, p.k, p.v, p.out.cview(), p.lse.cview(), p.dout.cview(), p.spec, p.scale,
                                 p.dq.view(), p.dk.view(), p.dv.view());
    else
      backend.attention_forward(p.q, p.k, p.v, p.spec, p.scale, p.out.view(), p.lse.view());
    benchmark::ClobberMemory();
  }
  set_counters(state, p, backward,
               double(cpu::attention_workspace_bytes(backend.context(), p.spec, p.d, backward)));
}

// --- The Eigen composition -----------------------------------------------------------------------------------------

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Strided = Eigen::Map<RowMatrix, 0, Eigen::OuterStride<>>;
using ConstStrided = Eigen::Map<const RowMatrix, 0, Eigen::OuterStride<>>;

/// The saved probabilities of every (sequence, head), as autograd keeps them for the backward pass.
struct EigenAttention {
  Problem& p;
  std::vector<RowMatrix> probabilities;  // [batch * heads] of [tokens, keys]

  explicit EigenAttention(Problem& problem)
      : p(problem), probabilities(std::size_t(problem.spec.batch * problem.spec.heads)) {}

  ConstStrided rows_of(ConstView<float> x, index_t first_row, index_t count, index_t h) const {
    return ConstStrided(&x(first_row, h * p.d), count, p.d, Eigen::OuterStride<>(x.stride(0)));
  }
  Strided rows_of(TensorView<float> x, index_t first_row, index_t count, index_t h) const {
    return Strided(&x(first_row, h * p.d), count, p.d, Eigen::OuterStride<>(x.stride(0)));
  }

  void forward() {
    const AttentionSpec& s = p.spec;
#pragma omp parallel for num_threads(froster::bench::threads()) schedule(static)
    for (index_t h = 0; h < s.heads; ++h)
      for (index_t b = 0; b < s.batch; ++b) {
        const AttentionKeys keys = attention_keys(s, b, s.tokens - 1);
        const index_t n = keys.end - keys.begin, first = b * s.tokens;
        RowMatrix& P = probabilities[std::size_t(b * s.heads + h)];
        P.noalias() = p.scale * rows_of(p.q, first, s.tokens, h) * rows_of(p.k, keys.begin, n, h).transpose();
        if (s.mask == AttentionMask::causal)
          P.triangularView<Eigen::StrictlyUpper>().setConstant(-std::numeric_limits<float>::infinity());
        Eigen::VectorXf m = P.rowwise().maxCoeff();
        if (keys.zero_keys > 0) m = m.cwiseMax(0.0f);  // zero keys score 0
        P = (P.colwise() - m).array().exp().matrix();
        Eigen::VectorXf l = P.rowwise().sum();
        l.array() += float(keys.zero_keys) * (-m.array()).exp();
        P = l.cwiseInverse().asDiagonal() * P;
        rows_of(p.out.view(), first, s.tokens, h).noalias() = P * rows_of(p.v, keys.begin, n, h);
        for (index_t t = 0; t < s.tokens; ++t) p.lse.view()(first + t, h) = m(t) + std::log(l(t));
      }
  }

  void backward() {
    const AttentionSpec& s = p.spec;
    // Heads split over the threads; a head's sequences run in order, since temporal neighbours share keys.
#pragma omp parallel for num_threads(froster::bench::threads()) schedule(static)
    for (index_t h = 0; h < s.heads; ++h) {
      for (index_t b = 0; b < s.batch; ++b) {
        rows_of(p.dk.view(), b * s.tokens, s.tokens, h).setZero();
        rows_of(p.dv.view(), b * s.tokens, s.tokens, h).setZero();
      }
      for (index_t b = 0; b < s.batch; ++b) {
        const AttentionKeys keys = attention_keys(s, b, s.tokens - 1);
        const index_t n = keys.end - keys.begin, first = b * s.tokens;
        const RowMatrix& P = probabilities[std::size_t(b * s.heads + h)];
        const auto dO = rows_of(p.dout.cview(), first, s.tokens, h);
        rows_of(p.dv.view(), keys.begin, n, h).noalias() += P.transpose() * dO;
        RowMatrix dS = dO * rows_of(p.v, keys.begin, n, h).transpose();
        const Eigen::VectorXf D = (P.array() * dS.array()).rowwise().sum();
        dS = (P.array() * (dS.colwise() - D).array()).matrix();
        rows_of(p.dq.view(), first, s.tokens, h).noalias() = p.scale * dS * rows_of(p.k, keys.begin, n, h);
        rows_of(p.dk.view(), keys.begin, n, h).noalias() += p.scale * dS.transpose() * rows_of(p.q, first, s.tokens, h);
      }
    }
  }

  double saved_bytes() const {
    double bytes = 0;
    for (const auto& P : probabilities) bytes += double(P.size()) * sizeof(float);
    return bytes;
  }
};

void eigen_attention(benchmark::State& state, const BenchCase& c, bool backward) {
  Eigen::setNbThreads(1);  // the heads are split over the threads; Eigen's GEMM must not fork again inside one
  Problem p(c);
  EigenAttention attention(p);
  attention.forward();
  for (auto _ : state) {
    if (backward) attention.backward();
    else attention.forward();
    benchmark::ClobberMemory();
  }
  // Backward also holds dS, one [tokens, keys] matrix per thread; forward writes the saved P in place.
  index_t keys = 0;
  for (index_t b = 0; b < p.spec.batch; ++b) {
    const AttentionKeys k = attention_keys(p.spec, b, p.spec.tokens - 1);
    keys = std::max(keys, k.end - k.begin);
  }
  const double scratch = backward ? double(froster::bench::threads() * p.spec.tokens * keys) * sizeof(float) : 0.0;
  set_counters(state, p, backward, attention.saved_bytes() + scratch);
}

const bool registered = [] {
  for (const BenchCase& c : cases)
    for (bool backward : {false, true}) {
      const std::string suffix = std::string("/") + c.name + (backward ? "/bwd" : "/fwd");
      const auto froster_case = [&c, backward](benchmark::State& s) { froster_attention(s, c, backward); };
      const auto eigen_case = [&c, backward](benchmark::State& s) { eigen_attention(s, c, backward); };
      froster::bench::apply_smoke_mode(
          benchmark::RegisterBenchmark(("attention/froster" + suffix).c_str(), froster_case)
              ->Unit(benchmark::kMillisecond)
              ->UseRealTime());
      froster::bench::apply_smoke_mode(
          benchmark::RegisterBenchmark(("attention/eigen" + suffix).c_str(), eigen_case)
              ->Unit(benchmark::kMillisecond)
              ->UseRealTime());
    }
  return true;
}();

}  // namespace
