#pragma once
/// @file
/// GEMM with a fused epilogue: `C = epilogue(alpha op(A) op(B))`, the building block of a linear layer (bias,
/// activation, residual add) and of its backward pass (the activation-derivative product).
///
/// `fused_gemm(backend, alpha, a, ta, b, tb, epi, c)` computes, for every element,
///
///     v = alpha op(A) op(B) + bias[col] + residual        (each term only where given)
///     c = v                                                no activation
///     c = act(v),  save_pre = v                            activation, forward (save_pre optional)
///     c = v * act'(derivative_at)                          activation with derivative_at: the backward pass
///
/// A backend may provide `fused_gemm(alpha, a, ta, b, tb, epi, c)` as a member (CpuBackend does: the epilogue runs
/// on each finished tile while it is in L1); it is optional. Where a backend lacks it, the function composes the
/// same result from the `Backend` concept's ops (gemm, copy, activation_forward / activation_backward, and a rank-1
/// gemm with a vector of ones for the bias), so a user's own backend needs nothing new. That composition is the
/// ground truth the fused members are tested against.
///
/// Packed operands, also optional: a backend may provide `pack_gemm_operand(b, tb)`, returning an object that holds
/// op(B) in its GEMM's internal layout, and `fused_gemm(alpha, a, ta, packed, epi, c)` taking it, bitwise equal to
/// the same call with `b, tb`. Layers whose weights stay unchanged over many forwards (a frozen teacher, inference)
/// use them through `HasPackedGemm` (nn/layers.hpp's `ForwardWeight`); other backends run the plain call.
///
/// Aliasing: `residual` may be exactly `c` (the same view: C accumulates in place, `C += alpha op(A) op(B)`);
/// otherwise the outputs (`c`, `save_pre`) must not overlap each other or any input (`a`, `b`, `bias`, `residual`,
/// `derivative_at`). Arguments are checked once, before anything is written.

#include <cstddef>
#include <optional>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

#include "froster/backends/backend.hpp"
#include "froster/backends/op_checks.hpp"

namespace froster {

/// What `fused_gemm` does to each element of `alpha op(A) op(B)` (see the file comment). Null views are absent.
template <class T>
struct LinearEpilogue {
  // Every member has a default so designated initializers may name any subset (-Wmissing-field-initializers).
  ConstView<T> bias = {};                     ///< [n]: added to every row.
  ConstView<T> residual = {};                 ///< [m, n]: added (may be `c` itself: in-place accumulation).
  std::optional<Activation> activation = {};  ///< Applied last (forward), or its derivative (with derivative_at).
  TensorView<T> save_pre = {};                ///< [m, n], forward only: receives v, the activation's input.
  ConstView<T> derivative_at = {};            ///< [m, n]: backward mode, c = v * act'(derivative_at).
};

namespace check {

template <class T>
void fused_gemm_args(ConstView<T> a, Transpose ta, ConstView<T> b, Transpose tb, const LinearEpilogue<T>& epi,
                     TensorView<T> c) {
  constexpr std::string_view op = "fused_gemm";
  gemm(op, a, ta, b, tb, c);
  const index_t m = c.rows(), n = c.cols();
  if (!epi.bias.is_null()) vector(op, "bias", epi.bias, n);
  if (!epi.residual.is_null()) matrix(op, "residual", epi.residual, m, n);
  if (!epi.save_pre.is_null()) matrix(op, "save_pre", epi.save_pre, m, n);
  if (!epi.derivative_at.is_null()) matrix(op, "derivative_at", epi.derivative_at, m, n);
  require<ValueError>(epi.save_pre.is_null() || epi.activation.has_value(), op,
                      ": save_pre receives the activation's input, but no activation was given");
  require<ValueError>(epi.derivative_at.is_null() || epi.activation.has_value(), op,
                      ": derivative_at multiplies by an activation's derivative, but no activation was given");
  require<ValueError>(epi.save_pre.is_null() || epi.derivative_at.is_null(), op,
                      ": save_pre (forward) and derivative_at (backward) exclude each other, got both");
  const bool residual_in_place = !epi.residual.is_null() && same_view(epi.residual, ConstView<T>(c));
  const auto distinct_from_inputs = [&](std::string_view name, const TensorView<T>& out, bool may_be_residual) {
    distinct(op, name, out, "A", a);
    distinct(op, name, out, "B", b);
    distinct(op, name, out, "bias", epi.bias);
    distinct(op, name, out, "derivative_at", epi.derivative_at);
    if (!may_be_residual) distinct(op, name, out, "residual", epi.residual);
  };
  distinct_from_inputs("c", c, residual_in_place);
  distinct_from_inputs("save_pre", epi.save_pre, false);
  distinct(op, "c", c, "save_pre", epi.save_pre);
}

}  // namespace check

/// Whether backend `B` has its own `fused_gemm` member for `T`.
template <class B, class T>
concept HasFusedGemm = requires(B& backend, T s, ConstView<T> x, Transpose t, const LinearEpilogue<T>& epi,
                                TensorView<T> y) { backend.fused_gemm(s, x, t, x, t, epi, y); };

/// Whether backend `B` can pre-pack a GEMM operand for `T` (see the file comment).
template <class B, class T>
concept HasPackedGemm =
    requires(const B& backend, T s, ConstView<T> x, Transpose t, const LinearEpilogue<T>& epi, TensorView<T> y) {
      backend.fused_gemm(s, x, t, backend.pack_gemm_operand(x, t), epi, y);
    };

namespace detail {
template <class B, class T>
struct PackedGemmOperandType {
  using type = std::monostate;  // nothing to hold where the backend cannot pack
};
template <class B, class T>
  requires HasPackedGemm<B, T>
struct PackedGemmOperandType<B, T> {
  using type = decltype(std::declval<const B&>().pack_gemm_operand(std::declval<ConstView<T>>(), Transpose::no));
};
}  // namespace detail

/// What `B::pack_gemm_operand` returns for `T`; `std::monostate` where `B` has no packed operands.
template <class B, class T>
using PackedGemmOperandOf = typename detail::PackedGemmOperandType<B, T>::type;

/// `fused_gemm` from the concept's ops alone (arguments already checked). The ground truth of the fused members,
/// and what backends without one run.
template <class B, class T>
void fused_gemm_composed(B& backend, T alpha, ConstView<T> a, Transpose ta, ConstView<T> b, Transpose tb,
                         const LinearEpilogue<T>& epi, TensorView<T> c) {
  // v goes to save_pre where it is kept, else straight to c (the activation then runs in place).
  const TensorView<T> v = epi.save_pre.is_null() ? c : epi.save_pre;
  T beta = T(0);
  if (!epi.residual.is_null()) {
    if (!check::same_view(epi.residual, ConstView<T>(v))) backend.copy(epi.residual, v);
    beta = T(1);
  }
  backend.gemm(alpha, a, ta, b, tb, beta, v);
  if (!epi.bias.is_null()) {  // v += ones[m, 1] bias[1, n]: a rank-1 update, exact (each term is 1 * bias)
    Tensor<T> ones = backend.template allocate<T>({c.rows(), 1});
    backend.fill(ones.view(), T(1));
    const ConstView<T> bias_row(epi.bias.data(), {1, epi.bias.extent(0)},
                                {epi.bias.extent(0) * epi.bias.stride(0), epi.bias.stride(0)}, epi.bias.device());
    backend.gemm(T(1), ones.cview(), Transpose::no, bias_row, Transpose::no, T(1), v);
  }
  if (!epi.activation) return;
  if (!epi.derivative_at.is_null())
    backend.activation_backward(*epi.activation, epi.derivative_at, ConstView<T>(c), c);
  else
    backend.activation_forward(*epi.activation, ConstView<T>(v), c);
}

/// C = epilogue(alpha op(A) op(B)) (see the file comment): the backend's own fused member where it has one, else
/// the composition of the concept's ops.
/// The element type is deduced from `c` alone, so `a`, `b` may be mutable views and `alpha` any arithmetic type.
template <class B, class T>
  requires BackendFor<B, T>
void fused_gemm(B& backend, std::type_identity_t<T> alpha, std::type_identity_t<ConstView<T>> a, Transpose ta,
                std::type_identity_t<ConstView<T>> b, Transpose tb, const std::type_identity_t<LinearEpilogue<T>>& epi,
                TensorView<T> c) {
  check::fused_gemm_args(a, ta, b, tb, epi, c);
  if constexpr (HasFusedGemm<B, T>)
    backend.fused_gemm(alpha, a, ta, b, tb, epi, c);
  else
    fused_gemm_composed(backend, alpha, a, ta, b, tb, epi, c);
}

}  // namespace froster
