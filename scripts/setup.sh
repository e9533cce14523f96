#!/usr/bin/env bash
# The README's two set-up commands, for a fresh Debian 12 machine as root:
#   scripts/setup.sh demo   install what is missing, build (Release), run the main job
#   scripts/setup.sh test   install what is missing, build (Release), run every test with ctest
# Both are idempotent: a second run installs nothing and rebuilds only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-}
case "$mode" in demo|test) ;; *) echo "usage: $0 demo|test" >&2; exit 2 ;; esac

packages=(build-essential cmake pkg-config cppzmq-dev libzmq3-dev libcxxopts-dev
          nlohmann-json3-dev libsqlite3-dev catch2 libdnnl-dev ocl-icd-opencl-dev zlib1g-dev
          dataset-fashion-mnist python3 sqlite3 procps)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DHPO_WERROR=ON >/dev/null
cmake --build build -j "$jobs"

if [[ $mode == test ]]; then
  cd build
  exec ctest --output-on-failure -j "$jobs" --timeout 600
fi

# The main job: a real Fashion-MNIST CNN search on local CPU (or GPU) agents, then its
# leaderboard. Results go to ./hpo.db; a second run finds the study finished and prints the
# leaderboard again (delete hpo.db to search afresh, or `hpo resume fmnist-cnn --max-trials N`).
exec ./build/hpo run experiments/fashion-mnist-cnn.json --db hpo.db
