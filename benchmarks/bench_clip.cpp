// CLIP ViT-B/16 encoders on the `cpu` backend (float32, random weights), the froster side of the comparison with
// PyTorch (benchmarks/pytorch/bench_clip.py runs the same cases; benchmarks/run_clip_comparison.sh runs both side
// by side; results in benchmarks/CLIP.md).
//
//   clip/froster/vision_forward/batch:B                  image encoder forward of B frames (224 px)
//   clip/froster/text_forward/prompts:P                  text encoder forward of P prompts (context 77; froster
//                                                        computes positions up to the last end token only)
//   clip/froster/text_forward_full_context/prompts:P     the same for prompts that fill the context (75 words):
//                                                        every position computed on both sides
//   clip/froster/vision_train_step/frames:8              forward + backward of one 8-frame clip: every parameter
//                                                        gradient accumulated, no pixel gradient
//   clip/froster/vision_train_step_checkpointing/frames:8  the same with gradient checkpointing on
//   clip/froster/profile/...                             where the time goes: per-op times of one block, the
//                                                        embedding stage and the text token gather (counters, ms)
//
// Time is real time; `CPU` is the CPU time of all the process's threads (less sensitive to other jobs on a shared
// machine than real time is). Counters: images/s or prompts/s (real time), `activation_bytes` (the model's
// activation_bytes() after the last iteration) and `peak_rss_bytes` (getrusage ru_maxrss of the whole process so
// far: run one case per process, as run_clip_comparison.sh does, for a per-case peak). Threads:
// CpuBackend({.threads = N}) with N from the environment variable FROSTER_BENCH_THREADS (default 2, the PyTorch
// side's torch.set_num_threads).

#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "bench_options.hpp"
#include "froster/cpu.hpp"
#include "froster/nn.hpp"

namespace {

using froster::ConstView;
using froster::CpuBackend;
using froster::index_t;
using froster::Tensor;
using froster::TensorView;
using Vision = froster::nn::VisionTransformer<CpuBackend, float>;
using Text = froster::nn::TextTransformer<CpuBackend, float>;

// OpenAI CLIP ViT-B/16 (image 224, patch 16, width 768, 12 layers, 12 heads, output 512; text width 512, 12
// layers, 8 heads, context 77, vocab 49408).
froster::nn::VisionConfig vit_b16_vision(bool checkpointing) {
  return {.image_size = 224, .patch_size = 16, .width = 768, .layers = 12, .heads = 12, .output_dim = 512,
          .gradient_checkpointing = checkpointing};
}
froster::nn::TextConfig vit_b16_text() {
  return {.context_length = 77, .vocab_size = 49408, .width = 512, .layers = 12, .heads = 8, .output_dim = 512};
}

CpuBackend& backend() {
  static CpuBackend b({.threads = froster::bench::threads()});
  return b;
}

double peak_rss_bytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return double(usage.ru_maxrss) * 1024.0;  // Linux reports KiB
}

Tensor<float> normal_tensor(froster::Dims extents, double std_dev, std::uint64_t seed) {
  Tensor<float> t = Tensor<float>::host(extents);
  froster::NormalRng rng(seed);
  for (index_t i = 0; i < t.numel(); ++i) t.data()[i] = float(std_dev * rng.normal());
  return t;
}

/// Prompts shaped like "a photo of a {class}.": SOT, 6-13 word tokens, EOT (the highest id), zero padding to 77;
/// `fill_context`: context - 2 word tokens, so EOT is the last position.
Tensor<std::int64_t> prompt_tokens(index_t prompts, index_t context, std::uint64_t seed, bool fill_context = false) {
  constexpr std::int64_t sot = 49406, eot = 49407;
  Tensor<std::int64_t> t = Tensor<std::int64_t>::host({prompts, context});
  froster::NormalRng rng(seed);
  for (index_t i = 0; i < prompts; ++i) {
    const index_t words = fill_context ? context - 2 : 6 + index_t(rng.uniform() * 8);
    for (index_t j = 0; j < context; ++j) t.data()[i * context + j] = 0;
    t.data()[i * context] = sot;
    for (index_t j = 1; j <= words; ++j) t.data()[i * context + j] = 1 + std::int64_t(rng.uniform() * 49000);
    t.data()[i * context + words + 1] = eot;
  }
  return t;
}

/// One model at a time, kept across the repetitions of a case (building ViT-B/16 draws 86 M normals) and freed
/// before the next case builds its own, so a case's peak RSS holds only its own model.
struct ModelCache {
  std::string key;
  std::shared_ptr<void> model;
};
ModelCache& model_cache() {
  static ModelCache cache;
  return cache;
}

template <class M, class Build>
M& cached_model(const std::string& key, const Build& build) {
  ModelCache& cache = model_cache();
  if (cache.key != key) {
    cache.model.reset();
    cache.key.clear();
    cache.model = build();
    cache.key = key;
  }
  return *static_cast<M*>(cache.model.get());
}

void release_cached_model() {
  model_cache().model.reset();
  model_cache().key.clear();
}

void require_finite(benchmark::State& state, ConstView<float> x, const char* what) {
  for (index_t i = 0; i < x.rows(); ++i)
    for (index_t j = 0; j < x.cols(); ++j)
      if (!std::isfinite(x(i, j))) {
        state.SkipWithError((std::string(what) + " is not finite").c_str());
        return;
      }
}

void set_memory_counters(benchmark::State& state, std::size_t activation_bytes) {
  using benchmark::Counter;
  state.counters["activation_bytes"] = Counter(double(activation_bytes), Counter::kDefaults, Counter::kIs1024);
  state.counters["peak_rss_bytes"] = Counter(peak_rss_bytes(), Counter::kDefaults, Counter::kIs1024);
}

// --- the compared cases ------------------------------------------------------------------------------------------

void vision_forward(benchmark::State& state) {
  const index_t n = state.range(0);
  // Inference, as PyTorch's torch.no_grad() side: nothing kept for backward, the weights packed once (as an
  // inference user or a frozen teacher runs them; packing takes about one forward's share of packing time).
  Vision& model = cached_model<Vision>("vision_inference", [] {
    auto m = std::make_shared<Vision>(backend(), vit_b16_vision(false), 1);
    m->pack_weights();
    return m;
  });
  const Tensor<float> images = normal_tensor({n, 3, 224, 224}, 1.0, 2);
  // The warm-up allocates the buffers.
  require_finite(state, model.forward(images.cview(), 1, false), "features");
  for (auto _ : state) {
    const ConstView<float> features = model.forward(images.cview(), 1, false);
    benchmark::DoNotOptimize(features.data());
  }
  state.counters["images/s"] = benchmark::Counter(double(n), benchmark::Counter::kIsIterationInvariantRate);
  set_memory_counters(state, model.activation_bytes());
}

template <bool FillContext>
void text_forward(benchmark::State& state) {
  const index_t n = state.range(0);
  Text& model = cached_model<Text>("text_inference", [] {
    auto m = std::make_shared<Text>(backend(), vit_b16_text(), 1);
    m->pack_weights();
    return m;
  });
  const Tensor<std::int64_t> tokens = prompt_tokens(n, 77, 3, FillContext);
  require_finite(state, model.forward(tokens.cview(), false), "features");
  for (auto _ : state) {
    const ConstView<float> features = model.forward(tokens.cview(), false);
    benchmark::DoNotOptimize(features.data());
  }
  state.counters["prompts/s"] = benchmark::Counter(double(n), benchmark::Counter::kIsIterationInvariantRate);
  set_memory_counters(state, model.activation_bytes());
}

template <bool Checkpointing>
void vision_train_step(benchmark::State& state) {
  const index_t n = state.range(0);
  Vision& model = cached_model<Vision>(Checkpointing ? "vision_ckpt" : "vision", [] {
    return std::make_shared<Vision>(backend(), vit_b16_vision(Checkpointing), 1);
  });
  const Tensor<float> images = normal_tensor({n, 3, 224, 224}, 1.0, 2);
  const Tensor<float> d_features = normal_tensor({n, 512}, 1.0, 4);
  // Warm-up step (allocates activations and backward temporaries), then check what it produced.
  require_finite(state, model.forward(images.cview()), "features");
  model.backward(d_features.cview());
  for (const auto& e : model.parameters().entries())
    require_finite(state, e.grad.cview().reshaped({1, e.grad.numel()}), e.name.c_str());
  for (auto _ : state) {
    const ConstView<float> features = model.forward(images.cview());
    benchmark::DoNotOptimize(features.data());
    model.backward(d_features.cview());  // gradients accumulate, as loss.backward() without zero_grad
  }
  state.counters["images/s"] = benchmark::Counter(double(n), benchmark::Counter::kIsIterationInvariantRate);
  set_memory_counters(state, model.activation_bytes());
}

// --- profile: where the time goes ----------------------------------------------------------------------------------
// The same op sequence as ResidualAttentionBlock::forward/backward and VisionTransformer's embedding stage, on
// standalone layers of the same shapes, each op timed. Counters are milliseconds per iteration.

using Clock = std::chrono::steady_clock;

struct Timings {
  std::vector<std::pair<std::string, double>> ms;  // in op order, summed over iterations
  Clock::time_point last;
  void start() { last = Clock::now(); }
  void lap(const std::string& name) {
    const Clock::time_point now = Clock::now();
    const double t = std::chrono::duration<double, std::milli>(now - last).count();
    last = now;
    for (auto& [n, v] : ms)
      if (n == name) {
        v += t;
        return;
      }
    ms.emplace_back(name, t);
  }
  void report(benchmark::State& state) const {
    double total = 0;
    for (const auto& [name, v] : ms) {
      state.counters[name + "_ms"] = benchmark::Counter(v, benchmark::Counter::kAvgIterations);
      total += v;
    }
    state.counters["total_ms"] = benchmark::Counter(total, benchmark::Counter::kAvgIterations);
  }
};

/// One pre-LN block's layers and buffers, the shapes of ResidualAttentionBlock.
struct BlockParts {
  using LN = froster::nn::LayerNorm<CpuBackend, float>;
  using Lin = froster::nn::Linear<CpuBackend, float>;
  index_t rows, width, heads;
  froster::AttentionSpec spec;
  froster::nn::ParameterSet<CpuBackend, float> params;
  froster::nn::Ones<CpuBackend, float> ones;
  LN ln_1, ln_2;
  Lin in_proj, out_proj, c_fc, c_proj;
  froster::nn::BlockActivations<float> acts;
  froster::nn::BlockGradients<float> grads;
  Tensor<float> x, y, dy, dx;

  BlockParts(index_t batch, index_t tokens, index_t width_, index_t heads_, froster::AttentionMask mask)
      : rows(batch * tokens), width(width_), heads(heads_),
        spec{.batch = batch, .tokens = tokens, .heads = heads_, .mask = mask},
        params(backend()), ones(backend()), ln_1(params, "ln_1", width), ln_2(params, "ln_2", width),
        in_proj(params, "in_w", "in_b", width, 3 * width, froster::nn::Init::normal(0.03)),
        out_proj(params, "out_w", "out_b", width, width, froster::nn::Init::normal(0.01)),
        c_fc(params, "fc_w", "fc_b", width, 4 * width, froster::nn::Init::normal(0.025)),
        c_proj(params, "proj_w", "proj_b", 4 * width, width, froster::nn::Init::normal(0.01)),
        x(normal_tensor({rows, width}, 1.0, 5)), y(Tensor<float>::host({rows, width})),
        dy(normal_tensor({rows, width}, 1.0, 6)), dx(Tensor<float>::host({rows, width})) {
    params.initialize(1);
    params.ensure_gradients();  // backward_parameters accumulates into them, as a model's backward does
    acts.ensure(backend(), rows, width, heads, 4 * width);
    grads.ensure(backend(), rows, width, 4 * width);
  }

  float scale() const { return float(1.0 / std::sqrt(double(width / heads))); }

  void forward(Timings& t) {
    CpuBackend& b = backend();
    using froster::nn::qkv_part;
    t.start();
    ln_1.forward(b, x.cview(), acts.ln1.view(), acts.mean1.view(), acts.rstd1.view());
    t.lap("fwd_ln");
    in_proj.forward(b, acts.ln1.cview(), {}, acts.qkv.view());
    t.lap("fwd_gemm_in_proj");
    const ConstView<float> qkv = acts.qkv.cview();
    b.attention_forward(qkv_part(qkv, 0), qkv_part(qkv, 1), qkv_part(qkv, 2), spec, scale(), acts.attn.view(),
                        acts.lse.view());
    t.lap("fwd_attention");
    out_proj.forward(b, acts.attn.cview(), {.residual = x.cview()}, acts.x1.view());
    t.lap("fwd_gemm_out_proj");
    ln_2.forward(b, acts.x1.cview(), acts.ln2.view(), acts.mean2.view(), acts.rstd2.view());
    t.lap("fwd_ln");
    c_fc.forward(b, acts.ln2.cview(), {.activation = froster::Activation::quick_gelu, .save_pre = acts.pre.view()},
                 acts.hidden.view());
    t.lap("fwd_gemm_c_fc_gelu");
    c_proj.forward(b, acts.hidden.cview(), {.residual = acts.x1.cview()}, y.view());
    t.lap("fwd_gemm_c_proj");
  }

  /// Linear::backward_parameters, its two GEMMs timed apart: dW += dy^T x, and db += ones dy (a [1, rows] GEMM).
  void backward_parameters(Timings& t, const char* weight, const char* bias, ConstView<float> x_, ConstView<float> d) {
    CpuBackend& b = backend();
    b.gemm(1.0f, d, froster::Transpose::yes, x_, froster::Transpose::no, 1.0f, params.at(weight).grad.view());
    t.lap("bwd_gemm_dweight");
    froster::nn::accumulate_column_sums(b, ones, d, params.at(bias).grad.view());
    t.lap("bwd_dbias_ones_gemm");
  }

  void backward(Timings& t) {
    CpuBackend& b = backend();
    using froster::nn::qkv_part;
    t.start();
    backward_parameters(t, "proj_w", "proj_b", acts.hidden.cview(), dy.cview());
    c_proj.backward_input(b, dy.cview(),
                          {.activation = froster::Activation::quick_gelu, .derivative_at = acts.pre.cview()},
                          grads.d_pre.view());
    t.lap("bwd_gemm_dinput");
    backward_parameters(t, "fc_w", "fc_b", acts.ln2.cview(), grads.d_pre.cview());
    c_fc.backward_input(b, grads.d_pre.cview(), {}, grads.d_tmp.view());
    t.lap("bwd_gemm_dinput");
    ln_2.backward(b, acts.x1.cview(), acts.mean2.cview(), acts.rstd2.cview(), grads.d_tmp.cview(), grads.d_x1.view());
    t.lap("bwd_ln");
    b.axpby(1.0f, dy.cview(), 1.0f, grads.d_x1.view());
    t.lap("bwd_residual_axpby");
    backward_parameters(t, "out_w", "out_b", acts.attn.cview(), grads.d_x1.cview());
    out_proj.backward_input(b, grads.d_x1.cview(), {}, grads.d_tmp.view());
    t.lap("bwd_gemm_dinput");
    const ConstView<float> qkv = acts.qkv.cview();
    const TensorView<float> d_qkv = grads.d_qkv.view();
    b.attention_backward(qkv_part(qkv, 0), qkv_part(qkv, 1), qkv_part(qkv, 2), acts.attn.cview(), acts.lse.cview(),
                         grads.d_tmp.cview(), spec, scale(), qkv_part(d_qkv, 0), qkv_part(d_qkv, 1),
                         qkv_part(d_qkv, 2));
    t.lap("bwd_attention");
    backward_parameters(t, "in_w", "in_b", acts.ln1.cview(), grads.d_qkv.cview());
    in_proj.backward_input(b, grads.d_qkv.cview(), {}, grads.d_tmp.view());
    t.lap("bwd_gemm_dinput");
    ln_1.backward(b, x.cview(), acts.mean1.cview(), acts.rstd1.cview(), grads.d_tmp.cview(), dx.view());
    t.lap("bwd_ln");
    b.axpby(1.0f, grads.d_x1.cview(), 1.0f, dx.view());
    t.lap("bwd_residual_axpby");
  }
};

/// range(0) = frames (vision: 197 tokens, width 768, 12 heads) or, for the text variant, prompts (77 tokens,
/// width 512, 8 heads, causal).
template <bool Text_, bool Backward>
void profile_block(benchmark::State& state) {
  release_cached_model();
  const index_t n = state.range(0);
  BlockParts parts(n, Text_ ? 77 : 197, Text_ ? 512 : 768, Text_ ? 8 : 12,
                   Text_ ? froster::AttentionMask::causal : froster::AttentionMask::full);
  Timings warm, t;
  parts.forward(warm);
  if (Backward) parts.backward(warm);
  for (auto _ : state) {
    parts.forward(Backward ? warm : t);  // the backward case times backward only
    if (Backward) parts.backward(t);
  }
  t.report(state);
}

/// The vision embedding stage of 8 frames as VisionTransformer::forward runs it: the per-patch-row copies of
/// images_to_patches, the per-image conv GEMMs with the positional residual, the class rows, ln_pre; and the
/// backward's per-image conv weight-gradient GEMMs.
void profile_vision_embedding(benchmark::State& state) {
  release_cached_model();
  const index_t n = state.range(0), p = 16, g = 14, s = 224, len = 3 * p * p, d = 768, tokens = 197, g2 = g * g;
  CpuBackend& b = backend();
  const Tensor<float> images = normal_tensor({n, 3, s, s}, 1.0, 2);
  const Tensor<float> conv = normal_tensor({d, len}, 0.03, 7), pos = normal_tensor({tokens, d}, 0.03, 8);
  Tensor<float> patches = Tensor<float>::host({n * g2, len}), x0 = Tensor<float>::host({n * tokens, d});
  Tensor<float> grad_conv = Tensor<float>::host({d, len});
  Timings t;
  for (auto _ : state) {
    t.start();
    for (index_t i = 0; i < n; ++i)
      for (index_t c = 0; c < 3; ++c)
        for (index_t gy = 0; gy < g; ++gy)
          for (index_t py = 0; py < p; ++py)
            b.copy(ConstView<float>(images.data() + ((i * 3 + c) * s + gy * p + py) * s, {g, p}, {p, 1},
                                    images.view().device()),
                   TensorView<float>(patches.data() + ((i * g + gy) * g) * len + (c * p + py) * p, {g, p}, {len, 1},
                                     patches.view().device()));
    t.lap("fwd_patchify_copies");
    for (index_t i = 0; i < n; ++i)
      froster::fused_gemm(b, 1.0f, patches.cview().slice_rows(i * g2, g2), froster::Transpose::no, conv.cview(),
                          froster::Transpose::yes, {.residual = pos.cview().slice_rows(1, g2)},
                          x0.view().slice_rows(i * tokens + 1, g2));
    t.lap("fwd_conv_gemm_per_image");
    froster::fused_gemm(b, 1.0f, patches.cview(), froster::Transpose::no, conv.cview(), froster::Transpose::yes, {},
                        x0.view().slice_rows(0, n * g2));
    t.lap("alt_conv_gemm_one_call");
    for (index_t i = 0; i < n; ++i)
      b.gemm(1.0f, x0.cview().slice_rows(i * tokens + 1, g2), froster::Transpose::yes,
             patches.cview().slice_rows(i * g2, g2), froster::Transpose::no, 1.0f, grad_conv.view());
    t.lap("bwd_conv_dweight_per_image");
  }
  t.report(state);
}

/// The text embedding gather and its backward scatter, one backend call per token, as TextTransformer runs them.
void profile_text_embedding(benchmark::State& state) {
  release_cached_model();
  const index_t n = state.range(0), len = 77, d = 512;
  CpuBackend& b = backend();
  const Tensor<float> table = normal_tensor({49408, d}, 0.02, 9);
  Tensor<float> grad_table = Tensor<float>::host({49408, d}), x0 = normal_tensor({n * len, d}, 1.0, 10);
  const Tensor<std::int64_t> tokens = prompt_tokens(n, len, 3);
  Timings t;
  for (auto _ : state) {
    t.start();
    for (index_t r = 0; r < n * len; ++r)
      b.copy(table.cview().slice_rows(index_t(tokens.data()[r]), 1), x0.view().slice_rows(r, 1));
    t.lap("fwd_gather_copies");
    for (index_t r = 0; r < n * len; ++r)
      b.axpby(1.0f, x0.cview().slice_rows(r, 1), 1.0f, grad_table.view().slice_rows(index_t(tokens.data()[r]), 1));
    t.lap("bwd_scatter_axpby");
  }
  t.report(state);
}

// --- registration --------------------------------------------------------------------------------------------------

benchmark::internal::Benchmark* compared(const char* name, void (*fn)(benchmark::State&), const char* arg_name) {
  // Each repetition is the mean of as many iterations as 1 s takes (one for the heavy cases); three repetitions,
  // reported as mean/median/stddev/cv, because the machine may be shared.
  return froster::bench::apply_smoke_mode(
      benchmark::RegisterBenchmark(name, fn)
          ->ArgName(arg_name)
          ->UseRealTime()
          ->MeasureProcessCPUTime()  // CPU time of every thread: on a shared machine, the work done apart from waiting
          ->Unit(benchmark::kMillisecond)
          ->MinTime(1.0)
          ->Repetitions(3)
          ->ReportAggregatesOnly(true));
}

const bool registered = [] {
  compared("clip/froster/vision_forward", vision_forward, "batch")->Arg(1)->Arg(8);
  compared("clip/froster/text_forward", text_forward<false>, "prompts")->Arg(1)->Arg(8);
  compared("clip/froster/text_forward_full_context", text_forward<true>, "prompts")->Arg(8);
  compared("clip/froster/vision_train_step", vision_train_step<false>, "frames")->Arg(8);
  compared("clip/froster/vision_train_step_checkpointing", vision_train_step<true>, "frames")->Arg(8);
  const auto profile = [](const char* name, void (*fn)(benchmark::State&), const char* arg_name, index_t arg) {
    froster::bench::apply_smoke_mode(
        benchmark::RegisterBenchmark(name, fn)->ArgName(arg_name)->Arg(arg)->UseRealTime()->Unit(
            benchmark::kMillisecond)->MinTime(1.0));
  };
  profile("clip/froster/profile/vision_block_forward", profile_block<false, false>, "frames", 8);
  profile("clip/froster/profile/vision_block_backward", profile_block<false, true>, "frames", 8);
  profile("clip/froster/profile/vision_embedding", profile_vision_embedding, "frames", 8);
  profile("clip/froster/profile/text_block_forward", profile_block<true, false>, "prompts", 8);
  profile("clip/froster/profile/text_embedding", profile_text_embedding, "prompts", 8);
  return true;
}();

}  // namespace

BENCHMARK_MAIN();
