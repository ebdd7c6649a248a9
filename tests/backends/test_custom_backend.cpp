// A user's own backend: every component runs on it unchanged. This one owns its allocator (counting bytes) and its
// GEMM (a plain i-p-j loop in the element type), and inherits every other op from the reference backend.

#include <catch2/catch.hpp>
#include <froster/froster.hpp>

#include "support/random.hpp"
#include "support/tolerance.hpp"

using namespace froster;
using froster::test::random_tensor;
namespace tol = froster::test::tol;

namespace {

struct TinyBackend : ReferenceBackend {
  mutable index_t bytes_allocated = 0;
  mutable int gemm_calls = 0;

  template <class T>
  Tensor<T> allocate(Dims extents) const {
    bytes_allocated += extents.product() * index_t(sizeof(T));
    return Tensor<T>::host(extents);
  }

  template <class T>
  void gemm(T alpha, ConstView<T> a, Transpose ta, ConstView<T> b, Transpose tb, T beta, TensorView<T> c) const {
    check::gemm("gemm", a, ta, b, tb, c);  // the shared checks keep errors identical across backends
    check::on_host("gemm", a, b, c);
    ++gemm_calls;
    const ConstView<T> opa = ta == Transpose::no ? a : a.transposed();
    const ConstView<T> opb = tb == Transpose::no ? b : b.transposed();
    for (index_t i = 0; i < c.rows(); ++i) {
      for (index_t j = 0; j < c.cols(); ++j) c(i, j) = beta == T(0) ? T(0) : beta * c(i, j);
      for (index_t p = 0; p < opa.cols(); ++p)
        for (index_t j = 0; j < c.cols(); ++j) c(i, j) += alpha * opa(i, p) * opb(p, j);
    }
  }
};

/// Lacks every op but allocation: not a backend.
struct AllocatorOnly {
  Device device() const { return Device::host(); }
  template <class T>
  Tensor<T> allocate(Dims extents) const {
    return Tensor<T>::host(extents);
  }
};

static_assert(Backend<TinyBackend>);
static_assert(!Backend<AllocatorOnly>);
static_assert(!BackendFor<int, float>);

}  // namespace

TEST_CASE("every component runs on a user's backend and matches the reference backend", "[custom-backend]") {
  ReferenceBackend ref;
  TinyBackend tiny;
  const index_t rows = 6, dim = 5, classes = 4, frames = 3;
  const auto student = random_tensor<double>({rows, dim}, 1);
  const auto teacher = random_tensor<double>({rows, dim}, 2);
  const auto w2 = random_tensor<double>({dim, 7}, 3);
  const auto tol_same = tol::same_math_fp64;

  SECTION("FeatureDistiller (L2Normalize, ResidualProjector, cosine loss)") {
    FeatureDistillerConfig config{.dim = dim, .hidden = 7, .seed = 5, .weight = 2.0};
    FeatureDistiller<ReferenceBackend, double> a(ref, config);
    FeatureDistiller<TinyBackend, double> b(tiny, config);
    a.projector().load(a.projector().w1(), w2.cview());
    b.projector().load(b.projector().w1(), w2.cview());
    auto da = Tensor<double>::host({rows, dim}), db = Tensor<double>::host({rows, dim});
    FROSTER_REQUIRE_CLOSE(b.step(student.cview(), teacher.cview(), db.view()),
                          a.step(student.cview(), teacher.cview(), da.view()), tol_same);
    FROSTER_REQUIRE_CLOSE(db.cview(), da.cview(), tol_same);
    FROSTER_REQUIRE_CLOSE(b.projector().grad_w1(), a.projector().grad_w1(), tol_same);
    FROSTER_REQUIRE_CLOSE(b.projector().grad_w2(), a.projector().grad_w2(), tol_same);
    REQUIRE(tiny.gemm_calls == 6);  // projector: 2 forward + 4 backward
    REQUIRE(tiny.bytes_allocated > 0);
  }
  SECTION("losses") {
    auto da = Tensor<double>::host({rows, dim}), db = Tensor<double>::host({rows, dim});
    auto check = [&](auto&& loss_a, auto&& loss_b) {
      const double va = loss_a.compute(student.cview(), teacher.cview(), da.view());
      const double vb = loss_b.compute(student.cview(), teacher.cview(), db.view());
      FROSTER_REQUIRE_CLOSE(vb, va, tol_same);
      FROSTER_REQUIRE_CLOSE(db.cview(), da.cview(), tol_same);
    };
    check(MseLoss<ReferenceBackend, double>(ref), MseLoss<TinyBackend, double>(tiny));
    check(L1Loss<ReferenceBackend, double>(ref), L1Loss<TinyBackend, double>(tiny));
    check(KlDivergenceLoss<ReferenceBackend, double>(ref, {.temperature = 2}),
          KlDivergenceLoss<TinyBackend, double>(tiny, {.temperature = 2}));
    check(SoftCrossEntropyLoss<ReferenceBackend, double>(ref), SoftCrossEntropyLoss<TinyBackend, double>(tiny));
    auto labels = Tensor<std::int64_t>::host({rows});
    for (index_t i = 0; i < rows; ++i) labels.view()(i) = i % dim;
    CrossEntropyLoss<ReferenceBackend, double> ce_a(ref);
    CrossEntropyLoss<TinyBackend, double> ce_b(tiny);
    FROSTER_REQUIRE_CLOSE(ce_b.compute(student.cview(), labels.cview(), db.view()),
                          ce_a.compute(student.cview(), labels.cview(), da.view()), tol_same);
    FROSTER_REQUIRE_CLOSE(db.cview(), da.cview(), tol_same);
  }
  SECTION("SimilarityLogits and TemporalPool") {
    const auto text = random_tensor<double>({classes, dim}, 4);
    SimilarityLogits<ReferenceBackend, double> sim_a(ref);
    SimilarityLogits<TinyBackend, double> sim_b(tiny);
    FROSTER_REQUIRE_CLOSE(sim_b.forward(student.cview(), text.cview(), 2.0),
                          sim_a.forward(student.cview(), text.cview(), 2.0), tol_same);
    const auto g = random_tensor<double>({rows, classes}, 5);
    auto di_a = Tensor<double>::host({rows, dim}), di_b = Tensor<double>::host({rows, dim});
    FROSTER_REQUIRE_CLOSE(sim_b.backward(g.cview(), di_b.view()), sim_a.backward(g.cview(), di_a.view()), tol_same);
    FROSTER_REQUIRE_CLOSE(di_b.cview(), di_a.cview(), tol_same);
    REQUIRE(tiny.gemm_calls == 2);

    for (Pooling mode : {Pooling::mean, Pooling::max}) {
      TemporalPool<ReferenceBackend, double> pool_a(ref, mode);
      TemporalPool<TinyBackend, double> pool_b(tiny, mode);
      FROSTER_REQUIRE_CLOSE(pool_b.forward(student.cview(), frames), pool_a.forward(student.cview(), frames), tol_same);
    }
  }
}
