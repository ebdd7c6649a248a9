#pragma once
// Attention test inputs shared by the reference and CPU tests: q, k, v laid out as the ViT's fused QKV projection
// produces them, and the PyTorch parity check against tests/reference/data/attention.fxt
// (tests/reference/make_attention_fixtures.py).

#include <catch2/catch.hpp>

#include <cstdint>
#include <string>

#include <froster/backends/backend.hpp>

#include "support/fixtures.hpp"
#include "support/random.hpp"
#include "support/tolerance.hpp"

namespace froster::test {

/// q, k, v as the column thirds of one packed projection [rows, 3 * width] (row stride 3 * width): the strided
/// layout the kernels must read directly. Entries Normal(0, scale^2) from `seed`.
template <class T>
struct PackedQkv {
  Tensor<T> storage;
  TensorView<T> q, k, v;

  PackedQkv(index_t rows, index_t width, std::uint64_t seed, double scale = 1.0)
      : storage(random_tensor<T>({rows, 3 * width}, seed, scale)) {
    auto s = storage.view();
    q = TensorView<T>(s.data(), {rows, width}, {3 * width, 1});
    k = TensorView<T>(s.data() + width, {rows, width}, {3 * width, 1});
    v = TensorView<T>(s.data() + 2 * width, {rows, width}, {3 * width, 1});
  }
};

/// The fixture's cases, one per mask and padding.
inline constexpr const char* attention_fixture_cases[] = {"full", "causal", "temporal_zero_keys", "temporal_masked"};

/// Runs the fixture case `name` forward and backward on `backend` and compares every output with PyTorch's.
template <class B>
void require_attention_matches_pytorch(const B& backend, const std::string& name) {
  namespace tol = froster::test::tol;
  const Fixture fx(fixture_path("attention.fxt"));
  auto scalar = [&](const char* field) { return fx.i64(name + "/" + field)(0); };
  AttentionSpec spec{.batch = scalar("batch"), .tokens = scalar("tokens"), .heads = scalar("heads")};
  if (name == "causal") spec.mask = AttentionMask::causal;
  if (name.rfind("temporal", 0) == 0) {
    spec.mask = AttentionMask::temporal_neighbours;
    spec.frames = scalar("frames");
    spec.padding = name == "temporal_masked" ? TemporalPadding::masked : TemporalPadding::zero_keys;
  }
  const auto qkv = fx.f32(name + "/qkv");
  const index_t rows = qkv.rows(), width = qkv.cols() / 3;
  const ConstView<float> q(qkv.data(), {rows, width}, {3 * width, 1}),
      k(qkv.data() + width, {rows, width}, {3 * width, 1}), v(qkv.data() + 2 * width, {rows, width}, {3 * width, 1});
  const auto scale = float(fx.f64(name + "/scale")(0));
  auto out = Tensor<float>::host({rows, width}), lse = Tensor<float>::host({rows, spec.heads});
  backend.attention_forward(q, k, v, spec, scale, out.view(), lse.view());
  FROSTER_REQUIRE_CLOSE(out.cview(), fx.f32(name + "/out"), tol::pytorch_fp32);
  FROSTER_REQUIRE_CLOSE(lse.cview(), fx.f32(name + "/lse"), tol::pytorch_fp32);
  auto dq = Tensor<float>::host({rows, width}), dk = Tensor<float>::host({rows, width}),
       dv = Tensor<float>::host({rows, width});
  backend.attention_backward(q, k, v, out.cview(), lse.cview(), fx.f32(name + "/dout"), spec, scale, dq.view(),
                             dk.view(), dv.view());
  FROSTER_REQUIRE_CLOSE(dq.cview(), fx.f32(name + "/dq"), tol::pytorch_fp32);
  FROSTER_REQUIRE_CLOSE(dk.cview(), fx.f32(name + "/dk"), tol::pytorch_fp32);
  FROSTER_REQUIRE_CLOSE(dv.cview(), fx.f32(name + "/dv"), tol::pytorch_fp32);
}

}  // namespace froster::test
