#pragma once
/// @file
/// FROSTER's feature-distillation step as one optional backend op: L2 normalisation, the residual projector and
/// the cosine loss, forward and backward, for student features z and teacher features t [rows, dim]:
///
///     zn = z / ||z||,  tn = t / ||t||,  h = zn + alpha W2 gelu(W1 zn)
///     loss = mean_i (1 - cos(h_i, tn_i))                      (returned unweighted)
///     d_student = weight * d loss / d z                       (written)
///     grad_w1 += weight * d loss / d W1, grad_w2 += ...       (accumulated)
///
/// `FeatureDistiller::step` (distillation/distiller.hpp) composes this from the Backend concept's ops; a backend
/// may provide `cosine_distillation_step(step)` returning `std::optional<double>` (the loss; `nullopt` for a case
/// it does not take, which then runs the composition). CpuBackend's runs the whole chain a block of rows at a
/// time, with each block's intermediates in cache (docs/cpu_backend.md). Its results are those of the composition
/// on the same backend. A non-finite loss is returned before anything is written: d_student and the gradients are
/// left as they were (the caller reports it).

#include <concepts>
#include <optional>
#include <string_view>

#include "froster/backends/backend.hpp"
#include "froster/backends/op_checks.hpp"

namespace froster {

/// The operands of one fused distillation step (see the file comment).
template <class T>
struct CosineDistillationStep {
  ConstView<T> student = {};      ///< z [rows, dim].
  ConstView<T> teacher = {};      ///< t [rows, dim]; gets no gradient.
  ConstView<T> w1 = {};           ///< [hidden, dim], as torch.nn.Linear.weight.
  ConstView<T> w2 = {};           ///< [dim, hidden].
  T alpha = T(0.1);               ///< Projector residual scale.
  T eps = T(1e-8);                ///< Cosine's norm clamp (torch.nn.functional.cosine_similarity's eps).
  double weight = 1.0;            ///< Multiplies every gradient (not the returned loss).
  TensorView<T> d_student = {};   ///< [rows, dim], written.
  TensorView<T> grad_w1 = {};     ///< [hidden, dim], accumulated.
  TensorView<T> grad_w2 = {};     ///< [dim, hidden], accumulated.
};

namespace check {

template <class T>
void cosine_distillation_step_args(const CosineDistillationStep<T>& s) {
  constexpr std::string_view op = "cosine_distillation_step";
  matrix(op, "student", s.student);
  same_extents(op, "student", s.student, "teacher", s.teacher);
  nonempty_batch(op, s.student.rows());
  const index_t dim = s.student.cols();
  matrix(op, "w1", s.w1);
  require<ShapeError>(s.w1.cols() == dim, op, ": w1 must be [hidden, ", dim, "], got ", s.w1);
  matrix(op, "w2", s.w2, dim, s.w1.rows());
  same_extents(op, "student", s.student, "d_student", s.d_student);
  same_extents(op, "w1", s.w1, "grad_w1", s.grad_w1);
  same_extents(op, "w2", s.w2, "grad_w2", s.grad_w2);
  const auto distinct_from_inputs = [&](std::string_view name, const TensorView<T>& out) {
    distinct(op, name, out, "student", s.student);
    distinct(op, name, out, "teacher", s.teacher);
    distinct(op, name, out, "w1", s.w1);
    distinct(op, name, out, "w2", s.w2);
  };
  distinct_from_inputs("d_student", s.d_student);
  distinct_from_inputs("grad_w1", s.grad_w1);
  distinct_from_inputs("grad_w2", s.grad_w2);
  distinct(op, "d_student", s.d_student, "grad_w1", s.grad_w1);
  distinct(op, "d_student", s.d_student, "grad_w2", s.grad_w2);
  distinct(op, "grad_w1", s.grad_w1, "grad_w2", s.grad_w2);
}

}  // namespace check

/// Whether backend `B` has its own fused distillation step for `T`.
template <class B, class T>
concept HasFusedCosineDistillation = requires(B& backend, const CosineDistillationStep<T>& step) {
  { backend.cosine_distillation_step(step) } -> std::same_as<std::optional<double>>;
};

}  // namespace froster
