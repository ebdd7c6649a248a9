#pragma once
/// @file
/// Reduction and loss drivers of the CPU backend (sum, dot, pointwise losses, cross-entropy, soft cross-entropy,
/// KL divergence, temporal pooling): rows over the pool, the ISA's kernel per row (kernels/reductions-inl.hpp).
/// fp32 views with contiguous rows take the kernels; others return false (nullopt) and the backend runs the
/// reference loops. Arguments arrive checked. Results do not depend on the thread count: sum and dot add one
/// double partial per row (or per fixed segment of a vector) in order on the calling thread, and every other
/// output element is computed by one thread.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <vector>

#include "froster/backends/cpu/context.hpp"
#include "froster/backends/cpu/kernels.hpp"
#include "froster/backends/cpu/rows.hpp"
#include "froster/backends/ops.hpp"
#include "froster/core/tensor_view.hpp"

namespace froster::cpu {

namespace reductions_driver {

/// A rank-1 vector is summed in segments of this many elements (the unit of threading and of the double partials).
inline constexpr index_t segment = index_t(1) << 14;

/// sum over rows of row_total(tag, i) in double, rows in order; the partials are computed over the pool.
template <class RowTotal>
double ordered_total(Context ctx, index_t rows, index_t cols, RowTotal&& row_total) {
  std::vector<double> partial(std::size_t(std::max<index_t>(rows, 0)));
  rows_driver::run_rows(ctx, rows, cols, [&](auto tag, index_t i) { partial[std::size_t(i)] = row_total(tag, i); });
  double total = 0;
  for (const double p : partial) total += p;
  return total;
}

/// A null view, or one whose rows the kernels can write.
template <class T>
bool optional_rows(const TensorView<T>& v) {
  return v.is_null() || rows_contiguous(v);
}

template <class T>
T* row_or_null(const TensorView<T>& v, index_t i) {
  return v.is_null() ? nullptr : &v(i, 0);
}

}  // namespace reductions_driver

template <class T>
std::optional<double> sum(Context ctx, ConstView<T> x) {
  if constexpr (!std::is_same_v<T, float>) return std::nullopt;
  else {
    if (x.rank() == 1) {
      if (!rows_driver::unit_vector(x)) return std::nullopt;
      const index_t n = x.extent(0), segs = (n + reductions_driver::segment - 1) / reductions_driver::segment;
      return reductions_driver::ordered_total(ctx, segs, reductions_driver::segment, [&](auto tag, index_t s) {
        const index_t begin = s * reductions_driver::segment;
        return sum_row(tag, std::min(reductions_driver::segment, n - begin), x.data() + begin);
      });
    }
    if (!rows_contiguous(x)) {
      if (rows_contiguous(x.transposed())) return sum(ctx, x.transposed());
      return std::nullopt;
    }
    const index_t cols = x.cols();
    return reductions_driver::ordered_total(ctx, x.rows(), cols,
                                            [&](auto tag, index_t i) { return sum_row(tag, cols, &x(i, 0)); });
  }
}

template <class T>
std::optional<double> dot(Context ctx, ConstView<T> a, ConstView<T> b) {
  if constexpr (!std::is_same_v<T, float>) return std::nullopt;
  else {
    if (!rows_contiguous(a, b)) {
      if (rows_contiguous(a.transposed(), b.transposed())) return dot(ctx, a.transposed(), b.transposed());
      return std::nullopt;
    }
    const index_t cols = a.cols();
    return reductions_driver::ordered_total(
        ctx, a.rows(), cols, [&](auto tag, index_t i) { return dot_row(tag, cols, &a(i, 0), &b(i, 0)); });
  }
}

template <class T>
bool pointwise_loss_forward(Context ctx, PointwiseLoss kind, ConstView<T> a, ConstView<T> b, TensorView<T> row_loss) {
  if constexpr (!std::is_same_v<T, float>) return false;
  else {
    if (!rows_contiguous(a, b)) return false;
    const index_t cols = a.cols();
    const bool squared = kind == PointwiseLoss::squared_error;
    rows_driver::run_rows(ctx, a.rows(), cols, [&](auto tag, index_t i) {
      row_loss(i) = float(pointwise_loss_row(tag, squared, cols, &a(i, 0), &b(i, 0)));
    });
    return true;
  }
}

template <class T>
bool pointwise_loss_backward(Context ctx, PointwiseLoss kind, ConstView<T> a, ConstView<T> b, T scale,
                             TensorView<T> da, TensorView<T> db) {
  if constexpr (!std::is_same_v<T, float>) return false;
  else {
    using reductions_driver::optional_rows, reductions_driver::row_or_null;
    if (!rows_contiguous(a, b) || !optional_rows(da) || !optional_rows(db)) return false;
    if (da.is_null() && db.is_null()) return true;
    const index_t cols = a.cols();
    const bool squared = kind == PointwiseLoss::squared_error;
    rows_driver::run_rows(ctx, a.rows(), cols, [&](auto tag, index_t i) {
      pointwise_loss_backward_row(tag, squared, cols, &a(i, 0), &b(i, 0), scale, row_or_null(da, i),
                                  row_or_null(db, i));
    });
    return true;
  }
}

/// A gather of one element per row: nothing to vectorise, the reference's loop on the calling thread.
template <class T>
bool cross_entropy_forward(Context, ConstView<T> logp, ConstView<std::int64_t> labels, TensorView<T> row_loss) {
  if constexpr (!std::is_same_v<T, float>) return false;
  else {
    for (index_t i = 0; i < logp.rows(); ++i) row_loss(i) = -logp(i, labels(i));
    return true;
  }
}

template <class T>
bool cross_entropy_backward(Context ctx, ConstView<T> logp, ConstView<std::int64_t> labels, T scale,
                            TensorView<T> dlogits) {
  if constexpr (!std::is_same_v<T, float>) return false;
  else {
    if (!rows_contiguous(logp, dlogits)) return false;
    const index_t cols = logp.cols();
    rows_driver::run_rows(ctx, logp.rows(), cols, [&](auto tag, index_t i) {
      const index_t label = index_t(labels(i));
      // The label's element in double as the reference (exp(logp) - 1 cancels when p is near 1); read before the
      // row pass, which may overwrite logp in place.
      const float at_label = float(double(scale) * (std::exp(double(logp(i, label))) - 1.0));
      cross_entropy_backward_row(tag, cols, &logp(i, 0), scale, &dlogits(i, 0));
      dlogits(i, label) = at_label;
    });
    return true;
  }
}

template <class T>
bool soft_cross_entropy_forward(Context ctx, ConstView<T> logp, ConstView<T> targets, TensorView<T> row_loss) {
  if constexpr (!std::is_same_v<T, float>) return false;
  else {
    if (!rows_contiguous(logp, targets)) return false;
    const index_t cols = logp.cols();
    rows_driver::run_rows(ctx, logp.rows(), cols, [&](auto tag, index_t i) {
      row_loss(i) = float(soft_cross_entropy_row(tag, cols, &logp(i, 0), &targets(i, 0)));
    });
    return true;
  }
}

template <class T>
bool soft_cross_entropy_backward(Context ctx, ConstView<T> logp, ConstView<T> targets, T scale,
                                 TensorView<T> dlogits) {
  if constexpr (!std::is_same_v<T, float>) return false;
  else {
    if (!rows_contiguous(logp, targets, dlogits)) return false;
    const index_t cols = logp.cols();
    rows_driver::run_rows(ctx, logp.rows(), cols, [&](auto tag, index_t i) {
      const float mass = float(sum_row(tag, cols, &targets(i, 0)));
      soft_cross_entropy_backward_row(tag, cols, &logp(i, 0), &targets(i, 0), mass, scale, &dlogits(i, 0));
    });
    return true;
  }
}

template <class T>
bool kl_div_forward(Context ctx, ConstView<T> logp_student, ConstView<T> logp_teacher, TensorView<T> row_loss) {
  if constexpr (!std::is_same_v<T, float>) return false;
  else {
    if (!rows_contiguous(logp_student, logp_teacher)) return false;
    const index_t cols = logp_student.cols();
    rows_driver::run_rows(ctx, logp_student.rows(), cols, [&](auto tag, index_t i) {
      row_loss(i) = float(kl_div_row(tag, cols, &logp_student(i, 0), &logp_teacher(i, 0)));
    });
    return true;
  }
}

template <class T>
bool kl_div_backward(Context ctx, ConstView<T> logp_student, ConstView<T> logp_teacher, ConstView<T> row_loss,
                     T scale, TensorView<T> d_student, TensorView<T> d_teacher) {
  if constexpr (!std::is_same_v<T, float>) return false;
  else {
    using reductions_driver::optional_rows, reductions_driver::row_or_null;
    if (!rows_contiguous(logp_student, logp_teacher) || !optional_rows(d_student) || !optional_rows(d_teacher))
      return false;
    if (d_student.is_null() && d_teacher.is_null()) return true;
    const index_t cols = logp_student.cols();
    rows_driver::run_rows(ctx, logp_student.rows(), cols, [&](auto tag, index_t i) {
      kl_div_backward_row(tag, cols, &logp_student(i, 0), &logp_teacher(i, 0), row_loss(i), scale,
                          row_or_null(d_student, i), row_or_null(d_teacher, i));
    });
    return true;
  }
}

/// Clips over the pool; each clip's frames are rows `x.stride(0)` apart.
template <class T>
bool temporal_pool_forward(Context ctx, Pooling mode, ConstView<T> x, index_t frames, TensorView<T> y,
                           TensorView<std::int64_t> argmax) {
  if constexpr (!std::is_same_v<T, float>) return false;
  else {
    if (!rows_contiguous(x, y)) return false;
    const index_t cols = x.cols(), clips = x.rows() / frames;
    if (cols == 0) return true;
    const index_t stride = x.stride(0);
    rows_driver::run_rows(ctx, clips, cols * frames, [&](auto tag, index_t c) {
      const float* xc = &x(c * frames, 0);
      if (mode == Pooling::mean) temporal_mean_row(tag, cols, frames, xc, stride, &y(c, 0));
      else temporal_max_row(tag, cols, frames, xc, stride, &y(c, 0), &argmax(c, 0), argmax.stride(1));
    });
    return true;
  }
}

template <class T>
bool temporal_pool_backward(Context ctx, Pooling mode, index_t frames, ConstView<T> dy,
                            ConstView<std::int64_t> argmax, TensorView<T> dx) {
  if constexpr (!std::is_same_v<T, float>) return false;
  else {
    if (!rows_contiguous(dy, dx)) return false;
    const index_t cols = dx.cols(), clips = dx.rows() / frames;
    if (cols == 0) return true;
    const index_t stride = dx.stride(0);
    rows_driver::run_rows(ctx, clips, cols * frames, [&](auto tag, index_t c) {
      if (mode == Pooling::mean) return temporal_mean_backward_row(tag, cols, frames, &dy(c, 0), &dx(c * frames, 0), stride);
      // Zero the clip's rows, then route each column's gradient to its saved frame (none when out of range, as
      // the reference's comparison).
      for (index_t t = 0; t < frames; ++t) std::fill_n(&dx(c * frames + t, 0), cols, 0.0f);
      for (index_t k = 0; k < cols; ++k) {
        const std::int64_t t = argmax(c, k);
        if (t >= 0 && t < frames) dx(c * frames + index_t(t), k) = dy(c, k);
      }
    });
    return true;
  }
}

}  // namespace froster::cpu
