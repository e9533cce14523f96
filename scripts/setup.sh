#!/usr/bin/env bash
# The README's two set-up commands, for a fresh Debian 12 machine as root:
#   scripts/setup.sh demo   install what is missing, build (Release), run the main job
#   scripts/setup.sh test   install what is missing, build (Release), run every test with ctest;
#                           then the sanitizer build (clang 14, ASan+UBSan, build-asan/): every
#                           test again there, and each fuzz target for 20 s (scripts/fuzz.sh)
# Both are idempotent: a second run installs nothing and rebuilds only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-}
case "$mode" in demo|test) ;; *) echo "usage: $0 demo|test" >&2; exit 2 ;; esac
# Each phase says how long it took: CI has 20 minutes on 2 cores for all of them.
phase() { echo "setup: $1 took $((SECONDS - start)) s" >&2; start=$SECONDS; }
start=$SECONDS

packages=(build-essential cmake ninja-build pkg-config cppzmq-dev libzmq3-dev libcxxopts-dev
          nlohmann-json3-dev libsqlite3-dev libsodium-dev catch2 libdnnl-dev ocl-icd-opencl-dev zlib1g-dev
          dataset-fashion-mnist python3 sqlite3 procps libcpp-httplib-dev)
# The sanitizer and fuzzing build (test only): clang 14, its sanitizer and libFuzzer runtimes,
# and its OpenMP runtime; PyYAML and jsonschema for the check of the K8s templates; systemd for
# systemd-analyze, which checks the agent's unit (Priority important: not in a minimal
# Debian 12, nor in its container images); iproute2 for the network test bed (tests/cluster,
# likewise missing from a minimal Debian 12); Slurm and munge for the one-node Slurm test
# (tests/cluster/slurm.h: 8 packages, 3.6 MB download, 13 MB installed); Chromium for the
# dashboard's browser test (tests/e2e/dashboard_e2e_test.cpp, headless) and util-linux's unshare
# to open the report with the network off.
if [[ $mode == test ]]; then
  packages+=(clang-14 libclang-rt-14-dev libomp-14-dev python3-yaml python3-jsonschema
            systemd iproute2 slurm-wlm munge chromium util-linux)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
  phase "installing"
fi

jobs=$(nproc)
# Ninja, not Make: Make builds a target only after every target it links is built, so on 2
# cores one long file (search/space_parse.cpp) holds up the rest; Ninja compiles any file
# whose inputs exist and waits only to link. A tree configured before with Make stays Make
# (CMake refuses to switch the generator of an existing tree).
generator() { [[ -f $1/CMakeCache.txt ]] || echo "-GNinja"; }
cmake -S . -B build $(generator build) -DCMAKE_BUILD_TYPE=Release -DHPO_WERROR=ON >/dev/null
cmake --build build -j "$jobs"
phase "the Release build"

if [[ $mode == test ]]; then
  (cd build && ctest --output-on-failure -j "$jobs" --timeout 600)
  phase "the Release tests"
  # The sanitizer tree: everything under ASan+UBSan (asserts on; -O1, the test files -O0),
  # without the benchmark programs of experiments/, plus the fuzz targets (tests/README.md).
  CXX=clang++-14 cmake -S . -B build-asan $(generator build-asan) -DCMAKE_BUILD_TYPE=Debug -DHPO_SANITIZE=ON \
    -DHPO_EXPERIMENTS=OFF -DHPO_WERROR=ON >/dev/null
  cmake --build build-asan -j "$jobs"
  phase "the sanitizer build"
  (cd build-asan && ctest --output-on-failure -j "$jobs" --timeout 900)
  phase "the sanitizer tests"
  # 20 s per target, 2 at a time: 70 s for the 7 targets. The corpora replay in ctest, so what
  # was ever found stays fixed; a longer search is a run by hand (tests/README.md "Fuzzing").
  scripts/fuzz.sh 20 build-asan
  phase "fuzzing"
  exit 0
fi

# The main job: a real Fashion-MNIST CNN search on local CPU (or GPU) agents, then its
# leaderboard. Results go to ./hpo.db; a second run finds the study finished and prints the
# leaderboard again (delete hpo.db to search afresh, or `hpo resume fmnist-cnn --max-trials N`).
exec ./build/hpo run experiments/fashion-mnist-cnn.json --db hpo.db
