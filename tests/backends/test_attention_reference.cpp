// Reference multi-head attention: gradient checks in double for every mask and padding, closed forms of the masks,
// PyTorch parity of forward and backward in fp32 (tests/reference/make_attention_fixtures.py), bad input.

#include <catch2/catch.hpp>
#include <froster/froster.hpp>

#include <cmath>
#include <string>

#include "support/attention.hpp"
#include "support/gradcheck.hpp"
#include "support/random.hpp"
#include "support/tolerance.hpp"

using namespace froster;
using froster::test::PackedQkv;
namespace tol = froster::test::tol;

namespace {

struct Case {
  std::string name;
  AttentionSpec spec;
  index_t head_dim;
};

}  // namespace

TEST_CASE("attention gradients match central differences for every mask and padding", "[attention][gradients]") {
  const Case c = GENERATE(
      Case{"full", {.batch = 2, .tokens = 3, .heads = 2}, 3},
      Case{"causal", {.batch = 2, .tokens = 4, .heads = 2, .mask = AttentionMask::causal}, 3},
      Case{"temporal zero keys", {.batch = 6, .tokens = 2, .heads = 2, .mask = AttentionMask::temporal_neighbours,
                                  .frames = 3, .padding = TemporalPadding::zero_keys}, 2},
      Case{"temporal masked", {.batch = 6, .tokens = 2, .heads = 2, .mask = AttentionMask::temporal_neighbours,
                               .frames = 3, .padding = TemporalPadding::masked}, 2},
      Case{"temporal, one frame per clip, zero keys",
           {.batch = 2, .tokens = 3, .heads = 1, .mask = AttentionMask::temporal_neighbours, .frames = 1}, 3});
  CAPTURE(c.name);
  const ReferenceBackend backend;
  const AttentionSpec& spec = c.spec;
  const index_t rows = spec.batch * spec.tokens, width = spec.heads * c.head_dim;
  const double scale = 1.0 / std::sqrt(double(c.head_dim));
  PackedQkv<double> x(rows, width, 11);
  const auto w = test::random_tensor<double>({rows, width}, 12);  // loss = sum(out * w), so dout = w
  auto out = Tensor<double>::host({rows, width});
  auto lse = Tensor<double>::host({rows, spec.heads});
  auto loss = [&] {
    backend.attention_forward<double>(x.q, x.k, x.v, spec, scale, out.view(), lse.view());
    return backend.dot(out.cview(), w.cview());
  };
  loss();
  auto dq = Tensor<double>::host({rows, width}), dk = Tensor<double>::host({rows, width}),
       dv = Tensor<double>::host({rows, width});
  backend.attention_backward<double>(x.q, x.k, x.v, out.cview(), lse.cview(), w.cview(), spec, scale, dq.view(),
                                     dk.view(), dv.view());
  FROSTER_REQUIRE_GRADIENT(test::check_gradient(loss, x.q, dq.cview()));
  FROSTER_REQUIRE_GRADIENT(test::check_gradient(loss, x.k, dk.cview()));
  FROSTER_REQUIRE_GRADIENT(test::check_gradient(loss, x.v, dv.cview()));
}

TEST_CASE("attention masks have their closed forms when every score is zero", "[attention]") {
  // With k = 0 every score is 0, so a query weighs the keys it sees equally: out is the mean of their values (zero
  // keys count, with value 0) and lse = log(number of keys).
  const ReferenceBackend backend;
  const index_t tokens = 3, frames = 3, clips = 2, rows = clips * frames * tokens, width = 2;
  const auto v = test::random_tensor<double>({rows, width}, 21);
  const auto q = test::random_tensor<double>({rows, width}, 22);
  auto k = Tensor<double>::host({rows, width});
  backend.fill(k.view(), 0.0);
  auto out = Tensor<double>::host({rows, width});
  auto lse = Tensor<double>::host({rows, 1});
  auto expect = [&](const AttentionSpec& spec, index_t i, index_t first_key, index_t keys, index_t count) {
    for (index_t c = 0; c < width; ++c) {
      double sum = 0;
      for (index_t j = first_key; j < first_key + keys; ++j) sum += v.cview()(j, c);
      CAPTURE(i, c, int(spec.mask), int(spec.padding));
      REQUIRE(out.cview()(i, c) == Approx(sum / double(count)).epsilon(1e-12));
    }
    REQUIRE(lse.cview()(i, 0) == Approx(std::log(double(count))).epsilon(1e-12));
  };
  SECTION("full and causal") {
    for (auto mask : {AttentionMask::full, AttentionMask::causal}) {
      const AttentionSpec spec{.batch = clips * frames, .tokens = tokens, .heads = 1, .mask = mask};
      backend.attention_forward<double>(q.cview(), k.cview(), v.cview(), spec, 0.5, out.view(), lse.view());
      for (index_t i = 0; i < rows; ++i) {
        const index_t first = i / tokens * tokens, seen = mask == AttentionMask::full ? tokens : i % tokens + 1;
        expect(spec, i, first, seen, seen);
      }
    }
  }
  SECTION("temporal neighbours, both paddings") {
    for (auto padding : {TemporalPadding::zero_keys, TemporalPadding::masked}) {
      const AttentionSpec spec{.batch = clips * frames, .tokens = tokens, .heads = 1,
                               .mask = AttentionMask::temporal_neighbours, .frames = frames, .padding = padding};
      backend.attention_forward<double>(q.cview(), k.cview(), v.cview(), spec, 0.5, out.view(), lse.view());
      for (index_t i = 0; i < rows; ++i) {
        const index_t b = i / tokens, f = b % frames;
        const index_t first_frame = f > 0 ? b - 1 : b, last_frame = f + 1 < frames ? b + 1 : b;
        const index_t seen = (last_frame - first_frame + 1) * tokens;
        expect(spec, i, first_frame * tokens, seen, padding == TemporalPadding::zero_keys ? 3 * tokens : seen);
      }
    }
  }
}

TEST_CASE("reference attention matches PyTorch in fp32", "[attention][parity]") {
  const std::string name = GENERATE(from_range(std::begin(test::attention_fixture_cases),
                                               std::end(test::attention_fixture_cases)));
  CAPTURE(name);
  test::require_attention_matches_pytorch(ReferenceBackend{}, name);
}

TEST_CASE("attention rejects inconsistent specs and extents before writing", "[attention][bad-input]") {
  const ReferenceBackend backend;
  auto x = Tensor<float>::host({12, 6}), out = Tensor<float>::host({12, 6}), lse = Tensor<float>::host({12, 2});
  backend.fill(out.view(), 7.0f);
  const AttentionSpec good{.batch = 3, .tokens = 4, .heads = 2};
  auto forward = [&](AttentionSpec spec, TensorView<float> o, TensorView<float> l) {
    backend.attention_forward(x.cview(), x.cview(), x.cview(), spec, 1.0f, o, l);
  };
  REQUIRE_NOTHROW(forward(good, out.view(), lse.view()));
  backend.fill(out.view(), 7.0f);
  AttentionSpec bad = good;
  bad.tokens = 5;  // 3 * 5 != 12 rows
  REQUIRE_THROWS_AS(forward(bad, out.view(), lse.view()), ShapeError);
  bad = good;
  bad.heads = 4;  // 6 columns are not 4 heads
  REQUIRE_THROWS_AS(forward(bad, out.view(), lse.view()), ShapeError);
  bad = good;
  bad.batch = 0;
  REQUIRE_THROWS_AS(forward(bad, out.view(), lse.view()), ValueError);
  bad = good;
  bad.mask = AttentionMask::temporal_neighbours;
  bad.frames = 2;  // 3 sequences are not clips of 2 frames
  REQUIRE_THROWS_WITH(forward(bad, out.view(), lse.view()), Catch::Matchers::Contains("clips * frames"));
  REQUIRE_THROWS_AS(forward(good, out.view(), lse.view().slice_rows(0, 11)), ShapeError);
  auto narrow = Tensor<float>::host({12, 5});
  REQUIRE_THROWS_AS(forward(good, narrow.view(), lse.view()), ShapeError);
  REQUIRE(out.cview()(0, 0) == 7.0f);  // nothing written by the failed calls
  auto g = Tensor<float>::host({12, 6});
  REQUIRE_THROWS_AS(backend.attention_backward(x.cview(), x.cview(), x.cview(), x.cview(), lse.cview(), x.cview(),
                                               good, 1.0f, g.view(), g.view(), narrow.view()),
                    ShapeError);
}
