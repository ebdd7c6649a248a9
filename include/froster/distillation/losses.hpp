#pragma once
/// @file
/// Losses for distillation and classification. Each `compute(...)` returns the scalar loss (a host double) and,
/// when gradient views are given (non-null), writes the gradient of that scalar into them. Gradients are written
/// only after the loss is known to be finite: a NaN/Inf loss throws `NumericError` and leaves them untouched.
///
/// | loss                     | value                                                     | PyTorch                              |
/// |--------------------------|-----------------------------------------------------------|--------------------------------------|
/// | CosineDistillationLoss   | mean_i (1 - cos(a_i, b_i))                                | `(1 - F.cosine_similarity(a, b)).mean()` |
/// | MseLoss                  | mean over all elements of (a - b)^2                       | `F.mse_loss(a, b)`                   |
/// | L1Loss                   | mean over all elements of abs(a - b)                      | `F.l1_loss(a, b)`                    |
/// | KlDivergenceLoss         | T^2 / N sum_i KL(softmax(t_i/T) ‖ softmax(s_i/T))          | `F.kl_div(F.log_softmax(s/T,-1), F.log_softmax(t/T,-1), reduction="batchmean", log_target=True) * T*T` |
/// | CrossEntropyLoss         | mean_i -log softmax(x_i)[y_i]                             | `F.cross_entropy(x, y)`              |
/// | SoftCrossEntropyLoss     | mean_i -sum_j t_ij log softmax(x_i)_j                     | `F.cross_entropy(x, t)` (probabilities) |

#include <cmath>
#include <cstdint>
#include <string_view>

#include "froster/backends/backend.hpp"

namespace froster {

namespace detail {

inline void require_finite_loss(std::string_view op, double loss) {
  require<NumericError>(std::isfinite(loss), op, ": the loss is ", loss,
                        " (expected a finite value; the inputs hold NaN or Inf, or overflowed); no gradient was written");
}

/// Shapes shared by every two-input loss: [rows >= 1, cols] inputs of equal extents, optional gradients alike.
template <class T>
void check_pair_loss(std::string_view op, std::string_view input, ConstView<T> a, std::string_view target,
                     ConstView<T> b, const TensorView<T>& da, const TensorView<T>& db) {
  check::matrix(op, input, a);
  check::same_extents(op, input, a, target, b);
  check::nonempty_batch(op, a.rows());
  check::optional_like(op, "the input gradient", da, input, a);
  check::optional_like(op, "the target gradient", db, input, a);
}

}  // namespace detail

/// `mean_i (1 - cos(student_i, teacher_i))` with `torch.nn.functional.cosine_similarity`'s eps semantics:
/// cos = <a, b> / (max(||a||, eps) max(||b||, eps)). A zero row therefore has cos = 0 (loss 1) and the large but
/// finite gradient PyTorch gives it (b / (eps ||b||) for a zero `a`).
template <class B, class T = float>
  requires BackendFor<B, T>
class CosineDistillationLoss {
 public:
  struct Options {
    T eps = T(1e-8);
  };

  explicit CosineDistillationLoss(B& backend, Options options = {}) : backend_(&backend), options_(options) {}

  double compute(ConstView<T> student, ConstView<T> teacher, TensorView<T> d_student = {},
                 TensorView<T> d_teacher = {}) {
    constexpr std::string_view op = "CosineDistillationLoss";
    detail::check_pair_loss<T>(op, "student", student, "teacher", teacher, d_student, d_teacher);
    const index_t n = student.rows();
    auto cos = ensure_allocated(*backend_, cos_, {n});
    auto norm_a = ensure_allocated(*backend_, norm_a_, {n});
    auto norm_b = ensure_allocated(*backend_, norm_b_, {n});
    backend_->cosine_forward(student, teacher, options_.eps, cos, norm_a, norm_b);
    const double loss = 1.0 - backend_->sum(ConstView<T>(cos)) / double(n);
    detail::require_finite_loss(op, loss);
    if (!d_student.is_null() || !d_teacher.is_null())
      backend_->cosine_backward(student, teacher, ConstView<T>(cos), ConstView<T>(norm_a), ConstView<T>(norm_b),
                                options_.eps, T(-1.0 / double(n)), d_student, d_teacher);
    return loss;
  }

  /// Per-row cosine similarities of the last compute.
  ConstView<T> cosines() const { return cos_.cview(); }
  const Options& options() const { return options_; }

 private:
  B* backend_;
  Options options_;
  Tensor<T> cos_, norm_a_, norm_b_;
};

/// Mean over all elements of `(a - b)^2` (Kind = squared_error) or `|a - b|` (absolute_error).
template <PointwiseLoss Kind, class B, class T = float>
  requires BackendFor<B, T>
class PointwiseDistanceLoss {
 public:
  explicit PointwiseDistanceLoss(B& backend) : backend_(&backend) {}

  double compute(ConstView<T> input, ConstView<T> target, TensorView<T> d_input = {}, TensorView<T> d_target = {}) {
    constexpr std::string_view op = Kind == PointwiseLoss::squared_error ? "MseLoss" : "L1Loss";
    detail::check_pair_loss<T>(op, "input", input, "target", target, d_input, d_target);
    auto rows = ensure_allocated(*backend_, row_loss_, {input.rows()});
    backend_->pointwise_loss_forward(Kind, input, target, rows);
    const double count = double(input.numel());
    const double loss = backend_->sum(ConstView<T>(rows)) / count;
    detail::require_finite_loss(op, loss);
    if (!d_input.is_null() || !d_target.is_null())
      backend_->pointwise_loss_backward(Kind, input, target, T(1.0 / count), d_input, d_target);
    return loss;
  }

 private:
  B* backend_;
  Tensor<T> row_loss_;
};

template <class B, class T = float>
using MseLoss = PointwiseDistanceLoss<PointwiseLoss::squared_error, B, T>;
template <class B, class T = float>
using L1Loss = PointwiseDistanceLoss<PointwiseLoss::absolute_error, B, T>;

/// Hinton's distillation loss between temperature-softened logits, scaled by T^2 so its gradient magnitude does
/// not depend on T: `T^2 / N sum_i KL(softmax(teacher_i / T) || softmax(student_i / T))`.
template <class B, class T = float>
  requires BackendFor<B, T>
class KlDivergenceLoss {
 public:
  struct Options {
    T temperature = T(1);
  };

  explicit KlDivergenceLoss(B& backend, Options options = {}) : backend_(&backend), options_(options) {
    require<ValueError>(options.temperature > T(0) && std::isfinite(double(options.temperature)),
                        "KlDivergenceLoss: temperature must be positive and finite, got ", options.temperature);
  }

  double compute(ConstView<T> student_logits, ConstView<T> teacher_logits, TensorView<T> d_student = {},
                 TensorView<T> d_teacher = {}) {
    constexpr std::string_view op = "KlDivergenceLoss";
    detail::check_pair_loss<T>(op, "student_logits", student_logits, "teacher_logits", teacher_logits, d_student,
                               d_teacher);
    const index_t n = student_logits.rows();
    const T inv_t = T(1) / options_.temperature;
    const double t2 = double(options_.temperature) * double(options_.temperature);
    auto logp_s = ensure_allocated(*backend_, logp_student_, student_logits.extents());
    auto logp_t = ensure_allocated(*backend_, logp_teacher_, student_logits.extents());
    auto rows = ensure_allocated(*backend_, row_loss_, {n});
    backend_->log_softmax_forward(student_logits, inv_t, logp_s);
    backend_->log_softmax_forward(teacher_logits, inv_t, logp_t);
    backend_->kl_div_forward(ConstView<T>(logp_s), ConstView<T>(logp_t), rows);
    const double loss = t2 * backend_->sum(ConstView<T>(rows)) / double(n);
    detail::require_finite_loss(op, loss);
    if (!d_student.is_null() || !d_teacher.is_null())  // chain rule through x / T: scale T^2 / N * 1 / T
      backend_->kl_div_backward(ConstView<T>(logp_s), ConstView<T>(logp_t), ConstView<T>(rows),
                                T(double(options_.temperature) / double(n)), d_student, d_teacher);
    return loss;
  }

 private:
  B* backend_;
  Options options_;
  Tensor<T> logp_student_, logp_teacher_, row_loss_;
};

/// Cross-entropy with hard labels in [0, classes): `mean_i -log softmax(logits_i)[label_i]`. A label out of range
/// throws `ValueError` naming it.
template <class B, class T = float>
  requires BackendFor<B, T>
class CrossEntropyLoss {
 public:
  explicit CrossEntropyLoss(B& backend) : backend_(&backend) {}

  double compute(ConstView<T> logits, ConstView<std::int64_t> labels, TensorView<T> d_logits = {}) {
    constexpr std::string_view op = "CrossEntropyLoss";
    check::matrix(op, "logits", logits);
    check::nonempty_batch(op, logits.rows());
    check::per_row(op, "logits", logits, "labels", labels);
    check::optional_like(op, "d_logits", d_logits, "logits", logits);
    const index_t n = logits.rows();
    auto logp = ensure_allocated(*backend_, logp_, logits.extents());
    auto rows = ensure_allocated(*backend_, row_loss_, {n});
    backend_->log_softmax_forward(logits, T(1), logp);
    backend_->cross_entropy_forward(ConstView<T>(logp), labels, rows);
    const double loss = backend_->sum(ConstView<T>(rows)) / double(n);
    detail::require_finite_loss(op, loss);
    if (!d_logits.is_null()) backend_->cross_entropy_backward(ConstView<T>(logp), labels, T(1.0 / double(n)), d_logits);
    return loss;
  }

 private:
  B* backend_;
  Tensor<T> logp_, row_loss_;
};

/// Cross-entropy against target distributions: `mean_i -sum_j targets_ij log softmax(logits_i)_j`. FROSTER trains
/// with it (label-smoothed or mixed targets). Targets need not sum to one; the gradient is PyTorch's,
/// `(softmax_i sum_j t_ij - t_i) / N`.
template <class B, class T = float>
  requires BackendFor<B, T>
class SoftCrossEntropyLoss {
 public:
  explicit SoftCrossEntropyLoss(B& backend) : backend_(&backend) {}

  double compute(ConstView<T> logits, ConstView<T> targets, TensorView<T> d_logits = {}) {
    constexpr std::string_view op = "SoftCrossEntropyLoss";
    detail::check_pair_loss<T>(op, "logits", logits, "targets", targets, d_logits, {});
    const index_t n = logits.rows();
    auto logp = ensure_allocated(*backend_, logp_, logits.extents());
    auto rows = ensure_allocated(*backend_, row_loss_, {n});
    backend_->log_softmax_forward(logits, T(1), logp);
    backend_->soft_cross_entropy_forward(ConstView<T>(logp), targets, rows);
    const double loss = backend_->sum(ConstView<T>(rows)) / double(n);
    detail::require_finite_loss(op, loss);
    if (!d_logits.is_null())
      backend_->soft_cross_entropy_backward(ConstView<T>(logp), targets, T(1.0 / double(n)), d_logits);
    return loss;
  }

 private:
  B* backend_;
  Tensor<T> logp_, row_loss_;
};

}  // namespace froster
