#!/usr/bin/env bash
# Builds and runs the Eigen distillation demo (examples/distill_eigen). Arguments are passed to the demo.
#   BUILD_DIR=build   build directory (shared with scripts/test.sh)
#   JOBS=2            parallel build jobs
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
build_dir="${BUILD_DIR:-build}"
jobs="${JOBS:-2}"

echo "==> dependencies"
"$root/scripts/install-deps.sh"

# The same configuration as scripts/test.sh's main pass, so the two share the directory; only the demo is built.
echo "==> configure ${build_dir} (Release)"
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DFROSTER_BUILD_EXAMPLES=ON

echo "==> build distill_eigen"
cmake --build "$build_dir" --config Release --target distill_eigen -j "$jobs"

demo="$build_dir/examples/distill_eigen"
if [[ ! -x "$demo" ]]; then  # multi-config generators put it in a per-configuration folder
  demo="$build_dir/examples/Release/distill_eigen"
fi
echo "==> run ${demo} $*"
exec "$demo" "$@"
