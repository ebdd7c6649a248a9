#!/usr/bin/env bash
# run.sh of a bundle made by scripts/avx512_bundle.sh. Run it from the root of a checkout of the commit the bundle
# was built from (the tests read their fixtures, the benchmarks' PyTorch side its script, from there):
#
#   DIR/run.sh RESULTS_DIR
#
# 1. the whole Release test suite at the machine's best ISA level (ctest where installed, else each test binary);
#    the cpu[avx512]/... tests run where the CPU has AVX-512;
# 2. froster_bench_kernels, 2 threads, 3 repetitions (GEMM against Eigen and OpenBLAS, attention, row kernels;
#    KERNELS_FILTER, a --benchmark_filter regex, picks cases);
# 3. froster_bench_distillation (the distillation ops and the fused step; DISTILL_FILTER picks cases);
# 4. the CLIP image forward against PyTorch (benchmarks/run_clip_comparison.sh) where python3 has torch.
# Results and logs go to RESULTS_DIR. Steps are time-limited (TEST_LIMIT, KERNELS_LIMIT, DISTILL_LIMIT, CLIP_LIMIT
# seconds); a limit of 0 skips its step.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
results="${1:?usage: run.sh RESULTS_DIR}"
mkdir -p "$results"
results="$(cd "$results" && pwd)"
checkout="$(pwd)"
# Each step's time limit in seconds, its default stated once; 0 skips the step.
: "${TEST_LIMIT:=300}" "${KERNELS_LIMIT:=400}" "${DISTILL_LIMIT:=120}" "${CLIP_LIMIT:=300}"
export LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# The test binaries and CTest's files hold the build and source paths of the machine that built them.
built="$(cat "$here/build_dir.txt")"              # <source>/build-avx512/tests
source_then="$(dirname "$(dirname "$built")")"
if [[ ! -e $source_then ]]; then
  mkdir -p "$(dirname "$source_then")" && ln -s "$checkout" "$source_then"
fi
mkdir -p "$source_then/build-avx512"
[[ -e $built ]] || ln -s "$here" "$built"

{
  date -Iseconds
  uname -srm
  grep -m1 'model name' /proc/cpuinfo
  echo "cpus: $(nproc)"
  echo "avx512: $(grep -o 'avx512[a-z_0-9]*' /proc/cpuinfo | sort -u | tr '\n' ' ')"
} | tee "$results/machine.txt"

if [[ $TEST_LIMIT != 0 ]]; then
  echo "== tests"
  if command -v ctest > /dev/null; then
    (cd "$built" && timeout "$TEST_LIMIT" ctest -j "$(nproc)" --timeout 240 --output-on-failure) \
      > "$results/tests.log" 2>&1
  else
    for t in "$here"/tests/froster_tests_*; do
      [[ -x $t ]] || continue
      echo "== $t"
      timeout "$TEST_LIMIT" "$t"
    done > "$results/tests.log" 2>&1
  fi
  echo "tests exit $?"
  tail -3 "$results/tests.log"
fi

if ! grep -qw avx512f /proc/cpuinfo; then
  echo "no AVX-512 on this CPU: the benchmarks (built for x86-64-v4) are skipped"
  exit 0
fi

if [[ $KERNELS_LIMIT != 0 ]]; then
  echo "== kernels"
  OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-SkylakeX}" timeout "$KERNELS_LIMIT" \
    "$here/bench/froster_bench_kernels" --benchmark_filter="${KERNELS_FILTER:-.}" --benchmark_repetitions=3 \
    --benchmark_out="$results/kernels.json" --benchmark_out_format=json > "$results/kernels.log" 2>&1
  echo "kernels exit $?"
fi

if [[ $DISTILL_LIMIT != 0 ]]; then
  echo "== distillation"
  timeout "$DISTILL_LIMIT" "$here/bench/froster_bench_distillation" --benchmark_filter="${DISTILL_FILTER:-.}" \
    --benchmark_repetitions=3 --benchmark_out="$results/distillation.json" --benchmark_out_format=json \
    > "$results/distillation.log" 2>&1
  echo "distillation exit $?"
fi

if [[ $CLIP_LIMIT != 0 ]] && python3 -c 'import torch' 2> /dev/null; then
  echo "== clip"
  THREADS=2 ROUNDS=1 CASES="vision_forward/batch:1 vision_forward/batch:8" OUT_DIR="$results/clip" \
    timeout "$CLIP_LIMIT" "$checkout/benchmarks/run_clip_comparison.sh" "$here/bench/froster_bench_clip" \
    > "$results/clip.log" 2>&1
  echo "clip exit $?"
  tail -4 "$results/clip.log"
fi
