#!/usr/bin/env python3
"""Writes the PyTorch parity fixtures of CLIP's encoders (tests/reference/data/clip_encoders.fxt), which
tests/nn/test_clip_parity.cpp compares froster's VisionTransformer and TextTransformer against.

The model below is OpenAI CLIP's (clip/model.py: VisionTransformer, Transformer with nn.MultiheadAttention,
QuickGELU, the text tower's causal mask and argmax pooling) at a tiny size with random weights (LayerNorm scales
and biases away from 1 and 0 so their gradients are exercised). The video student's "expand view" replaces each
block's nn.MultiheadAttention by Open-VCLIP's temporal attention (make_attention_fixtures.attention: keys/values of
the next, previous and own frame, zero keys at a clip's edges). Gradients come from autograd of
sum(features * d_features) with a fixed random d_features. Names follow the OpenAI state dict.

    pip install torch numpy
    python3 tests/reference/make_clip_fixtures.py
"""

import math
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from make_attention_fixtures import attention
from make_fixtures import Writer

OUT = Path(__file__).resolve().parent / "data" / "clip_encoders.fxt"

VISION = dict(image_size=12, patch_size=4, width=8, layers=2, heads=2, output_dim=5)
TEXT = dict(context_length=7, vocab_size=40, width=8, layers=2, heads=2, output_dim=5)


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    def __init__(self, d_model, n_head, attn_mask=None):
        super().__init__()
        self.attn = nn.MultiheadAttention(d_model, n_head)
        self.ln_1 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(OrderedDict([("c_fc", nn.Linear(d_model, d_model * 4)), ("gelu", QuickGELU()),
                                              ("c_proj", nn.Linear(d_model * 4, d_model))]))
        self.ln_2 = nn.LayerNorm(d_model)
        self.attn_mask = attn_mask
        self.temporal_frames = None  # set for the video student's expand view

    def attention(self, x):  # x: [L, N, D] as OpenAI's code
        if self.temporal_frames is None:
            return self.attn(x, x, x, need_weights=False, attn_mask=self.attn_mask)[0]
        seq, batch, width = x.shape
        heads = self.attn.num_heads
        head_dim = width // heads
        q, k, v = F.linear(x, self.attn.in_proj_weight, self.attn.in_proj_bias).chunk(3, dim=-1)
        q, k, v = (t.permute(1, 0, 2).reshape(batch, seq, heads, head_dim).transpose(1, 2) for t in (q, k, v))
        out, _ = attention(q, k, v, "temporal", "zero_keys", self.temporal_frames, 1.0 / math.sqrt(head_dim))
        out = out.transpose(1, 2).reshape(batch, seq, width).permute(1, 0, 2)
        return self.attn.out_proj(out)

    def forward(self, x):
        x = x + self.attention(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width, layers, heads, attn_mask=None):
        super().__init__()
        self.resblocks = nn.Sequential(*[ResidualAttentionBlock(width, heads, attn_mask) for _ in range(layers)])

    def forward(self, x):
        return self.resblocks(x)


class VisionTransformer(nn.Module):
    def __init__(self, image_size, patch_size, width, layers, heads, output_dim):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False)
        scale = width ** -0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn((image_size // patch_size) ** 2 + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Transformer(width, layers, heads)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))

    def forward(self, x):
        x = self.conv1(x)
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
        cls = self.class_embedding + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding
        x = self.ln_pre(x).permute(1, 0, 2)
        x = self.transformer(x).permute(1, 0, 2)
        return self.ln_post(x[:, 0, :]) @ self.proj


class TextTransformer(nn.Module):
    def __init__(self, context_length, vocab_size, width, layers, heads, output_dim):
        super().__init__()
        mask = torch.empty(context_length, context_length).fill_(float("-inf")).triu_(1)
        self.transformer = Transformer(width, layers, heads, mask)
        self.token_embedding = nn.Embedding(vocab_size, width)
        self.positional_embedding = nn.Parameter(torch.randn(context_length, width) * 0.01)
        self.ln_final = nn.LayerNorm(width)
        self.text_projection = nn.Parameter(torch.randn(width, output_dim) * width ** -0.5)

    def forward(self, text):
        x = self.token_embedding(text) + self.positional_embedding
        x = self.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)
        x = self.ln_final(x)
        return x[torch.arange(x.shape[0]), text.argmax(dim=-1)] @ self.text_projection


def randomise(model, gen):
    """Weights with every parameter away from its default (LayerNorm 1/0, zero biases), so every gradient shows."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            parts = name.split(".")
            if len(parts) >= 2 and parts[-2].startswith("ln_") and parts[-1] == "weight":
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=gen))
            elif p.dim() == 1:
                p.copy_(0.2 * torch.randn(p.shape, generator=gen))
            else:
                fan_in = p.shape[-1] if p.dim() == 2 else p[0].numel()
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(fan_in))


def add_model(w, prefix, model, params_prefix):
    for name, p in model.state_dict().items():
        if name.endswith("attn_mask"):
            continue
        w.add(f"{prefix}/param/{params_prefix}{name}", p.float().contiguous())


def add_grads(w, prefix, model, params_prefix):
    for name, p in model.named_parameters():
        w.add(f"{prefix}/grad/{params_prefix}{name}", p.grad.contiguous())


def main():
    torch.set_default_dtype(torch.float32)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(7)
    w = Writer()

    vision = VisionTransformer(**VISION)
    randomise(vision, gen)
    for k, v in VISION.items():
        w.add(f"vision/config/{k}", v)
    add_model(w, "vision", vision, "visual.")
    # Plain CLIP over 3 images, then the temporal student over 2 clips x 3 frames, same weights.
    for case, images, frames in [("vision/full", 3, None), ("vision/temporal", 6, 3)]:
        for block in vision.transformer.resblocks:
            block.temporal_frames = frames
        x = torch.randn(images, 3, VISION["image_size"], VISION["image_size"], generator=gen).requires_grad_(True)
        vision.zero_grad()
        features = vision(x)
        d_features = torch.randn(features.shape, generator=gen)
        (features * d_features).sum().backward()
        w.add(f"{case}/images", x)
        w.add(f"{case}/frames", frames or 1)
        w.add(f"{case}/features", features)
        w.add(f"{case}/d_features", d_features)
        w.add(f"{case}/d_images", x.grad)
        add_grads(w, case, vision, "visual.")

    text = TextTransformer(**TEXT)
    randomise(text, gen)
    for k, v in TEXT.items():
        w.add(f"text/config/{k}", v)
    add_model(w, "text", text, "")
    sot, eot = TEXT["vocab_size"] - 2, TEXT["vocab_size"] - 1
    # "text": one sequence fills the context. "text_short": every sequence ends before the context does, so the
    # positions after the last end token (which froster does not compute: the causal mask keeps them from the
    # pooled features) are computed here.
    for case, lengths in [("text", [3, 7, 5]), ("text_short", [3, 5])]:
        tokens = torch.zeros(len(lengths), TEXT["context_length"], dtype=torch.int64)
        for i, length in enumerate(lengths):  # SOT, words, EOT, zero padding
            tokens[i, 0] = sot
            tokens[i, 1:length - 1] = torch.randint(1, sot, (length - 2,), generator=gen)
            tokens[i, length - 1] = eot
        text.zero_grad()
        features = text(tokens)
        d_features = torch.randn(features.shape, generator=gen)
        (features * d_features).sum().backward()
        w.add(f"{case}/tokens", tokens)
        w.add(f"{case}/features", features)
        w.add(f"{case}/d_features", d_features)
        add_grads(w, case, text, "")

    size = w.write(OUT)
    print(f"wrote {OUT} ({len(w.entries)} entries, {size} bytes) with torch {torch.__version__}")


if __name__ == "__main__":
    main()
