#!/usr/bin/env bash
# Packs froster's Release test suite and the kernel, distillation and CLIP benchmarks, built here, to run on another
# x86-64 machine: one with AVX-512 when this one has none (how the AVX-512 sections of benchmarks/kernels/*.md and
# benchmarks/CLIP.md were measured). The target needs a glibc and libstdc++ at least as new as this machine's; the
# other shared libraries the binaries load travel in the bundle.
#
#   scripts/avx512_bundle.sh [BUNDLE.tar.xz]      default: build-avx512/bundle.tar.xz
#
# The tests are built as CI builds them (kernels dispatched at run time); the benchmarks with -march=x86-64-v4, so
# that Eigen, which picks its SIMD level at compile time, runs its AVX-512 kernels too: they need a CPU with
# AVX-512 (x86-64-v4). On the target, unpack the bundle and run its run.sh (scripts/avx512_bundle_run.sh) from a
# checkout of the same commit. ../shared/data (the BPE vocabulary) is not bundled: the tests that read it skip.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
work="build-avx512"
out="${1:-$work/bundle.tar.xz}"
jobs="${JOBS:-2}"

cmake -S . -B "$work/tests" -DCMAKE_BUILD_TYPE=Release -DFROSTER_BUILD_TESTS=ON -DFROSTER_BUILD_EXAMPLES=ON \
  -DFROSTER_BUILD_BENCHMARKS=OFF > /dev/null
cmake --build "$work/tests" -j "$jobs"
cmake -S . -B "$work/bench" -DCMAKE_BUILD_TYPE=Release -DFROSTER_BUILD_TESTS=OFF -DFROSTER_BUILD_EXAMPLES=OFF \
  -DFROSTER_BUILD_BENCHMARKS=ON -DFROSTER_BENCH_NATIVE=OFF -DCMAKE_CXX_FLAGS="-march=x86-64-v4" > /dev/null
cmake --build "$work/bench" -j "$jobs" --target froster_bench_kernels froster_bench_clip froster_bench_distillation

stage="$work/stage"
rm -rf "$stage"
mkdir -p "$stage/tests" "$stage/examples" "$stage/bench" "$stage/lib"
# CTest's files name the binaries by their absolute paths here; run.sh points this path at the unpacked copy.
cp "$work/tests/CTestTestfile.cmake" "$stage/"
cp "$work/tests/tests/"*.cmake "$stage/tests/"
find "$work/tests/tests" -maxdepth 1 -type f -executable -name "froster_tests_*" -exec cp {} "$stage/tests/" \;
rm -f "$stage/tests/cmake_install.cmake"
sed -i 's/^subdirs("package")/# the package tests need the build tools: not bundled/' "$stage/tests/CTestTestfile.cmake"
cp "$work/tests/examples/CTestTestfile.cmake" "$stage/examples/"
find "$work/tests/examples" -maxdepth 1 -type f -executable -exec cp {} "$stage/examples/" \;
cp "$work/bench/benchmarks/froster_bench_"{kernels,clip,distillation} "$stage/bench/"
# Every shared library the binaries load, except the C and C++ runtimes the target brings.
for bin in "$stage"/tests/froster_tests_* "$stage"/examples/* "$stage"/bench/*; do
  [[ -x $bin && -f $bin ]] || continue
  ldd "$bin" | awk '$3 ~ /^\// {print $3}'
done | sort -u | grep -vE '/(libc|libm|libstdc\+\+|libgcc_s|ld-linux[^/]*)\.so' | while read -r lib; do
  cp -L "$lib" "$stage/lib/"
done
echo "$(pwd)/$work/tests" > "$stage/build_dir.txt"
cp scripts/avx512_bundle_run.sh "$stage/run.sh"
tar -C "$stage" -cJf "$out" .
echo "bundle: $out ($(du -h "$out" | cut -f1)); on the target: tar -xJf it into DIR, then DIR/run.sh RESULTS_DIR"
