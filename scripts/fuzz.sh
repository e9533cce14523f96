#!/usr/bin/env bash
# Fuzzes each libFuzzer target of tests/fuzz for SECONDS (default 30), as many at a time as
# there are cores, starting from its seed corpus in tests/fuzz/corpus/NAME, and fails if any
# target crashes (a sanitizer report, a __builtin_trap, an input slower than 25 s, one
# allocation over 1 GiB or more than 2 GiB in all).
#
#   scripts/fuzz.sh [SECONDS] [BUILD_DIR]     BUILD_DIR: the clang sanitizer build (build-asan)
#
# New inputs the fuzzer finds go to a temporary directory, never into the repository's corpus.
# A crashing input is kept in BUILD_DIR/fuzz-artifacts/NAME/: reproduce it with
# `BUILD_DIR/tests/fuzz/NAME FILE`, fix the bug with a unit test, and copy FILE into
# tests/fuzz/corpus/NAME/ as a regression seed (tests/README.md "Fuzzing").
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-30}
build=${2:-build-asan}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export LSAN_OPTIONS="suppressions=$PWD/tests/sanitizer/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1"

# One target: its log and exit status go to $work/NAME.{log,status}.
fuzz_one() {
  local name=$1 bin=$build/tests/fuzz/$1 artifacts=$build/fuzz-artifacts/$1 rc=0
  mkdir -p "$work/$name" "$artifacts"
  # -max_len bounds the mutated inputs (the deep-nesting seeds are longer; ctest's corpus replay
  # runs them whole). -malloc_limit_mb makes one allocation over 1 GiB a crash.
  "$bin" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
    -max_len=65536 -artifact_prefix="$artifacts/" "$work/$name" "tests/fuzz/corpus/$name" \
    >"$work/$name.log" 2>&1 || rc=$?
  echo "$rc" >"$work/$name.status"
}

names=()
for src in tests/fuzz/fuzz_*.cpp; do
  name=$(basename "$src" .cpp)
  if [[ ! -x $build/tests/fuzz/$name ]]; then
    echo "fuzz: $build/tests/fuzz/$name is not built (configure $build with clang and" \
      "-DHPO_SANITIZE=ON)" >&2
    exit 2
  fi
  names+=("$name")
done

# As many targets at a time as there are cores (each fuzzer is one process).
parallel=$(nproc)
for name in "${names[@]}"; do
  while (($(jobs -rp | wc -l) >= parallel)); do wait -n || true; done
  fuzz_one "$name" &
done
wait

failed=()
for name in "${names[@]}"; do
  if [[ $(cat "$work/$name.status") == 0 ]]; then
    runs=$(grep -o 'Done [0-9]* runs' "$work/$name.log" | tail -1 || true)
    echo "fuzz: $name: ok (${runs:-no summary} in ${seconds} s)"
  else
    echo "fuzz: $name: FAILED; the end of its log:" >&2
    tail -40 "$work/$name.log" >&2
    echo "fuzz: its crashing input is in $build/fuzz-artifacts/$name/" >&2
    failed+=("$name")
  fi
done
if ((${#failed[@]})); then
  echo "fuzz: ${#failed[@]} target(s) crashed: ${failed[*]}" >&2
  exit 1
fi
