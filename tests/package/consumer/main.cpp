// A downstream program: one ResidualProjector + CosineDistillationLoss training step on the ReferenceBackend,
// checked against values computed here by hand. Returns non-zero on any failure.
#include <froster/froster.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>

// froster's core needs only the standard library: the umbrella header must not pull Eigen in, and this project
// puts no Eigen include directory on the path (Debian keeps Eigen in /usr/include/eigen3, off the default path).
#ifdef EIGEN_WORLD_VERSION
#error "<froster/froster.hpp> included Eigen; the core must need only the standard library"
#endif
#if __has_include(<Eigen/Core>)
#error "Eigen is on this consumer's include path; the package test must show froster builds without it"
#endif

// The version the CMake package reported must be the one the headers declare.
#if defined(FROSTER_PACKAGE_VERSION_MAJOR) && defined(FROSTER_PACKAGE_VERSION_MINOR) && \
    defined(FROSTER_PACKAGE_VERSION_PATCH)
static_assert(froster::version_major == FROSTER_PACKAGE_VERSION_MAJOR &&
                  froster::version_minor == FROSTER_PACKAGE_VERSION_MINOR &&
                  froster::version_patch == FROSTER_PACKAGE_VERSION_PATCH,
              "the CMake package version differs from include/froster/version.hpp");
#endif

namespace {

int failures = 0;

void expect(bool ok, const char* what, double got, double want) {
  if (!ok) {
    std::fprintf(stderr, "FAILED: %s: got %.9g, expected %.9g\n", what, got, want);
    ++failures;
  }
}

bool close(double a, double b, double tol) { return std::abs(a - b) <= tol * (1.0 + std::abs(b)); }

// 1 - mean_i cos(a_i, b_i), in double, straight from the definition.
double cosine_loss_by_hand(froster::ConstView<float> a, froster::ConstView<float> b) {
  double total = 0;
  for (froster::index_t i = 0; i < a.rows(); ++i) {
    double ab = 0, aa = 0, bb = 0;
    for (froster::index_t j = 0; j < a.cols(); ++j) {
      ab += double(a(i, j)) * double(b(i, j));
      aa += double(a(i, j)) * double(a(i, j));
      bb += double(b(i, j)) * double(b(i, j));
    }
    total += 1.0 - ab / (std::sqrt(aa) * std::sqrt(bb));
  }
  return total / double(a.rows());
}

froster::Tensor<float> random_matrix(froster::index_t rows, froster::index_t cols, std::uint64_t seed) {
  auto t = froster::Tensor<float>::host({rows, cols});
  froster::NormalRng rng(seed);
  for (froster::index_t i = 0; i < t.numel(); ++i) t.data()[i] = float(rng.normal());
  return t;
}

int run() {
  using B = froster::ReferenceBackend;
  constexpr froster::index_t rows = 4, dim = 8;
  B backend;
  froster::ResidualProjector<B> projector(backend, {.dim = dim, .hidden = 16, .alpha = 0.1, .seed = 7});
  froster::CosineDistillationLoss<B> loss(backend);

  const auto student = random_matrix(rows, dim, 1);
  const auto teacher = random_matrix(rows, dim, 2);

  // W2 starts at zero, so the projector is the identity and the loss is that of the raw features.
  const auto h = projector.forward(student.cview());
  auto d_h = froster::Tensor<float>::host({rows, dim});
  const double before = loss.compute(h, teacher.cview(), d_h.view());
  const double by_hand = cosine_loss_by_hand(student.cview(), teacher.cview());
  expect(close(before, by_hand, 1e-6), "loss of the identity-initialised projector", before, by_hand);

  // Backward through the identity: dz = dh exactly (the W1 branch contributes alpha W2^T ... = 0).
  auto d_z = froster::Tensor<float>::host({rows, dim});
  projector.backward(d_h.cview(), d_z.view());
  for (froster::index_t i = 0; i < rows; ++i)
    for (froster::index_t j = 0; j < dim; ++j)
      expect(d_z.view()(i, j) == d_h.view()(i, j), "dz (must equal dh)", d_z.view()(i, j), d_h.view()(i, j));

  // One small SGD step on the parameters must lower the loss.
  for (auto& p : projector.parameters())
    for (froster::index_t i = 0; i < p.value.rows(); ++i)
      for (froster::index_t j = 0; j < p.value.cols(); ++j) p.value(i, j) -= 0.5f * p.grad(i, j);
  const double after = loss.compute(projector.forward(student.cview()), teacher.cview());
  expect(after < before, "loss after one SGD step (must be below the loss before)", after, before);

  std::printf("froster %d.%d.%d consumer: loss %.6f -> %.6f (by hand %.6f)\n", froster::version_major,
              froster::version_minor, froster::version_patch, before, after, by_hand);
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main() {
  try {
    return run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "FAILED: exception: %s\n", e.what());
    return 1;
  }
}
