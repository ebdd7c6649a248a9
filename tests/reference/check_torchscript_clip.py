#!/usr/bin/env python3
"""End-to-end check of TorchScript CLIP loading at full ViT-B/16 size, as OpenAI distributes `ViT-B-16.pt`.

No downloads: OpenAI CLIP's architecture (the classes of make_clip_fixtures.py, which the parity tests use) at
ViT-B/16 size with random weights, traced over `forward(image, text)` with `torch.jit.trace` and saved with
`torch.jit.save` as OpenAI's released files are (a TorchScript archive: module objects, constants, code). The `froster`
CLI then embeds an image and two prompts from that file, and the results are compared with the traced module's own
`encode_image` / `encode_text` (1e-4 relative; the saved archive's logits equal the module's). The image is 224 x 224, so preprocessing is the normalisation alone;
the prompts' token ids come from `froster tokenize` (its ids are checked against OpenAI's tokenizer by the unit
tests). Needs torch and pillow (PyPI); not run by CI (a 600 MB model, about a minute).

OpenAI's own files were written by torch 1.7-1.9; this checks today's `torch.jit.save` output at the real size and
names, not those older archives.

    python3 tests/reference/check_torchscript_clip.py build/examples/froster [--work /tmp/torchscript_check]
"""

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_clip_fixtures import TextTransformer, VisionTransformer  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
BPE = ROOT.parent / "shared" / "data" / "bpe_simple_vocab_16e6.txt.gz"
MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


class CLIP(nn.Module):
    """OpenAI's CLIP layout: the image tower under `visual.`, the text tower's parts at the top level."""

    def __init__(self):
        super().__init__()
        self.visual = VisionTransformer(image_size=224, patch_size=16, width=768, layers=12, heads=12, output_dim=512)
        text = TextTransformer(context_length=77, vocab_size=49408, width=512, layers=12, heads=8, output_dim=512)
        self.transformer = text.transformer
        self.token_embedding = text.token_embedding
        self.positional_embedding = text.positional_embedding
        self.ln_final = text.ln_final
        self.text_projection = text.text_projection
        self.logit_scale = nn.Parameter(torch.ones([]) * math.log(1 / 0.07))

    def encode_image(self, image):
        return self.visual(image)

    def encode_text(self, text):
        x = self.token_embedding(text) + self.positional_embedding
        x = self.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)
        x = self.ln_final(x)
        return x[torch.arange(x.shape[0]), text.argmax(dim=-1)] @ self.text_projection

    def forward(self, image, text):
        image_features = self.encode_image(image)
        text_features = self.encode_text(text)
        image_features = image_features / image_features.norm(dim=-1, keepdim=True)
        text_features = text_features / text_features.norm(dim=-1, keepdim=True)
        return self.logit_scale.exp() * image_features @ text_features.t()


def run(command, cwd):
    print("$", " ".join(str(c) for c in command))
    r = subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"error: exit status {r.returncode}\n{r.stderr}")
    return r.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("froster", help="the froster binary (build/examples/froster)")
    parser.add_argument("--work", default="/tmp/torchscript_check", help="scratch directory")
    args = parser.parse_args()
    if not BPE.exists():
        sys.exit(f"error: the CLIP BPE vocabulary is not at {BPE}")
    froster = Path(args.froster).resolve()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(0)
    model = CLIP().eval()
    for p in model.parameters():  # weights away from their defaults, scaled so activations stay O(1)
        with torch.no_grad():
            p.copy_(torch.randn(p.shape) / math.sqrt(p.shape[-1]) if p.dim() > 1 else 0.2 * torch.randn(p.shape) + 1)

    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(work / "image.png")
    prompts = ["a photo of a cat.", "a video of a person playing guitar."]
    ids = [json.loads(line) for line in run([froster, "tokenize", "--vocab", BPE, *prompts], work).splitlines()]
    tokens = torch.tensor(ids, dtype=torch.int64)
    image = torch.from_numpy(((pixels.astype(np.float32) / 255 - MEAN) / STD).transpose(2, 0, 1)[None].copy())

    with torch.no_grad():
        traced = torch.jit.trace(model, (image, tokens))
        torch.jit.save(traced, str(work / "ViT-B-16.pt"))
        # The saved archive runs as the eager model does (the features below are the eager model's).
        logits = torch.jit.load(str(work / "ViT-B-16.pt"))(image, tokens)
        assert torch.allclose(logits, model(image, tokens), rtol=1e-5, atol=1e-5)
        want_image = model.encode_image(image).numpy()
        want_text = model.encode_text(tokens).numpy()

    run([froster, "embed-image", "--weights", "ViT-B-16.pt", "--out", "image.npy", "image.png"], work)
    run([froster, "embed-text", "--weights", "ViT-B-16.pt", "--vocab", BPE, "--out", "text.npy", *prompts], work)
    worst = 0.0
    for name, want in [("image.npy", want_image), ("text.npy", want_text)]:
        got = np.load(work / name)
        assert got.shape == want.shape, (name, got.shape, want.shape)
        err = float(np.max(np.abs(got - want)) / np.max(np.abs(want)))
        print(f"{name}: shape {got.shape}, largest difference / largest value {err:.2e}")
        worst = max(worst, err)
    if worst > 1e-4:
        sys.exit("error: froster's features differ from the traced module's by more than 1e-4 relative")
    print("ok: a traced, torch.jit.save'd ViT-B/16 CLIP loads in froster and gives PyTorch's features")


if __name__ == "__main__":
    main()
