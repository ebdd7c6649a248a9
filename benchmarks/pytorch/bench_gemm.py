#!/usr/bin/env python3
"""PyTorch CPU side of froster_bench_kernels' GEMM cases (benchmarks/kernels/gemm.cpp; results in
benchmarks/kernels/GEMM.md): the same three products of a ViT-B/16 Linear over 8 frames x 197 tokens, as torch
runs them (its CPU build calls MKL / oneDNN SGEMM), float32, torch.set_num_threads(THREADS).

  gemm/torch/<M>x<N>x<K>/nt   x @ w.t()     forward of a Linear [N, K]: Y[M,N] = X[M,K] W[N,K]^T
  gemm/torch/<M>x<N>x<K>/nn   dy @ w        its input gradient:  dX[M,K] = dY[M,N] W[N,K]
  gemm/torch/<M>x<N>x<K>/tn   dy.t() @ x    its weight gradient: dW[N,K] = dY[M,N]^T X[M,K]

Each product writes into a preallocated output (out=), as froster's does. Timing as Google Benchmark's: a warm-up,
then REPETITIONS repetitions, each the mean of as many iterations as MIN_TIME seconds take. The JSON has Google
Benchmark's layout (one record per repetition, `GFLOP/s` = 2MNK / s of wall time), so benchmarks/summarize.py
reads it beside a froster_bench_kernels run and adds a torch column:

    python3 benchmarks/pytorch/bench_gemm.py --json torch_gemm.json
    python3 benchmarks/summarize.py run.json torch_gemm.json

Run it beside froster_bench_kernels on a quiet machine (one after the other, not at the same time).
"""

import argparse
import datetime
import json
import os

import torch

from timing import repetitions_of

ROWS = 1576  # 8 frames x 197 tokens
SHAPES = [(768, 768), (2304, 768), (3072, 768), (768, 3072)]  # (N, K)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=int(os.environ.get("FROSTER_BENCH_THREADS", "2")))
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--min-time", type=float, default=0.3)
    parser.add_argument("--json", help="write Google Benchmark-style JSON here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(1)
    records = []
    for n, k in SHAPES:
        x = torch.randn(ROWS, k, generator=gen)
        w = torch.randn(n, k, generator=gen)
        dy = torch.randn(ROWS, n, generator=gen)
        cases = {
            "nt": (lambda out: torch.mm(x, w.t(), out=out), (ROWS, n)),
            "nn": (lambda out: torch.mm(dy, w, out=out), (ROWS, k)),
            "tn": (lambda out: torch.mm(dy.t(), x, out=out), (n, k)),
        }
        for op, (product, out_shape) in cases.items():
            out = torch.empty(out_shape)
            name = f"gemm/torch/{ROWS}x{n}x{k}/{op}"
            flops = 2.0 * ROWS * n * k
            product(out)  # warm-up
            runs = repetitions_of(lambda: product(out), args.min_time, args.repetitions)
            for rep, (seconds, _, iterations) in enumerate(runs):
                records.append({"name": name, "run_name": name, "run_type": "iteration", "repetitions":
                                args.repetitions, "repetition_index": rep, "iterations": iterations,
                                "real_time": seconds * 1e9, "time_unit": "ns", "GFLOP/s": flops / seconds / 1e9})
            best = flops / min(seconds for seconds, _, _ in runs) / 1e9
            print(f"{name:40s} {best:8.1f} GFLOP/s (best of {args.repetitions})", flush=True)
    if args.json:
        context = {"date": datetime.datetime.now().astimezone().isoformat(), "num_cpus": os.cpu_count(),
                   "torch": torch.__version__, "threads": args.threads}
        with open(args.json, "w") as f:
            json.dump({"context": context, "benchmarks": records}, f, indent=1)


if __name__ == "__main__":
    main()
