#!/usr/bin/env bash
# Builds everything and runs the whole test suite, then the tests again under ASan+UBSan, then (when nvcc is
# present) the CUDA header compile check.
#
#   BUILD_DIR=build             main (Release) build directory
#   SANITIZE_BUILD_DIR=build-sanitize
#   CUDA_BUILD_DIR=build-cuda
#   JOBS=2                      parallel build and ctest jobs
#   FROSTER_SKIP_SANITIZE=1     skip the sanitizer pass (local use; CI runs it)
#   FROSTER_SKIP_CUDA=1         skip the CUDA compile check
#   CMAKE_GENERATOR             honoured by cmake as usual
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

build_dir="${BUILD_DIR:-build}"
sanitize_dir="${SANITIZE_BUILD_DIR:-build-sanitize}"
cuda_dir="${CUDA_BUILD_DIR:-build-cuda}"
jobs="${JOBS:-2}"

phase_start=0
timings=()
begin() {
  echo
  echo "==> $*"
  phase_name="$*"
  phase_start=$SECONDS
}
end() {
  local took=$((SECONDS - phase_start))
  echo "<== ${phase_name}: ${took} s"
  timings+=("$(printf '%5d s  %s' "$took" "$phase_name")")
}
summary() {
  echo
  echo "==> timings"
  printf '%s\n' "${timings[@]}"
}
# A failing test run does not stop the later passes (their results are worth having); the script still fails.
# Configure and build failures stop it at once.
failed=()
run_tests() {
  if ! "$@"; then
    failed+=("$phase_name")
  fi
}

begin "dependencies"
"$root/scripts/install-deps.sh"
end

# --- Release: everything, the whole suite --------------------------------------------------------------------------
begin "configure ${build_dir} (Release)"
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release \
  -DFROSTER_BUILD_TESTS=ON -DFROSTER_BUILD_EXAMPLES=ON -DFROSTER_BUILD_BENCHMARKS=ON -DFROSTER_SANITIZE=OFF
end

begin "build ${build_dir} (-j${jobs})"
cmake --build "$build_dir" --config Release -j "$jobs"
end

begin "ctest ${build_dir}"
run_tests ctest --test-dir "$build_dir" -C Release --output-on-failure -j "$jobs"
end

# --- CUDA: the headers through nvcc --------------------------------------------------------------------------------
if [[ "${FROSTER_SKIP_CUDA:-0}" == 1 ]]; then
  echo
  echo "==> CUDA compile check skipped (FROSTER_SKIP_CUDA=1)"
else
  nvcc="$(command -v nvcc || true)"
  if [[ -z "$nvcc" && -x /usr/local/cuda/bin/nvcc ]]; then nvcc=/usr/local/cuda/bin/nvcc; fi
  if [[ -z "$nvcc" ]]; then
    echo
    echo "==> CUDA compile check skipped: nvcc not found (neither on PATH nor in /usr/local/cuda/bin)"
  else
    begin "configure ${cuda_dir} (CUDA, ${nvcc})"
    cmake -S . -B "$cuda_dir" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_COMPILER="$nvcc" -DFROSTER_ENABLE_CUDA=ON \
      -DFROSTER_BUILD_TESTS=ON -DFROSTER_BUILD_EXAMPLES=OFF -DFROSTER_BUILD_BENCHMARKS=OFF
    end

    begin "build ${cuda_dir} (the nvcc header check only)"
    cmake --build "$cuda_dir" --config Release --target froster_cuda_header_check -j "$jobs"
    end

    begin "ctest ${cuda_dir} (label cuda; the kernel part runs only with a device)"
    run_tests ctest --test-dir "$cuda_dir" -C Release --output-on-failure -L cuda
    end
  fi
fi

# --- ASan + UBSan: the tests again (not the package tests: they only rebuild consumer projects) ---------------------
if [[ "${FROSTER_SKIP_SANITIZE:-0}" == 1 ]]; then
  echo
  echo "==> sanitizer pass skipped (FROSTER_SKIP_SANITIZE=1)"
else
  begin "configure ${sanitize_dir} (Debug, ASan+UBSan, tests only)"
  cmake -S . -B "$sanitize_dir" -DCMAKE_BUILD_TYPE=Debug -DFROSTER_SANITIZE=ON \
    -DFROSTER_BUILD_TESTS=ON -DFROSTER_BUILD_EXAMPLES=OFF -DFROSTER_BUILD_BENCHMARKS=OFF
  end

  begin "build ${sanitize_dir} (-j${jobs})"
  cmake --build "$sanitize_dir" --config Debug -j "$jobs"
  end

  begin "ctest ${sanitize_dir} (ASan+UBSan, without label package)"
  export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:check_initialization_order=1}"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
  run_tests ctest --test-dir "$sanitize_dir" -C Debug --output-on-failure -j "$jobs" -LE package
  end
fi

summary
echo
if ((${#failed[@]} > 0)); then
  echo "test.sh: FAILED: tests failed in:"
  printf '  %s\n' "${failed[@]}"
  exit 1
fi
echo "test.sh: all passes succeeded"
