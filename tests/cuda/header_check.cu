// froster's headers through nvcc: host code on the ReferenceBackend, checked against a hand computation, and a
// kernel whose result is checked against the same host data when a CUDA device is present.
#include <froster/froster.hpp>

#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <exception>

namespace {

__global__ void scale_kernel(float* x, int n, float a) {
  const int i = int(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) x[i] *= a;
}

int failures = 0;

void expect(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "FAILED: %s\n", what);
    ++failures;
  }
}

froster::Tensor<float> random_matrix(froster::index_t rows, froster::index_t cols, std::uint64_t seed) {
  auto t = froster::Tensor<float>::host({rows, cols});
  froster::NormalRng rng(seed);
  for (froster::index_t i = 0; i < t.numel(); ++i) t.data()[i] = float(rng.normal());
  return t;
}

// The identity-initialised projector leaves the features unchanged: loss = 1 - mean cos of the inputs.
void host_part() {
  using B = froster::ReferenceBackend;
  B backend;
  froster::ResidualProjector<B> projector(backend, {.dim = 8, .hidden = 0, .alpha = 0.1, .seed = 3});
  froster::CosineDistillationLoss<B> loss(backend);
  const auto student = random_matrix(3, 8, 1);
  const auto teacher = random_matrix(3, 8, 2);
  const double got = loss.compute(projector.forward(student.cview()), teacher.cview());
  double want = 0;
  for (froster::index_t i = 0; i < 3; ++i) {
    double ab = 0, aa = 0, bb = 0;
    for (froster::index_t j = 0; j < 8; ++j) {
      const double a = student.view()(i, j), b = teacher.view()(i, j);
      ab += a * b;
      aa += a * a;
      bb += b * b;
    }
    want += (1.0 - ab / std::sqrt(aa * bb)) / 3.0;
  }
  expect(std::abs(got - want) <= 1e-6, "host: cosine loss of the identity projector");
  std::printf("host part: loss %.6f (by hand %.6f)\n", got, want);
}

void device_part() {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    cudaGetLastError();  // clear the sticky "no device" error
    std::printf("device part: skipped, no CUDA device\n");
    return;
  }
  auto x = random_matrix(4, 64, 5);
  const int n = int(x.numel());
  float* d = nullptr;
  expect(cudaMalloc(&d, sizeof(float) * std::size_t(n)) == cudaSuccess, "cudaMalloc");
  if (d == nullptr) return;
  cudaMemcpy(d, x.data(), sizeof(float) * std::size_t(n), cudaMemcpyHostToDevice);
  scale_kernel<<<(n + 127) / 128, 128>>>(d, n, 2.0f);
  expect(cudaGetLastError() == cudaSuccess, "kernel launch");
  auto y = froster::Tensor<float>::host(x.extents());
  expect(cudaMemcpy(y.data(), d, sizeof(float) * std::size_t(n), cudaMemcpyDeviceToHost) == cudaSuccess,
         "cudaMemcpy back");
  cudaFree(d);
  // Doubling is exact in binary floating point.
  bool same = true;
  for (int i = 0; i < n; ++i) same = same && y.data()[i] == 2.0f * x.data()[i];
  expect(same, "device: kernel result");
  std::printf("device part: %d of %d devices, kernel checked\n", 1, devices);
}

}  // namespace

int main() {
  try {
    host_part();
    device_part();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "FAILED: exception: %s\n", e.what());
    return 1;
  }
  return failures == 0 ? 0 : 1;
}
