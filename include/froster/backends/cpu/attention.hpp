#pragma once
/// @file
/// Fused multi-head attention drivers of the CPU backend (kernels in kernels/attention-inl.hpp). Each returns false
/// for cases it does not take (fp64, rows that are not contiguous); the backend then runs the reference loops.
/// Arguments arrive checked.
///
/// Work and memory: the forward pass splits (sequence, head) over the pool, and a pair's queries into ranges of query
/// blocks when there are too few pairs to keep the pool busy; the backward pass splits (group, head), a group being
/// one sequence, or one clip's frames for temporal_neighbours (they share keys). Each worker gets one workspace slab
/// for the whole call: fixed-size tiles plus, in the forward pass, one head's keys and values (2 * keys * head_dim
/// floats) and, in the backward pass, `frames * tokens` floats (the per-row D of FlashAttention-2). Linear in tokens:
/// no [tokens x keys] score matrix is ever allocated. `attention_workspace_bytes` is that allocation.

#include <algorithm>
#include <cstddef>
#include <type_traits>

#include "froster/backends/cpu/context.hpp"
#include "froster/backends/cpu/kernels.hpp"
#include "froster/core/tensor.hpp"

namespace froster::cpu {

namespace detail {
inline index_t attention_workers(Context ctx, index_t tasks) {
  return std::min<index_t>(index_t(ctx.pool->size()), tasks);
}
/// The forward pass's split of each (sequence, head) into ranges of query blocks: one range (the keys are packed
/// once per range) unless there are too few (sequence, head) pairs to keep the pool busy.
inline index_t attention_forward_splits(Context ctx, const AttentionSpec& spec, index_t query_block) {
  const index_t blocks = (spec.tokens + query_block - 1) / query_block;
  const index_t wanted = 4 * index_t(ctx.pool->size()), pairs = spec.batch * spec.heads;
  return std::clamp<index_t>((wanted + pairs - 1) / pairs, 1, blocks);
}
inline index_t attention_backward_groups(const AttentionSpec& spec) {
  return spec.mask == AttentionMask::temporal_neighbours ? spec.batch / spec.frames : spec.batch;
}
}  // namespace detail

/// Bytes of workspace the forward (or backward) pass allocates for one call: one slab per worker.
inline std::size_t attention_workspace_bytes(Context ctx, const AttentionSpec& spec, index_t head_dim,
                                             bool backward) {
  return dispatch(ctx.isa, [&](auto tag) {
    const index_t tasks =
        backward ? detail::attention_backward_groups(spec) * spec.heads
                 : spec.batch * spec.heads * detail::attention_forward_splits(ctx, spec, attn_br_of(tag));
    const index_t floats =
        detail::attention_workers(ctx, tasks) * attention_workspace_floats(tag, spec, head_dim, backward);
    return std::size_t(floats) * sizeof(float);
  });
}

/// out, lse = attention(q, k, v) (see AttentionSpec and reference/attention.hpp).
template <class T>
bool attention_forward(Context ctx, ConstView<T> q, ConstView<T> k, ConstView<T> v, const AttentionSpec& spec,
                       T scale, TensorView<T> out, TensorView<T> lse) {
  if constexpr (!std::is_same_v<T, float>) {
    return false;
  } else {
    if (!rows_contiguous(q, k, v, out)) return false;
    const index_t d = q.cols() / spec.heads;
    dispatch(ctx.isa, [&](auto tag) {
      const index_t br = attn_br_of(tag), blocks = (spec.tokens + br - 1) / br;
      const index_t splits = detail::attention_forward_splits(ctx, spec, br);
      const index_t tasks = spec.batch * spec.heads * splits;
      const index_t workers = detail::attention_workers(ctx, tasks);
      const index_t slab = attention_workspace_floats(tag, spec, d, false);
      Tensor<float> workspace = Tensor<float>::host({workers, slab});
      // Worker w takes tasks [w * tasks / workers, (w + 1) * tasks / workers): the pool's own static split, with
      // one slab per worker. Tasks are (sequence, head, range of query blocks), the range varying fastest.
      ctx.pool->parallel_for(workers, [&](index_t w) {
        float* ws = workspace.data() + w * slab;
        for (index_t task = tasks * w / workers, end = tasks * (w + 1) / workers; task < end; ++task) {
          const index_t split = task % splits, pair = task / splits;
          // Temporal neighbours: a head's frames in a row, so that the next frame finds two of its three frames'
          // keys and values in cache. Otherwise a sequence's heads in a row, which share the rows of q, k, v.
          const bool by_head = spec.mask == AttentionMask::temporal_neighbours;
          const index_t h = by_head ? pair / spec.batch : pair % spec.heads;
          const index_t b = by_head ? pair % spec.batch : pair / spec.heads;
          const index_t t_begin = blocks * split / splits * br;
          const index_t t_end = std::min(spec.tokens, blocks * (split + 1) / splits * br);
          attention_forward_rows(tag, q, k, v, spec, scale, out, lse, b, h, t_begin, t_end, ws);
        }
      });
    });
    return true;
  }
}

/// dq, dk, dv (written) from the forward pass's out and lse (see reference/attention.hpp).
template <class T>
bool attention_backward(Context ctx, ConstView<T> q, ConstView<T> k, ConstView<T> v, ConstView<T> out,
                        ConstView<T> lse, ConstView<T> dout, const AttentionSpec& spec, T scale, TensorView<T> dq,
                        TensorView<T> dk, TensorView<T> dv) {
  if constexpr (!std::is_same_v<T, float>) {
    return false;
  } else {
    if (!rows_contiguous(q, k, v, out, dout, dq, dk, dv)) return false;
    const index_t d = q.cols() / spec.heads;
    const index_t group = spec.mask == AttentionMask::temporal_neighbours ? spec.frames : 1;
    const index_t tasks = detail::attention_backward_groups(spec) * spec.heads;
    const index_t workers = detail::attention_workers(ctx, tasks);
    dispatch(ctx.isa, [&](auto tag) {
      const index_t slab = attention_workspace_floats(tag, spec, d, true);
      Tensor<float> workspace = Tensor<float>::host({workers, slab});
      ctx.pool->parallel_for(workers, [&](index_t w) {
        float* ws = workspace.data() + w * slab;
        for (index_t task = tasks * w / workers, end = tasks * (w + 1) / workers; task < end; ++task) {
          const index_t h = task % spec.heads, g = task / spec.heads;
          attention_backward_group(tag, q, k, v, out, lse, dout, spec, scale, dq, dk, dv, g * group, group, h, ws);
        }
      });
    });
    return true;
  }
}

}  // namespace froster::cpu
