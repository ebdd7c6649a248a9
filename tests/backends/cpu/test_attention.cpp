// CPU backend fused attention against the reference backend, at the ISA level this run was given (FROSTER_ISA, see
// support/catch_main_isa.cpp): CLIP's shapes (ViT 197 tokens, text 77 causal, the video student's temporal
// neighbours with both paddings), odd token counts and head dims, q/k/v as strided column slices of one packed QKV
// tensor, thread-count independence, and PyTorch parity.

#include <catch2/catch.hpp>
#include <froster/cpu.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "support/attention.hpp"
#include "support/random.hpp"
#include "support/tolerance.hpp"

using namespace froster;
namespace tol = froster::test::tol;

namespace {

const ReferenceBackend reference_backend;

using PackedQkv = test::PackedQkv<float>;

/// Every output of one forward + backward pass.
struct Results {
  Tensor<float> out, lse, dq, dk, dv;

  Results(index_t rows, index_t width, index_t heads)
      : out(Tensor<float>::host({rows, width})), lse(Tensor<float>::host({rows, heads})),
        dq(Tensor<float>::host({rows, width})), dk(Tensor<float>::host({rows, width})),
        dv(Tensor<float>::host({rows, width})) {}
};

/// Runs forward then backward on `backend`; the backward pass takes the reference's out and lse when given, so that
/// a backward comparison sees only the backward kernel's error.
template <class B>
void run(const B& backend, const PackedQkv& x, ConstView<float> dout, const AttentionSpec& spec, float scale,
         Results& r, const Results* saved = nullptr) {
  backend.attention_forward(ConstView<float>(x.q), ConstView<float>(x.k), ConstView<float>(x.v), spec, scale,
                            r.out.view(), r.lse.view());
  const ConstView<float> out = saved ? saved->out.cview() : r.out.cview();
  const ConstView<float> lse = saved ? saved->lse.cview() : r.lse.cview();
  backend.attention_backward(ConstView<float>(x.q), ConstView<float>(x.k), ConstView<float>(x.v), out, lse, dout,
                             spec, scale, r.dq.view(), r.dk.view(), r.dv.view());
}

/// dq and dk are scale * sum_j P_ij (dP_ij - D_i) k_j with D_i = <dout_i, out_i>: where a query sees one key, or the
/// keys' values agree, dP_ij and D_i cancel, and the analytic zero is the difference of terms of size
/// scale |D| |k|. That is the scale their round-off is measured against.
double cancellation_scale(ConstView<float> dout, ConstView<float> out, ConstView<float> x, float scale) {
  double d_max = 0, x_max = 0;
  for (index_t i = 0; i < out.rows(); ++i) {
    double d = 0;
    for (index_t c = 0; c < out.cols(); ++c) {
      d += std::abs(double(dout(i, c)) * double(out(i, c)));
      x_max = std::max(x_max, std::abs(double(x(i, c))));
    }
    d_max = std::max(d_max, d);
  }
  return double(scale) * d_max * x_max;
}

/// The most keys one query sees: the reduction length of the softmax and of dk, dv.
index_t max_keys(const AttentionSpec& spec) {
  return spec.mask == AttentionMask::temporal_neighbours ? 3 * spec.tokens : spec.tokens;
}

void compare_with_reference(const AttentionSpec& spec, index_t head_dim, std::uint64_t seed) {
  const CpuBackend cpu_backend({.threads = 2});
  INFO("isa " << cpu::to_string(cpu_backend.isa()) << ", batch " << spec.batch << ", tokens " << spec.tokens
              << ", heads " << spec.heads << ", head_dim " << head_dim << ", mask " << int(spec.mask)
              << ", frames " << spec.frames << ", padding " << int(spec.padding));
  const index_t rows = spec.batch * spec.tokens, width = spec.heads * head_dim;
  const float scale = 1.0f / std::sqrt(float(head_dim));
  // Scores of a few units, as trained CLIP layers have: the softmax is neither flat nor one-hot.
  const PackedQkv x(rows, width, seed, 1.5);
  const auto dout = test::random_tensor<float>({rows, width}, seed + 1);
  Results want(rows, width, spec.heads), got(rows, width, spec.heads);
  run(reference_backend, x, dout.cview(), spec, scale, want);
  run(cpu_backend, x, dout.cview(), spec, scale, got, &want);
  const auto tolerance = tol::cross_backend_fp32(max_keys(spec));
  FROSTER_REQUIRE_CLOSE(got.out.cview(), want.out.cview(), tolerance);
  FROSTER_REQUIRE_CLOSE(got.lse.cview(), want.lse.cview(), tolerance);
  FROSTER_REQUIRE_CLOSE(got.dq.cview(), want.dq.cview(),
                        tolerance.with_term_scale(cancellation_scale(dout.cview(), want.out.cview(), x.k, scale)));
  FROSTER_REQUIRE_CLOSE(got.dk.cview(), want.dk.cview(),
                        tolerance.with_term_scale(cancellation_scale(dout.cview(), want.out.cview(), x.q, scale)));
  FROSTER_REQUIRE_CLOSE(got.dv.cview(), want.dv.cview(), tolerance);
}

}  // namespace

TEST_CASE("ViT attention (197 tokens, head_dim 64) matches the reference", "[cpu][attention]") {
  const index_t heads = GENERATE(2, 12);
  compare_with_reference({.batch = heads == 2 ? 2 : 1, .tokens = 197, .heads = heads}, 64, 100 + std::uint64_t(heads));
}

TEST_CASE("CLIP text attention (77 tokens, causal) matches the reference", "[cpu][attention]") {
  compare_with_reference({.batch = 2, .tokens = 77, .heads = 8, .mask = AttentionMask::causal}, 64, 200);
}

TEST_CASE("temporal-neighbour attention matches the reference with both paddings", "[cpu][attention]") {
  const auto padding = GENERATE(TemporalPadding::zero_keys, TemporalPadding::masked);
  const index_t head_dim = GENERATE(20, 64);
  compare_with_reference({.batch = 2 * 3, .tokens = 17, .heads = 2, .mask = AttentionMask::temporal_neighbours,
                          .frames = 3, .padding = padding},
                         head_dim, 300);
}

TEST_CASE("attention with odd token counts and head dims matches the reference", "[cpu][attention]") {
  const index_t tokens = GENERATE(1, 3, 17, 70);
  const index_t head_dim = GENERATE(1, 3, 17);
  const auto mask = GENERATE(AttentionMask::full, AttentionMask::causal, AttentionMask::temporal_neighbours);
  for (auto padding : {TemporalPadding::zero_keys, TemporalPadding::masked}) {
    if (mask != AttentionMask::temporal_neighbours && padding == TemporalPadding::masked) continue;
    const index_t frames = mask == AttentionMask::temporal_neighbours ? 2 : 1;
    compare_with_reference({.batch = 2 * frames, .tokens = tokens, .heads = 3, .mask = mask, .frames = frames,
                            .padding = padding},
                           head_dim, 400 + std::uint64_t(tokens * 7 + head_dim));
  }
}

TEST_CASE("attention layouts the kernels decline run the reference loops", "[cpu][attention]") {
  // q, k, v with a column stride (column-major) and fp64: the backend falls back, and still computes attention.
  const AttentionSpec spec{.batch = 2, .tokens = 5, .heads = 2, .mask = AttentionMask::causal};
  const index_t rows = 10, width = 6;
  const auto q = test::random_tensor<float>({width, rows}, 1), k = test::random_tensor<float>({width, rows}, 2),
             v = test::random_tensor<float>({width, rows}, 3);
  auto got = Tensor<float>::host({rows, width}), want = Tensor<float>::host({rows, width});
  auto lse_got = Tensor<float>::host({rows, 2}), lse_want = Tensor<float>::host({rows, 2});
  const CpuBackend cpu_backend({.threads = 2});
  cpu_backend.attention_forward(q.cview().transposed(), k.cview().transposed(), v.cview().transposed(), spec, 0.5f,
                                got.view(), lse_got.view());
  reference_backend.attention_forward(q.cview().transposed(), k.cview().transposed(), v.cview().transposed(), spec,
                                      0.5f, want.view(), lse_want.view());
  FROSTER_REQUIRE_CLOSE(got.cview(), want.cview(), tol::same_math_fp64);
  FROSTER_REQUIRE_CLOSE(lse_got.cview(), lse_want.cview(), tol::same_math_fp64);
  const auto qd = test::random_tensor<double>({rows, width}, 4);
  auto out_d = Tensor<double>::host({rows, width}), want_d = Tensor<double>::host({rows, width});
  auto lse_d = Tensor<double>::host({rows, 2});
  cpu_backend.attention_forward(qd.cview(), qd.cview(), qd.cview(), spec, 0.5, out_d.view(), lse_d.view());
  reference_backend.attention_forward(qd.cview(), qd.cview(), qd.cview(), spec, 0.5, want_d.view(), lse_d.view());
  FROSTER_REQUIRE_CLOSE(out_d.cview(), want_d.cview(), tol::same_math_fp64);
}

TEST_CASE("attention results do not depend on the thread count", "[cpu][attention][threads]") {
  // The first spec has too few (sequence, head) pairs for the pool: the forward pass splits their queries, into
  // more ranges on more threads.
  const auto spec = GENERATE(
      AttentionSpec{.batch = 1, .tokens = 197, .heads = 2},
      AttentionSpec{.batch = 3, .tokens = 197, .heads = 4},
      AttentionSpec{.batch = 5, .tokens = 77, .heads = 3, .mask = AttentionMask::causal},
      AttentionSpec{.batch = 2 * 4, .tokens = 17, .heads = 3, .mask = AttentionMask::temporal_neighbours, .frames = 4});
  const index_t head_dim = 64, rows = spec.batch * spec.tokens, width = spec.heads * head_dim;
  const PackedQkv x(rows, width, 9, 1.5);
  const auto dout = test::random_tensor<float>({rows, width}, 10);
  Results one(rows, width, spec.heads), many(rows, width, spec.heads);
  run(CpuBackend({.threads = 1}), x, dout.cview(), spec, 0.125f, one);
  run(CpuBackend({.threads = 3}), x, dout.cview(), spec, 0.125f, many);
  auto same = [](const Tensor<float>& a, const Tensor<float>& b) {
    return std::memcmp(a.data(), b.data(), sizeof(float) * std::size_t(a.numel())) == 0;
  };
  REQUIRE(same(one.out, many.out));
  REQUIRE(same(one.lse, many.lse));
  REQUIRE(same(one.dq, many.dq));
  REQUIRE(same(one.dk, many.dk));
  REQUIRE(same(one.dv, many.dv));
}

TEST_CASE("CPU attention matches PyTorch in fp32", "[cpu][attention][parity]") {
  const std::string name = GENERATE(from_range(std::begin(test::attention_fixture_cases),
                                               std::end(test::attention_fixture_cases)));
  CAPTURE(name);
  test::require_attention_matches_pytorch(CpuBackend({.threads = 2}), name);
}
