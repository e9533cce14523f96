#!/usr/bin/env bash
# The sampler benchmark suite (issue 16), hpo beside Optuna on the same problems, one table:
#   experiments/suite/bench_suite.sh [--seeds 0-9] [--trials 200] [--problems a,b] [--jobs 2]
#                                    [--build DIR] [-- EXTRA ARGS FOR bench_suite]
# Builds nothing (build first: cmake --build build --target bench_suite hpo_suite). Runs hpo's
# side (DIR/experiments/suite/bench_suite) and Optuna's (experiments/suite/bench_suite_optuna.py,
# /usr/bin/python3 with Debian's python3-optuna), both over the same seeds, trials, problems and
# number of parallel runs, then experiments/suite/table.py over both. Writes
# experiments/results/suite.txt (header + table) and keeps the runs beside it
# (experiments/results/suite-hpo.jsonl, suite-optuna.jsonl).
set -euo pipefail
cd "$(dirname "$0")/../.."
command_line="experiments/suite/bench_suite.sh${*:+ $*}"

build=build seeds=0-9 trials=200 problems="" jobs=2
extra=()
while (($#)); do
  case $1 in
    --seeds) seeds=$2; shift 2 ;;
    --trials) trials=$2; shift 2 ;;
    --problems) problems=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --) shift; extra+=("$@"); break ;;
    *) extra+=("$1"); shift ;;
  esac
done

bench=$build/experiments/suite/bench_suite
lib=$build/experiments/suite/libhpo_suite.so
for f in "$bench" "$lib"; do
  [[ -e $f ]] || { echo "bench_suite.sh: $f is missing (build it first)" >&2; exit 1; }
done

common=(--seeds "$seeds" --trials "$trials" --jobs "$jobs")
[[ -n $problems ]] && common+=(--problems "$problems")

tmp=$(mktemp -d)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u '+%Y-%m-%d %H:%M UTC')
echo "bench_suite.sh: hpo's side -> $tmp/hpo.jsonl" >&2
t0=$SECONDS
"$bench" --out "$tmp/hpo.jsonl" "${common[@]}" "${extra[@]}"
hpo_seconds=$((SECONDS - t0))
echo "bench_suite.sh: Optuna's side -> $tmp/optuna.jsonl" >&2
t0=$SECONDS
/usr/bin/python3 experiments/suite/bench_suite_optuna.py --lib "$lib" --out "$tmp/optuna.jsonl" \
  "${common[@]}"
optuna_seconds=$((SECONDS - t0))
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

mkdir -p experiments/results
cp "$tmp/hpo.jsonl" experiments/results/suite-hpo.jsonl
cp "$tmp/optuna.jsonl" experiments/results/suite-optuna.jsonl
cpu=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)
{
  echo "# Sampler benchmark suite (issue 16), $started"
  echo "# command: $command_line"
  echo "# CPU: ${cpu:-?} ($(nproc) cores)"
  echo "# load average (/proc/loadavg, 1/5/15 min) before $load_before, after $load_after"
  echo "# hpo: $bench, samplers asked in process as the scheduler asks them; ${hpo_seconds} s"
  /usr/bin/python3 experiments/suite/bench_suite_optuna.py --describe | sed 's/^/# peer: /'
  echo "# peer: ${optuna_seconds} s"
  echo "# seeds $seeds, $trials trials a run, $jobs runs at a time${problems:+, problems $problems}"
  echo "# runs: experiments/results/suite-hpo.jsonl, experiments/results/suite-optuna.jsonl"
  echo
  /usr/bin/python3 experiments/suite/table.py experiments/results/suite-hpo.jsonl \
    experiments/results/suite-optuna.jsonl
} | tee experiments/results/suite.txt
rm -rf "$tmp"
