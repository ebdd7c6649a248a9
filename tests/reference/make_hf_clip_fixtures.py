#!/usr/bin/env python3
"""Writes the Hugging Face CLIP parity fixture (tests/reference/data/clip_hf.fxt): the whole state dict of a tiny
transformers `CLIPModel` with random weights, under its own (Hugging Face) names, an image batch and token ids, and
what `CLIPModel` computes from them (image and text features, logits). tests/model/test_clip_model.cpp loads the
state dict through froster's renaming to OpenAI names and compares, gradients of every parameter included.

    pip install torch numpy transformers
    python3 tests/reference/make_hf_clip_fixtures.py
"""

from pathlib import Path

import torch
from transformers import CLIPConfig, CLIPModel

from make_fixtures import Writer

OUT = Path(__file__).resolve().parent / "data" / "clip_hf.fxt"
VOCAB, CONTEXT = 40, 7


def main():
    torch.manual_seed(3)
    config = CLIPConfig(
        text_config=dict(hidden_size=8, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                         max_position_embeddings=CONTEXT, vocab_size=VOCAB, bos_token_id=VOCAB - 2,
                         eos_token_id=VOCAB - 1, pad_token_id=0, hidden_act="quick_gelu"),
        vision_config=dict(hidden_size=8, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                           image_size=12, patch_size=4, hidden_act="quick_gelu"),
        projection_dim=5)
    model = CLIPModel(config).eval()
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():  # away from the defaults (LayerNorm 1/0, zero biases) so every tensor matters
        for name, p in model.named_parameters():
            if name == "logit_scale":
                continue
            p.add_(0.1 * torch.randn(p.shape, generator=gen))
    w = Writer()
    state = model.state_dict()
    for name, t in state.items():
        w.add(f"state/{name}", t.float().contiguous() if t.is_floating_point() else t.contiguous())
    pixels = torch.randn(3, 3, 12, 12, generator=gen)
    tokens = torch.zeros(2, CONTEXT, dtype=torch.int64)
    tokens[0, :4] = torch.tensor([VOCAB - 2, 5, 17, VOCAB - 1])
    tokens[1, :] = torch.tensor([VOCAB - 2, 3, 9, 9, 30, 2, VOCAB - 1])
    with torch.no_grad():
        out = model(input_ids=tokens, pixel_values=pixels)
        # Unnormalised features as OpenAI's encode_image/encode_text: projections of the towers' pooled outputs.
        image_features = model.visual_projection(model.vision_model(pixel_values=pixels).pooler_output)
        text_features = model.text_projection(model.text_model(input_ids=tokens).pooler_output)
    w.add("pixels", pixels)
    w.add("tokens", tokens)
    w.add("image_features", image_features)
    w.add("text_features", text_features)
    w.add("logits_per_image", out.logits_per_image)
    w.add("logit_scale", float(model.logit_scale.item()))

    # Gradients of sum(features * d) for each tower, under Hugging Face names (froster renames them to compare).
    d_image = torch.randn(image_features.shape, generator=gen)
    d_text = torch.randn(text_features.shape, generator=gen)
    model.zero_grad()
    features = model.visual_projection(model.vision_model(pixel_values=pixels).pooler_output)
    (features * d_image).sum().backward()
    features = model.text_projection(model.text_model(input_ids=tokens).pooler_output)
    (features * d_text).sum().backward()
    w.add("d_image_features", d_image)
    w.add("d_text_features", d_text)
    for name, p in model.named_parameters():
        if p.grad is not None:
            w.add(f"grad/{name}", p.grad.contiguous())
    size = w.write(OUT)
    print(f"wrote {OUT} ({len(w.entries)} entries, {size} bytes) with torch {torch.__version__}")


if __name__ == "__main__":
    main()
