#!/usr/bin/env python3
"""End-to-end check of the README's zero-shot command at full ViT-B/16 size, against Hugging Face transformers.

No downloads: a Hugging Face `CLIPModel` with openai/clip-vit-base-patch16's configuration and random weights (seeded)
is saved with `save_pretrained` (config.json + model.safetensors, as `huggingface-cli download` gives them), with
vocab.json and merges.txt built from the real CLIP BPE vocabulary in ../shared/data. Then the README's command runs
on a JPEG and a directory of PNG frames, and its top-k labels and probabilities are compared with transformers'
CLIPModel, CLIPTokenizer and the PIL-based CLIPImageProcessor on the same files (per-frame logits averaged over the
frames, as froster's ZeroShotClassifier): the same labels in the same order, probabilities within 1e-4. Needs torch,
transformers and pillow (PyPI); not run by CI (it builds a 600 MB model and takes about a minute).

    python3 tests/reference/check_readme_zero_shot.py build/examples/froster [--work /tmp/zero_shot_check]
"""

import argparse
import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

try:  # transformers >= 5 names the PIL-based processor (the reference's resize) explicitly
    from transformers import CLIPImageProcessorPil as CLIPImageProcessor
except ImportError:
    from transformers import CLIPImageProcessor

ROOT = Path(__file__).resolve().parents[2]
BPE = ROOT.parent / "shared" / "data" / "bpe_simple_vocab_16e6.txt.gz"
LABELS = ["a cat", "a dog", "a car", "a bicycle", "a person playing guitar"]


def bytes_to_unicode():
    """OpenAI CLIP's byte -> printable character table (simple_tokenizer.py)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def write_hf_vocabulary(out: Path):
    """vocab.json + merges.txt as openai/clip-vit-base-patch16 ships them, from OpenAI's BPE merges."""
    merges = gzip.open(BPE, "rt", encoding="utf-8").read().split("\n")[1:49152 - 256 - 2 + 1]
    merges = [tuple(m.split()) for m in merges]
    units = bytes_to_unicode()
    vocab = units + [u + "</w>" for u in units] + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    (out / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}, ensure_ascii=False))
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n", encoding="utf-8")


def write_model(out: Path):
    config = CLIPConfig(
        text_config=dict(vocab_size=49408, hidden_size=512, intermediate_size=2048, num_hidden_layers=12,
                         num_attention_heads=8, max_position_embeddings=77, hidden_act="quick_gelu",
                         bos_token_id=49406, eos_token_id=49407, pad_token_id=1),
        vision_config=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                           image_size=224, patch_size=16, hidden_act="quick_gelu"),
        projection_dim=512)
    torch.manual_seed(0)
    model = CLIPModel(config).eval()
    model.save_pretrained(out, safe_serialization=True)
    return model


def write_images(work: Path):
    """A landscape JPEG and three portrait PNG frames of odd sizes (both resize paths, both decoders)."""
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:241, 0:353]
    base = np.stack([x * 255 // 352, y * 255 // 240, (x + y) % 256], -1).astype(np.float64)
    Image.fromarray(np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)).save(
        work / "cat.jpg", quality=90)
    frames = work / "frames_dir"
    frames.mkdir(exist_ok=True)
    for i in range(3):
        img = rng.integers(0, 256, (301, 217, 3), dtype=np.uint8)
        Image.fromarray(img).save(frames / f"frame_{i:03d}.png")
    return [work / "cat.jpg", frames]


def expected(model, model_dir: Path, inputs, top_k):
    tokenizer = CLIPTokenizer(str(model_dir / "vocab.json"), str(model_dir / "merges.txt"))
    processor = CLIPImageProcessor()  # the PIL-based one: resize shortest side 224 bicubic, center crop, normalise
    prompts = [f"a photo of a {label}." for label in LABELS]
    with torch.no_grad():
        text = model.get_text_features(**tokenizer(prompts, padding=True, return_tensors="pt"))
        text = getattr(text, "pooler_output", text)
        text = text / text.norm(dim=-1, keepdim=True)
        results = []
        for path in inputs:
            files = sorted(path.iterdir()) if path.is_dir() else [path]
            pixels = processor([Image.open(f) for f in files], return_tensors="pt")["pixel_values"]
            image = model.get_image_features(pixel_values=pixels)
            image = getattr(image, "pooler_output", image)
            image = image / image.norm(dim=-1, keepdim=True)
            logits = (model.logit_scale.exp() * image @ text.T).mean(0)
            p = logits.softmax(-1)
            order = sorted(range(len(LABELS)), key=lambda k: -float(p[k]))[:top_k]
            results.append(dict(top=[(LABELS[k], float(p[k])) for k in order]))
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("froster", help="the froster binary (build/examples/froster)")
    parser.add_argument("--work", default="/tmp/zero_shot_check", help="scratch directory")
    args = parser.parse_args()
    if not BPE.exists():
        sys.exit(f"error: the CLIP BPE vocabulary is not at {BPE}")
    work = Path(args.work)
    model_dir = work / "clip-vit-b16"
    model_dir.mkdir(parents=True, exist_ok=True)
    model = write_model(model_dir)
    write_hf_vocabulary(model_dir)
    (work / "labels.txt").write_text("\n".join(LABELS) + "\n")
    inputs = write_images(work)

    # The README's command, with --json to read the result.
    top_k = 3
    command = [str(Path(args.froster).resolve()), "zero-shot", "--weights", "clip-vit-b16", "--labels", "labels.txt",
               "--top-k", str(top_k), "cat.jpg", "frames_dir/", "--json"]
    print("$", " ".join(command[1:]), f"(in {work})")
    run = subprocess.run(command, cwd=work, capture_output=True, text=True)
    print(run.stdout + run.stderr)
    if run.returncode != 0:
        sys.exit(f"error: froster exited with {run.returncode}")
    got = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]

    want = expected(model, model_dir, inputs, top_k)
    worst = 0.0
    for g, w in zip(got, want, strict=True):
        print(f"{g['input']}: froster {[(t['label'], round(t['probability'], 6)) for t in g['top']]}")
        print(f"{' ' * len(g['input'])}  transformers {[(l, round(p, 6)) for l, p in w['top']]}")
        assert [t["label"] for t in g["top"]] == [l for l, _ in w["top"]], "top-k labels differ"
        for t, (_, p) in zip(g["top"], w["top"]):
            worst = max(worst, abs(t["probability"] - p))
    print(f"largest probability difference: {worst:.2e}")
    if worst > 1e-4:
        sys.exit("error: probabilities differ by more than 1e-4")
    print("ok: the README's zero-shot command matches transformers at ViT-B/16 size")


if __name__ == "__main__":
    main()
