#!/usr/bin/env bash
# Runs the CLIP ViT-B/16 benchmark of froster (froster_bench_clip, cpu backend) and of PyTorch CPU
# (benchmarks/pytorch/bench_clip.py) side by side, with the same thread count, and prints the speed ratios.
#
#   benchmarks/run_clip_comparison.sh [path/to/froster_bench_clip]
#
# Environment: THREADS (default 2), ROUNDS (default 2), OUT_DIR (default a new /tmp/clip_comparison.*),
# CASES (space-separated, default all seven). Each case runs in its own process on each side (so getrusage's peak
# RSS is that case's), interleaved: froster then PyTorch, the order swapped every other round so drift on a shared
# machine hits both. A case's time is the median over rounds of each run's median repetition.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-build-bench/benchmarks/froster_bench_clip}
threads=${THREADS:-2}
rounds=${ROUNDS:-2}
out=${OUT_DIR:-$(mktemp -d /tmp/clip_comparison.XXXXXX)}
cases=${CASES:-"vision_forward/batch:1 vision_forward/batch:8 text_forward/prompts:1 text_forward/prompts:8
                text_forward_full_context/prompts:8 vision_train_step/frames:8 vision_train_step_checkpointing/frames:8"}
[[ -x $bin ]] || { echo "error: $bin is not an executable (build froster_bench_clip, or pass its path)" >&2; exit 2; }
mkdir -p "$out"

{
  echo "date: $(date -Iseconds)"
  echo "host: $(uname -srm); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(nproc) cpus"
  echo "threads: $threads; rounds: $rounds"
  echo "torch: $(python3 -c 'import torch; print(torch.__version__)')"
  echo "binary: $bin"
} | tee "$out/machine.txt"

run_froster() {  # case slug round
  echo "== froster $1 (round $3; load $(cut -d' ' -f1-3 /proc/loadavg))"
  FROSTER_BENCH_THREADS=$threads "$bin" --benchmark_filter="^clip/froster/$1/" \
    --benchmark_out="$out/froster_$2_r$3.json" --benchmark_out_format=json
}
run_torch() {
  echo "== torch $1 (round $3; load $(cut -d' ' -f1-3 /proc/loadavg))"
  OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads python3 "$here/pytorch/bench_clip.py" --threads "$threads" \
    --case "clip/torch/$1" --json "$out/torch_$2_r$3.json"
}

for ((r = 1; r <= rounds; ++r)); do
  for c in $cases; do
    slug=${c//[\/:]/_}
    if ((r % 2)); then run_froster "$c" "$slug" "$r"; run_torch "$c" "$slug" "$r"
    else run_torch "$c" "$slug" "$r"; run_froster "$c" "$slug" "$r"; fi
  done
done

python3 - "$out" "$rounds" $cases <<'EOF'
import json, statistics, sys
from pathlib import Path

out, rounds, cases = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
MiB = 2 ** 20

def froster(slug, r):
    runs = json.loads((out / f"froster_{slug}_r{r}.json").read_text())["benchmarks"]
    med = next(b for b in runs if b.get("aggregate_name") == "median")
    assert med["time_unit"] == "ms", med["time_unit"]
    return med["real_time"], med.get("activation_bytes"), med.get("peak_rss_bytes"), med["cpu_time"]

def torch(slug, r):
    res = json.loads((out / f"torch_{slug}_r{r}.json").read_text())["results"][0]
    return res["median_ms"], res["activation_bytes"], res["peak_rss_bytes"], res["cpu_ms"]

def fmt_mib(x):
    return "-" if x is None else f"{x / MiB:.0f}"

rows, summary = [], []
print("\n| case | froster ms | PyTorch ms | speed-up (PyTorch / froster) | target | froster CPU ms | PyTorch CPU ms | "
      "froster activations MiB | PyTorch activations MiB | froster peak RSS MiB | PyTorch peak RSS MiB |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for c in cases:
    slug = c.replace("/", "_").replace(":", "_")
    f = [froster(slug, r) for r in range(1, rounds + 1)]
    t = [torch(slug, r) for r in range(1, rounds + 1)]
    f_ms, t_ms = statistics.median(x[0] for x in f), statistics.median(x[0] for x in t)
    f_cpu, t_cpu = statistics.median(x[3] for x in f), statistics.median(x[3] for x in t)
    ratio = t_ms / f_ms
    target = 1.2 if "train_step" in c else 1.5
    print(f"| {c} | {f_ms:.1f} | {t_ms:.1f} | {ratio:.2f}x | {target}x {'met' if ratio >= target else 'NOT met'} | "
          f"{f_cpu:.0f} | {t_cpu:.0f} | "
          f"{fmt_mib(f[-1][1])} | {fmt_mib(t[-1][1])} | {fmt_mib(max(x[2] for x in f))} | "
          f"{fmt_mib(max(x[2] for x in t))} |")
    summary.append(dict(case=c, froster_ms=f_ms, torch_ms=t_ms, speedup=ratio, target=target,
                        froster_cpu_ms=f_cpu, torch_cpu_ms=t_cpu,
                        froster_ms_per_round=[x[0] for x in f], torch_ms_per_round=[x[0] for x in t],
                        froster_activation_bytes=f[-1][1], torch_activation_bytes=t[-1][1],
                        froster_peak_rss_bytes=max(x[2] for x in f), torch_peak_rss_bytes=max(x[2] for x in t)))
(out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
print(f"\nraw results and summary.json in {out}")
EOF
