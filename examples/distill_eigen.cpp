// distill_eigen: a downstream trainer whose data lives in Eigen matrices distils a small linear student towards a
// frozen teacher's features through froster's FeatureDistiller (residual projector + cosine loss) on EigenBackend.
//
// The trainer keeps its own model (W_s) and its own maths in Eigen; froster only sees zero-copy views of the
// trainer's matrices, whatever their layout: the inputs are column-major (Eigen's default), the teacher's features
// row-major, and a mini-batch is a block of rows of each (a strided one in column-major X). The program exits
// non-zero if the loss does not fall, so it doubles as an end-to-end check.

#include <Eigen/Core>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <froster/eigen.hpp>
#include <froster/froster.hpp>

namespace {

using RowMatrixXf = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

constexpr Eigen::Index samples = 256;     // N
constexpr Eigen::Index input_dim = 64;    // width of X
constexpr Eigen::Index feature_dim = 32;  // width of the teacher's and the student's features
constexpr Eigen::Index batch = 64;
constexpr int epochs = 30;
constexpr float learning_rate = 2.0f;

// A [rows, cols] matrix of N(0, std^2) entries, filled in a fixed order so the seed alone decides it.
Eigen::MatrixXf random_matrix(Eigen::Index rows, Eigen::Index cols, double std_dev, std::uint64_t seed) {
  froster::NormalRng rng(seed);
  Eigen::MatrixXf m(rows, cols);
  for (Eigen::Index i = 0; i < rows; ++i)
    for (Eigen::Index j = 0; j < cols; ++j) m(i, j) = float(std_dev * rng.normal());
  return m;
}

}  // namespace

int main() {
  // Synthetic data. X is column-major: view_of(X) carries strides {1, N}, and the backend reads it as it is.
  const Eigen::MatrixXf x = random_matrix(samples, input_dim, 1.0, 1);

  // The frozen teacher: a fixed random linear map followed by L2 normalisation, stored row-major.
  const Eigen::MatrixXf teacher_map = random_matrix(input_dim, feature_dim, 1.0, 2);
  const RowMatrixXf teacher = (x * teacher_map).rowwise().normalized();

  // The student: a linear map W_s [64 -> 32], unrelated to the teacher's at the start. A linear teacher is within
  // the student's reach, so the loss can fall close to zero.
  Eigen::MatrixXf w_s = random_matrix(input_dim, feature_dim, 1.0 / std::sqrt(double(input_dim)), 3);

  // The distiller pulls projector(norm(S)) towards norm(T) with 1 - cos; the projector starts as the identity
  // (W2 = 0) and trains alongside the student, as in FROSTER.
  froster::EigenBackend backend;
  froster::FeatureDistiller<froster::EigenBackend> distiller(
      backend, {.dim = feature_dim, .alpha = 0.1, .seed = 4, .loss = froster::FeatureLoss::cosine});

  // The whole data set through the distiller, forward only: the loss the student starts from and ends at.
  const auto full_loss = [&] {
    const Eigen::MatrixXf s = x * w_s;
    return distiller.evaluate(froster::view_of(s), froster::view_of(teacher));
  };
  const double initial_loss = full_loss();
  std::printf("initial loss %.4f\n", initial_loss);

  Eigen::MatrixXf s(batch, feature_dim), d_s(batch, feature_dim), d_w(input_dim, feature_dim);
  for (int epoch = 1; epoch <= epochs; ++epoch) {
    double epoch_loss = 0;
    for (Eigen::Index start = 0; start < samples; start += batch) {
      // A mini-batch is a block of rows: in column-major X its view has strides {1, N}, no copy.
      const auto x_b = x.middleRows(start, batch);
      s.noalias() = x_b * w_s;

      // Forward and backward through normalisation, projector and loss: returns the loss, writes dL/dS into d_s
      // and accumulates the projector's parameter gradients.
      epoch_loss += distiller.step(froster::view_of(s), froster::view_of(teacher.middleRows(start, batch)),
                                   froster::view_of(d_s));

      // The rest of the backward pass is the trainer's own: S = X_b W_s, so dL/dW_s = X_b^T dL/dS.
      d_w.noalias() = x_b.transpose() * d_s;
      w_s -= learning_rate * d_w;

      // Plain SGD on the projector through its parameter list; its gradients accumulate, so clear them after.
      for (const auto& p : distiller.projector().parameters())
        backend.axpby(-learning_rate, froster::ConstView<float>(p.grad), 1.0f, p.value);
      distiller.projector().zero_grad();
    }
    if (epoch % 5 == 0 || epoch == 1)
      std::printf("epoch %3d  mean batch loss %.4f\n", epoch, epoch_loss / double(samples / batch));
  }

  const double final_loss = full_loss();
  std::printf("final loss %.4f (from %.4f)\n", final_loss, initial_loss);
  if (!(final_loss < 0.05 && final_loss < 0.2 * initial_loss)) {
    std::fprintf(stderr, "distill_eigen: the loss did not fall as expected\n");
    return 1;
  }
  return 0;
}
