#!/usr/bin/env bash
# Builds every libFuzzer harness in tests/fuzz with clang (ASan + UBSan), fuzzes each reader for SECONDS (default
# 60), and merges inputs that add coverage into the committed corpus. See tests/fuzz/README.md.
#
#   scripts/fuzz.sh [SECONDS]     CLANG=clang++-14 by default; installs clang-14 and libfuzzer-14-dev when missing
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
seconds="${1:-60}"
clang="${CLANG:-clang++-14}"
if ! command -v "$clang" >/dev/null || ! dpkg-query -W -f='${Status}' libfuzzer-14-dev 2>/dev/null | grep -q "ok installed"; then
  if [[ "$(id -u)" != 0 ]]; then
    echo "fuzz.sh: needs $clang and libfuzzer-14-dev: apt-get install -y clang-14 libfuzzer-14-dev" >&2
    exit 1
  fi
  apt-get update && apt-get install -y --no-install-recommends clang-14 libfuzzer-14-dev
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for harness in tests/fuzz/fuzz_*.cpp; do
  reader="$(basename "$harness" .cpp)"
  reader="${reader#fuzz_}"
  echo "==> $reader: build"
  "$clang" -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Iinclude \
    "$harness" -o "$work/fuzz_$reader" -lz
  dict=()
  [[ -f "tests/fuzz/$reader.dict" ]] && dict=(-dict="$root/tests/fuzz/$reader.dict")
  mkdir -p "$work/$reader"
  echo "==> $reader: fuzz ${seconds} s"
  (cd "$work" && "./fuzz_$reader" -max_len=4096 -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    "${dict[@]}" "$work/$reader" "$root/tests/fuzz/corpus/$reader")
  echo "==> $reader: merge new coverage into tests/fuzz/corpus/$reader"
  "$work/fuzz_$reader" -merge=1 -use_counters=0 "tests/fuzz/corpus/$reader" "$work/$reader"
done
echo "fuzz.sh: no findings"
