#pragma once
/// @file
/// `FeatureDistiller`: one branch (visual or text) of FROSTER's residual feature distillation. The student's
/// features are (optionally) L2-normalised, passed through a `ResidualProjector`, and pulled towards the frozen
/// teacher's (normalised) features by a feature loss:
///
///     loss = weight * L(projector(norm(student)), norm(teacher))
///
/// The teacher side gets no gradient. `step` returns the weighted loss, writes d loss / d student, and accumulates
/// the projector's parameter gradients. FROSTER's case (cosine on normalised features) runs the backend's fused
/// `cosine_distillation_step` where it has one (backends/fused_distillation.hpp: CpuBackend does), with the same
/// results as the composition below; `fused = false` forces the composition. A fused step leaves the projector's and
/// the normalisers' own forward caches as they were: call the projector's `backward` only after its own `forward`.

#include <cstdint>
#include <variant>

#include "froster/backends/fused_distillation.hpp"
#include "froster/distillation/losses.hpp"
#include "froster/distillation/normalize.hpp"
#include "froster/distillation/projector.hpp"

namespace froster {

/// The loss a `FeatureDistiller` pulls with: FROSTER uses cosine.
enum class FeatureLoss : std::uint8_t { cosine, mse, l1 };

struct FeatureDistillerConfig {
  index_t dim = 0;                        ///< Feature width D.
  index_t hidden = 0;                     ///< Projector hidden width; 0 means D.
  double alpha = 0.1;                     ///< Projector residual scale.
  std::uint64_t seed = 0;                 ///< Projector initialisation seed.
  FeatureLoss loss = FeatureLoss::cosine;
  double weight = 1.0;                    ///< Multiplies the loss and every gradient (FROSTER: 2.0 beside the CE).
  bool normalize = true;                  ///< L2-normalise student and teacher features first, as FROSTER does.
  bool fused = true;                      ///< Use the backend's fused step where it has one (see the file comment).
};

template <class B, class T = float>
  requires BackendFor<B, T>
class FeatureDistiller {
 public:
  FeatureDistiller(B& backend, FeatureDistillerConfig config)
      : backend_(&backend),
        config_(config),
        student_norm_(backend),
        teacher_norm_(backend),
        projector_(backend, {config.dim, config.hidden, config.alpha, config.seed}),
        cosine_(backend),
        mse_(backend),
        l1_(backend) {
    require<ValueError>(std::isfinite(config.weight), "FeatureDistiller: weight must be finite, got ", config.weight);
  }

  /// Forward and backward. student, teacher, d_student: [rows, dim]. Returns the weighted loss.
  double step(ConstView<T> student, ConstView<T> teacher, TensorView<T> d_student) {
    check_inputs("FeatureDistiller::step", student, teacher);
    check::same_extents("FeatureDistiller::step", "student", student, "d_student", d_student);
    if constexpr (HasFusedCosineDistillation<B, T>) {
      // The fused step writes d_student while it reads the features: an aliased d_student takes the composition.
      if (config_.fused && config_.normalize && config_.loss == FeatureLoss::cosine &&
          !check::overlap(d_student, student) && !check::overlap(d_student, teacher)) {
        const auto [w1, w2] = projector_.parameters();
        const std::optional<double> loss = backend_->cosine_distillation_step(CosineDistillationStep<T>{
            .student = student, .teacher = teacher, .w1 = w1.value, .w2 = w2.value,
            .alpha = T(projector_.config().alpha), .eps = cosine_.options().eps, .weight = config_.weight,
            .d_student = d_student, .grad_w1 = w1.grad, .grad_w2 = w2.grad});
        if (loss) {
          detail::require_finite_loss("FeatureDistiller::step", *loss);
          return config_.weight * *loss;
        }
      }
    }
    const ConstView<T> projected = project(student);
    auto d_projected = ensure_allocated(*backend_, d_projected_, student.extents());
    const double loss = feature_loss(projected, target(teacher), d_projected);
    if (config_.weight != 1.0) backend_->axpby(T(config_.weight), ConstView<T>(d_projected), T(0), d_projected);
    if (!config_.normalize) {
      projector_.backward(ConstView<T>(d_projected), d_student);
      return config_.weight * loss;
    }
    auto d_normalized = ensure_allocated(*backend_, d_normalized_, student.extents());
    projector_.backward(ConstView<T>(d_projected), d_normalized);
    student_norm_.backward(ConstView<T>(d_normalized), d_student);
    return config_.weight * loss;
  }

  /// Forward only: the weighted loss, no gradient anywhere.
  double evaluate(ConstView<T> student, ConstView<T> teacher) {
    check_inputs("FeatureDistiller::evaluate", student, teacher);
    return config_.weight * feature_loss(project(student), target(teacher), {});
  }

  ResidualProjector<B, T>& projector() { return projector_; }
  const FeatureDistillerConfig& config() const { return config_; }

 private:
  void check_inputs(std::string_view op, ConstView<T> student, ConstView<T> teacher) const {
    check::matrix(op, "student", student);
    require<ShapeError>(student.cols() == config_.dim, op, ": student must be [rows, ", config_.dim, "], got ",
                        student);
    check::same_extents(op, "student", student, "teacher", teacher);
    check::nonempty_batch(op, student.rows());
  }

  ConstView<T> project(ConstView<T> student) {
    return projector_.forward(config_.normalize ? student_norm_.forward(student) : student);
  }

  ConstView<T> target(ConstView<T> teacher) { return config_.normalize ? teacher_norm_.forward(teacher) : teacher; }

  double feature_loss(ConstView<T> projected, ConstView<T> target, TensorView<T> d_projected) {
    switch (config_.loss) {
      case FeatureLoss::cosine: return cosine_.compute(projected, target, d_projected);
      case FeatureLoss::mse: return mse_.compute(projected, target, d_projected);
      case FeatureLoss::l1: return l1_.compute(projected, target, d_projected);
    }
    throw ValueError("FeatureDistiller: unknown FeatureLoss value");
  }

  B* backend_;
  FeatureDistillerConfig config_;
  L2Normalize<B, T> student_norm_, teacher_norm_;
  ResidualProjector<B, T> projector_;
  CosineDistillationLoss<B, T> cosine_;
  MseLoss<B, T> mse_;
  L1Loss<B, T> l1_;
  Tensor<T> d_projected_, d_normalized_;
};

}  // namespace froster
