#!/usr/bin/env bash
# Installs froster's build and test dependencies on Debian 12 from apt, and nothing else.
# Idempotent: a fast no-op when everything is already installed; runs `apt-get update` only when something is missing.
set -euo pipefail

packages=(
  cmake g++ make
  libeigen3-dev   # EigenBackend and the Eigen adapters
  xtensor-dev     # the xtensor adapters (brings xtl)
  catch2          # the tests
  libbenchmark-dev
  libopenblas-dev # the benchmarks compare against OpenBLAS
  # froster::io: checkpoints (JSON headers), the tokenizer (gzip, Unicode), images
  nlohmann-json3-dev zlib1g-dev libutf8proc-dev libpng-dev libjpeg62-turbo-dev
)

# `dpkg -s` alone also succeeds for removed packages whose config files remain, so check the status word.
installed() {
  [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

missing=()
for p in "${packages[@]}"; do
  installed "$p" || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all dependencies present"
  exit 0
fi

echo "install-deps: missing: ${missing[*]}"
if [[ "$(id -u)" != 0 ]]; then
  echo "install-deps: error: installing needs root; run as root: apt-get install -y ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"
echo "install-deps: installed ${missing[*]}"
