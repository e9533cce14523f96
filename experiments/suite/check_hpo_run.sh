#!/usr/bin/env bash
# Runs one suite problem through `hpo run` (a command trial, one local agent, the default
# sampler) and the same problem, seed and trial count through bench_suite in process, and
# prints both results: they must be equal, since a sampler is a pure function of the history and
# one worker gives the same history both ways. This is the check that what the suite tunes is
# what a real study runs.
#   experiments/suite/check_hpo_run.sh [PROBLEM] [SEED] [TRIALS] [SAMPLER_JSON]
set -euo pipefail
cd "$(dirname "$0")/../.."
problem=${1:-branin-2} seed=${2:-0} trials=${3:-50} sampler=${4:-'{"type": "tpe"}'}
build=${BUILD:-build}
root=$PWD
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
space=$("$build/experiments/suite/bench_suite" --list-space "$problem" 2>/dev/null)
cat > "$tmp/study.json" <<JSON
{
  "name": "suite-$problem",
  "objective": {"metric": "value", "direction": "minimize"},
  "sampler": $sampler,
  "seed": $seed,
  "budget": {"max_trials": $trials, "max_parallel": 1},
  "trial": {"kind": "command", "timeout_seconds": 60,
            "command": "/usr/bin/python3 $root/experiments/suite/suite_trial.py --lib $root/$build/experiments/suite/libhpo_suite.so --data $root/experiments/suite/data --problem $problem --seed $seed"},
  "space": $space
}
JSON
"$build/hpo" run "$tmp/study.json" --agents 1 --db "$tmp/s.db" --workdir "$tmp/work" > "$tmp/run.log" 2>&1 ||
  { tail -20 "$tmp/run.log"; exit 1; }
via_run=$(sqlite3 "$tmp/s.db" "SELECT printf('%.10g', m.value) FROM trials t JOIN metrics m ON m.trial = t.id
  WHERE t.state = 'COMPLETED' AND m.name = 'truth' ORDER BY t.value, t.number LIMIT 1")
in_process=$("$build/experiments/suite/bench_suite" --problems "$problem" --seeds "$seed" \
  --trials "$trials" --samplers check --sampler "check=$sampler" --jobs 1 2>/dev/null |
  python3 -c "import json,sys; r=json.loads(sys.stdin.readline()); print('%.10g' % r['best']['$trials'])")
echo "$problem seed $seed, $trials trials, sampler $sampler: hpo run $via_run, in process $in_process"
[[ $via_run == "$in_process" ]] && echo "same" || { echo "DIFFERENT"; exit 1; }
