#!/usr/bin/env python3
"""Markdown tables from a froster_bench_kernels JSON run (standard library only).

    OPENBLAS_CORETYPE=Zen build/benchmarks/froster_bench_kernels --benchmark_repetitions=3 \
        --benchmark_enable_random_interleaving=true --benchmark_out=run.json --benchmark_out_format=json
    python3 benchmarks/summarize.py run.json [torch_gemm.json]

The optional second file is a run of benchmarks/pytorch/bench_gemm.py (PyTorch's SGEMM on the same shapes): the
GEMM table then has a torch column and the ratio froster / torch.

Every case is summarised over its repetitions by the median and by the best repetition (the machine this was
written on is a shared VM whose neighbours take cycles at random: the best repetition is the least disturbed one,
the median what a user would typically see). Ratios are taken between the medians of the same run.
"""

import json
import re
import statistics
import sys
from collections import defaultdict


def load(path):
    with open(path) as f:
        data = json.load(f)
    runs = defaultdict(list)  # case name without Google Benchmark's suffixes -> list of repetition records
    for b in data["benchmarks"]:
        if b.get("run_type") == "aggregate":
            continue
        name = re.sub(r"/(min_time:[^/]+|process_time|real_time|repeats:\d+)", "", b["run_name"])
        runs[name].append(b)
    return data["context"], runs


def rate(runs, name, counter):
    values = [r[counter] for r in runs.get(name, []) if counter in r]
    if not values:
        return None
    return statistics.median(values), max(values)


def millis(runs, name):
    values = [r["real_time"] * {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[r["time_unit"]] for r in runs.get(name, [])]
    if not values:
        return None
    return statistics.median(values), min(values)


def fmt(value, digits=1):
    return "n/a" if value is None else f"{value:.{digits}f}"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def gemm_table(runs):
    peak = rate(runs, "peak/fma/avx512", "GFLOP/s") or rate(runs, "peak/fma/avx2", "GFLOP/s")
    with_torch = any(n.startswith("gemm/torch/") for n in runs)
    lines = []
    if peak:
        lines.append(f"FMA peak probe: median {peak[0]:.1f} GFLOP/s, best {peak[1]:.1f} GFLOP/s "
                     "(fractions of peak below use the best).\n")
    lines.append("| shape (M x N x K) | op | froster GFLOP/s (median / best) | Eigen | OpenBLAS | froster / Eigen "
                 "| froster / OpenBLAS | froster best / peak |" + (" torch | froster / torch |" if with_torch else ""))
    lines.append("|---|---|---:|---:|---:|---:|---:|---:|" + ("---:|---:|" if with_torch else ""))
    shapes = sorted({n.split("/")[2] for n in runs if n.startswith("gemm/")},
                    key=lambda s: [int(x) for x in s.split("x")])
    for shape in shapes:
        for op in ("nt", "nn", "tn"):
            f, e, o, t = (rate(runs, f"gemm/{impl}/{shape}/{op}", "GFLOP/s")
                          for impl in ("froster", "eigen", "openblas", "torch"))
            if f is None:
                continue
            lines.append(
                f"| {shape} | {op} | {fmt(f[0])} / {fmt(f[1])} | {fmt(e and e[0])} | {fmt(o and o[0])} "
                f"| {fmt(ratio(f[0], e and e[0]), 2)}x | {fmt(ratio(f[0], o and o[0]), 2)}x "
                f"| {fmt(100 * ratio(f[1], peak and peak[1]) if peak else None, 0)}% |"
                + (f" {fmt(t and t[0])} | {fmt(ratio(f[0], t and t[0]), 2)}x |" if with_torch else ""))
    return "\n".join(lines)


def attention_table(runs):
    lines = ["| case / pass | froster ms (median / best) | Eigen composition ms (median / best) | speed-up (medians) "
             "| froster extra bytes | Eigen extra bytes |", "|---|---:|---:|---:|---:|---:|"]
    cases = sorted({tuple(n.split("/")[2:4]) for n in runs if n.startswith("attention/")})
    for case, direction in cases:
        f, e = (millis(runs, f"attention/{impl}/{case}/{direction}") for impl in ("froster", "eigen"))
        fb = runs[f"attention/froster/{case}/{direction}"][0].get("extra_bytes")
        eb = runs.get(f"attention/eigen/{case}/{direction}", [{}])[0].get("extra_bytes")
        lines.append(f"| {case} {direction} | {fmt(f[0], 2)} / {fmt(f[1], 2)} | {fmt(e and e[0], 2)} / "
                     f"{fmt(e and e[1], 2)} | {fmt(ratio(e and e[0], f[0]), 2)}x | {fmt(fb and fb / 1e3, 0)} kB "
                     f"| {fmt(eb and eb / 1e6, 1)} MB |")
    return "\n".join(lines)


def bandwidth_table(runs):
    lines = ["| kernel | shape | pass | froster GB/s (median / best) | memcpy GB/s (median) | Eigen GB/s (median) "
             "| froster / memcpy (medians) |", "|---|---|---|---:|---:|---:|---:|"]
    for name in sorted(runs):
        parts = name.split("/")
        if len(parts) < 4 or parts[1] != "froster" or parts[0] in ("gemm", "attention", "peak"):
            continue
        kernel, _, direction, *rest = parts
        suffix = "/".join([direction] + rest)
        f = rate(runs, name, "GB/s")
        m = rate(runs, f"{kernel}/memcpy/{suffix}", "GB/s")
        e = rate(runs, f"{kernel}/eigen/{suffix}", "GB/s")
        lines.append(f"| {kernel}{' (' + '/'.join(rest[1:]) + ')' if len(rest) > 1 else ''} | {rest[0] if rest else ''} "
                     f"| {direction} | {fmt(f and f[0])} / {fmt(f and f[1])} | {fmt(m and m[0])} | {fmt(e and e[0])} "
                     f"| {fmt(100 * ratio(f and f[0], m and m[0]) if m else None, 0)}% |")
    return "\n".join(lines)


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    context, runs = load(sys.argv[1])
    if len(sys.argv) == 3:
        runs.update(load(sys.argv[2])[1])
    reps = max((len(v) for v in runs.values()), default=0)
    print(f"Run {context.get('date', '?')} on {context.get('num_cpus', '?')} CPUs at {context.get('mhz_per_cpu', '?')} "
          f"MHz, load average at start {context.get('load_avg', '?')}, up to {reps} repetitions per case.\n")
    print("## GEMM\n\n" + gemm_table(runs) + "\n")
    print("## Attention\n\n" + attention_table(runs) + "\n")
    print("## Memory-bound kernels\n\n" + bandwidth_table(runs))


if __name__ == "__main__":
    main()
