#!/usr/bin/env bash
# Multi-fidelity benchmark, "many seeds, fast" (issue 14):
#   experiments/bench_multifidelity.sh [BUILD_DIR]      (default: build)
# Runs the curves study (experiments/curves.json) through the real scheduler and 8 local agents
# (`hpo run STUDY --agents 8 --cpu-slots 1`), with pauses, resumes and checkpoints, for each
# method and seed: random; TPE with the median pruner; ASHA with random; ASHA with TPE;
# Hyperband with TPE. Every run has the same time budget. Seeds go in the outer loop, so a
# change in the machine's load falls on every method alike. Then bench_multifidelity
# summarizes the stores and the space, and the tables go to
# experiments/results/multifidelity.txt.
# Environment: SEEDS (20), SECONDS_PER_EPOCH (0.02), BUDGET (10: budget.max_seconds),
# METHODS (all five), RESULTS (experiments/results/multifidelity.txt), KEEP=1 keeps the runs'
# directories (each run has its own; they are removed otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
seeds=${SEEDS:-20}
seconds=${SECONDS_PER_EPOCH:-0.02}
budget=${BUDGET:-10}
methods=${METHODS:-random tpe-median asha-random asha-tpe hyperband-tpe}
results=${RESULTS:-experiments/results/multifidelity.txt}
if [[ ! -f $build/CMakeCache.txt ]]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$build" --target hpo bench_multifidelity -j 2 >/dev/null
hpo=$(realpath "$build/hpo")
bench=$(realpath "$build/experiments/bench_multifidelity")
curves=$(realpath experiments/curves.json)

work=$(mktemp -d /tmp/bench_multifidelity.XXXXXX)
if [[ ${KEEP:-0} != 1 ]]; then trap 'rm -rf "$work"' EXIT; fi
commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo "+changes")
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date +%s)
echo "bench_multifidelity: $seeds seeds x ($methods), ${budget} s each, runs in $work" >&2
dbs=()
for ((seed = 0; seed < seeds; seed++)); do
  for method in $methods; do
    dir=$work/$method-$seed
    mkdir -p "$dir"
    "$bench" study "$curves" "$method" "$seed" "$seconds" "$budget" >"$dir/study.json"
    # A run ends with its time budget; a run still going long after it has hung.
    if ! (cd "$dir" && timeout $((${budget%.*} + 120)) "$hpo" run study.json --agents 8 \
            --cpu-slots 1 --db run.db >log.txt 2>&1); then
      echo "bench_multifidelity: $method seed $seed failed (exit status above); $dir/log.txt:" >&2
      tail -n 30 "$dir/log.txt" >&2
      trap - EXIT
      exit 1
    fi
    if ! "$bench" check "$method" "$dir/run.db"; then
      trap - EXIT
      exit 1
    fi
    dbs+=("$method=$dir/run.db")
    echo "  seed $seed $method done ($(($(date +%s) - started)) s so far)" >&2
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

space=$("$bench" space "$curves")
field() { awk -v k="$1" -v e="$2" '$1 == k && $2 == e {print $3}' <<<"$space"; }
t95=$(field threshold 95)
t99=$(field threshold 99)
mkdir -p "$(dirname "$results")"
{
  echo "# Multi-fidelity benchmark, many seeds ($(date -u +%Y-%m-%d), hpo $commit, $(nproc) CPUs)"
  echo "# command: SEEDS=$seeds SECONDS_PER_EPOCH=$seconds BUDGET=$budget experiments/bench_multifidelity.sh"
  echo "# each run: hpo run STUDY.json --agents 8 --cpu-slots 1 --db run.db, STUDY.json from"
  echo "# experiments/curves.json: $seconds s per epoch, 27 epochs, max_parallel 8,"
  echo "# budget.max_seconds $budget; seeds 0..$((seeds - 1)); wall time $(($(date +%s) - started)) s in all"
  echo "# load average (/proc/loadavg, 1/5/15 min) at start $load_before, at end $load_after"
  echo "# ASHA: min_resource 1, max_resource 27, reduction_factor 3 (rungs 1, 3, 9); Hyperband: the"
  echo "# same fields; TPE: curves.json's sampler; median pruner: curves.json's (warmup 1, min 5)"
  echo
  echo "The space (100,000 random configs, the agent's curves model, trainer/agent/curves.h):"
  echo "  95th percentile of the accuracy at epoch 27: $t95; 99th: $t99; best: $(awk '$1 == "max" {print $2}' <<<"$space")"
  for e in 1 3 9; do
    echo "  epoch $e: Spearman rank correlation with epoch 27 $(field spearman $e);" \
      "top-5% configs in epoch $e's top third: $(field top3 $e)"
  done
  echo
  "$bench" summarize "$t95" "$t99" "$budget" "$seconds" "${dbs[@]}"
} | tee "$results"
