// CPU backend reductions and losses (sum, dot, MSE/L1, cross-entropy, soft cross-entropy, KL divergence, temporal
// pooling) against the reference backend, at the ISA level this run was given (FROSTER_ISA): row counts that take
// the serial and the threaded path, column counts around every vector width and across the kernels' fp32 block,
// strided layouts (column-major runs the reference loops for the row ops and must agree too), special values
// (L1 at a == b, NaN, -inf log-probabilities, ties and NaN in max pooling) and thread-count independence.

#include <catch2/catch.hpp>
#include <froster/cpu.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "support/layouts.hpp"
#include "support/tolerance.hpp"

using namespace froster;
using froster::test::LaidOut;
using froster::test::Layout;
namespace tol = froster::test::tol;

namespace {

const ReferenceBackend reference_backend;
const float quiet_nan = std::numeric_limits<float>::quiet_NaN();
const float inf = std::numeric_limits<float>::infinity();
const Layout all_layouts[] = {Layout::row_major, Layout::padded_rows, Layout::reversed_rows, Layout::column_major};

/// (rows, cols): 1, 3, 17, 197 and 1576 rows; widths around 8 and 16 lanes, CLIP's 197, and 1500 (past one
/// 1024-column fp32 block).
const std::pair<index_t, index_t> shapes[] = {{1, 1},   {1, 7},    {3, 3},     {3, 1500}, {17, 8},   {17, 9},
                                              {17, 17}, {197, 31}, {197, 197}, {1576, 5}, {1576, 33}};

ConstView<float> c(const LaidOut<float>& m) { return m.view; }

/// Same values in a fresh buffer of the same layout (both backends write their own copy).
LaidOut<float> twin(const LaidOut<float>& m, Layout layout) {
  LaidOut<float> t(m.view.rows(), m.view.cols(), layout, 0);
  reference_backend.copy(ConstView<float>(m.view), t.view);
  return t;
}

/// Row-wise log-probabilities of random logits, in `layout`.
LaidOut<float> log_probs(index_t rows, index_t cols, Layout layout, std::uint64_t seed) {
  const LaidOut<float> logits(rows, cols, layout, seed, 2.0);
  LaidOut<float> logp(rows, cols, layout, 0);
  reference_backend.log_softmax_forward(c(logits), 1.0f, logp.view);
  return logp;
}

/// A rank-1 tensor of n floats with fixed values.
Tensor<float> vec(index_t n, float value = 0.0f) {
  auto t = Tensor<float>::host({std::max<index_t>(n, 1)});
  for (index_t i = 0; i < t.numel(); ++i) t.data()[i] = value;
  return t;
}
TensorView<float> first(Tensor<float>& t, index_t n) { return TensorView<float>(t.data(), {n}, {1}); }

/// A scalar sum of terms whose magnitudes add up to `terms`: within the fp32 tolerance of that size (the
/// scalar comparison has no term scale, and random sums cancel).
void require_sum_close(double got, double want, double terms, index_t n) {
  CAPTURE(got, want, terms, n);
  REQUIRE(std::abs(got - want) <= tol::cross_backend_fp32(n).rel * (std::abs(want) + terms));
}

double abs_sum(ConstView<float> x) {
  double s = 0;
  for (index_t i = 0; i < x.rows(); ++i)
    for (index_t j = 0; j < x.cols(); ++j) s += std::abs(double(x(i, j)));
  return s;
}

/// NaN where `want` has NaN, the same infinity where it has one, and the finite rest within `tolerance`.
template <class V>
void require_same_nonfinite_then_close(V got, V want, test::Tolerance tolerance) {
  const bool matrix = want.rank() == 2;
  const index_t rows = want.extent(0), cols = matrix ? want.extent(1) : 1;
  auto at = [&](const V& v, index_t i, index_t j) { return matrix ? v(i, j) : v(i); };
  for (index_t i = 0; i < rows; ++i)
    for (index_t j = 0; j < cols; ++j) {
      CAPTURE(i, j, at(got, i, j), at(want, i, j));
      if (std::isnan(at(want, i, j))) REQUIRE(std::isnan(at(got, i, j)));
      else if (std::isinf(at(want, i, j))) REQUIRE(at(got, i, j) == at(want, i, j));
      else REQUIRE(std::isfinite(at(got, i, j)));
    }
  // The finite rest: non-finite entries of both set to zero, then the usual comparison.
  auto finite = [&](V v) {
    Tensor<float> t = matrix ? Tensor<float>::host({rows, cols}) : Tensor<float>::host({rows});
    for (index_t i = 0; i < rows; ++i)
      for (index_t j = 0; j < cols; ++j) {
        const float x = at(v, i, j);
        (matrix ? t.view()(i, j) : t.view()(i)) = std::isfinite(x) ? x : 0.0f;
      }
    return t;
  };
  Tensor<float> g = finite(got), w = finite(want);
  FROSTER_REQUIRE_CLOSE(g.view(), w.view(), tolerance);
}

}  // namespace

TEST_CASE("sum and dot match the reference for matrices in every layout and for vectors", "[cpu][reductions]") {
  const CpuBackend cpu_backend({.threads = 2});
  INFO("isa " << cpu::to_string(cpu_backend.isa()));
  for (const Layout layout : all_layouts)
    for (const auto& [rows, cols] : shapes) {
      CAPTURE(rows, cols, to_string(layout));
      const LaidOut<float> a(rows, cols, layout, 1 + std::uint64_t(cols)), b(rows, cols, layout, 2);
      require_sum_close(cpu_backend.sum(c(a)), reference_backend.sum(c(a)), abs_sum(c(a)), rows * cols);
      double products = 0;
      for (index_t i = 0; i < rows; ++i)
        for (index_t j = 0; j < cols; ++j) products += std::abs(double(a.view(i, j)) * double(b.view(i, j)));
      require_sum_close(cpu_backend.dot(c(a), c(b)), reference_backend.dot(c(a), c(b)), products, rows * cols);
    }
  for (const index_t n : {1, 7, 17, 1025, 16385, 100003})
    for (const index_t stride : {1, 3}) {
      CAPTURE(n, stride);
      auto storage = Tensor<float>::host({n * stride});
      NormalRng rng(3);
      for (index_t i = 0; i < n * stride; ++i) storage.data()[i] = float(rng.normal());
      const ConstView<float> x(storage.data(), {n}, {stride});
      double terms = 0;
      for (index_t i = 0; i < n; ++i) terms += std::abs(double(x(i)));
      require_sum_close(cpu_backend.sum(x), reference_backend.sum(x), terms, n);
    }
}

TEST_CASE("sum and dot are bitwise independent of the thread count", "[cpu][reductions]") {
  const LaidOut<float> a(1576, 197, Layout::row_major, 4), b(1576, 197, Layout::row_major, 5);
  auto v = Tensor<float>::host({100003});
  NormalRng rng(6);
  for (index_t i = 0; i < v.numel(); ++i) v.data()[i] = float(rng.normal());
  std::vector<double> results;
  for (const int threads : {1, 2, 3, 5}) {
    const CpuBackend backend({.threads = threads});
    const double got[] = {backend.sum(c(a)), backend.dot(c(a), c(b)), backend.sum(v.cview())};
    if (!results.empty()) REQUIRE(std::memcmp(got, results.data(), sizeof got) == 0);
    else results.assign(std::begin(got), std::end(got));
  }
}

TEST_CASE("pointwise losses (MSE, L1) forward and backward match the reference", "[cpu][reductions]") {
  const CpuBackend cpu_backend({.threads = 2});
  INFO("isa " << cpu::to_string(cpu_backend.isa()));
  const PointwiseLoss kind = GENERATE(PointwiseLoss::squared_error, PointwiseLoss::absolute_error);
  const Layout layout = GENERATE(Layout::row_major, Layout::padded_rows, Layout::reversed_rows, Layout::column_major);
  for (const auto& [rows, cols] : shapes) {
    CAPTURE(rows, cols, to_string(layout), int(kind));
    const LaidOut<float> a(rows, cols, layout, 7 + std::uint64_t(cols));
    LaidOut<float> b(rows, cols, layout, 8);
    // Equal entries: L1's gradient there is 0 (torch.sign), not +-1.
    for (index_t i = 0; i < rows; i += 2) b.view(i, 0) = a.view(i, 0);
    auto loss = vec(rows, 5.0f), want_loss = vec(rows, 6.0f);
    cpu_backend.pointwise_loss_forward(kind, c(a), c(b), first(loss, rows));
    reference_backend.pointwise_loss_forward(kind, c(a), c(b), first(want_loss, rows));
    FROSTER_REQUIRE_CLOSE(first(loss, rows), first(want_loss, rows), tol::cross_backend_fp32(cols));

    LaidOut<float> da(rows, cols, layout, 9), db(rows, cols, layout, 10);
    LaidOut<float> want_da = twin(da, layout), want_db = twin(db, layout);
    cpu_backend.pointwise_loss_backward(kind, c(a), c(b), 0.37f, da.view, db.view);
    reference_backend.pointwise_loss_backward(kind, c(a), c(b), 0.37f, want_da.view, want_db.view);
    FROSTER_REQUIRE_CLOSE(da.view, want_da.view, tol::cross_backend_fp32(1));
    FROSTER_REQUIRE_CLOSE(db.view, want_db.view, tol::cross_backend_fp32(1));
    // One output only: the other is not written.
    LaidOut<float> only(rows, cols, layout, 11), want_only = twin(only, layout);
    cpu_backend.pointwise_loss_backward(kind, c(a), c(b), -2.0f, TensorView<float>{}, only.view);
    reference_backend.pointwise_loss_backward(kind, c(a), c(b), -2.0f, TensorView<float>{}, want_only.view);
    FROSTER_REQUIRE_CLOSE(only.view, want_only.view, tol::cross_backend_fp32(1));
  }
}

TEST_CASE("cross-entropy and soft cross-entropy forward and backward match the reference", "[cpu][reductions]") {
  const CpuBackend cpu_backend({.threads = 2});
  INFO("isa " << cpu::to_string(cpu_backend.isa()));
  const Layout layout = GENERATE(Layout::row_major, Layout::padded_rows, Layout::reversed_rows, Layout::column_major);
  for (const auto& [rows, cols] : shapes) {
    CAPTURE(rows, cols, to_string(layout));
    const LaidOut<float> logp = log_probs(rows, cols, layout, 12 + std::uint64_t(cols));
    auto labels = Tensor<std::int64_t>::host({rows});
    for (index_t i = 0; i < rows; ++i) labels.data()[i] = (i * 7 + 3) % cols;
    auto loss = vec(rows, 1.0f), want_loss = vec(rows, 2.0f);
    cpu_backend.cross_entropy_forward(c(logp), labels.cview(), first(loss, rows));
    reference_backend.cross_entropy_forward(c(logp), labels.cview(), first(want_loss, rows));
    FROSTER_REQUIRE_CLOSE(first(loss, rows), first(want_loss, rows), tol::cross_backend_fp32(1));
    LaidOut<float> dl(rows, cols, layout, 13), want_dl = twin(dl, layout);
    cpu_backend.cross_entropy_backward(c(logp), labels.cview(), 0.25f, dl.view);
    reference_backend.cross_entropy_backward(c(logp), labels.cview(), 0.25f, want_dl.view);
    FROSTER_REQUIRE_CLOSE(dl.view, want_dl.view, tol::cross_backend_fp32(1));

    // Soft targets that do not sum to one (PyTorch allows it; the gradient scales with the mass).
    const LaidOut<float> targets = [&] {
      LaidOut<float> t = log_probs(rows, cols, layout, 14);
      for (index_t i = 0; i < rows; ++i)
        for (index_t j = 0; j < cols; ++j) t.view(i, j) = 1.5f * std::exp(t.view(i, j));
      return t;
    }();
    cpu_backend.soft_cross_entropy_forward(c(logp), c(targets), first(loss, rows));
    reference_backend.soft_cross_entropy_forward(c(logp), c(targets), first(want_loss, rows));
    FROSTER_REQUIRE_CLOSE(first(loss, rows), first(want_loss, rows), tol::cross_backend_fp32(cols));
    cpu_backend.soft_cross_entropy_backward(c(logp), c(targets), 0.5f, dl.view);
    reference_backend.soft_cross_entropy_backward(c(logp), c(targets), 0.5f, want_dl.view);
    FROSTER_REQUIRE_CLOSE(dl.view, want_dl.view, tol::cross_backend_fp32(cols));
  }
}

TEST_CASE("cross-entropy backward in place (dlogits = log_probs) gives the out-of-place result", "[cpu][reductions]") {
  const CpuBackend cpu_backend({.threads = 2});
  const index_t rows = 37, cols = 1000;
  LaidOut<float> logp = log_probs(rows, cols, Layout::row_major, 15);
  auto labels = Tensor<std::int64_t>::host({rows});
  for (index_t i = 0; i < rows; ++i) labels.data()[i] = (i * 31) % cols;
  LaidOut<float> want(rows, cols, Layout::row_major, 0);
  reference_backend.cross_entropy_backward(c(logp), labels.cview(), 1.0f, want.view);
  cpu_backend.cross_entropy_backward(c(logp), labels.cview(), 1.0f, logp.view);
  FROSTER_REQUIRE_CLOSE(logp.view, want.view, tol::cross_backend_fp32(1));
}

TEST_CASE("KL divergence forward and backward match the reference", "[cpu][reductions]") {
  const CpuBackend cpu_backend({.threads = 2});
  INFO("isa " << cpu::to_string(cpu_backend.isa()));
  const Layout layout = GENERATE(Layout::row_major, Layout::padded_rows, Layout::reversed_rows, Layout::column_major);
  for (const auto& [rows, cols] : shapes) {
    CAPTURE(rows, cols, to_string(layout));
    const LaidOut<float> ls = log_probs(rows, cols, layout, 16 + std::uint64_t(cols)), lt = log_probs(rows, cols, layout, 17);
    auto loss = vec(rows, 1.0f), want_loss = vec(rows, 2.0f);
    cpu_backend.kl_div_forward(c(ls), c(lt), first(loss, rows));
    reference_backend.kl_div_forward(c(ls), c(lt), first(want_loss, rows));
    // KL sums terms p_t (logp_t - logp_s) of either sign: compared at the scale of the terms.
    double terms = 0;
    for (index_t i = 0; i < rows; ++i)
      for (index_t j = 0; j < cols; ++j) terms = std::max(terms, std::abs(double(lt.view(i, j)) - double(ls.view(i, j))));
    FROSTER_REQUIRE_CLOSE(first(loss, rows), first(want_loss, rows), tol::cross_backend_fp32(cols).with_term_scale(terms));

    LaidOut<float> ds(rows, cols, layout, 18), dt(rows, cols, layout, 19);
    LaidOut<float> want_ds = twin(ds, layout), want_dt = twin(dt, layout);
    cpu_backend.kl_div_backward(c(ls), c(lt), ConstView<float>(first(want_loss, rows)), 0.5f, ds.view, dt.view);
    reference_backend.kl_div_backward(c(ls), c(lt), ConstView<float>(first(want_loss, rows)), 0.5f, want_ds.view, want_dt.view);
    FROSTER_REQUIRE_CLOSE(ds.view, want_ds.view, tol::cross_backend_fp32(1));
    FROSTER_REQUIRE_CLOSE(dt.view, want_dt.view, tol::cross_backend_fp32(1).with_term_scale(terms));
  }
}

TEST_CASE("losses treat NaN, -inf and zero differences as the reference does", "[cpu][reductions]") {
  const CpuBackend cpu_backend({.threads = 2});
  INFO("isa " << cpu::to_string(cpu_backend.isa()));
  const index_t rows = 6, cols = 19;
  LaidOut<float> a(rows, cols, Layout::row_major, 20), b(rows, cols, Layout::row_major, 21);
  a.view(1, 3) = quiet_nan;  // NaN difference: MSE propagates it, L1's sign is 0
  b.view(2, 18) = a.view(2, 18);
  for (const PointwiseLoss kind : {PointwiseLoss::squared_error, PointwiseLoss::absolute_error}) {
    CAPTURE(int(kind));
    auto loss = vec(rows), want_loss = vec(rows);
    cpu_backend.pointwise_loss_forward(kind, c(a), c(b), first(loss, rows));
    reference_backend.pointwise_loss_forward(kind, c(a), c(b), first(want_loss, rows));
    require_same_nonfinite_then_close(first(loss, rows), first(want_loss, rows), tol::cross_backend_fp32(cols));
    LaidOut<float> da(rows, cols, Layout::row_major, 22), want_da = twin(da, Layout::row_major);
    cpu_backend.pointwise_loss_backward(kind, c(a), c(b), 1.0f, da.view, TensorView<float>{});
    reference_backend.pointwise_loss_backward(kind, c(a), c(b), 1.0f, want_da.view, TensorView<float>{});
    require_same_nonfinite_then_close(da.view, want_da.view, tol::cross_backend_fp32(1));
  }

  // Log-probabilities with -inf (p = 0) and NaN entries, teacher and student.
  LaidOut<float> ls = log_probs(rows, cols, Layout::row_major, 23), lt = log_probs(rows, cols, Layout::row_major, 24);
  lt.view(0, 4) = -inf;                          // p_t = 0: adds nothing, whatever the student says
  lt.view(1, 5) = -inf, ls.view(1, 5) = -inf;    // 0 log 0 = 0, not NaN
  ls.view(2, 6) = -inf;                          // the teacher has mass where the student has none: +inf
  lt.view(3, 7) = quiet_nan;                     // NaN p_t fails the reference's p > 0: skipped
  ls.view(4, 8) = quiet_nan;                     // a NaN student term propagates
  lt.view(5, 9) = -200.0f;                       // p_t > 0 in double, below fp32's exp range
  auto loss = vec(rows), want_loss = vec(rows);
  cpu_backend.kl_div_forward(c(ls), c(lt), first(loss, rows));
  reference_backend.kl_div_forward(c(ls), c(lt), first(want_loss, rows));
  require_same_nonfinite_then_close(first(loss, rows), first(want_loss, rows), tol::cross_backend_fp32(cols));
  LaidOut<float> ds(rows, cols, Layout::row_major, 25), dt(rows, cols, Layout::row_major, 26);
  LaidOut<float> want_ds = twin(ds, Layout::row_major), want_dt = twin(dt, Layout::row_major);
  cpu_backend.kl_div_backward(c(ls), c(lt), ConstView<float>(first(want_loss, rows)), 1.0f, ds.view, dt.view);
  reference_backend.kl_div_backward(c(ls), c(lt), ConstView<float>(first(want_loss, rows)), 1.0f, want_ds.view, want_dt.view);
  require_same_nonfinite_then_close(ds.view, want_ds.view, tol::cross_backend_fp32(1));
  require_same_nonfinite_then_close(dt.view, want_dt.view, tol::cross_backend_fp32(1).with_term_scale(20.0));

  // Cross-entropy backward with a NaN log-probability: NaN in that gradient entry only.
  LaidOut<float> logp = log_probs(rows, cols, Layout::row_major, 27);
  logp.view(3, 2) = quiet_nan;
  auto labels = Tensor<std::int64_t>::host({rows});
  for (index_t i = 0; i < rows; ++i) labels.data()[i] = i;
  LaidOut<float> dl(rows, cols, Layout::row_major, 28), want_dl = twin(dl, Layout::row_major);
  cpu_backend.cross_entropy_backward(c(logp), labels.cview(), 1.0f, dl.view);
  reference_backend.cross_entropy_backward(c(logp), labels.cview(), 1.0f, want_dl.view);
  require_same_nonfinite_then_close(dl.view, want_dl.view, tol::cross_backend_fp32(1));
}

TEST_CASE("temporal pooling (mean, max) forward and backward match the reference", "[cpu][reductions]") {
  const CpuBackend cpu_backend({.threads = 2});
  INFO("isa " << cpu::to_string(cpu_backend.isa()));
  const Layout layout = GENERATE(Layout::row_major, Layout::padded_rows, Layout::reversed_rows, Layout::column_major);
  const bool ties = GENERATE(false, true);
  for (const index_t clips : {1, 3, 17, 197})
    for (const index_t frames : {1, 2, 8})
      for (const index_t cols : {1, 9, 17, 31, 768}) {
        if (clips * cols > 40000) continue;
        CAPTURE(clips, frames, cols, to_string(layout), ties);
        const index_t rows = clips * frames;
        LaidOut<float> x(rows, cols, layout, 29 + std::uint64_t(cols));
        // Few distinct values: many ties, where the first maximum's frame must win; and signed zeros.
        if (ties)
          for (index_t i = 0; i < rows; ++i)
            for (index_t j = 0; j < cols; ++j) x.view(i, j) = (i + j) % 3 == 0 ? -0.0f : std::round(x.view(i, j));
        for (const Pooling mode : {Pooling::mean, Pooling::max}) {
          CAPTURE(int(mode));
          LaidOut<float> y(clips, cols, layout, 30), want_y = twin(y, layout);
          LaidOut<std::int64_t> argmax(clips, cols, layout, 0), want_argmax(clips, cols, layout, 0);
          cpu_backend.temporal_pool_forward(mode, c(x), frames, y.view, argmax.view);
          reference_backend.temporal_pool_forward(mode, c(x), frames, want_y.view, want_argmax.view);
          FROSTER_REQUIRE_CLOSE(y.view, want_y.view, tol::cross_backend_fp32(frames));
          if (mode == Pooling::max) {
            for (index_t i = 0; i < clips; ++i)
              for (index_t j = 0; j < cols; ++j) {
                CAPTURE(i, j);
                REQUIRE(argmax.view(i, j) == want_argmax.view(i, j));
                REQUIRE(std::signbit(y.view(i, j)) == std::signbit(want_y.view(i, j)));
              }
          }
          const LaidOut<float> dy(clips, cols, layout, 31);
          LaidOut<float> dx(rows, cols, layout, 32), want_dx = twin(dx, layout);
          cpu_backend.temporal_pool_backward(mode, frames, c(dy), ConstView<std::int64_t>(want_argmax.view), dx.view);
          reference_backend.temporal_pool_backward(mode, frames, c(dy), ConstView<std::int64_t>(want_argmax.view),
                                                   want_dx.view);
          FROSTER_REQUIRE_CLOSE(dx.view, want_dx.view, tol::cross_backend_fp32(1));
        }
      }
}

TEST_CASE("temporal max pooling: NaN wins at its first frame, as torch.max", "[cpu][reductions]") {
  const CpuBackend cpu_backend({.threads = 2});
  INFO("isa " << cpu::to_string(cpu_backend.isa()));
  const index_t clips = 3, frames = 8, cols = 21;
  LaidOut<float> x(clips * frames, cols, Layout::row_major, 33);
  x.view(0, 0) = quiet_nan;                               // NaN in the first frame
  x.view(5, 1) = quiet_nan, x.view(6, 1) = 100.0f;        // NaN, then a larger value: NaN still wins
  x.view(9, 2) = quiet_nan, x.view(12, 2) = quiet_nan;    // two NaNs: the first
  x.view(frames + 2, 20) = inf, x.view(frames + 5, 20) = inf;  // a tie at +inf: the first
  for (index_t t = 0; t < frames; ++t) x.view(2 * frames + t, 19) = -inf;  // all -inf: frame 0
  LaidOut<float> y(clips, cols, Layout::row_major, 34), want_y = twin(y, Layout::row_major);
  LaidOut<std::int64_t> argmax(clips, cols, Layout::row_major, 0), want_argmax(clips, cols, Layout::row_major, 0);
  cpu_backend.temporal_pool_forward(Pooling::max, c(x), frames, y.view, argmax.view);
  reference_backend.temporal_pool_forward(Pooling::max, c(x), frames, want_y.view, want_argmax.view);
  for (index_t i = 0; i < clips; ++i)
    for (index_t j = 0; j < cols; ++j) {
      CAPTURE(i, j);
      REQUIRE(argmax.view(i, j) == want_argmax.view(i, j));
      if (std::isnan(want_y.view(i, j))) REQUIRE(std::isnan(y.view(i, j)));
      else REQUIRE(y.view(i, j) == want_y.view(i, j));
    }
  // An argmax out of [0, frames) routes the gradient nowhere, as the reference's comparison.
  want_argmax.view(1, 3) = frames;
  want_argmax.view(2, 4) = -1;
  const LaidOut<float> dy(clips, cols, Layout::row_major, 35);
  LaidOut<float> dx(clips * frames, cols, Layout::row_major, 36), want_dx = twin(dx, Layout::row_major);
  cpu_backend.temporal_pool_backward(Pooling::max, frames, c(dy), ConstView<std::int64_t>(want_argmax.view), dx.view);
  reference_backend.temporal_pool_backward(Pooling::max, frames, c(dy), ConstView<std::int64_t>(want_argmax.view),
                                           want_dx.view);
  FROSTER_REQUIRE_CLOSE(dx.view, want_dx.view, tol::cross_backend_fp32(1));
}

TEST_CASE("fp64 reductions and losses run the reference loops", "[cpu][reductions]") {
  const CpuBackend cpu_backend({.threads = 2});
  const LaidOut<double> a(17, 9, Layout::row_major, 37), b(17, 9, Layout::row_major, 38);
  REQUIRE(cpu_backend.sum(ConstView<double>(a.view)) == reference_backend.sum(ConstView<double>(a.view)));
  REQUIRE(cpu_backend.dot(ConstView<double>(a.view), ConstView<double>(b.view)) ==
          reference_backend.dot(ConstView<double>(a.view), ConstView<double>(b.view)));
  auto loss = Tensor<double>::host({17}), want = Tensor<double>::host({17});
  cpu_backend.pointwise_loss_forward(PointwiseLoss::squared_error, ConstView<double>(a.view), ConstView<double>(b.view),
                                     loss.view());
  reference_backend.pointwise_loss_forward(PointwiseLoss::squared_error, ConstView<double>(a.view),
                                           ConstView<double>(b.view), want.view());
  REQUIRE(std::memcmp(loss.data(), want.data(), 17 * sizeof(double)) == 0);
}
