#!/usr/bin/env python3
"""PyTorch CPU side of the CLIP ViT-B/16 benchmark (the froster side is benchmarks/bench_clip.cpp; both are run side
by side by benchmarks/run_clip_comparison.sh; results in benchmarks/CLIP.md).

The model is OpenAI CLIP's architecture in eager mode (nn.MultiheadAttention, QuickGELU, causal text mask, argmax
pooling): the classes of tests/reference/make_clip_fixtures.py, which the parity tests check froster against, at
ViT-B/16 size with random weights (values do not change the cost). float32, torch.set_num_threads(THREADS).

Cases (names as froster's with `torch` for `froster`):
  clip/torch/vision_forward/batch:{1,8}         model(images) under torch.no_grad(), eval()
  clip/torch/text_forward/prompts:{1,8}         model(tokens) under torch.no_grad(), eval(); context 77
  clip/torch/text_forward_full_context/prompts:8   the same for prompts that fill the context (75 words)
  clip/torch/vision_train_step/frames:8         model(images).backward(d_features): parameter gradients accumulate
  clip/torch/vision_train_step_checkpointing/frames:8   the same with torch.utils.checkpoint around each block

Timing as Google Benchmark's: warm-up, then REPETITIONS repetitions, each the mean of as many iterations as
MIN_TIME seconds take (at least one); the median repetition is reported, in real time (`median_ms`) and in CPU
time of all threads (`cpu_ms`; OpenMP's spin-waits count there). Memory: `peak_rss_bytes` is getrusage's
ru_maxrss of this process (run one case per process for a per-case peak: --case); `baseline_rss_bytes` is the RSS
after `import torch` and before any model exists; `activation_bytes` (train steps only) sums the distinct storages
autograd saved for backward, parameters excluded (saved_tensors_hooks).

    python3 benchmarks/pytorch/bench_clip.py [--case NAME ...] [--threads 2] [--json OUT.json] [--profile]
"""

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.utils.checkpoint

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "reference"))
from make_clip_fixtures import TextTransformer, Transformer, VisionTransformer  # noqa: E402
from timing import repetitions_of  # noqa: E402

VISION = dict(image_size=224, patch_size=16, width=768, layers=12, heads=12, output_dim=512)
TEXT = dict(context_length=77, vocab_size=49408, width=512, layers=12, heads=8, output_dim=512)

CASES = [
    "clip/torch/vision_forward/batch:1",
    "clip/torch/vision_forward/batch:8",
    "clip/torch/text_forward/prompts:1",
    "clip/torch/text_forward/prompts:8",
    "clip/torch/text_forward_full_context/prompts:8",
    "clip/torch/vision_train_step/frames:8",
    "clip/torch/vision_train_step_checkpointing/frames:8",
]


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def checkpointed(transformer: Transformer):
    """Recomputes each block in backward, keeping only block inputs (as froster's gradient_checkpointing)."""
    blocks = list(transformer.resblocks)

    def forward(x):
        for block in blocks:
            x = torch.utils.checkpoint.checkpoint(block, x, use_reentrant=False)
        return x

    transformer.forward = forward


def prompt_tokens(prompts, context, gen, fill_context=False):
    """SOT, 6-13 word tokens, EOT (the highest id), zero padding: prompts shaped like "a photo of a {class}.".
    fill_context: context - 2 word tokens, so EOT is the last position."""
    sot, eot = 49406, 49407
    tokens = torch.zeros(prompts, context, dtype=torch.int64)
    for i in range(prompts):
        words = context - 2 if fill_context else int(torch.randint(6, 14, (1,), generator=gen))
        tokens[i, 0] = sot
        tokens[i, 1:words + 1] = torch.randint(1, 49001, (words,), generator=gen)
        tokens[i, words + 1] = eot
    return tokens


class SavedTensorBytes:
    """Bytes of the distinct storages autograd saves for backward during one forward, parameters excluded."""

    def __init__(self, model):
        self.params = {p.untyped_storage().data_ptr() for p in model.parameters()}
        self.seen = {}

    def pack(self, t):
        s = t.untyped_storage()
        if s.data_ptr() not in self.params:
            self.seen[s.data_ptr()] = s.nbytes()
        return t

    def total(self):
        return sum(self.seen.values())


def make_case(name):
    """(model, step function, items per step, activation-bytes function or None) for a case name."""
    gen = torch.Generator().manual_seed(3)
    kind, arg = name.split("/")[2], int(name.rsplit(":", 1)[1])
    if kind in ("text_forward", "text_forward_full_context"):
        model = TextTransformer(**TEXT).eval()
        tokens = prompt_tokens(arg, TEXT["context_length"], gen, fill_context=kind == "text_forward_full_context")

        def step():
            with torch.no_grad():
                return model(tokens)

        return model, step, arg, None
    model = VisionTransformer(**VISION)
    images = torch.randn(arg, 3, VISION["image_size"], VISION["image_size"], generator=gen)
    if kind == "vision_forward":
        model.eval()

        def step():
            with torch.no_grad():
                return model(images)

        return model, step, arg, None
    if kind == "vision_train_step_checkpointing":
        checkpointed(model.transformer)
    model.train()
    d_features = torch.randn(arg, VISION["output_dim"], generator=gen)

    def step():
        features = model(images)
        features.backward(d_features)  # gradients accumulate, as froster's backward
        return features

    def activation_bytes():
        counter = SavedTensorBytes(model)
        with torch.autograd.graph.saved_tensors_hooks(counter.pack, lambda t: t):
            model(images)
        return counter.total()

    return model, step, arg, activation_bytes


def run_case(name, repetitions, min_time, profile):
    model, step, items, activation_bytes = make_case(name)
    start = time.perf_counter()
    out = step()  # warm-up (a second one when steps are short)
    if not torch.isfinite(out).all():
        raise SystemExit(f"{name}: features are not finite")
    if time.perf_counter() - start < min_time:
        step()
    runs = repetitions_of(step, min_time, repetitions)
    times, cpu_times = [r[0] for r in runs], [r[1] for r in runs]
    result = {
        "name": name,
        "median_ms": 1e3 * statistics.median(times),
        "mean_ms": 1e3 * statistics.fmean(times),
        "min_ms": 1e3 * min(times),
        "cpu_ms": 1e3 * statistics.median(cpu_times),
        "cv": statistics.pstdev(times) / statistics.fmean(times) if len(times) > 1 else 0.0,
        "repetitions": repetitions,
        "items_per_second": items / statistics.median(times),
        "activation_bytes": activation_bytes() if activation_bytes else None,
        "peak_rss_bytes": peak_rss_bytes(),
    }
    if profile:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            step()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
    del model
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", action="append", choices=CASES, help="a case to run (repeatable; default all)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--min-time", type=float, default=1.0, help="seconds per repetition (at least one step)")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--profile", action="store_true", help="print torch.profiler's op table of one step")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    baseline = rss_bytes()
    results = []
    print(f"{'case':<52} {'ms (median)':>12} {'CPU ms':>8} {'items/s':>9} {'cv':>5} {'activations':>12} "
          f"{'peak RSS':>10}")
    for name in args.case or CASES:
        r = run_case(name, args.repetitions, args.min_time, args.profile)
        results.append(r)
        act = f"{r['activation_bytes'] / 2**20:.0f} MiB" if r["activation_bytes"] is not None else "-"
        print(f"{name:<52} {r['median_ms']:>12.1f} {r['cpu_ms']:>8.0f} {r['items_per_second']:>9.2f} "
              f"{100 * r['cv']:>4.0f}% {act:>12} {r['peak_rss_bytes'] / 2**20:>6.0f} MiB", flush=True)
    if args.json:
        context = {
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "python": platform.python_version(),
            "machine": platform.processor() or platform.machine(),
            "baseline_rss_bytes": baseline,
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        Path(args.json).write_text(json.dumps({"context": context, "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
