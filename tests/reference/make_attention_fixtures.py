#!/usr/bin/env python3
"""Writes the PyTorch parity fixtures of multi-head attention (tests/reference/data/attention.fxt), which
tests/backends/test_attention_reference.cpp and tests/backends/cpu/test_attention.cpp compare froster against.

Layout as froster's AttentionSpec (include/froster/backends/ops.hpp): q, k and v are the column thirds of one packed
projection qkv [batch * tokens, 3 * heads * head_dim]; lse is [batch * tokens, heads]. Every value is float32
computed by PyTorch on the CPU, the gradients by autograd (with respect to qkv, stored split as dq, dk, dv), from
fixed seeds. The file format and Writer are make_fixtures.py's.

    pip install torch numpy
    python3 tests/reference/make_attention_fixtures.py
"""

import math
from pathlib import Path

import torch
import torch.nn.functional as F

from make_fixtures import Writer

OUT = Path(__file__).resolve().parent / "data" / "attention.fxt"

# (prefix, mask, padding, batch, tokens, heads, head_dim, frames): small odd shapes, so vectorised kernels also run
# their remainder loops. For the temporal cases batch = clips * frames = 2 * 3.
CASES = [
    ("full", "full", None, 2, 7, 3, 5, 1),
    ("causal", "causal", None, 2, 6, 2, 4, 1),
    ("temporal_zero_keys", "temporal", "zero_keys", 6, 4, 2, 3, 3),
    ("temporal_masked", "temporal", "masked", 6, 4, 2, 3, 3),
]


def heads_first(x, batch, tokens, heads, head_dim):
    """[batch * tokens, heads * head_dim] -> [batch, heads, tokens, head_dim]."""
    return x.reshape(batch, tokens, heads, head_dim).transpose(1, 2)


def expand_temporal_view(x, frames, pad_value=0.0):
    """Open-VCLIP's expand_temporal_view (slowfast/models/torch_utils/functional.py): the keys (or values) of frame
    f become [frame f + 1, frame f - 1, frame f], missing neighbours filled with `pad_value` (0 there).
    x: [clips * frames, heads, tokens, head_dim] -> [clips * frames, heads, 3 * tokens, head_dim]."""
    b, h, t, d = x.shape
    x5 = x.reshape(b // frames, frames, h, t, d)
    nxt = torch.full_like(x5, pad_value)
    prv = torch.full_like(x5, pad_value)
    nxt[:, :-1] = x5[:, 1:]  # "shift left"
    prv[:, 1:] = x5[:, :-1]  # "shift right"
    return torch.cat([nxt, prv, x5], dim=3).reshape(b, h, 3 * t, d)


def attention(q, k, v, mask, padding, frames, scale):
    """out [b, h, t, d] and lse [b, h, t] (log-sum-exp of the scaled scores over the keys each query sees)."""
    b, h, t, _ = q.shape
    if mask == "temporal":
        k, v = expand_temporal_view(k, frames), expand_temporal_view(v, frames)
        bias = torch.zeros(b, 1, 1, 3 * t)
        if padding == "masked":
            frame = torch.arange(b) % frames
            bias[frame == frames - 1, :, :, :t] = -math.inf  # no next frame
            bias[frame == 0, :, :, t:2 * t] = -math.inf  # no previous frame
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=scale)
    else:
        bias = torch.zeros(t, t)
        if mask == "causal":
            bias = bias.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), -math.inf)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=(mask == "causal"), scale=scale)
    lse = torch.logsumexp(scale * q @ k.transpose(-1, -2) + bias, dim=-1)
    return out, lse


def add_case(w, prefix, mask, padding, batch, tokens, heads, head_dim, frames, seed):
    g = torch.Generator().manual_seed(seed)
    width = heads * head_dim
    qkv = torch.randn(batch * tokens, 3 * width, generator=g).requires_grad_(True)
    dout = torch.randn(batch * tokens, width, generator=g)
    scale = 1.0 / math.sqrt(head_dim)
    q, k, v = (heads_first(qkv[:, i * width:(i + 1) * width], batch, tokens, heads, head_dim) for i in range(3))
    out, lse = attention(q, k, v, mask, padding, frames, scale)
    out = out.transpose(1, 2).reshape(batch * tokens, width)
    lse = lse.transpose(1, 2).reshape(batch * tokens, heads)
    out.backward(dout)
    dq, dk, dv = (qkv.grad[:, i * width:(i + 1) * width] for i in range(3))
    for name, value in [("qkv", qkv), ("dout", dout), ("out", out), ("lse", lse), ("dq", dq), ("dk", dk),
                        ("dv", dv)]:
        w.add(f"{prefix}/{name}", value)
    for name, value in [("batch", batch), ("tokens", tokens), ("heads", heads), ("frames", frames)]:
        w.add(f"{prefix}/{name}", value)
    w.add(f"{prefix}/scale", scale)


def main():
    torch.set_default_dtype(torch.float32)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(0)
    w = Writer()
    for seed, case in enumerate(CASES, start=1):
        add_case(w, *case, seed=seed)
    size = w.write(OUT)
    print(f"wrote {OUT} ({len(w.entries)} entries, {size} bytes) with torch {torch.__version__}")


if __name__ == "__main__":
    main()
